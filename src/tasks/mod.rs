//! What a Task state calls.
//!
//! A [`TaskHandler`] turns a task input into a result or a [`WorkflowError`]. [`Tasks`]
//! picks the handler for a call: a mock for the state if one is configured, else the
//! handler registered for the state's `Resource`.

pub mod builtin;
pub mod mock;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::error::WorkflowError;

/// The future a handler returns; executions run on one thread, so it need not be `Send`.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<Value, WorkflowError>>>>;

/// One invocation of a Task state.
#[derive(Debug)]
pub struct TaskCall<'a> {
    /// The Task state's name.
    pub state: &'a str,
    /// The state's `Resource`.
    pub resource: &'a str,
    /// The effective task input (after InputPath and Parameters).
    pub input: Value,
    /// How many times this state was called before in this execution (0 for the first call).
    pub state_calls: u32,
    /// How many times this resource was called before in this execution.
    pub resource_calls: u32,
}

/// Something a Task state can call.
pub trait TaskHandler: Send + Sync {
    /// Runs one call.
    fn call(&self, call: TaskCall<'_>) -> TaskFuture;
}

/// The handlers available to executions, chosen by state name (mocks) or resource.
#[derive(Clone, Default)]
pub struct Tasks {
    mocks: Option<Arc<mock::Mocks>>,
    by_resource: HashMap<String, Arc<dyn TaskHandler>>,
}

impl Tasks {
    /// No handlers: every Task fails with a clear error.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers Task states by name from these mocks first.
    pub fn with_mocks(mut self, mocks: mock::Mocks) -> Self {
        self.mocks = Some(Arc::new(mocks));
        self
    }

    /// Registers a handler for one resource ARN.
    pub fn register(&mut self, resource: impl Into<String>, handler: Arc<dyn TaskHandler>) {
        self.by_resource.insert(resource.into(), handler);
    }

    /// Registers built-in handlers from a `{"<resource>": "<spec>"}` object (see [`builtin`]).
    pub fn register_specs(&mut self, specs: &Value) -> Result<(), String> {
        let Some(map) = specs.as_object() else {
            return Err("task specs must be a JSON object of resource -> spec".into());
        };
        for (resource, spec) in map {
            let spec = spec
                .as_str()
                .ok_or_else(|| format!("the spec for {resource:?} must be a string"))?;
            let handler = builtin::Builtin::parse(spec).map_err(|e| format!("{resource}: {e}"))?;
            self.register(resource.clone(), Arc::new(handler));
        }
        Ok(())
    }

    /// Runs a call with the handler that answers it.
    pub fn call(&self, call: TaskCall<'_>) -> TaskFuture {
        if let Some(m) = &self.mocks {
            if m.has(call.state) {
                return m.call(call);
            }
        }
        match self.by_resource.get(call.resource) {
            Some(h) => h.call(call),
            None => {
                let err = WorkflowError::new(
                    crate::error::names::TASK_FAILED,
                    format!(
                        "no task handler is configured for resource {:?} (state {:?})",
                        call.resource, call.state
                    ),
                );
                Box::pin(async move { Err(err) })
            }
        }
    }
}

/// Checks the arguments AWS validates before an optimized service integration starts,
/// whichever handler then answers the call (mocks included).
pub fn check_service_parameters(resource: &str, input: &Value) -> Result<(), String> {
    let base = resource
        .strip_suffix(".sync")
        .or_else(|| resource.strip_suffix(".waitForTaskToken"))
        .unwrap_or(resource);
    if base == "arn:aws:states:::apigateway:invoke" {
        // API Gateway headers are multi-valued: every value must be a list of strings.
        if let Some(h) = input.get("Headers") {
            let ok = h.as_object().is_some_and(|m| {
                m.values()
                    .all(|v| v.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
            });
            if !ok {
                return Err("The value of the field 'Headers' has an invalid format".into());
            }
        }
    }
    Ok(())
}
