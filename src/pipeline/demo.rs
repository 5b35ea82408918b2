//! The demo and load feeder behind `stepstream run --demo N` and `stepstream load`: sends
//! execution requests to the requests topic, reads their results from the results topic and
//! reports throughput and latency.
//!
//! It talks to the pipeline only through Kafka, with the request and result contracts of
//! DESIGN.md §2, so it measures what a client sees. Request `i` has the key `demo-<i>` and the
//! envelope `{"stateMachine", "name": "demo-<i>", "input"}`; its result comes back under the same
//! key. The results are at least once, so each key is counted once and repeats are reported as
//! duplicates.
//!
//! Three choices keep the numbers honest:
//! - **Pacing.** At most `max_outstanding` requests are without a result at any time (and at
//!   most `rate_per_sec` are sent). This measures latency at a load the pipeline sustains
//!   rather than the length of a queue, and it bounds the backlog on the broker, which the
//!   embedded broker needs: it silently drops records beyond 5 MiB per partition
//!   (see `super::embedded`).
//! - **Nothing missed, nothing old.** Every partition of the results topic is assigned at its
//!   end offset, read synchronously *before* the first request is sent. A result can only be
//!   written after its request, so none can land before that offset. Plain assignment, not a
//!   consumer group, so there is no group join to wait for.
//! - **Earlier runs are ignored.** Keys repeat from run to run, so a pipeline still working
//!   through an interrupted run's requests would otherwise answer this run's. A result whose
//!   `source` points into the requests topic below the end offset it had when this run
//!   started belongs to an earlier run and is skipped.
//!
//! A result can also be lost on the way back: a broker that drops records before they are read
//! (the embedded one beyond 5 MiB per partition) shows up as a jump in the offsets the feeder
//! reads, so each results partition's offsets are followed and such drops are counted and
//! logged. With the requests the embedded broker dropped before the pipeline read them
//! (counted by the broker itself, `super::embedded`), they account for missing results.
//!
//! Latencies go into a fixed-size log-scale histogram, so memory stays bounded for any count:
//! the only per-request state is the send time of the requests still outstanding.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;

/// Prefix of every request key and execution name; the rest is the request's index.
const KEY_PREFIX: &str = "demo-";

/// How often the live line is refreshed (and the longest a blocking poll lasts, so a Ctrl-C
/// is noticed within it).
const TICK: Duration = Duration::from_millis(250);

/// Longest wait for the broker's first answer: an unreachable broker should fail fast even
/// when the caller is prepared to wait long for results.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often to look again for a topic that does not exist yet.
const TOPIC_POLL: Duration = Duration::from_millis(100);

/// Requests sent in one go before results are read again, so reading results (and so the
/// measured latency) never waits long behind sending.
const SEND_BATCH: usize = 256;

/// Results read in one go before sending again.
const READ_BATCH: usize = 4096;

/// Distinct `status` values tracked by name; more are counted as `OTHER`, because the values
/// come from outside and must not grow the map without bound.
const MAX_STATUSES: usize = 16;

/// What to feed.
#[derive(Debug, Clone)]
pub struct DemoSpec {
    /// Kafka `bootstrap.servers`.
    pub bootstrap: String,
    /// Topic the pipeline reads requests from.
    pub requests_topic: String,
    /// Topic the pipeline writes results to.
    pub results_topic: String,
    /// State machine every request names.
    pub state_machine: String,
    /// Execution input of every request.
    pub input: serde_json::Value,
    /// Number of requests to send.
    pub count: u64,
    /// Requests per second, or `None` to send as fast as pacing allows.
    pub rate_per_sec: Option<f64>,
    /// Pacing: at most this many requests without a result.
    pub max_outstanding: usize,
    /// Give up waiting for results after this long without progress.
    pub timeout: Duration,
    /// librdkafka properties passed to both clients (they override the feeder's defaults).
    pub client_properties: Vec<(String, String)>,
    /// When set, every result's `output` must equal this (numbers compared by value).
    pub expected_output: Option<serde_json::Value>,
    /// Requests the broker dropped before the pipeline read them, where the broker counts
    /// them (the embedded one): their results cannot come, so the feeder stops waiting once
    /// they are all that is missing. Nothing else may write to the requests topic meanwhile.
    pub requests_dropped: Option<Arc<AtomicU64>>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSummary {
    /// Requests handed to the producer.
    pub sent: u64,
    /// Requests with a result (each key counted once).
    pub results: u64,
    /// Results by `status` (`SUCCEEDED`, `FAILED`, `TIMED_OUT`; `INVALID` for a result the
    /// feeder could not read).
    pub by_status: BTreeMap<String, u64>,
    /// From the first request sent to the last result read.
    pub elapsed: Duration,
    /// Results per second over `elapsed`.
    pub throughput_per_sec: f64,
    /// Median time from sending a request to reading its result.
    pub latency_p50: Duration,
    /// 99th percentile of that time.
    pub latency_p99: Duration,
    /// Longest such time.
    pub latency_max: Duration,
    /// Requests sent that got no result (not delivered, dropped by the broker, timed out, or
    /// cut short by a stop).
    pub missing: u64,
    /// Results the broker dropped before the feeder read them.
    pub lost_results: u64,
    /// Requests the broker dropped before the pipeline read them, where the broker tells
    /// (the embedded one); `None` where nobody counted them.
    pub lost_requests: Option<u64>,
    /// Results read again for a request already counted (at-least-once redelivery).
    pub duplicates: u64,
    /// Results whose `output` differed from `DemoSpec::expected_output`.
    pub wrong_outputs: u64,
    /// The first such result, for the report.
    pub first_wrong: Option<String>,
}

/// Why the feeder could not run. Each message includes librdkafka's error, which is therefore
/// not also exposed as `source()` (an error chain would print it twice).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The spec cannot work.
    #[error("invalid demo settings: {0}")]
    InvalidSpec(&'static str),
    /// A client could not be created, usually because of a bad client property.
    #[error("cannot create a Kafka client (check the client properties): {0}")]
    Client(KafkaError),
    /// No broker answered.
    #[error(
        "cannot reach Kafka at {bootstrap}: {error}; is a broker running there and is \
         `bootstrap.servers` right?"
    )]
    Unreachable {
        /// The bootstrap servers tried.
        bootstrap: String,
        /// librdkafka's error.
        error: KafkaError,
    },
    /// A topic the feeder needs is not there.
    #[error(
        "topic {topic:?} does not exist on {bootstrap} (waited {waited:?}); create it or \
         start the pipeline, which creates its topics"
    )]
    MissingTopic {
        /// The missing topic.
        topic: String,
        /// The bootstrap servers asked.
        bootstrap: String,
        /// How long the feeder waited for it to appear.
        waited: Duration,
    },
    /// A Kafka call failed after the broker was reached.
    #[error("Kafka error while {action}: {error}")]
    Kafka {
        /// What the feeder was doing.
        action: String,
        /// librdkafka's error.
        error: KafkaError,
    },
}

/// Feeds requests, reads results, prints a live line to stderr about 4 times a second, returns a summary.
pub fn run(spec: &DemoSpec, stop: &AtomicBool) -> Result<DemoSummary, DemoError> {
    check_spec(spec)?;
    let consumer = results_consumer(spec)?;
    let (Some(request_starts), Some(result_ends)) = (
        end_offsets(&consumer, spec, &spec.requests_topic, stop)?,
        end_offsets(&consumer, spec, &spec.results_topic, stop)?,
    ) else {
        return Ok(Feeder::new(spec, Vec::new(), Vec::new()).summary());
    };
    let mut assignment = TopicPartitionList::new();
    for (partition, &end) in (0i32..).zip(&result_ends) {
        assignment
            .add_partition_offset(&spec.results_topic, partition, Offset::Offset(end))
            .map_err(|error| kafka_error("assigning the results partitions", error))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|error| kafka_error("assigning the results partitions", error))?;
    let producer = requests_producer(spec)?;
    // Connect and learn the requests topic's partitions now, so the first requests' latency
    // does not include that.
    producer
        .client()
        .fetch_metadata(
            Some(&spec.requests_topic),
            spec.timeout.min(CONNECT_TIMEOUT),
        )
        .map_err(|error| DemoError::Unreachable {
            bootstrap: spec.bootstrap.clone(),
            error,
        })?;
    Feeder::new(spec, request_starts, result_ends).run(&producer, &consumer, stop)
}

fn check_spec(spec: &DemoSpec) -> Result<(), DemoError> {
    if spec.max_outstanding == 0 {
        return Err(DemoError::InvalidSpec("max_outstanding must be at least 1"));
    }
    if let Some(rate) = spec.rate_per_sec {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(DemoError::InvalidSpec(
                "the rate must be a positive number of requests per second",
            ));
        }
    }
    Ok(())
}

fn kafka_error(action: impl Into<String>, error: KafkaError) -> DemoError {
    DemoError::Kafka {
        action: action.into(),
        error,
    }
}

fn results_consumer(spec: &DemoSpec) -> Result<BaseConsumer, DemoError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &spec.bootstrap)
        // Never committed; unique so it cannot disturb any real group.
        .set(
            "group.id",
            format!("stepstream-demo-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        // Only reached when the broker dropped records we had not read yet (the embedded
        // broker does that beyond 5 MiB per partition): keep the rest rather than skip to now.
        .set("auto.offset.reset", "earliest")
        // Low so an idle fetch cannot delay a result: the embedded broker answers an empty
        // fetch only after the whole wait (a real broker answers as soon as data arrives).
        .set("fetch.wait.max.ms", "5");
    for (key, value) in &spec.client_properties {
        config.set(key, value);
    }
    config.create().map_err(DemoError::Client)
}

fn requests_producer(spec: &DemoSpec) -> Result<BaseProducer<Deliveries>, DemoError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &spec.bootstrap)
        .set("acks", "all")
        // Short: the linger is part of every measured latency.
        .set("linger.ms", "1")
        .set("compression.type", "lz4");
    for (key, value) in &spec.client_properties {
        config.set(key, value);
    }
    config
        .create_with_context(Deliveries::default())
        .map_err(DemoError::Client)
}

/// The end offset of every partition of `topic`, indexed by partition; `None` when `stop`
/// was raised while waiting for the topic.
fn end_offsets(
    consumer: &BaseConsumer,
    spec: &DemoSpec,
    topic: &str,
    stop: &AtomicBool,
) -> Result<Option<Vec<i64>>, DemoError> {
    let Some(partitions) = partitions_of(consumer, spec, topic, stop)? else {
        return Ok(None);
    };
    // Kafka numbers partitions 0..n, so the offsets are indexed by partition.
    let mut ends = vec![0; partitions.len()];
    for id in partitions {
        let slot = usize::try_from(id)
            .ok()
            .and_then(|i| ends.get_mut(i))
            .ok_or_else(|| {
                kafka_error(
                    format!("reading the partitions of {topic}"),
                    KafkaError::MetadataFetch(RDKafkaErrorCode::InvalidPartitions),
                )
            })?;
        *slot = consumer
            .fetch_watermarks(topic, id, spec.timeout.min(CONNECT_TIMEOUT))
            .map(|(_, high)| high)
            .map_err(|error| {
                kafka_error(
                    format!("reading the end offset of {topic} partition {id}"),
                    error,
                )
            })?;
    }
    Ok(Some(ends))
}

/// The partitions of `topic`, waiting up to `spec.timeout` for it to appear, because the
/// pipeline may still be creating its topics when the feeder starts; `None` on `stop`.
fn partitions_of(
    consumer: &BaseConsumer,
    spec: &DemoSpec,
    topic: &str,
    stop: &AtomicBool,
) -> Result<Option<Vec<i32>>, DemoError> {
    let started = Instant::now();
    let mut said_waiting = false;
    loop {
        let metadata = consumer
            .fetch_metadata(Some(topic), spec.timeout.min(CONNECT_TIMEOUT))
            .map_err(|error| DemoError::Unreachable {
                bootstrap: spec.bootstrap.clone(),
                error,
            })?;
        let described = metadata.topics().iter().find(|t| t.name() == topic);
        if let Some(described) = described {
            if described.error().is_none() && !described.partitions().is_empty() {
                return Ok(Some(
                    described.partitions().iter().map(|p| p.id()).collect(),
                ));
            }
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if started.elapsed() >= spec.timeout {
            return Err(DemoError::MissingTopic {
                topic: topic.to_string(),
                bootstrap: spec.bootstrap.clone(),
                waited: spec.timeout,
            });
        }
        if !said_waiting {
            said_waiting = true;
            eprintln!("waiting for topic {topic:?} to be created");
        }
        std::thread::sleep(TOPIC_POLL);
    }
}

/// Collects the requests the broker did not take, so their keys stop counting as outstanding.
#[derive(Default)]
struct Deliveries {
    failed: Mutex<Vec<(Option<u64>, KafkaError)>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        if let Err((error, message)) = result {
            let index = message.key().and_then(key_index);
            // A poisoned lock only means a panic elsewhere; the list itself is still sound.
            let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
            failed.push((index, error.clone()));
        }
    }
}

/// The request index in a `demo-<i>` key.
fn key_index(key: &[u8]) -> Option<u64> {
    std::str::from_utf8(key.strip_prefix(KEY_PREFIX.as_bytes())?)
        .ok()?
        .parse()
        .ok()
}

/// The state of one run of the feeder.
struct Feeder<'a> {
    spec: &'a DemoSpec,
    /// End offsets of the requests topic when the run started (see the module doc).
    request_starts: Vec<i64>,
    /// Where reading is in each results partition (indexed by partition), to see drops.
    result_reads: Vec<ResultReads>,
    /// Results dropped by the broker and logged.
    lost_results: u64,
    /// When dropped results were last logged: at most once a second.
    drops_logged_at: Option<Instant>,
    /// Send time of every request still waiting for its result.
    outstanding: HashMap<u64, Instant>,
    next_index: u64,
    results: u64,
    duplicates: u64,
    wrong_outputs: u64,
    first_wrong: Option<String>,
    by_status: BTreeMap<String, u64>,
    latencies: LatencyHistogram,
    first_send: Option<Instant>,
    last_result: Option<Instant>,
    next_send_at: Instant,
    /// Last time a request was sent or a new result read, for `spec.timeout`.
    last_progress: Instant,
    reported_delivery_error: bool,
    reported_consume_error: bool,
    progress: Progress,
    /// Request body up to the index in `"name"`, and from there to the end.
    envelope_head: String,
    envelope_tail: String,
}

impl<'a> Feeder<'a> {
    fn new(spec: &'a DemoSpec, request_starts: Vec<i64>, result_starts: Vec<i64>) -> Feeder<'a> {
        let json = |value: &serde_json::Value| {
            serde_json::to_string(value).expect("a serde_json::Value always serializes")
        };
        let now = Instant::now();
        Feeder {
            spec,
            request_starts,
            result_reads: result_starts
                .into_iter()
                .map(|next| ResultReads {
                    next,
                    unlogged: None,
                })
                .collect(),
            lost_results: 0,
            drops_logged_at: None,
            outstanding: HashMap::with_capacity(spec.max_outstanding.min(1 << 20)),
            next_index: 0,
            results: 0,
            duplicates: 0,
            wrong_outputs: 0,
            first_wrong: None,
            by_status: BTreeMap::new(),
            latencies: LatencyHistogram::new(),
            first_send: None,
            last_result: None,
            next_send_at: now,
            last_progress: now,
            reported_delivery_error: false,
            reported_consume_error: false,
            progress: Progress::new(now),
            envelope_head: format!(
                "{{\"stateMachine\":{},\"name\":\"{KEY_PREFIX}",
                json(&serde_json::Value::from(spec.state_machine.as_str()))
            ),
            envelope_tail: format!("\",\"input\":{}}}", json(&spec.input)),
        }
    }

    fn run(
        mut self,
        producer: &BaseProducer<Deliveries>,
        consumer: &BaseConsumer,
        stop: &AtomicBool,
    ) -> Result<DemoSummary, DemoError> {
        let mut key = String::new();
        let mut value = String::new();
        let mut timed_out = false;
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let finished = self.next_index == self.spec.count
                && self.outstanding.len() as u64 <= self.known_lost();
            if finished {
                break;
            }
            // Only waiting for results can stall; waiting for the rate to allow the next
            // request is not a lack of progress.
            if !self.outstanding.is_empty() && self.last_progress.elapsed() >= self.spec.timeout {
                timed_out = true;
                break;
            }
            let queue_full = self.send(producer, &mut key, &mut value)?;
            producer.poll(Duration::ZERO);
            self.take_delivery_failures(producer.context());
            let wait = self.wait_time(queue_full);
            self.read(consumer, wait);
            if self.progress.due(Instant::now(), self.results) {
                if self
                    .drops_logged_at
                    .is_none_or(|at| at.elapsed() >= DROPS_LOG_INTERVAL)
                {
                    self.log_dropped_results();
                }
                let line = self.live_line();
                self.progress.print(&line);
            }
        }
        self.log_dropped_results();
        // Hand over what was sent before the producer is dropped (which discards its queue).
        // Bounded, because a stop or a timeout should not hang on a broker that went away.
        let _ = producer.flush(Duration::from_secs(1));
        let summary = self.summary();
        // The last line shows the rate over the whole run, not over its last tick.
        self.progress.rate = summary.throughput_per_sec;
        let line = self.live_line();
        self.progress.finish(&line);
        if timed_out {
            eprintln!(
                "no progress for {:?}: gave up waiting for {} results",
                self.spec.timeout,
                self.outstanding.len()
            );
        }
        Ok(summary)
    }

    /// Sends what pacing allows; true when the producer's queue was full.
    fn send(
        &mut self,
        producer: &BaseProducer<Deliveries>,
        key: &mut String,
        value: &mut String,
    ) -> Result<bool, DemoError> {
        let interval = self
            .spec
            .rate_per_sec
            .map(|r| Duration::from_secs_f64(1.0 / r));
        for _ in 0..SEND_BATCH {
            if self.next_index == self.spec.count
                || self.outstanding.len() >= self.spec.max_outstanding
            {
                return Ok(false);
            }
            let now = Instant::now();
            if interval.is_some() && now < self.next_send_at {
                return Ok(false);
            }
            let i = self.next_index;
            key.clear();
            let _ = write!(key, "{KEY_PREFIX}{i}");
            value.clear();
            value.push_str(&self.envelope_head);
            let _ = write!(value, "{i}");
            value.push_str(&self.envelope_tail);
            let record = BaseRecord::to(&self.spec.requests_topic)
                .key(key.as_str())
                .payload(value.as_str());
            match producer.send(record) {
                Ok(()) => {}
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    return Ok(true)
                }
                Err((error, _)) => {
                    return Err(kafka_error(format!("sending request {key}"), error))
                }
            }
            self.outstanding.insert(i, now);
            self.next_index += 1;
            self.first_send.get_or_insert(now);
            self.last_progress = now;
            if let Some(interval) = interval {
                // After a stall (pacing, a full queue) start afresh instead of bursting to
                // catch up, which would measure a queue instead of the pipeline.
                let burst_floor = now.checked_sub(TICK / 2).unwrap_or(now);
                self.next_send_at = (self.next_send_at + interval).max(burst_floor);
            }
        }
        Ok(false)
    }

    fn take_delivery_failures(&mut self, deliveries: &Deliveries) {
        let failed = {
            let mut failed = deliveries.failed.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *failed)
        };
        for (index, error) in failed {
            if let Some(index) = index {
                self.outstanding.remove(&index);
            }
            if !self.reported_delivery_error {
                self.reported_delivery_error = true;
                self.progress.clear_line();
                eprintln!("a request could not be delivered (counted as missing): {error}");
            }
        }
    }

    /// How long the next read may block: not at all while there is sending to do, until the
    /// next send when only the rate holds it back, else until the next live line.
    fn wait_time(&self, queue_full: bool) -> Duration {
        if queue_full {
            return Duration::from_millis(1);
        }
        let room =
            self.next_index < self.spec.count && self.outstanding.len() < self.spec.max_outstanding;
        if !room {
            return TICK;
        }
        match self.spec.rate_per_sec {
            None => Duration::ZERO,
            Some(_) => match self.next_send_at.saturating_duration_since(Instant::now()) {
                wait if wait.is_zero() => wait,
                // Whole milliseconds: rdkafka's poll waits in whole milliseconds and spins
                // through any fraction left over, so a fast rate sends a few per millisecond.
                wait => Duration::from_millis(wait.as_millis().clamp(1, TICK.as_millis()) as u64),
            },
        }
    }

    fn read(&mut self, consumer: &BaseConsumer, wait: Duration) {
        let mut timeout = wait;
        for _ in 0..READ_BATCH {
            let Some(message) = consumer.poll(timeout) else {
                return;
            };
            timeout = Duration::ZERO;
            match message {
                Ok(message) => {
                    self.on_offset(message.partition(), message.offset());
                    self.on_result(message.key(), message.payload(), Instant::now());
                }
                // Mostly transient (librdkafka retries by itself), and a result that never
                // comes is caught by the timeout; the first is shown as a clue to why.
                Err(error) if !self.reported_consume_error => {
                    self.reported_consume_error = true;
                    self.progress.clear_line();
                    eprintln!("reading results: {error}");
                }
                Err(_) => {}
            }
        }
    }

    /// Requests and results the broker is known to have dropped before they were read.
    fn known_lost(&self) -> u64 {
        let requests = self
            .spec
            .requests_dropped
            .as_ref()
            .map_or(0, |n| n.load(Ordering::Acquire));
        requests + self.lost_results + self.unlogged_lost_results()
    }

    fn unlogged_lost_results(&self) -> u64 {
        self.result_reads
            .iter()
            .filter_map(|r| r.unlogged.map(|(n, _, _)| n))
            .sum()
    }

    /// Follows the offsets of a results partition: a jump means the broker dropped results
    /// before they were read (consumers reset to the earliest offset it still has).
    fn on_offset(&mut self, partition: i32, offset: i64) {
        let Some(reads) = usize::try_from(partition)
            .ok()
            .and_then(|p| self.result_reads.get_mut(p))
        else {
            return;
        };
        if offset > reads.next {
            let count = u64::try_from(offset - reads.next).unwrap_or(0);
            reads.unlogged = Some(match reads.unlogged {
                None => (count, reads.next, offset - 1),
                Some((n, first, _)) => (n + count, first, offset - 1),
            });
        }
        reads.next = reads.next.max(offset.saturating_add(1));
    }

    /// Logs and counts the results dropped since the last call, one line per partition.
    fn log_dropped_results(&mut self) {
        let mut logged = false;
        for (partition, reads) in (0i32..).zip(self.result_reads.iter_mut()) {
            let Some((count, first, last)) = reads.unlogged.take() else {
                continue;
            };
            if !logged {
                self.progress.clear_line();
                logged = true;
            }
            ResultsDropped {
                topic: &self.spec.results_topic,
                partition,
                count,
                offsets: (first, last),
            }
            .emit(&mut self.lost_results);
        }
        if logged {
            self.drops_logged_at = Some(Instant::now());
        }
    }

    fn on_result(&mut self, key: Option<&[u8]>, payload: Option<&[u8]>, now: Instant) {
        let Some(index) = key.and_then(key_index) else {
            return;
        };
        let fields = payload.map(ResultFields::read).unwrap_or_default();
        if let Some((topic, partition, offset)) = &fields.source {
            let before_run = usize::try_from(*partition)
                .ok()
                .and_then(|p| self.request_starts.get(p))
                .is_some_and(|&start| *offset < start);
            if topic == &self.spec.requests_topic && before_run {
                return;
            }
        }
        let Some(sent_at) = self.outstanding.remove(&index) else {
            if index < self.next_index {
                self.duplicates += 1;
            }
            return;
        };
        self.results += 1;
        if let Some(expected) = &self.spec.expected_output {
            let output = payload
                .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
                .and_then(|mut v| v.get_mut("output").map(serde_json::Value::take));
            if !output.as_ref().is_some_and(|o| same_json(o, expected)) {
                self.wrong_outputs += 1;
                if self.first_wrong.is_none() {
                    let got = output.map_or("no output".to_string(), |o| o.to_string());
                    self.first_wrong = Some(format!("demo-{index}: {got}"));
                }
            }
        }
        self.latencies
            .record(now.saturating_duration_since(sent_at));
        self.last_result = Some(now);
        self.last_progress = now;
        let status = fields.status.unwrap_or_else(|| "INVALID".to_string());
        if let Some(n) = self.by_status.get_mut(&status) {
            *n += 1;
        } else if self.by_status.len() < MAX_STATUSES {
            self.by_status.insert(status, 1);
        } else {
            *self.by_status.entry("OTHER".to_string()).or_default() += 1;
        }
    }

    fn live_line(&self) -> String {
        let mut line = format!(
            "sent {}  done {}  {} exec/s  p50 {}  p99 {}",
            self.next_index,
            self.results,
            thousands(self.progress.rate.round() as u64),
            format_latency(self.latencies.percentile(0.50)),
            format_latency(self.latencies.percentile(0.99)),
        );
        for (status, n) in &self.by_status {
            let _ = write!(line, "  {status} {n}");
        }
        line
    }

    fn summary(&self) -> DemoSummary {
        let elapsed = match (self.first_send, self.last_result) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            (Some(first), None) => first.elapsed(),
            _ => Duration::ZERO,
        };
        let throughput_per_sec = if elapsed.is_zero() {
            0.0
        } else {
            self.results as f64 / elapsed.as_secs_f64()
        };
        DemoSummary {
            sent: self.next_index,
            results: self.results,
            by_status: self.by_status.clone(),
            elapsed,
            throughput_per_sec,
            latency_p50: self.latencies.percentile(0.50),
            latency_p99: self.latencies.percentile(0.99),
            latency_max: self.latencies.max(),
            missing: self.next_index - self.results,
            lost_results: self.lost_results + self.unlogged_lost_results(),
            lost_requests: None,
            duplicates: self.duplicates,
            wrong_outputs: self.wrong_outputs,
            first_wrong: self.first_wrong.clone(),
        }
    }
}

impl DemoSummary {
    /// Multi-line human summary.
    pub fn report(&self) -> String {
        let statuses = if self.by_status.is_empty() {
            "none".to_string()
        } else {
            self.by_status
                .iter()
                .map(|(status, n)| format!("{status} {n}"))
                .collect::<Vec<_>>()
                .join("  ")
        };
        format!(
            "sent        {sent} requests\n\
             results     {results} (missing {missing}, duplicates {duplicates})\n\
             statuses    {statuses}\n\
             elapsed     {elapsed:.2} s\n\
             throughput  {throughput} exec/s\n\
             latency     p50 {p50}  p99 {p99}  max {max}\n\
             lost        {lost} (dropped by the broker before they were read)",
            lost = match self.lost_requests {
                Some(requests) => format!("{requests} requests, {} results", self.lost_results),
                None => format!("{} results", self.lost_results),
            },
            sent = self.sent,
            results = self.results,
            missing = self.missing,
            duplicates = self.duplicates,
            elapsed = self.elapsed.as_secs_f64(),
            throughput = thousands(self.throughput_per_sec.round() as u64),
            p50 = format_latency(self.latency_p50),
            p99 = format_latency(self.latency_p99),
            max = format_latency(self.latency_max),
        ) + &match (&self.first_wrong, self.wrong_outputs) {
            (_, 0) => String::new(),
            (Some(first), n) => {
                format!("\nWRONG       {n} outputs differ from the expected one; first: {first}")
            }
            (None, n) => format!("\nWRONG       {n} outputs differ from the expected one"),
        }
    }
}

/// One results partition as the feeder reads it.
struct ResultReads {
    /// One past the highest offset read.
    next: i64,
    /// Results dropped and not logged yet: how many, first and last offset.
    unlogged: Option<(u64, i64, i64)>,
}

/// How often dropped results are logged at most.
const DROPS_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The broker dropped results before the feeder read them: an event that logs and counts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ResultsDropped<'a> {
    topic: &'a str,
    partition: i32,
    count: u64,
    /// First and last offset dropped.
    offsets: (i64, i64),
}

impl ResultsDropped<'_> {
    fn emit(&self, total: &mut u64) {
        *total += self.count;
        eprintln!(
            "the broker dropped {} results from {}/{} (offsets {}..{}) before the feeder read \
             them (an embedded broker keeps only 5 MiB per partition; use a real Kafka for \
             real loads)",
            self.count, self.topic, self.partition, self.offsets.0, self.offsets.1
        );
    }
}

/// Structural equality with numbers compared by value (`24.0 == 24`): expected outputs
/// written by hand or by JavaScript engines do not keep a float's `.0`.
pub fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// The live line on stderr: rewritten in place on a terminal, one line per tick otherwise.
struct Progress {
    terminal: bool,
    next_print: Instant,
    /// Results and time at the previous line, for the current rate.
    window_start: (u64, Instant),
    /// Results per second since the previous line.
    rate: f64,
    printed: bool,
}

impl Progress {
    fn new(now: Instant) -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            next_print: now + TICK,
            window_start: (0, now),
            rate: 0.0,
            printed: false,
        }
    }

    /// True when a line is due; then updates the rate to the one since the previous line.
    fn due(&mut self, now: Instant, results: u64) -> bool {
        if now < self.next_print {
            return false;
        }
        let (before, since) = self.window_start;
        let seconds = now.saturating_duration_since(since).as_secs_f64();
        if seconds > 0.0 {
            self.rate = results.saturating_sub(before) as f64 / seconds;
        }
        self.window_start = (results, now);
        self.next_print = now + TICK;
        true
    }

    fn print(&mut self, line: &str) {
        let mut stderr = std::io::stderr().lock();
        // Progress output is best effort: a closed stderr must not stop the run.
        let _ = if self.terminal {
            write!(stderr, "\r{line}\x1b[K")
        } else {
            writeln!(stderr, "{line}")
        };
        let _ = stderr.flush();
        self.printed = true;
    }

    /// Makes room for a message of its own line.
    fn clear_line(&mut self) {
        if self.terminal && self.printed {
            eprint!("\r\x1b[K");
        }
    }

    /// Prints the last line and leaves the cursor below it.
    fn finish(&mut self, line: &str) {
        self.print(line);
        if self.terminal {
            eprintln!();
        }
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let head = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        short => short,
    };
    let (first, rest) = digits.split_at(head);
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    out.push_str(first);
    for group in rest.as_bytes().chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).expect("decimal digits are ASCII"));
    }
    out
}

/// A latency as people read it: `0.35 ms`, `1.2 ms`, `2.50 s`.
fn format_latency(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// The fields of a result the feeder needs.
#[derive(Debug, Default, PartialEq)]
struct ResultFields {
    status: Option<String>,
    /// `source`: topic, partition, offset of the request.
    source: Option<(String, i64, i64)>,
}

impl ResultFields {
    /// Reads `status` and `source` from a result. Results carry the whole output and arrive
    /// at the pipeline's full rate, so the top level is scanned without building a tree;
    /// anything unusual (escaped keys or status) goes through serde_json instead.
    fn read(bytes: &[u8]) -> ResultFields {
        scan_top_level(bytes).unwrap_or_else(|| Self::read_slowly(bytes))
    }

    fn read_slowly(bytes: &[u8]) -> ResultFields {
        let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(bytes) else {
            return ResultFields::default();
        };
        ResultFields {
            status: fields
                .get("status")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
            source: fields.get("source").and_then(source_of),
        }
    }
}

fn source_of(source: &serde_json::Value) -> Option<(String, i64, i64)> {
    Some((
        source.get("topic")?.as_str()?.to_string(),
        source.get("partition")?.as_i64()?,
        source.get("offset")?.as_i64()?,
    ))
}

/// The fast path of [`ResultFields::read`]; `None` sends the result to the slow path.
fn scan_top_level(bytes: &[u8]) -> Option<ResultFields> {
    let mut scan = Scanner { bytes, pos: 0 };
    let mut fields = ResultFields::default();
    scan.skip_whitespace();
    scan.expect(b'{')?;
    scan.skip_whitespace();
    if scan.peek()? == b'}' {
        return Some(fields);
    }
    loop {
        scan.skip_whitespace();
        let key = scan.string()?;
        if key.contains(&b'\\') {
            return None;
        }
        scan.skip_whitespace();
        scan.expect(b':')?;
        scan.skip_whitespace();
        let start = scan.pos;
        scan.skip_value()?;
        let value = &bytes[start..scan.pos];
        match key {
            b"status" => {
                fields.status = match value {
                    b"null" => None,
                    [b'"', text @ .., b'"'] if !text.contains(&b'\\') => {
                        Some(std::str::from_utf8(text).ok()?.to_string())
                    }
                    _ => return None,
                }
            }
            b"source" => {
                fields.source = serde_json::from_slice::<serde_json::Value>(value)
                    .ok()
                    .as_ref()
                    .and_then(source_of);
            }
            _ => {}
        }
        scan.skip_whitespace();
        match scan.next()? {
            b',' => {}
            b'}' => return Some(fields),
            _ => return None,
        }
    }
}

/// A cursor over JSON text that skips values without decoding them.
struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// A string's raw (still escaped) content.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.pos;
        loop {
            match self.next()? {
                b'"' => return Some(&self.bytes[start..self.pos - 1]),
                b'\\' => {
                    self.next()?;
                }
                _ => {}
            }
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.pos += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
            }
            _ => {
                let start = self.pos;
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.pos += 1;
                }
                (self.pos > start).then_some(())
            }
        }
    }
}

/// Latencies in a fixed log-scale histogram: each power of two is split into 32 buckets, so
/// a percentile is within ~1.6 % of the exact value at any scale, in 15 KiB for any count.
struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
    max_nanos: u64,
}

/// Bits of a value kept below its leading one: 2^5 = 32 buckets per power of two.
const SUB_BITS: u32 = 5;
const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// Enough buckets for any u64 number of nanoseconds.
const BUCKETS: usize = (SUB_BUCKETS + (64 - SUB_BITS as u64) * SUB_BUCKETS) as usize;

impl LatencyHistogram {
    fn new() -> LatencyHistogram {
        LatencyHistogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max_nanos: 0,
        }
    }

    fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.counts[bucket_of(nanos)] += 1;
        self.total += 1;
        self.max_nanos = self.max_nanos.max(nanos);
    }

    /// The value below which a fraction `q` (0..=1) of the recorded latencies lie.
    fn percentile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        // The rank of the wanted value among the sorted values, counting from 1.
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_nanos(bucket_middle(bucket).min(self.max_nanos));
            }
        }
        self.max()
    }

    fn max(&self) -> Duration {
        Duration::from_nanos(self.max_nanos)
    }
}

/// Values below 32 get a bucket each; above, a bucket spans 1/32 of the value's power of two.
fn bucket_of(nanos: u64) -> usize {
    if nanos < SUB_BUCKETS {
        return nanos as usize;
    }
    let shift = 63 - nanos.leading_zeros() - SUB_BITS;
    let sub = (nanos >> shift) - SUB_BUCKETS;
    (SUB_BUCKETS + u64::from(shift) * SUB_BUCKETS + sub) as usize
}

/// The middle of a bucket, which halves the worst error against its lower bound.
fn bucket_middle(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB_BUCKETS {
        return bucket;
    }
    let shift = (bucket - SUB_BUCKETS) / SUB_BUCKETS;
    let sub = (bucket - SUB_BUCKETS) % SUB_BUCKETS;
    let low = (SUB_BUCKETS + sub) << shift;
    low + ((1u64 << shift) >> 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers (xorshift64), so the tests need no crate.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// The exact percentile of sorted values, by the same rank rule as the histogram.
    fn exact(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    fn assert_close(histogram: &LatencyHistogram, sorted: &[u64], q: f64, tolerance: f64) {
        let want = exact(sorted, q) as f64;
        let got = histogram.percentile(q).as_nanos() as f64;
        let error = (got - want).abs() / want;
        assert!(
            error <= tolerance,
            "p{}: got {got}, exact {want}, error {:.2} %",
            q * 100.0,
            error * 100.0
        );
    }

    fn histogram_of(values: &[u64]) -> LatencyHistogram {
        let mut histogram = LatencyHistogram::new();
        for &v in values {
            histogram.record(Duration::from_nanos(v));
        }
        histogram
    }

    #[test]
    fn histogram_percentiles_are_within_two_percent_on_uniform_data() {
        // 1 µs .. 100 ms in 1 µs steps, shuffled order must not matter.
        let mut values: Vec<u64> = (1..=100_000).map(|us| us * 1_000).collect();
        let mut state = 7;
        for i in (1..values.len()).rev() {
            let j = (xorshift(&mut state) % (i as u64 + 1)) as usize;
            values.swap(i, j);
        }
        let histogram = histogram_of(&values);
        values.sort_unstable();
        for q in [0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_close(&histogram, &values, q, 0.02);
        }
    }

    #[test]
    fn histogram_percentiles_are_within_two_percent_on_a_long_tail() {
        // Log-uniform from 10 µs to 10 s: six decades, as latencies under load spread.
        let mut state = 42;
        let mut values: Vec<u64> = (0..200_000)
            .map(|_| {
                let unit = (xorshift(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
                (10_000.0 * 1e6f64.powf(unit)) as u64
            })
            .collect();
        let histogram = histogram_of(&values);
        values.sort_unstable();
        for q in [0.1, 0.5, 0.9, 0.99, 0.999] {
            assert_close(&histogram, &values, q, 0.02);
        }
    }

    #[test]
    fn histogram_keeps_a_rare_slow_outlier_out_of_p99_but_in_max() {
        let mut values = vec![1_000_000; 999];
        values.push(5_000_000_000);
        let histogram = histogram_of(&values);
        assert_close(&histogram, &values, 0.99, 0.02);
        assert_eq!(histogram.max(), Duration::from_secs(5));
    }

    #[test]
    fn histogram_is_exact_below_64_nanoseconds() {
        for v in 0..64 {
            assert_eq!(bucket_middle(bucket_of(v)), v);
        }
        let histogram = histogram_of(&[3, 1, 2]);
        assert_eq!(histogram.percentile(0.5), Duration::from_nanos(2));
    }

    #[test]
    fn histogram_buckets_cover_every_u64_in_fixed_memory() {
        assert_eq!(BUCKETS, 1920);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        let mut histogram = LatencyHistogram::new();
        histogram.record(Duration::MAX);
        assert_eq!(histogram.counts.len(), BUCKETS);
        let p50 = histogram.percentile(0.5).as_nanos() as f64;
        assert!((u64::MAX as f64 - p50) / (u64::MAX as f64) < 1.0 / 64.0);
        assert_eq!(histogram.max(), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn histogram_bucket_middles_are_within_a_64th_of_the_value() {
        let mut state = 1;
        for _ in 0..100_000 {
            let v = xorshift(&mut state) >> (xorshift(&mut state) % 60);
            let middle = bucket_middle(bucket_of(v)) as f64;
            assert!(
                (middle - v as f64).abs() <= v as f64 / 64.0,
                "{v} -> {middle}"
            );
        }
    }

    #[test]
    fn empty_histogram_reports_zero() {
        let histogram = LatencyHistogram::new();
        assert_eq!(histogram.percentile(0.99), Duration::ZERO);
        assert_eq!(histogram.max(), Duration::ZERO);
    }

    const RESULT: &str = r#"{"executionArn":"arn:aws:states:local:000000000000:express:m:demo-7:u","stateMachineArn":"arn:aws:states:local:000000000000:stateMachine:m","name":"demo-7","status":"FAILED","startDate":"2026-11-21T10:00:00.123Z","stopDate":"2026-11-21T10:00:00.124Z","output":{"status":"SUCCEEDED","s":"}]\"{[","n":[1,{"a":null}]},"error":"States.TaskFailed","cause":"x \"status\": \"OK\"","billingDetails":{"billedDurationInMilliseconds":100,"billedMemoryUsedInMB":64},"source":{"topic":"requests","partition":3,"offset":1042}}"#;

    fn fields(status: &str, partition: i64, offset: i64) -> ResultFields {
        ResultFields {
            status: Some(status.to_string()),
            source: Some(("requests".to_string(), partition, offset)),
        }
    }

    #[test]
    fn result_fields_come_from_the_top_level_only() {
        assert_eq!(
            scan_top_level(RESULT.as_bytes()),
            Some(fields("FAILED", 3, 1042))
        );
    }

    #[test]
    fn result_fields_are_read_from_pretty_printed_json() {
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(RESULT).expect("valid test JSON"),
        )
        .expect("serializes");
        assert_eq!(
            scan_top_level(pretty.as_bytes()),
            Some(fields("FAILED", 3, 1042))
        );
    }

    #[test]
    fn escaped_status_goes_through_serde_json() {
        let escaped =
            r#"{"status":"SUCC\u0045EDED","source":{"topic":"requests","partition":0,"offset":5}}"#;
        assert_eq!(scan_top_level(escaped.as_bytes()), None);
        assert_eq!(
            ResultFields::read(escaped.as_bytes()),
            fields("SUCCEEDED", 0, 5)
        );
    }

    #[test]
    fn unreadable_results_have_no_fields() {
        for bytes in [
            &b"not json"[..],
            b"",
            b"[1,2]",
            b"{\"status\":",
            b"{\"status\":}",
        ] {
            assert_eq!(
                ResultFields::read(bytes),
                ResultFields::default(),
                "{bytes:?}"
            );
        }
        let no_source = ResultFields::read(br#"{"status":"TIMED_OUT","source":null}"#);
        assert_eq!(no_source.status.as_deref(), Some("TIMED_OUT"));
        assert_eq!(no_source.source, None);
    }

    #[test]
    fn key_index_reads_only_demo_keys() {
        assert_eq!(key_index(b"demo-0"), Some(0));
        assert_eq!(key_index(b"demo-18446744073709551615"), Some(u64::MAX));
        for key in [&b"demo-"[..], b"demo-x", b"order-1", b"demo--1", b"\xff"] {
            assert_eq!(key_index(key), None, "{key:?}");
        }
    }

    fn spec() -> DemoSpec {
        DemoSpec {
            bootstrap: "127.0.0.1:9092".to_string(),
            requests_topic: "requests".to_string(),
            results_topic: "results".to_string(),
            state_machine: "say \"hi\"".to_string(),
            input: serde_json::json!({"b": 1, "a": [true]}),
            count: 10,
            rate_per_sec: None,
            max_outstanding: 4,
            timeout: Duration::from_secs(1),
            client_properties: vec![],
            expected_output: None,
            requests_dropped: None,
        }
    }

    #[test]
    fn request_envelope_follows_the_contract() {
        let spec = spec();
        let feeder = Feeder::new(&spec, vec![0], vec![0]);
        let body = format!("{}{}{}", feeder.envelope_head, 42, feeder.envelope_tail);
        assert_eq!(
            body,
            r#"{"stateMachine":"say \"hi\"","name":"demo-42","input":{"b":1,"a":[true]}}"#
        );
    }

    #[test]
    fn each_result_counts_once_and_earlier_runs_are_ignored() {
        let spec = spec();
        // Partition 3 of the requests topic was at offset 1000 when this run started.
        let mut feeder = Feeder::new(&spec, vec![0, 0, 0, 1000], vec![0]);
        let sent = Instant::now();
        for i in 0..3 {
            feeder.outstanding.insert(i, sent);
        }
        feeder.next_index = 3;
        let result = |status: &str, offset: i64| {
            format!(
                r#"{{"status":"{status}","source":{{"topic":"requests","partition":3,"offset":{offset}}}}}"#
            )
        };
        let later = sent + Duration::from_millis(2);
        // An earlier run's answer for the same key: skipped, still outstanding.
        feeder.on_result(
            Some(b"demo-0"),
            Some(result("FAILED", 999).as_bytes()),
            later,
        );
        assert_eq!((feeder.results, feeder.duplicates), (0, 0));
        feeder.on_result(
            Some(b"demo-0"),
            Some(result("SUCCEEDED", 1000).as_bytes()),
            later,
        );
        feeder.on_result(
            Some(b"demo-0"),
            Some(result("SUCCEEDED", 1000).as_bytes()),
            later,
        );
        feeder.on_result(Some(b"demo-1"), Some(b"garbage"), later);
        // Not sent yet, or not ours: ignored.
        feeder.on_result(
            Some(b"demo-7"),
            Some(result("SUCCEEDED", 1005).as_bytes()),
            later,
        );
        feeder.on_result(Some(b"other"), None, later);
        feeder.on_result(None, None, later);
        let summary = feeder.summary();
        assert_eq!(
            (summary.results, summary.duplicates, summary.missing),
            (2, 1, 1)
        );
        assert_eq!(
            summary.by_status,
            BTreeMap::from([("INVALID".to_string(), 1), ("SUCCEEDED".to_string(), 1)])
        );
        assert_eq!(summary.latency_max, Duration::from_millis(2));
    }

    #[test]
    fn results_the_broker_skipped_count_as_lost_once() {
        let spec = spec();
        let mut feeder = Feeder::new(&spec, vec![0], vec![10, 0]);
        for (partition, offset) in [(0, 10), (0, 11), (0, 20), (1, 5), (0, 15), (0, 21), (7, 3)] {
            feeder.on_offset(partition, offset);
        }
        assert_eq!(feeder.summary().lost_results, 8 + 5);
        feeder.log_dropped_results();
        assert_eq!(feeder.lost_results, 13);
        feeder.log_dropped_results();
        assert_eq!(feeder.summary().lost_results, 13);
    }

    #[test]
    fn results_the_embedded_broker_dropped_unread_are_exactly_the_missing_ones() {
        use crate::pipeline::embedded::EmbeddedBroker;
        use rdkafka::producer::{DefaultProducerContext, ThreadedProducer};

        let broker = EmbeddedBroker::start(&[("requests", 1), ("results", 1)])
            .expect("the mock cluster starts");
        let mut spec = spec();
        spec.bootstrap = broker.bootstrap_servers().to_string();
        spec.count = 8_000;
        let mut feeder = Feeder::new(&spec, vec![0], vec![0]);
        let sent = Instant::now();
        for i in 0..spec.count {
            feeder.outstanding.insert(i, sent);
        }
        feeder.next_index = spec.count;

        // 8,000 results of about 1 KiB, uncompressed, written before the feeder reads (its
        // consumer would fetch them into its own queue as they come): the embedded broker
        // keeps 5 MiB of them.
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &spec.bootstrap)
            .set("compression.type", "none")
            .create()
            .expect("a producer");
        let result = format!(
            r#"{{"status":"SUCCEEDED","output":"{}"}}"#,
            "x".repeat(1000)
        );
        for i in 0..spec.count {
            let key = format!("demo-{i}");
            let mut record = BaseRecord::to("results")
                .partition(0)
                .key(&key)
                .payload(&result);
            while let Err((_, back)) = producer.send(record) {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        producer
            .flush(Duration::from_secs(30))
            .expect("all written");
        let consumer = results_consumer(&spec).expect("a results consumer");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset("results", 0, Offset::Offset(0))
            .expect("a valid assignment");
        consumer.assign(&assignment).expect("assigned");
        let (low, high) = consumer
            .fetch_watermarks("results", 0, Duration::from_secs(5))
            .expect("watermarks");
        assert!(low > 1_000 && high == 8_000, "low {low} high {high}");

        let started = Instant::now();
        while feeder.results < 8_000 - low as u64 && started.elapsed() < Duration::from_secs(20) {
            feeder.read(&consumer, Duration::from_millis(50));
        }
        feeder.log_dropped_results();
        let summary = feeder.summary();
        assert_eq!(summary.lost_results, low as u64);
        assert_eq!(summary.results, 8_000 - low as u64);
        assert_eq!(summary.missing, summary.lost_results);
    }

    #[test]
    fn status_names_beyond_the_cap_count_as_other() {
        let mut spec = spec();
        spec.count = 100;
        let mut feeder = Feeder::new(&spec, vec![0], vec![0]);
        let now = Instant::now();
        for i in 0..20u64 {
            feeder.outstanding.insert(i, now);
            feeder.next_index = i + 1;
            let body = format!(r#"{{"status":"S{i}"}}"#);
            feeder.on_result(
                Some(format!("demo-{i}").as_bytes()),
                Some(body.as_bytes()),
                now,
            );
        }
        assert_eq!(feeder.by_status.len(), MAX_STATUSES + 1);
        assert_eq!(feeder.by_status.get("OTHER"), Some(&4));
    }

    #[test]
    fn spec_without_room_or_with_a_bad_rate_is_rejected() {
        let mut no_room = spec();
        no_room.max_outstanding = 0;
        let mut bad_rate = spec();
        bad_rate.rate_per_sec = Some(f64::NAN);
        for spec in [no_room, bad_rate] {
            let stop = AtomicBool::new(false);
            assert!(matches!(run(&spec, &stop), Err(DemoError::InvalidSpec(_))));
        }
    }

    #[test]
    fn numbers_read_like_the_live_line() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(4500), "4,500");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(format_latency(Duration::from_micros(350)), "0.35 ms");
        assert_eq!(format_latency(Duration::from_micros(1_200)), "1.2 ms");
        assert_eq!(format_latency(Duration::from_millis(2_500)), "2.50 s");
    }

    #[test]
    fn report_names_every_figure() {
        let summary = DemoSummary {
            sent: 12_000,
            results: 11_800,
            by_status: BTreeMap::from([
                ("FAILED".to_string(), 10),
                ("SUCCEEDED".to_string(), 11_790),
            ]),
            elapsed: Duration::from_secs(2),
            throughput_per_sec: 5_900.0,
            latency_p50: Duration::from_micros(1_200),
            latency_p99: Duration::from_micros(4_500),
            latency_max: Duration::from_millis(9),
            missing: 200,
            lost_results: 150,
            lost_requests: Some(50),
            duplicates: 3,
            wrong_outputs: 0,
            first_wrong: None,
        };
        let report = summary.report();
        for part in [
            "12000",
            "11800",
            "missing 200",
            "duplicates 3",
            "FAILED 10",
            "5,900 exec/s",
            "p50 1.2 ms",
            "p99 4.5 ms",
            "max 9.0 ms",
            "lost        50 requests, 150 results",
        ] {
            assert!(report.contains(part), "{part:?} not in\n{report}");
        }
    }
}
