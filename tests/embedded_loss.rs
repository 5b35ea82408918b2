//! The embedded demo broker never loses requests silently: when its retention (5 MiB per
//! partition) drops requests the pipeline has not read, stepstream counts them exactly, and
//! the demo's missing results are those drops and nothing else.
//!
//! Everything runs in process on the embedded broker (librdkafka's mock cluster), so no
//! Kafka is needed. The overfill is deterministic: the feeder writes every request before the
//! pipeline starts reading.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use stepstream::config::{Config, InputConfig};
use stepstream::load;
use stepstream::pipeline::{self, embedded::EmbeddedBroker};

const REQUESTS: &str = "loss.requests";
const RESULTS: &str = "loss.results";
const ERRORS: &str = "loss.errors";

/// Requests of about 1 KiB each, stored uncompressed: 8 MB into a partition that keeps 5 MiB.
const COUNT: u64 = 8_000;

/// A state machine whose result leaves the padding out, so results stay far below 5 MiB.
const TRIM: &str = r#"{"StartAt": "Trim", "States": {"Trim": {"Type": "Pass", "Parameters": {"id.$": "$.id"}, "End": true}}}"#;

fn low_and_high(bootstrap: &str, topic: &str) -> (i64, i64) {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("a client of the embedded broker");
    client
        .fetch_watermarks(topic, 0, Duration::from_secs(5))
        .expect("watermarks of the embedded broker")
}

#[test]
fn requests_dropped_unread_by_the_embedded_broker_are_counted_and_are_the_missing_results() {
    let scratch = common::Scratch::new("embedded-loss");
    let machines = scratch.0.join("machines");
    std::fs::create_dir_all(&machines).expect("scratch dir is writable");
    std::fs::write(machines.join("trim.asl.json"), TRIM).expect("scratch dir is writable");

    // The embedded broker creates topics only at its start: the group's definitions topic too.
    let broker = EmbeddedBroker::start(&[
        (REQUESTS, 1),
        (RESULTS, 1),
        (ERRORS, 1),
        ("loss.state-machines", 1),
    ])
    .expect("the embedded broker starts");
    let bootstrap = broker.bootstrap_servers().to_string();

    let mut cfg = Config::default();
    cfg.kafka.brokers = bootstrap.clone();
    cfg.kafka.partitions = 1;
    cfg.kafka.group_id = "loss".into();
    cfg.kafka.use_embedded_consumer_settings();
    cfg.inputs = vec![InputConfig {
        topic: REQUESTS.into(),
        state_machine: None,
    }];
    cfg.topics.results = RESULTS.into();
    cfg.topics.errors = ERRORS.into();
    cfg.engine.state_machines_dir = machines;
    cfg.engine.shards = 1;

    // Unpaced, and uncompressed: lz4 would shrink identical requests to almost nothing.
    let spec = load::FeedSpec {
        bootstrap: bootstrap.clone(),
        requests_topic: REQUESTS.into(),
        results_topic: RESULTS.into(),
        state_machine: "trim".into(),
        input: serde_json::json!({"id": 7, "padding": "x".repeat(1000)}),
        count: COUNT,
        warmup: 0,
        rate_per_sec: None,
        max_outstanding: COUNT as usize,
        // It stops waiting once the drops are all that is missing; this is only a safety net.
        timeout: Duration::from_secs(30),
        client_properties: vec![("compression.type".into(), "none".into())],
        expected_output: Some(serde_json::json!({"id": 7})),
        passthrough: false,
        requests_dropped: Some(broker.dropped_unread_counter()),
    };
    let feeder_stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let stop = Arc::clone(&feeder_stop);
        std::thread::spawn(move || load::feed(&spec, &stop))
    };

    let started = Instant::now();
    let (low, high) = loop {
        let (low, high) = low_and_high(&bootstrap, REQUESTS);
        if high == COUNT as i64 {
            break (low, high);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60) && !feeder.is_finished(),
            "the feeder wrote {high} of {COUNT} requests"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        low > 1_000,
        "the broker kept {low}..{high}: the test did not overfill it"
    );

    let pipeline_stop = Arc::new(AtomicBool::new(false));
    let pipeline = {
        let (cfg, bootstrap, stop) = (cfg.clone(), bootstrap.clone(), Arc::clone(&pipeline_stop));
        std::thread::spawn(move || pipeline::run(&cfg, &bootstrap, &stop))
    };
    let summary = feeder
        .join()
        .expect("the feeder does not panic")
        .expect("the feeder runs");
    pipeline_stop.store(true, Ordering::Relaxed);
    pipeline
        .join()
        .expect("the pipeline does not panic")
        .expect("the pipeline runs");
    let settled = broker.settle();

    // Exact: everything below the low watermark was dropped before the pipeline read it.
    assert_eq!(
        settled.dropped_unread,
        u64::try_from(low).expect("low >= 0")
    );
    assert_eq!(settled.unread, 0);
    assert_eq!(summary.sent, COUNT);
    assert_eq!(summary.wrong_outputs, 0, "{:?}", summary.first_wrong);
    assert_eq!(summary.lost_results, 0, "results are small: none dropped");
    // And the drops are the missing results, no more and no less.
    assert_eq!(summary.sent - summary.results, summary.missing);
    assert_eq!(
        summary.missing,
        settled.dropped_unread + summary.lost_results
    );
}

/// `stepstream run --demo` says so loudly: an error line per loss, the total at shutdown, and
/// a `lost` line in the demo report. The pipeline holds one execution of one second at a
/// time, so of 2,000 requests of 4 KB (8 MB, uncompressed) written at once into one
/// partition the broker must drop some before they are read; the run is then interrupted.
#[test]
fn run_demo_reports_requests_the_embedded_broker_dropped() {
    let scratch = common::Scratch::new("embedded-loss-cli");
    let input = scratch.write(
        "input.json",
        serde_json::json!({"orderId": "ORD-1", "padding": "x".repeat(4000)}).to_string(),
    );
    let stderr_path = scratch.0.join("stderr.txt");
    let stderr = std::fs::File::create(&stderr_path).expect("scratch dir is writable");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_stepstream"))
        .current_dir(common::root())
        .args([
            "run",
            "--demo",
            "2000",
            "--demo-machine",
            "pause-one-second",
        ])
        .arg("--demo-input")
        .arg(&input)
        .env("STEPSTREAM_KAFKA_BROKERS", "")
        .env("STEPSTREAM_API_LISTEN", "off")
        .env("STEPSTREAM_KAFKA_PARTITIONS", "1")
        .env("STEPSTREAM_KAFKA_PROPERTY_COMPRESSION_TYPE", "none")
        .env("STEPSTREAM_ENGINE_SHARDS", "1")
        .env("STEPSTREAM_ENGINE_MAX_IN_FLIGHT_PER_SHARD", "1")
        .env(
            "STEPSTREAM_ENGINE_STATE_MACHINES_DIR",
            "tests/fixtures/pipeline",
        )
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("the stepstream binary starts");

    let started = Instant::now();
    let loss_line = loop {
        let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|l| l.starts_with("stepstream: the embedded broker dropped") && l.contains("/0"))
        {
            break line.to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no loss reported in 60 s; stderr:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let pid = i32::try_from(child.id()).expect("a pid fits in i32");
    // SAFETY: kill(2) on the child this test started and has not yet waited for.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = child.wait_with_output().expect("stepstream exits");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();

    // "... dropped N unread requests from stepstream.requests/0 (offsets A..B): ..."
    let count = |line: &str, after: &str| -> u64 {
        line.split(after)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count after {after:?} in {line:?}"))
    };
    let first = count(&loss_line, "dropped ");
    assert!(first > 0, "{loss_line}");
    assert!(
        loss_line.contains("use a real Kafka (kafka.brokers)"),
        "{loss_line}"
    );
    let total_line = stderr
        .lines()
        .find(|l| l.ends_with("unread requests in all"))
        .unwrap_or_else(|| panic!("no shutdown total; stderr:\n{stderr}"));
    let total = count(total_line, "dropped ");
    let events: u64 = stderr
        .lines()
        .filter(|l| {
            l.starts_with("stepstream: the embedded broker dropped") && l.contains(" from ")
        })
        .map(|l| count(l, "dropped "))
        .sum();
    assert_eq!(total, events, "the total is the sum of the logged losses");
    assert!(
        stdout.contains(&format!("lost        {total} requests, 0 results")),
        "{stdout}"
    );
    // Interrupted with requests missing: not a success.
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
}
