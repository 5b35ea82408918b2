//! The seeds' order workflow (config/state-machines/order.asl.json) end to end through a
//! real Kafka broker, its four Lambda ARNs served by the real Python functions of
//! examples/order-lambda in AWS's Runtime Interface Emulator, one emulator per function.
//!
//! Needs the broker `scripts/kafka/start.sh` runs (`$KAFKA_BOOTSTRAP`) and the emulator
//! scripts/lambda/setup.sh installs.

mod kafka_support;
mod lambda_support;

use std::path::Path;

use kafka_support::{
    bootstrap, create_topics, produce, unique, Collector, Outgoing, Processor, ProcessorConfig,
    RESULTS_TIMEOUT,
};
use lambda_support::Emulator;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// `int(sha256(order_id).hexdigest(), 16) % 10**n`, as orders.py derives its ids.
fn digits(order_id: &str, n: u32) -> u128 {
    let m = 10u128.pow(n);
    Sha256::digest(order_id.as_bytes())
        .iter()
        .fold(0u128, |r, b| (r * 256 + u128::from(*b)) % m)
}

fn order(i: usize) -> (String, Value) {
    let id = format!("ORD-{i:05}");
    // Every 7th order has an out-of-stock item, every 11th a zero total.
    let sku = if i % 7 == 3 { "OOS-9" } else { "SKU-2" };
    let total = if i % 11 == 5 { 0.0 } else { 10.0 + i as f64 };
    let input = json!({
        "orderId": id, "customer": {"id": format!("C-{i}")},
        "items": [{"sku": "SKU-1", "qty": 1}, {"sku": sku, "qty": 2}],
        "total": total, "currency": "EUR", "payment": {"method": "card"},
        "shipping": {"address": {"city": "Lyon", "country": "FR"}}
    });
    (id, input)
}

#[test]
fn the_order_workflow_runs_through_kafka_on_real_lambda_functions() {
    const N: usize = 300;
    let functions_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/order-lambda");
    let names = [
        ("ValidateOrder", "orders.validate_order"),
        ("ReserveInventory", "orders.reserve_inventory"),
        ("ChargeCustomer", "orders.charge_customer"),
        ("ShipOrder", "orders.ship_order"),
    ];
    let emulators: Vec<(String, Emulator)> = names
        .iter()
        .map(|(name, handler)| {
            (
                name.to_string(),
                Emulator::start(&functions_dir, handler, &[]),
            )
        })
        .collect();
    // The seeds' definition itself, without the built-in handlers bound beside it.
    let machines = std::env::temp_dir().join(unique("order-lambda-machines"));
    std::fs::create_dir_all(&machines).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/state-machines/order.asl.json"),
        machines.join("order.asl.json"),
    )
    .unwrap();
    // The emulator runs one invocation at a time and crashes on a concurrent second one:
    // one call in flight per function, which also exercises the shared per-resource limit.
    let mut tasks = String::from("[tasks]\nmax_concurrency = 1\n\n[tasks.lambda.functions]\n");
    for (name, em) in &emulators {
        tasks.push_str(&format!(
            "\"arn:aws:lambda:us-east-1:123456789012:function:{name}\" = {:?}\n",
            em.url()
        ));
    }

    let kafka = bootstrap();
    let (requests, results, errors) = (
        unique("ol-requests"),
        unique("ol-results"),
        unique("ol-errors"),
    );
    create_topics(&kafka, &[(&requests, 4), (&results, 4), (&errors, 4)]);
    let collected = Collector::start(&kafka, &results);
    let dead = Collector::start(&kafka, &errors);
    let mut config = ProcessorConfig::new(&kafka, &unique("ol-group"), &results, &errors)
        .bound_input(&requests, "order");
    config.state_machines_dir = machines.clone();
    let _processor = Processor::start_ready_with("order-lambda", &config, &tasks);

    let orders: Vec<(String, Value)> = (0..N).map(order).collect();
    let outgoing: Vec<Outgoing> = orders
        .iter()
        .map(|(id, input)| Outgoing::new(id.clone(), input.to_string()))
        .collect();
    produce(&kafka, &requests, &outgoing);
    assert_eq!(
        collected.wait_for_keys(N, RESULTS_TIMEOUT),
        N,
        "every order has a result"
    );
    assert_eq!(dead.total(), 0, "no dead letters");

    let by_key = collected.by_key();
    let (mut ok, mut invalid, mut oos) = (0, 0, 0);
    for (i, (id, input)) in orders.iter().enumerate() {
        let result = by_key[id][0].json().expect("a JSON result");
        if i % 11 == 5 {
            invalid += 1;
            assert_eq!(result["status"], "FAILED", "{id}: {result}");
            assert_eq!(result["error"], "InvalidOrder", "{id}: {result}");
            let cause: Value = serde_json::from_str(result["cause"].as_str().unwrap()).unwrap();
            assert_eq!(cause["errorMessage"], format!("order {id} has total 0.0"));
            continue;
        }
        if i % 7 == 3 {
            oos += 1;
            assert_eq!(result["status"], "FAILED", "{id}: {result}");
            assert_eq!(result["error"], "OutOfStock", "{id}: {result}");
            continue;
        }
        ok += 1;
        assert_eq!(result["status"], "SUCCEEDED", "{id}: {result}");
        let mut expected = input.clone();
        let o = expected.as_object_mut().unwrap();
        o.insert(
            "validation".into(),
            json!({"valid": true, "checks": ["customer", "total"]}),
        );
        o.insert(
            "inventory".into(),
            json!({"reservationId": format!("RES-{:06}", digits(id, 6)), "skus": ["SKU-1", "SKU-2"]}),
        );
        o.insert(
            "charge".into(),
            json!({"transactionId": format!("TXN-{:08}", digits(id, 8)), "amount": input["total"], "currency": "EUR"}),
        );
        o.insert(
            "shipment".into(),
            json!({"trackingNumber": format!("1Z{:010}", digits(id, 10)), "country": "FR"}),
        );
        assert_eq!(result["output"], expected, "{id}");
    }
    eprintln!("order-lambda: {ok} shipped, {invalid} invalid, {oos} out of stock");
    assert!(ok > 0 && invalid > 0 && oos > 0);
    let _ = std::fs::remove_dir_all(&machines);
}
