//! `stepstream run` against a real Kafka broker: every request gets its result, poison goes
//! to the errors topic, a SIGKILLed processor loses nothing, a group of two shares and hands
//! over partitions, and a full shard pauses its partitions instead of growing without bound.
//!
//! The broker is the one `scripts/kafka/start.sh` runs (see `kafka_support`):
//! ```sh
//! kafka_env="$(scripts/kafka/start.sh)"; export "$kafka_env"
//! cargo test --test pipeline_kafka -- --nocapture
//! scripts/kafka/stop.sh
//! ```
//! Each test uses its own topics and consumer group, so they run side by side on one broker.

mod common;
mod kafka_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use common::same_json;
use kafka_support::{
    bootstrap, check_dead_letter_original, committed_offsets, create_topics, describe_group,
    fixtures_dir, peak_overlap, produce, repo_root, timestamp_ms, unique, Collector, Incoming,
    Landed, Outgoing, Processor, ProcessorConfig, RESULTS_TIMEOUT,
};
use serde_json::{json, Value};

/// One test's topics and group, all named after one unique id.
struct Names {
    group: String,
    requests: String,
    results: String,
    errors: String,
}

impl Names {
    fn new(tag: &str) -> Names {
        let id = unique(tag);
        Names {
            requests: format!("{id}.requests"),
            results: format!("{id}.results"),
            errors: format!("{id}.errors"),
            group: id,
        }
    }

    fn config(&self, kafka: &str) -> ProcessorConfig {
        ProcessorConfig::new(kafka, &self.group, &self.results, &self.errors)
    }
}

/// What a result record must say.
struct Expect<'a> {
    topic: &'a str,
    landed: Landed,
    machine: &'a str,
    /// The execution name given in the request, if any.
    name: Option<String>,
    status: &'a str,
    /// For SUCCEEDED: the output.
    output: Option<Value>,
    /// For FAILED: error and cause.
    error: Option<(&'a str, &'a str)>,
}

/// Checks one result record against the contract; returns what is wrong.
fn check_result(record: &Incoming, want: &Expect<'_>) -> Vec<String> {
    let v = match record.json() {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    let mut wrong = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            wrong.push(what);
        }
    };
    expect(
        v["status"] == want.status,
        format!(
            "status {} (want {}), error {} cause {}",
            v["status"], want.status, v["error"], v["cause"]
        ),
    );
    expect(
        v["source"]["topic"] == want.topic
            && v["source"]["partition"] == want.landed.partition
            && v["source"]["offset"] == want.landed.offset,
        format!(
            "source {} (want topic {} partition {} offset {})",
            v["source"], want.topic, want.landed.partition, want.landed.offset
        ),
    );
    let machine_arn = v["stateMachineArn"].as_str().unwrap_or("");
    expect(
        machine_arn.ends_with(&format!(":stateMachine:{}", want.machine)),
        format!(
            "stateMachineArn {} does not name {}",
            v["stateMachineArn"], want.machine
        ),
    );
    let name = v["name"].as_str().unwrap_or("");
    expect(
        !name.is_empty(),
        format!("name {} is not a non-empty string", v["name"]),
    );
    if let Some(given) = &want.name {
        expect(name == given, format!("name {:?} (want {given:?})", name));
    }
    let execution_arn = v["executionArn"].as_str().unwrap_or("");
    expect(
        execution_arn.contains(&format!(":{}:{name}", want.machine)),
        format!(
            "executionArn {} does not contain :{}:{name}",
            v["executionArn"], want.machine
        ),
    );
    let start = v["startDate"].as_str().and_then(timestamp_ms);
    let stop = v["stopDate"].as_str().and_then(timestamp_ms);
    expect(
        matches!((start, stop), (Some(a), Some(b)) if a <= b),
        format!(
            "startDate {} / stopDate {} are not RFC 3339 UTC times in order",
            v["startDate"], v["stopDate"]
        ),
    );
    expect(
        v["billingDetails"].is_object(),
        format!("billingDetails {} is not an object", v["billingDetails"]),
    );
    if let Some(out) = &want.output {
        expect(
            same_json(&v["output"], out),
            format!("output {} (want {out})", v["output"]),
        );
        expect(
            v["error"].is_null() && v["cause"].is_null(),
            format!("error {} / cause {} on a success", v["error"], v["cause"]),
        );
    }
    if let Some((error, cause)) = want.error {
        expect(
            v["error"] == error && v["cause"] == cause,
            format!(
                "error {} cause {} (want {error:?} {cause:?})",
                v["error"], v["cause"]
            ),
        );
    }
    wrong
}

/// Fails listing the first problems, if there are any.
fn assert_no_problems(what: &str, problems: &[String]) {
    if problems.is_empty() {
        return;
    }
    let shown: Vec<&str> = problems.iter().take(15).map(String::as_str).collect();
    panic!(
        "{what}: {} problems, the first {}:\n  {}",
        problems.len(),
        shown.len(),
        shown.join("\n  ")
    );
}

fn order_workload() -> Value {
    let path = repo_root().join("benches/workloads/order.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the order workload file"))
        .expect("the order workload is JSON")
}

/// The workload's order id; every copy of it (input and expected output) is replaced per request.
const WORKLOAD_ORDER_ID: &str = "ORD-2024-000123";

fn order_id(i: usize) -> String {
    format!("ORD-T-{i:06}")
}

/// `v` with every string equal to `from` replaced by `to`.
fn replace_string(v: &Value, from: &str, to: &str) -> Value {
    match v {
        Value::String(s) if s == from => Value::String(to.to_string()),
        Value::Array(a) => Value::Array(a.iter().map(|x| replace_string(x, from, to)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), replace_string(x, from, to)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `{"n": i, "waited": true}`: what the pause-* machines return for input `{"n": i}`.
fn paused_output(i: usize) -> Value {
    json!({"n": i, "waited": true})
}

/// Checks that every `key -> expectation` has a result, counts duplicates, and flags results
/// for keys that were not asked for. Returns (problems, duplicates).
fn check_all_results(
    collector: &Collector,
    expected: &BTreeMap<String, Expect<'_>>,
) -> (Vec<String>, usize) {
    let by_key = collector.by_key();
    let mut problems = Vec::new();
    let mut duplicates = 0;
    let mut missing = 0;
    for (key, want) in expected {
        let Some(records) = by_key.get(key) else {
            missing += 1;
            if missing <= 10 {
                problems.push(format!("{key}: no result"));
            }
            continue;
        };
        duplicates += records.len() - 1;
        for r in records {
            for w in check_result(r, want) {
                problems.push(format!(
                    "{key} (result at partition {} offset {}): {w}",
                    r.partition, r.offset
                ));
            }
        }
    }
    if missing > 10 {
        problems.push(format!("... {missing} keys in all have no result"));
    }
    for key in by_key
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .take(10)
    {
        problems.push(format!("a result for key {key:?}, which no request had"));
    }
    (problems, duplicates)
}

#[test]
fn fixture_state_machines_are_valid() {
    let mut files: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures/pipeline exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".asl.json"))
        .collect();
    files.sort();
    let args: Vec<&str> = std::iter::once("validate")
        .chain(files.iter().map(String::as_str))
        .collect();
    let out = common::stepstream(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures_dir().join("order.asl.json")).expect("order.asl.json"),
    )
    .expect("order.asl.json is JSON");
    let tasks: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures_dir().join("order.tasks.json"))
            .expect("order.tasks.json"),
    )
    .expect("order.tasks.json is JSON");
    let w = order_workload();
    assert_eq!(
        fixture, w["definition"],
        "order.asl.json drifted from benches/workloads/order.json"
    );
    assert_eq!(
        tasks, w["tasks"],
        "order.tasks.json drifted from benches/workloads/order.json"
    );
}

#[test]
fn ten_thousand_requests_on_four_partitions_each_get_one_result() {
    const N: usize = 10_000;
    let kafka = bootstrap();
    let names = Names::new("ten-thousand");
    create_topics(
        &kafka,
        &[
            (&names.requests, 4),
            (&names.results, 4),
            (&names.errors, 4),
        ],
    );
    let results = Collector::start(&kafka, &names.results);
    let errors = Collector::start(&kafka, &names.errors);
    let config = names.config(&kafka).envelope_input(&names.requests);
    let _processor = Processor::start_ready("ten-thousand", &config);

    let workload = order_workload();
    let outgoing: Vec<Outgoing> = (0..N)
        .map(|i| {
            let input = replace_string(&workload["input"], WORKLOAD_ORDER_ID, &order_id(i));
            Outgoing::new(
                format!("order-{i}"),
                json!({"stateMachine": "order", "input": input}).to_string(),
            )
        })
        .collect();
    let started = Instant::now();
    let landed = produce(&kafka, &names.requests, &outgoing);
    let used: BTreeSet<i32> = landed.iter().map(|l| l.partition).collect();
    assert_eq!(
        used.len(),
        4,
        "the keys should spread over all 4 partitions, got {used:?}"
    );

    let got = results.wait_for_keys(N, RESULTS_TIMEOUT);
    eprintln!(
        "ten-thousand: {got} results {:.1} s after the first request was produced ({:.0}/s end to end)",
        started.elapsed().as_secs_f64(),
        got as f64 / started.elapsed().as_secs_f64()
    );
    results.settle(Duration::from_secs(2), Duration::from_secs(10));

    let expected: BTreeMap<String, Expect<'_>> = (0..N)
        .map(|i| {
            let want = Expect {
                topic: &names.requests,
                landed: landed[i],
                machine: "order",
                name: None,
                status: "SUCCEEDED",
                output: Some(replace_string(
                    &workload["expected_output"],
                    WORKLOAD_ORDER_ID,
                    &order_id(i),
                )),
                error: None,
            };
            (format!("order-{i}"), want)
        })
        .collect();
    let (problems, duplicates) = check_all_results(&results, &expected);
    let result_partitions: BTreeSet<i64> = results
        .records()
        .iter()
        .filter_map(|r| r.json().ok()?["source"]["partition"].as_i64())
        .collect();
    eprintln!(
        "ten-thousand: {} distinct result keys, {} records, {duplicates} duplicates, source partitions {result_partitions:?}, {} dead letters",
        results.distinct_keys(),
        results.total(),
        errors.total()
    );
    assert_no_problems("ten-thousand results", &problems);
    assert_eq!(
        duplicates, 0,
        "a clean run (one processor, no crash, no rebalance) should give exactly one result per request"
    );
    assert_eq!(
        errors.total(),
        0,
        "good requests produced dead letters: {:?}",
        errors.by_key().keys().take(5).collect::<Vec<_>>()
    );
}

/// A poison request: key, value bytes, the error name its dead letter must carry.
struct Poison {
    key: &'static str,
    value: Vec<u8>,
    error: &'static str,
}

fn poisons() -> Vec<Poison> {
    let big_blob = "x".repeat(300 * 1024);
    let too_large = json!({"stateMachine": "order", "input": {"blob": big_blob}}).to_string();
    let nested = format!(
        r#"{{"stateMachine": "order", "input": {{"deep": {}{}}}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let p = |key, value: &[u8], error| Poison {
        key,
        value: value.to_vec(),
        error,
    };
    vec![
        p(
            "poison-malformed-json",
            br#"{"stateMachine": "order", "input": {"orderId": "#,
            "stepstream.InvalidRequest",
        ),
        p(
            "poison-json-array",
            br#"[{"stateMachine": "order", "input": {}}]"#,
            "stepstream.InvalidRequest",
        ),
        p(
            "poison-missing-state-machine",
            br#"{"input": {"orderId": "ORD-X"}}"#,
            "stepstream.InvalidRequest",
        ),
        p(
            "poison-state-machine-not-a-string",
            br#"{"stateMachine": 42, "input": {}}"#,
            "stepstream.InvalidRequest",
        ),
        p(
            "poison-unknown-state-machine",
            br#"{"stateMachine": "no-such-machine", "input": {}}"#,
            "stepstream.UnknownStateMachine",
        ),
        p(
            "poison-300-kib",
            too_large.as_bytes(),
            "States.DataLimitExceeded",
        ),
        p(
            "poison-invalid-utf8",
            b"{\"stateMachine\": \"order\", \"input\": {\"customer\": \"Ren\xe9e\"}}",
            "stepstream.InvalidEncoding",
        ),
        p(
            "poison-nested-100-deep",
            nested.as_bytes(),
            "stepstream.NestingTooDeep",
        ),
        p("poison-empty-value", b"", "stepstream.InvalidRequest"),
    ]
}

/// Checks one dead letter against its poison request; returns what is wrong.
fn check_dead_letter(
    record: &Incoming,
    poison: &Poison,
    topic: &str,
    landed: Landed,
) -> Vec<String> {
    let v = match record.json() {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    let mut wrong = Vec::new();
    if v["error"] != poison.error {
        wrong.push(format!(
            "error {} (want {:?}), cause {}",
            v["error"], poison.error, v["cause"]
        ));
    }
    if v["cause"].as_str().is_none_or(|c| c.trim().is_empty()) {
        wrong.push(format!("cause {} is not a non-empty string", v["cause"]));
    }
    if !(v["source"]["topic"] == topic
        && v["source"]["partition"] == landed.partition
        && v["source"]["offset"] == landed.offset)
    {
        wrong.push(format!(
            "source {} (want topic {topic} partition {} offset {})",
            v["source"], landed.partition, landed.offset
        ));
    }
    // The original is carried once, cut at the configured cap (64 KiB by default).
    wrong.extend(check_dead_letter_original(&v, &poison.value));
    wrong
}

#[test]
fn poison_requests_go_to_the_errors_topic_and_good_ones_still_run() {
    let kafka = bootstrap();
    let names = Names::new("poison");
    // The results and errors topics are left to the processor (create_topics = true).
    create_topics(&kafka, &[(&names.requests, 4)]);
    let results = Collector::start(&kafka, &names.results);
    let errors = Collector::start(&kafka, &names.errors);
    let config = names.config(&kafka).envelope_input(&names.requests);
    let _processor = Processor::start_ready("poison", &config);

    let workload = order_workload();
    let poisons = poisons();
    let good_order = |i: usize| {
        let input = replace_string(&workload["input"], WORKLOAD_ORDER_ID, &order_id(i));
        json!({"stateMachine": "order", "name": format!("order-run-{i}"), "input": input})
            .to_string()
    };
    // (record, index into poisons if it is one)
    let mut outgoing: Vec<(Outgoing, Option<usize>)> = Vec::new();
    let mut good = 0;
    for (j, poison) in poisons.iter().enumerate() {
        for _ in 0..5 {
            outgoing.push((
                Outgoing::new(format!("good-{good}"), good_order(good)),
                None,
            ));
            good += 1;
        }
        outgoing.push((Outgoing::new(poison.key, poison.value.clone()), Some(j)));
    }
    for _ in 0..20 {
        outgoing.push((
            Outgoing::new(format!("good-{good}"), good_order(good)),
            None,
        ));
        good += 1;
    }
    let order_input = replace_string(&workload["input"], WORKLOAD_ORDER_ID, "ORD-HEADERS");
    let order_output = replace_string(
        &workload["expected_output"],
        WORKLOAD_ORDER_ID,
        "ORD-HEADERS",
    );
    outgoing.push((
        Outgoing::new(
            "rejected-0",
            r#"{"stateMachine": "always-rejected", "input": {}}"#,
        ),
        None,
    ));
    outgoing.push((
        Outgoing::new(
            "rejected-1",
            r#"{"stateMachine": "always-rejected", "name": "rejected-run", "input": {"a": 1}}"#,
        ),
        None,
    ));
    // Headers override the envelope's stateMachine and name.
    outgoing.push((
        Outgoing::new(
            "header-override",
            json!({"stateMachine": "no-such-machine", "name": "value-name", "input": order_input})
                .to_string(),
        )
        .header("stepstream-state-machine", "order")
        .header("stepstream-execution-name", "header-name"),
        None,
    ));
    // A header can supply the state machine the envelope leaves out.
    outgoing.push((
        Outgoing::new("header-only", json!({"input": order_input}).to_string())
            .header("stepstream-state-machine", "order"),
        None,
    ));
    let records: Vec<Outgoing> = outgoing.iter().map(|(r, _)| r.clone()).collect();
    let landed = produce(&kafka, &names.requests, &records);

    let mut expected: BTreeMap<String, Expect<'_>> = BTreeMap::new();
    let mut poison_landed: HashMap<usize, Landed> = HashMap::new();
    for (i, (record, poison)) in outgoing.iter().enumerate() {
        let key = String::from_utf8(record.key.clone()).expect("test keys are UTF-8");
        if let Some(j) = poison {
            poison_landed.insert(*j, landed[i]);
            continue;
        }
        let base = Expect {
            topic: &names.requests,
            landed: landed[i],
            machine: "order",
            name: None,
            status: "SUCCEEDED",
            output: None,
            error: None,
        };
        let want = if let Some(n) = key.strip_prefix("good-") {
            let n: usize = n.parse().expect("good-<n>");
            Expect {
                name: Some(format!("order-run-{n}")),
                output: Some(replace_string(
                    &workload["expected_output"],
                    WORKLOAD_ORDER_ID,
                    &order_id(n),
                )),
                ..base
            }
        } else if key.starts_with("rejected-") {
            Expect {
                machine: "always-rejected",
                name: (key == "rejected-1").then(|| "rejected-run".to_string()),
                status: "FAILED",
                error: Some(("Order.Rejected", "the card was declined")),
                ..base
            }
        } else if key == "header-override" {
            Expect {
                name: Some("header-name".to_string()),
                output: Some(order_output.clone()),
                ..base
            }
        } else {
            Expect {
                output: Some(order_output.clone()),
                ..base
            }
        };
        expected.insert(key, want);
    }

    let dead = errors.wait_for_keys(poisons.len(), RESULTS_TIMEOUT);
    let got = results.wait_for_keys(expected.len(), RESULTS_TIMEOUT);
    errors.settle(Duration::from_secs(2), Duration::from_secs(10));
    results.settle(Duration::from_secs(1), Duration::from_secs(10));
    eprintln!(
        "poison: {dead} dead-letter keys ({} records) for {} poisons; {got} result keys for {} good requests",
        errors.total(),
        poisons.len(),
        expected.len()
    );

    let mut problems = Vec::new();
    let letters = errors.by_key();
    for (j, poison) in poisons.iter().enumerate() {
        match letters.get(poison.key) {
            None => problems.push(format!(
                "{}: no dead letter (want {})",
                poison.key, poison.error
            )),
            Some(records) => {
                if records.len() > 1 {
                    problems.push(format!(
                        "{}: {} dead letters, want 1",
                        poison.key,
                        records.len()
                    ));
                }
                for w in check_dead_letter(&records[0], poison, &names.requests, poison_landed[&j])
                {
                    problems.push(format!("{}: {w}", poison.key));
                }
            }
        }
    }
    for key in letters
        .keys()
        .filter(|k| !poisons.iter().any(|p| p.key == k.as_str()))
    {
        let sample = letters[key][0].json().unwrap_or_default();
        problems.push(format!(
            "{key}: a good request went to the errors topic: {sample}"
        ));
    }
    let by_key = results.by_key();
    for poison in &poisons {
        if let Some(r) = by_key.get(poison.key) {
            problems.push(format!(
                "{}: has a result, but it should only be a dead letter: {}",
                poison.key,
                r[0].json().unwrap_or_default()
            ));
        }
    }
    let (result_problems, duplicates) = check_all_results(&results, &expected);
    problems.extend(
        result_problems
            .into_iter()
            .filter(|p| !poisons.iter().any(|x| p.contains(x.key))),
    );
    eprintln!("poison: {duplicates} duplicate results");
    assert_no_problems("poison requests and their neighbours", &problems);
}

#[test]
fn processor_killed_with_sigkill_and_restarted_loses_nothing() {
    const N: usize = 20_000;
    const FIRST_BATCH: usize = 500;
    let kafka = bootstrap();
    let names = Names::new("sigkill");
    create_topics(
        &kafka,
        &[
            (&names.requests, 4),
            (&names.results, 4),
            (&names.errors, 4),
        ],
    );
    let outgoing: Vec<Outgoing> = (0..N)
        .map(|i| Outgoing::new(format!("job-{i:05}"), json!({"n": i}).to_string()))
        .collect();
    let landed = produce(&kafka, &names.requests, &outgoing);
    let results = Collector::start(&kafka, &names.results);
    // Each execution waits one second, so the kill finds thousands in flight. The dead
    // member keeps its partitions until its session times out (librdkafka's default is
    // 45 s), so a short session keeps the restart quick.
    let config = names
        .config(&kafka)
        .bound_input(&names.requests, "pause-one-second")
        .property("session.timeout.ms", "6000")
        .property("heartbeat.interval.ms", "1000");

    let mut first = Processor::start_ready("sigkill-first", &config);
    let seen = results.wait_for_keys(FIRST_BATCH, RESULTS_TIMEOUT);
    assert!(
        seen >= FIRST_BATCH,
        "no first batch of {FIRST_BATCH} results before the kill\n{}",
        first.stderr_tail(40)
    );
    let committed = committed_offsets(&kafka, &names.group, &names.requests, 4);
    let status = first.sigkill();
    let at_kill = results.distinct_keys();
    eprintln!(
        "sigkill: first processor killed ({status}) with {at_kill} of {N} results seen; \
         committed offsets just before the kill {committed:?}"
    );
    if at_kill >= N {
        eprintln!(
            "sigkill: WARNING every result was in before the kill; recovery was not exercised"
        );
    }

    let second = Processor::start_ready("sigkill-second", &config);
    let restarted = Instant::now();
    let resumed = results.wait_for_keys(at_kill + 1, RESULTS_TIMEOUT);
    eprintln!(
        "sigkill: results passed the {at_kill} seen at the kill {:.1} s after the restart ({resumed} keys)",
        restarted.elapsed().as_secs_f64()
    );
    let got = results.wait_for_keys(N, RESULTS_TIMEOUT);
    results.settle(Duration::from_secs(2), Duration::from_secs(10));
    let expected: BTreeMap<String, Expect<'_>> = (0..N)
        .map(|i| {
            let want = Expect {
                topic: &names.requests,
                landed: landed[i],
                machine: "pause-one-second",
                name: None,
                status: "SUCCEEDED",
                output: Some(paused_output(i)),
                error: None,
            };
            (format!("job-{i:05}"), want)
        })
        .collect();
    let (problems, duplicates) = check_all_results(&results, &expected);
    eprintln!(
        "sigkill: {got} of {N} keys have a result after the restart; {} records, {duplicates} duplicates ({} seen before the kill)",
        results.total(),
        at_kill
    );
    assert_no_problems("results across a SIGKILL and a restart", &problems);
    drop(second);
}

#[test]
fn two_processors_share_the_group_and_one_takes_over() {
    const N: usize = 10_000;
    const HALF: usize = N / 2;
    let kafka = bootstrap();
    let names = Names::new("two");
    create_topics(
        &kafka,
        &[
            (&names.requests, 4),
            (&names.results, 4),
            (&names.errors, 4),
        ],
    );
    let results = Collector::start(&kafka, &names.results);
    let mut config = names
        .config(&kafka)
        .bound_input(&names.requests, "pause-one-second");
    config.shards = 1;
    config.shutdown_grace_seconds = 10;

    let mut a = Processor::start("two-a", &config);
    let mut b = Processor::start("two-b", &config);
    a.wait_ready(Duration::from_secs(60));
    b.wait_ready(Duration::from_secs(60));

    // Both must hold partitions of the input topic before the load starts.
    let deadline = Instant::now() + Duration::from_secs(60);
    let members = loop {
        let (state, members) = describe_group(&kafka, &names.group);
        let holding = members
            .iter()
            .filter(|m| {
                m.assignment
                    .get(&names.requests)
                    .is_some_and(|p| !p.is_empty())
            })
            .count();
        if state == "Stable" && members.len() == 2 && holding == 2 {
            break members;
        }
        assert!(
            Instant::now() < deadline,
            "the group never had both processors holding partitions of {}: state {state}, members {members:?}",
            names.requests
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    for m in &members {
        eprintln!(
            "two: member {} ({}) holds {:?}",
            m.id, m.client_id, m.assignment
        );
    }

    let outgoing: Vec<Outgoing> = (0..N)
        .map(|i| Outgoing::new(format!("task-{i:05}"), json!({"n": i}).to_string()))
        .collect();
    let mut landed = produce(&kafka, &names.requests, &outgoing[..HALF]);
    let seen = results.wait_for_keys(1_000, RESULTS_TIMEOUT);
    assert!(
        seen >= 1_000,
        "fewer than 1000 results before stopping one processor"
    );

    b.sigterm();
    let stopping = Instant::now();
    landed.extend(produce(&kafka, &names.requests, &outgoing[HALF..]));
    let status = b.wait_exit(Duration::from_secs(config.shutdown_grace_seconds + 30));
    let Some(status) = status else {
        panic!(
            "processor two-b did not exit within {} s of SIGTERM\n{}",
            config.shutdown_grace_seconds + 30,
            b.stderr_tail(40)
        );
    };
    let committed_at_stop = committed_offsets(&kafka, &names.group, &names.requests, 4);
    eprintln!(
        "two: two-b exited {status} {:.1} s after SIGTERM; committed offsets then {committed_at_stop:?}",
        stopping.elapsed().as_secs_f64()
    );
    eprintln!("{}", b.stderr_tail(20));
    assert!(
        status.success(),
        "two-b exited with {status} after SIGTERM, want 0\n{}",
        b.stderr_tail(40)
    );
    assert!(
        b.stderr_has("stepstream: stopped"),
        "two-b did not print `stepstream: stopped`\n{}",
        b.stderr_tail(40)
    );

    let got = results.wait_for_keys(N, RESULTS_TIMEOUT);
    results.settle(Duration::from_secs(2), Duration::from_secs(10));
    assert!(
        a.exited().is_none(),
        "two-a exited ({:?}) while it should carry on",
        a.exited()
    );
    let expected: BTreeMap<String, Expect<'_>> = (0..N)
        .map(|i| {
            let want = Expect {
                topic: &names.requests,
                landed: landed[i],
                machine: "pause-one-second",
                name: None,
                status: "SUCCEEDED",
                output: Some(paused_output(i)),
                error: None,
            };
            (format!("task-{i:05}"), want)
        })
        .collect();
    let (problems, duplicates) = check_all_results(&results, &expected);
    eprintln!(
        "two: {got} of {N} keys have a result; {} records, {duplicates} duplicates",
        results.total()
    );
    assert_no_problems(
        "results with two processors, one stopped partway",
        &problems,
    );

    // The member left is two-a; the partitions of the member that is gone were two-b's.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (state, after) = loop {
        let (state, after) = describe_group(&kafka, &names.group);
        let all = after.len() == 1
            && after[0]
                .assignment
                .get(&names.requests)
                .is_some_and(|p| p.len() == 4);
        if (state == "Stable" && all) || Instant::now() > deadline {
            break (state, after);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!("two: after the stop the group is {state} with {after:?}");
    assert!(
        after.len() == 1
            && after[0]
                .assignment
                .get(&names.requests)
                .is_some_and(|p| p.len() == 4),
        "after two-b stopped, two-a should hold all 4 partitions of {}: group {state} {after:?}",
        names.requests
    );
    let b_partitions: BTreeSet<i32> = members
        .iter()
        .filter(|m| m.id != after[0].id)
        .flat_map(|m| {
            m.assignment
                .get(&names.requests)
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let taken_over = landed[HALF..]
        .iter()
        .filter(|l| b_partitions.contains(&l.partition))
        .count();
    eprintln!(
        "two: {taken_over} requests of the second half went to two-b's former partitions {b_partitions:?} and all have results"
    );
    // Duplicates are allowed on two-a's own partitions: the rebalance when two-b leaves may
    // take them away while executions are in flight, and those run again.
    let mut dup_by_partition: BTreeMap<i32, usize> = BTreeMap::new();
    for records in results.by_key().values() {
        if records.len() > 1 {
            if let Some(p) = records[0]
                .json()
                .ok()
                .and_then(|v| v["source"]["partition"].as_i64())
            {
                *dup_by_partition.entry(p as i32).or_default() += records.len() - 1;
            }
        }
    }
    eprintln!(
        "two: duplicate results per source partition {dup_by_partition:?} (two-b held {b_partitions:?})"
    );
    // SIGTERM is not a crash: two-b finishes what it holds, commits, and only then lets go,
    // so nothing of its partitions runs twice.
    let b_dups: usize = dup_by_partition
        .iter()
        .filter(|(p, _)| b_partitions.contains(p))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        b_dups, 0,
        "{b_dups} requests of two-b's partitions {b_partitions:?} ran twice after its graceful stop: \
         it did not commit what it finished before two-a took over (committed offsets right after it exited: {committed_at_stop:?})"
    );
}

#[test]
fn wait_heavy_load_over_the_in_flight_limit_pauses_and_completes() {
    const N: usize = 3_000;
    const LIMIT: usize = 200;
    const RSS_BOUND_KB: u64 = 300 * 1024;
    let kafka = bootstrap();
    let names = Names::new("backpressure");
    create_topics(
        &kafka,
        &[
            (&names.requests, 4),
            (&names.results, 4),
            (&names.errors, 4),
        ],
    );
    let outgoing: Vec<Outgoing> = (0..N)
        .map(|i| Outgoing::new(format!("wait-{i:04}"), json!({"n": i}).to_string()))
        .collect();
    let landed = produce(&kafka, &names.requests, &outgoing);
    let results = Collector::start(&kafka, &names.results);
    let mut config = names
        .config(&kafka)
        .bound_input(&names.requests, "pause-two-seconds");
    config.shards = 1;
    config.max_in_flight_per_shard = LIMIT;

    let processor = Processor::start_ready("backpressure", &config);
    let rss = processor.sample_rss();
    let started = Instant::now();
    let got = results.wait_for_keys(N, RESULTS_TIMEOUT);
    let elapsed = started.elapsed();
    let hwm_kb = processor.proc_status_kb("VmHWM");
    let sampled_kb = rss.peak_kb();
    results.settle(Duration::from_secs(1), Duration::from_secs(5));

    let stderr = processor.stderr();
    let paused = format!("stepstream: backpressure: paused {}/", names.requests);
    let resumed = format!("stepstream: backpressure: resumed {}/", names.requests);
    let pauses = stderr.lines().filter(|l| l.contains(&paused)).count();
    let resumes = stderr.lines().filter(|l| l.contains(&resumed)).count();
    let intervals: Vec<(i64, i64)> = results
        .records()
        .iter()
        .filter_map(|r| {
            let v = r.json().ok()?;
            Some((
                timestamp_ms(v["startDate"].as_str()?)?,
                timestamp_ms(v["stopDate"].as_str()?)?,
            ))
        })
        .collect();
    let overlap = peak_overlap(&intervals);
    eprintln!(
        "backpressure: {got} of {N} results in {:.1} s; {pauses} pauses, {resumes} resumes; \
         peak executions at once {overlap} (limit {LIMIT}); peak RSS VmHWM {} kB, sampled VmRSS {sampled_kb} kB",
        elapsed.as_secs_f64(),
        hwm_kb.map_or("?".to_string(), |k| k.to_string())
    );

    let expected: BTreeMap<String, Expect<'_>> = (0..N)
        .map(|i| {
            let want = Expect {
                topic: &names.requests,
                landed: landed[i],
                machine: "pause-two-seconds",
                name: None,
                status: "SUCCEEDED",
                output: Some(paused_output(i)),
                error: None,
            };
            (format!("wait-{i:04}"), want)
        })
        .collect();
    let (problems, _) = check_all_results(&results, &expected);
    assert_no_problems("results under backpressure", &problems);
    assert!(pauses > 0, "stderr has no `{paused}<partition>` line");
    assert!(resumes > 0, "stderr has no `{resumed}<partition>` line");
    let peak_kb = hwm_kb.unwrap_or(0).max(sampled_kb);
    assert!(
        peak_kb < RSS_BOUND_KB,
        "peak RSS {peak_kb} kB is over {RSS_BOUND_KB} kB"
    );
    // The limit decides when partitions pause; records already fetched may overshoot it a
    // little, but never by the whole backlog.
    assert!(
        overlap <= 2 * LIMIT,
        "{overlap} executions ran at once on one shard with max_in_flight_per_shard = {LIMIT}"
    );
}
