//! The AWS Step Functions API of `stepstream run` with no Kafka configured (the embedded
//! broker): how a developer uses it locally. Bad requests get AWS's error shape and never
//! stop the process; SigV4 signatures are checked when access keys are configured.
//!
//! The Kafka side (the AWS CLI and boto3 end to end, two processes of one group) is in
//! `tests/api_kafka.rs`.

mod api_support;
mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api_support::{api_addr, aws_cli, call, raw};
use serde_json::{json, Value};

/// `stepstream run` on the embedded broker with the API on a free port; killed when dropped.
struct Local {
    child: Child,
    scratch: common::Scratch,
    addr: String,
}

impl Local {
    fn start(tag: &str, extra_config: &str) -> Local {
        let scratch = common::Scratch::new(tag);
        let machines = scratch.0.join("machines");
        std::fs::create_dir_all(&machines).unwrap();
        let order = workload("order");
        std::fs::write(
            machines.join("order.asl.json"),
            order["definition"].to_string(),
        )
        .unwrap();
        std::fs::write(
            machines.join("order.tasks.json"),
            order["tasks"].to_string(),
        )
        .unwrap();
        let config = scratch.write(
            "config.toml",
            format!(
                "[kafka]\nbrokers = \"\"\n\n[engine]\nstate_machines_dir = {:?}\nshards = 2\n\n\
                 [metrics]\nlisten = \"off\"\n\n[api]\nlisten = \"127.0.0.1:0\"\n{extra_config}",
                machines.display().to_string()
            ),
        );
        let stderr = std::fs::File::create(scratch.0.join("stderr.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_stepstream"))
            .args(["run", "--config"])
            .arg(&config)
            .current_dir(&scratch.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("stepstream starts");
        let mut local = Local {
            child,
            scratch,
            addr: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = local.stderr();
            if log.contains("stepstream: ready") {
                local.addr = api_addr(&log).expect("the API address is logged");
                return local;
            }
            assert!(
                local.child.try_wait().unwrap().is_none(),
                "stepstream exited: {log}"
            );
            assert!(Instant::now() < deadline, "not ready in 60 s: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.scratch.0.join("stderr.log")).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workload(name: &str) -> Value {
    let path = common::root().join(format!("../shared/bench/workloads/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn arn(name: &str) -> String {
    format!("arn:aws:states:local:000000000000:stateMachine:{name}")
}

/// AWS's error shape: `__type` names the error, `message` says why.
fn assert_error(answer: &(u16, Value), status: u16, kind: &str) {
    assert_eq!(answer.0, status, "{answer:?}");
    assert_eq!(answer.1["__type"], kind, "{answer:?}");
    assert!(
        answer.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{answer:?}"
    );
}

#[test]
fn the_api_runs_a_machine_created_through_it_without_kafka() {
    let local = Local::start("api-local", "");
    let order = workload("order");
    let created = call(
        &local.addr,
        "CreateStateMachine",
        &json!({"name": "hello", "type": "EXPRESS", "roleArn": "arn:aws:iam::1:role/r",
                "definition": json!({"StartAt": "P", "States": {"P": {"Type": "Pass",
                    "Parameters": {"greeting.$": "States.Format('hello {}', $.who)"}, "End": true}}}).to_string()}),
    );
    assert_eq!(created.0, 200, "{created:?}");
    assert_eq!(created.1["stateMachineArn"], arn("hello"));
    let run = call(
        &local.addr,
        "StartSyncExecution",
        &json!({"stateMachineArn": arn("hello"), "input": "{\"who\": \"you\"}"}),
    );
    assert_eq!(run.0, 200, "{run:?}");
    assert_eq!(run.1["status"], "SUCCEEDED");
    assert_eq!(run.1["output"], "{\"greeting\":\"hello you\"}");
    assert_eq!(run.1["input"], "{\"who\": \"you\"}");
    assert_eq!(run.1["inputDetails"], json!({"included": true}));
    assert_eq!(run.1["outputDetails"], json!({"included": true}));
    assert!(run.1["startDate"].as_f64().unwrap() > 1.7e9);
    assert!(run.1["billingDetails"]["billedDurationInMilliseconds"].as_u64() >= Some(100));
    // The folder's machine is in the embedded broker's definitions topic too.
    let folder = call(
        &local.addr,
        "StartSyncExecution",
        &json!({"stateMachineArn": arn("order"), "input": order["input"].to_string()}),
    );
    assert_eq!(folder.1["status"], "SUCCEEDED", "{folder:?}");
    let output: Value = serde_json::from_str(folder.1["output"].as_str().unwrap()).unwrap();
    assert!(
        common::same_json(&output, &order["expected_output"]),
        "{output}"
    );
    // A failing execution is still a 200, with error and cause and no output.
    let failing = json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Oops", "Cause": "on purpose"}}});
    assert_eq!(
        call(
            &local.addr,
            "CreateStateMachine",
            &json!({"name": "fails", "type": "EXPRESS",
            "roleArn": "arn:aws:iam::1:role/r", "definition": failing.to_string()})
        )
        .0,
        200
    );
    let failed = call(
        &local.addr,
        "StartSyncExecution",
        &json!({"stateMachineArn": arn("fails")}),
    );
    assert_eq!(failed.0, 200, "{failed:?}");
    assert_eq!(failed.1["status"], "FAILED");
    assert_eq!(failed.1["error"], "Oops");
    assert_eq!(failed.1["cause"], "on purpose");
    assert!(failed.1.get("output").is_none(), "{failed:?}");
}

#[test]
fn bad_requests_get_aws_error_shapes_and_the_process_lives_on() {
    let mut local = Local::start("api-bad", "");
    let a = local.addr.clone();
    assert_error(
        &call(&a, "DescribeExecutionHistory", &json!({})),
        400,
        "UnknownOperationException",
    );
    assert_error(
        &raw(&a, "POST", None, b"{}"),
        400,
        "UnknownOperationException",
    );
    assert_error(
        &raw(&a, "GET", Some("AWSStepFunctions.ListStateMachines"), b""),
        400,
        "UnknownOperationException",
    );
    assert_error(
        &raw(
            &a,
            "POST",
            Some("AWSStepFunctions.CreateStateMachine"),
            b"{\"name\": ",
        ),
        400,
        "SerializationException",
    );
    assert_error(
        &raw(
            &a,
            "POST",
            Some("AWSStepFunctions.ListStateMachines"),
            b"[1, 2]",
        ),
        400,
        "SerializationException",
    );
    // A definition over AWS's 1,048,576 characters (a valid machine padded with a Comment).
    let big = json!({"Comment": "x".repeat(1_048_600), "StartAt": "P",
                     "States": {"P": {"Type": "Pass", "End": true}}})
    .to_string();
    let too_big = call(
        &a,
        "CreateStateMachine",
        &json!({"name": "big", "type": "EXPRESS", "roleArn": "arn:aws:iam::1:role/r", "definition": big}),
    );
    assert_error(&too_big, 400, "ValidationException");
    assert!(too_big.1["message"].as_str().unwrap().contains("1048576"));
    // A body no operation takes is refused before it is read whole.
    let huge = vec![b' '; 5 << 20];
    assert_error(
        &raw(
            &a,
            "POST",
            Some("AWSStepFunctions.CreateStateMachine"),
            &huge,
        ),
        413,
        "RequestEntityTooLargeException",
    );
    assert_error(
        &call(
            &a,
            "DescribeStateMachine",
            &json!({"stateMachineArn": arn("nope")}),
        ),
        400,
        "StateMachineDoesNotExist",
    );
    assert_error(
        &call(
            &a,
            "StartSyncExecution",
            &json!({"stateMachineArn": arn("nope")}),
        ),
        400,
        "StateMachineDoesNotExist",
    );
    assert_error(
        &call(
            &a,
            "StartExecution",
            &json!({"stateMachineArn": "not-an-arn"}),
        ),
        400,
        "InvalidArn",
    );
    assert_error(
        &call(&a, "DescribeStateMachine", &json!({})),
        400,
        "ValidationException",
    );
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}).to_string();
    assert_error(
        &call(
            &a,
            "CreateStateMachine",
            &json!({"name": "a/b", "type": "EXPRESS",
            "roleArn": "arn:aws:iam::1:role/r", "definition": def}),
        ),
        400,
        "InvalidName",
    );
    // stepstream runs Express workflows only; Standard-only integrations get AWS's message.
    assert_error(
        &call(
            &a,
            "CreateStateMachine",
            &json!({"name": "std",
            "roleArn": "arn:aws:iam::1:role/r", "definition": def}),
        ),
        400,
        "ValidationException",
    );
    let sync_job = json!({"StartAt": "T", "States": {"T": {"Type": "Task",
        "Resource": "arn:aws:states:::glue:startJobRun.sync", "End": true}}})
    .to_string();
    let refused = call(
        &a,
        "CreateStateMachine",
        &json!({"name": "job", "type": "EXPRESS", "roleArn": "arn:aws:iam::1:role/r", "definition": sync_job}),
    );
    assert_error(&refused, 400, "InvalidDefinition");
    assert!(refused.1["message"]
        .as_str()
        .unwrap()
        .contains("Express state machine does not support '.sync' service integration"));
    assert_error(
        &call(
            &a,
            "CreateStateMachine",
            &json!({"name": "order", "type": "EXPRESS",
            "roleArn": "arn:aws:iam::1:role/r", "definition": def}),
        ),
        400,
        "StateMachineAlreadyExists",
    );
    assert_error(
        &call(
            &a,
            "StartSyncExecution",
            &json!({"stateMachineArn": arn("order"), "input": "{oops"}),
        ),
        400,
        "InvalidExecutionInput",
    );
    let deep = "[".repeat(100) + &"]".repeat(100);
    assert_error(
        &call(
            &a,
            "StartSyncExecution",
            &json!({"stateMachineArn": arn("order"), "input": deep}),
        ),
        400,
        "InvalidExecutionInput",
    );
    assert_error(
        &call(
            &a,
            "StartSyncExecution",
            &json!({"stateMachineArn": arn("order"),
            "input": format!("\"{}\"", "x".repeat(300_000))}),
        ),
        400,
        "ValidationException",
    );
    assert!(local.alive(), "{}", local.stderr());
    let listed = call(&a, "ListStateMachines", &json!({}));
    assert_eq!(listed.0, 200);
    assert_eq!(listed.1["stateMachines"][0]["name"], "order");
}

#[test]
fn validate_reports_every_problem_with_its_location() {
    let local = Local::start("api-validate", "");
    let broken = json!({"StartAt": "Missing", "States": {
        "A": {"Type": "Pass", "Next": "Nowhere"},
        "B": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "End": true}}})
    .to_string();
    let (status, body) = call(
        &local.addr,
        "ValidateStateMachineDefinition",
        &json!({"definition": broken, "type": "EXPRESS"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "FAIL");
    let found: Vec<(String, String)> = body["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["severity"], "ERROR");
            assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()));
            (
                d["code"].as_str().unwrap().to_string(),
                d["location"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        ("MISSING_TRANSITION_TARGET", "/States/A/Next"),
        ("MISSING_TRANSITION_TARGET", "/StartAt"),
        ("SCHEMA_VALIDATION_FAILED", "/States/B/Resource"),
    ] {
        assert!(
            found.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} not in {found:?}"
        );
    }
    let ok = call(
        &local.addr,
        "ValidateStateMachineDefinition",
        &json!({"definition": "{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"End\":true}}}"}),
    );
    assert_eq!(
        ok.1,
        json!({"result": "OK", "diagnostics": [], "truncated": false})
    );
    let not_json = call(
        &local.addr,
        "ValidateStateMachineDefinition",
        &json!({"definition": "{"}),
    );
    assert_eq!(
        not_json.1["diagnostics"][0]["code"],
        "INVALID_JSON_DESCRIPTION"
    );
}

#[test]
fn test_state_reports_each_inspection_level() {
    let local = Local::start("api-test-state", "");
    let task = json!({"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:F",
        "InputPath": "$.order", "Parameters": {"id.$": "$.id"},
        "ResultSelector": {"ok.$": "$.ok"}, "ResultPath": "$.checked", "Next": "Ship",
        "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 2}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handle"}]})
    .to_string();
    let input = "{\"order\": {\"id\": 7}}";
    let test = |level: &str, mock: Value| {
        call(
            &local.addr,
            "TestState",
            &json!({"definition": task, "roleArn": "arn:aws:iam::1:role/r", "input": input,
                    "inspectionLevel": level, "mock": mock}),
        )
    };
    let info = test("INFO", json!({"result": "{\"ok\": true, \"extra\": 1}"}));
    assert_eq!(info.0, 200, "{info:?}");
    assert_eq!(info.1["status"], "SUCCEEDED");
    assert_eq!(info.1["nextState"], "Ship");
    assert_eq!(
        info.1["output"],
        "{\"order\":{\"id\":7},\"checked\":{\"ok\":true}}"
    );
    assert!(info.1.get("inspectionData").is_none());
    let debug = test("DEBUG", json!({"result": "{\"ok\": true, \"extra\": 1}"}));
    let data = &debug.1["inspectionData"];
    assert_eq!(data["input"], input);
    assert_eq!(data["afterInputPath"], "{\"id\":7}");
    assert_eq!(data["afterParameters"], "{\"id\":7}");
    assert_eq!(data["result"], "{\"ok\":true,\"extra\":1}");
    assert_eq!(data["afterResultSelector"], "{\"ok\":true}");
    assert_eq!(
        data["afterResultPath"],
        "{\"order\":{\"id\":7},\"checked\":{\"ok\":true}}"
    );
    let trace = test("TRACE", json!({"result": "{\"ok\": true}"}));
    assert_eq!(trace.1["inspectionData"]["afterParameters"], "{\"id\":7}");
    // An error a retrier matches is RETRIABLE; one only a catcher matches is CAUGHT_ERROR.
    let busy = test(
        "INFO",
        json!({"errorOutput": {"error": "Busy", "cause": "try later"}}),
    );
    assert_eq!(busy.1["status"], "RETRIABLE", "{busy:?}");
    assert_eq!(
        busy.1["inspectionData"]["errorDetails"]["retryBackoffIntervalSeconds"],
        2
    );
    let caught = test(
        "INFO",
        json!({"errorOutput": {"error": "Broken", "cause": "no"}}),
    );
    assert_eq!(caught.1["status"], "CAUGHT_ERROR", "{caught:?}");
    assert_eq!(caught.1["nextState"], "Handle");
    assert_eq!(
        caught.1["output"],
        "{\"order\":{\"id\":7},\"error\":{\"Error\":\"Broken\",\"Cause\":\"no\"}}"
    );
    let fail = call(
        &local.addr,
        "TestState",
        &json!({"definition": "{\"Type\":\"Fail\",\"Error\":\"E\",\"Cause\":\"C\"}", "roleArn": "r"}),
    );
    assert_eq!(fail.1["status"], "FAILED");
    assert_eq!(fail.1["error"], "E");
    let choice = call(
        &local.addr,
        "TestState",
        &json!({"definition": "{\"Type\":\"Choice\",\"Choices\":[{\"Variable\":\"$.n\",\"NumericGreaterThan\":1,\"Next\":\"Big\"}],\"Default\":\"Small\"}",
                "roleArn": "r", "input": "{\"n\": 5}"}),
    );
    assert_eq!(choice.1["nextState"], "Big", "{choice:?}");
}

#[test]
fn signed_requests_are_checked_against_configured_keys() {
    let local = Local::start(
        "api-keys",
        "\n[api.access_keys]\nAKIDSTEPSTREAM = \"right-secret\"\n",
    );
    let listed = aws_cli(
        &local.addr,
        &["list-state-machines"],
        ("AKIDSTEPSTREAM", "right-secret"),
    )
    .expect("a request signed with a configured key is accepted");
    assert_eq!(listed["stateMachines"][0]["name"], "order");
    let wrong = aws_cli(
        &local.addr,
        &["list-state-machines"],
        ("AKIDSTEPSTREAM", "wrong-secret"),
    )
    .unwrap_err();
    assert!(wrong.contains("InvalidSignatureException"), "{wrong}");
    let unknown = aws_cli(&local.addr, &["list-state-machines"], ("OTHER", "x")).unwrap_err();
    assert!(unknown.contains("UnrecognizedClientException"), "{unknown}");
    assert_error(
        &call(&local.addr, "ListStateMachines", &json!({})),
        400,
        "UnrecognizedClientException",
    );
}
