//! The Context object (`$$`): execution, state machine, current state, Map item.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

/// Builds the Context object at the start of an execution.
pub fn root(
    execution_arn: &str,
    name: &str,
    machine_arn: &str,
    machine: &str,
    input: &Value,
    start: DateTime<Utc>,
) -> Value {
    json!({
        "Execution": {
            "Id": execution_arn,
            "Input": input,
            "StartTime": timestamp(start),
            "Name": name,
            "RoleArn": "arn:aws:iam::000000000000:role/stepstream",
            "RedriveCount": 0,
        },
        "StateMachine": {"Id": machine_arn, "Name": machine},
    })
}

/// Updates `State` on entering a state.
pub fn enter_state(ctx: &mut Value, name: &str, entered: DateTime<Utc>, with_retry_count: bool) {
    let Value::Object(root) = ctx else { return };
    let mut state = Map::new();
    state.insert("Name".into(), Value::String(name.to_string()));
    state.insert("EnteredTime".into(), Value::String(timestamp(entered)));
    if with_retry_count {
        state.insert("RetryCount".into(), Value::from(0));
    }
    root.insert("State".into(), Value::Object(state));
}

/// Sets `State.RetryCount`.
pub fn set_retry_count(ctx: &mut Value, n: u32) {
    if let Some(s) = ctx.get_mut("State").and_then(Value::as_object_mut) {
        s.insert("RetryCount".into(), Value::from(n));
    }
}

/// Sets `Map.Item` for one Map iteration.
pub fn set_map_item(ctx: &mut Value, index: usize, value: &Value) {
    if let Value::Object(root) = ctx {
        root.insert(
            "Map".into(),
            json!({"Item": {"Index": index, "Value": value}}),
        );
    }
}

/// AWS's timestamp format: RFC 3339 with milliseconds and `Z`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
