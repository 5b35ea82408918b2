//! The AWS Step Functions API against a real Kafka broker, driven the way users drive AWS:
//! the real AWS CLI and boto3 with `--endpoint-url` / `endpoint_url`; and two processes of
//! one group, where a machine created through one process's API runs on requests the other
//! consumes.
//!
//! The broker is the one `scripts/kafka/start.sh` runs; the AWS CLI and boto3 come from
//! `scripts/aws/setup.sh` (see `tests/pipeline_kafka.rs` for running these tests alone).

mod api_support;
mod common;
mod kafka_support;

use std::time::{Duration, Instant};

use api_support::{api_addr, aws_cli, boto3, call, workload};
use kafka_support::{
    bootstrap, create_topics, produce, unique, Collector, Outgoing, Processor, ProcessorConfig,
    RESULTS_TIMEOUT,
};
use serde_json::{json, Value};

const ROLE: &str = "arn:aws:iam::123456789012:role/stepstream";

fn arn(name: &str) -> String {
    format!("arn:aws:states:local:000000000000:stateMachine:{name}")
}

/// One test's topics and group.
struct Setup {
    group: String,
    requests: String,
    results: String,
    errors: String,
    machines: common::Scratch,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let id = unique(tag);
        let kafka = bootstrap();
        let s = Setup {
            requests: format!("{id}.requests"),
            results: format!("{id}.results"),
            errors: format!("{id}.errors"),
            group: id.clone(),
            machines: common::Scratch::new(&id),
        };
        create_topics(&kafka, &[(&s.requests, 4), (&s.results, 4), (&s.errors, 1)]);
        s
    }

    /// Binds the order workload's Task resources for the machine `name`, wherever its
    /// definition comes from (the folder or the API).
    fn bind_order_tasks(&self, name: &str) {
        self.machines.write(
            &format!("{name}.tasks.json"),
            workload("order")["tasks"].to_string(),
        );
    }

    fn config(&self) -> ProcessorConfig {
        let mut c = ProcessorConfig::new(&bootstrap(), &self.group, &self.results, &self.errors)
            .envelope_input(&self.requests);
        c.state_machines_dir = self.machines.0.clone();
        c.api_listen = "127.0.0.1:0".into();
        c
    }
}

fn api_of(p: &Processor) -> String {
    api_addr(&p.stderr()).unwrap_or_else(|| panic!("no API address in {}", p.stderr()))
}

/// The order workload with one more state at the end, so an update shows in the output.
fn updated_order(def: &Value) -> Value {
    let mut d = def.clone();
    d["States"]["ShipOrder"]
        .as_object_mut()
        .unwrap()
        .remove("End");
    d["States"]["ShipOrder"]["Next"] = json!("MarkUpdated");
    d["States"]["MarkUpdated"] =
        json!({"Type": "Pass", "Result": "v2", "ResultPath": "$.version", "End": true});
    d
}

/// The start of every boto3 script here: a Step Functions client on the API under test,
/// with the host prefix turned off in its Config.
const BOTO3_CLIENT: &str = r#"import json, os, boto3
from botocore.config import Config
sfn = boto3.client("stepfunctions", endpoint_url=os.environ["ENDPOINT"], config=Config(inject_host_prefix=False))
"#;

#[test]
fn the_aws_cli_and_boto3_drive_stepstream_on_kafka() {
    let kafka = bootstrap();
    let s = Setup::new("api-cli");
    s.bind_order_tasks("orders");
    s.bind_order_tasks("orders-boto");
    let mut p = Processor::start_ready("api-cli", &s.config());
    let api = api_of(&p);
    let key = ("AKIDEXAMPLE", "any-secret");
    let order = workload("order");
    let def_file = s
        .machines
        .write("order-definition.json", order["definition"].to_string());
    let input_file = s
        .machines
        .write("order-input.json", order["input"].to_string());
    let file = |p: &std::path::Path| format!("file://{}", p.display());

    // create-state-machine from the seeds' order workflow
    let created = aws_cli(
        &api,
        &[
            "create-state-machine",
            "--name",
            "orders",
            "--type",
            "EXPRESS",
            "--definition",
            &file(&def_file),
            "--role-arn",
            ROLE,
        ],
        key,
    )
    .expect("create-state-machine");
    assert_eq!(created["stateMachineArn"], arn("orders"));
    assert!(created["creationDate"].as_f64().is_some(), "{created}");

    // list-state-machines, describe-state-machine
    let listed = aws_cli(&api, &["list-state-machines"], key).expect("list");
    let names: Vec<&str> = listed["stateMachines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(names.contains(&"orders"), "{listed}");
    let described = aws_cli(
        &api,
        &[
            "describe-state-machine",
            "--state-machine-arn",
            &arn("orders"),
        ],
        key,
    )
    .expect("describe");
    assert_eq!(described["name"], "orders");
    assert_eq!(described["type"], "EXPRESS");
    assert_eq!(described["status"], "ACTIVE");
    assert_eq!(described["roleArn"], ROLE);
    assert_eq!(described["definition"], order["definition"].to_string());

    // start-sync-execution, output checked
    let ran = aws_cli(
        &api,
        &[
            "start-sync-execution",
            "--state-machine-arn",
            &arn("orders"),
            "--name",
            "sync-1",
            "--input",
            &file(&input_file),
        ],
        key,
    )
    .expect("start-sync-execution");
    assert_eq!(ran["status"], "SUCCEEDED", "{ran}");
    assert_eq!(ran["name"], "sync-1");
    let output: Value = serde_json::from_str(ran["output"].as_str().unwrap()).unwrap();
    assert!(
        common::same_json(&output, &order["expected_output"]),
        "{output}"
    );

    // start-execution: the result is read back from the results topic
    let results = Collector::start(&kafka, &s.results);
    let started = aws_cli(
        &api,
        &[
            "start-execution",
            "--state-machine-arn",
            &arn("orders"),
            "--name",
            "async-1",
            "--input",
            &file(&input_file),
        ],
        key,
    )
    .expect("start-execution");
    assert!(started["startDate"].as_f64().is_some(), "{started}");
    assert_eq!(results.wait_for_keys(1, RESULTS_TIMEOUT), 1);
    let record = results.records()[0].json().unwrap();
    assert_eq!(results.records()[0].key_text(), "async-1");
    assert_eq!(record["executionArn"], started["executionArn"]);
    assert_eq!(record["status"], "SUCCEEDED");
    assert!(
        common::same_json(&record["output"], &order["expected_output"]),
        "{record}"
    );

    // update-state-machine, then the new definition runs
    let v2 = s.machines.write(
        "order-v2.json",
        updated_order(&order["definition"]).to_string(),
    );
    let updated = aws_cli(
        &api,
        &[
            "update-state-machine",
            "--state-machine-arn",
            &arn("orders"),
            "--definition",
            &file(&v2),
        ],
        key,
    )
    .expect("update-state-machine");
    assert!(updated["revisionId"].as_str().is_some(), "{updated}");
    let ran2 = aws_cli(
        &api,
        &[
            "start-sync-execution",
            "--state-machine-arn",
            &arn("orders"),
            "--input",
            &file(&input_file),
        ],
        key,
    )
    .expect("start-sync-execution after the update");
    let output2: Value = serde_json::from_str(ran2["output"].as_str().unwrap()).unwrap();
    assert_eq!(output2["version"], "v2", "{output2}");

    // test-state: the order's first Task, its Lambda answered by a mock, at DEBUG
    let first = order["definition"]["States"]["ValidateOrder"].to_string();
    let tested = aws_cli(
        &api,
        &[
            "test-state",
            "--definition",
            &first,
            "--role-arn",
            ROLE,
            "--input",
            &order["input"].to_string(),
            "--inspection-level",
            "DEBUG",
            "--mock",
            "{\"result\": \"{\\\"valid\\\": true}\"}",
        ],
        key,
    )
    .expect("test-state");
    assert_eq!(tested["status"], "SUCCEEDED", "{tested}");
    assert_eq!(tested["nextState"], "ReserveInventory");
    let params: Value = serde_json::from_str(
        tested["inspectionData"]["afterParameters"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(params["orderId"], order["input"]["orderId"]);
    let tested_out: Value = serde_json::from_str(tested["output"].as_str().unwrap()).unwrap();
    assert_eq!(tested_out["validation"], json!({"valid": true}));

    // validate-state-machine-definition on a broken definition: every diagnostic shown
    let mut broken = order["definition"].clone();
    broken["StartAt"] = json!("Nowhere");
    broken["States"]["ChargeCustomer"]["Next"] = json!("Missing");
    broken["States"]["ShipOrder"]["Resource"] = json!("arn:aws:states:::ecs:runTask.sync");
    let validated = aws_cli(
        &api,
        &[
            "validate-state-machine-definition",
            "--definition",
            &broken.to_string(),
        ],
        key,
    )
    .expect("validate");
    assert_eq!(validated["result"], "FAIL");
    let diagnostics = validated["diagnostics"].as_array().unwrap();
    for d in diagnostics {
        eprintln!(
            "diagnostic: {} {} at {}: {}",
            d["severity"], d["code"], d["location"], d["message"]
        );
    }
    let locations: Vec<&str> = diagnostics
        .iter()
        .filter_map(|d| d["location"].as_str())
        .collect();
    for at in [
        "/StartAt",
        "/States/ChargeCustomer/Next",
        "/States/ShipOrder/Resource",
    ] {
        assert!(locations.contains(&at), "{at} not in {validated}");
    }

    // delete-state-machine
    aws_cli(
        &api,
        &[
            "delete-state-machine",
            "--state-machine-arn",
            &arn("orders"),
        ],
        key,
    )
    .expect("delete");
    let gone = aws_cli(
        &api,
        &[
            "describe-state-machine",
            "--state-machine-arn",
            &arn("orders"),
        ],
        key,
    )
    .unwrap_err();
    assert!(gone.contains("StateMachineDoesNotExist"), "{gone}");

    // boto3, with the host prefix turned off in its Config
    let script = format!(
        r#"
{client}definition = {definition:?}
arn = sfn.create_state_machine(name="orders-boto", definition=definition, roleArn="{ROLE}", type="EXPRESS")["stateMachineArn"]
names = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
described = sfn.describe_state_machine(stateMachineArn=arn)
ran = sfn.start_sync_execution(stateMachineArn=arn, input={input:?})
started = sfn.start_execution(stateMachineArn=arn, name="boto-async")
validated = sfn.validate_state_machine_definition(definition='{{"StartAt": "X", "States": {{}}}}')
print(json.dumps({{"arn": arn, "names": names, "type": described["type"], "status": ran["status"],
                  "output": json.loads(ran["output"]), "executionArn": started["executionArn"],
                  "result": validated["result"], "diagnostics": len(validated["diagnostics"])}}))
"#,
        client = BOTO3_CLIENT,
        definition = order["definition"].to_string(),
        input = order["input"].to_string(),
    );
    let printed = boto3(&api, &script).expect("the boto3 script runs");
    let b: Value = serde_json::from_str(printed.trim()).unwrap();
    assert_eq!(b["arn"], arn("orders-boto"));
    assert!(b["names"]
        .as_array()
        .unwrap()
        .contains(&json!("orders-boto")));
    assert_eq!(b["type"], "EXPRESS");
    assert_eq!(b["status"], "SUCCEEDED");
    assert!(
        common::same_json(&b["output"], &order["expected_output"]),
        "{b}"
    );
    assert_eq!(b["result"], "FAIL");
    assert!(b["diagnostics"].as_u64() >= Some(1));
    // The asynchronous run's request is consumed after the answer; deleting the machine
    // before its result is in would race it (its request then finds no machine).
    assert_eq!(results.wait_for_keys(2, RESULTS_TIMEOUT), 2);
    let deleted = boto3(
        &api,
        &format!(
            r#"
{client}sfn.delete_state_machine(stateMachineArn="{arn}")
try:
    sfn.describe_state_machine(stateMachineArn="{arn}")
    missing = None
except sfn.exceptions.StateMachineDoesNotExist as e:
    missing = e.response["Error"]["Code"]
print(json.dumps({{"missing": missing}}))
"#,
            client = BOTO3_CLIENT,
            arn = arn("orders-boto")
        ),
    )
    .expect("the boto3 delete script runs");
    let d: Value = serde_json::from_str(deleted.trim()).unwrap();
    assert_eq!(d["missing"], "StateMachineDoesNotExist");
    let boto_result = results
        .records()
        .into_iter()
        .find(|r| r.key_text() == "boto-async")
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(boto_result["executionArn"], b["executionArn"]);
    assert!(p.exited().is_none(), "{}", p.stderr_tail(30));
}

/// A free port on 127.0.0.1 (closed again, so a child can take it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `stepstream_executions_total{state_machine=NAME,status="succeeded"}` of one process.
fn succeeded(metrics_addr: &str, machine: &str) -> u64 {
    let mut s = std::net::TcpStream::connect(metrics_addr).expect("metrics endpoint");
    use std::io::{Read, Write};
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {metrics_addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let wanted = format!("state_machine=\"{machine}\",status=\"succeeded\"");
    text.lines()
        .filter(|l| l.starts_with("stepstream_executions_total{") && l.contains(&wanted))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[test]
fn a_machine_created_through_one_process_runs_on_requests_the_other_consumes() {
    let kafka = bootstrap();
    let s = Setup::new("api-two");
    let (metrics_a, metrics_b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let mut ca = s.config();
    ca.metrics_listen = metrics_a.clone();
    let mut cb = s.config();
    cb.metrics_listen = metrics_b.clone();
    let mut a = Processor::start_ready("api-a", &ca);
    let mut b = Processor::start_ready("api-b", &cb);
    // Both must hold input partitions before the requests go out.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (state, members) = kafka_support::describe_group(&kafka, &s.group);
        let holding = members
            .iter()
            .filter(|m| m.assignment.get(&s.requests).is_some_and(|p| !p.is_empty()))
            .count();
        if state == "Stable" && holding == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the group did not settle: {state} {members:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let def = json!({"StartAt": "Double", "States": {"Double": {"Type": "Pass",
        "Parameters": {"i.$": "$.i", "twice.$": "States.MathAdd($.i, $.i)"}, "End": true}}});
    let created = call(
        &api_of(&a),
        "CreateStateMachine",
        &json!({"name": "shared", "type": "EXPRESS", "roleArn": ROLE, "definition": def.to_string()}),
    );
    assert_eq!(created.0, 200, "{created:?}");
    let made = Instant::now();
    // Process b learns it from the definitions topic.
    let b_api = api_of(&b);
    loop {
        let seen = call(
            &b_api,
            "DescribeStateMachine",
            &json!({"stateMachineArn": arn("shared")}),
        );
        if seen.0 == 200 {
            eprintln!(
                "process b knew the machine {:.0} ms after process a created it",
                made.elapsed().as_secs_f64() * 1000.0
            );
            break;
        }
        assert!(made.elapsed() < Duration::from_secs(30), "{seen:?}");
        std::thread::sleep(Duration::from_millis(20));
    }

    let results = Collector::start(&kafka, &s.results);
    let n = 64;
    let records: Vec<Outgoing> = (0..n)
        .map(|i| {
            Outgoing::new(
                format!("req-{i}"),
                json!({"stateMachine": "shared", "input": {"i": i}}).to_string(),
            )
        })
        .collect();
    produce(&kafka, &s.requests, &records);
    assert_eq!(results.wait_for_keys(n, RESULTS_TIMEOUT), n);
    for r in results.records() {
        let v = r.json().unwrap();
        let i = v["output"]["i"].as_i64().unwrap();
        assert_eq!(v["status"], "SUCCEEDED", "{v}");
        assert_eq!(v["output"]["twice"], 2 * i, "{v}");
    }
    let (on_a, on_b) = (
        succeeded(&metrics_a, "shared"),
        succeeded(&metrics_b, "shared"),
    );
    eprintln!("executions of \"shared\": {on_a} on process a, {on_b} on process b");
    assert!(on_b > 0, "process b ran none of the requests");
    assert_eq!(on_a + on_b, n as u64);
    assert!(a.exited().is_none() && b.exited().is_none());
}
