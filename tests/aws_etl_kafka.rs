//! The ETL example (examples/etl) end to end through a real Kafka broker: each record is
//! an order to export; the workflow reads it from DynamoDB, marks it exported, publishes
//! to SNS, sends to SQS and puts an EventBridge event, all on moto's server. Every effect
//! is checked through boto3 against the results on the results topic.
//!
//! Needs the broker `scripts/kafka/start.sh` runs (`$KAFKA_BOOTSTRAP`) and the moto venv
//! scripts/aws/setup.sh installs.

mod aws_support;
mod kafka_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_support::{python, Moto, AWS_ENV};
use kafka_support::{
    bootstrap, create_topics, produce, unique, Collector, Outgoing, Processor, ProcessorConfig,
    RESULTS_TIMEOUT,
};
use serde_json::{json, Value};

/// Every message of a queue (moto hides a received message for 30 s, so one pass reads each once).
fn drain(moto: &Moto, queue: &str) -> Vec<Value> {
    moto.boto(&format!(
        "sqs = c('sqs')\n\
         url = sqs.get_queue_url(QueueName={queue:?})['QueueUrl']\n\
         got = []\n\
         while True:\n    \
             m = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=['All']).get('Messages', [])\n    \
             if not m: break\n    \
             got += [{{'id': x['MessageId'], 'body': json.loads(x['Body'])}} for x in m]\n\
         out(got)"
    ))
    .as_array()
    .expect("a list of messages")
    .clone()
}

#[test]
fn the_etl_example_exports_orders_through_kafka_to_dynamodb_sns_sqs_and_eventbridge() {
    const ORDERS: usize = 60;
    // The first 5 orders are requested twice (one export each), 3 ids do not exist.
    const TWICE: usize = 5;
    const MISSING: usize = 3;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/etl");
    let moto = Moto::start();
    let status = Command::new(python())
        .arg(example.join("setup.py"))
        .args([moto.url(), ORDERS.to_string()])
        .status()
        .expect("the example's setup.py runs");
    assert!(status.success(), "examples/etl/setup.py failed");

    // The processor signs its calls with the environment's credentials; this binary has
    // this one test, so no other thread reads the environment meanwhile.
    for (k, v) in AWS_ENV {
        std::env::set_var(k, v);
    }
    std::env::remove_var("AWS_PROFILE");
    let kafka = bootstrap();
    let (requests, results, errors) = (
        unique("etl-requests"),
        unique("etl-results"),
        unique("etl-errors"),
    );
    create_topics(&kafka, &[(&requests, 4), (&results, 4), (&errors, 4)]);
    let collected = Collector::start(&kafka, &results);
    let dead = Collector::start(&kafka, &errors);
    let mut config = ProcessorConfig::new(&kafka, &unique("etl-group"), &results, &errors)
        .bound_input(&requests, "etl");
    config.state_machines_dir = example.join("state-machines");
    // The example's [tasks.aws] section, pointed at this test's moto.
    let example_toml = std::fs::read_to_string(example.join("stepstream.toml")).unwrap();
    let aws_section = &example_toml[example_toml
        .find("[tasks.aws]")
        .expect("the example configures [tasks.aws]")..];
    let aws_section = aws_section.replace("http://127.0.0.1:5000", &moto.url());
    assert!(aws_section.contains(&moto.url()), "{aws_section}");
    let _processor = Processor::start_ready_with("etl", &config, &aws_section);

    let ids: Vec<String> = (0..ORDERS).map(|i| format!("ORD-{i:05}")).collect();
    let mut outgoing: Vec<Outgoing> = ids
        .iter()
        .chain(ids.iter().take(TWICE))
        .map(|id| Outgoing::new(id.clone(), json!({"orderId": id}).to_string()))
        .collect();
    for i in 0..MISSING {
        let id = format!("NOPE-{i}");
        outgoing.push(Outgoing::new(
            id.clone(),
            json!({"orderId": id}).to_string(),
        ));
    }
    produce(&kafka, &requests, &outgoing);
    assert_eq!(
        collected.wait_for_keys(ORDERS + MISSING, RESULTS_TIMEOUT),
        ORDERS + MISSING,
        "every order has a result"
    );
    let deadline = Instant::now() + RESULTS_TIMEOUT;
    while collected.total() < outgoing.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(collected.total(), outgoing.len(), "one result per request");
    assert_eq!(dead.total(), 0, "no dead letters");

    // What each exported order's result says was sent, by order id.
    let mut exported: BTreeMap<String, Value> = BTreeMap::new();
    let by_key = collected.by_key();
    for i in 0..MISSING {
        let r = by_key[&format!("NOPE-{i}")][0].json().unwrap();
        assert_eq!(r["status"], "FAILED", "{r}");
        assert_eq!(r["error"], "OrderNotFound", "{r}");
    }
    for (i, id) in ids.iter().enumerate() {
        let runs: Vec<Value> = by_key[id].iter().map(|r| r.json().unwrap()).collect();
        assert_eq!(runs.len(), if i < TWICE { 2 } else { 1 }, "{id}");
        let mut exports = 0;
        for r in &runs {
            assert_eq!(r["status"], "SUCCEEDED", "{id}: {r}");
            let out = &r["output"];
            if out.get("skipped").is_some() {
                assert_eq!(out, &json!({"orderId": id, "skipped": "already exported"}));
                continue;
            }
            exports += 1;
            let total = 10.0 + i as f64 * 1.5;
            assert_eq!(
                out["summary"],
                json!({"orderId": id, "customer": format!("C-{}", i % 7), "total": total, "currency": "EUR"}),
                "{id}"
            );
            exported.insert(id.clone(), out.clone());
        }
        assert_eq!(exports, 1, "{id} is exported exactly once: {runs:?}");
    }

    // DynamoDB: every order is marked, nothing else was written.
    let table = moto.boto(
        "items = c('dynamodb').scan(TableName='Orders')['Items']\n\
         out(sorted([(i['orderId']['S'], i.get('status', {}).get('S')) for i in items]))",
    );
    let expected: Vec<Value> = ids.iter().map(|id| json!([id, "EXPORTED"])).collect();
    assert_eq!(table, Value::Array(expected));

    // SQS: one shipping message per order, the summary as its body.
    let shipping = drain(&moto, "shipping");
    assert_eq!(shipping.len(), ORDERS, "{shipping:?}");
    for m in &shipping {
        let id = m["body"]["orderId"].as_str().unwrap();
        let out = &exported[id];
        assert_eq!(m["body"], out["summary"]);
        assert_eq!(m["id"], out["exported"]["queued"]["MessageId"]);
    }

    // SNS: the queue subscribed to the topic got each publication with its id.
    let notified = drain(&moto, "notified");
    assert_eq!(notified.len(), ORDERS);
    let mut seen = BTreeSet::new();
    for m in &notified {
        let note = &m["body"];
        let summary: Value = serde_json::from_str(note["Message"].as_str().unwrap()).unwrap();
        let id = summary["orderId"].as_str().unwrap().to_string();
        let out = &exported[&id];
        assert_eq!(summary, out["summary"]);
        assert_eq!(note["MessageId"], out["exported"]["notified"]["MessageId"]);
        assert_eq!(note["Subject"], "order exported");
        assert_eq!(
            note["MessageAttributes"]["customer"]["Value"],
            out["summary"]["customer"]
        );
        seen.insert(id);
    }
    assert_eq!(seen.len(), ORDERS);

    // EventBridge: the rule's target queue got each OrderExported event.
    let announced = drain(&moto, "announced");
    assert_eq!(announced.len(), ORDERS);
    for m in &announced {
        let event = &m["body"];
        let id = event["detail"]["orderId"].as_str().unwrap();
        let out = &exported[id];
        assert_eq!(event["source"], "shop.etl");
        assert_eq!(event["detail-type"], "OrderExported");
        assert_eq!(event["detail"], out["summary"]);
        assert_eq!(event["id"], out["exported"]["announced"]["EventId"]);
    }
    eprintln!(
        "etl: {ORDERS} orders exported once each ({TWICE} requested twice), {MISSING} missing"
    );
}
