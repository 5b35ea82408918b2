//! Mocked Task results for tests and `stepstream exec --mocks`.
//!
//! Format: `{"<state name>": [{"result": <json>} | {"error": "E", "cause": "C"}, ...]}`;
//! the n-th call of that state in one execution gets the n-th entry.

use std::collections::HashMap;

use crate::value::Value;

use super::{TaskAnswer, TaskCall, TaskFuture, TaskHandler};
use crate::error::WorkflowError;

/// One mocked response.
#[derive(Debug, Clone)]
pub enum MockResponse {
    /// The task succeeds with this result.
    Result(Value),
    /// The task fails with this error and cause.
    Error(WorkflowError),
}

/// Mocked responses by Task state name.
#[derive(Debug, Clone, Default)]
pub struct Mocks {
    by_state: HashMap<String, Vec<MockResponse>>,
}

impl Mocks {
    /// Reads the mocks format; every malformed entry is named in the error.
    pub fn from_json<D: crate::value::convert::AsValue + ?Sized>(v: &D) -> Result<Mocks, String> {
        let v = v.as_value();
        let Some(map) = v.as_object() else {
            return Err("mocks must be a JSON object of state name -> list of responses".into());
        };
        let mut by_state = HashMap::new();
        for (state, list) in map {
            let Some(items) = list.as_array() else {
                return Err(format!("mocks for {state:?} must be an array"));
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let obj = item
                    .as_object()
                    .ok_or_else(|| format!("mock {state:?}[{i}] must be an object"))?;
                if let Some(r) = obj.get("result") {
                    out.push(MockResponse::Result(r.clone()));
                } else if obj.contains_key("error") || obj.contains_key("cause") {
                    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
                    out.push(MockResponse::Error(WorkflowError {
                        error: text("error"),
                        cause: text("cause"),
                    }));
                } else {
                    return Err(format!(
                        "mock {state:?}[{i}] needs \"result\" or \"error\"/\"cause\""
                    ));
                }
            }
            by_state.insert(state.to_string(), out);
        }
        Ok(Mocks { by_state })
    }

    /// Mocks from responses already read (see [`super::mock_config`]).
    pub(super) fn from_parts(by_state: HashMap<String, Vec<MockResponse>>) -> Mocks {
        Mocks { by_state }
    }

    /// Whether this state is mocked.
    pub fn has(&self, state: &str) -> bool {
        self.by_state.contains_key(state)
    }
}

impl TaskHandler for Mocks {
    fn call(&self, call: TaskCall<'_>) -> TaskFuture {
        self.answer(call).into_future()
    }

    fn answer(&self, call: TaskCall<'_>) -> TaskAnswer {
        TaskAnswer::Now(
            match self
                .by_state
                .get(call.state)
                .and_then(|l| l.get(call.state_calls as usize))
            {
                Some(MockResponse::Result(v)) => Ok(v.clone()),
                Some(MockResponse::Error(e)) => Err(e.clone()),
                None => Err(WorkflowError::new(
                    crate::error::names::TASK_FAILED,
                    format!(
                        "state {:?} was called {} times but only {} mocked responses exist",
                        call.state,
                        call.state_calls + 1,
                        self.by_state.get(call.state).map_or(0, Vec::len)
                    ),
                )),
            },
        )
    }
}
