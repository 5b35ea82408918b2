//! `arn:stepstream:::kafka:produce` on the real broker (`$KAFKA_BOOTSTRAP`, started by
//! scripts/kafka/start.sh): the record is where the task says it landed.

mod common;
mod kafka_support;

use std::time::Duration;

use common::{exec, Scratch};
use kafka_support::{bootstrap, create_topics, unique, Collector};
use serde_json::{json, Value};

#[test]
fn a_produce_task_returns_where_the_acknowledged_record_landed() {
    let kafka = bootstrap();
    let topic = unique("produce-task");
    create_topics(&kafka, &[(&topic, 3)]);
    let dir = Scratch::new("kafka-produce");
    let cfg = dir.write(
        "stepstream.toml",
        format!("[tasks.kafka]\nbrokers = {kafka:?}\ntopics = [{topic:?}]\n"),
    );
    let def = dir.write(
        "def.asl.json",
        json!({"StartAt": "Send", "States": {
            "Send": {"Type": "Task", "Resource": "arn:stepstream:::kafka:produce",
                     "Parameters": {"Topic": topic, "Key.$": "$.id",
                                    "Value": {"order.$": "$.id", "total.$": "$.total"},
                                    "Headers": {"source": "stepstream"}},
                     "ResultPath": "$.sent", "Next": "Denied"},
            "Denied": {"Type": "Task", "Resource": "arn:stepstream:::kafka:produce",
                       "Parameters": {"Topic": "not-listed", "Value": "x"},
                       "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.denied", "Next": "Done"}],
                       "End": true},
            "Done": {"Type": "Succeed"}}})
        .to_string(),
    );
    let collector = Collector::start(&kafka, &topic);
    let mut sent = Vec::new();
    for i in 0..5 {
        let out = exec(&[
            "--definition",
            def.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--input",
            &json!({"id": format!("o-{i}"), "total": i}).to_string(),
        ]);
        assert_eq!(out["status"], "SUCCEEDED", "{out}");
        let s = out["output"]["sent"].clone();
        assert_eq!(s["Topic"], topic.as_str());
        assert!(
            out["output"]["denied"]["Cause"]
                .as_str()
                .unwrap()
                .contains("[tasks.kafka] topics"),
            "{out}"
        );
        sent.push((format!("o-{i}"), i, s));
    }
    assert_eq!(collector.wait_for_keys(5, Duration::from_secs(60)), 5);
    let by_key = collector.by_key();
    for (key, total, s) in sent {
        let rec = &by_key[&key][0];
        assert_eq!(Value::from(rec.partition), s["Partition"], "{key}");
        assert_eq!(Value::from(rec.offset), s["Offset"], "{key}");
        assert_eq!(rec.json().unwrap(), json!({"order": key, "total": total}));
    }
}
