//! `/metrics` counts what ran (issue 12), on a real Kafka broker: a known mix of executions
//! that succeed, fail and time out, and requests that are dead-lettered, then a scrape of
//! `/metrics` over HTTP, parsed by a real Prometheus text-format parser (Python's
//! `prometheus_client`, `scripts/ops/prom_parse.py`), must show every counter equal to what
//! ran, and the metrics topic must carry the same figures.
//!
//! ```sh
//! export KAFKA_RUN_DIR=$PWD/.cache/kafka-run; kafka_env="$(scripts/kafka/start.sh)"; export "$kafka_env"
//! export STEPSTREAM_OPS_PYTHON="$(scripts/ops/venv.sh)"
//! cargo test --test metrics_kafka -- --nocapture
//! ```

mod kafka_support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kafka_support::{
    bootstrap, fixtures_dir, produce, repo_root, unique, Collector, Outgoing, Processor,
    ProcessorConfig, RESULTS_TIMEOUT,
};
use serde_json::{json, Value};

const SUCCEEDED: usize = 4;
/// Executions of the order workflow (four Task states, each a resource of its own).
const ORDERS: usize = 2;
const FAILED: usize = 3;
const TIMED_OUT: usize = 2;
const NOT_JSON: usize = 2;
const UNKNOWN_MACHINE: usize = 1;
/// Executions of a machine whose one Task fails, is retried twice, then fails the execution.
const RETRIED: usize = 2;
const RETRIES_EACH: usize = 2;

/// The venv's python with `prometheus_client` (scripts/ops/venv.sh prints it).
fn ops_python() -> PathBuf {
    let p = std::env::var_os("STEPSTREAM_OPS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/opsvenv/bin/python"));
    assert!(
        p.exists(),
        "no Python with prometheus_client at {}: run scripts/ops/venv.sh (or set STEPSTREAM_OPS_PYTHON)",
        p.display()
    );
    p
}

/// A port nothing listens on now (the processor binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("loopback has a free port")
}

/// `GET /metrics` over plain HTTP/1.1; the body.
fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout can be set");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("the request is written");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("the response is read");
    let text = String::from_utf8(raw).expect("the response is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("a chunk size line");
        let n = usize::from_str_radix(size.trim(), 16).expect("a hex chunk size");
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
}

/// Parses the text with prometheus_client; every sample as (name, labels) -> value.
fn parse(text: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let mut child = Command::new(ops_python())
        .arg(repo_root().join("scripts/ops/prom_parse.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the parser starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes())
        .expect("the parser reads the text");
    let out = child.wait_with_output().expect("the parser runs");
    assert!(
        out.status.success(),
        "prometheus_client rejected /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("the parser prints JSON");
    v["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| {
            let labels = s["labels"]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let name = s["name"].as_str().expect("a name").to_string();
            ((name, labels), s["value"].as_f64().unwrap_or(f64::NAN))
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The fixtures, plus a machine that always runs past its one-second `TimeoutSeconds`
/// and one whose Task always fails and is retried [`RETRIES_EACH`] times.
fn machines_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stepstream-metrics-machines-{}", unique("m")));
    std::fs::create_dir_all(&dir).expect("the temp dir is writable");
    for e in std::fs::read_dir(fixtures_dir()).expect("the fixtures are readable") {
        let p = e.expect("a fixture entry").path();
        if p.is_file() {
            std::fs::copy(&p, dir.join(p.file_name().expect("a file name")))
                .expect("a fixture copies");
        }
    }
    std::fs::write(
        dir.join("times-out.asl.json"),
        json!({"TimeoutSeconds": 1, "StartAt": "W",
               "States": {"W": {"Type": "Wait", "Seconds": 30, "End": true}}})
        .to_string(),
    )
    .expect("the machine is written");
    std::fs::write(
        dir.join("retried.asl.json"),
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:retried",
               "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": RETRIES_EACH,
                          "IntervalSeconds": 1, "BackoffRate": 1}],
               "End": true}}})
        .to_string(),
    )
    .expect("the machine is written");
    std::fs::write(
        dir.join("retried.tasks.json"),
        json!({"arn:retried": "fail Boom it always fails"}).to_string(),
    )
    .expect("the tasks are written");
    dir
}

#[test]
fn metrics_count_exactly_what_ran() {
    let kafka = bootstrap();
    let requests = unique("metrics.requests");
    let results = unique("metrics.results");
    let errors = unique("metrics.errors");
    let metrics_topic = unique("metrics.metrics");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut config = ProcessorConfig::new(&kafka, &unique("metrics-group"), &results, &errors)
        .envelope_input(&requests);
    config.state_machines_dir = machines_dir();
    config.metrics_listen = addr.clone();
    config.metrics_topic = metrics_topic.clone();
    config.metrics_interval_seconds = 1;
    let processor = Processor::start_ready("metrics", &config);
    assert!(
        processor.stderr_has(&format!("serving metrics on http://{addr}/metrics")),
        "{}",
        processor.stderr_tail(20)
    );

    let mut records = Vec::new();
    let mut add = |n: usize, tag: &str, value: String| {
        for i in 0..n {
            records.push(Outgoing::new(
                format!("{tag}-{i}"),
                value.replace("#", &i.to_string()),
            ));
        }
    };
    add(
        SUCCEEDED,
        "ok",
        json!({"stateMachine": "pause-one-second", "input": {"n": "#"}}).to_string(),
    );
    add(
        FAILED,
        "failed",
        json!({"stateMachine": "always-rejected", "input": {}}).to_string(),
    );
    add(
        TIMED_OUT,
        "timeout",
        json!({"stateMachine": "times-out", "input": {}}).to_string(),
    );
    let workload: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("benches/workloads/order.json"))
            .expect("the order workload"),
    )
    .expect("JSON");
    add(
        ORDERS,
        "order",
        json!({"stateMachine": "order", "input": workload["input"]}).to_string(),
    );
    add(
        RETRIED,
        "retried",
        json!({"stateMachine": "retried", "input": {}}).to_string(),
    );
    add(NOT_JSON, "notjson", "{not json".to_string());
    add(
        UNKNOWN_MACHINE,
        "unknown",
        json!({"stateMachine": "no-such-machine", "input": {}}).to_string(),
    );
    let results_seen = Collector::start(&kafka, &results);
    let errors_seen = Collector::start(&kafka, &errors);
    let metrics_seen = Collector::start(&kafka, &metrics_topic);
    produce(&kafka, &requests, &records);

    let executions = SUCCEEDED + ORDERS + FAILED + TIMED_OUT + RETRIED;
    let dead = NOT_JSON + UNKNOWN_MACHINE;
    assert_eq!(
        results_seen.wait_for_keys(executions, RESULTS_TIMEOUT),
        executions,
        "results missing\n{}",
        processor.stderr_tail(20)
    );
    assert_eq!(errors_seen.wait_for_keys(dead, RESULTS_TIMEOUT), dead);

    // Every output is on the broker; what /metrics says must now be exact.
    let samples = parse(&scrape(&addr));
    let mut want: BTreeMap<(String, BTreeMap<String, String>), f64> = BTreeMap::new();
    let machines = [
        ("pause-one-second", SUCCEEDED, "succeeded"),
        ("order", ORDERS, "succeeded"),
        ("always-rejected", FAILED, "failed"),
        ("times-out", TIMED_OUT, "timed_out"),
        ("retried", RETRIED, "failed"),
    ];
    for (machine, n, status) in machines {
        for s in ["started", status] {
            want.insert(
                (
                    "stepstream_executions_total".into(),
                    labels(&[("state_machine", machine), ("status", s)]),
                ),
                n as f64,
            );
        }
        want.insert(
            (
                "stepstream_execution_duration_seconds_count".into(),
                labels(&[("state_machine", machine), ("status", status)]),
            ),
            n as f64,
        );
    }
    let tasks: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures_dir().join("order.tasks.json")).expect("order's tasks"),
    )
    .expect("JSON");
    let resources: Vec<&String> = tasks.as_object().expect("an object").keys().collect();
    assert_eq!(resources.len(), 4);
    for r in resources {
        for s in ["scheduled", "succeeded"] {
            want.insert(
                (
                    "stepstream_task_calls_total".into(),
                    labels(&[("state_machine", "order"), ("resource", r), ("status", s)]),
                ),
                ORDERS as f64,
            );
        }
    }
    let calls = RETRIED * (1 + RETRIES_EACH);
    for s in ["scheduled", "failed"] {
        want.insert(
            (
                "stepstream_task_calls_total".into(),
                labels(&[
                    ("state_machine", "retried"),
                    ("resource", "arn:retried"),
                    ("status", s),
                ]),
            ),
            calls as f64,
        );
    }

    want.insert(
        (
            "stepstream_retries_total".into(),
            labels(&[("state_machine", "retried")]),
        ),
        (RETRIED * RETRIES_EACH) as f64,
    );
    // States entered, by machine and state type; every other pair is 0 (checked below).
    let transitions = [
        ("pause-one-second", "Wait", SUCCEEDED),
        ("pause-one-second", "Pass", SUCCEEDED),
        ("order", "Task", 4 * ORDERS),
        ("always-rejected", "Fail", FAILED),
        ("times-out", "Wait", TIMED_OUT),
        ("retried", "Task", RETRIED),
    ];
    for (machine, state_type, n) in transitions {
        want.insert(
            (
                "stepstream_state_transitions_total".into(),
                labels(&[("state_machine", machine), ("state_type", state_type)]),
            ),
            n as f64,
        );
    }
    for machine in ["pause-one-second", "order", "always-rejected", "times-out"] {
        want.insert(
            (
                "stepstream_retries_total".into(),
                labels(&[("state_machine", machine)]),
            ),
            0.0,
        );
    }
    want.insert(
        (
            "stepstream_dead_letters_total".into(),
            labels(&[("error", "stepstream.InvalidRequest")]),
        ),
        NOT_JSON as f64,
    );
    want.insert(
        (
            "stepstream_dead_letters_total".into(),
            labels(&[("error", "stepstream.UnknownStateMachine")]),
        ),
        UNKNOWN_MACHINE as f64,
    );

    let mut wrong = Vec::new();
    for ((name, l), v) in &want {
        match samples.get(&(name.clone(), l.clone())) {
            Some(got) if got == v => {}
            got => wrong.push(format!("{name}{l:?}: want {v}, got {got:?}")),
        }
    }
    // Every other counter (executions of other machines, aborted, produce errors, commit
    // failures, ...) is 0; only commits depend on timing.
    let mut consumed = 0.0;
    for ((name, l), v) in &samples {
        if name == "stepstream_records_consumed_total" {
            consumed += v;
        } else if name.ends_with("_total")
            && name != "stepstream_commits_total"
            && !want.contains_key(&(name.clone(), l.clone()))
            && *v != 0.0
        {
            wrong.push(format!("{name}{l:?}: want 0, got {v}"));
        }
    }
    // Built-in handlers answer within the call: counted above, never timed.
    for ((name, l), v) in &samples {
        if name == "stepstream_task_duration_seconds_count" && *v != 0.0 {
            wrong.push(format!(
                "{name}{l:?}: want 0 (built-ins are not timed), got {v}"
            ));
        }
    }
    if consumed != (executions + dead) as f64 {
        wrong.push(format!(
            "stepstream_records_consumed_total: want {} in all, got {consumed}",
            executions + dead
        ));
    }
    // The timed-out executions ran at least their one-second limit.
    let timed_out_sum = samples
        .get(&(
            "stepstream_execution_duration_seconds_sum".into(),
            labels(&[("state_machine", "times-out"), ("status", "timed_out")]),
        ))
        .copied()
        .unwrap_or(0.0);
    if timed_out_sum < TIMED_OUT as f64 {
        wrong.push(format!(
            "timed-out executions lasted {timed_out_sum} s in all, want >= {TIMED_OUT}"
        ));
    }
    for p in 0..4 {
        let key = (
            "stepstream_consumer_lag".to_string(),
            labels(&[("topic", &requests), ("partition", &p.to_string())]),
        );
        if !samples.contains_key(&key) {
            wrong.push(format!("no consumer lag for {requests}/{p}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "/metrics disagrees with what ran:\n  {}",
        wrong.join("\n  ")
    );

    // The metrics topic: a later record carries the same execution counts.
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = |r: &Value| {
        r["metrics"].as_array().and_then(|m| {
            m.iter()
                .find(|s| {
                    s["name"] == "stepstream_executions_total"
                        && s["labels"]["state_machine"] == "pause-one-second"
                        && s["labels"]["status"] == "started"
                })
                .and_then(|s| s["value"].as_f64())
        })
    };
    let last = loop {
        let last = metrics_seen
            .records()
            .iter()
            .filter_map(|r| r.json().ok())
            .rfind(|r| started(r) == Some(SUCCEEDED as f64));
        if last.is_some() || Instant::now() > deadline {
            break last;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let last = last.unwrap_or_else(|| {
        panic!(
            "no metrics record with {SUCCEEDED} started pause-one-second executions in {} records",
            metrics_seen.total()
        )
    });
    assert!(last["process"].as_str().is_some_and(|p| !p.is_empty()));
    assert!(last["timestamp"].as_str().is_some());
    let dead_in_record: f64 = last["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .filter(|s| s["name"] == "stepstream_dead_letters_total")
        .filter_map(|s| s["value"].as_f64())
        .sum();
    assert_eq!(dead_in_record, dead as f64);
    processor.sigterm();
}
