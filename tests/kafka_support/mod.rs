//! A real Kafka broker and real `stepstream run` processes, for the pipeline tests.
//!
//! The broker is the one `scripts/kafka/start.sh` runs: its address comes from
//! `$KAFKA_BOOTSTRAP`, else from `.cache/kafka/run/current/bootstrap`. Without either the
//! tests fail (they never skip) and say how to start it.
//!
//! - [`create_topics`] makes a test's own topics (unique names, so tests share one broker);
//! - [`Processor`] runs `stepstream run` with a generated config, keeps its stderr in a file,
//!   and kills it when dropped (printing the stderr tail if the test is failing);
//! - [`produce`] writes records and returns where each one landed;
//! - [`Collector`] reads a topic from the beginning in the background while the test waits.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use serde_json::Value;

/// How long a test waits for results before it gives up (it returns as soon as they are in).
pub const RESULTS_TIMEOUT: Duration = Duration::from_secs(120);

const START_HINT: &str = "start the test broker first, from the repository root:\n    \
     kafka_env=\"$(scripts/kafka/start.sh)\"; export \"$kafka_env\"\n\
     (it prints KAFKA_BOOTSTRAP=127.0.0.1:<port> and writes .cache/kafka/run/current/bootstrap); \
     stop it afterwards with scripts/kafka/stop.sh";

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The folder of state machines the pipeline tests run (`*.asl.json`, `*.tasks.json`).
pub fn fixtures_dir() -> PathBuf {
    repo_root().join("tests/fixtures/pipeline")
}

/// The broker address, checked once to answer a metadata request.
pub fn bootstrap() -> String {
    static ADDRESS: OnceLock<String> = OnceLock::new();
    ADDRESS
        .get_or_init(|| {
            let address = find_bootstrap();
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &address)
                .create()
                .expect("a metadata client can be configured");
            if let Err(e) = consumer.fetch_metadata(None, Duration::from_secs(15)) {
                panic!(
                    "the Kafka broker at {address} does not answer ({e}); a stale bootstrap file? {START_HINT}"
                );
            }
            eprintln!("kafka: using the broker at {address}");
            address
        })
        .clone()
}

fn find_bootstrap() -> String {
    if let Ok(v) = std::env::var("KAFKA_BOOTSTRAP") {
        if !v.trim().is_empty() {
            return v.trim().to_string();
        }
    }
    let file = repo_root().join(".cache/kafka/run/current/bootstrap");
    match std::fs::read_to_string(&file) {
        Ok(text) if !text.trim().is_empty() => text.trim().to_string(),
        _ => panic!(
            "no Kafka broker for the pipeline tests: KAFKA_BOOTSTRAP is not set and {} does not exist; {START_HINT}",
            file.display()
        ),
    }
}

/// A name no other test run uses: `ss-<tag>-<12 hex digits>`.
pub fn unique(tag: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("ss-{tag}-{}", &id[..12])
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
        .block_on(future)
}

/// Creates topics (name, partitions) with replication 1 and waits until their leaders are known.
pub fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("an admin client can be configured");
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = block_on(admin.create_topics(new.iter(), &opts))
        .unwrap_or_else(|e| panic!("creating topics {topics:?} failed: {e}"));
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => panic!("creating topic {name} failed: {code}"),
        }
    }
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("a metadata client can be configured");
    for (name, partitions) in topics {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if partition_count(&probe, name) == Some(*partitions as usize) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "topic {name} has no leaders 30 s after it was created"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The topic's partition count once every partition has a leader; `None` while it does not exist.
fn partition_count(client: &BaseConsumer, topic: &str) -> Option<usize> {
    let md = client
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() || t.partitions().is_empty() {
        return None;
    }
    if t.partitions()
        .iter()
        .any(|p| p.leader() < 0 || p.error().is_some())
    {
        return None;
    }
    Some(t.partitions().len())
}

/// What a `stepstream run` process is configured with (rendered to a TOML file).
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// `kafka.brokers`.
    pub brokers: String,
    /// `kafka.group_id`.
    pub group_id: String,
    /// `kafka.partitions` (for topics the processor creates).
    pub partitions: i32,
    /// `kafka.commit_interval_ms`.
    pub commit_interval_ms: u64,
    /// `topics.results`.
    pub results: String,
    /// `topics.errors`.
    pub errors: String,
    /// `[[inputs]]`: topic and, for a bound topic, its state machine.
    pub inputs: Vec<(String, Option<String>)>,
    /// `engine.state_machines_dir`.
    pub state_machines_dir: PathBuf,
    /// `engine.shards`.
    pub shards: usize,
    /// `engine.max_in_flight_per_shard`.
    pub max_in_flight_per_shard: usize,
    /// `engine.shutdown_grace_seconds`.
    pub shutdown_grace_seconds: u64,
    /// `[kafka.properties]`: librdkafka client properties.
    pub properties: Vec<(String, String)>,
    /// `metrics.listen`: `"off"` unless a test scrapes it (parallel processors share ports).
    pub metrics_listen: String,
    /// `metrics.topic` (empty: none).
    pub metrics_topic: String,
    /// `metrics.interval_seconds`.
    pub metrics_interval_seconds: u64,
    /// `api.listen`: `"off"` unless a test calls the API (parallel processors share ports).
    pub api_listen: String,
}

impl ProcessorConfig {
    /// A config for one test's topics and group, with the test fixtures as state machines.
    pub fn new(brokers: &str, group_id: &str, results: &str, errors: &str) -> ProcessorConfig {
        ProcessorConfig {
            brokers: brokers.to_string(),
            group_id: group_id.to_string(),
            partitions: 4,
            commit_interval_ms: 200,
            results: results.to_string(),
            errors: errors.to_string(),
            inputs: Vec::new(),
            state_machines_dir: fixtures_dir(),
            shards: 2,
            max_in_flight_per_shard: 10_000,
            shutdown_grace_seconds: 10,
            properties: Vec::new(),
            metrics_listen: "off".to_string(),
            metrics_topic: String::new(),
            metrics_interval_seconds: 10,
            api_listen: "off".to_string(),
        }
    }

    /// Sets a librdkafka client property for the processor.
    pub fn property(mut self, name: &str, value: &str) -> ProcessorConfig {
        self.properties.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds an envelope topic (`{"stateMachine", "name", "input"}` records).
    pub fn envelope_input(mut self, topic: &str) -> ProcessorConfig {
        self.inputs.push((topic.to_string(), None));
        self
    }

    /// Adds a topic bound to one state machine (the whole value is the input).
    pub fn bound_input(mut self, topic: &str, state_machine: &str) -> ProcessorConfig {
        self.inputs
            .push((topic.to_string(), Some(state_machine.to_string())));
        self
    }

    /// The config file text.
    pub fn to_toml(&self) -> String {
        let s = |v: &str| serde_json::to_string(v).expect("a string serializes");
        let mut t = String::new();
        let _ = writeln!(t, "[kafka]");
        let _ = writeln!(t, "brokers = {}", s(&self.brokers));
        let _ = writeln!(t, "group_id = {}", s(&self.group_id));
        let _ = writeln!(t, "create_topics = true");
        let _ = writeln!(t, "partitions = {}", self.partitions);
        let _ = writeln!(t, "auto_offset_reset = \"earliest\"");
        let _ = writeln!(t, "commit_interval_ms = {}", self.commit_interval_ms);
        if !self.properties.is_empty() {
            let _ = writeln!(t, "\n[kafka.properties]");
            for (k, v) in &self.properties {
                let _ = writeln!(t, "{} = {}", s(k), s(v));
            }
        }
        let _ = writeln!(t, "\n[topics]");
        let _ = writeln!(t, "results = {}", s(&self.results));
        let _ = writeln!(t, "errors = {}", s(&self.errors));
        for (topic, machine) in &self.inputs {
            let _ = writeln!(t, "\n[[inputs]]");
            let _ = writeln!(t, "topic = {}", s(topic));
            if let Some(m) = machine {
                let _ = writeln!(t, "state_machine = {}", s(m));
            }
        }
        let _ = writeln!(t, "\n[engine]");
        let dir = self
            .state_machines_dir
            .to_str()
            .expect("the fixtures path is UTF-8");
        let _ = writeln!(t, "state_machines_dir = {}", s(dir));
        let _ = writeln!(t, "shards = {}", self.shards);
        let _ = writeln!(
            t,
            "max_in_flight_per_shard = {}",
            self.max_in_flight_per_shard
        );
        let _ = writeln!(
            t,
            "shutdown_grace_seconds = {}",
            self.shutdown_grace_seconds
        );
        let _ = writeln!(t, "\n[metrics]");
        let _ = writeln!(t, "listen = {}", s(&self.metrics_listen));
        let _ = writeln!(t, "topic = {}", s(&self.metrics_topic));
        let _ = writeln!(t, "interval_seconds = {}", self.metrics_interval_seconds);
        let _ = writeln!(t, "\n[api]");
        let _ = writeln!(t, "listen = {}", s(&self.api_listen));
        t
    }
}

/// A running `stepstream run` child process; killed (SIGKILL) when dropped.
pub struct Processor {
    name: String,
    dir: PathBuf,
    stderr_path: PathBuf,
    child: Child,
    exit: Option<ExitStatus>,
    started: Instant,
}

impl Processor {
    /// Writes the config into a fresh temp dir and starts the processor (does not wait for it).
    pub fn start(name: &str, config: &ProcessorConfig) -> Processor {
        Processor::start_toml(
            name,
            &config.to_toml(),
            Path::new(env!("CARGO_BIN_EXE_stepstream")),
        )
    }

    /// Starts the processor and waits until it prints `stepstream: ready`.
    pub fn start_ready(name: &str, config: &ProcessorConfig) -> Processor {
        let mut p = Processor::start(name, config);
        p.wait_ready(Duration::from_secs(60));
        p
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// This processor's name in the test's messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Everything the processor wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stderr_path).unwrap_or_default()).into_owned()
    }

    /// The last `lines` lines of stderr, framed for a failure message.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = self.stderr();
        let all: Vec<&str> = text.lines().collect();
        let from = all.len().saturating_sub(lines);
        format!(
            "--- stderr of processor {} (pid {}), last {} of {} lines; full file {} ---\n{}\n--- end of stderr of {} ---",
            self.name,
            self.pid(),
            all.len() - from,
            all.len(),
            self.stderr_path.display(),
            all[from..].join("\n"),
            self.name
        )
    }

    /// Whether stderr has a line containing `needle`.
    pub fn stderr_has(&self, needle: &str) -> bool {
        self.stderr().lines().any(|l| l.contains(needle))
    }

    /// The exit status if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("try_wait on a child works");
        }
        self.exit
    }

    /// Waits for `stepstream: ready`; fails (with the stderr tail) if it exits or times out.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr_has("stepstream: ready") {
                eprintln!(
                    "processor {}: ready after {:.1} s",
                    self.name,
                    self.started.elapsed().as_secs_f64()
                );
                return;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "processor {} exited ({status}) before printing `stepstream: ready`\n{}",
                    self.name,
                    self.stderr_tail(60)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "processor {} printed no `stepstream: ready` within {} s\n{}",
                    self.name,
                    timeout.as_secs(),
                    self.stderr_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM (the graceful stop).
    pub fn sigterm(&self) {
        let pid = libc::pid_t::try_from(self.pid()).expect("a pid fits pid_t");
        // SAFETY: kill(2) on our own child's pid; the child is not reaped yet, so the pid is ours.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) of processor {} failed", self.name);
        eprintln!("processor {}: SIGTERM sent", self.name);
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn sigkill(&mut self) -> ExitStatus {
        if let Some(status) = self.exited() {
            return status;
        }
        self.child.kill().expect("SIGKILL to a live child works");
        let status = self.child.wait().expect("wait on a killed child works");
        self.exit = Some(status);
        eprintln!("processor {}: killed with SIGKILL", self.name);
        status
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), while the process lives.
    pub fn proc_status_kb(&self, field: &str) -> Option<u64> {
        proc_status_kb(self.pid(), field)
    }

    /// Samples `VmRSS` every 100 ms in the background, keeping the peak.
    pub fn sample_rss(&self) -> RssSampler {
        RssSampler::start(self.pid())
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.stderr_tail(80));
            eprintln!("(kept {} for inspection)", self.dir.display());
        } else if std::env::var_os("PIPELINE_TEST_KEEP_LOGS").is_some() {
            eprintln!(
                "(kept {} as PIPELINE_TEST_KEEP_LOGS asks)",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The peak resident set size of a process, sampled in the background.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak_kb: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kb = Arc::new(AtomicU64::new(0));
        let handle = {
            let (stop, peak_kb) = (stop.clone(), peak_kb.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match proc_status_kb(pid, "VmRSS") {
                        Some(kb) => {
                            peak_kb.fetch_max(kb, Ordering::Relaxed);
                        }
                        None => return,
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        RssSampler {
            stop,
            peak_kb,
            handle: Some(handle),
        }
    }

    /// The highest `VmRSS` seen so far, in kB.
    pub fn peak_kb(&self) -> u64 {
        self.peak_kb.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One record to produce.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The record key.
    pub key: Vec<u8>,
    /// The value; `None` is a null value (tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers (name, value).
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Outgoing {
    /// A record with a UTF-8 key and any value bytes.
    pub fn new(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Outgoing {
        Outgoing {
            key: key.into().into_bytes(),
            value: Some(value.into()),
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Outgoing {
        self.headers
            .push((name.to_string(), value.as_bytes().to_vec()));
        self
    }
}

/// Where a produced record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Landed {
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
}

struct DeliveryLog {
    landed: Mutex<Vec<Option<Result<Landed, String>>>>,
}

impl ClientContext for DeliveryLog {}

impl ProducerContext for DeliveryLog {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let outcome = match result {
            Ok(m) => Ok(Landed {
                partition: m.partition(),
                offset: m.offset(),
            }),
            Err((e, _)) => Err(e.to_string()),
        };
        self.landed.lock().expect("delivery log lock")[index] = Some(outcome);
    }
}

/// Produces the records (idempotent, acks=all) and returns where each landed, in order.
pub fn produce(bootstrap: &str, topic: &str, records: &[Outgoing]) -> Vec<Landed> {
    let started = Instant::now();
    let context = DeliveryLog {
        landed: Mutex::new(vec![None; records.len()]),
    };
    let producer: BaseProducer<DeliveryLog> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.max.bytes", "2000000")
        .create_with_context(context)
        .expect("a producer can be configured");
    for (index, r) in records.iter().enumerate() {
        let mut headers = OwnedHeaders::new();
        for (name, value) in &r.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value),
            });
        }
        loop {
            let mut record: BaseRecord<'_, [u8], [u8], usize> =
                BaseRecord::with_opaque_to(topic, index).key(&r.key[..]);
            if let Some(v) = &r.value {
                record = record.payload(&v[..]);
            }
            if !r.headers.is_empty() {
                record = record.headers(headers.clone());
            }
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => panic!("producing record {index} to {topic} failed: {e}"),
            }
        }
        if index % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("flushing the producer for {topic} failed: {e}"));
    let landed = std::mem::take(&mut *producer.context().landed.lock().expect("delivery log lock"));
    let landed: Vec<Landed> = landed
        .into_iter()
        .enumerate()
        .map(|(i, l)| match l {
            Some(Ok(l)) => l,
            Some(Err(e)) => panic!("record {i} to {topic} was not delivered: {e}"),
            None => panic!("record {i} to {topic} has no delivery report after flush"),
        })
        .collect();
    eprintln!(
        "produced {} records to {topic} in {:.2} s",
        records.len(),
        started.elapsed().as_secs_f64()
    );
    landed
}

/// A consumed record.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The key (`None` when null).
    pub key: Option<Vec<u8>>,
    /// The value (`None` when null).
    pub value: Option<Vec<u8>>,
    /// Partition of this record.
    pub partition: i32,
    /// Offset of this record.
    pub offset: i64,
}

impl Incoming {
    /// The key as text (lossy), `<null>` for a null key.
    pub fn key_text(&self) -> String {
        match &self.key {
            Some(k) => String::from_utf8_lossy(k).into_owned(),
            None => "<null>".to_string(),
        }
    }

    /// The value parsed as JSON, or an explanation of why it is not.
    pub fn json(&self) -> Result<Value, String> {
        let v = self
            .value
            .as_deref()
            .ok_or_else(|| format!("record {} has a null value", self.key_text()))?;
        serde_json::from_slice(v).map_err(|e| {
            format!(
                "record {} is not JSON ({e}): {}",
                self.key_text(),
                String::from_utf8_lossy(&v[..v.len().min(300)])
            )
        })
    }
}

#[derive(Default)]
struct Seen {
    records: Vec<Incoming>,
    per_key: HashMap<Vec<u8>, usize>,
    last_arrival: Option<Instant>,
}

/// Reads a topic from the beginning in a background thread (assigned partitions, no group
/// membership, no commits). If the topic does not exist yet it waits for it to appear.
pub struct Collector {
    topic: String,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Collector {
    /// Starts reading `topic`.
    pub fn start(bootstrap: &str, topic: &str) -> Collector {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", unique("collector"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.message.max.bytes", "2000000")
            .create()
            .expect("a consumer can be configured");
        let handle = {
            let (seen, stop, topic) = (seen.clone(), stop.clone(), topic.to_string());
            std::thread::spawn(move || collect(consumer, &topic, &seen, &stop))
        };
        Collector {
            topic: topic.to_string(),
            seen,
            stop,
            handle: Some(handle),
        }
    }

    /// Distinct keys seen so far.
    pub fn distinct_keys(&self) -> usize {
        self.seen.lock().expect("collector lock").per_key.len()
    }

    /// Records seen so far.
    pub fn total(&self) -> usize {
        self.seen.lock().expect("collector lock").records.len()
    }

    /// Waits until `n` distinct keys have arrived or `timeout` passes; returns the count seen.
    /// Prints progress every 5 s.
    pub fn wait_for_keys(&self, n: usize, timeout: Duration) -> usize {
        let started = Instant::now();
        let mut next_report = started + Duration::from_secs(5);
        loop {
            let have = self.distinct_keys();
            if have >= n {
                eprintln!(
                    "{}: {have} distinct keys ({} records) after {:.1} s",
                    self.topic,
                    self.total(),
                    started.elapsed().as_secs_f64()
                );
                return have;
            }
            let now = Instant::now();
            if now >= started + timeout {
                eprintln!(
                    "{}: only {have} of {n} distinct keys after {} s",
                    self.topic,
                    timeout.as_secs()
                );
                return have;
            }
            if now >= next_report {
                eprintln!(
                    "{}: {have}/{n} distinct keys after {:.0} s",
                    self.topic,
                    started.elapsed().as_secs_f64()
                );
                next_report = now + Duration::from_secs(5);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until no record has arrived for `quiet` (at most `max`), to catch late duplicates.
    pub fn settle(&self, quiet: Duration, max: Duration) {
        let deadline = Instant::now() + max;
        loop {
            let last = self.seen.lock().expect("collector lock").last_arrival;
            let idle = last.map_or(quiet, |t| t.elapsed());
            if idle >= quiet || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A copy of every record seen, in arrival order.
    pub fn records(&self) -> Vec<Incoming> {
        self.seen.lock().expect("collector lock").records.clone()
    }

    /// The records seen, grouped by key text.
    pub fn by_key(&self) -> BTreeMap<String, Vec<Incoming>> {
        let mut out: BTreeMap<String, Vec<Incoming>> = BTreeMap::new();
        for r in self.records() {
            out.entry(r.key_text()).or_default().push(r);
        }
        out
    }

    /// Records seen minus distinct keys: the duplicates.
    pub fn duplicates(&self) -> usize {
        let s = self.seen.lock().expect("collector lock");
        s.records.len() - s.per_key.len()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn collect(consumer: BaseConsumer, topic: &str, seen: &Mutex<Seen>, stop: &AtomicBool) {
    let partitions = loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if let Some(n) = partition_count(&consumer, topic) {
            break n;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p as i32, Offset::Beginning)
            .expect("a new partition list accepts offsets");
    }
    consumer
        .assign(&tpl)
        .unwrap_or_else(|e| panic!("assigning {topic} to the collector failed: {e}"));
    let mut last_error = String::new();
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let r = Incoming {
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    partition: m.partition(),
                    offset: m.offset(),
                };
                let mut s = seen.lock().expect("collector lock");
                *s.per_key
                    .entry(r.key.clone().unwrap_or_default())
                    .or_default() += 1;
                s.records.push(r);
                s.last_arrival = Some(Instant::now());
            }
            Some(Err(e)) => {
                let text = e.to_string();
                if text != last_error {
                    eprintln!("collector of {topic}: {text}");
                    last_error = text;
                }
            }
            None => {}
        }
    }
}

/// One member of a consumer group and the partitions it holds.
#[derive(Debug, Clone)]
pub struct GroupMember {
    /// Member id given by the coordinator.
    pub id: String,
    /// The member's client.id.
    pub client_id: String,
    /// Assigned partitions by topic.
    pub assignment: BTreeMap<String, Vec<i32>>,
}

/// The group's state (`Stable`, `PreparingRebalance`, ...) and its members with their assignments.
pub fn describe_group(bootstrap: &str, group: &str) -> (String, Vec<GroupMember>) {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("a metadata client can be configured");
    let list = match client.fetch_group_list(Some(group), Duration::from_secs(10)) {
        Ok(l) => l,
        Err(e) => return (format!("unknown ({e})"), Vec::new()),
    };
    let Some(info) = list.groups().iter().find(|g| g.name() == group) else {
        return ("absent".to_string(), Vec::new());
    };
    let members = info
        .members()
        .iter()
        .map(|m| GroupMember {
            id: m.id().to_string(),
            client_id: m.client_id().to_string(),
            assignment: m.assignment().map(decode_assignment).unwrap_or_default(),
        })
        .collect();
    (info.state().to_string(), members)
}

/// Decodes a classic consumer-protocol Assignment: version i16, [topic: string, [partition: i32]], ...
fn decode_assignment(bytes: &[u8]) -> BTreeMap<String, Vec<i32>> {
    let mut out = BTreeMap::new();
    let mut at = 2usize;
    let i16_at = |b: &[u8], at: usize| b.get(at..at + 2).map(|s| i16::from_be_bytes([s[0], s[1]]));
    let i32_at = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    };
    let Some(topics) = i32_at(bytes, at) else {
        return out;
    };
    at += 4;
    for _ in 0..topics.max(0) {
        let Some(len) = i16_at(bytes, at) else {
            return out;
        };
        at += 2;
        let len = len.max(0) as usize;
        let Some(name) = bytes.get(at..at + len) else {
            return out;
        };
        at += len;
        let Some(n) = i32_at(bytes, at) else {
            return out;
        };
        at += 4;
        let mut parts = Vec::new();
        for _ in 0..n.max(0) {
            let Some(p) = i32_at(bytes, at) else {
                return out;
            };
            at += 4;
            parts.push(p);
        }
        parts.sort_unstable();
        out.insert(String::from_utf8_lossy(name).into_owned(), parts);
    }
    out
}

/// Milliseconds since the epoch of an RFC 3339 UTC timestamp like `2026-11-21T10:00:00.123Z`.
pub fn timestamp_ms(text: &str) -> Option<i64> {
    let t = text.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut h = hms.splitn(3, ':');
    let (hh, mm, ss): (i64, i64, i64) = (
        h.next()?.parse().ok()?,
        h.next()?.parse().ok()?,
        h.next()?.parse().ok()?,
    );
    let millis: i64 = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        digits.parse().ok()?
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + millis)
}

/// The most executions whose [start, stop] intervals overlap at one instant (stops first on ties).
pub fn peak_overlap(intervals: &[(i64, i64)]) -> usize {
    let mut events: Vec<(i64, i32)> = Vec::with_capacity(intervals.len() * 2);
    for &(start, stop) in intervals {
        events.push((start, 1));
        events.push((stop, -1));
    }
    events.sort_unstable();
    let (mut now, mut peak) = (0i64, 0i64);
    for (_, delta) in events {
        now += i64::from(delta);
        peak = peak.max(now);
    }
    peak.max(0) as usize
}

/// The group's committed offset per partition of `topic` (`None` where nothing is committed).
/// Reads offsets only; it does not join the group.
pub fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("an offsets client can be configured");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("fetching committed offsets of group {group} failed: {e}"));
    committed
        .elements_for_topic(topic)
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            (e.partition(), offset)
        })
        .collect()
}

/// A topic to create: name, partitions, topic configs (`max.message.bytes`, ...).
pub type TopicSpec<'a> = (&'a str, i32, &'a [(&'a str, &'a str)]);

/// Creates topics with their configs and replication 1, and waits until their leaders are known.
pub fn create_topics_with_configs(bootstrap: &str, topics: &[TopicSpec<'_>]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("an admin client can be configured");
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, partitions, configs)| {
            configs.iter().fold(
                NewTopic::new(name, *partitions, TopicReplication::Fixed(1)),
                |t, (k, v)| t.set(k, v),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = block_on(admin.create_topics(new.iter(), &opts))
        .unwrap_or_else(|e| panic!("creating topics failed: {e}"));
    for result in results {
        if let Err((name, code)) = result {
            panic!("creating topic {name} failed: {code}");
        }
    }
    let plain: Vec<(&str, i32)> = topics.iter().map(|(n, p, _)| (*n, *p)).collect();
    // Already created: this only waits for the leaders.
    create_topics(bootstrap, &plain);
}

/// Checks a dead letter's copy of the original bytes `sent`: exactly one of `original` (text)
/// or `originalBase64`, a prefix of what was sent, `originalTruncated` true exactly when it
/// is shorter, and `originalSize`/`originalSha256` of the whole. Returns what is wrong.
pub fn check_dead_letter_original(v: &Value, sent: &[u8]) -> Vec<String> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let mut wrong = Vec::new();
    let kept: Option<Vec<u8>> = match (v.get("original"), v.get("originalBase64")) {
        (Some(Value::String(t)), None) => {
            if std::str::from_utf8(sent).is_err() {
                wrong.push("original is text but the value sent is not UTF-8".to_string());
            }
            Some(t.as_bytes().to_vec())
        }
        (None, Some(Value::String(b))) => {
            if std::str::from_utf8(sent).is_ok() {
                wrong.push("originalBase64 for a value that is valid UTF-8".to_string());
            }
            match base64::engine::general_purpose::STANDARD.decode(b) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    wrong.push(format!("originalBase64 is not base64: {e}"));
                    None
                }
            }
        }
        (a, b) => {
            wrong.push(format!(
                "want exactly one of original / originalBase64 as a string, got {} / {}",
                a.map_or("absent".to_string(), |x| x
                    .to_string()
                    .chars()
                    .take(60)
                    .collect()),
                b.map_or("absent".to_string(), |x| x
                    .to_string()
                    .chars()
                    .take(60)
                    .collect())
            ));
            None
        }
    };
    if let Some(kept) = kept {
        if !sent.starts_with(&kept) {
            wrong.push(format!(
                "the {} original bytes kept are not a prefix of the {} bytes sent",
                kept.len(),
                sent.len()
            ));
        }
        let truncated = kept.len() < sent.len();
        if v["originalTruncated"] != truncated {
            wrong.push(format!(
                "originalTruncated {} but {} of {} bytes kept",
                v["originalTruncated"],
                kept.len(),
                sent.len()
            ));
        }
    }
    if v["originalSize"] != sent.len() {
        wrong.push(format!(
            "originalSize {} (want {})",
            v["originalSize"],
            sent.len()
        ));
    }
    let digest: String = sha2::Sha256::digest(sent)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if v["originalSha256"] != digest.as_str() {
        wrong.push(format!(
            "originalSha256 {} (want {digest})",
            v["originalSha256"]
        ));
    }
    wrong
}

impl Processor {
    /// Like [`Processor::start`], but runs `binary` (e.g. a release build, or an older build
    /// to compare against) instead of this build's `stepstream`.
    pub fn start_binary(name: &str, config: &ProcessorConfig, binary: &Path) -> Processor {
        Processor::start_toml(name, &config.to_toml(), binary)
    }

    /// Runs `binary` with a config file of the given text.
    pub fn start_toml(name: &str, config_toml: &str, binary: &Path) -> Processor {
        let dir = std::env::temp_dir().join(format!(
            "stepstream-pipeline-{name}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&dir).expect("the temp dir is writable");
        let config_path = dir.join("config.toml");
        std::fs::write(&config_path, config_toml).expect("the config file is writable");
        let stderr_path = dir.join("stderr.log");
        let stderr = File::create(&stderr_path).expect("the stderr file is writable");
        let stdout = File::create(dir.join("stdout.log")).expect("the stdout file is writable");
        let mut cmd = Command::new(binary);
        cmd.arg("run")
            .arg("--config")
            .arg(&config_path)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .env("RUST_BACKTRACE", "1");
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("STEPSTREAM_") {
                cmd.env_remove(var);
            }
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        eprintln!(
            "processor {name}: pid {} started ({}), config and logs in {}",
            child.id(),
            binary.display(),
            dir.display()
        );
        Processor {
            name: name.to_string(),
            dir,
            stderr_path,
            child,
            exit: None,
            started: Instant::now(),
        }
    }
}

/// A broker of a test's own (its own run dir, ports and data), for tests that kill it;
/// stopped and deleted when dropped.
pub struct OwnBroker {
    run_dir: PathBuf,
    /// `127.0.0.1:<port>`.
    pub bootstrap: String,
}

impl OwnBroker {
    /// Starts one with `scripts/kafka/start.sh` in a fresh run dir.
    pub fn start(tag: &str) -> OwnBroker {
        OwnBroker::start_with(tag, "")
    }

    /// Starts one with extra `server.properties` lines (newline-separated).
    pub fn start_with(tag: &str, extra_properties: &str) -> OwnBroker {
        let run_dir = repo_root().join(".cache/kafka/run").join(unique(tag));
        let out = Command::new(repo_root().join("scripts/kafka/start.sh"))
            .env("KAFKA_RUN_DIR", &run_dir)
            .env("KAFKA_EXTRA_PROPERTIES", extra_properties)
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/kafka/start.sh runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let bootstrap = text
            .lines()
            .find_map(|l| l.strip_prefix("KAFKA_BOOTSTRAP="))
            .unwrap_or_else(|| panic!("start.sh printed no KAFKA_BOOTSTRAP ({})", out.status))
            .trim()
            .to_string();
        OwnBroker { run_dir, bootstrap }
    }

    /// The broker JVM's pid.
    pub fn pid(&self) -> i32 {
        std::fs::read_to_string(self.run_dir.join("pid"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .expect("the run dir has the broker's pid")
    }

    /// Kills the broker with SIGKILL and waits until it is gone.
    pub fn sigkill(&self) {
        let pid = self.pid();
        // SAFETY: kill(2) on the broker start.sh started for this test (its pid file).
        let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
        assert_eq!(rc, 0, "kill(SIGKILL) of the broker {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        // The JVM is not our child (start.sh detached it): wait until /proc says it is gone.
        while Instant::now() < deadline {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let gone = state.is_empty()
                || state
                    .rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X'));
            if gone {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the broker {pid} survived SIGKILL for 30 s");
    }

    /// Starts it again on the same port with the same data (`scripts/kafka/restart.sh`).
    pub fn restart(&self) {
        let status = Command::new(repo_root().join("scripts/kafka/restart.sh"))
            .env("KAFKA_RUN_DIR", &self.run_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("scripts/kafka/restart.sh runs");
        assert!(status.success(), "restarting the broker failed: {status}");
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/kafka/stop.sh"))
            .env("KAFKA_RUN_DIR", &self.run_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Processor {
    /// Like [`Processor::start_ready`], with `extra_toml` (e.g. a `[tasks]` section for real
    /// Lambda/HTTP calls) appended to the generated config.
    pub fn start_ready_with(name: &str, config: &ProcessorConfig, extra_toml: &str) -> Processor {
        let mut p = Processor::start_toml(
            name,
            &format!("{}\n{extra_toml}\n", config.to_toml()),
            Path::new(env!("CARGO_BIN_EXE_stepstream")),
        );
        p.wait_ready(Duration::from_secs(60));
        p
    }
}
