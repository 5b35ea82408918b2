//! Kafka client settings (the results/errors producer, the input consumer) and what happens
//! when the broker will not take an output.
//!
//! Every record produced carries a [`Pending`] until the broker has it; its request's offset
//! is then acknowledged. A record the broker refuses must still end in an acknowledgement,
//! or its partition never commits again:
//! - a transient failure (queue full, broker down, timeout) is retried: by librdkafka itself
//!   (`message.timeout.ms = 0`), by the shard for a full queue, or by the rescue producer
//!   when a delivery report says it timed out;
//! - a permanent one (too large, invalid record, not authorized, any other code) replaces
//!   the record with a small dead letter (`stepstream.OutputRejected`) on the errors topic,
//!   sent by the rescue producer; when the broker reported it (a delivery report), the
//!   record first gets one more try alone in a batch there, since the broker refuses whole
//!   batches for one record's sake;
//! - if even that dead letter cannot be written, the offset moves on anyway, loudly;
//! - a fatal producer error is no record's fault: outputs are held unacknowledged and the
//!   pipeline stops with an error ([`fatal_error`]), so that a supervisor restarts it and the
//!   restart redoes them from the committed offsets (a fatal idempotent producer takes no
//!   record ever again: waiting would be a stall that only a person could end).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::ClientContext;

use super::result::{self, Source};
use crate::config::Config;

/// Error name of the dead letter that replaces an output the broker refused.
pub const OUTPUT_REJECTED: &str = "stepstream.OutputRejected";

/// Largest key a replacement dead letter keeps (a larger one may be why it was refused).
const MAX_REPLACEMENT_KEY_BYTES: usize = 1024;

/// Refused records waiting for the rescue thread.
const RESCUE_CHANNEL: usize = 64;

/// How long a rescue waits for room in the rescue queue before the offset moves on without it.
const RESCUE_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// How long the rescue producer may take to deliver what it holds once the pipeline stops.
const RESCUE_FLUSH: Duration = Duration::from_secs(5);

/// How far a record has come through the rescue steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// As the shard produced it.
    First,
    /// Sent again on the rescue producer, alone in its batch.
    Again,
    /// The dead letter that replaces a refused record: the last attempt.
    Replacement,
}

/// What travels with a produced record until the broker acknowledges it.
pub struct Pending {
    /// The request the record answers.
    pub source: Source,
    /// The shard's in-flight counter, released on acknowledgement.
    pub in_flight: Arc<AtomicUsize>,
    stage: Stage,
}

impl Pending {
    /// The companion of a record the shard is about to produce.
    pub fn new(source: Source, in_flight: Arc<AtomicUsize>) -> Box<Pending> {
        Box::new(Pending {
            source,
            in_flight,
            stage: Stage::First,
        })
    }
}

/// Whether a produce error may go away by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Retry later: the same record will be accepted once the broker or queue recovers.
    Transient,
    /// Retrying the same record cannot succeed.
    Permanent,
    /// The producer is being destroyed (shutdown): nothing to do, the request is redelivered.
    Purged,
    /// The producer itself cannot go on (a fatal idempotence error): no record is refused,
    /// the producer is. Outputs are neither acknowledged nor replaced, so a restart redoes
    /// them; replacing every output with a dead letter would lose the whole stream.
    Fatal,
}

/// Sorts a produce error into [`Failure`]s. Anything not known to be transient is
/// permanent: an unbounded retry of a permanent error is a stalled partition.
pub fn classify(e: &KafkaError) -> Failure {
    let KafkaError::MessageProduction(code) = e else {
        return Failure::Permanent;
    };
    use RDKafkaErrorCode as C;
    match code {
        C::PurgeQueue | C::PurgeInflight => Failure::Purged,
        C::Fatal => Failure::Fatal,
        C::QueueFull
        | C::MessageTimedOut
        | C::OperationTimedOut
        | C::TimedOutQueue
        | C::BrokerTransportFailure
        | C::AllBrokersDown
        | C::Resolve
        | C::Retry
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::RequestTimedOut
        | C::BrokerNotAvailable
        | C::NetworkException
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::KafkaStorageError
        | C::FencedLeaderEpoch
        | C::UnknownLeaderEpoch
        | C::ThrottlingQuotaExceeded => Failure::Transient,
        _ => Failure::Permanent,
    }
}

/// Where dead letters go and how much of an original record they carry.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    /// The errors topic.
    pub topic: String,
    /// `[output] dead_letter_max_original_bytes`.
    pub max_original: usize,
}

/// What the sink tells an operator about: each [`SinkEvent::emit`] writes one log line
/// (at most [`LOG_LINES_PER_SECOND`] per kind per second) and bumps its counter.
#[derive(Debug)]
pub enum SinkEvent<'a> {
    /// Producing failed transiently; the record is sent again after `backoff`.
    ProduceRetried {
        /// Target topic.
        topic: &'a str,
        /// The error.
        error: &'a KafkaError,
        /// Wait before the next try.
        backoff: Duration,
    },
    /// The broker refused a record for good; a dead letter replaces it.
    OutputRejected {
        /// The request it answered.
        source: &'a Source,
        /// The topic that refused it.
        topic: &'a str,
        /// Its size (key and value), bytes.
        size: usize,
        /// The error.
        error: &'a KafkaError,
    },
    /// The producer hit a fatal error: nothing it is given is acknowledged any more.
    ProducerFatal {
        /// The error.
        error: &'a KafkaError,
    },
    /// Even the replacement dead letter could not be written: the offset moves on without it.
    OutputLost {
        /// The request it answered.
        source: &'a Source,
        /// Why.
        reason: &'a str,
    },
}

/// Log lines per event kind per second; the rest are counted, not printed.
pub const LOG_LINES_PER_SECOND: u64 = 10;

/// The process's sink counters (kept in [`crate::metrics`], which publishes them).
pub use crate::metrics::SINK_COUNTERS as COUNTERS;

/// One rate limit per event kind: (second of the window, lines printed in it).
struct RateLimit {
    window: AtomicU64,
    printed: AtomicU64,
}

impl RateLimit {
    const fn new() -> RateLimit {
        RateLimit {
            window: AtomicU64::new(0),
            printed: AtomicU64::new(0),
        }
    }

    fn allow(&self) -> bool {
        static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let second = EPOCH.get_or_init(Instant::now).elapsed().as_secs() + 1;
        if self.window.swap(second, Ordering::Relaxed) != second {
            self.printed.store(0, Ordering::Relaxed);
        }
        self.printed.fetch_add(1, Ordering::Relaxed) < LOG_LINES_PER_SECOND
    }
}

static RETRIED_LOG: RateLimit = RateLimit::new();
static REJECTED_LOG: RateLimit = RateLimit::new();
static LOST_LOG: RateLimit = RateLimit::new();
static FATAL_LOG: RateLimit = RateLimit::new();

impl SinkEvent<'_> {
    /// Counts the event and logs it (rate-limited).
    pub fn emit(&self) {
        match self {
            SinkEvent::ProduceRetried {
                topic,
                error,
                backoff,
            } => {
                COUNTERS.produce_retried.fetch_add(1, Ordering::Relaxed);
                // A full queue is ordinary backpressure, not news.
                if !matches!(
                    error,
                    KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
                ) && RETRIED_LOG.allow()
                {
                    tracing::warn!(
                        "stepstream: producing to {topic} failed ({error}); retrying in {backoff:?}"
                    );
                }
            }
            SinkEvent::OutputRejected {
                source,
                topic,
                size,
                error,
            } => {
                COUNTERS.output_rejected.fetch_add(1, Ordering::Relaxed);
                crate::metrics::dead_lettered(OUTPUT_REJECTED);
                if REJECTED_LOG.allow() {
                    tracing::error!(
                        "stepstream: {topic} refused the {size}-byte output for {}/{}@{} ({error}); \
                         a {OUTPUT_REJECTED} dead letter replaces it",
                        source.topic, source.partition, source.offset
                    );
                }
            }
            SinkEvent::ProducerFatal { error } => {
                COUNTERS.producer_fatal.fetch_add(1, Ordering::Relaxed);
                if FATAL_LOG.allow() {
                    tracing::error!(
                        "stepstream: the producer cannot go on ({error}); outputs are no \
                         longer acknowledged, so nothing is committed past them: stepstream stops"
                    );
                }
            }
            SinkEvent::OutputLost { source, reason } => {
                COUNTERS.output_lost.fetch_add(1, Ordering::Relaxed);
                if LOST_LOG.allow() {
                    tracing::error!(
                        "stepstream: NO OUTPUT AT ALL for {}/{}@{}: {reason}; \
                         its offset is committed anyway so the partition goes on",
                        source.topic,
                        source.partition,
                        source.offset
                    );
                }
            }
        }
    }
}

/// A record handed to the rescue producer.
struct Rescue {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    pending: Box<Pending>,
}

/// Builds the dead letter that replaces a refused record, as a rescue.
fn replacement(
    dead_letters: &DeadLetters,
    topic: &str,
    key: Option<&[u8]>,
    payload: &[u8],
    error: &KafkaError,
    mut pending: Box<Pending>,
) -> Rescue {
    let size = payload.len() + key.map_or(0, <[u8]>::len);
    SinkEvent::OutputRejected {
        source: &pending.source,
        topic,
        size,
        error,
    }
    .emit();
    let key_kept = key.filter(|k| k.len() <= MAX_REPLACEMENT_KEY_BYTES);
    let mut cause = format!(
        "the broker or producer refused the {} bytes written to {topic} for this request ({error})",
        payload.len()
    );
    if let (Some(k), None) = (key, key_kept) {
        cause.push_str(&format!(
            "; its {}-byte key is dropped from this dead letter",
            k.len()
        ));
    }
    let code = match error {
        KafkaError::MessageProduction(c) => format!("{c:?}"),
        other => other.to_string(),
    };
    let payload = result::dead_letter_with(
        OUTPUT_REJECTED,
        &cause,
        &pending.source,
        Some(payload),
        dead_letters.max_original,
        &[("rejectedTopic", topic), ("kafkaError", &code)],
    );
    pending.stage = Stage::Replacement;
    Rescue {
        topic: dead_letters.topic.clone(),
        key: key_kept.map(<[u8]>::to_vec),
        payload,
        pending,
    }
}

/// The end of a record's journey: its request's offset may move on.
fn acknowledge(acks: &crossbeam_channel::Sender<Source>, pending: Pending) {
    // The poller may be gone at shutdown; then nothing is committed anyway.
    let _ = acks.send(pending.source);
    pending.in_flight.fetch_sub(1, Ordering::Relaxed);
}

/// Acknowledges requests straight from librdkafka's delivery callback, so offsets move
/// as soon as the broker has a result, whatever the shards are busy with; hands refused
/// records to the rescue producer.
pub struct AckContext {
    acks: crossbeam_channel::Sender<Source>,
    dead_letters: DeadLetters,
    rescues: crossbeam_channel::Sender<Rescue>,
}

impl AckContext {
    /// Where dead letters go and how much they carry.
    pub fn dead_letters(&self) -> &DeadLetters {
        &self.dead_letters
    }

    /// Replaces a record the producer refused at enqueue time (`send` returned `error`)
    /// with a dead letter, so that its offset moves on.
    pub fn reject(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        error: &KafkaError,
        pending: Box<Pending>,
    ) {
        let r = replacement(&self.dead_letters, topic, key, payload, error, pending);
        self.rescue(r);
    }

    fn rescue(&self, r: Rescue) {
        if let Err(e) = self.rescues.send_timeout(r, RESCUE_QUEUE_WAIT) {
            let r = e.into_inner();
            SinkEvent::OutputLost {
                source: &r.pending.source,
                reason: "the rescue queue stayed full (or is closed)",
            }
            .emit();
            acknowledge(&self.acks, *r.pending);
        }
    }
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        let (e, msg) = match result {
            Ok(_) => return acknowledge(&self.acks, *pending),
            Err((e, msg)) => (e, msg),
        };
        let (topic, key, payload) = (msg.topic(), msg.key(), msg.payload().unwrap_or_default());
        match classify(e) {
            // The producer is going away: unacknowledged, so the request is redelivered.
            Failure::Purged => {
                pending.in_flight.fetch_sub(1, Ordering::Relaxed);
            }
            Failure::Fatal => {
                SinkEvent::ProducerFatal { error: e }.emit();
                pending.in_flight.fetch_sub(1, Ordering::Relaxed);
            }
            // Only with a finite message.timeout.ms: the rescue producer never times out.
            // A refused batch may be another record's fault: one more try, alone.
            Failure::Transient | Failure::Permanent => {
                let mut pending = pending;
                pending.stage = Stage::Again;
                self.rescue(Rescue {
                    topic: topic.to_string(),
                    key: key.map(<[u8]>::to_vec),
                    payload: payload.to_vec(),
                    pending,
                });
            }
        }
    }
}

/// The rescue producer's callbacks: acknowledge, or queue the replacement dead letter.
struct RescueContext {
    acks: crossbeam_channel::Sender<Source>,
    dead_letters: DeadLetters,
    /// Replacements made in callbacks, sent by the rescue thread on its next turn.
    next: Mutex<VecDeque<Rescue>>,
}

impl ClientContext for RescueContext {}

impl ProducerContext for RescueContext {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        let (e, msg) = match result {
            Ok(_) => return acknowledge(&self.acks, *pending),
            Err((e, msg)) => (e, msg),
        };
        match classify(e) {
            Failure::Purged => {
                pending.in_flight.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            Failure::Fatal => {
                SinkEvent::ProducerFatal { error: e }.emit();
                pending.in_flight.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            Failure::Transient | Failure::Permanent => {}
        }
        self.failed(
            msg.topic(),
            msg.key(),
            msg.payload().unwrap_or_default(),
            e,
            pending,
        );
    }
}

impl RescueContext {
    /// A rescue attempt failed: the record is replaced, or a replacement is given up on.
    fn failed(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        e: &KafkaError,
        pending: Box<Pending>,
    ) {
        if pending.stage == Stage::Replacement {
            let reason = format!("its {OUTPUT_REJECTED} dead letter was refused too ({e})");
            SinkEvent::OutputLost {
                source: &pending.source,
                reason: &reason,
            }
            .emit();
            return acknowledge(&self.acks, *pending);
        }
        let r = replacement(&self.dead_letters, topic, key, payload, e, pending);
        self.next.lock().expect("rescue queue lock").push_back(r);
    }
}

/// Runs the rescue producer until the main producer (holding the other end of `rx`) is gone.
fn rescue_loop(producer: BaseProducer<RescueContext>, rx: crossbeam_channel::Receiver<Rescue>) {
    let mut closed_at: Option<Instant> = None;
    loop {
        let next = producer
            .context()
            .next
            .lock()
            .expect("rescue queue lock")
            .pop_front();
        let r = match (next, closed_at) {
            (Some(r), _) => Some(r),
            (None, None) => match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(r) => Some(r),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    closed_at = Some(Instant::now());
                    None
                }
            },
            (None, Some(at)) => {
                // Bounded: what is not delivered by then is redelivered after a restart.
                if producer.in_flight_count() == 0 || at.elapsed() >= RESCUE_FLUSH {
                    return;
                }
                producer.poll(Duration::from_millis(20));
                None
            }
        };
        if let Some(r) = r {
            send_rescue(&producer, r);
        }
        producer.poll(Duration::ZERO);
    }
}

fn send_rescue(producer: &BaseProducer<RescueContext>, r: Rescue) {
    let deadline = Instant::now() + RESCUE_QUEUE_WAIT;
    let mut pending = r.pending;
    loop {
        let mut record = BaseRecord::<[u8], [u8], Box<Pending>>::with_opaque_to(&r.topic, pending)
            .payload(&r.payload);
        if let Some(k) = &r.key {
            record = record.key(k);
        }
        match producer.send(record) {
            Ok(()) => return,
            Err((e, record)) => {
                pending = record.delivery_opaque;
                match classify(&e) {
                    Failure::Transient if Instant::now() < deadline => {
                        producer.poll(Duration::from_millis(50));
                        continue;
                    }
                    Failure::Fatal | Failure::Purged => {
                        SinkEvent::ProducerFatal { error: &e }.emit();
                        pending.in_flight.fetch_sub(1, Ordering::Relaxed);
                        return;
                    }
                    Failure::Transient | Failure::Permanent => {}
                }
                let key = r.key.as_deref();
                return producer
                    .context()
                    .failed(&r.topic, key, &r.payload, &e, pending);
            }
        }
    }
}

/// The pipeline's producer.
pub type Sink = ThreadedProducer<AckContext>;

/// The fatal error that ended `producer`, if any. The poller stops on it: after a fatal
/// error (e.g. an idempotence sequence lost in a broker restart) librdkafka refuses every
/// record, so only a new process (or producer) can deliver the held outputs.
pub fn fatal_error(producer: &Sink) -> Option<String> {
    producer
        .client()
        .fatal_error()
        .map(|(code, reason)| format!("{code:?}: {reason}"))
}

/// Settings every client gets: brokers plus the user's pass-through properties.
pub fn base_config(cfg: &Config, brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    c.set("client.id", "stepstream");
    for (k, v) in &cfg.kafka.properties {
        c.set(k, v);
    }
    c
}

/// The producer for results and dead letters: idempotent, acks=all, batched, lz4. It starts
/// a rescue producer (its own thread, one record per batch) for the records it is refused.
pub fn producer(
    cfg: &Config,
    brokers: &str,
    acks: crossbeam_channel::Sender<Source>,
) -> KafkaResult<Sink> {
    let dead_letters = DeadLetters {
        topic: cfg.topics.errors.clone(),
        max_original: cfg.output.dead_letter_max_original_bytes,
    };
    let mut r = ClientConfig::new();
    r.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.kbytes", "65536");
    for (k, v) in base_config(cfg, brokers).config_map() {
        r.set(k, v);
    }
    // Not the user's to change: the point of a rescue is a record judged alone, retried
    // through broker outages.
    r.set("client.id", "stepstream-rescue")
        .set("linger.ms", "0")
        .set("batch.num.messages", "1")
        .set("message.timeout.ms", "0");
    let rescuer: BaseProducer<RescueContext> = r.create_with_context(RescueContext {
        acks: acks.clone(),
        dead_letters: dead_letters.clone(),
        next: Mutex::new(VecDeque::new()),
    })?;
    // Small: a rescue may hold a whole refused record (up to message.max.bytes), and the
    // rescue thread empties this quickly into its own (64 MiB) queue.
    let (rescues, rx) = crossbeam_channel::bounded(RESCUE_CHANNEL);
    std::thread::Builder::new()
        .name("stepstream-rescue".into())
        .spawn(move || rescue_loop(rescuer, rx))
        .map_err(|e| KafkaError::ClientCreation(format!("cannot start the rescue thread: {e}")))?;

    let mut c = ClientConfig::new();
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "2")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.kbytes", "262144")
        // Never give up on a result: a broker outage delays it, it does not drop it.
        .set("message.timeout.ms", "0");
    // The user's properties win over our defaults.
    for (k, v) in base_config(cfg, brokers).config_map() {
        c.set(k, v);
    }
    c.create_with_context(AckContext {
        acks,
        dead_letters,
        rescues,
    })
}

/// The consumer of the input topics: manual commits of safe watermarks only.
pub fn consumer_config(cfg: &Config, brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("group.id", &cfg.kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", &cfg.kafka.auto_offset_reset)
        .set("enable.partition.eof", "false")
        // Keep the prefetch small: memory must stay bounded when shards are paused.
        .set("queued.max.messages.kbytes", "16384")
        // Incremental rebalancing: members keep their partitions (and in-flight work) when
        // another member joins or leaves.
        .set("partition.assignment.strategy", "cooperative-sticky")
        // A crashed member's partitions move on after 10 s instead of librdkafka's 45 s.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "2000");
    for (k, v) in base_config(cfg, brokers).config_map() {
        c.set(k, v);
    }
    for (k, v) in &cfg.kafka.consumer_properties {
        c.set(k, v);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: RDKafkaErrorCode) -> KafkaError {
        KafkaError::MessageProduction(c)
    }

    #[test]
    fn queue_full_and_broker_outages_are_transient() {
        for c in [
            RDKafkaErrorCode::QueueFull,
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::BrokerNotAvailable,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::RequestTimedOut,
        ] {
            assert_eq!(classify(&code(c)), Failure::Transient, "{c:?}");
        }
    }

    #[test]
    fn size_invalid_record_authorization_and_unknown_codes_are_permanent() {
        for c in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::MessageBatchTooLarge,
            RDKafkaErrorCode::InvalidRecord,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::ClusterAuthorizationFailed,
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::PolicyViolation,
        ] {
            assert_eq!(classify(&code(c)), Failure::Permanent, "{c:?}");
        }
        assert_eq!(classify(&KafkaError::Canceled), Failure::Permanent);
    }

    #[test]
    fn a_fatal_producer_error_is_not_blamed_on_the_record() {
        assert_eq!(classify(&code(RDKafkaErrorCode::Fatal)), Failure::Fatal);
    }

    #[test]
    fn purges_at_shutdown_are_neither_retried_nor_replaced() {
        assert_eq!(
            classify(&code(RDKafkaErrorCode::PurgeQueue)),
            Failure::Purged
        );
        assert_eq!(
            classify(&code(RDKafkaErrorCode::PurgeInflight)),
            Failure::Purged
        );
    }

    fn pending() -> (Box<Pending>, Arc<AtomicUsize>) {
        let in_flight = Arc::new(AtomicUsize::new(1));
        let source = Source {
            topic: "in".into(),
            partition: 2,
            offset: 9,
        };
        (Pending::new(source, Arc::clone(&in_flight)), in_flight)
    }

    #[test]
    fn a_refused_output_becomes_a_small_dead_letter_that_names_why() {
        let dl = DeadLetters {
            topic: "errs".into(),
            max_original: 1000,
        };
        let (p, _) = pending();
        let before = COUNTERS.output_rejected.load(Ordering::Relaxed);
        let huge_key = vec![b'k'; 5000];
        let r = replacement(
            &dl,
            "results",
            Some(&huge_key),
            &vec![b'x'; 2_000_000],
            &code(RDKafkaErrorCode::MessageSizeTooLarge),
            p,
        );
        assert!(COUNTERS.output_rejected.load(Ordering::Relaxed) > before);
        assert_eq!(r.topic, "errs");
        assert_eq!(r.key, None, "a key over 1 KiB is dropped");
        assert_eq!(r.pending.stage, Stage::Replacement);
        assert!(r.payload.len() <= 1000 + result::DEAD_LETTER_ENVELOPE_BYTES);
        let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
        assert_eq!(v["error"], OUTPUT_REJECTED);
        assert_eq!(v["kafkaError"], "MessageSizeTooLarge");
        assert_eq!(v["rejectedTopic"], "results");
        assert_eq!(v["originalSize"], 2_000_000);
        assert_eq!(v["originalTruncated"], true);
        assert_eq!(v["source"]["offset"], 9);
    }

    #[test]
    fn a_refused_replacement_still_acknowledges_its_request() {
        let (acks, rx) = crossbeam_channel::unbounded();
        let ctx = RescueContext {
            acks,
            dead_letters: DeadLetters {
                topic: "errs".into(),
                max_original: 10,
            },
            next: Mutex::new(VecDeque::new()),
        };
        let (mut p, in_flight) = pending();
        p.stage = Stage::Replacement;
        let lost = COUNTERS.output_lost.load(Ordering::Relaxed);
        ctx.failed(
            "errs",
            None,
            b"{}",
            &code(RDKafkaErrorCode::TopicAuthorizationFailed),
            p,
        );
        assert_eq!(rx.try_recv().unwrap().offset, 9);
        assert_eq!(in_flight.load(Ordering::Relaxed), 0);
        assert!(COUNTERS.output_lost.load(Ordering::Relaxed) > lost);
        assert!(ctx.next.lock().unwrap().is_empty());
    }

    #[test]
    fn a_record_refused_again_alone_is_replaced_not_acknowledged() {
        let (acks, rx) = crossbeam_channel::unbounded();
        let ctx = RescueContext {
            acks,
            dead_letters: DeadLetters {
                topic: "errs".into(),
                max_original: 10,
            },
            next: Mutex::new(VecDeque::new()),
        };
        let (mut p, in_flight) = pending();
        p.stage = Stage::Again;
        ctx.failed(
            "results",
            Some(b"k"),
            b"{\"big\":true}",
            &code(RDKafkaErrorCode::MessageSizeTooLarge),
            p,
        );
        assert!(
            rx.try_recv().is_err(),
            "not acknowledged before the replacement lands"
        );
        assert_eq!(in_flight.load(Ordering::Relaxed), 1);
        let next = ctx.next.lock().unwrap().pop_front().unwrap();
        assert_eq!(
            (next.topic.as_str(), next.key.as_deref()),
            ("errs", Some(&b"k"[..]))
        );
    }

    // A broker that lost the producer's sequence (a restart) makes the idempotent producer
    // fatal: it must be seen, since nothing it holds will ever be acknowledged.
    #[test]
    fn a_producer_made_fatal_by_the_broker_is_reported() {
        use rdkafka::mocking::MockCluster;
        use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

        let cluster = MockCluster::new(1).expect("a mock cluster");
        cluster.create_topic("results", 1, 1).expect("a topic");
        let (acks, rx) = crossbeam_channel::unbounded();
        let sink = producer(&Config::default(), &cluster.bootstrap_servers(), acks)
            .expect("the pipeline's producer");
        let send = |offset: i64, in_flight: &Arc<AtomicUsize>| {
            let source = Source {
                topic: "in".into(),
                partition: 0,
                offset,
            };
            in_flight.fetch_add(1, Ordering::Relaxed);
            let record =
                BaseRecord::with_opaque_to("results", Pending::new(source, Arc::clone(in_flight)))
                    .key("k")
                    .payload("{}");
            sink.send::<str, str>(record)
                .map_err(|(e, _)| e)
                .expect("queued");
        };
        let in_flight = Arc::new(AtomicUsize::new(0));
        send(0, &in_flight);
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the first record is acknowledged");
        assert_eq!(first.offset, 0);
        assert_eq!(fatal_error(&sink), None);

        cluster.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
        );
        send(1, &in_flight);
        let deadline = Instant::now() + Duration::from_secs(30);
        while fatal_error(&sink).is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let fatal = fatal_error(&sink).expect("the producer reports its fatal error");
        assert!(fatal.contains("OutOfOrderSequence"), "{fatal}");
        // The refused record itself carries the broker's code, not a fatal one, so the
        // rescue producer (another client) delivers it.
        let rescued = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the refused record is rescued");
        assert_eq!(rescued.offset, 1);
        // But the producer refuses every later output: without a restart the shards fill up
        // and their partitions stay paused.
        let record = BaseRecord::<str, str, Box<Pending>>::with_opaque_to(
            "results",
            Pending::new(rescued, Arc::clone(&in_flight)),
        )
        .payload("{}");
        let refused = sink.send(record).map(|_| ()).map_err(|(e, _)| e);
        assert!(
            matches!(refused.as_ref().map_err(classify), Err(Failure::Fatal)),
            "{refused:?}"
        );
    }
}
