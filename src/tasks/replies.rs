//! Replies to `kafka:invoke` requests, routed to the thread whose execution waits for them.
//!
//! One [`Replies`] per reply topic and process owns one consumer thread. It is assigned
//! every partition of the topic (no consumer group, nothing committed), each from its high
//! watermark as read when the thread started, so it sees every reply written after that and
//! none before; partitions added later are read from their beginning. A missing reply topic
//! is created (`[tasks.kafka] reply_partitions`).
//!
//! A correlation id is `<instance>-<slot>-<seq>` in hex. `instance` is random per
//! [`Replies`]: processes of one group may share a reply topic, and each skips the others'
//! replies after one comparison (every process reads every reply, so a very large group is
//! better given one reply topic per process). `slot` names the waiting thread, `seq` the
//! call on that thread. A thread (a shard, or the runtime of `stepstream exec`) registers on
//! its first call: it gets a slot and a bounded channel, drained by a task on its own
//! runtime into the map of waiting calls only that thread touches. So a reply costs the
//! consumer thread a header parse and a channel send, and the shard a map removal: no lock.
//!
//! Bounds: at most [`MAX_REPLY_PARTITIONS`] partitions, [`MAX_SLOTS`] threads,
//! [`MAX_WAITING_PER_THREAD`] waiting calls per thread (in practice the in-flight
//! executions and their Map/Parallel branches), reply values of at most
//! [`MAX_RESPONSE_BYTES`] (a larger one fails its call with `States.DataLimitExceeded`
//! without being copied), error names of [`MAX_ERROR_NAME_BYTES`].
//!
//! A reply whose id names no waiting call (unknown, or its call already timed out or was
//! cancelled) is dropped and counted ([`UnmatchedReply`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot, watch};

use super::kafka::KafkaTaskConfig;
use super::net::MAX_RESPONSE_BYTES;
use crate::error::{names, WorkflowError};

/// The request header carrying the correlation id; the reply carries it back unchanged.
pub const HEADER_CORRELATION_ID: &str = "stepstream-correlation-id";
/// The request header naming the topic the worker answers on.
pub const HEADER_REPLY_TOPIC: &str = "stepstream-reply-topic";
/// A reply header whose presence makes the reply a task error of that name (the value is the cause).
pub const HEADER_ERROR: &str = "stepstream-error";

/// Most partitions a reply topic may have (each is assigned to every process).
pub const MAX_REPLY_PARTITIONS: usize = 1024;
/// Most threads that may wait for replies of one topic in one process.
pub const MAX_SLOTS: u32 = 4096;
/// Most calls one thread may have waiting for replies at once.
pub const MAX_WAITING_PER_THREAD: usize = 1 << 20;
/// Longest error name a reply may give (longer ones are cut).
pub const MAX_ERROR_NAME_BYTES: usize = 256;
/// Replies queued for one thread before the consumer waits for it to take them.
const QUEUE_PER_THREAD: usize = 4096;
/// How often the partition count is looked at again (a topic may grow).
const RECHECK_PARTITIONS: Duration = Duration::from_secs(30);
/// How long the consumer thread blocks in one poll (also how fast it sees a stop).
const POLL: Duration = Duration::from_millis(100);

/// A worker's answer as the waiting call receives it.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// The reply value (the result's JSON text, or empty).
    Value(Vec<u8>),
    /// The reply had a `stepstream-error` header: its name, and the value as the cause.
    Error {
        /// The error name.
        name: String,
        /// The cause bytes.
        cause: Vec<u8>,
    },
    /// The value was larger than [`MAX_RESPONSE_BYTES`]: its size.
    TooLarge(usize),
}

/// A reply on its way to the thread that waits for it.
#[derive(Debug)]
struct Delivery {
    seq: u64,
    reply: Reply,
}

/// Whether the consumer can take calls.
#[derive(Debug, Clone)]
enum State {
    Starting,
    Ready,
    Failed(String),
}

fn too_many_partitions(topic: &str, n: usize) -> String {
    format!(
        "reply topic {topic:?} has {n} partitions, over the limit of {MAX_REPLY_PARTITIONS} \
         (every process reads all of them): use a topic with fewer"
    )
}

/// Every reply dropped because no call waits for it, in this process.
static UNMATCHED: AtomicU64 = AtomicU64::new(0);

/// Replies dropped so far in this process because no call waited for them.
pub fn unmatched_total() -> u64 {
    UNMATCHED.load(Ordering::Relaxed)
}

/// A reply no call waits for: logged at debug level and counted, never an error.
pub struct UnmatchedReply<'a> {
    /// The reply topic.
    pub topic: &'a str,
    /// Its correlation id as read (lossy text), empty when it had none.
    pub id: &'a str,
    /// Why nothing waits for it.
    pub why: &'a str,
}

impl UnmatchedReply<'_> {
    /// Logs and counts the event.
    pub fn emit(&self) {
        UNMATCHED.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::UNMATCHED_REPLIES).increment(1);
        tracing::debug!(
            topic = self.topic,
            correlation_id = self.id,
            "stepstream: ignored a reply: {}",
            self.why
        );
    }
}

/// The consumer of one reply topic, shared by every thread of a process.
pub struct Replies {
    instance: u64,
    topic: Arc<str>,
    state: watch::Receiver<State>,
    registrations: crossbeam_channel::Sender<(u32, mpsc::Sender<Delivery>)>,
    next_slot: AtomicU32,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Replies {
    /// Starts the consumer of `topic` with `cfg`'s brokers and properties.
    pub fn start(cfg: &KafkaTaskConfig, topic: &str) -> Result<Arc<Replies>, String> {
        let brokers = cfg.brokers("kafka:invoke")?;
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", brokers);
        for (name, value) in &cfg.properties {
            c.set(name, value);
        }
        let admin = c.clone();
        let instance = rand::random::<u64>();
        // librdkafka wants a group id to assign partitions; nothing joins it (no subscribe)
        // and nothing is committed to it.
        c.set("group.id", format!("stepstream-replies-{instance:016x}"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        let consumer: BaseConsumer = c
            .create()
            .map_err(|e| format!("kafka:invoke cannot create its reply consumer: {e}"))?;
        let (state_tx, state) = watch::channel(State::Starting);
        let (registrations, registered) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let topic: Arc<str> = Arc::from(topic);
        let mut reader = Reader {
            consumer,
            admin,
            partitions_to_create: cfg.reply_partitions.max(1),
            state: state_tx,
            routing: Routing {
                topic: Arc::clone(&topic),
                instance,
                registered,
                slots: Vec::new(),
                next_offsets: Vec::new(),
            },
        };
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("kafka-replies".into())
            .spawn(move || reader.run(&stopping))
            .map_err(|e| format!("kafka:invoke cannot start its reply thread: {e}"))?;
        metrics::counter!(crate::metrics::UNMATCHED_REPLIES).increment(0);
        Ok(Arc::new(Replies {
            instance,
            topic,
            state,
            registrations,
            next_slot: AtomicU32::new(0),
            stop,
            thread: Some(thread),
        }))
    }

    /// The reply topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Waits until the consumer reads the topic; fails at once while it cannot.
    pub async fn ready(&self) -> Result<(), WorkflowError> {
        let mut state = self.state.clone();
        let outcome = match state.wait_for(|s| !matches!(s, State::Starting)).await {
            Ok(s) => match &*s {
                State::Failed(why) => Err(why.clone()),
                _ => Ok(()),
            },
            Err(_) => Err("the reply consumer stopped".to_string()),
        };
        outcome.map_err(|why| WorkflowError::new(names::TASK_FAILED, why))
    }

    /// Registers a call waiting for one reply, on the current thread's runtime (which must
    /// be a current-thread one: the replies are handed over on it).
    pub fn waiter(&self) -> Result<Waiter, WorkflowError> {
        let fail = |why: String| WorkflowError::new(names::TASK_FAILED, why);
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| fail("kafka:invoke needs a runtime".into()))?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread {
            return Err(fail(
                "kafka:invoke runs on a current-thread runtime (a shard's, or exec's): its \
                 replies are handed to the thread that waits"
                    .into(),
            ));
        }
        let runtime = handle.id();
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            let current = local.get(&self.instance);
            if current.is_none_or(|l| l.runtime != runtime) {
                // A thread keeps its slot when it builds a new runtime (exec builds one per
                // execution); the old runtime's drain task died with it.
                let slot = match current {
                    Some(l) => l.slot,
                    None => {
                        let s = self.next_slot.fetch_add(1, Ordering::Relaxed);
                        if s >= MAX_SLOTS {
                            return Err(fail(format!(
                                "more than {MAX_SLOTS} threads wait for replies on {:?}",
                                self.topic
                            )));
                        }
                        s
                    }
                };
                let next_seq = current.map_or(0, |l| l.next_seq);
                let (tx, rx) = mpsc::channel(QUEUE_PER_THREAD);
                self.registrations
                    .send((slot, tx))
                    .map_err(|_| fail("the reply consumer stopped".into()))?;
                handle.spawn(drain(self.instance, slot, Arc::clone(&self.topic), rx));
                local.insert(
                    self.instance,
                    Local {
                        runtime,
                        slot,
                        next_seq,
                        waiting: HashMap::new(),
                    },
                );
            }
            let l = local
                .get_mut(&self.instance)
                .expect("registered just above");
            if l.waiting.len() >= MAX_WAITING_PER_THREAD {
                return Err(fail(format!(
                    "more than {MAX_WAITING_PER_THREAD} calls of this thread wait for replies"
                )));
            }
            let seq = l.next_seq;
            l.next_seq += 1;
            let (tx, rx) = oneshot::channel();
            l.waiting.insert(seq, tx);
            Ok(Waiter {
                instance: self.instance,
                seq,
                id: correlation_id(self.instance, l.slot, seq),
                rx,
            })
        })
    }
}

impl Drop for Replies {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One call waiting for its reply; leaves the thread's map when dropped (answered, timed
/// out or cancelled), so a reply after that is unmatched.
pub struct Waiter {
    instance: u64,
    seq: u64,
    id: String,
    rx: oneshot::Receiver<Reply>,
}

impl Waiter {
    /// The correlation id the request carries.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The reply, once it arrives.
    pub async fn reply(&mut self) -> Result<Reply, WorkflowError> {
        (&mut self.rx).await.map_err(|_| {
            WorkflowError::new(
                names::TASK_FAILED,
                "the reply consumer stopped before the reply arrived",
            )
        })
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // try_with: a waiter dropped while the thread exits finds the map already gone.
        let _ = LOCAL.try_with(|local| {
            if let Some(l) = local.borrow_mut().get_mut(&self.instance) {
                l.waiting.remove(&self.seq);
            }
        });
    }
}

/// What one thread keeps for one [`Replies`]: its slot and its waiting calls.
struct Local {
    runtime: tokio::runtime::Id,
    slot: u32,
    next_seq: u64,
    waiting: HashMap<u64, oneshot::Sender<Reply>>,
}

thread_local! {
    // By Replies instance: a process may have several reply topics (and tests several
    // processes' worth of them).
    static LOCAL: RefCell<HashMap<u64, Local>> = RefCell::new(HashMap::new());
}

fn correlation_id(instance: u64, slot: u32, seq: u64) -> String {
    format!("{instance:016x}-{slot:x}-{seq:x}")
}

fn parse_correlation_id(id: &[u8]) -> Option<(u64, u32, u64)> {
    let text = std::str::from_utf8(id).ok()?;
    let mut parts = text.split('-');
    let instance = u64::from_str_radix(parts.next()?, 16).ok()?;
    let slot = u32::from_str_radix(parts.next()?, 16).ok()?;
    let seq = u64::from_str_radix(parts.next()?, 16).ok()?;
    parts.next().is_none().then_some((instance, slot, seq))
}

/// Hands the replies of one thread's channel to its waiting calls. Runs on that thread's
/// runtime (a current-thread one), so the thread-local map is the one the calls use.
async fn drain(instance: u64, slot: u32, topic: Arc<str>, mut rx: mpsc::Receiver<Delivery>) {
    while let Some(d) = rx.recv().await {
        let waiting = LOCAL.with(|local| {
            local
                .borrow_mut()
                .get_mut(&instance)
                .and_then(|l| l.waiting.remove(&d.seq))
        });
        let delivered = match waiting {
            Some(tx) => tx.send(d.reply).is_ok(),
            None => false,
        };
        if !delivered {
            UnmatchedReply {
                topic: &topic,
                id: &correlation_id(instance, slot, d.seq),
                why: "no call waits for it (unknown, timed out or cancelled)",
            }
            .emit();
        }
    }
}

/// The consumer thread's side.
struct Reader {
    consumer: BaseConsumer,
    admin: ClientConfig,
    partitions_to_create: i32,
    state: watch::Sender<State>,
    routing: Routing,
}

/// Where the replies read go (apart from the consumer, which a read message borrows).
struct Routing {
    topic: Arc<str>,
    instance: u64,
    registered: crossbeam_channel::Receiver<(u32, mpsc::Sender<Delivery>)>,
    slots: Vec<Option<mpsc::Sender<Delivery>>>,
    /// Per partition, the offset after the last reply read (where a reassignment resumes).
    next_offsets: Vec<i64>,
}

impl Reader {
    fn run(&mut self, stop: &AtomicBool) {
        let mut next_check = Instant::now();
        let mut last_poll_error = None::<Instant>;
        while !stop.load(Ordering::Relaxed) {
            if Instant::now() >= next_check {
                match self.assign() {
                    Ok(()) => {
                        self.state.send_replace(State::Ready);
                        next_check = Instant::now() + RECHECK_PARTITIONS;
                    }
                    Err(why) => {
                        tracing::warn!("stepstream: kafka:invoke replies: {why}");
                        if self.routing.next_offsets.is_empty() {
                            self.state.send_replace(State::Failed(why));
                            next_check = Instant::now() + Duration::from_secs(1);
                        } else {
                            next_check = Instant::now() + RECHECK_PARTITIONS;
                        }
                    }
                }
            }
            if self.routing.next_offsets.is_empty() {
                std::thread::sleep(POLL);
                continue;
            }
            match self.consumer.poll(POLL) {
                // Also when idle, so re-registrations (a thread's new runtime) never pile up.
                None => self.routing.take_registrations(),
                Some(Ok(m)) => self.routing.route(&m),
                // Broker trouble repeats every poll; once every 10 s is enough to see it.
                Some(Err(e))
                    if last_poll_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) =>
                {
                    tracing::warn!(
                        "stepstream: reading replies from {:?} failed: {e}",
                        self.routing.topic
                    );
                    last_poll_error = Some(Instant::now());
                }
                Some(Err(_)) => {}
            }
        }
    }

    /// Assigns partitions not yet assigned: the first time from their high watermarks,
    /// later (the topic grew) from their beginning.
    fn assign(&mut self) -> Result<(), String> {
        let count = match self.partition_count()? {
            Some(n) => n,
            None => {
                self.create_topic()?;
                self.wait_for_partitions()?
            }
        };
        if count > MAX_REPLY_PARTITIONS {
            return Err(too_many_partitions(&self.routing.topic, count));
        }
        if count <= self.routing.next_offsets.len() {
            return Ok(());
        }
        let first = self.routing.next_offsets.is_empty();
        let mut next = self.routing.next_offsets.clone();
        for p in next.len()..count {
            let start = if first {
                let p = i32::try_from(p).expect("at most MAX_REPLY_PARTITIONS");
                let (_, high) = self
                    .consumer
                    .fetch_watermarks(&self.routing.topic, p, Duration::from_secs(10))
                    .map_err(|e| {
                        format!("cannot read the end of {:?}/{p}: {e}", self.routing.topic)
                    })?;
                high
            } else {
                0
            };
            next.push(start);
        }
        let mut tpl = TopicPartitionList::new();
        for (p, &offset) in next.iter().enumerate() {
            let p = i32::try_from(p).expect("at most MAX_REPLY_PARTITIONS");
            tpl.add_partition_offset(&self.routing.topic, p, Offset::Offset(offset))
                .map_err(|e| e.to_string())?;
        }
        self.consumer
            .assign(&tpl)
            .map_err(|e| format!("cannot read reply topic {:?}: {e}", self.routing.topic))?;
        // Only now: an empty list still means "not reading yet" to the loop.
        self.routing.next_offsets = next;
        Ok(())
    }

    /// The topic's partition count, `None` when it does not exist.
    fn partition_count(&self) -> Result<Option<usize>, String> {
        let md = self
            .consumer
            .fetch_metadata(Some(&self.routing.topic), Duration::from_secs(10))
            .map_err(|e| format!("cannot read the metadata of {:?}: {e}", self.routing.topic))?;
        let Some(t) = md
            .topics()
            .iter()
            .find(|t| t.name() == &*self.routing.topic)
        else {
            return Ok(None);
        };
        if t.partitions().is_empty() {
            return Ok(None);
        }
        Ok(Some(t.partitions().len()))
    }

    fn create_topic(&self) -> Result<(), String> {
        let admin: AdminClient<DefaultClientContext> = self
            .admin
            .create()
            .map_err(|e| format!("cannot create an admin client: {e}"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        // -1: the broker's default replication factor.
        let new = NewTopic::new(
            &self.routing.topic,
            self.partitions_to_create,
            TopicReplication::Fixed(-1),
        );
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = rt
            .block_on(admin.create_topics([&new], &opts))
            .map_err(|e| format!("cannot create reply topic {:?}: {e}", self.routing.topic))?;
        for r in results {
            match r {
                Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, e)) => return Err(format!("cannot create reply topic {t:?}: {e}")),
            }
        }
        tracing::info!(
            "stepstream: created reply topic {} ({} partitions)",
            self.routing.topic,
            self.partitions_to_create
        );
        Ok(())
    }

    fn wait_for_partitions(&self) -> Result<usize, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(n) = self.partition_count()? {
                return Ok(n);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "reply topic {:?} has no partitions 10 s after it was created",
                    self.routing.topic
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Routing {
    /// Takes the threads registered since the last look (a thread registers before it
    /// sends its first request, so before any reply for it can be read).
    fn take_registrations(&mut self) {
        while let Ok((s, tx)) = self.registered.try_recv() {
            let s = s as usize;
            if self.slots.len() <= s {
                self.slots.resize_with(s + 1, || None);
            }
            self.slots[s] = Some(tx);
        }
    }

    /// Sends one reply to the thread that waits for it.
    fn route(&mut self, m: &BorrowedMessage<'_>) {
        self.take_registrations();
        if let Some(next) = usize::try_from(m.partition())
            .ok()
            .and_then(|p| self.next_offsets.get_mut(p))
        {
            *next = m.offset() + 1;
        }
        let (mut id, mut error) = (None, None);
        if let Some(headers) = m.headers() {
            for h in headers.iter() {
                match h.key {
                    HEADER_CORRELATION_ID => id = Some(h.value.unwrap_or_default()),
                    HEADER_ERROR => error = Some(h.value.unwrap_or_default()),
                    _ => {}
                }
            }
        }
        let unmatched = |id: &[u8], why: &str| {
            UnmatchedReply {
                topic: &self.topic,
                id: &String::from_utf8_lossy(&id[..id.len().min(64)]),
                why,
            }
            .emit()
        };
        let Some(raw_id) = id else {
            return unmatched(b"", "it has no stepstream-correlation-id header");
        };
        let Some((instance, slot, seq)) = parse_correlation_id(raw_id) else {
            return unmatched(raw_id, "its correlation id is not one stepstream made");
        };
        if instance != self.instance {
            // Another process's (or a previous run's) call: theirs to count.
            return;
        }
        let value = m.payload().unwrap_or_default();
        let reply = if value.len() > MAX_RESPONSE_BYTES {
            Reply::TooLarge(value.len())
        } else {
            match error {
                Some(name) => Reply::Error {
                    name: error_name(name),
                    cause: value.to_vec(),
                },
                None => Reply::Value(value.to_vec()),
            }
        };
        let Some(Some(tx)) = self.slots.get(slot as usize) else {
            return unmatched(raw_id, "no thread of this process has that slot");
        };
        // Blocks only while that thread's queue is full: backpressure, never loss.
        if tx.blocking_send(Delivery { seq, reply }).is_err() {
            self.slots[slot as usize] = None;
            unmatched(raw_id, "the thread that waited for it has stopped");
        }
    }
}

/// The error name a reply gives, as text of at most [`MAX_ERROR_NAME_BYTES`];
/// an empty one is `States.TaskFailed`.
fn error_name(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut end = text.len().min(MAX_ERROR_NAME_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    match text[..end].trim() {
        "" => names::TASK_FAILED.to_string(),
        name => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_round_trip_and_refuse_anything_else() {
        let id = correlation_id(0xdead_beef, 7, 1 << 40);
        assert_eq!(
            parse_correlation_id(id.as_bytes()),
            Some((0xdead_beef, 7, 1 << 40))
        );
        for bad in ["", "x-1-2", "1-2", "1-2-3-4", "1-2-zz", "\u{ff}"] {
            assert_eq!(parse_correlation_id(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn error_names_are_cut_on_a_character_boundary_and_never_empty() {
        assert_eq!(error_name(b"Worker.Busy"), "Worker.Busy");
        assert_eq!(error_name(b"  "), names::TASK_FAILED);
        let long = "é".repeat(MAX_ERROR_NAME_BYTES);
        let cut = error_name(long.as_bytes());
        assert!(cut.len() <= MAX_ERROR_NAME_BYTES && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn a_dropped_waiter_leaves_the_map_and_its_late_reply_is_unmatched() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (state_tx, state) = watch::channel(State::Ready);
            let (registrations, registered) = crossbeam_channel::unbounded();
            let replies = Replies {
                instance: 42,
                topic: Arc::from("t"),
                state,
                registrations,
                next_slot: AtomicU32::new(0),
                stop: Arc::new(AtomicBool::new(false)),
                thread: None,
            };
            let mut answered = replies.waiter().unwrap();
            let late = replies.waiter().unwrap();
            let (slot, tx) = registered.try_recv().expect("the thread registered once");
            assert_eq!(slot, 0);
            assert!(registered.try_recv().is_err());
            assert_eq!(answered.id(), "000000000000002a-0-0");
            let late_seq = late.seq;
            drop(late);
            let before = unmatched_total();
            tx.send(Delivery {
                seq: late_seq,
                reply: Reply::Value(b"1".to_vec()),
            })
            .await
            .unwrap();
            tx.send(Delivery {
                seq: 0,
                reply: Reply::Value(b"2".to_vec()),
            })
            .await
            .unwrap();
            assert_eq!(answered.reply().await.unwrap(), Reply::Value(b"2".to_vec()));
            assert!(unmatched_total() > before);
            drop(state_tx);
        });
    }
}
