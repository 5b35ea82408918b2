//! One run of the feeder: pacing, sending, reading and checking results, counting.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::BaseConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::clients::Deliveries;
use super::latency::LatencyHistogram;
use super::progress::{format_latency, thousands, Progress};
use super::result::{Check, Checked, ResultFields};
use super::{
    cpu, kafka_error, key_index, FeedError, FeedSpec, FeedSummary, WarmupSummary, KEY_PREFIX,
    MAX_STATUSES, READ_BATCH, SEND_BATCH, TICK,
};

/// The state of one run of the feeder.
pub(super) struct Feeder<'a> {
    spec: &'a FeedSpec,
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
    /// Warm-up requests (indices below `spec.warmup`) still waiting for their result.
    warmup_outstanding: u64,
    /// Warm-up requests answered.
    warmup_results: u64,
    /// Latencies of the warm-up requests, kept apart from the figures.
    warmup_latencies: LatencyHistogram,
    results: u64,
    duplicates: u64,
    wrong_outputs: u64,
    first_wrong: Option<String>,
    /// What each result is checked against: the expected output, or in passthrough the
    /// input sent; `None` checks nothing.
    check: Option<Check>,
    /// A result record with its checked field left out (see [`ResultFields::read_checked`]).
    scratch: Vec<u8>,
    /// Thread and process CPU time when the run started, and what they had grown by at its end.
    cpu_start: (Duration, Duration),
    cpu_used: Option<(Duration, Duration)>,
    by_status: BTreeMap<String, u64>,
    latencies: LatencyHistogram,
    /// Latencies since the previous live line, so a stall shows when it happens instead of
    /// disappearing into the whole run's percentiles.
    recent: LatencyHistogram,
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
    pub(super) fn new(
        spec: &'a FeedSpec,
        request_starts: Vec<i64>,
        result_starts: Vec<i64>,
    ) -> Feeder<'a> {
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
            warmup_outstanding: 0,
            warmup_results: 0,
            warmup_latencies: LatencyHistogram::new(),
            results: 0,
            duplicates: 0,
            wrong_outputs: 0,
            first_wrong: None,
            check: if spec.passthrough {
                Some(Check::new(spec.input.clone()))
            } else {
                spec.expected_output.clone().map(Check::new)
            },
            scratch: Vec::new(),
            cpu_start: (cpu::thread(), cpu::process()),
            cpu_used: None,
            by_status: BTreeMap::new(),
            latencies: LatencyHistogram::new(),
            recent: LatencyHistogram::new(),
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

    pub(super) fn run(
        mut self,
        producer: &BaseProducer<Deliveries>,
        consumer: &BaseConsumer,
        stop: &AtomicBool,
    ) -> Result<FeedSummary, FeedError> {
        let mut key = String::new();
        let mut value = String::new();
        let mut timed_out = false;
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let finished = self.next_index == self.total()
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
                self.recent.reset();
            }
        }
        self.log_dropped_results();
        // Hand over what was sent before the producer is dropped (which discards its queue).
        // Bounded, because a stop or a timeout should not hang on a broker that went away.
        let _ = producer.flush(Duration::from_secs(1));
        self.cpu_used = Some(self.cpu());
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
    ) -> Result<bool, FeedError> {
        let interval = self
            .spec
            .rate_per_sec
            .map(|r| Duration::from_secs_f64(1.0 / r));
        for _ in 0..SEND_BATCH {
            if self.next_index == self.total()
                || self.outstanding.len() >= self.spec.max_outstanding
            {
                return Ok(false);
            }
            let now = Instant::now();
            if self.holding_for_warmup() {
                // The measured requests start once the warm-up is answered, paced from then
                // on rather than in a burst that makes up for the wait.
                self.next_send_at = now;
                return Ok(false);
            }
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
            if i < self.spec.warmup {
                self.warmup_outstanding += 1;
            } else {
                self.first_send.get_or_insert(now);
            }
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
                if self.outstanding.remove(&index).is_some() && index < self.spec.warmup {
                    self.warmup_outstanding -= 1;
                }
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
        let room = self.next_index < self.total()
            && self.outstanding.len() < self.spec.max_outstanding
            && !self.holding_for_warmup();
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
        let field = if self.spec.passthrough {
            Checked::Input
        } else {
            Checked::Output
        };
        let fields = payload
            .map(|p| ResultFields::read_checked(p, field, self.check.as_ref(), &mut self.scratch))
            .unwrap_or_default();
        if let Some(source) = &fields.source {
            let before_run = usize::try_from(source.partition)
                .ok()
                .and_then(|p| self.request_starts.get(p))
                .is_some_and(|&start| source.offset < start);
            if source.topic == self.spec.requests_topic && before_run {
                return;
            }
        }
        let Some(sent_at) = self.outstanding.remove(&index) else {
            // A warm-up key read again is kept out of the figures like the warm-up.
            if index < self.next_index && index >= self.spec.warmup {
                self.duplicates += 1;
            }
            return;
        };
        let latency = now.saturating_duration_since(sent_at);
        self.last_progress = now;
        let warmup = index < self.spec.warmup;
        if warmup {
            self.warmup_outstanding -= 1;
            self.warmup_results += 1;
            self.warmup_latencies.record(latency);
        } else {
            self.results += 1;
        }
        if let Some(check) = &mut self.check {
            let got = fields.checked(field);
            if !fields.known_equal && !check.matches(got) {
                self.wrong_outputs += 1;
                if self.first_wrong.is_none() {
                    let got = got.map_or("no output", |raw| raw.get());
                    let got: String = got.chars().take(2_000).collect();
                    self.first_wrong = Some(format!("{KEY_PREFIX}{index}: {got}"));
                }
            }
        }
        if warmup {
            return;
        }
        self.latencies.record(latency);
        self.recent.record(latency);
        self.last_result = Some(now);
        // A passthrough result is the request copied: it has no status of its own.
        let no_status = if self.spec.passthrough {
            "COPIED"
        } else {
            "INVALID"
        };
        let status = fields.status.as_deref().unwrap_or(no_status);
        if let Some(n) = self.by_status.get_mut(status) {
            *n += 1;
        } else if self.by_status.len() < MAX_STATUSES {
            self.by_status.insert(status.to_string(), 1);
        } else {
            *self.by_status.entry("OTHER".to_string()).or_default() += 1;
        }
    }

    fn live_line(&self) -> String {
        let mut line = format!(
            "sent {}  done {}  {} exec/s  p50 {}  p99 {}  (last tick p99 {} max {})",
            self.next_index.saturating_sub(self.spec.warmup),
            self.results,
            thousands(self.progress.rate.round() as u64),
            format_latency(self.latencies.percentile(0.50)),
            format_latency(self.latencies.percentile(0.99)),
            format_latency(self.recent.percentile(0.99)),
            format_latency(self.recent.max()),
        );
        for (status, n) in &self.by_status {
            let _ = write!(line, "  {status} {n}");
        }
        line
    }

    /// Thread and process CPU used by the run: up to its end once it ended, else up to now.
    fn cpu(&self) -> (Duration, Duration) {
        self.cpu_used.unwrap_or_else(|| {
            (
                cpu::thread().saturating_sub(self.cpu_start.0),
                cpu::process().saturating_sub(self.cpu_start.1),
            )
        })
    }

    /// Requests to send in all: the warm-up, then the measured ones.
    fn total(&self) -> u64 {
        self.spec.warmup.saturating_add(self.spec.count)
    }

    /// Whether the warm-up is sent and some of its results may still come: nothing is sent
    /// meanwhile. Results known lost are not waited for, and a warm-up that stops answering
    /// is given up on after a while (its missing results count as missing).
    fn holding_for_warmup(&self) -> bool {
        self.next_index == self.spec.warmup
            && self.warmup_outstanding > self.known_lost()
            && self.last_progress.elapsed() < (self.spec.timeout / 2).min(WARMUP_PATIENCE)
    }

    pub(super) fn summary(&self) -> FeedSummary {
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
        FeedSummary {
            sent: self.next_index.saturating_sub(self.spec.warmup),
            warmup: (self.spec.warmup > 0).then(|| WarmupSummary {
                sent: self.next_index.min(self.spec.warmup),
                latency_p99: self.warmup_latencies.percentile(0.99),
                latency_max: self.warmup_latencies.max(),
            }),
            results: self.results,
            by_status: self.by_status.clone(),
            elapsed,
            throughput_per_sec,
            latency_p50: self.latencies.percentile(0.50),
            latency_p99: self.latencies.percentile(0.99),
            latency_max: self.latencies.max(),
            // A warm-up request without a result is missing too.
            missing: self.next_index.saturating_sub(self.spec.warmup) - self.results
                + (self.next_index.min(self.spec.warmup) - self.warmup_results),
            lost_results: self.lost_results + self.unlogged_lost_results(),
            lost_requests: None,
            duplicates: self.duplicates,
            wrong_outputs: self.wrong_outputs,
            first_wrong: self.first_wrong.clone(),
            parsed_checks: self.check.as_ref().map(|c| c.parsed),
            feeder_cpu: self.cpu().0,
            process_cpu: self.cpu().1,
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

/// Longest wait for the rest of the warm-up's results once none come.
const WARMUP_PATIENCE: Duration = Duration::from_secs(5);

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

#[cfg(test)]
mod tests {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::Consumer;
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

    use super::super::clients::{requests_producer, results_consumer};
    use super::super::test_spec;
    use super::*;

    /// A spec with a warm-up of `warmup` requests before `count` measured ones, and a
    /// producer for it (sending only queues; nothing needs to answer on that port).
    fn warmup_spec(warmup: u64, count: u64) -> (FeedSpec, BaseProducer<Deliveries>) {
        let mut spec = test_spec();
        (spec.warmup, spec.count, spec.max_outstanding) = (warmup, count, 100);
        let producer = requests_producer(&spec).expect("a producer");
        (spec, producer)
    }

    /// Sends what the feeder lets go now.
    fn send(feeder: &mut Feeder, producer: &BaseProducer<Deliveries>) {
        let (mut key, mut value) = (String::new(), String::new());
        feeder.send(producer, &mut key, &mut value).expect("queued");
    }

    #[test]
    fn request_envelope_follows_the_contract() {
        let spec = test_spec();
        let feeder = Feeder::new(&spec, vec![0], vec![0]);
        let body = format!("{}{}{}", feeder.envelope_head, 42, feeder.envelope_tail);
        assert_eq!(
            body,
            r#"{"stateMachine":"say \"hi\"","name":"demo-42","input":{"b":1,"a":[true]}}"#
        );
    }

    #[test]
    fn each_result_counts_once_and_earlier_runs_are_ignored() {
        let spec = test_spec();
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
    fn the_warm_up_is_answered_first_and_kept_out_of_the_figures() {
        let (spec, producer) = warmup_spec(3, 5);
        let mut feeder = Feeder::new(&spec, vec![0], vec![0]);
        send(&mut feeder, &producer);
        assert_eq!(
            feeder.next_index, 3,
            "measured requests went out before the warm-up's answers"
        );
        send(&mut feeder, &producer);
        assert_eq!(feeder.next_index, 3);
        // Waiting for the warm-up's answers blocks on the consumer instead of spinning.
        assert_eq!(feeder.wait_time(false), TICK);
        let sent = Instant::now();
        for i in 0..3 {
            let late = sent + Duration::from_millis(100 + i);
            feeder.on_result(Some(format!("demo-{i}").as_bytes()), Some(b"{}"), late);
        }
        assert_eq!((feeder.results, feeder.warmup_outstanding), (0, 0));
        send(&mut feeder, &producer);
        assert_eq!(feeder.next_index, 8);
        let answered = Instant::now() + Duration::from_millis(1);
        feeder.on_result(
            Some(b"demo-3"),
            Some(br#"{"status":"SUCCEEDED"}"#),
            answered,
        );
        let summary = feeder.summary();
        assert_eq!((summary.sent, summary.results, summary.missing), (5, 1, 4));
        assert!(summary.latency_max < Duration::from_millis(100));
        let warmup = summary.warmup.expect("a warm-up summary");
        assert_eq!(warmup.sent, 3);
        assert!(warmup.latency_max >= Duration::from_millis(100));
        assert_eq!(
            summary.by_status,
            BTreeMap::from([("SUCCEEDED".to_string(), 1)])
        );
        // A warm-up key read again is no duplicate of the figures.
        feeder.on_result(Some(b"demo-0"), Some(b"{}"), answered);
        assert_eq!(feeder.summary().duplicates, 0);
    }

    #[test]
    fn a_warm_up_result_the_broker_dropped_does_not_hold_the_run() {
        let (spec, producer) = warmup_spec(3, 2);
        let mut feeder = Feeder::new(&spec, vec![0], vec![0]);
        send(&mut feeder, &producer);
        let now = Instant::now();
        for i in 0..2 {
            feeder.on_offset(0, i);
            feeder.on_result(Some(format!("demo-{i}").as_bytes()), Some(b"{}"), now);
        }
        assert!(feeder.holding_for_warmup());
        // The third warm-up result's offset was skipped: the broker dropped it.
        feeder.on_offset(0, 3);
        assert!(!feeder.holding_for_warmup());
        send(&mut feeder, &producer);
        assert_eq!(feeder.next_index, 5);
        let summary = feeder.summary();
        // The lost warm-up result and the two measured ones still out.
        assert_eq!((summary.sent, summary.missing), (2, 3));
    }

    #[test]
    fn results_the_broker_skipped_count_as_lost_once() {
        let spec = test_spec();
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
        let mut spec = test_spec();
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
        let mut spec = test_spec();
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
    fn passthrough_results_are_checked_against_the_input_sent() {
        let mut spec = test_spec();
        spec.passthrough = true;
        let mut feeder = Feeder::new(&spec, vec![0], vec![0]);
        let now = Instant::now();
        for i in 0..2 {
            feeder.outstanding.insert(i, now);
        }
        feeder.next_index = 2;
        let copied = format!("{}{}{}", feeder.envelope_head, 0, feeder.envelope_tail);
        feeder.on_result(Some(b"demo-0"), Some(copied.as_bytes()), now);
        let altered = copied.replace("true", "false");
        feeder.on_result(Some(b"demo-1"), Some(altered.as_bytes()), now);
        let summary = feeder.summary();
        assert_eq!((summary.results, summary.wrong_outputs), (2, 1));
        assert_eq!(
            summary.parsed_checks,
            Some(1),
            "the exact copy is compared as bytes"
        );
    }
}
