//! Hostile definitions and inputs through `stepstream exec`: an execution that copies a
//! lot, numbers from the data that make no sense, sizes measured as AWS measures them.
//! Each fails the execution cleanly (or succeeds) with bounded memory; none crashes it.

mod common;

use std::process::{Command, Stdio};

use common::{exec, map_over_item_values, stepstream, Scratch};
use serde_json::{json, Value};

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs `stepstream exec ARGS` to its end; returns the printed object and the child's
/// peak resident set size in kB (from `wait4`'s rusage, so no sample can miss the peak).
fn exec_with_peak_rss(dir: &Scratch, args: &[&str]) -> (Value, u64) {
    let out_file = dir.0.join("stdout.json");
    let stdout = std::fs::File::create(&out_file).expect("scratch file is writable");
    // Reaped by the wait4 below, which std's Child::wait cannot replace (no rusage).
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_stepstream"))
        .arg("exec")
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the stepstream binary runs");
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet waited for; status and usage are valid for writes.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(
        waited,
        pid,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    let text = std::fs::read_to_string(&out_file).expect("stdout was written");
    let v = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("exec printed no JSON object ({e}): {text:?}"));
    let peak_kb = u64::try_from(usage.ru_maxrss).expect("ru_maxrss is not negative");
    (v, peak_kb)
}

#[test]
fn a_map_reading_the_context_per_item_over_100k_items_stays_small() {
    let dir = Scratch::new("hostile-map");
    let def = dir.write("map.asl.json", map_over_item_values().to_string());
    // 100,000 zeros: 200 KB, within the 256 KiB input limit.
    let input = dir.write("input.json", json!(vec![0; 100_000]).to_string());
    // A time cap turns a return of the quadratic copying into a TIMED_OUT, not a hang.
    let (out, peak_kb) = exec_with_peak_rss(
        &dir,
        &[
            "--definition",
            path(&def),
            "--input",
            path(&input),
            "--timeout-seconds",
            "120",
        ],
    );
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    assert_eq!(
        out["output"],
        json!({"n": 100_000, "last": [{"v": 0, "i": 99_999}]})
    );
    // Before the Context object was shared, 10,000 items took 7.8 GB.
    eprintln!("peak RSS of exec over 100,000 items: {peak_kb} kB");
    assert!(peak_kb < 200 * 1024, "peak RSS {peak_kb} kB is over 200 MB");
}

#[test]
fn an_execution_past_its_memory_cap_fails_with_a_data_limit_error() {
    let dir = Scratch::new("hostile-cap");
    let def = dir.write("map.asl.json", map_over_item_values().to_string());
    let items: Vec<u32> = (0..20_000).collect();
    let input = dir.write("input.json", json!(items).to_string());
    let base = ["--definition", path(&def), "--input", path(&input)];
    let out = exec(&[&base[..], &["--max-memory-bytes", "1000000"]].concat());
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "States.DataLimitExceeded");
    let cause = out["cause"].as_str().unwrap_or_default();
    assert!(
        cause.contains("Map state 'M'") && cause.contains("1000000"),
        "{cause}"
    );
    // The same execution fits the default cap.
    assert_eq!(exec(&base)["status"], "SUCCEEDED");
}

#[test]
fn nested_maps_waiting_on_large_copies_stop_at_the_memory_cap() {
    let dir = Scratch::new("hostile-nested");
    // 40 x 40 iterations each hold a 200 KB copy of the input while they wait: 320 MB.
    let inner = json!({
        "Type": "Map", "ItemsPath": "$$.Execution.Input.a", "End": true,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Copy", "States": {
            "Copy": {"Type": "Pass", "Parameters": {"all.$": "$$.Execution.Input.blob"}, "Next": "W"},
            "W": {"Type": "Wait", "Seconds": 1, "Next": "Drop"},
            "Drop": {"Type": "Pass", "Result": 1, "End": true}
        }}
    });
    let def = json!({"StartAt": "Outer", "States": {"Outer": {
        "Type": "Map", "ItemsPath": "$.a", "End": true,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Inner",
            "States": {"Inner": inner}}
    }}});
    let d = dir.write("nested.asl.json", def.to_string());
    let input = json!({"a": (0..40).collect::<Vec<u32>>(), "blob": "x".repeat(200_000)});
    let i = dir.write("input.json", input.to_string());
    let (out, peak_kb) = exec_with_peak_rss(
        &dir,
        &[
            "--definition",
            path(&d),
            "--input",
            path(&i),
            "--clock",
            "virtual",
        ],
    );
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "States.DataLimitExceeded", "{out}");
    eprintln!("peak RSS of the nested Maps: {peak_kb} kB");
    assert!(peak_kb < 200 * 1024, "peak RSS {peak_kb} kB is over 200 MB");
}

#[test]
fn variables_count_against_the_memory_cap() {
    let dir = Scratch::new("hostile-vars");
    // Each of 40 iterations assigns a 200 KB variable and waits: 8 MB, over a 4 MB cap.
    let def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.a", "End": true,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Keep", "States": {
            "Keep": {"Type": "Pass", "Assign": {"kept.$": "$$.Execution.Input.blob"}, "Result": 0, "Next": "W"},
            "W": {"Type": "Wait", "Seconds": 1, "End": true}
        }}
    }}});
    let d = dir.write("vars.asl.json", def.to_string());
    let input = json!({"a": (0..40).collect::<Vec<u32>>(), "blob": "x".repeat(200_000)});
    let i = dir.write("input.json", input.to_string());
    let base = [
        "--definition",
        path(&d),
        "--input",
        path(&i),
        "--clock",
        "virtual",
    ];
    let out = exec(&[&base[..], &["--max-memory-bytes", "4000000"]].concat());
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "States.DataLimitExceeded", "{out}");
    assert_eq!(exec(&base)["status"], "SUCCEEDED");
}

#[test]
fn a_descendant_path_over_a_deep_input_fails_before_copying_every_subtree() {
    let dir = Scratch::new("hostile-descend");
    // 120 levels of 900 zeros: 218 KB of JSON whose `$..*` matches copy every subtree
    // once per ancestor (close to 1 GB of values before this was checked).
    let mut v = json!(vec![0; 900]);
    for _ in 0..120 {
        let mut level = vec![json!(0); 900];
        level.push(v);
        v = Value::Array(level);
    }
    let input = dir.write("deep.json", v.to_string());
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$..*", "End": true}}});
    let d = dir.write("def.asl.json", def.to_string());
    let (out, peak_kb) =
        exec_with_peak_rss(&dir, &["--definition", path(&d), "--input", path(&input)]);
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "States.DataLimitExceeded", "{out}");
    assert!(
        out["cause"]
            .as_str()
            .unwrap_or_default()
            .contains("InputPath"),
        "{out}"
    );
    assert!(peak_kb < 200 * 1024, "peak RSS {peak_kb} kB is over 200 MB");
}

#[test]
fn nested_intrinsic_arrays_stop_at_the_value_cap() {
    let dir = Scratch::new("hostile-array-bomb");
    // Four levels of ten: 10,000 copies of a 10 KB string (100 MB) if nothing measured them.
    let mut call = "$.s".to_string();
    for _ in 0..4 {
        call = format!("States.Array({})", vec![call; 10].join(", "));
    }
    let def = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Parameters": {"r.$": call}, "End": true
    }}});
    let d = dir.write("def.asl.json", def.to_string());
    let i = dir.write("input.json", json!({"s": "x".repeat(10_000)}).to_string());
    let (out, peak_kb) = exec_with_peak_rss(&dir, &["--definition", path(&d), "--input", path(&i)]);
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "States.DataLimitExceeded", "{out}");
    assert!(
        peak_kb < 60 * 1024,
        "peak RSS {peak_kb} kB: the copies were built"
    );
}

/// Runs `def` on `input` with the Task resource `arn:x` bound to `task` (a built-in spec).
fn run(dir: &Scratch, def: &Value, input: &Value, task: &str, extra: &[&str]) -> Value {
    let d = dir.write("def.asl.json", def.to_string());
    let tasks = json!({"arn:x": task}).to_string();
    let input = input.to_string();
    let mut args = vec![
        "--definition",
        path(&d),
        "--input",
        &input,
        "--tasks",
        &tasks,
    ];
    args.extend_from_slice(extra);
    exec(&args)
}

fn task_with(field: &str) -> Value {
    json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:x", field: "$.n", "End": true
    }}})
}

fn bad_numbers() -> [Value; 5] {
    [json!(-5), json!(0), json!(0.5), json!(1e300), json!("ten")]
}

fn assert_runtime_error(out: &Value, field: &str, what: &str) {
    assert_eq!(out["status"], "FAILED", "{what}: {out}");
    assert_eq!(out["error"], "States.Runtime", "{what}: {out}");
    let cause = out["cause"].as_str().unwrap_or_default();
    assert!(
        cause.contains(field),
        "{what}: the cause should name {field}: {cause}"
    );
}

#[test]
fn bad_task_timeouts_from_the_data_fail_cleanly_also_for_slow_tasks() {
    let dir = Scratch::new("hostile-timeouts");
    for field in ["TimeoutSecondsPath", "HeartbeatSecondsPath"] {
        // `identity` answers at once; `sleep 20` makes the engine arm a timer.
        for task in ["identity", "sleep 20"] {
            for n in bad_numbers() {
                let out = run(&dir, &task_with(field), &json!({"n": n}), task, &[]);
                assert_runtime_error(&out, field, &format!("{field} = {n} with {task}"));
            }
            let ok = run(&dir, &task_with(field), &json!({"n": 3}), task, &[]);
            assert_eq!(ok["status"], "SUCCEEDED", "{field} = 3 with {task}: {ok}");
        }
    }
}

#[test]
fn a_slow_task_past_its_timeout_from_the_data_times_out() {
    let dir = Scratch::new("hostile-slow");
    let out = run(
        &dir,
        &task_with("TimeoutSecondsPath"),
        &json!({"n": 1}),
        "sleep 5000",
        &["--clock", "virtual"],
    );
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "States.Timeout", "{out}");
}

#[test]
fn bad_wait_seconds_and_timestamps_from_the_data_fail_cleanly() {
    let dir = Scratch::new("hostile-wait");
    let wait = |field: &str| json!({"StartAt": "W", "States": {"W": {"Type": "Wait", field: "$.n", "End": true}}});
    // AWS reads SecondsPath as a Java long, so 2^64 - 1 is refused as 0.5 is.
    for n in [
        json!(-5),
        json!(0.5),
        json!(1e300),
        json!("ten"),
        json!(18_446_744_073_709_551_615u64),
    ] {
        let out = run(
            &dir,
            &wait("SecondsPath"),
            &json!({"n": n}),
            "identity",
            &[],
        );
        assert_runtime_error(&out, "SecondsPath", &format!("SecondsPath = {n}"));
    }
    for n in [json!("not a date"), json!(5), json!("2026-13-45T99:00:00Z")] {
        let out = run(
            &dir,
            &wait("TimestampPath"),
            &json!({"n": n}),
            "identity",
            &[],
        );
        assert_runtime_error(&out, "TimestampPath", &format!("TimestampPath = {n}"));
    }
    // A timestamp 2^31 s or more ahead fails the state at once, as on AWS (recorded: 24,856
    // days ahead); one nearer waits until the Express time cap ends the execution.
    let on_virtual_clock = |field: &str, n: Value| {
        run(
            &dir,
            &wait(field),
            &json!({ "n": n }),
            "identity",
            &["--clock", "virtual"],
        )
    };
    let out = on_virtual_clock("TimestampPath", json!("9999-12-31T23:59:59Z"));
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "States.Runtime", "{out}");
    let out = on_virtual_clock("TimestampPath", json!("2090-01-01T00:00:00Z"));
    assert_eq!(out["status"], "TIMED_OUT", "{out}");
    let out = on_virtual_clock("SecondsPath", json!(i64::MAX));
    assert_eq!(out["status"], "TIMED_OUT", "{out}");
}

#[test]
fn bad_map_counts_from_the_data_fail_cleanly() {
    let dir = Scratch::new("hostile-map-counts");
    let map = |field: &str| {
        json!({"StartAt": "M", "States": {"M": {
            "Type": "Map", "ItemsPath": "$.items", field: "$.n",
            "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "P",
                "States": {"P": {"Type": "Task", "Resource": "arn:x", "End": true}}},
            "End": true
        }}})
    };
    let cases: [(&str, &str, Vec<Value>); 3] = [
        (
            "MaxConcurrencyPath",
            "MaxConcurrency",
            vec![json!(-1), json!(0.5), json!(1e300), json!("x")],
        ),
        (
            "ToleratedFailureCountPath",
            "ToleratedFailureCount",
            vec![json!(-1), json!(0.5), json!(1e300), json!("x")],
        ),
        (
            "ToleratedFailurePercentagePath",
            "ToleratedFailurePercentage",
            vec![json!(-1), json!(101), json!(1e300), json!("x")],
        ),
    ];
    for (field, named, values) in cases {
        for task in ["identity", "sleep 5"] {
            for n in &values {
                let input = json!({"items": [1, 2, 3], "n": n});
                let out = run(&dir, &map(field), &input, task, &[]);
                assert_runtime_error(&out, named, &format!("{field} = {n} with {task}"));
            }
        }
    }
}

#[test]
fn bad_intrinsic_arguments_from_the_data_fail_cleanly() {
    let dir = Scratch::new("hostile-intrinsics");
    for (call, n) in [
        ("States.ArrayRange(0, $.n, 1)", json!(1e300)),
        ("States.ArrayRange(0, 10, $.n)", json!(0)),
        ("States.ArrayRange(0, $.n, 1)", json!(1_000_000)),
        ("States.ArrayPartition($.a, $.n)", json!(-1)),
        ("States.ArrayPartition($.a, $.n)", json!(1e300)),
        ("States.MathRandom(0, $.n)", json!(1e300)),
        ("States.MathRandom($.n, 1)", json!("x")),
        ("States.MathAdd($.n, 1)", json!(1e300)),
        ("States.StringSplit($.n, ',')", json!(5)),
        ("States.ArrayGetItem($.a, $.n)", json!(-1)),
        ("States.ArrayGetItem($.a, $.n)", json!(1e300)),
    ] {
        let def = json!({"StartAt": "P", "States": {"P": {
            "Type": "Pass", "Parameters": {"r.$": call}, "End": true
        }}});
        let out = run(
            &dir,
            &def,
            &json!({"a": [1, 2, 3], "n": n}),
            "identity",
            &[],
        );
        assert_eq!(out["status"], "FAILED", "{call} with {n}: {out}");
        assert_eq!(
            out["error"], "States.IntrinsicFailure",
            "{call} with {n}: {out}"
        );
    }
}

#[test]
fn exec_rejects_a_bad_timeout_with_exit_code_2() {
    let dir = Scratch::new("hostile-cli-timeout");
    let def = dir.write(
        "def.asl.json",
        json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}).to_string(),
    );
    for bad in ["1e300", "-5", "0", "NaN", "inf", "soon"] {
        let flag = format!("--timeout-seconds={bad}");
        let out = stepstream(&["exec", "--definition", path(&def), &flag]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "--timeout-seconds {bad}: {out:?}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--timeout-seconds"), "{bad}: {err}");
    }
    let out = stepstream(&["exec", "--definition", path(&def), "--max-memory-bytes=-1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn floats_are_measured_as_their_json_text() {
    let dir = Scratch::new("hostile-floats");
    let pass = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let d = dir.write("def.asl.json", pass.to_string());
    // 20,000 floats of 3 characters and a comma: 80 KB, well under 256 KiB.
    let small = dir.write("small.json", json!(vec![0.5; 20_000]).to_string());
    let out = exec(&["--definition", path(&d), "--input", path(&small)]);
    assert_eq!(out["status"], "SUCCEEDED", "{}", out["cause"]);
    // 300 KB of floats is over it.
    let big: Vec<f64> = (0..30_000).map(|i| f64::from(i) + 0.123456).collect();
    let text = json!(big).to_string();
    assert!(text.len() > 300_000);
    let big = dir.write("big.json", text);
    let out = exec(&["--definition", path(&d), "--input", path(&big)]);
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "States.DataLimitExceeded");
}

#[test]
fn a_jsonata_expression_that_doubles_a_string_stops_at_its_memory_budget() {
    let dir = Scratch::new("hostile-jsonata-memory");
    // 8 bytes doubled 40 times is 8 TiB; the engine's 1 s time limit alone let it reach
    // over a gigabyte first.
    let def = dir.write(
        "grow.asl.json",
        json!({"QueryLanguage": "JSONata", "StartAt": "Grow", "States": {"Grow": {
            "Type": "Pass",
            "Output": "{% ($f := function($s, $n){ $n = 0 ? $s : $f($s & $s, $n - 1) }; $length($f('xxxxxxxx', 40))) %}",
            "End": true
        }}})
        .to_string(),
    );
    let (out, peak_kb) = exec_with_peak_rss(&dir, &["--definition", path(&def)]);
    assert_eq!(out["status"], "FAILED", "{out}");
    assert_eq!(out["error"], "States.QueryEvaluationError", "{out}");
    let cause = out["cause"].as_str().unwrap_or_default();
    assert!(cause.contains("MiB of memory"), "{cause}");
    eprintln!("peak RSS of the doubling expression: {peak_kb} kB");
    // The budget is 64 MiB of live data; the last doubling may overshoot it about threefold.
    assert!(peak_kb < 400 * 1024, "peak RSS {peak_kb} kB is over 400 MB");
}
