//! The AWS Step Functions API of `stepstream run` with no Kafka configured (the embedded
//! broker): how a developer uses it locally. Bad requests get AWS's error shape and never
//! stop the process; SigV4 signatures are checked when access keys are configured.
//!
//! The Kafka side (the AWS CLI and boto3 end to end, two processes of one group) is in
//! `tests/api_kafka.rs`.

mod api_support;
mod common;

use api_support::{aws_cli, call, raw, workload, Local};
use serde_json::{json, Value};

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
    // The input is handed back as the body wrote it; escapes serde_json would not choose
    // (Python's json.dumps writes `\u00e9`, a client may write `\/`) still decode to the
    // same string.
    let escaped = format!(
        r#"{{"stateMachineArn": "{}", "input": "{{\"who\": \"Ren\u00e9e \/ \ud83d\ude00\"}}"}}"#,
        arn("hello")
    );
    let run = raw(
        &local.addr,
        "POST",
        Some("AWSStepFunctions.StartSyncExecution"),
        escaped.as_bytes(),
    );
    assert_eq!(run.1["status"], "SUCCEEDED", "{run:?}");
    assert_eq!(run.1["input"], "{\"who\": \"Renée / 😀\"}");
    assert_eq!(run.1["output"], "{\"greeting\":\"hello Renée / 😀\"}");
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
    // Which handler took it is inspection data: DEBUG and TRACE only, as on AWS.
    let busy = test(
        "INFO",
        json!({"errorOutput": {"error": "Busy", "cause": "try later"}}),
    );
    assert_eq!(busy.1["status"], "RETRIABLE", "{busy:?}");
    assert_eq!(busy.1["error"], "Busy");
    assert!(busy.1.get("inspectionData").is_none(), "{busy:?}");
    let busy = test(
        "DEBUG",
        json!({"errorOutput": {"error": "Busy", "cause": "try later"}}),
    );
    let details = &busy.1["inspectionData"]["errorDetails"];
    assert_eq!(details["retryIndex"], 0, "{busy:?}");
    assert_eq!(details["retryBackoffIntervalSeconds"], 2);
    // Up to the failed call: the input and what it was sent, no result.
    assert_eq!(busy.1["inspectionData"]["afterParameters"], "{\"id\":7}");
    assert!(busy.1["inspectionData"].get("result").is_none());
    let caught = test(
        "DEBUG",
        json!({"errorOutput": {"error": "Broken", "cause": "no"}}),
    );
    assert_eq!(caught.1["status"], "CAUGHT_ERROR", "{caught:?}");
    assert_eq!(caught.1["nextState"], "Handle");
    assert_eq!(caught.1["error"], "Broken");
    assert_eq!(caught.1["cause"], "no");
    assert_eq!(caught.1["inspectionData"]["errorDetails"]["catchIndex"], 0);
    assert_eq!(
        caught.1["output"],
        "{\"order\":{\"id\":7},\"error\":{\"Error\":\"Broken\",\"Cause\":\"no\"}}"
    );
    // stateConfiguration.retrierRetryCount: the backoff grows with the retries made (2 s ×
    // 2.0^2), and once MaxAttempts (3, the default) are used the error goes to Catch.
    let retried = |count: u64| {
        call(
            &local.addr,
            "TestState",
            &json!({"definition": task, "roleArn": "arn:aws:iam::1:role/r", "input": input,
                    "inspectionLevel": "DEBUG", "stateConfiguration": {"retrierRetryCount": count},
                    "mock": {"errorOutput": {"error": "Busy", "cause": "try later"}}}),
        )
    };
    let second = retried(2);
    assert_eq!(second.1["status"], "RETRIABLE", "{second:?}");
    assert_eq!(
        second.1["inspectionData"]["errorDetails"]["retryBackoffIntervalSeconds"],
        8
    );
    let exhausted = retried(3);
    assert_eq!(exhausted.1["status"], "CAUGHT_ERROR", "{exhausted:?}");
    assert_eq!(exhausted.1["nextState"], "Handle");
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

/// TestState of one JSONata state at DEBUG: the input, the data after Arguments, the result.
fn test_jsonata(local: &Local, state: Value, input: &str, extra: Value) -> Value {
    let mut body = json!({"definition": state.to_string(), "roleArn": "arn:aws:iam::1:role/r",
                          "input": input, "inspectionLevel": "DEBUG"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let answer = call(&local.addr, "TestState", &body);
    assert_eq!(answer.0, 200, "{answer:?}");
    answer.1
}

/// A JSON string field parsed, to compare without caring for key order or spacing.
fn parsed(v: &Value) -> Value {
    serde_json::from_str(v.as_str().unwrap_or_else(|| panic!("{v} is not a string")))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

#[test]
fn test_state_inspects_jsonata_states_and_variables() {
    let local = Local::start("api-test-state-jsonata", "");
    let task = json!({"Type": "Task", "QueryLanguage": "JSONata",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Arguments": {"FunctionName": "price", "Payload": "{% $states.input.n * $factor %}"},
        "Assign": {"last": "{% $states.result.v %}"},
        "Output": {"total": "{% $states.result.v + $factor %}"},
        "Catch": [{"ErrorEquals": ["Busy"], "Next": "Wait"},
                  {"ErrorEquals": ["States.ALL"], "Output": "{% $states.errorOutput %}",
                   "Assign": {"failed": "{% $states.errorOutput.Error %}"}, "Next": "Handle"}],
        "Next": "Ship"});
    let mock_result = json!({"mock": {"result": "{\"v\": 5}"}, "variables": "{\"factor\": 3}"});
    let ok = test_jsonata(&local, task.clone(), "{\"n\": 7}", mock_result);
    assert_eq!(ok["status"], "SUCCEEDED", "{ok}");
    assert_eq!(ok["nextState"], "Ship");
    assert_eq!(parsed(&ok["output"]), json!({"total": 8}));
    let data = &ok["inspectionData"];
    assert_eq!(data["input"], "{\"n\": 7}");
    // What the task was sent and what it answered; JSONPath's steps are not reported.
    assert_eq!(
        parsed(&data["afterArguments"]),
        json!({"FunctionName": "price", "Payload": 21})
    );
    assert_eq!(parsed(&data["result"]), json!({"v": 5}));
    for absent in [
        "afterInputPath",
        "afterParameters",
        "afterResultSelector",
        "afterResultPath",
    ] {
        assert!(data.get(absent).is_none(), "{absent} in {data}");
    }
    // The variables after the state: those given, then what it assigned.
    assert_eq!(parsed(&data["variables"]), json!({"factor": 3, "last": 5}));

    // A caught error: the catcher's Output and Assign as the engine applies them.
    let caught = test_jsonata(
        &local,
        task.clone(),
        "{\"n\": 7}",
        json!({"mock": {"errorOutput": {"error": "Broken", "cause": "no"}}, "variables": "{\"factor\": 3}"}),
    );
    assert_eq!(caught["status"], "CAUGHT_ERROR", "{caught}");
    assert_eq!(caught["nextState"], "Handle");
    assert_eq!(
        parsed(&caught["output"]),
        json!({"Error": "Broken", "Cause": "no"})
    );
    let data = &caught["inspectionData"];
    assert_eq!(data["errorDetails"], json!({"catchIndex": 1}));
    assert_eq!(
        parsed(&data["afterArguments"]),
        json!({"FunctionName": "price", "Payload": 21})
    );
    assert!(data.get("result").is_none(), "{data}");
    assert_eq!(
        parsed(&data["variables"]),
        json!({"factor": 3, "failed": "Broken"})
    );

    // A Pass state: the input and the variables only (it has no Arguments and no call).
    let pass = json!({"Type": "Pass", "QueryLanguage": "JSONata",
        "Assign": {"seen": "{% $states.input.n %}"}, "Output": "{% $count + 1 %}", "End": true});
    let passed = test_jsonata(
        &local,
        pass,
        "{\"n\": 2}",
        json!({"variables": "{\"count\": 41}"}),
    );
    assert_eq!(passed["output"], "42", "{passed}");
    assert!(passed.get("nextState").is_none());
    assert_eq!(
        passed["inspectionData"],
        json!({"input": "{\"n\": 2}", "variables": "{\"count\":41,\"seen\":2}"})
    );
    // A JSONPath state's Assign is reported too, and INFO reports no inspection data.
    let jsonpath = json!({"Type": "Pass", "Assign": {"kept.$": "$.n"}, "End": true});
    let debug = test_jsonata(&local, jsonpath.clone(), "{\"n\": 2}", json!({}));
    assert_eq!(
        parsed(&debug["inspectionData"]["variables"]),
        json!({"kept": 2})
    );
    let info = test_jsonata(
        &local,
        jsonpath,
        "{\"n\": 2}",
        json!({"inspectionLevel": "INFO"}),
    );
    assert!(info.get("inspectionData").is_none(), "{info}");

    // One Context object for the whole test: what the inspection data shows and what the
    // state did agree on `$$`, and the execution runs as the role the request names.
    let reads_context = json!({"Type": "Pass", "End": true, "Parameters": {
        "id.$": "$$.Execution.Id", "role.$": "$$.Execution.RoleArn", "state.$": "$$.State.Name"}});
    let ctx = test_jsonata(&local, reads_context, "{}", json!({}));
    let out = parsed(&ctx["output"]);
    assert_eq!(parsed(&ctx["inspectionData"]["afterParameters"]), out);
    assert_eq!(out["role"], "arn:aws:iam::1:role/r");
    assert_eq!(
        out["state"], "StateName",
        "AWS names the tested state StateName"
    );
    assert!(
        out["id"].as_str().unwrap().starts_with("arn:aws:states:"),
        "{out}"
    );

    // Bad requests: a mock for a state that calls nothing, a context without a mock,
    // revealSecrets where the config does not allow it, variables that are not an object.
    let choice = json!({"Type": "Choice", "Choices": [], "Default": "X"}).to_string();
    for (extra, kind) in [
        (json!({"mock": {"result": "{}"}}), "ValidationException"),
        (json!({"context": "{}"}), "ValidationException"),
        (json!({"revealSecrets": true}), "AccessDeniedException"),
        (json!({"variables": "[1]"}), "ValidationException"),
    ] {
        let mut body = json!({"definition": choice, "input": "{}"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        assert_error(&call(&local.addr, "TestState", &body), 400, kind);
    }

    // The AWS CLI passes variables, a mock and the inspection level through.
    let cli = aws_cli(
        &local.addr,
        &[
            "test-state",
            "--definition",
            &task.to_string(),
            "--role-arn",
            "arn:aws:iam::1:role/r",
            "--input",
            "{\"n\": 2}",
            "--variables",
            "{\"factor\": 10}",
            "--mock",
            "{\"result\": \"{\\\"v\\\": 1}\"}",
            "--inspection-level",
            "DEBUG",
        ],
        ("test", "test"),
    )
    .expect("aws stepfunctions test-state succeeds");
    assert_eq!(cli["status"], "SUCCEEDED", "{cli}");
    assert_eq!(parsed(&cli["output"]), json!({"total": 11}));
    assert_eq!(
        parsed(&cli["inspectionData"]["afterArguments"]),
        json!({"FunctionName": "price", "Payload": 20})
    );
    assert_eq!(
        parsed(&cli["inspectionData"]["variables"]),
        json!({"factor": 10, "last": 1})
    );
}

#[test]
fn test_state_takes_a_mock_for_a_whole_map_or_parallel_state() {
    let local = Local::start("api-test-state-map", "");
    let map = json!({"Type": "Map", "ItemsPath": "$.items", "MaxConcurrencyPath": "$.limit",
        "ToleratedFailureCount": 1,
        "ItemProcessor": {"StartAt": "Charge", "States": {"Charge": {"Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke", "End": true}}},
        "ResultSelector": {"first.$": "$[0]"}, "ResultPath": "$.charged",
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Refund"}],
        "Next": "Ship"});
    let input = "{\"items\": [1, 2], \"limit\": 2}";
    let ok = test_jsonata(
        &local,
        map.clone(),
        input,
        json!({"mock": {"result": "[10, 20]"}}),
    );
    // The mock is the Map's result: ResultSelector and ResultPath apply to it, and the
    // iterations (whose Lambda calls nothing answers here) do not run.
    assert_eq!(ok["status"], "SUCCEEDED", "{ok}");
    assert_eq!(ok["nextState"], "Ship");
    assert_eq!(
        parsed(&ok["output"]),
        json!({"items": [1, 2], "limit": 2, "charged": {"first": 10}})
    );
    let data = &ok["inspectionData"];
    assert_eq!(parsed(&data["afterItemsPath"]), json!([1, 2]));
    assert_eq!(data["maxConcurrency"], 2, "{data}");
    assert_eq!(data["toleratedFailureCount"], 1);
    let failed = test_jsonata(
        &local,
        map,
        input,
        json!({"mock": {"errorOutput": {"error": "States.ExceedToleratedFailureThreshold", "cause": "too many"}}}),
    );
    assert_eq!(failed["status"], "CAUGHT_ERROR", "{failed}");
    assert_eq!(failed["nextState"], "Refund");
    assert_eq!(
        parsed(&failed["output"])["error"]["Error"],
        "States.ExceedToleratedFailureThreshold"
    );
    // A Parallel state's mock is its branches' outputs, one per branch.
    let parallel = json!({"Type": "Parallel", "QueryLanguage": "JSONata",
        "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
                     {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}],
        "Output": "{% $states.result[1] %}", "End": true});
    let branches = test_jsonata(
        &local,
        parallel.clone(),
        "{}",
        json!({"mock": {"result": "[\"a\", \"b\"]"}}),
    );
    assert_eq!(branches["output"], "\"b\"", "{branches}");
    // A Task with no mock calls something, which AWS does as a role: the role is required.
    let no_role = call(
        &local.addr,
        "TestState",
        &json!({"definition": json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                                     "End": true}).to_string()}),
    );
    assert_error(&no_role, 400, "ValidationException");
    assert!(no_role.1["message"].as_str().unwrap().contains("RoleArn"));
    // A JSONata Map's expressions are evaluated for the inspection data.
    let jsonata_map = json!({"Type": "Map", "QueryLanguage": "JSONata",
        "Items": "{% $states.input.items %}", "MaxConcurrency": "{% $states.input.limit + 1 %}",
        "ToleratedFailurePercentage": 50,
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true});
    let ran = test_jsonata(
        &local,
        jsonata_map.clone(),
        input,
        json!({"mock": {"result": "[1, 2]"}}),
    );
    assert_eq!(parsed(&ran["output"]), json!([1, 2]), "{ran}");
    assert_eq!(ran["inspectionData"]["maxConcurrency"], 3);
    assert_eq!(ran["inspectionData"]["toleratedFailurePercentage"], 50);
    // Without a mock AWS refuses to test a Map or Parallel state (its recording
    // `test_state_type_requires_mock`).
    for state in [jsonata_map, parallel] {
        let body = json!({"definition": state.to_string(), "roleArn": "arn:aws:iam::1:role/r",
                          "input": input});
        let refused = call(&local.addr, "TestState", &body);
        assert_error(&refused, 400, "InvalidDefinition");
        assert!(
            refused.1["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("TestState API does not support Map or Parallel states."),
            "{refused:?}"
        );
    }
}

#[test]
fn test_state_shows_how_a_map_makes_its_iterations_inputs() {
    let local = Local::start("api-test-state-map-items", "");
    let processor = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    // JSONPath: the items after ItemsPath, each through ItemSelector (with `$$.Map.Item`
    // and the input after InputPath), then batched with the BatchInput.
    let map = json!({"Type": "Map", "InputPath": "$.order", "ItemsPath": "$.lines",
        "ItemSelector": {"sku.$": "$$.Map.Item.Value.sku", "at.$": "$$.Map.Item.Index",
                         "currency.$": "$.currency"},
        "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"region.$": "$.region"}},
        "ItemProcessor": processor, "End": true});
    let input = json!({"order": {"currency": "EUR", "region": "eu",
                                 "lines": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}]}})
    .to_string();
    let ran = test_jsonata(&local, map, &input, json!({"mock": {"result": "[1, 2]"}}));
    assert_eq!(ran["status"], "SUCCEEDED", "{ran}");
    let data = &ran["inspectionData"];
    assert_eq!(
        parsed(&data["afterItemsPath"]),
        json!([{"sku": "a"}, {"sku": "b"}, {"sku": "c"}])
    );
    let selected = json!([{"sku": "a", "at": 0, "currency": "EUR"},
                          {"sku": "b", "at": 1, "currency": "EUR"},
                          {"sku": "c", "at": 2, "currency": "EUR"}]);
    assert_eq!(parsed(&data["afterItemSelector"]), selected, "{data}");
    assert_eq!(
        parsed(&data["afterItemBatcher"]),
        json!([{"BatchInput": {"region": "eu"}, "Items": [selected[0], selected[1]]},
               {"BatchInput": {"region": "eu"}, "Items": [selected[2]]}])
    );
    assert!(data.get("afterItemsPointer").is_none(), "{data}");
    // What a request can make these fields hold stays bounded: past 256 KiB of JSON (here
    // BatchInput repeated in 5 000 batches) or 10 000 items, a field is left out.
    let many = |n: u64| {
        let map = json!({"Type": "Map", "ItemsPath": "$.items",
            "ItemSelector": {"v.$": "$$.Map.Item.Value"},
            "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"pad.$": "$.pad"}},
            "ItemProcessor": processor, "End": true});
        let input = json!({"items": (0..n).collect::<Vec<_>>(), "pad": "p".repeat(64)});
        let ran = test_jsonata(
            &local,
            map,
            &input.to_string(),
            json!({"mock": {"result": "[]"}}),
        );
        ran["inspectionData"].clone()
    };
    let big = many(10_000);
    assert_eq!(
        parsed(&big["afterItemSelector"])[9_999],
        json!({"v": 9_999})
    );
    assert!(big.get("afterItemBatcher").is_none());
    let too_many = many(10_001);
    assert!(too_many.get("afterItemSelector").is_none());
    assert!(too_many.get("afterItemsPath").is_some());

    // JSONata, a Distributed Map reading an S3 object: stateConfiguration.mapItemReaderData
    // is what the ItemReader would read, ReaderConfig's ItemsPointer picks the items.
    let reader = json!({"Type": "Map", "QueryLanguage": "JSONata",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                       "ReaderConfig": {"InputType": "JSON", "ItemsPointer": "/rows"},
                       "Arguments": {"Bucket": "b", "Key": "k"}},
        "ItemSelector": {"v": "{% $states.context.Map.Item.Value * 10 %}",
                         "i": "{% $states.context.Map.Item.Index %}"},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true});
    let read = test_jsonata(
        &local,
        reader.clone(),
        "{}",
        json!({"mock": {"result": "[10, 20, 30]"},
               "stateConfiguration": {"mapItemReaderData": "{\"rows\": [1, 2, 3]}"}}),
    );
    assert_eq!(read["output"], "[10,20,30]", "{read}");
    let data = &read["inspectionData"];
    assert_eq!(
        parsed(&data["afterItemsPointer"]),
        json!([1, 2, 3]),
        "{data}"
    );
    assert_eq!(
        parsed(&data["afterItemSelector"]),
        json!([{"v": 10, "i": 0}, {"v": 20, "i": 1}, {"v": 30, "i": 2}])
    );
    // ItemsPath is JSONPath's: a JSONata Map does not report it.
    assert!(data.get("afterItemsPath").is_none(), "{data}");
    // JSON Lines are read one value a line; a CSV file is not read here, and item data
    // for a Map without an ItemReader is refused.
    let mut jsonl = reader.clone();
    jsonl["ItemReader"]["ReaderConfig"] = json!({"InputType": "JSONL"});
    let lines = test_jsonata(
        &local,
        jsonl,
        "{}",
        json!({"mock": {"result": "[]"},
               "stateConfiguration": {"mapItemReaderData": "4\n\n5\n"}}),
    );
    assert_eq!(
        parsed(&lines["inspectionData"]["afterItemSelector"]),
        json!([{"v": 40, "i": 0}, {"v": 50, "i": 1}]),
        "{lines}"
    );
    let mut csv = reader;
    csv["ItemReader"]["ReaderConfig"] =
        json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"});
    for (state, data) in [
        (csv, "a,b\n1,2"),
        (
            json!({"Type": "Map", "ItemProcessor": processor,
                                                       "End": true}),
            "[1]",
        ),
    ] {
        let refused = call(
            &local.addr,
            "TestState",
            &json!({"definition": state.to_string(), "mock": {"result": "[]"},
                    "stateConfiguration": {"mapItemReaderData": data}}),
        );
        assert_error(&refused, 400, "ValidationException");
        assert!(
            refused.1["message"]
                .as_str()
                .unwrap()
                .contains("mapItemReaderData"),
            "{refused:?}"
        );
    }
}

#[test]
fn test_state_configuration_sets_a_mocked_maps_failures_and_an_errors_origin() {
    let local = Local::start("api-test-state-map-failures", "");
    let map = json!({"Type": "Map", "QueryLanguage": "JSONata",
        "Items": "{% $states.input.values %}",
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "ToleratedFailureCount": 1,
        "Catch": [{"ErrorEquals": ["MockException"], "Next": "HandleMockError"},
                  {"ErrorEquals": ["States.ExceedToleratedFailureThreshold"],
                   "Output": "{% $states.errorOutput %}", "Next": "HandleThreshold"}],
        "End": true});
    let input = "{\"values\": [\"first\", \"second\", \"third\"]}";
    let failing = |state: &Value, failed: u64| {
        test_jsonata(
            &local,
            state.clone(),
            input,
            json!({"mock": {"result": "[1, 1, 1]"},
                   "stateConfiguration": {"mapIterationFailureCount": failed}}),
        )
    };
    // As many failures as tolerated: the mocked result stands.
    let within = failing(&map, 1);
    assert_eq!(within["status"], "SUCCEEDED", "{within}");
    assert_eq!(within["output"], "[1,1,1]");
    // One more, and the Map fails as AWS's does; its Catch takes the error.
    let over = failing(&map, 2);
    assert_eq!(over["status"], "CAUGHT_ERROR", "{over}");
    assert_eq!(over["error"], "States.ExceedToleratedFailureThreshold");
    assert_eq!(
        over["cause"],
        "The specified tolerated failure threshold was exceeded"
    );
    assert_eq!(over["nextState"], "HandleThreshold");
    assert_eq!(over["inspectionData"]["errorDetails"]["catchIndex"], 1);
    assert_eq!(over["inspectionData"]["toleratedFailureCount"], 1);
    // A retrier that matches makes it RETRIABLE instead.
    let mut retried = map.clone();
    retried["Retry"] = json!([{"ErrorEquals": ["MockException"]},
                              {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1}]);
    let retriable = failing(&retried, 2);
    assert_eq!(retriable["status"], "RETRIABLE", "{retriable}");
    assert_eq!(
        retriable["inspectionData"]["errorDetails"],
        json!({"retryIndex": 1, "retryBackoffIntervalSeconds": 1})
    );
    // A percentage counts against the items: 2 of 3 is over 50 %, 1 of 3 is not.
    let mut by_share = map.clone();
    by_share
        .as_object_mut()
        .unwrap()
        .remove("ToleratedFailureCount");
    by_share["ToleratedFailurePercentage"] = json!(50);
    assert_eq!(failing(&by_share, 2)["status"], "CAUGHT_ERROR");
    assert_eq!(failing(&by_share, 1)["status"], "SUCCEEDED");
    // A Map that names no tolerance answers as mocked (AWS's TestState does the same).
    let mut untolerant = map.clone();
    untolerant
        .as_object_mut()
        .unwrap()
        .remove("ToleratedFailureCount");
    assert_eq!(failing(&untolerant, 3)["status"], "SUCCEEDED");
    // A mocked error is the Map's error whatever the count.
    let mocked_error = test_jsonata(
        &local,
        map.clone(),
        input,
        json!({"mock": {"errorOutput": {"error": "MockException", "cause": "c"}},
               "stateConfiguration": {"mapIterationFailureCount": 3}}),
    );
    assert_eq!(
        mocked_error["nextState"], "HandleMockError",
        "{mocked_error}"
    );
    // Only a mocked Map takes the count.
    let unmocked = call(
        &local.addr,
        "TestState",
        &json!({"definition": map.to_string(), "input": input,
                "stateConfiguration": {"mapIterationFailureCount": 1}}),
    );
    assert_error(&unmocked, 400, "ValidationException");

    // errorCausedByState names the state inside a Map or Parallel state a mocked error
    // comes from: a state of its branches, and only with a mocked error.
    let parallel = json!({"Type": "Parallel",
        "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
                     {"StartAt": "B", "States": {"B": {"Type": "Map", "End": true,
                        "ItemProcessor": {"StartAt": "Deep", "States": {
                            "Deep": {"Type": "Pass", "End": true}}}}}}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover"}], "End": true})
    .to_string();
    let caused_by = |name: &str, mock: Value| {
        call(
            &local.addr,
            "TestState",
            &json!({"definition": parallel, "input": "{}", "mock": mock,
                    "inspectionLevel": "DEBUG",
                    "stateConfiguration": {"errorCausedByState": name}}),
        )
    };
    let error = json!({"errorOutput": {"error": "MockException", "cause": "c"}});
    for inner in ["A", "Deep"] {
        let caught = caused_by(inner, error.clone());
        assert_eq!(caught.1["status"], "CAUGHT_ERROR", "{caught:?}");
        assert_eq!(caught.1["error"], "MockException");
        assert_eq!(caught.1["nextState"], "Recover");
    }
    for (name, mock) in [
        ("Nowhere", error.clone()),
        ("A", json!({"result": "[1, 2]"})),
    ] {
        let refused = caused_by(name, mock);
        assert_error(&refused, 400, "ValidationException");
        assert!(
            refused.1["message"]
                .as_str()
                .unwrap()
                .contains("errorCausedByState"),
            "{refused:?}"
        );
    }
    let task = json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "End": true})
    .to_string();
    let on_a_task = call(
        &local.addr,
        "TestState",
        &json!({"definition": task, "mock": error,
                "stateConfiguration": {"errorCausedByState": "A"}}),
    );
    assert_error(&on_a_task, 400, "ValidationException");
}

#[test]
fn test_state_checks_a_mocked_result_against_the_integrations_answer() {
    let local = Local::start("api-test-state-mock-checks", "");
    let lambda = json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Arguments": {"FunctionName": "f", "Payload": {}}, "QueryLanguage": "JSONata",
        "End": true})
    .to_string();
    let mocked = |definition: &str, mock: Value| {
        call(
            &local.addr,
            "TestState",
            &json!({"definition": definition, "input": "{}", "mock": mock}),
        )
    };
    // STRICT (the default) and PRESENT check the fields the integration's answer has, in
    // AWS's words; NONE takes anything.
    let wrong = "{\"StatusCode\": \"200\"}";
    for mode in [None, Some("STRICT"), Some("PRESENT")] {
        let mut mock = json!({"result": wrong});
        if let Some(m) = mode {
            mock["fieldValidationMode"] = json!(m);
        }
        let refused = mocked(&lambda, mock);
        assert_error(&refused, 400, "ValidationException");
        assert_eq!(
            refused.1["message"],
            "Mock result schema validation error: Field 'StatusCode' must be a number"
        );
    }
    let anything = mocked(
        &lambda,
        json!({"result": wrong, "fieldValidationMode": "NONE"}),
    );
    assert_eq!(anything.1["status"], "SUCCEEDED", "{anything:?}");
    // Fields the answer does not have are no error.
    let extra = mocked(
        &lambda,
        json!({"result": "{\"Payload\": 1, \"random\": true}"}),
    );
    assert_eq!(extra.1["status"], "SUCCEEDED", "{extra:?}");
    // Only STRICT asks for the required fields.
    let start = json!({"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
        "Parameters": {"StateMachineArn": "arn:aws:states:::stateMachine:x"}, "End": true})
    .to_string();
    let missing = mocked(&start, json!({"result": "{}"}));
    assert_error(&missing, 400, "ValidationException");
    assert_eq!(
        missing.1["message"],
        "Mock result schema validation error: Required field 'ExecutionArn' is missing"
    );
    let present = mocked(
        &start,
        json!({"result": "{}", "fieldValidationMode": "PRESENT"}),
    );
    assert_eq!(present.1["status"], "SUCCEEDED", "{present:?}");

    // A Map's mock is its results (an array), or with a ResultWriter what the writer
    // answered (an object); a Parallel's has one output per branch. In AWS's words.
    let processor = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let map = json!({"Type": "Map", "ItemProcessor": processor, "End": true});
    let mut writer = map.clone();
    writer["ResultWriter"] = json!({"Resource": "arn:aws:states:::s3:putObject",
                                    "Parameters": {"Bucket": "b", "Prefix": "p"}});
    let parallel = json!({"Type": "Parallel", "End": true,
        "Branches": [processor, processor]});
    let pass = json!({"Type": "Pass", "End": true});
    for (state, mock, message) in [
        (
            &map,
            json!({"result": "{}"}),
            "Mocked result must be an array.",
        ),
        (
            &writer,
            json!({"result": "[1]"}),
            "Mocked result must be a JSON object.",
        ),
        (
            &parallel,
            json!({"result": "{}"}),
            "Mocked result must be an array.",
        ),
        (
            &parallel,
            json!({"result": "[1]"}),
            "Mocked result must contain the same number of items as number of Parallel branches.",
        ),
        (
            &map,
            json!({"result": "[]", "errorOutput": {"error": "E"}}),
            "A test mock should have only one of the following fields: [result, errorOutput].",
        ),
        (
            &pass,
            json!({"result": "{}"}),
            "State type 'Pass' is not supported when a mock is specified",
        ),
    ] {
        let refused = mocked(&state.to_string(), mock);
        assert_error(&refused, 400, "ValidationException");
        assert_eq!(refused.1["message"], message);
    }
    // AWS reads ItemsPath before the mock stands in: this `{}` input is no array.
    let mut items_in = writer.clone();
    items_in["ItemsPath"] = json!("$$.Execution.Input");
    let no_items = mocked(&items_in.to_string(), json!({"result": "{}"}));
    assert_eq!(no_items.1["status"], "FAILED", "{no_items:?}");
    assert_eq!(
        no_items.1["cause"],
        "Reference path \"$.Execution.Input\" must point to array."
    );
    writer["ItemsPath"] = json!("$.items");
    let answered = call(
        &local.addr,
        "TestState",
        &json!({"definition": writer.to_string(), "input": "{\"items\": [1]}",
                "mock": {"result": "{}"}}),
    );
    assert_eq!(answered.1["status"], "SUCCEEDED", "{answered:?}");
    assert_eq!(
        mocked(&parallel.to_string(), json!({"result": "[1, 2]"})).1["status"],
        "SUCCEEDED"
    );
    // A mock makes no call, so there is no secret to reveal.
    let reveal = call(
        &local.addr,
        "TestState",
        &json!({"definition": lambda, "mock": {"result": "{}"}, "revealSecrets": true}),
    );
    assert_error(&reveal, 400, "ValidationException");
    assert_eq!(
        reveal.1["message"],
        "TestState does not support RevealSecrets when a mock is specified."
    );
}

#[test]
fn test_state_traces_the_http_exchange_it_made() {
    let srv = common::HttpServer::start();
    let prefix = format!("http://127.0.0.1:{}/", srv.port);
    let local = Local::start(
        "api-test-state-http",
        &format!(
            "reveal_secrets = true\n\n[[tasks.http.connections]]\nprefix = {prefix:?}\n\
             headers = {{ X-Api-Key = \"hdr-s3cret\" }}\nquery_parameters = {{ token = \"qry-s3cret\" }}\n"
        ),
    );
    let state = json!({"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
        "Parameters": {"ApiEndpoint": format!("{prefix}echo"), "Method": "POST",
                       "Headers": {"X-Trace": "t1"}, "QueryParameters": {"q": "a b"},
                       "RequestBody": {"id.$": "$.id"}},
        "ResultSelector": {"sent.$": "$.ResponseBody.body"}, "End": true})
    .to_string();
    let trace = |reveal: bool| {
        let answer = call(
            &local.addr,
            "TestState",
            &json!({"definition": state, "roleArn": "arn:aws:iam::1:role/r", "input": "{\"id\": 7}",
                    "inspectionLevel": "TRACE", "revealSecrets": reveal}),
        );
        assert_eq!(answer.0, 200, "{answer:?}");
        assert_eq!(answer.1["status"], "SUCCEEDED", "{answer:?}");
        answer.1["inspectionData"].clone()
    };
    let hidden = trace(false);
    let req = &hidden["request"];
    assert_eq!(req["protocol"], "http");
    assert_eq!(req["method"], "POST");
    // The request as sent: the query string and body it carried, the definition's header;
    // without revealSecrets, not what the connection added.
    assert_eq!(req["url"], format!("{prefix}echo?q=a+b"));
    assert_eq!(req["body"], "{\"id\":7}");
    // Header names as the definition spelled them (the HTTP client keeps them lower-case).
    let headers = req["headers"].as_str().unwrap();
    assert!(
        headers.starts_with('[') && headers.contains("X-Trace: t1"),
        "{headers}"
    );
    assert!(!headers.contains("s3cret"), "{headers}");
    // The response as received, the body as the text that came.
    let resp = &hidden["response"];
    assert_eq!(resp["statusCode"], "200");
    assert_eq!(resp["statusMessage"], "OK");
    assert!(resp["headers"]
        .as_str()
        .unwrap()
        .contains("content-type: application/json"));
    let echoed = parsed(&resp["body"]);
    assert_eq!(echoed["method"], "POST");
    assert_eq!(
        echoed["headers"]["x-api-key"], "hdr-s3cret",
        "the secret was sent"
    );
    assert_eq!(
        parsed(&hidden["afterResultSelector"]),
        json!({"sent": "{\"id\":7}"})
    );
    // revealSecrets shows what the connection added.
    let shown = trace(true);
    assert_eq!(
        shown["request"]["url"],
        format!("{prefix}echo?q=a+b&token=qry-s3cret")
    );
    assert!(shown["request"]["headers"]
        .as_str()
        .unwrap()
        .contains("X-Api-Key: hdr-s3cret"));
    // A mocked HTTP Task makes no call, so there is nothing to trace.
    let mocked = call(
        &local.addr,
        "TestState",
        &json!({"definition": state, "input": "{\"id\": 7}", "inspectionLevel": "TRACE",
                "mock": {"result": "{\"ResponseBody\": {\"body\": \"m\"}}"}}),
    );
    assert_eq!(mocked.1["output"], "{\"sent\":\"m\"}", "{mocked:?}");
    assert!(mocked.1["inspectionData"].get("request").is_none());
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
