//! The Kafka source: a consumer-group poller that routes records to shards, pauses the
//! partitions of full shards, and commits watermarks (also when partitions are revoked).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::acked;
use super::intake::{Intake, KafkaJob, NestingHeaders};
use super::offsets::{Commit, Offsets};
use super::request::{HEADER_EXECUTION_NAME, HEADER_STATE_MACHINE};
use super::result::Source;
use crate::shard::router::shard_for;
use crate::shard::ShardHandle;
use crate::tasks::nested::{HEADER_DEPTH, HEADER_EXECUTION_ID};

/// Consumer callbacks: commit what is safe before partitions are taken away.
pub struct SourceContext {
    offsets: Arc<Mutex<Offsets>>,
    acks: crossbeam_channel::Receiver<Source>,
    assignment_epoch: AtomicU64,
    revoke_grace: Duration,
    assigned: Arc<AtomicBool>,
    /// The metadata size per partition commits may use.
    metadata_budget: usize,
}

impl SourceContext {
    /// A context sharing the poller's offset tracker and ack queue; on revocation it
    /// waits up to `revoke_grace` for the revoked partitions' executions. Commits carry at
    /// most `metadata_budget` characters of metadata per partition.
    pub fn new(
        offsets: Arc<Mutex<Offsets>>,
        acks: crossbeam_channel::Receiver<Source>,
        revoke_grace: Duration,
        assigned: Arc<AtomicBool>,
        metadata_budget: usize,
    ) -> Self {
        SourceContext {
            offsets,
            acks,
            assignment_epoch: AtomicU64::new(0),
            revoke_grace,
            assigned,
            metadata_budget,
        }
    }
}

impl ClientContext for SourceContext {}

impl SourceContext {
    fn budget(&self) -> usize {
        self.metadata_budget
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        // Executions of these partitions usually finish within moments: waiting for them
        // here lets the commit cover them, so the next owner does not run them again.
        let deadline = Instant::now() + self.revoke_grace;
        loop {
            let mut offsets = self.offsets.lock().expect("offset tracker lock");
            drain_acks(&self.acks, &mut offsets);
            let busy = tpl
                .elements()
                .iter()
                .any(|e| offsets.pending_in(e.topic(), e.partition()) > 0);
            drop(offsets);
            if !busy || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut offsets = self.offsets.lock().expect("offset tracker lock");
        drain_acks(&self.acks, &mut offsets);
        let mut moves = Vec::new();
        for e in tpl.elements() {
            if let Some((w, meta)) = offsets.position(e.topic(), e.partition(), self.budget()) {
                moves.push(((e.topic().to_string(), e.partition()), w, meta));
            }
            offsets.forget(e.topic(), e.partition());
        }
        // Not held across the commit: its callback takes the tracker too.
        drop(offsets);
        let commit = commit_list(&moves);
        if commit.count() > 0 {
            // Synchronous: the next owner must start from here, not from an older commit.
            let started = Instant::now();
            let committed = consumer.commit(&commit, CommitMode::Sync);
            crate::metrics::committed(true, started.elapsed(), committed.is_ok());
            if let Err(e) = committed {
                tracing::warn!("stepstream: committing revoked partitions failed: {e}");
            }
        }
        tracing::info!("stepstream: partitions revoked: {}", describe(tpl));
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            tracing::info!("stepstream: partitions assigned: {}", describe(tpl));
            if tpl.count() > 0 {
                // librdkafka keeps a partition's pause through a revoke and a later
                // assignment, while the poller forgets it (the shard's flag is reset when the
                // assignment changes). A partition paused by backpressure when the group
                // session was lost (a broker restart) would come back paused for good, so
                // every partition starts unpaused here and the poller pauses it again if
                // its shard is still full.
                if let Err(e) = consumer.resume(tpl) {
                    tracing::warn!(
                        "stepstream: resuming newly assigned partitions failed: {e}; they may stay paused"
                    );
                }
                self.resume(consumer, tpl);
                self.assigned.store(true, Ordering::Relaxed);
            }
        }
        self.assignment_epoch.fetch_add(1, Ordering::Relaxed);
    }
}

impl SourceContext {
    /// Reads the committed positions of newly assigned partitions and the offsets above them
    /// that a previous owner recorded as acknowledged, so those are not run again.
    fn resume(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        // Before any record of these partitions is polled: this runs inside the poll call
        // that delivers the assignment.
        let committed = match consumer.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(c) => c,
            Err(e) => {
                // Without the metadata the partitions simply replay from the commit.
                tracing::warn!("stepstream: reading committed offsets failed ({e}); replaying from the committed positions");
                let mut offsets = self.offsets.lock().expect("offset tracker lock");
                for e in tpl.elements() {
                    offsets.resume(e.topic(), e.partition(), Vec::new());
                }
                return;
            }
        };
        let metas = raw_metadata(&committed);
        let mut offsets = self.offsets.lock().expect("offset tracker lock");
        for (i, e) in committed.elements().iter().enumerate() {
            let ranges = match (e.offset(), metas.get(i)) {
                (Offset::Offset(at), Some(Some(meta))) => acked::decode(meta, at),
                _ => Vec::new(),
            };
            let skip: i64 = ranges.iter().map(|r| r.end - r.start).sum();
            if skip > 0 {
                tracing::info!(
                    "stepstream: {}/{} resumes at {:?}; {skip} offsets above it already have results and are skipped",
                    e.topic(),
                    e.partition(),
                    e.offset()
                );
            }
            offsets.resume(e.topic(), e.partition(), ranges);
        }
    }
}

/// The metadata bytes of each element of `tpl`, in order (`None` when absent or too long).
///
/// Read from librdkafka's list directly: rdkafka's `metadata()` panics on bytes that are
/// not UTF-8, and metadata is written by whatever last committed for the group.
fn raw_metadata(tpl: &TopicPartitionList) -> Vec<Option<Vec<u8>>> {
    // SAFETY: `tpl` owns a valid rd_kafka_topic_partition_list_t for as long as it lives;
    // `elems` points at `cnt` initialised elements, each with `metadata_size` readable bytes
    // at `metadata` (or a null pointer), and nothing mutates the list while we read it.
    unsafe {
        let list = &*tpl.ptr();
        let cnt = usize::try_from(list.cnt).unwrap_or(0);
        (0..cnt)
            .map(|i| {
                let e = &*list.elems.add(i);
                if e.metadata.is_null() || e.metadata_size == 0 || e.metadata_size > 8192 {
                    return None;
                }
                Some(std::slice::from_raw_parts(e.metadata.cast::<u8>(), e.metadata_size).to_vec())
            })
            .collect()
    }
}

/// A partition list of commits with their metadata.
fn commit_list(moves: &[Commit]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset, meta) in moves {
        let mut e = tpl.add_partition(topic, *partition);
        if e.set_offset(Offset::Offset(*offset)).is_ok() && !meta.is_empty() {
            e.set_metadata(meta);
        }
    }
    tpl
}

fn describe(tpl: &TopicPartitionList) -> String {
    let parts: Vec<String> = tpl
        .elements()
        .iter()
        .map(|e| format!("{}/{}", e.topic(), e.partition()))
        .collect();
    if parts.is_empty() {
        "(none)".into()
    } else {
        parts.join(" ")
    }
}

fn drain_acks(acks: &crossbeam_channel::Receiver<Source>, offsets: &mut Offsets) {
    while let Ok(s) = acks.try_recv() {
        offsets.acked(&s.topic, s.partition, s.offset);
    }
}

/// The poller's settings.
pub struct SourceSettings {
    /// Input topics bound to one state machine.
    pub bindings: HashMap<String, Arc<str>>,
    /// In-flight limit per shard; a shard at the limit has its partitions paused.
    pub max_in_flight: usize,
    /// How often watermarks are committed.
    pub commit_interval: Duration,
    /// How long shutdown waits for in-flight executions.
    pub shutdown_grace: Duration,
    /// Offsets read from an embedded broker, to catch records it dropped unread (`None` on Kafka).
    pub embedded_reads: Option<super::embedded::ReadTracker>,
    /// The results producer, watched for a fatal error: polling stops on one.
    pub producer: Option<super::sink::Sink>,
    /// What every job handed to a shard shares.
    pub intake: Arc<Intake>,
}

/// Polls until `stop` is set, then drains and commits. Returns when shards hold nothing
/// (or the grace period ran out).
pub fn run(
    consumer: &BaseConsumer<SourceContext>,
    shards: &[ShardHandle],
    offsets: &Arc<Mutex<Offsets>>,
    settings: &SourceSettings,
    stop: &AtomicBool,
) {
    let ctx = consumer.context();
    let mut topics = Topics::default();
    let mut paused = vec![false; shards.len()];
    let mut seen_epoch = 0;
    let mut last_commit = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Poll a batch, then do the bookkeeping once.
        for _ in 0..1024 {
            let Some(msg) = consumer.poll(Duration::from_millis(if paused.iter().all(|p| *p) {
                20
            } else {
                5
            })) else {
                break;
            };
            match msg {
                Ok(m) => {
                    let Some(shard) = dispatch(&m, shards, offsets, settings, &mut topics) else {
                        continue;
                    };
                    // Pause as soon as a shard fills, not after the batch: the limit must hold.
                    if !paused[shard] && shards[shard].in_flight() >= settings.max_in_flight {
                        backpressure(consumer, shards, &mut paused, settings.max_in_flight, false);
                    }
                }
                Err(e) => tracing::warn!("stepstream: consumer error: {e}"),
            }
            // A new assignment starts unpaused: settle the pause flags before the next record.
            if stop.load(Ordering::Relaxed)
                || ctx.assignment_epoch.load(Ordering::Relaxed) != seen_epoch
            {
                break;
            }
        }
        drain_acks(&ctx.acks, &mut offsets.lock().expect("offset tracker lock"));
        let epoch = ctx.assignment_epoch.load(Ordering::Relaxed);
        backpressure(
            consumer,
            shards,
            &mut paused,
            settings.max_in_flight,
            epoch != seen_epoch,
        );
        seen_epoch = epoch;
        if last_commit.elapsed() >= settings.commit_interval {
            commit(consumer, offsets, CommitMode::Async);
            last_commit = Instant::now();
        }
        if let Some(reason) = settings
            .producer
            .as_ref()
            .and_then(super::sink::fatal_error)
        {
            tracing::error!("stepstream: the producer cannot go on ({reason}); stopping, so that a supervisor restarts stepstream from the committed offsets");
            break;
        }
    }

    // Shutdown: no new work; let in-flight executions finish, keep the group session alive.
    if let Ok(assigned) = consumer.assignment() {
        let _ = consumer.pause(&assigned);
    }
    let deadline = Instant::now() + settings.shutdown_grace;
    while shards.iter().any(|s| s.in_flight() > 0) && Instant::now() < deadline {
        // Records already fetched are not dispatched: their offsets stay uncommitted.
        let _ = consumer.poll(Duration::from_millis(20));
        drain_acks(&ctx.acks, &mut offsets.lock().expect("offset tracker lock"));
    }
    let left: usize = shards.iter().map(ShardHandle::in_flight).sum();
    if left > 0 {
        tracing::warn!("stepstream: {left} executions still running after the grace period; their requests will be redelivered");
    }
    drain_acks(&ctx.acks, &mut offsets.lock().expect("offset tracker lock"));
    commit(consumer, offsets, CommitMode::Sync);
}

/// What the poller knows of one input topic, worked out on its first record rather than
/// on every record: its name to share, the machine it is bound to, its routing hash.
struct TopicInfo {
    name: Arc<str>,
    bound: Option<Arc<str>>,
    hash: u64,
}

/// The input topics seen so far (a handful: those subscribed to).
#[derive(Default)]
struct Topics(Vec<TopicInfo>);

impl Topics {
    fn get(&mut self, topic: &str, settings: &SourceSettings) -> &TopicInfo {
        let at = match self.0.iter().position(|t| &*t.name == topic) {
            Some(at) => at,
            None => {
                self.0.push(TopicInfo {
                    name: Arc::from(topic),
                    bound: settings.bindings.get(topic).cloned(),
                    hash: crate::shard::router::topic_hash(topic),
                });
                self.0.len() - 1
            }
        };
        &self.0[at]
    }
}

/// Hands one record to its shard; returns the shard's index, or `None` when the record
/// already has an acknowledged output (recorded by a previous owner) and is skipped.
fn dispatch(
    m: &rdkafka::message::BorrowedMessage<'_>,
    shards: &[ShardHandle],
    offsets: &Arc<Mutex<Offsets>>,
    settings: &SourceSettings,
    topics: &mut Topics,
) -> Option<usize> {
    let topic = m.topic();
    // Skipped records were read too: the embedded broker's loss detector must see them.
    if let Some(reads) = &settings.embedded_reads {
        reads.observe(topic, m.partition(), m.offset());
    }
    {
        let mut offsets = offsets.lock().expect("offset tracker lock");
        if offsets.skip(topic, m.partition(), m.offset()) {
            return None;
        }
        // Recorded before the shard can possibly acknowledge it.
        offsets.dispatched(topic, m.partition(), m.offset());
    }
    let (mut header_machine, mut header_name) = (None, None);
    let (mut header_depth, mut header_id) = (None, None);
    if let Some(hs) = m.headers() {
        for h in hs.iter() {
            // Raw bytes, a null value as an empty one: the decoder refuses a bad name
            // instead of silently ignoring it.
            let v = || Some(h.value.unwrap_or_default().to_vec());
            match h.key {
                HEADER_STATE_MACHINE => header_machine = v(),
                HEADER_EXECUTION_NAME => header_name = v(),
                HEADER_DEPTH => header_depth = v(),
                HEADER_EXECUTION_ID => header_id = v(),
                _ => {}
            }
        }
    }
    let header_nesting = (header_depth.is_some() || header_id.is_some()).then(|| {
        Box::new(NestingHeaders {
            depth: header_depth,
            execution_id: header_id,
        })
    });
    let info = topics.get(topic, settings);
    let job = Box::new(KafkaJob {
        intake: Arc::clone(&settings.intake),
        source: Source {
            topic: Arc::clone(&info.name),
            partition: m.partition(),
            offset: m.offset(),
        },
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        bound: info.bound.clone(),
        header_machine,
        header_name,
        header_nesting,
    });
    let shard = crate::shard::router::shard_of(info.hash, m.partition(), shards.len());
    shards[shard].submit(job);
    Some(shard)
}

/// Pauses the partitions of shards at their limit; resumes them once half drained.
fn backpressure(
    consumer: &BaseConsumer<SourceContext>,
    shards: &[ShardHandle],
    paused: &mut [bool],
    max_in_flight: usize,
    assignment_changed: bool,
) {
    let Ok(assigned) = consumer.assignment() else {
        return;
    };
    if assignment_changed {
        // Newly assigned partitions start unpaused (`post_rebalance` resumes them) while kept
        // ones stay paused: resume all of a paused shard's partitions, then let the rule
        // below pause them again if needed. Between a revoke and the next assignment this
        // resumes nothing and only clears the flags, which is why `post_rebalance` resumes.
        for (i, p) in paused.iter_mut().enumerate() {
            if *p {
                let _ = consumer.resume(&partitions_of(&assigned, i, shards.len()));
                *p = false;
                crate::metrics::partitions_paused(i, 0);
            }
        }
    }
    for (i, s) in shards.iter().enumerate() {
        let n = s.in_flight();
        let want_paused = if paused[i] {
            n > max_in_flight / 2
        } else {
            n >= max_in_flight
        };
        if want_paused == paused[i] {
            continue;
        }
        let tpl = partitions_of(&assigned, i, shards.len());
        let (verb, r) = if want_paused {
            ("paused", consumer.pause(&tpl))
        } else {
            ("resumed", consumer.resume(&tpl))
        };
        match r {
            Ok(()) => {
                paused[i] = want_paused;
                crate::metrics::partitions_paused(i, if want_paused { tpl.count() } else { 0 });
                for e in tpl.elements() {
                    tracing::info!(
                        "stepstream: backpressure: {verb} {}/{} (shard {i} holds {n} executions)",
                        e.topic(),
                        e.partition()
                    );
                }
            }
            Err(e) => tracing::warn!("stepstream: could not change pause state: {e}"),
        }
    }
}

/// The assigned partitions routed to shard `shard`.
fn partitions_of(assigned: &TopicPartitionList, shard: usize, shards: usize) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for e in assigned.elements() {
        if shard_for(e.topic(), e.partition(), shards) == shard {
            tpl.add_partition(e.topic(), e.partition());
        }
    }
    tpl
}

fn commit(consumer: &BaseConsumer<SourceContext>, offsets: &Arc<Mutex<Offsets>>, mode: CommitMode) {
    let moves = offsets
        .lock()
        .expect("offset tracker lock")
        .take_commits(consumer.context().budget());
    if moves.is_empty() {
        return;
    }
    if std::env::var_os("STEPSTREAM_TRACE_COMMITS").is_some() {
        tracing::info!("stepstream: trace: committing {moves:?}");
    }
    let tpl = commit_list(&moves);
    let started = Instant::now();
    let committed = consumer.commit(&tpl, mode);
    let sync = matches!(mode, CommitMode::Sync);
    crate::metrics::committed(sync, started.elapsed(), committed.is_ok());
    if let Err(e) = committed {
        tracing::warn!("stepstream: offset commit failed (will retry): {e}");
        offsets
            .lock()
            .expect("offset tracker lock")
            .commit_failed(&moves);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_metadata_is_read_back_byte_for_byte() {
        let meta = acked::encode([10, 12], 20, acked::MAX_METADATA);
        let moves = vec![
            (("t".to_string(), 0), 10, meta.clone()),
            (("t".to_string(), 1), 7, String::new()),
            (("u".to_string(), 3), 1, "not ours: ünïcödé".to_string()),
        ];
        let tpl = commit_list(&moves);
        assert_eq!(tpl.count(), 3);
        let read = raw_metadata(&tpl);
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].as_deref(), Some(meta.as_bytes()));
        assert_eq!(read[1], None);
        assert_eq!(read[2].as_deref(), Some("not ours: ünïcödé".as_bytes()));
        assert_eq!(
            acked::decode(read[0].as_deref().unwrap_or_default(), 10),
            vec![11..12, 13..20]
        );
        assert!(acked::decode(read[2].as_deref().unwrap_or_default(), 1).is_empty());
        let offsets: Vec<Offset> = tpl.elements().iter().map(|e| e.offset()).collect();
        assert_eq!(
            offsets,
            vec![Offset::Offset(10), Offset::Offset(7), Offset::Offset(1)]
        );
    }

    /// Polls `consumer` until `done` holds or `timeout` passes; returns the records seen.
    fn poll_until(
        consumer: &BaseConsumer<SourceContext>,
        timeout: Duration,
        mut done: impl FnMut(&BaseConsumer<SourceContext>, usize) -> bool,
    ) -> usize {
        let deadline = Instant::now() + timeout;
        let mut records = 0;
        while Instant::now() < deadline && !done(consumer, records) {
            if let Some(Ok(_)) = consumer.poll(Duration::from_millis(50)) {
                records += 1;
            }
        }
        records
    }

    // librdkafka keeps a partition's application pause across a revoke and a later
    // assignment, while the poller's flags start afresh: a partition paused by backpressure
    // when the group session was lost (a broker restart) came back paused for good.
    #[test]
    fn a_partition_paused_when_revoked_is_read_again_once_reassigned() {
        use rdkafka::config::ClientConfig;
        use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

        let broker = crate::pipeline::embedded::EmbeddedBroker::start(&[("in", 2)])
            .expect("the mock cluster starts");
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap_servers())
            .create()
            .expect("a producer of the mock cluster");
        for i in 0..20 {
            let key = format!("k{i}");
            let record = BaseRecord::to("in")
                .partition(i % 2)
                .key(&key)
                .payload("{}");
            producer.send(record).map_err(|(e, _)| e).expect("queued");
        }
        producer
            .flush(Duration::from_secs(30))
            .expect("the mock cluster takes the records");

        let (_ack_tx, ack_rx) = crossbeam_channel::unbounded();
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", broker.bootstrap_servers())
            .set("group.id", "paused-when-revoked")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500");
        let consumer: BaseConsumer<SourceContext> = config
            .create_with_context(SourceContext::new(
                Arc::new(Mutex::new(Offsets::default())),
                ack_rx,
                Duration::ZERO,
                Arc::new(AtomicBool::new(false)),
                acked::MAX_METADATA,
            ))
            .expect("a consumer of the mock cluster");
        let assigned = |c: &BaseConsumer<SourceContext>| c.assignment().map_or(0, |a| a.count());

        consumer.subscribe(&["in"]).expect("subscribed");
        poll_until(&consumer, Duration::from_secs(30), |c, _| assigned(c) == 2);
        assert_eq!(
            assigned(&consumer),
            2,
            "the consumer never got both partitions"
        );
        // Backpressure pauses everything, then the group takes the partitions away.
        let all = consumer.assignment().expect("an assignment");
        consumer.pause(&all).expect("paused");
        consumer.unsubscribe();
        poll_until(&consumer, Duration::from_secs(30), |c, _| assigned(c) == 0);
        assert_eq!(assigned(&consumer), 0, "the partitions were never revoked");

        consumer.subscribe(&["in"]).expect("subscribed again");
        let mut records = poll_until(&consumer, Duration::from_secs(30), |c, _| assigned(c) == 2);
        assert_eq!(
            assigned(&consumer),
            2,
            "the partitions were never assigned again"
        );
        records += poll_until(&consumer, Duration::from_secs(10), |_, n| records + n >= 20);
        assert_eq!(
            records, 20,
            "partitions paused before the revoke stayed paused after the new assignment"
        );
    }
}
