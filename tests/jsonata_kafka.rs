//! Hostile JSONata expressions through `stepstream run` against a real Kafka broker:
//! endless recursion, a billion-element sequence and a value nested 100,000 deep each end
//! their execution with `States.QueryEvaluationError`; the process stays up, a good
//! request behind them on the same partition gets its result, and the offsets move on.
//!
//! Needs the broker `scripts/kafka/start.sh` runs (see `tests/pipeline_kafka.rs`).

mod kafka_support;

use std::time::{Duration, Instant};

use kafka_support::{
    bootstrap, committed_offsets, produce, unique, Collector, Outgoing, Processor, ProcessorConfig,
    RESULTS_TIMEOUT,
};
use serde_json::{json, Value};

/// Runs the expression the request names, so one machine serves every hostile request.
fn machine() -> Value {
    json!({
        "QueryLanguage": "JSONata",
        "StartAt": "Pick",
        "States": {
            "Pick": {"Type": "Choice", "Choices": [
                {"Condition": "{% $states.input.kind = 'recursion' %}", "Next": "Recursion"},
                {"Condition": "{% $states.input.kind = 'range' %}", "Next": "Range"},
                {"Condition": "{% $states.input.kind = 'deep' %}", "Next": "Deep"}
            ], "Default": "Good"},
            "Recursion": {"Type": "Pass",
                "Output": "{% ($f := function($n) { $f($n + 1) + 1 }; $f(0)) %}", "End": true},
            "Range": {"Type": "Pass", "Output": "{% $count([1..1000000000]) %}", "End": true},
            "Deep": {"Type": "Pass",
                "Output": "{% $reduce([1..100000], function($a, $i) { {'a': $a} }, {}) %}", "End": true},
            "Good": {"Type": "Pass", "Output": {"total": "{% $sum($states.input.xs) %}"}, "End": true}
        }
    })
}

#[test]
fn hostile_jsonata_requests_fail_alone_and_the_partition_moves_on() {
    let kafka = bootstrap();
    let id = unique("jsonata");
    let (requests, results, errors) = (
        format!("{id}.requests"),
        format!("{id}.results"),
        format!("{id}.errors"),
    );
    let machines = std::env::temp_dir().join(format!("{id}-machines"));
    std::fs::create_dir_all(&machines).expect("the temp dir is writable");
    std::fs::write(machines.join("jsonata.asl.json"), machine().to_string())
        .expect("the definition is writable");

    let mut config =
        ProcessorConfig::new(&kafka, &id, &results, &errors).bound_input(&requests, "jsonata");
    // One partition: the good request lands behind the hostile ones.
    config.partitions = 1;
    config.state_machines_dir = machines.clone();
    let mut processor = Processor::start_ready("jsonata", &config);
    let collector = Collector::start(&kafka, &results);

    let kinds = ["recursion", "range", "deep"];
    let mut outgoing: Vec<Outgoing> = kinds
        .iter()
        .map(|k| Outgoing::new(*k, json!({ "kind": k }).to_string()))
        .collect();
    outgoing.push(Outgoing::new("good", json!({"xs": [1, 2, 3]}).to_string()));
    let landed = produce(&kafka, &requests, &outgoing);

    let got = collector.wait_for_keys(4, RESULTS_TIMEOUT);
    let by_key = collector.by_key();
    assert_eq!(
        got,
        4,
        "results so far: {by_key:?}\n{}",
        processor.stderr_tail(40)
    );
    assert!(
        processor.exited().is_none(),
        "the processor died\n{}",
        processor.stderr_tail(40)
    );
    let result = |key: &str| -> Value {
        by_key[key][0]
            .json()
            .unwrap_or_else(|e| panic!("{key}: {e}"))
    };
    for k in kinds {
        let r = result(k);
        assert_eq!(r["status"], "FAILED", "{k}: {r}");
        assert_eq!(r["error"], "States.QueryEvaluationError", "{k}: {r}");
    }
    let g = result("good");
    assert_eq!(g["status"], "SUCCEEDED", "{g}");
    assert_eq!(g["output"], json!({"total": 6}));

    let want = landed[3].offset + 1;
    let deadline = Instant::now() + Duration::from_secs(30);
    let committed = loop {
        let c = committed_offsets(&kafka, &id, &requests, 1)
            .get(&landed[3].partition)
            .copied()
            .flatten();
        if c >= Some(want) || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        committed >= Some(want),
        "committed offset {committed:?}, want at least {want}"
    );
    assert!(processor.exited().is_none(), "the processor died");
    drop(processor);
    let _ = std::fs::remove_dir_all(&machines);
}
