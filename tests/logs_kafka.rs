//! The logs topic (issue 12), on a real Kafka broker: executions of state machines with
//! logging at ALL, ERROR and OFF, then the events on the logs topic must be, for the ALL
//! execution, the states it went through in order (ids increasing, each previous id the
//! one before, as AWS links them); for the ERROR execution only its failures; for the OFF
//! one nothing.
//!
//! ```sh
//! export KAFKA_RUN_DIR=$PWD/.cache/kafka-run; kafka_env="$(scripts/kafka/start.sh)"; export "$kafka_env"
//! cargo test --test logs_kafka -- --nocapture
//! ```

mod kafka_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kafka_support::{
    bootstrap, produce, unique, Collector, Outgoing, Processor, ProcessorConfig, RESULTS_TIMEOUT,
};
use serde_json::{json, Value};

/// Choice -> Task -> Pass: the path a `{"go": true}` input takes.
fn happy() -> Value {
    json!({"StartAt": "Route", "States": {
        "Route": {"Type": "Choice", "Choices": [
            {"Variable": "$.go", "BooleanEquals": true, "Next": "Work"}], "Default": "Stop"},
        "Work": {"Type": "Task", "Resource": "arn:work", "ResultPath": "$.work", "Next": "Done"},
        "Done": {"Type": "Pass", "End": true},
        "Stop": {"Type": "Fail", "Error": "Stopped"}}})
}

/// A Task that fails, caught into a Fail state: one task failure, then the execution's.
fn failing() -> Value {
    json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": "arn:broken", "Next": "Done",
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "GiveUp"}]},
        "Done": {"Type": "Pass", "End": true},
        "GiveUp": {"Type": "Fail", "Error": "Order.Failed", "Cause": "the work failed"}}})
}

fn machines_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stepstream-logs-machines-{}", unique("m")));
    std::fs::create_dir_all(&dir).expect("the temp dir is writable");
    let write = |name: &str, v: &Value| {
        std::fs::write(dir.join(name), v.to_string()).expect("the file is written")
    };
    let tasks =
        json!({"arn:work": "merge {\"worked\": true}", "arn:broken": "fail Work.Broken it broke"});
    for (name, def) in [("all", happy()), ("errors", failing()), ("quiet", happy())] {
        write(&format!("{name}.asl.json"), &def);
        write(&format!("{name}.tasks.json"), &tasks);
    }
    dir
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_stepstream"))
}

#[test]
fn the_logs_topic_has_what_each_level_keeps() {
    let kafka = bootstrap();
    let requests = unique("logs.requests");
    let results = unique("logs.results");
    let errors = unique("logs.errors");
    let logs = unique("logs.logs");
    let mut config = ProcessorConfig::new(&kafka, &unique("logs-group"), &results, &errors)
        .envelope_input(&requests);
    config.state_machines_dir = machines_dir();
    // Logging is per state machine; `quiet` keeps the default level, OFF.
    let toml = format!(
        "{}\n[logs]\ntopic = {logs:?}\n\n[logs.state_machines.all]\nlevel = \"ALL\"\n\
         include_execution_data = true\n\n[logs.state_machines.errors]\nlevel = \"ERROR\"\n",
        config.to_toml()
    );
    let mut processor = Processor::start_toml("logs", &toml, binary());
    processor.wait_ready(Duration::from_secs(60));

    let results_seen = Collector::start(&kafka, &results);
    let logs_seen = Collector::start(&kafka, &logs);
    produce(
        &kafka,
        &requests,
        &[
            Outgoing::new(
                "a",
                json!({"stateMachine": "all", "name": "run-all", "input": {"go": true, "n": 7}})
                    .to_string(),
            ),
            Outgoing::new(
                "e",
                json!({"stateMachine": "errors", "name": "run-errors", "input": {"n": 1}})
                    .to_string(),
            ),
            Outgoing::new(
                "q",
                json!({"stateMachine": "quiet", "name": "run-quiet", "input": {"go": true}})
                    .to_string(),
            ),
        ],
    );
    assert_eq!(
        results_seen.wait_for_keys(3, RESULTS_TIMEOUT),
        3,
        "results missing\n{}",
        processor.stderr_tail(20)
    );
    // Each execution's ARN, from its result.
    let mut arn = std::collections::BTreeMap::new();
    for r in results_seen.records() {
        let v = r.json().expect("a result is JSON");
        let name = v["name"].as_str().unwrap_or_default().to_string();
        arn.insert(
            name,
            v["executionArn"].as_str().unwrap_or_default().to_string(),
        );
    }
    for n in ["run-all", "run-errors", "run-quiet"] {
        assert!(
            arn.get(n).is_some_and(|a| a.contains(n)),
            "no ARN for {n}: {arn:?}"
        );
    }

    // Events go out once an execution has ended; wait until the two logging executions'
    // last events are there, then a little longer for anything that should not be.
    let deadline = Instant::now() + Duration::from_secs(30);
    let ended = |t: &str| {
        logs_seen
            .records()
            .iter()
            .filter_map(|r| r.json().ok())
            .any(|e| e["type"] == t)
    };
    while !(ended("ExecutionSucceeded") && ended("ExecutionFailed")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    logs_seen.settle(Duration::from_secs(2), Duration::from_secs(10));
    let by_key = logs_seen.by_key();

    // ALL: every state the execution went through, in order, with its data.
    let all: Vec<Value> = by_key
        .get(&arn["run-all"])
        .map(|rs| {
            rs.iter()
                .map(|r| r.json().expect("an event is JSON"))
                .collect()
        })
        .unwrap_or_default();
    let types: Vec<&str> = all
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "ChoiceStateEntered",
            "ChoiceStateExited",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded",
        ]
    );
    let mut last_ms = 0;
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e["id"], (i + 1).to_string(), "{e}");
        // As in AWS's histories, the event after ExecutionStarted also follows event 0.
        let previous = if i == 1 { 0 } else { i };
        assert_eq!(e["previous_event_id"], previous.to_string(), "{e}");
        assert_eq!(e["execution_arn"], arn["run-all"].as_str(), "{e}");
        let ms: i64 = e["event_timestamp"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("a millisecond timestamp: {e}"));
        assert!(ms >= last_ms, "timestamps go forward: {e}");
        last_ms = ms;
    }
    let names: Vec<&str> = all
        .iter()
        .filter(|e| {
            e["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("StateEntered"))
        })
        .map(|e| e["details"]["name"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(names, ["Route", "Work", "Done"]);
    // includeExecutionData: the input and the output as AWS writes them, JSON text.
    let input: Value =
        serde_json::from_str(all[0]["details"]["input"].as_str().expect("the input text"))
            .expect("JSON");
    assert_eq!(input, json!({"go": true, "n": 7}));
    let output: Value = serde_json::from_str(
        all[10]["details"]["output"]
            .as_str()
            .expect("the output text"),
    )
    .expect("JSON");
    assert_eq!(output["work"]["worked"], true);
    assert_eq!(all[4]["details"]["resource"], "arn:work");

    // ERROR: only the failures, without data (include_execution_data is off).
    let errs: Vec<Value> = by_key
        .get(&arn["run-errors"])
        .map(|rs| {
            rs.iter()
                .map(|r| r.json().expect("an event is JSON"))
                .collect()
        })
        .unwrap_or_default();
    let types: Vec<&str> = errs
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?"))
        .collect();
    // Entering a Fail state is an ERROR event too, as in AWS's logs.
    assert_eq!(types, ["TaskFailed", "FailStateEntered", "ExecutionFailed"]);
    assert_eq!(errs[0]["details"]["error"], "Work.Broken");
    assert_eq!(errs[0]["details"]["resource"], "arn:broken");
    assert_eq!(errs[2]["details"]["error"], "Order.Failed");
    assert_eq!(errs[2]["details"]["cause"], "the work failed");
    assert!(errs.iter().all(|e| e["details"].get("input").is_none()));

    // OFF: nothing, and nothing else on the topic either.
    assert!(!by_key.contains_key(&arn["run-quiet"]), "{by_key:?}");
    assert_eq!(by_key.len(), 2, "{:?}", by_key.keys().collect::<Vec<_>>());
    processor.sigterm();
}
