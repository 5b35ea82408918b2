//! Lambda Task states against real Python functions in AWS's Runtime Interface Emulator,
//! through `stepstream exec --config` as a user runs them.

mod common;
mod lambda_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{exec, Scratch};
use lambda_support::Emulator;
use serde_json::{json, Value};

fn handlers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lambda")
}

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:";

/// Writes the definition and a config binding `functions` (name -> URL), runs exec.
fn run(dir: &Scratch, def: Value, input: Value, functions: &[(&str, String)]) -> Value {
    let mut toml = String::from("[tasks.lambda.functions]\n");
    for (name, url) in functions {
        toml.push_str(&format!("{name:?} = {url:?}\n"));
    }
    let cfg = dir.write("stepstream.toml", toml);
    let def = dir.write("def.asl.json", def.to_string());
    exec(&[
        "--definition",
        def.to_str().unwrap(),
        "--input",
        &input.to_string(),
        "--config",
        cfg.to_str().unwrap(),
    ])
}

#[test]
fn a_function_arn_returns_the_payload_and_lambda_invoke_the_aws_shape() {
    let dir = Scratch::new("lambda-ok");
    let echo = Emulator::start(&handlers_dir(), "handlers.echo", &[]);
    let def = json!({"StartAt": "Arn", "States": {
        "Arn": {"Type": "Task", "Resource": format!("{ARN}Echo"),
                "Parameters": {"n.$": "$.n"}, "ResultPath": "$.arn", "Next": "Invoke"},
        "Invoke": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                   "Parameters": {"FunctionName": "Echo", "Payload": {"m.$": "$.n"}},
                   "ResultPath": "$.invoke", "End": true}}});
    let out = run(&dir, def, json!({"n": 7}), &[("Echo", echo.url())]);
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    assert_eq!(out["output"]["arn"], json!({"echo": {"n": 7}}));
    let inv = &out["output"]["invoke"];
    assert_eq!(inv["Payload"], json!({"echo": {"m": 7}}), "{inv}");
    assert_eq!(inv["StatusCode"], 200);
    assert_eq!(inv["ExecutedVersion"], "$LATEST");
    assert_eq!(inv["SdkHttpMetadata"]["HttpStatusCode"], 200);
    assert!(
        inv["SdkHttpMetadata"]["AllHttpHeaders"].is_object(),
        "{inv}"
    );
    assert!(
        inv["SdkResponseMetadata"].get("RequestId").is_some(),
        "{inv}"
    );
}

#[test]
fn a_function_error_is_caught_with_aws_error_and_cause() {
    let dir = Scratch::new("lambda-catch");
    let oos = Emulator::start(&handlers_dir(), "handlers.out_of_stock", &[]);
    let def = json!({"StartAt": "Reserve", "States": {
        "Reserve": {"Type": "Task", "Resource": format!("{ARN}Reserve"),
                    "Catch": [{"ErrorEquals": ["OutOfStock"], "ResultPath": "$.err", "Next": "Sorry"}],
                    "End": true},
        "Sorry": {"Type": "Pass", "End": true}}});
    let out = run(
        &dir,
        def,
        json!({"sku": "SKU-9"}),
        &[("Reserve", oos.url())],
    );
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let err = &out["output"]["err"];
    assert_eq!(err["Error"], "OutOfStock", "{err}");
    // AWS's Cause is the whole error payload, as a JSON string.
    let cause: Value = serde_json::from_str(err["Cause"].as_str().expect("a string cause"))
        .expect("the cause is the JSON error payload");
    assert_eq!(cause["errorType"], "OutOfStock");
    assert_eq!(cause["errorMessage"], "no stock for SKU-9");
}

#[test]
fn retry_reruns_a_failing_function_until_it_succeeds() {
    let dir = Scratch::new("lambda-retry");
    let counts = dir.0.join("counts");
    std::fs::create_dir_all(&counts).unwrap();
    let flaky = Emulator::start(
        &handlers_dir(),
        "handlers.flaky",
        &[("FLAKY_DIR", counts.to_str().unwrap())],
    );
    let def = json!({"StartAt": "Flaky", "States": {
        "Flaky": {"Type": "Task", "Resource": format!("{ARN}Flaky"),
                  "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1}],
                  "End": true}}});
    let out = run(
        &dir,
        def,
        json!({"key": "k1", "failures": 2}),
        &[("Flaky", flaky.url())],
    );
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    assert_eq!(out["output"], json!({"calls": 3}));

    // One retry fewer than failures: the last error surfaces as the function reported it.
    let def = json!({"StartAt": "Flaky", "States": {
        "Flaky": {"Type": "Task", "Resource": format!("{ARN}Flaky"),
                  "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 1, "MaxAttempts": 1}],
                  "End": true}}});
    let out = run(
        &dir,
        def,
        json!({"key": "k2", "failures": 5}),
        &[("Flaky", flaky.url())],
    );
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "Busy");
    assert!(
        out["cause"].as_str().unwrap().contains("busy on call 2"),
        "{out}"
    );
}

#[test]
fn a_slow_function_times_out_with_states_timeout() {
    let dir = Scratch::new("lambda-slow");
    let slow = Emulator::start(&handlers_dir(), "handlers.slow", &[]);
    let def = json!({"StartAt": "Slow", "States": {
        "Slow": {"Type": "Task", "Resource": format!("{ARN}Slow"), "TimeoutSeconds": 1,
                 "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.err", "Next": "Late"}],
                 "End": true},
        "Late": {"Type": "Pass", "End": true}}});
    let out = run(&dir, def, json!({"seconds": 20}), &[("Slow", slow.url())]);
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    assert_eq!(out["output"]["err"]["Error"], "States.Timeout", "{out}");
}

#[test]
fn an_unreachable_endpoint_is_lambda_sdk_client_exception() {
    let dir = Scratch::new("lambda-down");
    let port = lambda_support::free_port();
    let def = json!({"StartAt": "Down", "States": {
        "Down": {"Type": "Task", "Resource": format!("{ARN}Down"),
                 "Retry": [{"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException"],
                            "IntervalSeconds": 1, "MaxAttempts": 1}],
                 "End": true}}});
    let out = run(
        &dir,
        def,
        json!({}),
        &[("Down", format!("http://127.0.0.1:{port}"))],
    );
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "Lambda.SdkClientException", "{out}");
    assert!(out["cause"].as_str().unwrap().contains("Down"), "{out}");
}

#[test]
fn a_payload_over_256_kib_is_states_data_limit_exceeded() {
    let dir = Scratch::new("lambda-big");
    let big = Emulator::start(&handlers_dir(), "handlers.big", &[]);
    let def = json!({"StartAt": "Big", "States": {
        "Big": {"Type": "Task", "Resource": format!("{ARN}Big"), "End": true}}});
    let out = run(
        &dir,
        def.clone(),
        json!({"bytes": 300_000}),
        &[("Big", big.url())],
    );
    assert_eq!(out["error"], "States.DataLimitExceeded", "{out}");
    let out = run(&dir, def, json!({"bytes": 1000}), &[("Big", big.url())]);
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
}

#[test]
fn a_function_with_no_endpoint_is_refused_naming_the_config_keys() {
    let dir = Scratch::new("lambda-unbound");
    let def = json!({"StartAt": "Nowhere", "States": {
        "Nowhere": {"Type": "Task", "Resource": format!("{ARN}Nowhere"), "End": true}}});
    let out = run(&dir, def, json!({}), &[]);
    assert_eq!(out["status"], "FAILED", "{out}");
    let cause = out["cause"].as_str().unwrap();
    assert!(
        cause.contains("[tasks.lambda] functions") && cause.contains("allow_hosts"),
        "{cause}"
    );
}

#[test]
fn signed_calls_carry_sigv4_from_env_or_the_shared_credentials_file() {
    let dir = Scratch::new("lambda-sign");
    // The HTTP test server echoes the Invoke request it gets, headers included.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/http_server.py");
    let mut server = Command::new("python3")
        .arg(script)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the test server");
    let mut port = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let cfg = dir.write(
        "stepstream.toml",
        format!(
            "[tasks.lambda]\nsign = true\n[tasks.lambda.functions]\nEcho = \"http://127.0.0.1:{}\"\n",
            port.trim()
        ),
    );
    let def = dir.write(
        "def.asl.json",
        json!({"StartAt": "I", "States": {"I": {"Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "arn:aws:lambda:eu-west-1:123456789012:function:Echo", "Payload": {"a": 1}},
            "OutputPath": "$.Payload", "End": true}}})
        .to_string(),
    );
    let creds_file = dir.write(
        "credentials",
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = nope\n\n[ci]\naws_access_key_id = AKIDFILE\naws_secret_access_key = file-s3cret\n",
    );
    let run = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stepstream"));
        cmd.args(["exec", "--definition", def.to_str().unwrap()])
            .args(["--config", cfg.to_str().unwrap()]);
        for k in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("AWS_SHARED_CREDENTIALS_FILE", &creds_file)
            .env("AWS_CONFIG_FILE", dir.0.join("no-config"));
        cmd.envs(env.iter().copied());
        let out = cmd.output().expect("stepstream runs");
        serde_json::from_slice::<Value>(&out.stdout).expect("one JSON object")
    };

    let out = run(&[
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "env-s3cret"),
        ("AWS_SESSION_TOKEN", "tok"),
    ]);
    let req = &out["output"];
    assert_eq!(
        req["path"],
        "/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:Echo/invocations",
        "{out}"
    );
    assert_eq!(req["body"], r#"{"a":1}"#);
    let auth = req["headers"]["authorization"]
        .as_str()
        .expect("an Authorization header");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDENV/"),
        "{auth}"
    );
    assert!(auth.contains("/eu-west-1/lambda/aws4_request"), "{auth}");
    assert!(
        auth.contains("x-amz-invocation-type") && auth.contains("Signature="),
        "{auth}"
    );
    assert_eq!(req["headers"]["x-amz-security-token"], "tok");
    assert!(req["headers"]["x-amz-date"].is_string());
    assert!(
        !out.to_string().contains("env-s3cret"),
        "the secret key is never sent"
    );

    let out = run(&[("AWS_PROFILE", "ci")]);
    let auth = out["output"]["headers"]["authorization"]
        .as_str()
        .unwrap_or_default();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDFILE/"),
        "{out}"
    );

    // A web identity (as on EKS): the token file exchanged at STS for session credentials.
    let token = dir.write("token", "jwt-abc\n");
    let sts = format!("http://127.0.0.1:{}/sts", port.trim());
    let out = run(&[
        ("AWS_PROFILE", "absent"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/sfn"),
        ("AWS_ENDPOINT_URL_STS", &sts),
    ]);
    let headers = &out["output"]["headers"];
    let auth = headers["authorization"].as_str().unwrap_or_default();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDWEB/"),
        "{out}"
    );
    assert_eq!(headers["x-amz-security-token"], "session-for-jwt-abc");

    let out = run(&[("AWS_PROFILE", "absent")]);
    assert_eq!(out["status"], "FAILED", "{out}");
    assert!(
        out["cause"]
            .as_str()
            .unwrap()
            .contains("no AWS credentials"),
        "{out}"
    );
    let _ = server.kill();
    let _ = server.wait();
}
