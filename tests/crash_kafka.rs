//! Crashes on a real broker: `stepstream run` killed with SIGKILL and restarted (R1), the
//! broker killed and restarted under the running pipeline (R2), and a member of a group of
//! two killed while the other carries on. Every request must get a result; duplicates and
//! recovery times are printed.
//!
//! ```sh
//! kafka_env="$(scripts/kafka/start.sh)"; export "$kafka_env"
//! cargo test --test crash_kafka -- --nocapture
//! scripts/kafka/stop.sh
//! ```
//! The R1 test at full size (1,000,000 requests, 5 kills, a release binary) is
//! `scripts/chaos/r1.sh`, which runs [`r1_chaos_from_env`] with its parameters.

mod kafka_support;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_support::{
    bootstrap, committed_offsets, create_topics, describe_group, repo_root, unique, OwnBroker,
    Processor, ProcessorConfig,
};
use rand::{Rng, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

/// One test's topics and group.
struct Names {
    group: String,
    requests: String,
    results: String,
    errors: String,
}

impl Names {
    fn new(tag: &str) -> Names {
        let id = unique(tag);
        Names {
            requests: format!("{id}.requests"),
            results: format!("{id}.results"),
            errors: format!("{id}.errors"),
            group: id,
        }
    }

    fn create(&self, kafka: &str) {
        create_topics(
            kafka,
            &[(&self.requests, 4), (&self.results, 4), (&self.errors, 4)],
        );
    }

    fn config(&self, kafka: &str) -> ProcessorConfig {
        ProcessorConfig::new(kafka, &self.group, &self.results, &self.errors)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn key(i: usize) -> String {
    format!("req-{i:07}")
}

/// The order workload's input as JSON text, with its order id as a placeholder.
fn order_input() -> String {
    let path = repo_root().join("benches/workloads/order.json");
    let w: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the order workload file"))
            .expect("the order workload is JSON");
    w["input"].to_string()
}

/// The workload's order id, replaced per request.
const ORDER_ID: &str = "ORD-2024-000123";

#[derive(Default)]
struct DeliveryCount {
    failed: AtomicU64,
}

impl ClientContext for DeliveryCount {}

impl ProducerContext for DeliveryCount {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Produces requests `range` (keyed [`key`]) to `topic`, each value built by `value`, without
/// keeping them in memory.
fn produce_range(
    kafka: &str,
    topic: &str,
    range: std::ops::Range<usize>,
    value: impl Fn(usize) -> String,
) {
    let started = Instant::now();
    let producer: BaseProducer<DeliveryCount> = ClientConfig::new()
        .set("bootstrap.servers", kafka)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .create_with_context(DeliveryCount::default())
        .expect("a producer can be configured");
    let n = range.len();
    for i in range {
        let (k, v) = (key(i), value(i));
        loop {
            match producer.send(BaseRecord::<str, str>::to(topic).key(&k).payload(&v)) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(20));
                }
                Err((e, _)) => panic!("producing request {i} to {topic} failed: {e}"),
            }
        }
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("flushing the requests to {topic} failed: {e}"));
    let failed = producer.context().failed.load(Ordering::Relaxed);
    assert_eq!(failed, 0, "{failed} requests to {topic} were not delivered");
    eprintln!(
        "produced {n} requests to {topic} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Order requests `range`, each with its own order id.
fn produce_orders(kafka: &str, topic: &str, range: std::ops::Range<usize>) {
    let input = order_input();
    produce_range(kafka, topic, range, |i| {
        input.replace(ORDER_ID, &format!("ORD-T-{i:07}"))
    });
}

/// Envelope requests: every `slow_every`-th one a two-second wait, the others orders.
fn produce_mixed(kafka: &str, topic: &str, range: std::ops::Range<usize>, slow_every: usize) {
    let order = order_input();
    produce_range(kafka, topic, range, |i| {
        if i % slow_every.max(1) == 0 {
            format!(r#"{{"stateMachine":"pause-two-seconds","input":{{"n":{i}}}}}"#)
        } else {
            let input = order.replace(ORDER_ID, &format!("ORD-T-{i:07}"));
            format!(r#"{{"stateMachine":"order","input":{input}}}"#)
        }
    });
}

#[derive(Default)]
struct Tally {
    per_key: HashMap<Vec<u8>, u32>,
    records: u64,
    /// Results whose status is not SUCCEEDED, or that are not results at all (a few kept).
    bad: Vec<String>,
    bad_count: u64,
    /// The producer's timestamp (ms) of every result, in arrival order.
    timestamps: Vec<i64>,
    last_arrival: Option<Instant>,
}

/// Reads a results topic from the beginning in the background and counts results per key;
/// keeps no values, so a million results fit.
struct Results {
    topic: String,
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Results {
    fn start(kafka: &str, topic: &str, partitions: i32) -> Results {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka)
            .set("group.id", unique("crash-results"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .create()
            .expect("a consumer can be configured");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("a new partition list accepts offsets");
        }
        consumer
            .assign(&tpl)
            .unwrap_or_else(|e| panic!("assigning {topic} failed: {e}"));
        let handle = {
            let (tally, stop) = (Arc::clone(&tally), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
                        continue;
                    };
                    let payload = m.payload().unwrap_or_default();
                    let ok = find(payload, br#""status":"SUCCEEDED""#);
                    let mut t = tally.lock().expect("tally lock");
                    *t.per_key
                        .entry(m.key().unwrap_or_default().to_vec())
                        .or_default() += 1;
                    t.records += 1;
                    t.timestamps.push(m.timestamp().to_millis().unwrap_or(0));
                    t.last_arrival = Some(Instant::now());
                    if !ok {
                        t.bad_count += 1;
                        if t.bad.len() < 5 {
                            let text = String::from_utf8_lossy(&payload[..payload.len().min(300)])
                                .into_owned();
                            t.bad.push(text);
                        }
                    }
                }
            })
        };
        Results {
            topic: topic.to_string(),
            tally,
            stop,
            handle: Some(handle),
        }
    }

    fn distinct(&self) -> usize {
        self.tally.lock().expect("tally lock").per_key.len()
    }

    fn records(&self) -> u64 {
        self.tally.lock().expect("tally lock").records
    }

    /// Waits until `n` keys have results (or `timeout`); returns how many have.
    fn wait_for(&self, n: usize, timeout: Duration) -> usize {
        let started = Instant::now();
        let mut report = started + Duration::from_secs(10);
        loop {
            let have = self.distinct();
            if have >= n || started.elapsed() >= timeout {
                return have;
            }
            if Instant::now() >= report {
                eprintln!(
                    "{}: {have}/{n} keys after {:.0} s",
                    self.topic,
                    started.elapsed().as_secs_f64()
                );
                report += Duration::from_secs(10);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `n` keys have results, as long as new ones keep coming: gives up when
    /// none arrived for `stall` (a stuck pipeline), however long a loaded machine takes.
    fn wait_while_progressing(&self, n: usize, stall: Duration) -> usize {
        let (mut have, mut since) = (self.distinct(), Instant::now());
        loop {
            let now = self.wait_for(n, Duration::from_secs(10));
            if now >= n {
                return now;
            }
            if now > have {
                (have, since) = (now, Instant::now());
            } else if since.elapsed() >= stall {
                eprintln!(
                    "{}: no new result for {} s, stuck at {now}/{n}",
                    self.topic,
                    stall.as_secs()
                );
                return now;
            }
        }
    }

    /// Waits until nothing has arrived for `quiet` (at most `max`): late duplicates count too.
    fn settle(&self, quiet: Duration, max: Duration) {
        let deadline = Instant::now() + max;
        while Instant::now() < deadline {
            let last = self.tally.lock().expect("tally lock").last_arrival;
            if last.is_none_or(|t| t.elapsed() >= quiet) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The earliest producer timestamp of a result written after `ms`.
    fn first_after(&self, ms: i64) -> Option<i64> {
        let t = self.tally.lock().expect("tally lock");
        t.timestamps.iter().copied().filter(|ts| *ts > ms).min()
    }

    /// Keys of `0..n` without a result, results for other keys, and bad results.
    fn problems(&self, n: usize) -> Vec<String> {
        let t = self.tally.lock().expect("tally lock");
        let mut problems = Vec::new();
        let missing: Vec<String> = (0..n)
            .map(key)
            .filter(|k| !t.per_key.contains_key(k.as_bytes()))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "{} requests have no result, e.g. {:?}",
                missing.len(),
                &missing[..missing.len().min(10)]
            ));
        }
        let wanted: BTreeSet<String> = (0..n).map(key).collect();
        let strangers: Vec<String> = t
            .per_key
            .keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .filter(|k| !wanted.contains(k))
            .take(10)
            .collect();
        if !strangers.is_empty() {
            problems.push(format!("results for keys no request had: {strangers:?}"));
        }
        if t.bad_count > 0 {
            problems.push(format!(
                "{} results are not SUCCEEDED, e.g. {:?}",
                t.bad_count, t.bad
            ));
        }
        problems
    }
}

impl Drop for Results {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What one R1 run found.
struct ChaosReport {
    duplicates: u64,
    stalls_ms: Vec<i64>,
    total: Duration,
    problems: Vec<String>,
}

/// R1: `count` order requests, the processor (`binary`) killed with SIGKILL `kills` times at
/// random moments and restarted at once, like a supervisor would.
///
/// With `slow_every`, every `slow_every`-th request instead waits two seconds, so results
/// finish out of order above a slow one (what the commit metadata is for).
fn chaos(
    count: usize,
    kills: usize,
    binary: &Path,
    seed: u64,
    slow_every: Option<usize>,
    tweak: impl Fn(&mut ProcessorConfig),
) -> ChaosReport {
    let kafka = bootstrap();
    let names = Names::new("r1");
    names.create(&kafka);
    let results = Results::start(&kafka, &names.results, 4);
    let mut config = names.config(&kafka);
    match slow_every {
        None => {
            produce_orders(&kafka, &names.requests, 0..count);
            config = config.bound_input(&names.requests, "order");
        }
        Some(every) => {
            produce_mixed(&kafka, &names.requests, 0..count, every);
            config = config.envelope_input(&names.requests);
        }
    }
    // The product's default, not the tests' own: commits are what a crash replays from.
    config.commit_interval_ms = stepstream::config::KafkaConfig::default().commit_interval_ms;
    tweak(&mut config);

    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Kill i somewhere in the middle half of the (i+1)-th slice of the run.
    let slice = count / (kills + 1);
    let targets: Vec<usize> = (0..kills)
        .map(|i| slice * (i + 1) - slice / 4 + rng.gen_range(0..=slice / 2))
        .collect();
    eprintln!("r1: {count} requests, kills after {targets:?} results (seed {seed})");

    let started = Instant::now();
    let mut processor = Processor::start_binary("r1-0", &config, binary);
    processor.wait_ready(Duration::from_secs(120));
    let mut kill_times = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let have = results.wait_for(*target, Duration::from_secs(600));
        assert!(
            have >= *target,
            "r1: stuck at {have} results before kill {}\n{}",
            i + 1,
            processor.stderr_tail(40)
        );
        // A random moment between commits, not right at a result-count boundary.
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..700)));
        let at = now_ms();
        processor.sigkill();
        kill_times.push(at);
        eprintln!(
            "r1: kill {} at {} results ({:.1} s into the run)",
            i + 1,
            results.distinct(),
            started.elapsed().as_secs_f64()
        );
        processor = Processor::start_binary(&format!("r1-{}", i + 1), &config, binary);
        processor.wait_ready(Duration::from_secs(120));
    }
    let timeout = Duration::from_secs(300 + (count / 2_000) as u64);
    let got = results.wait_for(count, timeout);
    let total = started.elapsed();
    results.settle(Duration::from_secs(3), Duration::from_secs(20));
    let stalls_ms: Vec<i64> = kill_times
        .iter()
        .map(|k| results.first_after(*k).map_or(-1, |ts| ts - k))
        .collect();
    let duplicates = results.records().saturating_sub(results.distinct() as u64);
    let mut problems = results.problems(count);
    if got < count {
        problems.push(format!(
            "only {got} of {count} results after {} s\n{}",
            timeout.as_secs(),
            processor.stderr_tail(30)
        ));
    }
    eprintln!(
        "r1: binary {} | {count} requests, {kills} kills | all answered: {} | duplicates {duplicates} ({:.2} %) | stall per kill (s) {:?} | total {:.1} s",
        binary.display(),
        problems.is_empty(),
        duplicates as f64 * 100.0 / count as f64,
        stalls_ms.iter().map(|s| *s as f64 / 1000.0).collect::<Vec<_>>(),
        total.as_secs_f64()
    );
    ChaosReport {
        duplicates,
        stalls_ms,
        total,
        problems,
    }
}

fn this_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stepstream"))
}

#[test]
fn hundred_thousand_requests_two_kills_every_request_answered() {
    const N: usize = 100_000;
    const KILLS: usize = 2;
    const SHARDS: usize = 2;
    const IN_FLIGHT: usize = 2_000;
    let seed = rand::random();
    let report = chaos(N, KILLS, &this_binary(), seed, None, |c| {
        c.shards = SHARDS;
        c.max_in_flight_per_shard = IN_FLIGHT;
    });
    assert!(
        report.problems.is_empty(),
        "R1 ({N} requests, {KILLS} kills, seed {seed}): {}",
        report.problems.join("\n")
    );
    // A kill repeats at most what was in flight plus what finished since the last commit
    // (500 ms of output); the acknowledged offsets in the commit metadata keep the rest.
    let bound = KILLS as u64 * (SHARDS * IN_FLIGHT + 15_000) as u64;
    assert!(
        report.duplicates <= bound,
        "{} duplicates after {KILLS} kills, more than the bound {bound} (seed {seed})",
        report.duplicates
    );
    assert!(
        report.stalls_ms.iter().all(|s| *s >= 0),
        "no result after a kill: {:?}",
        report.stalls_ms
    );
    eprintln!("r1-small: done in {:.1} s", report.total.as_secs_f64());
}

/// R1 at any size: `R1_COUNT` (1,000,000), `R1_KILLS` (5), `R1_BIN` (this build's
/// stepstream; scripts/chaos/r1.sh passes a release build), `R1_SEED` (random),
/// `R1_SLOW_EVERY` (unset: orders only; M: every M-th request waits two seconds).
#[test]
#[ignore = "minutes long; run by scripts/chaos/r1.sh"]
fn r1_chaos_from_env() {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let count: usize =
        var("R1_COUNT").map_or(1_000_000, |v| v.parse().expect("R1_COUNT is a number"));
    let kills: usize = var("R1_KILLS").map_or(5, |v| v.parse().expect("R1_KILLS is a number"));
    let binary = var("R1_BIN").map_or_else(this_binary, PathBuf::from);
    let seed: u64 =
        var("R1_SEED").map_or_else(rand::random, |v| v.parse().expect("R1_SEED is a number"));
    let slow_every: Option<usize> =
        var("R1_SLOW_EVERY").map(|v| v.parse().expect("R1_SLOW_EVERY is a number"));
    let report = chaos(count, kills, &binary, seed, slow_every, |_| {});
    println!(
        "R1 RESULT count={count} kills={kills} slow_every={slow_every:?} all_answered={} duplicates={} stalls_s={:?} total_s={:.1} seed={seed} binary={}",
        report.problems.is_empty(),
        report.duplicates,
        report
            .stalls_ms
            .iter()
            .map(|s| *s as f64 / 1000.0)
            .collect::<Vec<_>>(),
        report.total.as_secs_f64(),
        binary.display()
    );
    assert!(report.problems.is_empty(), "{}", report.problems.join("\n"));
}

#[test]
fn broker_killed_and_restarted_mid_run_loses_nothing() {
    const N: usize = 40_000;
    let broker = OwnBroker::start("r2");
    let kafka = broker.bootstrap.clone();
    let names = Names::new("r2");
    names.create(&kafka);
    let results = Results::start(&kafka, &names.results, 4);
    produce_orders(&kafka, &names.requests, 0..N);
    let mut config = names.config(&kafka).bound_input(&names.requests, "order");
    // Slow the run down so that the kill finds it in the middle.
    config.max_in_flight_per_shard = 500;
    let mut processor = Processor::start_ready("r2", &config);
    let have = results.wait_for(N / 10, Duration::from_secs(300));
    assert!(
        have >= N / 10,
        "r2: only {have} results before the broker kill"
    );

    broker.sigkill();
    let at_kill = results.distinct();
    eprintln!("r2: broker killed with SIGKILL at {at_kill} of {N} results");
    std::thread::sleep(Duration::from_secs(5));
    let restart_began = now_ms();
    let restarting = Instant::now();
    broker.restart();
    eprintln!(
        "r2: broker back on {kafka} {:.1} s after the restart began",
        restarting.elapsed().as_secs_f64()
    );
    // A machine shared with other builds can be slow: fail on a stall, not on the clock.
    let got = results.wait_while_progressing(N, Duration::from_secs(120));
    results.settle(Duration::from_secs(3), Duration::from_secs(20));
    let first = results.first_after(restart_began);
    let recovery = first.map(|ts| (ts - restart_began) as f64 / 1000.0);
    let duplicates = results.records().saturating_sub(results.distinct() as u64);
    eprintln!(
        "r2: {got} of {N} answered; first result {recovery:?} s after the restart began; {duplicates} duplicates"
    );
    assert!(
        processor.exited().is_none(),
        "the processor exited ({:?}) across the broker restart\n{}",
        processor.exited(),
        processor.stderr_tail(40)
    );
    let problems = results.problems(N);
    assert!(
        problems.is_empty(),
        "across a broker restart: {}\n{}",
        problems.join("\n"),
        processor.stderr_tail(40)
    );
}

#[test]
fn group_member_killed_the_other_takes_every_partition_and_nothing_is_lost() {
    const N: usize = 8_000;
    // sink.rs sets it for every processor; the group waits this long for a silent member.
    const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
    let kafka = bootstrap();
    let names = Names::new("takeover");
    names.create(&kafka);
    let results = Results::start(&kafka, &names.results, 4);
    let mut config = names
        .config(&kafka)
        .bound_input(&names.requests, "pause-one-second");
    config.shards = 1;
    let mut a = Processor::start("takeover-a", &config);
    let mut b = Processor::start("takeover-b", &config);
    a.wait_ready(Duration::from_secs(60));
    b.wait_ready(Duration::from_secs(60));

    let deadline = Instant::now() + Duration::from_secs(60);
    let holders = |members: &[kafka_support::GroupMember]| {
        members
            .iter()
            .filter(|m| {
                m.assignment
                    .get(&names.requests)
                    .is_some_and(|p| !p.is_empty())
            })
            .count()
    };
    loop {
        let (state, members) = describe_group(&kafka, &names.group);
        if state == "Stable" && members.len() == 2 && holders(&members) == 2 {
            eprintln!("takeover: both members hold partitions: {members:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the group never had both processors holding partitions: {state} {members:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let paused = |i: usize| format!("{{\"n\":{i}}}");
    produce_range(&kafka, &names.requests, 0..N / 2, paused);
    let have = results.wait_for(500, Duration::from_secs(120));
    assert!(have >= 500, "only {have} results before the kill");

    b.sigkill();
    let killed = Instant::now();
    produce_range(&kafka, &names.requests, N / 2..N, paused);
    let takeover = loop {
        let (state, members) = describe_group(&kafka, &names.group);
        let all = members.len() == 1
            && members[0]
                .assignment
                .get(&names.requests)
                .is_some_and(|p| p.len() == 4);
        if state == "Stable" && all {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < SESSION_TIMEOUT + Duration::from_secs(50),
            "takeover-a does not hold every partition {} s after takeover-b was killed: {state} {members:?}",
            killed.elapsed().as_secs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "takeover: takeover-a holds all 4 partitions {:.1} s after takeover-b was killed (session timeout {} s)",
        takeover.as_secs_f64(),
        SESSION_TIMEOUT.as_secs()
    );
    let got = results.wait_for(N, Duration::from_secs(300));
    results.settle(Duration::from_secs(2), Duration::from_secs(20));
    let duplicates = results.records().saturating_sub(results.distinct() as u64);
    eprintln!("takeover: {got} of {N} answered, {duplicates} duplicates");
    assert!(a.exited().is_none(), "takeover-a exited: {:?}", a.exited());
    let problems = results.problems(N);
    assert!(
        problems.is_empty(),
        "after the kill: {}",
        problems.join("\n")
    );
    // The session timeout, then one rebalance: a slow shared machine gets room, not forever.
    assert!(
        takeover < SESSION_TIMEOUT + Duration::from_secs(20),
        "the takeover took {:.1} s",
        takeover.as_secs_f64()
    );
}

/// What a kill in the middle of out-of-order results left behind.
struct SkipRun {
    first_stderr: String,
    second_stderr: String,
    skipped: i64,
    duplicates: u64,
    /// The group's committed offsets, summed over the partitions, just before the kill.
    committed_at_kill: i64,
    problems: Vec<String>,
}

/// Requests where every 50th waits two seconds (so results finish out of order above it);
/// the processor is killed after a third of them and restarted. `kafka_keys` are extra
/// `[kafka]` config lines.
fn kill_amid_out_of_order_results(kafka: &str, tag: &str, n: usize, kafka_keys: &str) -> SkipRun {
    // A slow request holds its partition's watermark back while the fast ones above it
    // finish: the case the commit metadata is for.
    const SLOW_EVERY: usize = 50;
    let names = Names::new(tag);
    names.create(kafka);
    let results = Results::start(kafka, &names.results, 4);
    produce_mixed(kafka, &names.requests, 0..n, SLOW_EVERY);
    let config = names
        .config(kafka)
        .envelope_input(&names.requests)
        .to_toml()
        .replacen("[kafka]\n", &format!("[kafka]\n{kafka_keys}"), 1);
    let start = |name: String| {
        let mut p = Processor::start_toml(&name, &config, &this_binary());
        p.wait_ready(Duration::from_secs(60));
        p
    };
    let mut first = start(format!("{tag}-first"));
    let have = results.wait_for(n / 3, Duration::from_secs(300));
    assert!(have >= n / 3, "{tag}: only {have} results before the kill");
    let committed_at_kill: i64 = committed_offsets(kafka, &names.group, &names.requests, 4)
        .values()
        .flatten()
        .sum();
    first.sigkill();
    let at_kill = results.records();
    let second = start(format!("{tag}-second"));
    let got = results.wait_for(n, Duration::from_secs(300));
    results.settle(Duration::from_secs(3), Duration::from_secs(20));
    let duplicates = results.records().saturating_sub(results.distinct() as u64);
    let second_stderr = second.stderr();
    let skipped: i64 = second_stderr
        .lines()
        .filter(|l| l.contains("already have results and are skipped"))
        .filter_map(|l| l.split("; ").nth(1)?.split(' ').next()?.parse::<i64>().ok())
        .sum();
    eprintln!(
        "{tag}: killed at {at_kill} results; the restarted process skipped {skipped} offsets recorded as answered; {got} of {n} answered, {duplicates} duplicates"
    );
    let mut problems = results.problems(n);
    if !problems.is_empty() {
        problems.push(second.stderr_tail(40));
    }
    SkipRun {
        first_stderr: first.stderr(),
        second_stderr,
        skipped,
        duplicates,
        committed_at_kill,
        problems,
    }
}

#[test]
fn results_finished_above_a_slow_request_are_not_repeated_after_a_kill() {
    let run = kill_amid_out_of_order_results(&bootstrap(), "skip", 30_000, "");
    assert!(run.problems.is_empty(), "{}", run.problems.join("\n"));
    assert!(
        run.skipped > 0,
        "the restarted process skipped nothing: the commit metadata was not written or not read\n{}",
        run.second_stderr
    );
    // Without the metadata every skipped offset would have run again.
    assert!(
        (run.duplicates as i64) < run.skipped,
        "{} duplicates although {} offsets were skipped",
        run.duplicates,
        run.skipped
    );
}

#[test]
fn commit_metadata_stays_within_a_brokers_lower_limit() {
    // A broker that refuses commit metadata over 32 bytes, and a processor told so.
    let broker = OwnBroker::start_with("small-metadata", "offset.metadata.max.bytes=32");
    let run = kill_amid_out_of_order_results(
        &broker.bootstrap,
        "small-metadata",
        20_000,
        "commit_metadata_max_bytes = 32\n",
    );
    assert!(run.problems.is_empty(), "{}", run.problems.join("\n"));
    // Commits went through (a refused one leaves its partition uncommitted) and still
    // carried acknowledged offsets.
    assert!(
        run.committed_at_kill > 0,
        "nothing was committed before the kill:\n{}",
        run.first_stderr
    );
    assert!(
        run.skipped > 0,
        "the restarted process skipped nothing\n{}",
        run.second_stderr
    );
}

#[test]
fn commit_metadata_written_by_another_tool_is_ignored() {
    const N: usize = 2_000;
    let kafka = bootstrap();
    let names = Names::new("foreign-metadata");
    names.create(&kafka);
    let results = Results::start(&kafka, &names.results, 4);
    produce_orders(&kafka, &names.requests, 0..N);
    // Another tool committed position 0 of every partition with metadata of its own: text,
    // JSON, our prefix with garbage, and a well-formed claim made for another position.
    let foreign = [
        "checkpoint 42",
        "{\"tool\": \"other\"}",
        "ss1:!!garbage!!",
        "ss1:BTI",
    ];
    let committer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka)
        .set("group.id", &names.group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer can be configured");
    let mut tpl = TopicPartitionList::new();
    for (p, meta) in foreign.iter().enumerate() {
        let mut e = tpl.add_partition(&names.requests, p as i32);
        e.set_offset(Offset::Offset(0))
            .expect("offset 0 can be set");
        e.set_metadata(meta);
    }
    committer
        .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .expect("the foreign commit is accepted");
    drop(committer);

    let config = names.config(&kafka).bound_input(&names.requests, "order");
    let processor = Processor::start_ready("foreign-metadata", &config);
    let got = results.wait_for(N, Duration::from_secs(120));
    results.settle(Duration::from_secs(2), Duration::from_secs(10));
    eprintln!("foreign-metadata: {got} of {N} answered");
    let problems = results.problems(N);
    assert!(
        problems.is_empty(),
        "{}\n{}",
        problems.join("\n"),
        processor.stderr_tail(30)
    );
    assert!(
        !processor.stderr_has("are skipped"),
        "foreign metadata made the processor skip offsets\n{}",
        processor.stderr_tail(30)
    );
}
