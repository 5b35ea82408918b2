//! Parse, compile and run: a definition, optionally followed by a NUL byte and the
//! execution input, runs through `stepstream exec`'s code path with a virtual clock (Wait
//! states pass at once) and a short execution cap, so every run ends in bounded time.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use stepstream::cli::exec::{run, ExecArgs};
use stepstream::exec::ClockMode;

/// Every `Resource` string in the definition, answered by the built-in identity task so
/// that Task states succeed and the states after them run too. Bounded by the definition.
fn identity_tasks(v: &Value, out: &mut Map<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if let ("Resource", Value::String(r)) = (k.as_str(), x) {
                    out.insert(r.clone(), json!("identity"));
                }
                identity_tasks(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| identity_tasks(x, out)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let (def, input) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(def) = serde_json::from_slice::<Value>(def) else {
        return;
    };
    let input = match input {
        Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => v,
            Err(_) => return,
        },
        None => stepstream_fuzz::document().to_serde(),
    };
    let mut tasks = Map::new();
    identity_tasks(&def, &mut tasks);
    let args = ExecArgs {
        tasks: Some(Value::Object(tasks)),
        clock: ClockMode::Virtual,
        max_duration: Some(Duration::from_millis(200)),
        ..ExecArgs::default()
    };
    let out = run(&def, input, &args);
    let status = out["status"].as_str().unwrap_or_default();
    assert!(
        matches!(
            status,
            "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "INVALID_DEFINITION" | "INVALID_ARGUMENTS"
        ),
        "unexpected status {status:?}"
    );
});
