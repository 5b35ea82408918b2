//! `arn:stepstream:::kafka:invoke` and `arn:aws:states:::states:startExecution` on the real
//! broker (`$KAFKA_BOOTSTRAP`, started by scripts/kafka/start.sh), the task workers real
//! Python programs (tests/fixtures/kafka_invoke/worker.py, confluent-kafka from the venv
//! scripts/ops/venv.sh installs; `$STEPSTREAM_OPS_PYTHON` names its python).

mod common;
mod kafka_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{exec, Scratch};
use kafka_support::{
    bootstrap, create_topics, produce, repo_root, unique, Collector, Outgoing, Processor,
    ProcessorConfig, RESULTS_TIMEOUT,
};
use serde_json::{json, Value};

const INVOKE: &str = "arn:stepstream:::kafka:invoke";

/// The venv's python with confluent-kafka (scripts/ops/venv.sh prints it).
fn worker_python() -> PathBuf {
    let p = std::env::var_os("STEPSTREAM_OPS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/opsvenv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import confluent_kafka"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "no Python with confluent-kafka at {}: run scripts/ops/venv.sh (or set STEPSTREAM_OPS_PYTHON)",
        p.display()
    );
    p
}

/// A running worker.py; killed when dropped.
struct Worker {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    /// Starts one in `group` on `topic` and waits until it owns partitions.
    fn start(name: &str, topic: &str, group: &str, args: &[&str]) -> Worker {
        let script = repo_root().join("tests/fixtures/kafka_invoke/worker.py");
        let mut child = Command::new(worker_python())
            .arg(script)
            .args([
                "--bootstrap",
                &bootstrap(),
                "--topic",
                topic,
                "--group",
                group,
            ])
            .args(["--name", name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the worker starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout is piped");
        let seen = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                seen.lock().unwrap().push(line);
            }
        });
        Worker {
            name: name.to_string(),
            child,
            lines,
        }
    }

    /// Waits until it printed `assigned [...]` with at least one partition.
    fn wait_assigned(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let assigned = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.starts_with("assigned [") && l != "assigned []");
            if assigned {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "worker {} exited ({status}) before owning partitions",
                    self.name
                );
            }
            assert!(
                Instant::now() < deadline,
                "worker {} owns no partition after 60 s: {:?}",
                self.name,
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder of state machines, removed when dropped.
struct Machines(PathBuf);

impl Machines {
    fn new(machines: &[(&str, Value)]) -> Machines {
        let dir = std::env::temp_dir().join(unique("invoke-machines"));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, def) in machines {
            std::fs::write(dir.join(format!("{name}.asl.json")), def.to_string()).unwrap();
        }
        Machines(dir)
    }
}

impl Drop for Machines {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("loopback has a free port")
}

/// The sum of every sample of `name` (any labels) on `/metrics`; `None` when it has none.
fn scrape_sample(addr: &str, name: &str) -> Option<f64> {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let values: Vec<f64> = raw
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let rest = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once("} ")?.1,
                None => rest.strip_prefix(' ')?,
            };
            rest.trim().parse().ok()
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn invoke_definition(topic: &str) -> Value {
    json!({"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": INVOKE,
                "Parameters": {"Topic": topic, "Key.$": "$.id", "Value": {"n.$": "$.n"}},
                "ResultPath": "$.answer", "End": true}}})
}

#[test]
fn ten_thousand_executions_each_wait_for_a_python_worker_s_reply() {
    const N: usize = 10_000;
    let kafka = bootstrap();
    let (requests, results, errors, work, replies) = (
        unique("inv-requests"),
        unique("inv-results"),
        unique("inv-errors"),
        unique("inv-work"),
        unique("inv-replies"),
    );
    create_topics(
        &kafka,
        &[
            (&requests, 4),
            (&results, 4),
            (&errors, 4),
            (&work, 4),
            (&replies, 4),
        ],
    );
    // Two workers in one group share the requests, as a team scales its workers; every
    // 1000th request also gets a reply whose id no call waits for.
    let group = unique("inv-workers");
    let mut workers: Vec<Worker> = ["w1", "w2"]
        .iter()
        .map(|n| Worker::start(n, &work, &group, &["--unknown-every", "1000"]))
        .collect();
    for w in &mut workers {
        w.wait_assigned();
    }
    let machines = Machines::new(&[("invoke", invoke_definition(&work))]);
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut config = ProcessorConfig::new(&kafka, &unique("inv-group"), &results, &errors)
        .bound_input(&requests, "invoke");
    config.state_machines_dir = machines.0.clone();
    config.metrics_listen = metrics.clone();
    let tasks =
        format!("[tasks]\nmax_concurrency = 20000\n\n[tasks.kafka]\nreply_topic = {replies:?}\n");
    let _processor = Processor::start_ready_with("invoke", &config, &tasks);

    let collected = Collector::start(&kafka, &results);
    let outgoing: Vec<Outgoing> = (0..N)
        .map(|i| {
            Outgoing::new(
                format!("e-{i}"),
                json!({"id": format!("e-{i}"), "n": i}).to_string(),
            )
        })
        .collect();
    let started = Instant::now();
    produce(&kafka, &requests, &outgoing);
    let have = collected.wait_for_keys(N, RESULTS_TIMEOUT);
    let took = started.elapsed();
    assert_eq!(have, N, "every execution has a result");
    eprintln!(
        "kafka-invoke: {N} executions, each waiting for a Python worker's reply, in {:.2} s ({:.0} executions/s)",
        took.as_secs_f64(),
        N as f64 / took.as_secs_f64()
    );
    let by_key = collected.by_key();
    let mut per_worker = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..N {
        let r = by_key[&format!("e-{i}")][0].json().unwrap();
        assert_eq!(r["status"], "SUCCEEDED", "e-{i}: {r}");
        let answer = &r["output"]["answer"];
        assert_eq!(answer["n"], i, "e-{i}: {r}");
        assert_eq!(answer["square"], i * i, "e-{i}: {r}");
        *per_worker
            .entry(answer["worker"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    eprintln!("kafka-invoke: replies per worker {per_worker:?}");

    // Two more replies no call waits for, written as a stray client would: no correlation
    // id at all, and one stepstream never made.
    produce(
        &kafka,
        &replies,
        &[
            Outgoing::new("stray", "{}"),
            Outgoing::new("stray", "{}").header("stepstream-correlation-id", "not-an-id"),
        ],
    );
    let want = (N / 1000 + 2) as f64;
    let name = "stepstream_task_replies_unmatched_total";
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = scrape_sample(&metrics, name);
    while seen != Some(want) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        seen = scrape_sample(&metrics, name);
    }
    assert_eq!(
        seen,
        Some(want),
        "{name}: every unmatched reply counted once"
    );
}

#[test]
fn exec_waits_for_replies_and_turns_late_ones_into_timeouts_error_headers_into_errors_and_refuses_huge_ones(
) {
    let kafka = bootstrap();
    let (square, late, refuse, huge, replies) = (
        unique("inv-square"),
        unique("inv-late"),
        unique("inv-refuse"),
        unique("inv-huge"),
        unique("inv-exec-replies"),
    );
    let patient = unique("inv-patient");
    create_topics(
        &kafka,
        &[
            (&square, 1),
            (&late, 1),
            (&refuse, 1),
            (&huge, 1),
            (&patient, 1),
        ],
    );
    let mut workers = vec![
        Worker::start("square", &square, &unique("g"), &[]),
        Worker::start(
            "late",
            &late,
            &unique("g"),
            &["--mode", "late", "--delay", "3"],
        ),
        Worker::start("refuse", &refuse, &unique("g"), &["--mode", "error"]),
        Worker::start("huge", &huge, &unique("g"), &["--mode", "huge"]),
        Worker::start(
            "patient",
            &patient,
            &unique("g"),
            &["--mode", "late", "--delay", "3"],
        ),
    ];
    for w in &mut workers {
        w.wait_assigned();
    }
    let dir = Scratch::new("kafka-invoke-exec");
    // The reply topic does not exist yet: the first call creates it.
    let cfg = dir.write(
        "stepstream.toml",
        format!(
            "[tasks]\ncall_timeout_seconds = 2\n\n[tasks.kafka]\nbrokers = {kafka:?}\nreply_topic = {replies:?}\nreply_partitions = 2\n"
        ),
    );
    let def = dir.write(
        "def.asl.json",
        json!({"StartAt": "Square", "States": {
            "Square": {"Type": "Task", "Resource": INVOKE,
                       "Parameters": {"Topic": square, "Value": {"n.$": "$.n"}},
                       "ResultSelector": {"square.$": "$.square"},
                       "ResultPath": "$.answer", "Next": "Late"},
            "Late": {"Type": "Task", "Resource": INVOKE, "TimeoutSeconds": 1,
                     "Parameters": {"Topic": late, "Value": {"n.$": "$.n"}},
                     "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.late", "Next": "Refused"}],
                     "Next": "Refused"},
            "Refused": {"Type": "Task", "Resource": INVOKE,
                        "Parameters": {"Topic": refuse, "Value": {"n.$": "$.n"}},
                        "Catch": [{"ErrorEquals": ["Worker.Refused"], "ResultPath": "$.refused", "Next": "Huge"}],
                        "Next": "Huge"},
            "Huge": {"Type": "Task", "Resource": INVOKE,
                     "Parameters": {"Topic": huge, "Value": {"n.$": "$.n"}},
                     "Catch": [{"ErrorEquals": ["States.DataLimitExceeded"], "ResultPath": "$.huge", "Next": "Patient"}],
                     "Next": "Patient"},
            // Past call_timeout_seconds (2) but within its own TimeoutSeconds: it waits.
            "Patient": {"Type": "Task", "Resource": INVOKE, "TimeoutSeconds": 10,
                        "Parameters": {"Topic": patient, "Value": {"n.$": "$.n"}},
                        "ResultSelector": {"square.$": "$.square"},
                        "ResultPath": "$.patient", "Next": "Done"},
            "Done": {"Type": "Succeed"}}})
        .to_string(),
    );
    let started = Instant::now();
    let out = exec(&[
        "--definition",
        def.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--input",
        r#"{"n": 12}"#,
    ]);
    eprintln!("exec took {:.2} s", started.elapsed().as_secs_f64());
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let o = &out["output"];
    assert_eq!(o["answer"], json!({"square": 144}), "{out}");
    assert_eq!(o["late"]["Error"], "States.Timeout", "{out}");
    assert_eq!(
        o["refused"],
        json!({"Error": "Worker.Refused", "Cause": "cannot do 12"}),
        "{out}"
    );
    assert_eq!(o["huge"]["Error"], "States.DataLimitExceeded", "{out}");
    assert_eq!(o["patient"], json!({"square": 144}), "{out}");
}

#[test]
fn a_parent_starts_children_whose_results_arrive_and_a_self_starting_loop_stops_at_the_depth_limit()
{
    let kafka = bootstrap();
    let (requests, results, errors) = (
        unique("nest-requests"),
        unique("nest-results"),
        unique("nest-errors"),
    );
    create_topics(&kafka, &[(&requests, 2), (&results, 2), (&errors, 2)]);
    let start = |machine: &str, name_template: &str| {
        json!({"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
               "Parameters": {
                   "StateMachineArn": format!("arn:aws:states:us-east-1:123456789012:stateMachine:{machine}"),
                   "Input": {"from.$": "$.id", "id.$": "$.id"},
                   "Name.$": name_template},
               "ResultPath": "$.started", "End": true})
    };
    let machines = Machines::new(&[
        (
            "parent",
            json!({"StartAt": "Start", "States": {"Start": start("child", "States.Format('child-{}', $.id)")}}),
        ),
        (
            "child",
            json!({"StartAt": "Greet", "States": {"Greet": {"Type": "Pass",
                "Parameters": {"childOf.$": "$.from", "depth": "one below"}, "End": true}}}),
        ),
        (
            "loop",
            json!({"StartAt": "Again", "States": {"Again": start("loop", "States.Format('{}-again', $$.Execution.Name)")}}),
        ),
    ]);
    let mut config = ProcessorConfig::new(&kafka, &unique("nest-group"), &results, &errors)
        .envelope_input(&requests);
    config.state_machines_dir = machines.0.clone();
    let _processor =
        Processor::start_ready_with("nested", &config, "[tasks.kafka]\nmax_nesting_depth = 3\n");
    let collected = Collector::start(&kafka, &results);
    let dead = Collector::start(&kafka, &errors);
    produce(
        &kafka,
        &requests,
        &[
            Outgoing::new(
                "p-1",
                json!({"stateMachine": "parent", "name": "p-1", "input": {"id": "1"}}).to_string(),
            ),
            Outgoing::new(
                "l",
                json!({"stateMachine": "loop", "name": "l", "input": {"id": "x"}}).to_string(),
            ),
        ],
    );
    // parent, its child, and the loop at depths 0, 1, 2 and 3.
    let want = [
        "p-1",
        "child-1",
        "l",
        "l-again",
        "l-again-again",
        "l-again-again-again",
    ];
    assert_eq!(
        collected.wait_for_keys(want.len(), RESULTS_TIMEOUT),
        want.len()
    );
    assert_eq!(dead.total(), 0, "no dead letters");
    let by_key = collected.by_key();
    let result = |k: &str| by_key[k][0].json().unwrap();

    let parent = result("p-1");
    assert_eq!(parent["status"], "SUCCEEDED", "{parent}");
    let started = &parent["output"]["started"];
    let child = result("child-1");
    assert_eq!(child["status"], "SUCCEEDED", "{child}");
    assert_eq!(
        child["output"],
        json!({"childOf": "1", "depth": "one below"})
    );
    assert_eq!(
        started["ExecutionArn"], child["executionArn"],
        "the parent returns the ARN the child runs under"
    );
    assert!(
        child["executionArn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:states:local:000000000000:express:child:child-1:"),
        "{child}"
    );
    assert!(started["StartDate"].is_i64(), "{started}");
    assert_eq!(started.as_object().unwrap().len(), 2, "{started}");

    for k in ["l", "l-again", "l-again-again"] {
        assert_eq!(result(k)["status"], "SUCCEEDED", "{k}: {}", result(k));
    }
    let deepest = result("l-again-again-again");
    assert_eq!(deepest["status"], "FAILED", "{deepest}");
    assert_eq!(
        deepest["error"], "stepstream.ExecutionNestingTooDeep",
        "{deepest}"
    );
    assert!(
        deepest["cause"]
            .as_str()
            .unwrap()
            .contains("max_nesting_depth = 3"),
        "{deepest}"
    );
    // Nothing past the limit was started.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(collected.distinct_keys(), want.len());
}

/// Lines of `stepstream: partitions assigned: ...` that name at least one partition.
fn assignments(p: &Processor) -> usize {
    p.stderr()
        .lines()
        .filter(|l| l.contains("stepstream: partitions assigned:") && !l.ends_with("(none)"))
        .count()
}

#[test]
fn processes_sharing_a_reply_topic_skip_each_other_s_replies_without_counting_them() {
    const N: usize = 2_000;
    let kafka = bootstrap();
    let (requests, results, errors, work, replies) = (
        unique("share-requests"),
        unique("share-results"),
        unique("share-errors"),
        unique("share-work"),
        unique("share-replies"),
    );
    create_topics(
        &kafka,
        &[
            (&requests, 4),
            (&results, 4),
            (&errors, 4),
            (&work, 2),
            (&replies, 2),
        ],
    );
    let mut worker = Worker::start(
        "w",
        &work,
        &unique("share-workers"),
        &["--unknown-every", "1000"],
    );
    worker.wait_assigned();
    let machines = Machines::new(&[("invoke", invoke_definition(&work))]);
    let group = unique("share-group");
    let tasks =
        format!("[tasks]\nmax_concurrency = 5000\n\n[tasks.kafka]\nreply_topic = {replies:?}\n");
    let start = |name: &str, metrics: &str| {
        let mut config = ProcessorConfig::new(&kafka, &group, &results, &errors)
            .bound_input(&requests, "invoke");
        config.state_machines_dir = machines.0.clone();
        config.metrics_listen = metrics.to_string();
        Processor::start_ready_with(name, &config, &tasks)
    };
    let metrics = [
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    ];
    let a = start("share-a", &metrics[0]);
    let b = start("share-b", &metrics[1]);
    // Both own partitions once the group settled (a was assigned all, then gave half to b:
    // the cooperative protocol revokes and assigns only what moves).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(assignments(&a) >= 1 && assignments(&b) >= 1) {
        assert!(
            Instant::now() < deadline,
            "the group did not settle in 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let collected = Collector::start(&kafka, &results);
    let outgoing: Vec<Outgoing> = (0..N)
        .map(|i| {
            Outgoing::new(
                format!("s-{i}"),
                json!({"id": format!("s-{i}"), "n": i}).to_string(),
            )
        })
        .collect();
    produce(&kafka, &requests, &outgoing);
    assert_eq!(collected.wait_for_keys(N, RESULTS_TIMEOUT), N);
    let by_key = collected.by_key();
    for i in 0..N {
        let r = by_key[&format!("s-{i}")][0].json().unwrap();
        assert_eq!(r["output"]["answer"]["square"], i * i, "s-{i}: {r}");
    }
    for m in &metrics {
        let ran = scrape_sample(m, "stepstream_records_consumed_total").unwrap_or(0.0);
        assert!(ran > 0.0, "both processes ran executions ({m}: {ran})");
    }
    produce(
        &kafka,
        &replies,
        &[Outgoing::new("stray", "{}"), Outgoing::new("stray", "{}")],
    );
    // Each process reads every reply: the N replies meant for the other one are skipped
    // uncounted; the worker's unknown ids count in the process they name, the two strays
    // (no id at all) in both.
    let want = (N / 1000 + 2 * 2) as f64;
    let name = "stepstream_task_replies_unmatched_total";
    let total = || -> f64 {
        metrics
            .iter()
            .map(|m| scrape_sample(m, name).unwrap_or(0.0))
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while total() != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(total(), want, "{name} summed over both processes");
}
