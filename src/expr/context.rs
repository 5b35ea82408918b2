//! The Context object (`$$`): execution, state machine, current state, Map item.
//!
//! The execution-level part (Execution, which holds the whole execution input, and
//! StateMachine) is built once and shared behind an `Arc` by every Parallel branch and
//! Map iteration; only the small per-state and per-item parts are owned by a frame. A
//! `$$.Execution...` lookup reads the shared part in place, so a Map over n items holds
//! one copy of the input, not n.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::value::{Map, Value};

use crate::express::MAX_PAYLOAD_BYTES;

/// The Context object as a shared execution part plus per-frame State and Map parts.
#[derive(Debug, Clone)]
pub struct Context {
    /// `{"Execution": .., "StateMachine": ..}`, shared by every frame of an execution.
    shared: Option<Arc<Value>>,
    /// The per-frame members, boxed: every parked execution holds a Context, most of
    /// them empty (machines that never read `$$`), so the empty one is kept small.
    local: Option<Box<Local>>,
    /// The largest value (bytes of JSON) one template or intrinsic may build.
    max_value_bytes: usize,
}

/// The members of the Context object that belong to one frame.
#[derive(Debug, Clone, Default)]
struct Local {
    /// `State`, set on entering a state.
    state: Option<Value>,
    /// `Map`, set in a Map iteration (and its ItemSelector).
    map: Option<Value>,
    /// `Task` (`{"Token": ..}`), set on entering a Task that waits for a callback.
    task: Option<Value>,
}

impl Default for Context {
    fn default() -> Self {
        Context::EMPTY
    }
}

impl Context {
    /// A Context object with nothing in it (machines that never read `$$`).
    pub const EMPTY: Context = Context {
        shared: None,
        local: None,
        max_value_bytes: MAX_PAYLOAD_BYTES,
    };

    /// A Context object that is exactly `v` (tests, tools).
    pub fn from_value(v: Value) -> Context {
        Context {
            shared: Some(Arc::new(v)),
            ..Context::EMPTY
        }
    }

    /// The same Context with another cap on the values templates and intrinsics build.
    pub fn with_max_value_bytes(mut self, max: usize) -> Context {
        self.max_value_bytes = max;
        self
    }

    /// The largest value (bytes of JSON) one template or intrinsic may build.
    pub fn max_value_bytes(&self) -> usize {
        self.max_value_bytes
    }

    /// The top-level member `name` (`Execution`, `State`, `Map`, ...), read in place.
    pub fn part(&self, name: &str) -> Option<&Value> {
        let local = self.local.as_deref();
        match name {
            "State" if local.is_some_and(|l| l.state.is_some()) => local?.state.as_ref(),
            "Map" if local.is_some_and(|l| l.map.is_some()) => local?.map.as_ref(),
            "Task" if local.is_some_and(|l| l.task.is_some()) => local?.task.as_ref(),
            _ => self.shared.as_deref().and_then(|v| v.get(name)),
        }
    }

    /// The whole Context object as one value; copies the execution input, so only for
    /// paths that really ask for `$$` itself (or search it with a wildcard or filter).
    pub fn to_value(&self) -> Value {
        let local = self.local.as_deref().cloned().unwrap_or_default();
        let mut root = match self.shared.as_deref() {
            Some(Value::Object(m)) => m.clone(),
            Some(other) if local.state.is_none() && local.map.is_none() && local.task.is_none() => {
                return other.clone()
            }
            _ => Map::new(),
        };
        if let Some(s) = local.state {
            root.insert("State".into(), s);
        }
        if let Some(m) = local.map {
            root.insert("Map".into(), m);
        }
        if let Some(t) = local.task {
            root.insert("Task".into(), t);
        }
        Value::Object(root)
    }

    /// Updates `State` on entering a state.
    pub fn enter_state(&mut self, name: &str, entered: DateTime<Utc>, with_retry_count: bool) {
        let mut state = Map::new();
        state.insert("Name".into(), Value::from(name));
        state.insert("EnteredTime".into(), Value::from(timestamp(entered)));
        if with_retry_count {
            state.insert("RetryCount".into(), Value::from(0));
        }
        let local = self.local.get_or_insert_with(Box::default);
        local.state = Some(Value::Object(state));
        local.task = None;
    }

    /// Sets `Task.Token`, on entering a Task that waits for a callback
    /// (`.waitForTaskToken`), after [`Context::enter_state`].
    pub fn set_task_token(&mut self, token: &str) {
        self.local.get_or_insert_with(Box::default).task =
            Some(obj([("Token", Value::from(token))]));
    }

    /// Sets `State.RetryCount`.
    pub fn set_retry_count(&mut self, n: u32) {
        let state = self.local.as_deref_mut().and_then(|l| l.state.as_mut());
        if let Some(s) = state.and_then(Value::as_object_mut) {
            s.insert("RetryCount".into(), Value::from(n));
        }
    }

    /// This Context for one Map iteration: `Map.Item` set, the shared part shared.
    pub fn for_map_item(&self, index: usize, value: Value) -> Context {
        Context {
            shared: self.shared.clone(),
            local: Some(Box::new(Local {
                state: self.local.as_ref().and_then(|l| l.state.clone()),
                task: None,
                map: Some(obj([(
                    "Item",
                    obj([("Index", Value::from(index)), ("Value", value)]),
                )])),
            })),
            max_value_bytes: self.max_value_bytes,
        }
    }
}

/// The role every execution runs as (`$$.Execution.RoleArn`, ExecutionStarted's `roleArn`).
pub const ROLE_ARN: &str = "arn:aws:iam::000000000000:role/stepstream";

/// Builds the Context object at the start of an execution; `redrive_count`: its
/// `Execution` holds `RedriveCount` (all but a synchronously started Express execution).
pub fn root(
    execution_arn: &str,
    name: &str,
    machine_arn: &str,
    machine: &str,
    input: &Value,
    start: DateTime<Utc>,
    redrive_count: bool,
) -> Context {
    let mut execution = obj([
        ("Id", Value::from(execution_arn)),
        // Shared with the execution's data, not copied.
        ("Input", input.clone()),
        ("StartTime", Value::from(timestamp(start))),
        ("Name", Value::from(name)),
        ("RoleArn", Value::from(ROLE_ARN)),
    ]);
    if let (true, Value::Object(m)) = (redrive_count, &mut execution) {
        m.insert("RedriveCount".into(), Value::from(0));
    }
    Context::from_value(obj([
        ("Execution", execution),
        (
            "StateMachine",
            obj([
                ("Id", Value::from(machine_arn)),
                ("Name", Value::from(machine)),
            ]),
        ),
    ]))
}

/// An object of fixed keys, in order.
fn obj<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let mut m = Map::with_capacity(N);
    for (k, v) in entries {
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

/// AWS's timestamp format: RFC 3339 with milliseconds and `Z`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn map_items_share_the_execution_part() {
        let input = json!({"big": [1, 2, 3]});
        let t = DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default();
        let mut ctx = root("arn:x", "n", "arn:m", "m", &input, t, false);
        ctx.enter_state("S", t, false);
        let item = ctx.for_map_item(2, json!("v"));
        let (Some(a), Some(b)) = (&ctx.shared, &item.shared) else {
            panic!("both have a shared part")
        };
        assert!(
            Arc::ptr_eq(a, b),
            "the execution part must not be copied per item"
        );
        assert_eq!(
            item.part("Map"),
            Some(&json!({"Item": {"Index": 2, "Value": "v"}}))
        );
        assert_eq!(item.part("Execution").map(|e| &e["Input"]), Some(&input));
        let whole = item.to_value();
        let keys: Vec<_> = whole
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["Execution", "StateMachine", "State", "Map"]);
    }

    #[test]
    fn a_context_from_a_value_reads_every_member() {
        let c = Context::from_value(json!({"State": {"Name": "x"}, "Map": 1}));
        assert_eq!(c.part("State"), Some(&json!({"Name": "x"})));
        assert_eq!(c.part("Map"), Some(&json!(1)));
        assert_eq!(c.to_value(), json!({"State": {"Name": "x"}, "Map": 1}));
    }
}
