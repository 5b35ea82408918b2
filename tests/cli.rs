//! `stepstream validate` and `stepstream exec` as a user runs them, bad input included.

mod common;

use common::{exec, stepstream, Scratch};
use serde_json::{json, Value};

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn validate_reports_every_problem_with_a_pointer() {
    let dir = Scratch::new("validate-all");
    let def = json!({
        "StartAt": "Nowhere",
        "States": {
            "A": {"Type": "Pass", "Next": "Missing"},
            "B": {"Type": "Task", "End": true, "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": -1}]},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": "one", "Next": "A"}]},
            "D": {"Type": "Pass", "InputPath": "not a path", "End": true, "Bogus": 1},
            "E": {"Type": "Wait", "End": true}
        }
    });
    let f = dir.write("bad.asl.json", def.to_string());
    let out = stepstream(&["validate", path(&f)]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "/StartAt",
        "/States/A/Next",
        "/States/B: Resource is required",
        "/States/B/Retry/0/MaxAttempts",
        "/States/C/Choices/0",
        "/States/D/InputPath",
        "/States/D/Bogus",
        "/States/E: a Wait state needs exactly one of",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

/// A state of an unknown Type is one problem, in AWS's words; the states that go to it
/// are not also told it is undefined.
#[test]
fn an_unreadable_state_is_reported_once() {
    let dir = Scratch::new("validate-unreadable");
    let def = json!({"StartAt": "X", "States": {
        "X": {"Type": "Nope", "End": true},
        "A": {"Type": "Pass", "Next": "X"}}});
    let f = dir.write("bad.asl.json", def.to_string());
    let out = stepstream(&["validate", path(&f)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("/States/X/Type: The field 'Type' should have one of these values: [Task, Wait, Pass, Succeed, Fail, Choice, Parallel, Map]"),
        "{text}"
    );
    assert!(text.contains("1 problem"), "{text}");
}

#[test]
fn validate_accepts_a_good_definition_and_flags_unreachable_states() {
    let dir = Scratch::new("validate-ok");
    let good = dir.write(
        "good.json",
        json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}).to_string(),
    );
    let out = stepstream(&["validate", path(&good)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let orphan = dir.write(
        "orphan.json",
        json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}})
            .to_string(),
    );
    let out = stepstream(&["validate", path(&orphan)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("/States/B: state \"B\" can never be reached"));
}

#[test]
fn malformed_definition_json_is_an_invalid_definition() {
    let dir = Scratch::new("bad-def-json");
    let f = dir.write("def.json", "{\"StartAt\": ");
    let out = exec(&["--definition", path(&f)]);
    assert_eq!(out["status"], "INVALID_DEFINITION");
    assert!(
        out["cause"]
            .as_str()
            .unwrap_or("")
            .contains("not valid JSON"),
        "{out}"
    );
}

#[test]
fn invalid_asl_is_reported_by_exec_with_pointers() {
    let dir = Scratch::new("bad-asl");
    let f = dir.write(
        "def.json",
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}).to_string(),
    );
    let out = exec(&["--definition", path(&f)]);
    assert_eq!(out["status"], "INVALID_DEFINITION");
    assert!(
        out["cause"].as_str().unwrap_or("").contains("/States/A"),
        "{out}"
    );
}

fn pass_machine(dir: &Scratch) -> std::path::PathBuf {
    dir.write(
        "pass.json",
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}).to_string(),
    )
}

#[test]
fn malformed_input_json_is_a_clear_error() {
    let dir = Scratch::new("bad-input");
    let def = pass_machine(&dir);
    let out = exec(&["--definition", path(&def), "--input", "{\"a\": "]);
    assert_eq!(out["status"], "INVALID_INPUT");
    assert!(
        out["cause"]
            .as_str()
            .unwrap_or("")
            .contains("not valid JSON"),
        "{out}"
    );
}

#[test]
fn input_nested_ten_thousand_deep_is_rejected_without_crashing() {
    let dir = Scratch::new("deep-input");
    let def = pass_machine(&dir);
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let input = dir.write("deep.json", deep);
    let out = exec(&["--definition", path(&def), "--input", path(&input)]);
    assert_eq!(out["status"], "INVALID_INPUT", "{out}");
    assert!(
        out["cause"]
            .as_str()
            .unwrap_or("")
            .contains("recursion limit"),
        "{out}"
    );
}

#[test]
fn ten_megabyte_input_is_a_data_limit_error() {
    let dir = Scratch::new("big-input");
    let def = pass_machine(&dir);
    let big = json!({"blob": "x".repeat(10 * 1024 * 1024)});
    let input = dir.write("big.json", big.to_string());
    let out = exec(&["--definition", path(&def), "--input", path(&input)]);
    assert_eq!(out["status"], "FAILED");
    assert_eq!(out["error"], "States.DataLimitExceeded");
}

#[test]
fn state_output_over_256_kib_is_a_data_limit_error() {
    let dir = Scratch::new("big-output");
    let def = dir.write(
        "def.json",
        json!({"StartAt": "Grow", "States": {"Grow": {"Type": "Pass", "Result": "y".repeat(300 * 1024), "End": true}}})
            .to_string(),
    );
    let out = exec(&["--definition", path(&def)]);
    assert_eq!(
        out["error"], "States.DataLimitExceeded",
        "{}",
        out["status"]
    );
}

#[test]
fn runaway_loop_stops_at_the_execution_time_cap() {
    let dir = Scratch::new("runaway");
    let def = dir.write(
        "loop.json",
        json!({"StartAt": "Spin", "States": {
            "Spin": {"Type": "Pass", "Next": "Check"},
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": true, "Next": "Done"}], "Default": "Spin"},
            "Done": {"Type": "Succeed"}}})
        .to_string(),
    );
    // The virtual clock never advances in a busy loop; the cap still holds in real time.
    let out = exec(&[
        "--definition",
        path(&def),
        "--clock",
        "virtual",
        "--timeout-seconds",
        "1",
    ]);
    assert_eq!(out["status"], "TIMED_OUT", "{out}");
    assert_eq!(out["error"], "States.Timeout");
}

#[test]
fn definition_timeout_seconds_times_out_a_long_wait() {
    let dir = Scratch::new("def-timeout");
    let def = dir.write(
        "wait.json",
        json!({"TimeoutSeconds": 10, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}})
            .to_string(),
    );
    let out = exec(&["--definition", path(&def), "--clock", "virtual"]);
    assert_eq!(out["status"], "TIMED_OUT", "{out}");
    // As AWS reports it: the error name, no cause.
    assert_eq!(out["error"], "States.Timeout");
    assert_eq!(out["cause"], Value::Null, "{out}");
}

#[test]
fn virtual_clock_runs_waits_instantly_and_in_order() {
    let dir = Scratch::new("virtual-waits");
    let def = dir.write(
        "par.json",
        json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "Slow", "States": {"Slow": {"Type": "Wait", "Seconds": 200, "Next": "S2"},
                "S2": {"Type": "Pass", "Parameters": {"t.$": "$$.State.EnteredTime"}, "End": true}}},
            {"StartAt": "Fast", "States": {"Fast": {"Type": "Wait", "Seconds": 100, "Next": "F2"},
                "F2": {"Type": "Pass", "Parameters": {"t.$": "$$.State.EnteredTime"}, "End": true}}}
        ]}}})
        .to_string(),
    );
    let started = std::time::Instant::now();
    let out = exec(&["--definition", path(&def), "--clock", "virtual"]);
    assert!(
        started.elapsed().as_secs() < 60,
        "virtual waits must not sleep"
    );
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let t = |i: usize| out["output"][i]["t"].as_str().unwrap_or("").to_string();
    assert!(
        t(1) < t(0),
        "the 100 s wait must end before the 200 s one: {out}"
    );
}

/// `--repeat N` prints one outcome on stdout, as a single run does, and the timing of all N
/// on stderr; with a log level other than OFF it is refused, since N executions' events
/// would drown it.
#[test]
fn repeat_runs_n_executions_prints_the_last_outcome_and_their_time() {
    let dir = Scratch::new("repeat");
    let def = pass_machine(&dir);
    let out = stepstream(&[
        "exec",
        "--definition",
        path(&def),
        "--input",
        r#"{"a":1}"#,
        "--repeat",
        "250",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");
    assert_eq!(result["output"], json!({"a": 1}), "{result}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("250 executions in "), "{stderr}");
    assert!(stderr.contains(" ns each, "), "{stderr}");

    // Refused with a level that logs (exit 2, named), taken with OFF.
    for (level, code) in [("ALL", 2), ("OFF", 0)] {
        let out = stepstream(&[
            "exec",
            "--definition",
            path(&def),
            "--repeat",
            "2",
            "--log-level",
            level,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{level}: {stderr}");
        assert_eq!(
            stderr.contains("cannot be used with --log-level"),
            code == 2,
            "{level}: {stderr}"
        );
    }
    let zero = stepstream(&["exec", "--definition", path(&def), "--repeat", "0"]);
    assert!(String::from_utf8_lossy(&zero.stderr).contains("from 1 to 1000000000"));
}

/// The training of the profile-guided release build (`scripts/pgo_train.py`, run by
/// `scripts/release.sh`, which CI does not run: three release builds) drives this CLI:
/// `exec --repeat` over machine folders, then `run --demo` of the etl machine. Run here
/// with this build on the examples, so that a CLI change that would leave the release
/// build trained on nothing fails the suite instead.
#[test]
fn the_release_builds_training_runs_every_example_and_the_demo_pipeline() {
    let dir = Scratch::new("pgo-train");
    let log = dir.0.join("demo.log");
    let root = env!("CARGO_MANIFEST_DIR");
    let examples = [
        "article-status",
        "order-processing",
        "parallel",
        "retry-catch",
    ]
    .map(|e| format!("{root}/examples/{e}"));
    let out = std::process::Command::new("python3")
        .current_dir(root)
        .args([
            "scripts/pgo_train.py",
            "--repeat",
            "3",
            "--demo",
            "500",
            "--log",
            path(&log),
        ])
        .arg(env!("CARGO_BIN_EXE_stepstream"))
        .args(&examples)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let demo = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(out.status.success(), "{stderr}\ndemo:\n{demo}");
    assert!(
        stderr.contains(
            "4 machines ran 3 executions each, 0 refused before running, 0 crashed or hung"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("the demo pipeline ran 500 requests"),
        "{stderr}"
    );
    assert!(
        demo.contains("SUCCEEDED 500"),
        "the demo's summary:\n{demo}"
    );
}

/// `stepstream exec` of a definition with mocked Task answers, on the virtual clock.
fn exec_mocked(def: &std::path::Path, mocks: &std::path::Path) -> serde_json::Value {
    exec(&[
        "--definition",
        path(def),
        "--mocks",
        path(mocks),
        "--clock",
        "virtual",
    ])
}

/// InputPath, OutputPath and TimeoutSecondsPath that find nothing: AWS's cause quotes its
/// JSONPath library (`Invalid path ... : No results for path: ...`), and a missing name
/// midway is named by the path up to it. A Wait's paths have their own wording, and show
/// a string value without quotes.
#[test]
fn paths_that_find_nothing_or_bad_values_are_worded_as_aws_words_them() {
    let dir = Scratch::new("path-miss");
    let wait = |field: &str| json!({"Type": "Wait", field: "$.n", "End": true});
    for (state, n, cause) in [
        (json!({"Type": "Pass", "InputPath": "$.NoSuchInputPath", "End": true}), json!(0),
         "Invalid path '$.NoSuchInputPath' : No results for path: $['NoSuchInputPath']"),
        (json!({"Type": "Pass", "OutputPath": "$.no.such.path", "End": true}), json!(0),
         "Invalid path '$.no.such.path' : Missing property in path $['no']"),
        (json!({"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f",
                "TimeoutSecondsPath": "$.t", "End": true}), json!(0),
         "Invalid path '$.t' : No results for path: $['t']"),
        (json!({"Type": "Wait", "SecondsPath": "$.t", "End": true}), json!(0),
         "The SecondsPath parameter does not reference an input value: $.t"),
        (wait("SecondsPath"), json!(-1),
         "The SecondsPath parameter references a negative value: $.n == -1"),
        (wait("SecondsPath"), json!(1.5),
         "The SecondsPath parameter cannot be parsed as a long value: $.n == 1.5"),
        (wait("SecondsPath"), json!("ten"),
         "The SecondsPath parameter cannot be parsed as a long value: $.n == ten"),
        (wait("TimestampPath"), json!("2016-12-05T21:29:29"),
         "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: $.n == 2016-12-05T21:29:29"),
    ] {
        let def = dir.write(
            "def.json",
            json!({"StartAt": "S", "States": {"S": state}}).to_string(),
        );
        let input = dir.write("input.json", json!({ "n": n }).to_string());
        let out = exec(&["--definition", path(&def), "--input", path(&input)]);
        assert_eq!(out["error"], "States.Runtime", "{out}");
        assert_eq!(
            out["cause"],
            format!("An error occurred while executing the state 'S' (entered at the event id #2). {cause}")
        );
    }
}

#[test]
fn mocks_answer_task_states_in_call_order() {
    let dir = Scratch::new("mocks");
    let def = dir.write(
        "def.json",
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f",
            "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1}], "End": true}}})
        .to_string(),
    );
    let mocks = dir.write(
        "mocks.json",
        json!({"T": [{"error": "Flaky", "cause": "try again"}, {"result": {"ok": true}}]})
            .to_string(),
    );
    let out = exec_mocked(&def, &mocks);
    assert_eq!(
        out,
        json!({"status": "SUCCEEDED", "output": {"ok": true}, "error": null, "cause": null})
    );
}

/// AWS: States.Runtime ends the execution even where a Catch or a Retry names it (the
/// Catch half is recorded from AWS; the Retry half follows the same rule).
#[test]
fn a_runtime_error_is_neither_caught_nor_retried_even_by_name() {
    let dir = Scratch::new("runtime-uncaught");
    for (i, handler) in [
        json!({"Catch": [{"ErrorEquals": ["States.Runtime"], "Next": "Caught"}]}),
        // The Catch on another error keeps "Caught" reachable (validation asks for it).
        json!({"Retry": [{"ErrorEquals": ["States.Runtime"], "IntervalSeconds": 1}],
               "Catch": [{"ErrorEquals": ["Other"], "Next": "Caught"}]}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut task = json!({"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f",
            "OutputPath": "$.no.such", "End": true});
        task.as_object_mut()
            .unwrap()
            .extend(handler.as_object().unwrap().clone());
        let def = dir.write(
            &format!("def{i}.json"),
            json!({"StartAt": "T", "States": {"T": task, "Caught": {"Type": "Pass", "End": true}}})
                .to_string(),
        );
        let mocks = dir.write(
            &format!("mocks{i}.json"),
            json!({"T": [{"result": {}}, {"result": {"no": {"such": 1}}}]}).to_string(),
        );
        let out = exec_mocked(&def, &mocks);
        assert_eq!(out["status"], "FAILED", "{out}");
        assert_eq!(out["error"], "States.Runtime", "{out}");
    }
}

#[test]
fn a_billion_element_range_is_an_intrinsic_failure() {
    let dir = Scratch::new("huge-range");
    let def = dir.write(
        "def.json",
        json!({"StartAt": "R", "States": {"R": {"Type": "Pass",
            "Parameters": {"r.$": "States.ArrayRange(1, 1000000000, 1)"}, "End": true}}})
        .to_string(),
    );
    let out: Value = exec(&["--definition", path(&def)]);
    assert_eq!(out["status"], "FAILED");
    assert_eq!(out["error"], "States.IntrinsicFailure");
}

#[test]
fn run_refuses_to_start_with_a_broken_state_machine() {
    let dir = Scratch::new("run-broken-machine");
    let machines = dir.0.join("machines");
    std::fs::create_dir_all(&machines).expect("temp dir is writable");
    std::fs::write(
        machines.join("broken.asl.json"),
        json!({"StartAt": "Nowhere", "States": {"A": {"Type": "Succeed"}}}).to_string(),
    )
    .expect("temp dir is writable");
    let cfg = dir.write(
        "run.toml",
        format!(
            "[kafka]\nbrokers = \"127.0.0.1:1\"\n[engine]\nstate_machines_dir = {:?}\n",
            path(&machines)
        ),
    );
    let out = stepstream(&["run", "--config", path(&cfg)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.asl.json is not a valid state machine"),
        "{err}"
    );
    assert!(err.contains("/StartAt"), "{err}");
}

#[test]
fn run_fails_fast_when_the_brokers_are_unreachable() {
    let dir = Scratch::new("run-unreachable");
    let cfg = dir.write(
        "run.toml",
        format!(
            "[kafka]\nbrokers = \"127.0.0.1:1\"\n[engine]\nstate_machines_dir = {:?}\n",
            path(&common::root().join("config/state-machines"))
        ),
    );
    let started = std::time::Instant::now();
    let out = stepstream(&["run", "--config", path(&cfg)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        started.elapsed().as_secs() < 60,
        "start-up must give up, not hang"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach Kafka at 127.0.0.1:1"), "{err}");
}

#[test]
fn unknown_config_keys_stop_start_up() {
    let dir = Scratch::new("run-bad-config");
    let cfg = dir.write("run.toml", "[engine]\nshardz = 2\n");
    let out = stepstream(&["run", "--config", path(&cfg)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shardz"));
}

#[test]
fn exec_prints_history_events_at_the_log_level_asked() {
    let dir = Scratch::new("exec-log");
    let def = dir.write(
        "loop.json",
        json!({"StartAt": "Spin", "States": {
            "Spin": {"Type": "Pass", "Next": "Check"},
            "Check": {"Type": "Choice", "Choices": [
                {"Variable": "$.stop", "IsPresent": true, "Next": "Done"}], "Default": "Spin"},
            "Done": {"Type": "Succeed"}}})
        .to_string(),
    );
    let events = |level: &str, input: &str| -> Vec<Value> {
        let out = stepstream(&[
            "exec",
            "--definition",
            path(&def),
            "--input",
            input,
            "--clock",
            "virtual",
            "--timeout-seconds",
            "1",
            "--log-level",
            level,
        ]);
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("type").is_some())
            .collect()
    };
    let types = |evs: &[Value]| -> Vec<String> {
        evs.iter()
            .map(|e| e["type"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    let ok = events("ALL", r#"{"stop": 1}"#);
    assert_eq!(
        types(&ok),
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "ChoiceStateEntered",
            "ChoiceStateExited",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded"
        ]
    );
    // No data without --log-execution-data.
    assert!(ok.iter().all(|e| e["details"].get("input").is_none()));
    // A runaway loop fills the buffer's cap; the execution's own end still gets out.
    let runaway = events("ALL", "{}");
    assert_eq!(runaway.len(), 256);
    assert_eq!(
        runaway.last().map(|e| e["type"].clone()),
        Some(json!("ExecutionTimedOut"))
    );
    assert_eq!(
        types(&events("ERROR", r#"{"stop": 1}"#)),
        Vec::<String>::new()
    );
    assert_eq!(types(&events("FATAL", "{}")), ["ExecutionTimedOut"]);
}

/// `$$.Execution` holds RedriveCount in a Standard execution (exec's default) and in an
/// Express one started asynchronously, not in one started synchronously: AWS's recordings
/// of StartExecution on Standard and Express machines, and of StartSyncExecution and
/// TestState (LocalStack's `test_express_async`, `test_express_sync`,
/// `test_state_task_catch_error`).
#[test]
fn the_workflow_type_decides_whether_the_context_counts_redrives() {
    let dir = Scratch::new("workflow-type");
    let def = dir.write(
        "def.json",
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass",
            "Parameters": {"execution.$": "$$.Execution"}, "End": true}}})
        .to_string(),
    );
    let run = |extra: &[&str]| {
        let mut args = vec!["--definition", path(&def), "--input", "{}"];
        args.extend_from_slice(extra);
        exec(&args)
    };
    for standard in [run(&[]), run(&["--type", "STANDARD"])] {
        let e = &standard["output"]["execution"];
        assert_eq!(e["RedriveCount"], 0, "{standard}");
        let id = e["Id"].as_str().unwrap_or_default();
        assert!(id.contains(":execution:stepstream:"), "{standard}");
        assert!(
            id.ends_with(e["Name"].as_str().unwrap_or("?")),
            "{standard}"
        );
    }
    let express = run(&["--type", "EXPRESS"]);
    let e = &express["output"]["execution"];
    assert_eq!(e["RedriveCount"], 0, "{express}");
    assert!(
        e["Id"]
            .as_str()
            .unwrap_or_default()
            .contains(":express:stepstream:"),
        "{express}"
    );
    let express = run(&["--type", "EXPRESS", "--sync"]);
    let e = &express["output"]["execution"];
    assert!(e.get("RedriveCount").is_none(), "{express}");
    let id = e["Id"].as_str().unwrap_or_default();
    assert!(id.contains(":express:stepstream:"), "{express}");
    for k in ["Id", "Input", "Name", "RoleArn", "StartTime"] {
        assert!(e.get(k).is_some(), "{k} in {express}");
    }
}

/// A Standard machine's job waits, callbacks and Activities: `exec` (Standard by default)
/// accepts them and a mock answers them, with `$$.Task.Token` set for the Parameters; an
/// Express machine refuses them; without a mock the failure says to give one. A callback
/// that failed naming nothing reaches its catcher as `{"Error": null, "Cause": null}`
/// (LocalStack's recordings `test_sqs_wait_for_task_token`, `test_sync_with_task_token`,
/// `test_sqs_failure_in_wait_for_task_tok_no_error_field`).
#[test]
fn standard_only_integrations_run_on_mocks() {
    let dir = Scratch::new("standard-only");
    let def = |resource: &str| {
        // An Activity's worker gets its token from GetActivityTask, not from the Parameters.
        let token = match resource.contains(":activity:") {
            true => json!({}),
            false => json!({"TaskToken.$": "$$.Task.Token"}),
        };
        json!({"StartAt": "W", "States": {
            "W": {"Type": "Task", "Resource": resource,
                  "Parameters": {"QueueUrl": "q", "MessageBody": token},
                  "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failed", "Next": "Caught"}],
                  "End": true},
            "Caught": {"Type": "Pass", "End": true}}})
        .to_string()
    };
    let answered = dir.write("answered.json", r#"{"W": [{"result": "done"}]}"#);
    let unnamed = dir.write("unnamed.json", r#"{"W": [{"error": null}]}"#);
    for (i, resource) in [
        "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "arn:aws:states:::states:startExecution.sync",
        "arn:aws:states:::states:startExecution.sync:2",
        "arn:aws:states:us-east-1:111111111111:activity:Approve",
    ]
    .into_iter()
    .enumerate()
    {
        let d = dir.write(&format!("def{i}.json"), def(resource));
        let out = exec_mocked(&d, &answered);
        assert_eq!(out["status"], "SUCCEEDED", "{resource}: {out}");
        assert_eq!(out["output"], "done", "{resource}: {out}");
        let out = exec_mocked(&d, &unnamed);
        assert_eq!(
            out["output"]["failed"],
            json!({"Error": null, "Cause": null}),
            "{resource}: {out}"
        );
        let out = exec(&[
            "--definition",
            path(&d),
            "--input",
            "{}",
            "--type",
            "EXPRESS",
        ]);
        assert_eq!(out["status"], "INVALID_DEFINITION", "{resource}: {out}");
        let out = exec(&["--definition", path(&d), "--input", "{}"]);
        let cause = out["output"]["failed"]["Cause"]
            .as_str()
            .unwrap_or_default();
        assert!(cause.contains("give the state a mock"), "{resource}: {out}");
    }
}
