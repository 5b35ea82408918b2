//! No record can freeze a partition (issue 10, R5), on a real Kafka broker: records that are
//! too large, not text, not JSON, or carry bad names, and outputs the broker refuses, each
//! become exactly one bounded dead letter; the requests behind them on the same partition
//! are answered; the committed offset passes them all; a restart replays none of them; and
//! SIGTERM exits promptly.
//!
//! ```sh
//! export KAFKA_RUN_DIR=$PWD/.cache/kafka-run; kafka_env="$(scripts/kafka/start.sh)"; export "$kafka_env"
//! cargo test --test poison_kafka -- --nocapture
//! ```

mod kafka_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_support::{
    bootstrap, check_dead_letter_original, committed_offsets, create_topics_with_configs, produce,
    repo_root, unique, Collector, Landed, Outgoing, Processor, ProcessorConfig, RESULTS_TIMEOUT,
};
use serde_json::{json, Value};

/// The processor's default `[output] dead_letter_max_original_bytes`.
const DEAD_LETTER_CAP: usize = 64 * 1024;
/// What a dead letter may hold besides its original (stepstream's DEAD_LETTER_ENVELOPE_BYTES).
const DEAD_LETTER_ENVELOPE: usize = 4096;
/// The input topic's `max.message.bytes`, set explicitly.
const INPUT_TOPIC_LIMIT: usize = 1024 * 1024;
/// The results topic's `max.message.bytes`: low, so that the broker itself refuses a large
/// (incompressible) result in a delivery report, which the producer cannot know beforehand.
const RESULTS_TOPIC_LIMIT: usize = 100_000;
/// librdkafka's default `message.max.bytes`, the processor's producer limit.
const PRODUCER_LIMIT: usize = 1_000_000;
/// The grace period configured, which a prompt SIGTERM must stay well under.
const GRACE_SECONDS: u64 = 30;

/// A record that must become exactly one dead letter.
struct Poison {
    key: &'static str,
    /// The key bytes when they are not `key` (a key as large as the record).
    raw_key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    /// The dead letter's `error`.
    error: &'static str,
    /// A piece of its `cause`.
    cause: &'static str,
    /// The bytes the dead letter's original must be a prefix of.
    original: Original,
}

enum Original {
    /// The request's value.
    Request,
    /// An output the processor wrote and the broker refused: only its size range is known.
    Output { at_least: usize },
}

/// Hex text that lz4 cannot shrink: the broker must see the full size.
fn incompressible(len: usize) -> String {
    let mut s = String::with_capacity(len + 32);
    while s.len() < len {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(len);
    s
}

fn envelope(name: Option<&str>, input: Value) -> Vec<u8> {
    let mut v = json!({"stateMachine": "echo", "input": input});
    if let Some(n) = name {
        v["name"] = json!(n);
    }
    v.to_string().into_bytes()
}

fn poisons() -> Vec<Poison> {
    let p = |key, value: Vec<u8>, error, cause| Poison {
        key,
        raw_key: None,
        value,
        headers: Vec::new(),
        error,
        cause,
        original: Original::Request,
    };
    // 450 KB of request: its dead letter used to carry it twice (text and base64), over
    // the producer's 1 MB limit.
    let big = envelope(None, json!({"blob": "x".repeat(450 * 1024)}));
    // Just under the input topic's limit (a batch of one record adds < 100 bytes).
    let near = envelope(None, json!({"blob": "y".repeat(INPUT_TOPIC_LIMIT - 600)}));
    assert!(near.len() < INPUT_TOPIC_LIMIT - 400);
    let mut long_name = p(
        "poison-10000-char-name-header",
        envelope(None, json!({"a": 1})),
        "stepstream.InvalidRequest",
        "longer than 80 characters",
    );
    long_name.headers.push((
        "stepstream-execution-name".to_string(),
        "n".repeat(10_000).into_bytes(),
    ));
    let mut big_result = p(
        "poison-result-over-results-topic-limit",
        envelope(None, json!({"blob": incompressible(200 * 1024)})),
        "stepstream.OutputRejected",
        "MessageSizeTooLarge",
    );
    big_result.original = Original::Output {
        at_least: 200 * 1024,
    };
    // The result keeps the request's key: with this key it is over the producer's own limit,
    // refused when it is queued rather than by the broker.
    let mut huge_key = p(
        "poison-key-over-producer-limit",
        envelope(Some("fine-name"), json!({"a": 1})),
        "stepstream.OutputRejected",
        "MessageSizeTooLarge",
    );
    huge_key.raw_key = Some(vec![b'k'; PRODUCER_LIMIT - 200]);
    huge_key.original = Original::Output { at_least: 300 };
    vec![
        p(
            "poison-450-kb",
            big,
            "States.DataLimitExceeded",
            "over the 262144-byte limit",
        ),
        p(
            "poison-200-kb-control-characters",
            vec![0x01; 200 * 1024],
            "stepstream.InvalidRequest",
            "not valid JSON",
        ),
        p(
            "poison-invalid-utf8-over-256-kib",
            vec![0xff; 300 * 1024],
            "States.DataLimitExceeded",
            "over the 262144-byte limit",
        ),
        p(
            "poison-just-under-topic-limit",
            near,
            "States.DataLimitExceeded",
            "over the 262144-byte limit",
        ),
        long_name,
        p(
            "poison-name-with-whitespace",
            envelope(Some("has space"), json!({"a": 1})),
            "stepstream.InvalidRequest",
            "whitespace",
        ),
        p(
            "poison-name-with-star",
            envelope(Some("wild*card"), json!({"a": 1})),
            "stepstream.InvalidRequest",
            "'*'",
        ),
        big_result,
        huge_key,
    ]
}

fn good(i: usize) -> Outgoing {
    let name = format!("good-run-{i}");
    Outgoing::new(format!("good-{i}"), envelope(Some(&name), json!({"n": i})))
}

/// Produces the records in order, the large ones one per batch (a batch over the input
/// topic's limit would be refused whole); returns where each landed and when its
/// produce call returned.
fn produce_in_order(kafka: &str, topic: &str, records: &[Outgoing]) -> Vec<(Landed, Instant)> {
    let mut landed = Vec::new();
    let mut small: Vec<Outgoing> = Vec::new();
    let send = |batch: &[Outgoing], landed: &mut Vec<(Landed, Instant)>| {
        let l = produce(kafka, topic, batch);
        let now = Instant::now();
        landed.extend(l.into_iter().map(|l| (l, now)));
    };
    for r in records {
        if r.key.len() + r.value.as_ref().map_or(0, Vec::len) > 64 * 1024 {
            send(&small, &mut landed);
            small.clear();
            send(std::slice::from_ref(r), &mut landed);
        } else {
            small.push(r.clone());
        }
    }
    send(&small, &mut landed);
    landed
}

/// Samples the group's committed offset of partition 0 every 50 ms in the background.
struct CommitWatch {
    samples: Arc<Mutex<Vec<(Instant, i64)>>>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl CommitWatch {
    fn start(kafka: &str, group: &str, topic: &str) -> CommitWatch {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (samples, stop) = (Arc::clone(&samples), Arc::clone(&stop));
            let (kafka, group, topic) = (kafka.to_string(), group.to_string(), topic.to_string());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let c = committed_offsets(&kafka, &group, &topic, 1);
                    if let Some(Some(o)) = c.get(&0) {
                        samples
                            .lock()
                            .expect("samples lock")
                            .push((Instant::now(), *o));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        CommitWatch {
            samples,
            stop,
            handle: Some(handle),
        }
    }

    /// When the committed offset was first seen past `offset`.
    fn passed(&self, offset: i64) -> Option<Instant> {
        let s = self.samples.lock().expect("samples lock");
        s.iter().find(|(_, o)| *o > offset).map(|(t, _)| *t)
    }
}

impl Drop for CommitWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Waits until the group's committed offset of partition 0 reaches `end`; returns when.
fn wait_committed(kafka: &str, group: &str, topic: &str, end: i64) -> Option<Instant> {
    let deadline = Instant::now() + RESULTS_TIMEOUT;
    let mut last = None;
    while Instant::now() < deadline {
        last = committed_offsets(kafka, group, topic, 1)
            .get(&0)
            .copied()
            .flatten();
        if last.is_some_and(|o| o >= end) {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("committed offset {last:?}, want {end}");
    None
}

fn key_text(key: &[u8]) -> String {
    if key.len() > 100 {
        format!("<{}-byte key>", key.len())
    } else {
        String::from_utf8_lossy(key).into_owned()
    }
}

#[test]
fn poison_records_never_freeze_a_partition_or_a_restart_or_a_shutdown() {
    let test_started = Instant::now();
    let kafka = bootstrap();
    let id = unique("poison10");
    let (requests, results, errors) = (
        format!("{id}.requests"),
        format!("{id}.results"),
        format!("{id}.errors"),
    );
    let input_limit = INPUT_TOPIC_LIMIT.to_string();
    let results_limit = RESULTS_TOPIC_LIMIT.to_string();
    create_topics_with_configs(
        &kafka,
        &[
            (&requests, 1, &[("max.message.bytes", &input_limit)]),
            (&results, 1, &[("max.message.bytes", &results_limit)]),
            (&errors, 1, &[]),
        ],
    );
    let result_log = Collector::start(&kafka, &results);
    let error_log = Collector::start(&kafka, &errors);
    let mut config = ProcessorConfig::new(&kafka, &id, &results, &errors).envelope_input(&requests);
    config.state_machines_dir = repo_root().join("tests/fixtures/poison");
    config.shutdown_grace_seconds = GRACE_SECONDS;
    let mut first = Processor::start_ready("poison-first", &config);

    // Each poison between good requests, all on the one partition.
    let poisons = poisons();
    let mut records = Vec::new();
    let mut goods = 0;
    let mut poison_at = Vec::new();
    for poison in &poisons {
        for _ in 0..3 {
            records.push(good(goods));
            goods += 1;
        }
        poison_at.push(records.len());
        let mut r = Outgoing::new(poison.key, poison.value.clone());
        if let Some(k) = &poison.raw_key {
            r.key = k.clone();
        }
        r.headers = poison.headers.clone();
        records.push(r);
    }
    for _ in 0..3 {
        records.push(good(goods));
        goods += 1;
    }
    let watch = CommitWatch::start(&kafka, &id, &requests);
    let produced_at = produce_in_order(&kafka, &requests, &records);
    let produced = Instant::now();
    let landed: Vec<Landed> = produced_at.iter().map(|(l, _)| *l).collect();
    assert!(landed.iter().all(|l| l.partition == 0));
    let end = landed.last().expect("records were produced").offset + 1;

    let committed_at = wait_committed(&kafka, &id, &requests, end);
    assert!(
        committed_at.is_some(),
        "the committed offset never passed the poison records\n{}",
        first.stderr_tail(40)
    );
    let to_commit = committed_at.expect("checked").duration_since(produced);
    let have = result_log.wait_for_keys(goods, RESULTS_TIMEOUT);
    error_log.wait_for_keys(poisons.len(), RESULTS_TIMEOUT);
    error_log.settle(Duration::from_secs(2), Duration::from_secs(10));
    result_log.settle(Duration::from_secs(1), Duration::from_secs(10));
    assert_eq!(have, goods, "every good request gets its result");

    let mut problems = Vec::new();
    let letters = error_log.records();
    let mut sizes = BTreeMap::new();
    for (j, poison) in poisons.iter().enumerate() {
        let at = landed[poison_at[j]];
        let mine: Vec<_> = letters
            .iter()
            .filter(|r| {
                r.json().is_ok_and(|v| {
                    v["source"]["offset"] == at.offset && v["source"]["topic"] == requests.as_str()
                })
            })
            .collect();
        if mine.len() != 1 {
            problems.push(format!(
                "{}: {} dead letters, want 1",
                poison.key,
                mine.len()
            ));
            continue;
        }
        let record = mine[0];
        let size = record.value.as_ref().map_or(0, Vec::len);
        sizes.insert(poison.key, size);
        if size > DEAD_LETTER_CAP + DEAD_LETTER_ENVELOPE {
            problems.push(format!("{}: dead letter of {size} bytes", poison.key));
        }
        let v = record.json().expect("checked above");
        if v["error"] != poison.error {
            problems.push(format!(
                "{}: error {} (want {})",
                poison.key, v["error"], poison.error
            ));
        }
        let cause = v["cause"].as_str().unwrap_or_default();
        if !cause.contains(poison.cause) {
            problems.push(format!(
                "{}: cause {cause:?} lacks {:?}",
                poison.key, poison.cause
            ));
        }
        let expected_key = poison.raw_key.as_deref().unwrap_or(poison.key.as_bytes());
        let key = record.key.as_deref().unwrap_or_default();
        match &poison.original {
            Original::Request => {
                if key != expected_key {
                    problems.push(format!(
                        "{}: dead letter keyed {}",
                        poison.key,
                        key_text(key)
                    ));
                }
                for w in check_dead_letter_original(&v, &poison.value) {
                    problems.push(format!("{}: {w}", poison.key));
                }
            }
            Original::Output { at_least } => {
                // The refused output is a result keyed like the request; the replacement
                // keeps a small key and drops a large one.
                let want_key: &[u8] = if expected_key.len() > 1024 {
                    b""
                } else {
                    expected_key
                };
                if key != want_key {
                    problems.push(format!(
                        "{}: replacement keyed {}",
                        poison.key,
                        key_text(key)
                    ));
                }
                let original_size = v["originalSize"].as_u64().unwrap_or(0) as usize;
                if original_size < *at_least
                    || v["originalSha256"].as_str().map(str::len) != Some(64)
                {
                    problems.push(format!(
                        "{}: originalSize {} / originalSha256 {} do not describe the refused output",
                        poison.key, v["originalSize"], v["originalSha256"]
                    ));
                }
                if v["rejectedTopic"] != results.as_str() || v["kafkaError"].as_str().is_none() {
                    problems.push(format!(
                        "{}: rejectedTopic {} kafkaError {}",
                        poison.key, v["rejectedTopic"], v["kafkaError"]
                    ));
                }
            }
        }
    }
    if letters.len() != poisons.len() {
        problems.push(format!(
            "{} dead letters for {} poisons",
            letters.len(),
            poisons.len()
        ));
    }
    let by_key = result_log.by_key();
    for i in 0..goods {
        match by_key.get(&format!("good-{i}")).map(Vec::as_slice) {
            Some([r]) => {
                let v = r.json().unwrap_or_default();
                if v["status"] != "SUCCEEDED"
                    || v["output"] != json!({"n": i})
                    || v["name"] != format!("good-run-{i}")
                {
                    problems.push(format!("good-{i}: result {v}"));
                }
            }
            other => problems.push(format!(
                "good-{i}: {} results, want 1",
                other.map_or(0, <[_]>::len)
            )),
        }
    }
    if result_log.total() != goods {
        problems.push(format!(
            "{} results for {goods} good requests",
            result_log.total()
        ));
    }
    assert!(
        problems.is_empty(),
        "{}\n{}",
        problems.join("\n"),
        first.stderr_tail(40)
    );
    eprintln!("poison: dead letter sizes (bytes): {sizes:?}");
    // Sampled every 50 ms, by a client that needs a few ms per sample: read as +- 100 ms.
    let lags: Vec<String> = poisons
        .iter()
        .zip(&poison_at)
        .map(|(p, &i)| {
            let (l, at) = produced_at[i];
            match watch.passed(l.offset) {
                Some(t) => format!(
                    "{} {:.2} s",
                    p.key,
                    t.saturating_duration_since(at).as_secs_f64()
                ),
                None => format!("{} not seen", p.key),
            }
        })
        .collect();
    eprintln!(
        "poison: produced -> committed offset past it: {}",
        lags.join(", ")
    );
    drop(watch);
    eprintln!(
        "poison: committed offset passed all {} records {:.2} s after the last was produced",
        records.len(),
        to_commit.as_secs_f64()
    );
    assert!(
        first.stderr_has("stepstream.OutputRejected"),
        "a refused output is logged\n{}",
        first.stderr_tail(40)
    );

    // A graceful stop does not wait out the grace period: nothing is stuck.
    let stopping = Instant::now();
    first.sigterm();
    let status = first.wait_exit(Duration::from_secs(GRACE_SECONDS + 30));
    let stop_took = stopping.elapsed();
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?}\n{}",
        first.stderr_tail(40)
    );
    eprintln!("poison: SIGTERM to exit {:.2} s", stop_took.as_secs_f64());
    assert!(
        stop_took < Duration::from_secs(10),
        "SIGTERM took {stop_took:?} (grace {GRACE_SECONDS} s)\n{}",
        first.stderr_tail(40)
    );

    // A restart resumes past the poison: three new requests are answered, nothing old again.
    let mut second = Processor::start_ready("poison-second", &config);
    let after: Vec<Outgoing> = (goods..goods + 3).map(good).collect();
    let landed_after = produce(&kafka, &requests, &after);
    let have = result_log.wait_for_keys(goods + 3, RESULTS_TIMEOUT);
    assert_eq!(
        have,
        goods + 3,
        "the restarted processor answers new requests"
    );
    assert!(wait_committed(&kafka, &id, &requests, landed_after[2].offset + 1).is_some());
    result_log.settle(Duration::from_secs(2), Duration::from_secs(10));
    error_log.settle(Duration::from_secs(2), Duration::from_secs(10));
    assert_eq!(
        error_log.total(),
        poisons.len(),
        "the restart wrote dead letters again\n{}",
        second.stderr_tail(40)
    );
    assert_eq!(
        result_log.total(),
        goods + 3,
        "the restart replayed requests"
    );
    let stopping = Instant::now();
    second.sigterm();
    let status = second.wait_exit(Duration::from_secs(GRACE_SECONDS + 30));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?}"
    );
    assert!(stopping.elapsed() < Duration::from_secs(10));
    eprintln!(
        "poison: test ran {:.1} s",
        test_started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_dead_letter_the_errors_topic_refuses_still_lets_the_offset_move_on() {
    let kafka = bootstrap();
    let id = unique("poison10-lost");
    let (requests, results, errors) = (
        format!("{id}.requests"),
        format!("{id}.results"),
        format!("{id}.errors"),
    );
    // An errors topic too small for any dead letter with an original in it: the dead letter,
    // its try alone and its replacement are all refused.
    create_topics_with_configs(
        &kafka,
        &[
            (&requests, 1, &[]),
            (&results, 1, &[]),
            (&errors, 1, &[("max.message.bytes", "300")]),
        ],
    );
    let result_log = Collector::start(&kafka, &results);
    let mut config = ProcessorConfig::new(&kafka, &id, &results, &errors).envelope_input(&requests);
    config.state_machines_dir = repo_root().join("tests/fixtures/poison");
    config.shutdown_grace_seconds = GRACE_SECONDS;
    let mut processor = Processor::start_ready("poison-lost", &config);

    let mut records: Vec<Outgoing> = (0..3).map(good).collect();
    records.push(Outgoing::new(
        "poison-no-room-for-its-dead-letter",
        incompressible(50 * 1024).into_bytes(),
    ));
    records.extend((3..6).map(good));
    let landed = produce(&kafka, &requests, &records);
    let end = landed.last().expect("records were produced").offset + 1;
    assert!(
        wait_committed(&kafka, &id, &requests, end).is_some(),
        "the committed offset never passed a record whose dead letter is refused\n{}",
        processor.stderr_tail(40)
    );
    assert_eq!(result_log.wait_for_keys(6, RESULTS_TIMEOUT), 6);
    assert!(
        processor.stderr_has("NO OUTPUT AT ALL"),
        "losing the dead letter is logged\n{}",
        processor.stderr_tail(40)
    );
    let stopping = Instant::now();
    processor.sigterm();
    let status = processor.wait_exit(Duration::from_secs(GRACE_SECONDS + 30));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?}"
    );
    assert!(stopping.elapsed() < Duration::from_secs(10));
}
