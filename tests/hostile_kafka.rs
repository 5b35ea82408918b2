//! A hostile request through `stepstream run` against a real Kafka broker: a Map whose
//! ItemSelector reads `$$.Map.Item.Value` over 20,000 items (a 40 KB request that used to
//! abort the process, again after every restart). The process stays up, the request gets
//! its result, and the partition moves on past it.
//!
//! Needs the broker `scripts/kafka/start.sh` runs (see `tests/pipeline_kafka.rs`).

mod common;
mod kafka_support;

use std::time::{Duration, Instant};

use kafka_support::{
    bootstrap, committed_offsets, produce, unique, Collector, Outgoing, Processor, ProcessorConfig,
    RESULTS_TIMEOUT,
};
use serde_json::{json, Value};

#[test]
fn a_hostile_map_request_gets_its_result_and_the_partition_moves_on() {
    let kafka = bootstrap();
    let id = unique("hostile");
    let (requests, results, errors) = (
        format!("{id}.requests"),
        format!("{id}.results"),
        format!("{id}.errors"),
    );
    let machines = std::env::temp_dir().join(format!("{id}-machines"));
    std::fs::create_dir_all(&machines).expect("the temp dir is writable");
    std::fs::write(
        machines.join("hostile-map.asl.json"),
        common::map_over_item_values().to_string(),
    )
    .expect("the definition is writable");

    let mut config =
        ProcessorConfig::new(&kafka, &id, &results, &errors).bound_input(&requests, "hostile-map");
    // One partition: the good request lands behind the hostile one.
    config.partitions = 1;
    config.state_machines_dir = machines.clone();
    let mut processor = Processor::start_ready("hostile", &config);
    let rss = processor.sample_rss();
    let collector = Collector::start(&kafka, &results);

    let hostile = json!(vec![0; 20_000]).to_string();
    assert_eq!(hostile.len(), 40_001);
    let landed = produce(
        &kafka,
        &requests,
        &[
            Outgoing::new("hostile", hostile),
            Outgoing::new("good", json!([7, 8]).to_string()),
        ],
    );
    assert_eq!(landed[0].partition, landed[1].partition);

    let got = collector.wait_for_keys(2, RESULTS_TIMEOUT);
    let by_key = collector.by_key();
    assert_eq!(
        got,
        2,
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
    let h = result("hostile");
    assert_eq!(h["status"], "SUCCEEDED", "{h}");
    assert_eq!(
        h["output"],
        json!({"n": 20_000, "last": [{"v": 0, "i": 19_999}]})
    );
    let g = result("good");
    assert_eq!(g["status"], "SUCCEEDED", "{g}");
    assert_eq!(g["output"], json!({"n": 2, "last": [{"v": 8, "i": 1}]}));

    // The committed offset passes both requests.
    let want = landed[1].offset + 1;
    let deadline = Instant::now() + Duration::from_secs(30);
    let committed = loop {
        let c = committed_offsets(&kafka, &id, &requests, 1)
            .get(&landed[1].partition)
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
    let peak_kb = rss.peak_kb();
    eprintln!("processor peak RSS (sampled every 100 ms): {peak_kb} kB");
    // Before the Context object was shared this request needed ~31 GB.
    assert!(peak_kb < 300 * 1024, "processor peak RSS {peak_kb} kB");
    assert!(processor.exited().is_none(), "the processor died");
    drop(processor);
    let _ = std::fs::remove_dir_all(&machines);
}
