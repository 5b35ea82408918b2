//! The embedded default broker: `stepstream run` with no brokers configured starts an
//! in-process Kafka-protocol broker so the README demo works with nothing installed.
//!
//! It is librdkafka's mock cluster, because it is already linked into the binary through
//! `rdkafka`, starts in milliseconds, adds no dependency and is fast (~300k produced records/s
//! here). The alternatives cost far more for a demo: an embeddable Rust broker (`tansu-broker`)
//! pulls in ~385 crates and ten minutes of build, a real Kafka needs a JVM and ~15 s to start.
//!
//! Its limit decides where it may be used. Each partition keeps at most 5 MiB of stored
//! (compressed) record batches or 100,000 batches, and beyond that the mock **silently drops
//! the oldest records** (`rd_kafka_mock_partition_init` in librdkafka; nothing in its API
//! changes it). A consumer that falls further behind than that loses records without an
//! error: 200,000 records of 1 KB produced to 4 partitions before reading left 19,501 to read
//! (~4,900 per partition). So it is only safe while the backlog per partition stays far below
//! 5 MiB: the demo feeder (`super::demo`) keeps at most `max_outstanding` requests without a
//! result, which bounds the backlog of both the requests and the results topic (paced at
//! 2,000 outstanding, all 200,000 arrived, at ~120k records/s); [`safe_backlog`] says how many
//! records that may be. Nothing is persisted either: everything is gone when the broker is
//! dropped. Never point real traffic at it.
//!
//! Two more things differ from a real broker and matter to clients:
//! - A fetch that finds no data is answered only after the full `fetch.wait.max.ms` (a real
//!   broker answers as soon as data arrives), so consumers of it must set that low (see
//!   [`CONSUMER_PROPERTIES`]). With librdkafka's default of 500 ms a paced feeder crawled at
//!   ~4k records/s instead of ~100k/s. Lower costs idle CPU: 5 ms adds ~4 ms per hop at low
//!   load for ~2 % of a core per idle consumer; 1 ms adds ~1 ms for ~6 %.
//! - A consumer group's first join waits `group.initial.rebalance.delay.ms` (3 s by default in
//!   the mock, as in Kafka); the embedded broker sets it to [`INITIAL_REBALANCE_DELAY_MS`] so
//!   a demo starts at once.
//!
//! Because a user must never lose requests to it unknowingly, the broker watches what a
//! pipeline reads of it ([`reads_of`]): the poller reports every input record's offset, and a
//! jump past offsets it never got means the mock dropped them first (the mock has no
//! compaction and stepstream writes no transactions, the only other causes of gaps; a
//! transactional producer of the user's would have its commit markers counted). A thread
//! sweeps those counts every second and logs each loss as a [`DroppedUnread`] event with the
//! count and offsets; [`EmbeddedBroker::settle`], called once the pipeline has stopped, also
//! counts what was dropped while the pipeline was not reading at all (paused, or stopped).
//! Gaps are exact where a comparison of the low watermark with the consumer position is not:
//! while a partition is being read, records the poller has not taken yet may sit safely in
//! librdkafka's prefetch queue after the broker dropped them.
//!
//! Threads: rdkafka's `MockCluster` holds a raw pointer and so is neither `Send` nor `Sync`.
//! [`EmbeddedBroker`] instead owns the librdkafka client handle that created the cluster
//! (`test.mock.num.brokers`); that handle is `Send + Sync`, and the cluster serves its
//! listeners on its own librdkafka thread. So the main thread keeps the broker alive (or moves
//! it wherever it likes) while any thread connects to [`EmbeddedBroker::bootstrap_servers`].

use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::client::{Client, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaType;

pub use crate::config::EMBEDDED_CONSUMER_PROPERTIES as CONSUMER_PROPERTIES;

/// Delay before a consumer group's first assignment; short so the demo starts at once, not
/// zero so consumers created together still land in one generation.
pub const INITIAL_REBALANCE_DELAY_MS: i32 = 100;

/// Stored bytes the mock keeps per partition before it drops the oldest records.
pub const RETAINED_BYTES_PER_PARTITION: usize = 5 * 1024 * 1024;

/// Record batches the mock keeps per partition (a batch holds one record or more).
pub const RETAINED_BATCHES_PER_PARTITION: usize = 100_000;

/// How many records of about `record_bytes` each may wait unread in a topic of `partitions`
/// partitions without the mock dropping any: a quarter of what it keeps, because keys do
/// not spread evenly over partitions and compression may gain nothing.
pub fn safe_backlog(record_bytes: usize, partitions: i32) -> usize {
    let partitions = usize::try_from(partitions).unwrap_or(0).max(1);
    let per_partition =
        (RETAINED_BYTES_PER_PARTITION / record_bytes.max(1)).min(RETAINED_BATCHES_PER_PARTITION);
    (per_partition * partitions / 4).max(1)
}

/// How often read gaps are swept into [`DroppedUnread`] events: also the most often one
/// partition's losses are logged.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// How long [`EmbeddedBroker::settle`] waits for one partition's watermarks.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(5);

/// Kafka's longest legal topic name.
const MAX_TOPIC_NAME_LEN: usize = 249;

/// Why the embedded broker could not start. Each message includes librdkafka's error, which
/// is therefore not also exposed as `source()` (an error chain would print it twice).
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// librdkafka refused to create the mock cluster.
    #[error(
        "could not start the embedded Kafka broker (librdkafka mock cluster): {0}; \
         configure `brokers` to use a real Kafka cluster instead"
    )]
    Start(KafkaError),
    /// A topic name Kafka would reject.
    #[error("cannot create topic {topic:?} on the embedded broker: {reason}")]
    InvalidTopic {
        /// The name as given.
        topic: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The mock cluster refused to create a topic (for example, one listed twice).
    #[error(
        "the embedded broker could not create topic {topic:?} with {partitions} partitions: \
         {error} (is it listed twice?)"
    )]
    CreateTopic {
        /// The topic.
        topic: String,
        /// Partitions asked for.
        partitions: i32,
        /// librdkafka's error.
        error: KafkaError,
    },
    /// The thread that reports losses could not be started.
    #[error("cannot start the embedded broker's loss watch thread: {0}")]
    Watch(std::io::Error),
}

/// An in-process Kafka-protocol broker for demos (librdkafka's mock cluster).
pub struct EmbeddedBroker {
    // Owns the mock cluster: destroying this handle destroys the cluster and its listeners.
    _handle: Client<DefaultClientContext>,
    bootstrap: String,
    losses: Arc<Losses>,
    // Dropping it stops the sweeper, which sweeps a last time on its way out.
    stop_sweeper: Option<crossbeam_channel::Sender<()>>,
    sweeper: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts it and creates the topics (name, partitions).
    pub fn start(topics: &[(&str, i32)]) -> Result<EmbeddedBroker, EmbeddedError> {
        for &(topic, partitions) in topics {
            check_topic(topic, partitions)?;
        }
        let mut config = ClientConfig::new();
        // One broker: the mock serves all of its brokers on one thread, so more add nothing.
        config.set("test.mock.num.brokers", "1");
        let native = config
            .create_native_config()
            .map_err(EmbeddedError::Start)?;
        let handle = Client::new(
            &config,
            native,
            RDKafkaType::RD_KAFKA_PRODUCER,
            DefaultClientContext,
        )
        .map_err(EmbeddedError::Start)?;
        let cluster = handle.mock_cluster().ok_or_else(|| {
            EmbeddedError::Start(KafkaError::ClientCreation(
                "this librdkafka build has no mock cluster".to_string(),
            ))
        })?;
        set_initial_rebalance_delay(&handle, INITIAL_REBALANCE_DELAY_MS);
        for &(topic, partitions) in topics {
            cluster
                .create_topic(topic, partitions, 1)
                .map_err(|error| EmbeddedError::CreateTopic {
                    topic: topic.to_string(),
                    partitions,
                    error,
                })?;
        }
        let bootstrap = cluster.bootstrap_servers();
        drop(cluster);
        let losses = Arc::new(Losses::new(&bootstrap, topics));
        let (stop_sweeper, stopped) = crossbeam_channel::bounded::<()>(0);
        let sweeper = {
            let losses = Arc::clone(&losses);
            std::thread::Builder::new()
                .name("embedded-losses".into())
                .spawn(move || {
                    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(SWEEP_INTERVAL)
                    {
                        losses.sweep();
                    }
                    losses.sweep();
                })
                .map_err(EmbeddedError::Watch)?
        };
        register(&losses);
        Ok(EmbeddedBroker {
            _handle: handle,
            bootstrap,
            losses,
            stop_sweeper: Some(stop_sweeper),
            sweeper: Some(sweeper),
        })
    }

    /// `host:port,...` for clients.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Requests dropped before a pipeline read them, reported so far (see [`DroppedUnread`]).
    pub fn dropped_unread(&self) -> u64 {
        self.losses.dropped.load(Ordering::Acquire)
    }

    /// The counter behind [`Self::dropped_unread`], for a feeder that should stop waiting
    /// for results that cannot come.
    pub fn dropped_unread_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.losses.dropped)
    }

    /// Reports every loss not reported yet, including records dropped while no pipeline was
    /// reading (a paused partition, or after the stop), and says what is still unread.
    /// Call it once the pipelines on this broker have stopped: while one reads, records it
    /// has not polled yet may still be in its prefetch queue and would be counted as lost.
    pub fn settle(&self) -> Settled {
        self.losses.sweep();
        let unread = self.losses.settle();
        Settled {
            dropped_unread: self.dropped_unread(),
            unread,
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        unregister(&self.losses);
        self.stop_sweeper.take();
        if let Some(sweeper) = self.sweeper.take() {
            let _ = sweeper.join();
        }
    }
}

impl fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

/// What [`EmbeddedBroker::settle`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Requests the broker dropped before a pipeline read them, since it started.
    pub dropped_unread: u64,
    /// Requests still on the broker that no pipeline read; they go when the broker does.
    pub unread: u64,
}

/// The embedded broker's retention dropped requests before a pipeline read them: an event
/// that logs and counts (the count is [`EmbeddedBroker::dropped_unread`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedUnread<'a> {
    /// The input topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// How many requests.
    pub count: u64,
    /// The first and last offset dropped, when known.
    pub offsets: Option<(i64, i64)>,
}

impl DroppedUnread<'_> {
    /// Logs the loss and adds it to `total`.
    pub fn emit(&self, total: &AtomicU64) {
        total.fetch_add(self.count, Ordering::AcqRel);
        metrics::counter!(crate::metrics::EMBEDDED_DROPPED).increment(self.count);
        // On a terminal the demo's live line may be waiting for its newline: start afresh.
        let clear = if std::io::stderr().is_terminal() {
            "\r\x1b[K"
        } else {
            ""
        };
        eprintln!("{clear}{self}");
    }
}

impl fmt::Display for DroppedUnread<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stepstream: the embedded broker dropped {} unread requests from {}/{}",
            self.count, self.topic, self.partition
        )?;
        if let Some((first, last)) = self.offsets {
            write!(f, " (offsets {first}..{last})")?;
        }
        write!(
            f,
            ": it keeps only 5 MiB (or 100,000 batches) per partition; \
             use a real Kafka (kafka.brokers) for real loads"
        )
    }
}

/// Where the pipeline's poller reports the offsets it reads from an embedded broker.
#[derive(Clone)]
pub struct ReadTracker {
    losses: Arc<Losses>,
    /// Indices into `losses.topics` of the topics this pipeline reads.
    topics: Vec<usize>,
}

impl fmt::Debug for ReadTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadTracker")
            .field("bootstrap", &self.losses.bootstrap)
            .field("topics", &self.topics)
            .finish()
    }
}

impl ReadTracker {
    /// Records that the pipeline read `offset`; a jump past unread offsets is a loss. On the
    /// poller's path for every record: a few comparisons and atomic operations, no lock.
    pub fn observe(&self, topic: &str, partition: i32, offset: i64) {
        let Some(topic) = self
            .topics
            .iter()
            .filter_map(|&i| self.losses.topics.get(i))
            .find(|t| t.name == topic)
        else {
            return;
        };
        if let Some(p) = usize::try_from(partition)
            .ok()
            .and_then(|i| topic.partitions.get(i))
        {
            p.read(offset);
        }
    }
}

/// The tracker of the embedded broker at `brokers` (one started by this process) for a
/// pipeline reading `topics`, or `None` when `brokers` is not such a broker. `from_start`:
/// the pipeline starts reading at the beginning (`auto.offset.reset = earliest`), so anything
/// dropped before its first record counts; otherwise counting starts at its first record.
pub fn reads_of(brokers: &str, topics: &[&str], from_start: bool) -> Option<ReadTracker> {
    let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let losses = registry
        .iter()
        .filter_map(Weak::upgrade)
        .find(|l| l.bootstrap == brokers.trim())?;
    drop(registry);
    let mut watched = Vec::new();
    for (i, t) in losses.topics.iter().enumerate() {
        if !topics.contains(&t.name.as_str()) {
            continue;
        }
        t.read.store(true, Ordering::Release);
        if from_start {
            for p in t.partitions.iter() {
                let _ =
                    p.next
                        .compare_exchange(NOT_STARTED, 0, Ordering::AcqRel, Ordering::Acquire);
            }
        }
        watched.push(i);
    }
    Some(ReadTracker {
        losses,
        topics: watched,
    })
}

/// Embedded brokers of this process by address, so a pipeline finds the one it reads from
/// whoever started it (`run`, `load`, a test) without it being passed through.
static REGISTRY: Mutex<Vec<Weak<Losses>>> = Mutex::new(Vec::new());

fn register(losses: &Arc<Losses>) {
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    registry.retain(|w| w.strong_count() > 0);
    registry.push(Arc::downgrade(losses));
}

fn unregister(losses: &Arc<Losses>) {
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    // A tracker may keep `losses` alive after the broker is gone, and its port may be reused.
    registry.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(losses)));
}

/// `PartitionReads::next` before anything is known about where reading starts.
const NOT_STARTED: i64 = -1;

/// What pipelines read of one embedded broker's topics, and what it dropped before they did.
struct Losses {
    bootstrap: String,
    /// Every topic the broker was started with; only those a pipeline reads are watched.
    topics: Vec<TopicReads>,
    /// Requests dropped unread, reported so far (the [`DroppedUnread`] counter).
    dropped: Arc<AtomicU64>,
}

struct TopicReads {
    name: String,
    /// A pipeline reads this topic, so its drops are losses.
    read: AtomicBool,
    partitions: Box<[PartitionReads]>,
}

/// One partition. The poller writes `next`, `skipped` and the gap range; sweeps read them.
struct PartitionReads {
    /// One past the highest offset read, or [`NOT_STARTED`].
    next: AtomicI64,
    /// Offsets passed over without being read.
    skipped: AtomicU64,
    /// How much of `skipped` has been reported.
    reported: AtomicU64,
    /// First and last skipped offset not reported yet (`i64::MAX` / `i64::MIN` when none).
    gap_first: AtomicI64,
    gap_last: AtomicI64,
}

impl Losses {
    fn new(bootstrap: &str, topics: &[(&str, i32)]) -> Losses {
        Losses {
            bootstrap: bootstrap.to_string(),
            topics: topics
                .iter()
                .map(|&(name, partitions)| TopicReads {
                    name: name.to_string(),
                    read: AtomicBool::new(false),
                    partitions: (0..partitions.max(0))
                        .map(|_| PartitionReads::new())
                        .collect(),
                })
                .collect(),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    fn watched(&self) -> impl Iterator<Item = &TopicReads> {
        self.topics
            .iter()
            .filter(|t| t.read.load(Ordering::Acquire))
    }

    /// Reports the gaps found since the last sweep, one event per partition.
    fn sweep(&self) {
        for topic in self.watched() {
            for (partition, p) in (0i32..).zip(topic.partitions.iter()) {
                let skipped = p.skipped.load(Ordering::Acquire);
                // fetch_max, so concurrent sweeps never report the same records twice.
                let before = p.reported.fetch_max(skipped, Ordering::AcqRel);
                if skipped <= before {
                    continue;
                }
                let first = p.gap_first.swap(i64::MAX, Ordering::AcqRel);
                let last = p.gap_last.swap(i64::MIN, Ordering::AcqRel);
                DroppedUnread {
                    topic: &topic.name,
                    partition,
                    count: skipped - before,
                    offsets: (first <= last).then_some((first, last)),
                }
                .emit(&self.dropped);
            }
        }
    }

    /// Counts as dropped what lies below each watched partition's low watermark and was
    /// never read; returns how many records are still unread above it.
    fn settle(&self) -> u64 {
        let mut unread = 0;
        let client: BaseConsumer = match ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(
                    "stepstream: cannot check the embedded broker for lost requests: {e}"
                );
                return 0;
            }
        };
        for topic in self.watched() {
            for (partition, p) in (0i32..).zip(topic.partitions.iter()) {
                let (low, high) =
                    match client.fetch_watermarks(&topic.name, partition, WATERMARK_TIMEOUT) {
                        Ok(w) => w,
                        Err(e) => {
                            tracing::warn!(
                                "stepstream: cannot check {}/{partition} for lost requests: {e}",
                                topic.name
                            );
                            continue;
                        }
                    };
                let next = p.next.fetch_max(low, Ordering::AcqRel);
                if next == NOT_STARTED {
                    // Reading was to start at its first record, and there was none.
                    unread += u64::try_from(high - low).unwrap_or(0);
                    continue;
                }
                if low > next {
                    DroppedUnread {
                        topic: &topic.name,
                        partition,
                        count: u64::try_from(low - next).unwrap_or(0),
                        offsets: Some((next, low - 1)),
                    }
                    .emit(&self.dropped);
                }
                unread += u64::try_from(high - next.max(low)).unwrap_or(0);
            }
        }
        unread
    }
}

impl PartitionReads {
    fn new() -> PartitionReads {
        PartitionReads {
            next: AtomicI64::new(NOT_STARTED),
            skipped: AtomicU64::new(0),
            reported: AtomicU64::new(0),
            gap_first: AtomicI64::new(i64::MAX),
            gap_last: AtomicI64::new(i64::MIN),
        }
    }

    fn read(&self, offset: i64) {
        let next = self
            .next
            .fetch_max(offset.saturating_add(1), Ordering::AcqRel);
        // Below `next` is a record read again (a rebalance, a seek): nothing was skipped.
        if next == NOT_STARTED || offset <= next {
            return;
        }
        self.gap_first.fetch_min(next, Ordering::AcqRel);
        self.gap_last.fetch_max(offset - 1, Ordering::AcqRel);
        // Last, so a sweep that sees the count also sees the range.
        self.skipped
            .fetch_add(u64::try_from(offset - next).unwrap_or(0), Ordering::AcqRel);
    }
}

/// Checks what the mock would accept silently but a real Kafka would not, so a config that
/// works on the demo broker also works on a real one.
fn check_topic(topic: &str, partitions: i32) -> Result<(), EmbeddedError> {
    let invalid = |reason| {
        Err(EmbeddedError::InvalidTopic {
            topic: topic.to_string(),
            reason,
        })
    };
    if topic.is_empty() {
        return invalid("the name is empty");
    }
    if topic == "." || topic == ".." {
        return invalid("\".\" and \"..\" are not allowed as topic names");
    }
    if topic.len() > MAX_TOPIC_NAME_LEN {
        return invalid("the name is longer than 249 characters");
    }
    if !topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    if partitions < 1 {
        return invalid("a topic needs at least one partition");
    }
    Ok(())
}

/// Shortens the first group join, which `rdkafka`'s safe API cannot configure.
fn set_initial_rebalance_delay(handle: &Client<DefaultClientContext>, delay_ms: i32) {
    // SAFETY: `handle` is a live librdkafka handle for the whole call. The cluster pointer it
    // returns is owned by that handle (it was created by `test.mock.num.brokers`) and so lives
    // as long as it; the setter only stores an int under the cluster's own mutex.
    unsafe {
        let cluster = rdkafka::bindings::rd_kafka_handle_mock_cluster(handle.native_ptr());
        if !cluster.is_null() {
            rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, delay_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_broker_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<EmbeddedBroker>();
    }

    #[test]
    fn start_creates_topics_and_reports_a_loopback_address() {
        let broker = EmbeddedBroker::start(&[("requests", 4), ("results", 2)])
            .expect("the mock cluster starts");
        assert!(broker.bootstrap_servers().starts_with("127.0.0.1:"));
    }

    #[test]
    fn start_rejects_names_a_real_kafka_would_reject() {
        for (topic, partitions) in [("", 1), ("a b", 1), ("..", 1), ("ok", 0)] {
            let result = EmbeddedBroker::start(&[(topic, partitions)]);
            assert!(
                matches!(result, Err(EmbeddedError::InvalidTopic { .. })),
                "{topic:?} {partitions}: {result:?}"
            );
        }
    }

    #[test]
    fn safe_backlog_keeps_a_margin_below_what_the_mock_retains() {
        // 1 KiB records on 4 partitions: 5,120 fit per partition, a quarter of 4 x 5,120.
        assert_eq!(safe_backlog(1024, 4), 5_120);
        // Tiny records are bound by the batch count instead.
        assert_eq!(safe_backlog(1, 1), 25_000);
        // A record larger than a partition keeps still allows one at a time.
        assert_eq!(safe_backlog(64 << 20, 1), 1);
        assert_eq!(safe_backlog(0, 0), 25_000);
    }

    /// Writes `count` uncompressed records of about 1 KiB to partition 0 of `topic`.
    fn produce_kib_records(broker: &EmbeddedBroker, topic: &str, count: usize) {
        use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap_servers())
            .set("compression.type", "none")
            .create()
            .expect("a producer of the embedded broker");
        let payload = "x".repeat(1000);
        for i in 0..count {
            let key = format!("k{i}");
            let mut record = BaseRecord::to(topic)
                .partition(0)
                .key(&key)
                .payload(&payload);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
        producer
            .flush(Duration::from_secs(30))
            .expect("the embedded broker takes every record");
    }

    fn watermarks(broker: &EmbeddedBroker, topic: &str) -> (i64, i64) {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap_servers())
            .create()
            .expect("a client of the embedded broker");
        client
            .fetch_watermarks(topic, 0, Duration::from_secs(5))
            .expect("watermarks of the embedded broker")
    }

    #[test]
    fn offsets_passed_over_are_counted_once_as_dropped() {
        let losses = Losses::new("test", &[("in", 2), ("out", 1)]);
        losses.topics[0].read.store(true, Ordering::Release);
        let reads = &losses.topics[0].partitions;
        reads[0].next.store(0, Ordering::Release);
        for offset in [0, 1, 2, 10, 11, 5, 12, 20] {
            reads[0].read(offset);
        }
        assert_eq!(reads[0].skipped.load(Ordering::Acquire), 7 + 7);
        losses.sweep();
        losses.sweep();
        assert_eq!(losses.dropped.load(Ordering::Acquire), 14);
        // A record read again after a rebalance is no loss.
        reads[0].read(3);
        // Where reading starts at the first record (`latest`), nothing before it counts.
        reads[1].read(500);
        reads[1].read(501);
        losses.sweep();
        assert_eq!(losses.dropped.load(Ordering::Acquire), 14);
    }

    #[test]
    fn unwatched_topics_are_not_reported() {
        let losses = Losses::new("test", &[("in", 1), ("out", 1)]);
        let out = &losses.topics[1].partitions[0];
        out.next.store(0, Ordering::Release);
        out.read(100);
        losses.sweep();
        assert_eq!(losses.dropped.load(Ordering::Acquire), 0);
    }

    #[test]
    fn the_loss_line_names_the_count_the_partition_and_the_way_out() {
        let line = DroppedUnread {
            topic: "orders",
            partition: 2,
            count: 4200,
            offsets: Some((100, 4299)),
        }
        .to_string();
        assert_eq!(
            line,
            "stepstream: the embedded broker dropped 4200 unread requests from orders/2 \
             (offsets 100..4299): it keeps only 5 MiB (or 100,000 batches) per partition; \
             use a real Kafka (kafka.brokers) for real loads"
        );
    }

    #[test]
    fn pipelines_find_only_a_live_embedded_broker_of_this_process() {
        let broker = EmbeddedBroker::start(&[("in", 1)]).expect("the mock cluster starts");
        let address = broker.bootstrap_servers().to_string();
        let reads = reads_of(&address, &["in", "not-on-it"], true).expect("found by address");
        assert_eq!(reads.topics, vec![0]);
        assert!(reads_of("127.0.0.1:1", &["in"], true).is_none());
        drop(broker);
        assert!(reads_of(&address, &["in"], true).is_none());
        // A tracker that outlives its broker is harmless.
        reads.observe("in", 0, 5);
        reads.observe("in", 7, 5);
    }

    #[test]
    fn settle_counts_exactly_what_retention_dropped_before_it_was_read() {
        let broker = EmbeddedBroker::start(&[("in", 1)]).expect("the mock cluster starts");
        let reads = reads_of(broker.bootstrap_servers(), &["in"], true).expect("registered");
        // 8,000 KiB into a partition that keeps 5 MiB.
        produce_kib_records(&broker, "in", 8_000);
        let (low, high) = watermarks(&broker, "in");
        assert!(low > 2_000 && high == 8_000, "low {low} high {high}");
        // A reader that got the first 100 records and then stopped.
        for offset in 0..100 {
            reads.observe("in", 0, offset);
        }
        let settled = broker.settle();
        assert_eq!(
            settled,
            Settled {
                dropped_unread: u64::try_from(low - 100).expect("low > 100"),
                unread: u64::try_from(high - low).expect("high > low"),
            }
        );
        // Settling again finds nothing new.
        assert_eq!(broker.settle(), settled);
    }

    #[test]
    fn a_reader_that_jumps_past_dropped_records_reports_them() {
        let broker = EmbeddedBroker::start(&[("in", 1)]).expect("the mock cluster starts");
        let reads = reads_of(broker.bootstrap_servers(), &["in"], true).expect("registered");
        produce_kib_records(&broker, "in", 8_000);
        let (low, high) = watermarks(&broker, "in");
        // What a consumer reset to the earliest offset then reads.
        for offset in low..high {
            reads.observe("in", 0, offset);
        }
        let started = std::time::Instant::now();
        while broker.dropped_unread() == 0 && started.elapsed() < 5 * SWEEP_INTERVAL {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            broker.dropped_unread(),
            u64::try_from(low).expect("low >= 0")
        );
        assert_eq!(broker.settle().unread, 0);
    }

    #[test]
    fn start_reports_a_topic_listed_twice() {
        let result = EmbeddedBroker::start(&[("twice", 1), ("twice", 1)]);
        assert!(
            matches!(result, Err(EmbeddedError::CreateTopic { .. })),
            "{result:?}"
        );
    }
}
