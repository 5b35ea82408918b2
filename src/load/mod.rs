//! The load generator behind `stepstream run --demo N` and `stepstream load`: sends execution
//! requests to the requests topic, reads their results from the results topic, checks them and
//! reports throughput, latency and its own CPU share.
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
//!   (see `crate::pipeline::embedded`).
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
//! (counted by the broker itself, `crate::pipeline::embedded`), they account for missing results.
//!
//! Latencies go into an HDR histogram of fixed size, so memory stays bounded for any count:
//! the only per-request state is the send time of the requests still outstanding.
//!
//! The checker must not compete with what it measures (on 2 cores it shares the CPU with the
//! pipeline): the checked field (`output`, or in passthrough the copied `input`) is first
//! compared as bytes, where it starts, with the JSON texts known to equal the expected
//! value, and the rest of the result's top level is read with serde without that field;
//! only a result whose bytes differ is read whole and parsed (see [`result`]). So neither
//! mode parses its checked field's text (it is compared and copied, which is far cheaper),
//! and the summary gives the feeder thread's CPU time beside the process's.

mod clients;
mod cpu;
mod feeder;
mod latency;
mod progress;
pub mod result;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use progress::{format_latency, thousands};
pub use result::same_json;

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
pub struct FeedSpec {
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
    /// Number of requests to send and measure.
    pub count: u64,
    /// Requests sent before those, whose results are awaited and checked but left out of
    /// the figures (kept apart in [`FeedSummary::warmup`]): a pipeline's first records wait
    /// for its group join, first fetches and producer start-up, a one-off cost that would
    /// otherwise sit in the p99 of any short run.
    pub warmup: u64,
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
    /// The pipeline copies requests instead of running them (`load --passthrough`): each
    /// result is then the request itself, and its `input` is checked against [`Self::input`],
    /// so both modes cost the feeder the same per result.
    pub passthrough: bool,
    /// Requests the broker dropped before the pipeline read them, where the broker counts
    /// them (the embedded one): their results cannot come, so the feeder stops waiting once
    /// they are all that is missing. Nothing else may write to the requests topic meanwhile.
    pub requests_dropped: Option<Arc<AtomicU64>>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedSummary {
    /// Measured requests handed to the producer (the warm-up not included).
    pub sent: u64,
    /// The warm-up, when there was one: its requests and their latencies, apart.
    pub warmup: Option<WarmupSummary>,
    /// Requests with a result (each key counted once).
    pub results: u64,
    /// Results by `status` (`SUCCEEDED`, `FAILED`, `TIMED_OUT`; `INVALID` for a result the
    /// feeder could not read; `COPIED` for a passthrough result).
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
    /// Results whose `output` differed from `FeedSpec::expected_output`.
    pub wrong_outputs: u64,
    /// The first such result, for the report.
    pub first_wrong: Option<String>,
    /// Checked results whose bytes differed from the expected JSON text, so they were parsed
    /// and compared by value (key order, number spelling); `None` when nothing was checked.
    pub parsed_checks: Option<u64>,
    /// CPU time of the feeder's own thread (sending, reading, checking).
    pub feeder_cpu: Duration,
    /// CPU time of the whole process meanwhile (with the pipeline when it runs in process).
    pub process_cpu: Duration,
}

/// The warm-up requests of a run, reported beside its figures.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupSummary {
    /// Warm-up requests sent.
    pub sent: u64,
    /// 99th percentile of their latency.
    pub latency_p99: Duration,
    /// Longest of their latencies.
    pub latency_max: Duration,
}

/// Why the feeder could not run. Each message includes librdkafka's error, which is therefore
/// not also exposed as `source()` (an error chain would print it twice).
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
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
pub fn feed(spec: &FeedSpec, stop: &AtomicBool) -> Result<FeedSummary, FeedError> {
    check_spec(spec)?;
    let consumer = clients::results_consumer(spec)?;
    let (Some(request_starts), Some(result_ends)) = (
        clients::end_offsets(&consumer, spec, &spec.requests_topic, stop)?,
        clients::end_offsets(&consumer, spec, &spec.results_topic, stop)?,
    ) else {
        return Ok(feeder::Feeder::new(spec, Vec::new(), Vec::new()).summary());
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
    let producer = clients::requests_producer(spec)?;
    // Connect and learn the requests topic's partitions now, so the first requests' latency
    // does not include that.
    producer
        .client()
        .fetch_metadata(
            Some(&spec.requests_topic),
            spec.timeout.min(CONNECT_TIMEOUT),
        )
        .map_err(|error| FeedError::Unreachable {
            bootstrap: spec.bootstrap.clone(),
            error,
        })?;
    feeder::Feeder::new(spec, request_starts, result_ends).run(&producer, &consumer, stop)
}

fn check_spec(spec: &FeedSpec) -> Result<(), FeedError> {
    if spec.max_outstanding == 0 {
        return Err(FeedError::InvalidSpec("max_outstanding must be at least 1"));
    }
    if let Some(rate) = spec.rate_per_sec {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(FeedError::InvalidSpec(
                "the rate must be a positive number of requests per second",
            ));
        }
    }
    Ok(())
}

pub(crate) fn kafka_error(action: impl Into<String>, error: KafkaError) -> FeedError {
    FeedError::Kafka {
        action: action.into(),
        error,
    }
}

/// The request index in a `demo-<i>` key.
pub(crate) fn key_index(key: &[u8]) -> Option<u64> {
    std::str::from_utf8(key.strip_prefix(KEY_PREFIX.as_bytes())?)
        .ok()?
        .parse()
        .ok()
}

impl FeedSummary {
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
            "{warmup}\
             sent        {sent} requests\n\
             results     {results} (missing {missing}, duplicates {duplicates})\n\
             statuses    {statuses}\n\
             elapsed     {elapsed:.2} s\n\
             throughput  {throughput} exec/s\n\
             latency     p50 {p50}  p99 {p99}  max {max}\n\
             lost        {lost} (dropped by the broker before they were read)\n\
             checked     {checked}\n\
             feeder CPU  {feeder_cpu:.2} s of the process's {process_cpu:.2} s ({share:.0} %)",
            checked = match self.parsed_checks {
                None => "nothing (no expected output given)".to_string(),
                Some(0) => "every result as bytes".to_string(),
                Some(1) =>
                    "1 result parsed (its bytes differed from the expected text), the rest as bytes"
                        .to_string(),
                Some(n) => format!(
                    "{n} results parsed (bytes differed from the expected text), the rest as bytes"
                ),
            },
            feeder_cpu = self.feeder_cpu.as_secs_f64(),
            process_cpu = self.process_cpu.as_secs_f64(),
            share =
                100.0 * self.feeder_cpu.as_secs_f64() / self.process_cpu.as_secs_f64().max(1e-9),
            lost = match self.lost_requests {
                Some(requests) => format!("{requests} requests, {} results", self.lost_results),
                None => format!("{} results", self.lost_results),
            },
            warmup = match &self.warmup {
                None => String::new(),
                Some(w) => format!(
                    "warm-up     {} requests first, not in the figures below (p99 {}, max {})\n",
                    w.sent,
                    format_latency(w.latency_p99),
                    format_latency(w.latency_max)
                ),
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

#[cfg(test)]
pub(crate) fn test_spec() -> FeedSpec {
    FeedSpec {
        bootstrap: "127.0.0.1:9092".to_string(),
        requests_topic: "requests".to_string(),
        results_topic: "results".to_string(),
        state_machine: "say \"hi\"".to_string(),
        input: serde_json::json!({"b": 1, "a": [true]}),
        count: 10,
        warmup: 0,
        rate_per_sec: None,
        max_outstanding: 4,
        timeout: Duration::from_secs(1),
        client_properties: vec![],
        expected_output: None,
        passthrough: false,
        requests_dropped: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_index_reads_only_demo_keys() {
        assert_eq!(key_index(b"demo-0"), Some(0));
        assert_eq!(key_index(b"demo-18446744073709551615"), Some(u64::MAX));
        for key in [&b"demo-"[..], b"demo-x", b"order-1", b"demo--1", b"\xff"] {
            assert_eq!(key_index(key), None, "{key:?}");
        }
    }

    #[test]
    fn spec_without_room_or_with_a_bad_rate_is_rejected() {
        let mut no_room = test_spec();
        no_room.max_outstanding = 0;
        let mut bad_rate = test_spec();
        bad_rate.rate_per_sec = Some(f64::NAN);
        for spec in [no_room, bad_rate] {
            let stop = AtomicBool::new(false);
            assert!(matches!(feed(&spec, &stop), Err(FeedError::InvalidSpec(_))));
        }
    }

    #[test]
    fn report_names_every_figure() {
        let summary = FeedSummary {
            sent: 12_000,
            warmup: Some(WarmupSummary {
                sent: 1_000,
                latency_p99: Duration::from_millis(95),
                latency_max: Duration::from_millis(110),
            }),
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
            parsed_checks: Some(0),
            feeder_cpu: Duration::from_millis(500),
            process_cpu: Duration::from_secs(2),
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
            "every result as bytes",
            "feeder CPU  0.50 s of the process's 2.00 s (25 %)",
            "warm-up     1000 requests first, not in the figures below (p99 95.0 ms, max 110.0 ms)",
        ] {
            assert!(report.contains(part), "{part:?} not in\n{report}");
        }
    }
}
