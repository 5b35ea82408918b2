//! The HTTP Task (`arn:aws:states:::http:invoke`) against a real HTTP server on
//! 127.0.0.1 (Python's http.server), through `stepstream exec` as a user runs it.

mod common;

use common::{exec, HttpServer as Server, Scratch};
use serde_json::{json, Value};

/// Runs a one-Task machine with these Parameters (and extra state fields), with `config`.
fn call(dir: &Scratch, params: Value, extra: Value, config: &str) -> Value {
    let mut state = json!({"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                           "Parameters": params, "End": true});
    if let (Some(s), Some(e)) = (state.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    let def = dir.write(
        "def.asl.json",
        json!({"StartAt": "Call", "States": {"Call": state}}).to_string(),
    );
    let mut args = vec!["--definition", def.to_str().unwrap()];
    let cfg;
    if !config.is_empty() {
        cfg = dir.write("stepstream.toml", config);
        args.extend(["--config", cfg.to_str().unwrap()]);
    }
    exec(&args)
}

#[test]
fn a_json_answer_is_parsed_and_a_text_answer_kept_as_text() {
    let (dir, srv) = (Scratch::new("http-2xx"), Server::start());
    let out = call(
        &dir,
        json!({"ApiEndpoint": srv.url("/json"), "Method": "GET"}),
        json!({}),
        "",
    );
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let r = &out["output"];
    assert_eq!(r["ResponseBody"], json!({"ok": true, "items": [1, 2]}));
    assert_eq!(r["StatusCode"], "200");
    assert_eq!(r["StatusText"], "OK");
    assert_eq!(
        r["Headers"]["content-type"],
        json!(["application/json; charset=utf-8"])
    );

    let out = call(
        &dir,
        json!({"ApiEndpoint": srv.url("/text"), "Method": "GET"}),
        json!({}),
        "",
    );
    assert_eq!(out["output"]["ResponseBody"], "plain words", "{out}");
}

#[test]
fn arguments_reach_the_server_as_aws_sends_them() {
    let (dir, srv) = (Scratch::new("http-args"), Server::start());
    let out = call(
        &dir,
        json!({"ApiEndpoint": srv.url("/echo"), "Method": "POST",
               "Headers": {"x-trace": "t-1"},
               "QueryParameters": {"q": "a b"},
               "RequestBody": {"name": "n", "tags": ["x", "y"]},
               "Transform": {"RequestBodyEncoding": "URL_ENCODED",
                             "RequestEncodingOptions": {"ArrayFormat": "BRACKETS"}}}),
        json!({}),
        "",
    );
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let echo = &out["output"]["ResponseBody"];
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["query"], json!({"q": ["a b"]}));
    assert_eq!(echo["headers"]["x-trace"], "t-1");
    assert_eq!(
        echo["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(echo["body"], "name=n&tags%5B%5D=x&tags%5B%5D=y");

    let out = call(
        &dir,
        json!({"ApiEndpoint": srv.url("/echo"), "Method": "PUT", "RequestBody": {"a": 1}}),
        json!({}),
        "",
    );
    let echo = &out["output"]["ResponseBody"];
    assert_eq!(
        (echo["method"].as_str(), echo["body"].as_str()),
        (Some("PUT"), Some(r#"{"a":1}"#))
    );
    assert_eq!(echo["headers"]["content-type"], "application/json");
}

#[test]
fn a_404_is_states_http_status_code_404_and_can_be_caught() {
    let (dir, srv) = (Scratch::new("http-404"), Server::start());
    let def = dir.write(
        "def2.asl.json",
        json!({"StartAt": "Call", "States": {
            "Call": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                     "Parameters": {"ApiEndpoint": srv.url("/status/404"), "Method": "GET"},
                     "Catch": [{"ErrorEquals": ["States.Http.StatusCode.404"], "ResultPath": "$.err", "Next": "Missing"}],
                     "End": true},
            "Missing": {"Type": "Pass", "End": true}}})
        .to_string(),
    );
    let out = exec(&["--definition", def.to_str().unwrap()]);
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let err = &out["output"]["err"];
    assert_eq!(err["Error"], "States.Http.StatusCode.404");
    let cause: Value = serde_json::from_str(err["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["ResponseBody"], json!({"status": 404}));

    let out = call(
        &dir,
        json!({"ApiEndpoint": srv.url("/status/503"), "Method": "GET"}),
        json!({}),
        "",
    );
    assert_eq!(out["error"], "States.Http.StatusCode.503", "{out}");
}

#[test]
fn a_destination_outside_the_allow_list_is_refused_naming_the_key() {
    let (dir, srv) = (Scratch::new("http-deny"), Server::start());
    let out = call(
        &dir,
        json!({"ApiEndpoint": "https://api.example.com/x", "Method": "GET"}),
        json!({}),
        "",
    );
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "States.TaskFailed");
    assert!(
        out["cause"].as_str().unwrap().contains("allow_hosts"),
        "{out}"
    );

    let out = call(
        &dir,
        json!({"ApiEndpoint": srv.url("/json"), "Method": "GET"}),
        json!({}),
        "[tasks]\nallow_loopback = false\n",
    );
    assert_eq!(out["status"], "FAILED", "{out}");
    assert!(
        out["cause"].as_str().unwrap().contains("allow_loopback"),
        "{out}"
    );
}

#[test]
fn an_oversized_body_is_refused_with_data_limit_exceeded() {
    let (dir, srv) = (Scratch::new("http-big"), Server::start());
    let out = call(
        &dir,
        json!({"ApiEndpoint": srv.url("/big?bytes=300000"), "Method": "GET"}),
        json!({}),
        "",
    );
    assert_eq!(out["error"], "States.DataLimitExceeded", "{out}");
    let out = call(
        &dir,
        json!({"ApiEndpoint": srv.url("/big?bytes=2000"), "Method": "GET"}),
        json!({}),
        "",
    );
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
}

#[test]
fn a_slow_server_times_out_with_states_timeout() {
    let (dir, srv) = (Scratch::new("http-slow"), Server::start());
    let out = call(
        &dir,
        json!({"ApiEndpoint": srv.url("/slow?seconds=10"), "Method": "GET"}),
        json!({"TimeoutSeconds": 1}),
        "",
    );
    assert_eq!(out["error"], "States.Timeout", "{out}");
    // With no TimeoutSeconds the config's call limit applies.
    let out = call(
        &dir,
        json!({"ApiEndpoint": srv.url("/slow?seconds=10"), "Method": "GET"}),
        json!({}),
        "[tasks]\ncall_timeout_seconds = 0.5\n",
    );
    assert_eq!(out["error"], "States.Timeout", "{out}");
    // A TimeoutSeconds longer than the config's limit wins: the call may take that long.
    let out = call(
        &dir,
        json!({"ApiEndpoint": srv.url("/slow?seconds=1"), "Method": "GET"}),
        json!({"TimeoutSeconds": 5}),
        "[tasks]\ncall_timeout_seconds = 0.5\n",
    );
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
}

#[test]
fn connection_secrets_are_sent_but_never_reported() {
    let (dir, srv) = (Scratch::new("http-secret"), Server::start());
    let config = format!(
        "[[tasks.http.connections]]\nprefix = {:?}\nheaders = {{ x-api-key = \"hdr-s3cret\" }}\nquery_parameters = {{ token = \"qry-s3cret\" }}\n",
        srv.url("/")
    );
    let out = call(
        &dir,
        json!({"ApiEndpoint": srv.url("/echo"), "Method": "GET"}),
        json!({}),
        &config,
    );
    let echo = &out["output"]["ResponseBody"];
    assert_eq!(echo["headers"]["x-api-key"], "hdr-s3cret", "{out}");
    assert_eq!(echo["query"]["token"], json!(["qry-s3cret"]));

    // A failed call to the same connection: the cause must not leak the secrets.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = format!(
        "[[tasks.http.connections]]\nprefix = \"http://127.0.0.1:{closed}/\"\nheaders = {{ x-api-key = \"hdr-s3cret\" }}\nquery_parameters = {{ token = \"qry-s3cret\" }}\n"
    );
    let out = call(
        &dir,
        json!({"ApiEndpoint": format!("http://127.0.0.1:{closed}/x"), "Method": "GET"}),
        json!({}),
        &config,
    );
    assert_eq!(out["status"], "FAILED", "{out}");
    assert!(!out.to_string().contains("s3cret"), "{out}");
}
