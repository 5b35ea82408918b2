//! What an operator watches: Prometheus metrics on `/metrics` and a metrics topic.
//!
//! Names mirror Step Functions' CloudWatch metrics (`ExecutionsStarted`, `ExecutionTime`,
//! ...) in Prometheus' conventions, labelled by state machine. Hot paths hold handles
//! registered once ([`MachineMetrics`] per state machine, [`ShardMetrics`] per shard), so
//! recording is an atomic add, never a label map built per record. Figures that other
//! parts keep in their own atomics (the sink's produce errors, each shard's in-flight
//! count) and the consumer lag are sampled by one
//! [`Sampler`] thread, off the hot path, which also writes the metrics topic.
//!
//! Handles bind to the recorder installed when they are made: [`install`] runs before
//! anything registers one (a handle made without a recorder counts nothing).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::{json, Map, Value};

use crate::asl::model::Kind;
use crate::compile::plan::Plan;
use crate::express::Status;

/// Executions by state machine and status (`started`, `succeeded`, `failed`, `timed_out`, `aborted`).
pub const EXECUTIONS: &str = "stepstream_executions_total";
/// Time from start to end of an execution, by state machine and status.
pub const EXECUTION_DURATION: &str = "stepstream_execution_duration_seconds";
/// Task calls by state machine, resource and status (`scheduled`, `succeeded`, `failed`,
/// `timed_out`: dropped unanswered, by its `TimeoutSeconds`, the execution's time limit
/// or a shutdown).
pub const TASKS: &str = "stepstream_task_calls_total";
/// Time from a task call to its answer, by state machine and resource.
pub const TASK_DURATION: &str = "stepstream_task_duration_seconds";
/// Records the shards took from the input topics, by shard.
pub const RECORDS_CONSUMED: &str = "stepstream_records_consumed_total";
/// Requests written to the errors topic, by error name.
pub const DEAD_LETTERS: &str = "stepstream_dead_letters_total";
/// Executions a shard holds (started, output not yet acknowledged), by shard.
pub const IN_FLIGHT: &str = "stepstream_in_flight";
/// Input partitions paused because their shard is full, by shard.
pub const PARTITIONS_PAUSED: &str = "stepstream_partitions_paused";
/// Records of an input partition not yet committed by the group (high watermark less
/// committed offset), by topic and partition.
pub const CONSUMER_LAG: &str = "stepstream_consumer_lag";
/// Produce errors by kind (`retried`, `rejected`, `lost`, `fatal`): the sink's events.
pub const PRODUCE_ERRORS: &str = "stepstream_produce_errors_total";
/// Offset commits by mode (`async`: the periodic ones; `sync`: at revocation and shutdown).
pub const COMMITS: &str = "stepstream_commits_total";
/// Time a synchronous offset commit waited for the broker.
pub const COMMIT_DURATION: &str = "stepstream_commit_duration_seconds";
/// Offset commits the broker refused.
pub const COMMIT_FAILURES: &str = "stepstream_commit_failures_total";
/// Requests the embedded broker dropped before the pipeline read them.
pub const EMBEDDED_DROPPED: &str = "stepstream_embedded_dropped_unread_total";
/// Records written to the metrics topic that the producer refused at once.
pub const METRICS_RECORDS_FAILED: &str = "stepstream_metrics_records_failed_total";

/// Execution history events the logs topic's producer refused at once (dropped).
pub const LOG_RECORDS_FAILED: &str = "stepstream_log_records_failed_total";
/// State transitions (states entered) by state machine and state type (`Task`, `Choice`, ...).
pub const TRANSITIONS: &str = "stepstream_state_transitions_total";
/// Retries a Retry field made, by state machine.
pub const RETRIES: &str = "stepstream_retries_total";

/// `kafka:invoke` replies dropped because no call waited for them (unknown id, or the
/// call already timed out or was cancelled).
pub const UNMATCHED_REPLIES: &str = "stepstream_task_replies_unmatched_total";

/// Every metric name `/metrics` can serve (histograms as their base name).
pub const NAMES: [&str; 19] = [
    EXECUTIONS,
    EXECUTION_DURATION,
    TRANSITIONS,
    RETRIES,
    TASKS,
    TASK_DURATION,
    RECORDS_CONSUMED,
    DEAD_LETTERS,
    IN_FLIGHT,
    PARTITIONS_PAUSED,
    CONSUMER_LAG,
    PRODUCE_ERRORS,
    COMMITS,
    COMMIT_DURATION,
    COMMIT_FAILURES,
    EMBEDDED_DROPPED,
    METRICS_RECORDS_FAILED,
    LOG_RECORDS_FAILED,
    UNMATCHED_REPLIES,
];

/// Histogram buckets (seconds): sub-millisecond executions up to the 5-minute Express cap.
const SECONDS_BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0, 60.0, 300.0,
];

/// Why metrics could not be started.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// `metrics.listen` is not an address.
    #[error("metrics.listen {0:?} is not host:port")]
    Address(String),
    /// The recorder could not be built.
    #[error("cannot set up metrics: {0}")]
    Build(String),
    /// Another recorder was installed first.
    #[error("a metrics recorder is already installed in this process")]
    AlreadyInstalled,
    /// The exporter's thread could not start.
    #[error("cannot start the metrics thread: {0}")]
    Thread(#[from] std::io::Error),
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The installed recorder's handle (renders the text format), if [`install`] ran.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get()
}

/// Installs the process's recorder and, unless `listen` is `"off"`, serves `/metrics`
/// on it from a thread of its own. Returns the address served.
///
/// An address that cannot be bound (taken by another process) is logged as an error and
/// the process runs without the endpoint: executions are the product, the endpoint is
/// not, and the metrics topic still gets every figure.
pub fn install(listen: &str) -> Result<Option<SocketAddr>, MetricsError> {
    if HANDLE.get().is_some() {
        return Err(MetricsError::AlreadyInstalled);
    }
    if listen == "off" {
        return install_without_endpoint().map(|()| None);
    }
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| MetricsError::Address(listen.to_string()))?;
    // Bind here, so a taken port is known at start-up instead of in a background thread.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let built = {
        let _g = rt.enter();
        builder()?.with_http_listener(addr).build()
    };
    let (recorder, exporter) = match built {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(
                "stepstream: cannot serve metrics on {addr} ({e}); running without /metrics \
                 (set metrics.listen to a free port, or \"off\")"
            );
            return install_without_endpoint().map(|()| None);
        }
    };
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::AlreadyInstalled)?;
    let _ = HANDLE.set(handle);
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            if let Err(e) = rt.block_on(exporter) {
                tracing::error!("stepstream: the /metrics endpoint stopped: {e:?}");
            }
        })?;
    Ok(Some(addr))
}

fn builder() -> Result<PrometheusBuilder, MetricsError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
        .map_err(|e| MetricsError::Build(e.to_string()))
}

fn install_without_endpoint() -> Result<(), MetricsError> {
    let recorder = builder()?.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::AlreadyInstalled)?;
    let _ = HANDLE.set(handle.clone());
    upkeep_thread(handle)?;
    Ok(())
}

/// Without the HTTP listener nothing runs the recorder's upkeep (histogram maintenance).
fn upkeep_thread(handle: PrometheusHandle) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(5));
            handle.run_upkeep();
        })
        .map(drop)
}

/// One state machine's execution handles, registered once when it is loaded.
#[derive(Clone)]
pub struct MachineMetrics {
    started: Counter,
    succeeded: Counter,
    failed: Counter,
    timed_out: Counter,
    aborted: Counter,
    succeeded_seconds: Histogram,
    failed_seconds: Histogram,
    timed_out_seconds: Histogram,
}

impl MachineMetrics {
    /// Registers the handles of state machine `name`.
    pub fn register(name: &str) -> MachineMetrics {
        let c = |status: &'static str| counter!(EXECUTIONS, "state_machine" => name.to_string(), "status" => status);
        let h = |status: &'static str| histogram!(EXECUTION_DURATION, "state_machine" => name.to_string(), "status" => status);
        MachineMetrics {
            started: c("started"),
            succeeded: c("succeeded"),
            failed: c("failed"),
            timed_out: c("timed_out"),
            aborted: c("aborted"),
            succeeded_seconds: h("succeeded"),
            failed_seconds: h("failed"),
            timed_out_seconds: h("timed_out"),
        }
    }

    /// An execution started; the guard counts it aborted unless [`ExecutionGuard::finished`] runs.
    pub fn started(&self) -> ExecutionGuard<'_> {
        self.started.increment(1);
        ExecutionGuard {
            metrics: self,
            done: false,
        }
    }
}

/// A running execution's metrics: finished with a status, or aborted when dropped unfinished
/// (a shard dropping its executions at shutdown).
pub struct ExecutionGuard<'a> {
    metrics: &'a MachineMetrics,
    done: bool,
}

impl ExecutionGuard<'_> {
    /// Counts the execution's end and its duration, `seconds`: the caller's own start and
    /// stop times (a shard reads them for the result record anyway, so the metrics add no
    /// clock read of their own).
    pub fn finished(mut self, status: Status, seconds: f64) {
        self.done = true;
        let m = self.metrics;
        let (count, time) = match status {
            Status::Succeeded => (&m.succeeded, &m.succeeded_seconds),
            Status::Failed => (&m.failed, &m.failed_seconds),
            Status::TimedOut => (&m.timed_out, &m.timed_out_seconds),
        };
        count.increment(1);
        time.record(seconds);
    }
}

impl Drop for ExecutionGuard<'_> {
    fn drop(&mut self) {
        // Only an abandoned execution gets here unfinished: one add, no other work.
        if !self.done {
            self.metrics.aborted.increment(1);
        }
    }
}

/// State types as AWS names them, in the order [`ExecMetrics`] keeps their counters.
const STATE_TYPES: [&str; 8] = [
    "Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map",
];

/// Where `kind`'s counter is in [`STATE_TYPES`].
fn state_type_index(kind: &Kind) -> usize {
    match kind {
        Kind::Pass { .. } => 0,
        Kind::Task { .. } => 1,
        Kind::Choice { .. } => 2,
        Kind::Wait { .. } => 3,
        Kind::Succeed => 4,
        Kind::Fail { .. } => 5,
        Kind::Parallel { .. } => 6,
        Kind::Map(_) => 7,
    }
}

/// What one state machine's executions count inside the interpreter: transitions by state
/// type, retries, and task calls per resource. Registered once when the machine is loaded
/// and handed to each execution through `ExecOptions::metrics`, so recording
/// is an index and an atomic add.
pub struct ExecMetrics {
    transitions: [Counter; 8],
    retries: Counter,
    // Few resources per machine: a short scan of `&str` compares beats hashing the name.
    tasks: Vec<(Box<str>, TaskMetrics)>,
}

impl std::fmt::Debug for ExecMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecMetrics")
            .field("resources", &self.tasks.len())
            .finish()
    }
}

impl ExecMetrics {
    /// Registers the handles of state machine `machine`, one task set per Task resource
    /// of `plan` (its Parallel branches and Map processors included).
    pub fn register(machine: &str, plan: &Plan) -> ExecMetrics {
        let transitions = STATE_TYPES.map(
            |t| counter!(TRANSITIONS, "state_machine" => machine.to_string(), "state_type" => t),
        );
        let mut resources = std::collections::BTreeSet::new();
        collect_resources(plan, &mut resources);
        let tasks = resources
            .into_iter()
            .map(|r| {
                let m = TaskMetrics::register(machine, &r);
                (r.into_boxed_str(), m)
            })
            .collect();
        ExecMetrics {
            transitions,
            retries: counter!(RETRIES, "state_machine" => machine.to_string()),
            tasks,
        }
    }

    /// A state of this kind was entered.
    #[inline]
    pub fn transition(&self, kind: &Kind) {
        self.transitions[state_type_index(kind)].increment(1);
    }

    /// A Retry field retried a state.
    #[inline]
    pub fn retried(&self) {
        self.retries.increment(1);
    }

    /// The handles of Task resource `resource`, if the plan names it.
    #[inline]
    pub fn task(&self, resource: &str) -> Option<&TaskMetrics> {
        self.tasks
            .iter()
            .find(|(r, _)| &**r == resource)
            .map(|(_, m)| m)
    }
}

fn collect_resources(plan: &Plan, out: &mut std::collections::BTreeSet<String>) {
    for node in &plan.nodes {
        if let Kind::Task { resource, .. } = &node.state.kind {
            out.insert(resource.clone());
        }
        for b in &node.branches {
            collect_resources(b, out);
        }
        if let Some(p) = &node.processor {
            collect_resources(p, out);
        }
    }
}

/// One resource's task handles in one state machine, registered once at load.
pub struct TaskMetrics {
    scheduled: Counter,
    succeeded: Counter,
    failed: Counter,
    timed_out: Counter,
    duration: Histogram,
}

impl TaskMetrics {
    fn register(machine: &str, resource: &str) -> TaskMetrics {
        let c = |status: &'static str| {
            counter!(TASKS, "state_machine" => machine.to_string(),
                "resource" => resource.to_string(), "status" => status)
        };
        TaskMetrics {
            scheduled: c("scheduled"),
            succeeded: c("succeeded"),
            failed: c("failed"),
            timed_out: c("timed_out"),
            duration: histogram!(TASK_DURATION, "state_machine" => machine.to_string(),
                "resource" => resource.to_string()),
        }
    }

    /// A call was made.
    #[inline]
    pub fn scheduled(&self) {
        self.scheduled.increment(1);
    }

    /// A call answered after waiting `seconds`.
    #[inline]
    pub fn answered(&self, seconds: f64, ok: bool) {
        self.duration.record(seconds);
        if ok { &self.succeeded } else { &self.failed }.increment(1);
    }

    /// A call answered on its first poll, within the call (built-in handlers, mocks): counted,
    /// not timed. Its duration is 0 by construction, and a histogram sample costs more than
    /// the rest of the call's metrics together (it is most of what kept the metrics' cost on
    /// the order workload over 3 %).
    #[inline]
    pub fn answered_at_once(&self, ok: bool) {
        if ok { &self.succeeded } else { &self.failed }.increment(1);
    }

    /// A call was dropped unanswered (its TimeoutSeconds, the execution's time limit, a shutdown).
    #[inline]
    pub fn timed_out(&self) {
        self.timed_out.increment(1);
    }
}

/// One shard's handles.
#[derive(Clone)]
pub struct ShardMetrics {
    /// Records the shard took.
    pub consumed: Counter,
}

impl ShardMetrics {
    /// Registers shard `id`'s handles.
    pub fn register(id: usize) -> ShardMetrics {
        ShardMetrics {
            consumed: counter!(RECORDS_CONSUMED, "shard" => id.to_string()),
        }
    }
}

/// A request went to the errors topic as `error` (a fixed set of names: one series each).
pub fn dead_lettered(error: &'static str) {
    counter!(DEAD_LETTERS, "error" => error).increment(1);
}

/// Registers at 0 the series that appear only when something goes wrong: dead letters
/// of these error names, commits and commit failures.
pub fn register_rare_series(dead_letter_names: &[&'static str]) {
    for &n in dead_letter_names {
        counter!(DEAD_LETTERS, "error" => n).increment(0);
    }
    for mode in ["sync", "async"] {
        counter!(COMMITS, "mode" => mode).increment(0);
    }
    counter!(COMMIT_FAILURES).increment(0);
}

/// Shard `shard`'s partitions were paused (`count` of them) or resumed (0).
pub fn partitions_paused(shard: usize, count: usize) {
    gauge!(PARTITIONS_PAUSED, "shard" => shard.to_string()).set(count as f64);
}

/// An offset commit returned: synchronous ones (revocation, shutdown) after the broker's
/// answer, so their duration is the commit's latency; asynchronous ones when queued.
///
/// The latency of an asynchronous commit is not measured: librdkafka only reports its
/// answer to a configured `offset_commit_cb`, which rdkafka's consumer does not set.
pub fn committed(sync: bool, took: Duration, ok: bool) {
    let mode = if sync { "sync" } else { "async" };
    counter!(COMMITS, "mode" => mode).increment(1);
    if sync && ok {
        histogram!(COMMIT_DURATION).record(took.as_secs_f64());
    }
    if !ok {
        counter!(COMMIT_FAILURES).increment(1);
    }
}

/// Reads the group's lag per input partition: `(topic, partition, lag)`.
pub type LagReader = Box<dyn FnMut() -> Vec<(String, i32, i64)> + Send>;
/// Writes one metrics record; returns false when the producer refused it.
pub type Publisher = Box<dyn FnMut(&[u8]) -> bool + Send>;

/// What the [`Sampler`] reads each interval.
pub struct Sources {
    /// Each shard's in-flight counter, by shard index.
    pub in_flight: Vec<Arc<AtomicUsize>>,
    /// Reads the group's lag per input partition.
    pub lag: Option<LagReader>,
    /// Writes one metrics record (the metrics topic).
    pub publish: Option<Publisher>,
}

/// The thread that samples gauges and writes the metrics topic every interval.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling `sources` every `interval` until dropped.
    pub fn start(sources: Sources, interval: Duration) -> std::io::Result<Sampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || sample_loop(sources, interval, &s))?;
        Ok(Sampler {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // One last sample, so the final figures reach the topic; then the thread ends.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Counters of the Kafka sink's produce problems since the process started; the sink counts,
/// the metrics sampler publishes.
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// A transient produce error, retried.
    pub produce_retried: AtomicU64,
    /// A record the broker refused for good, replaced by a dead letter.
    pub output_rejected: AtomicU64,
    /// A record that could be neither delivered nor replaced.
    pub output_lost: AtomicU64,
    /// A fatal producer error.
    pub producer_fatal: AtomicU64,
}

/// The process's sink counters.
pub static SINK_COUNTERS: SinkCounters = SinkCounters {
    produce_retried: AtomicU64::new(0),
    output_rejected: AtomicU64::new(0),
    output_lost: AtomicU64::new(0),
    producer_fatal: AtomicU64::new(0),
};

fn sample_loop(mut sources: Sources, interval: Duration, stop: &AtomicBool) {
    let shard_gauges: Vec<Gauge> = (0..sources.in_flight.len())
        .map(|i| gauge!(IN_FLIGHT, "shard" => i.to_string()))
        .collect();
    let produce: [(Counter, &AtomicU64); 4] = {
        let c = &SINK_COUNTERS;
        [
            (
                counter!(PRODUCE_ERRORS, "kind" => "retried"),
                &c.produce_retried,
            ),
            (
                counter!(PRODUCE_ERRORS, "kind" => "rejected"),
                &c.output_rejected,
            ),
            (counter!(PRODUCE_ERRORS, "kind" => "lost"), &c.output_lost),
            (
                counter!(PRODUCE_ERRORS, "kind" => "fatal"),
                &c.producer_fatal,
            ),
        ]
    };
    let refused = counter!(METRICS_RECORDS_FAILED);
    let mut lag_gauges: BTreeMap<(String, i32), Gauge> = BTreeMap::new();
    let mut next = Instant::now() + interval;
    loop {
        let last = stop.load(Ordering::Relaxed);
        for (g, n) in shard_gauges.iter().zip(&sources.in_flight) {
            g.set(n.load(Ordering::Relaxed) as f64);
        }
        for (c, n) in &produce {
            c.absolute(n.load(Ordering::Relaxed));
        }
        if let Some(lag) = sources.lag.as_mut() {
            for (topic, partition, n) in lag() {
                lag_gauges
                    .entry((topic.clone(), partition))
                    .or_insert_with(|| {
                        gauge!(CONSUMER_LAG, "topic" => topic, "partition" => partition.to_string())
                    })
                    .set(n as f64);
            }
        }
        if let (Some(publish), Some(h)) = (sources.publish.as_mut(), handle()) {
            let record = snapshot(&h.render());
            if !publish(record.to_string().as_bytes()) {
                refused.increment(1);
            }
        }
        if last {
            return;
        }
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= next {
                break;
            }
            std::thread::park_timeout(next - now);
        }
        next += interval;
    }
}

/// The metrics topic's record: every series of the Prometheus text `text`, as
/// `{"process", "timestamp", "metrics": [{"name", "labels", "value"}]}`.
pub fn snapshot(text: &str) -> Value {
    let metrics: Vec<Value> = text.lines().filter_map(parse_sample).collect();
    json!({
        "process": process_id(),
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "metrics": metrics,
    })
}

/// Which process wrote a metrics record: host name and process id.
fn process_id() -> String {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        format!("{host}/{}", std::process::id())
    })
    .clone()
}

/// One sample line of the exposition format the exporter wrote (`name{k="v",...} value`);
/// comments and anything unexpected are skipped.
fn parse_sample(line: &str) -> Option<Value> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match series.split_once('{') {
        None => (series, Map::new()),
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
    };
    Some(json!({"name": name, "labels": labels, "value": finite(value)}))
}

/// JSON has no infinity: `+Inf` becomes the string Prometheus writes.
fn finite(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        json!("+Inf")
    }
}

/// `k="v",k2="v2"` with Prometheus' escapes (`\\`, `\"`, `\n`).
fn parse_labels(s: &str) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        out.insert(key.to_string(), Value::String(value));
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_keeps_every_series_with_its_labels() {
        let text = "# TYPE stepstream_executions_total counter\n\
                    stepstream_executions_total{state_machine=\"order\",status=\"started\"} 3\n\
                    stepstream_dead_letters_total{error=\"a\\\"b\"} 1\n\
                    stepstream_execution_duration_seconds_bucket{le=\"+Inf\"} 2\n\
                    stepstream_consumer_lag 7\n";
        let v = snapshot(text);
        let m = v["metrics"].as_array().expect("an array");
        assert_eq!(m.len(), 4);
        assert_eq!(m[0]["name"], "stepstream_executions_total");
        assert_eq!(m[0]["labels"]["state_machine"], "order");
        assert_eq!(m[0]["labels"]["status"], "started");
        assert_eq!(m[0]["value"], 3.0);
        assert_eq!(m[1]["labels"]["error"], "a\"b");
        assert_eq!(m[2]["labels"]["le"], "+Inf");
        assert_eq!(m[3]["labels"], json!({}));
        assert_eq!(m[3]["value"], 7.0);
    }

    #[test]
    fn malformed_sample_lines_are_skipped() {
        assert!(parse_sample("name{a=\"unterminated} 1").is_none());
        assert!(parse_sample("name notanumber").is_none());
        assert!(parse_sample("# HELP x y").is_none());
    }

    type Samples = Vec<(
        metrics_util::CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        metrics_util::debugging::DebugValue,
    )>;

    /// Counter values of `name` summed by the value of label `label`.
    fn sums(samples: &Samples, name: &str, label: &str) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (key, _, _, v) in samples {
            if key.key().name() != name {
                continue;
            }
            if let metrics_util::debugging::DebugValue::Counter(n) = *v {
                let l = key
                    .key()
                    .labels()
                    .find(|l| l.key() == label)
                    .map(|l| l.value().to_string())
                    .unwrap_or_default();
                *out.entry(l).or_insert(0) += n;
            }
        }
        out
    }

    #[test]
    fn executions_count_transitions_retries_and_task_calls() {
        use crate::exec::{execute_blocking, ClockMode, ExecOptions};
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snap = recorder.snapshotter();
        // Choice -> Task (fails, retried twice, then caught) -> Pass; Parallel of one
        // Succeed; a Task that never answers, dropped by its TimeoutSeconds; a Task that
        // answers after a wait (the only one timed).
        let def = json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [
                {"Variable": "$.go", "BooleanEquals": true, "Next": "T"}], "Default": "F"},
            "T": {"Type": "Task", "Resource": "arn:fail", "Next": "P", "Retry": [
                {"ErrorEquals": ["Boom"], "MaxAttempts": 2, "IntervalSeconds": 1}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "P"}]},
            "P": {"Type": "Parallel", "Next": "N", "Branches": [
                {"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}]},
            "N": {"Type": "Task", "Resource": "arn:never", "TimeoutSeconds": 1, "Next": "Slow",
                "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Slow"}]},
            "Slow": {"Type": "Task", "Resource": "arn:slow", "End": true},
            "F": {"Type": "Fail"}}});
        let plan = Plan::load(&def).expect("a valid definition");
        let mut tasks = crate::tasks::Tasks::new();
        tasks
            .register_specs(&json!({"arn:fail": "fail Boom it broke", "arn:slow": "sleep 50"}))
            .expect("valid specs");
        tasks.register_fn("arn:never", |_| {
            std::future::pending::<Result<crate::value::Value, crate::tasks::TaskError>>()
        });
        let opts = ExecOptions {
            metrics: Some(Arc::new(metrics::with_local_recorder(&recorder, || {
                ExecMetrics::register("m", &plan)
            }))),
            ..ExecOptions::default()
        };
        let out = execute_blocking(
            &plan,
            json!({"go": true}),
            &tasks,
            &opts,
            ClockMode::Virtual,
        );
        assert_eq!(out.status, Status::Succeeded, "{out:?}");
        // A snapshot drains the counters: take one and read everything from it.
        let samples = snap.snapshot().into_vec();
        let t = sums(&samples, TRANSITIONS, "state_type");
        let want: BTreeMap<String, u64> = [
            ("Choice", 1),
            ("Task", 3),
            ("Parallel", 1),
            ("Succeed", 1),
            ("Pass", 0),
            ("Wait", 0),
            ("Fail", 0),
            ("Map", 0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(t, want);
        assert_eq!(sums(&samples, RETRIES, "state_machine")["m"], 2);
        let calls = sums(&samples, TASKS, "status");
        assert_eq!(calls["scheduled"], 3 + 1 + 1);
        assert_eq!(calls["failed"], 3);
        assert_eq!(calls["timed_out"], 1);
        assert_eq!(calls["succeeded"], 1);
        // Only the call that waited has a duration sample (its figure is real time, which
        // a virtual clock's 50 ms sleep hardly takes, so only the count is checked).
        let timed: Vec<(String, usize)> = samples
            .iter()
            .filter(|(k, ..)| k.key().name() == TASK_DURATION)
            .filter_map(|(k, _, _, v)| match v {
                metrics_util::debugging::DebugValue::Histogram(h) => Some((
                    k.key()
                        .labels()
                        .find(|l| l.key() == "resource")
                        .map(|l| l.value().to_string())
                        .unwrap_or_default(),
                    h.len(),
                )),
                _ => None,
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        assert_eq!(timed, [("arn:slow".to_string(), 1)]);
    }

    #[test]
    fn an_abandoned_execution_counts_as_aborted() {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snap = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let m = MachineMetrics::register("order");
            m.started().finished(Status::Failed, 0.5);
            drop(m.started());
        });
        let counts: BTreeMap<String, u64> = snap
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, v)| match v {
                metrics_util::debugging::DebugValue::Counter(n) => Some((
                    key.key()
                        .labels()
                        .find(|l| l.key() == "status")
                        .map(|l| l.value().to_string())
                        .unwrap_or_default(),
                    n,
                )),
                _ => None,
            })
            .collect();
        assert_eq!(counts["started"], 2);
        assert_eq!(counts["failed"], 1);
        assert_eq!(counts["aborted"], 1);
    }
}
