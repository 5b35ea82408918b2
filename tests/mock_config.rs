//! AWS Step Functions Local's MockConfigFile in `stepstream exec --mock-config F --test-case C`.

mod common;

use common::{exec, Scratch};
use serde_json::json;

#[test]
fn a_mock_config_test_case_answers_task_states_with_retries_and_ranges() {
    let dir = Scratch::new("mock-config");
    let def = dir.write(
        "def.asl.json",
        json!({"StartAt": "Charge", "States": {
            "Charge": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                       "Parameters": {"FunctionName": "Charge"},
                       "Retry": [{"ErrorEquals": ["Lambda.TooManyRequestsException"], "IntervalSeconds": 1, "MaxAttempts": 3}],
                       "OutputPath": "$.Payload", "End": true}}})
        .to_string(),
    );
    let mocks = dir.write(
        "MockConfigFile.json",
        json!({
            "StateMachines": {"order": {"TestCases": {
                "Throttled": {"Charge": "ChargeThrottledTwice"},
                "Broken": {"Charge": "ChargeBroken"}}}},
            "MockedResponses": {
                "ChargeThrottledTwice": {
                    "0-1": {"Throw": {"Error": "Lambda.TooManyRequestsException", "Cause": "Rate Exceeded."}},
                    "2": {"Return": {"StatusCode": 200, "Payload": {"charged": true}}}},
                "ChargeBroken": {"0": {"Throw": {"Error": "Lambda.ServiceException", "Cause": "down"}}}}
        })
        .to_string(),
    );
    let run = |case: &str| {
        exec(&[
            "--definition",
            def.to_str().unwrap(),
            "--mock-config",
            mocks.to_str().unwrap(),
            "--test-case",
            case,
            "--clock",
            "virtual",
        ])
    };
    let out = run("Throttled");
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    assert_eq!(out["output"], json!({"charged": true}));
    let out = run("order#Broken");
    assert_eq!(
        (out["error"].as_str(), out["cause"].as_str()),
        (Some("Lambda.ServiceException"), Some("down")),
        "{out}"
    );
    let out = run("Missing");
    assert_eq!(out["status"], "INVALID_ARGUMENTS", "{out}");
    assert!(out["cause"].as_str().unwrap().contains("Missing"), "{out}");
}
