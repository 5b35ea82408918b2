//! What a Task state calls.
//!
//! A [`TaskHandler`] turns a task input into a result or a [`WorkflowError`]. [`Tasks`]
//! picks the handler for a call: a mock for the state if one is configured, else the
//! handler registered for the state's `Resource`, else (when [`Tasks::with_real_tasks`]
//! enabled them) the real integrations: a Lambda function ARN or `lambda:invoke` goes to
//! [`lambda`], `http:invoke` to [`http`], `arn:stepstream:::kafka:produce` to [`kafka`],
//! DynamoDB, SQS, SNS, EventBridge and `aws-sdk:SERVICE:ACTION` resources to [`aws`],
//! `arn:stepstream:::kafka:invoke` to [`kafka_invoke`], `states:startExecution` to [`nested`].
//!
//! A program embedding stepstream binds its own Rust code with [`Tasks::register_fn`]:
//!
//! ```
//! use stepstream::tasks::{TaskError, Tasks};
//! let mut tasks = Tasks::new();
//! tasks.register_fn("arn:aws:lambda:us-east-1:1:function:Double", |input| async move {
//!     let n = input["n"].as_i64().ok_or_else(|| TaskError::new("BadInput", "n must be a number"))?;
//!     Ok(stepstream::json!({"n": n * 2}))
//! });
//! ```

pub mod aws;
pub mod builtin;
pub mod http;
pub mod kafka;
pub mod kafka_invoke;
pub mod lambda;
pub mod mock;
pub mod mock_config;
pub mod nested;
pub mod net;
pub mod replies;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::value::Value;

use crate::error::WorkflowError;

/// The error a task handler returns: a name Retry and Catch match, and a cause.
pub use crate::error::WorkflowError as TaskError;
pub use net::TasksConfig;

/// The future a handler returns; executions run on one thread, so it need not be `Send`.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<Value, WorkflowError>>>>;

/// A handler's answer to one call: at once, or a future to wait for.
pub enum TaskAnswer {
    /// Answered while called (built-in handlers, mocks): no future, no timer.
    Now(Result<Value, WorkflowError>),
    /// To be waited for (a service call).
    Later(TaskFuture),
}

impl TaskAnswer {
    /// The answer as a future, for callers that always wait.
    pub fn into_future(self) -> TaskFuture {
        match self {
            TaskAnswer::Now(r) => Box::pin(std::future::ready(r)),
            TaskAnswer::Later(f) => f,
        }
    }
}

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
    /// The state's `TimeoutSeconds` (or its Path's value), when it sets one; the
    /// interpreter enforces it, a handler that waits uses it instead of its own default.
    pub timeout: Option<std::time::Duration>,
    /// The execution the call belongs to.
    pub execution: &'a dyn ExecutionIds,
}

/// Names of the execution a task call belongs to, made only when a handler asks.
pub trait ExecutionIds {
    /// The execution's ARN (`$$.Execution.Id` when the machine reads the Context object).
    fn execution_arn(&self) -> &str;
    /// The state machine's ARN.
    fn state_machine_arn(&self) -> String;
}

// Debug for TaskCall without making an ARN up for it.
impl std::fmt::Debug for dyn ExecutionIds + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExecutionIds")
    }
}

/// Fixed names, for calls made outside an execution (tests, embedders' own calls).
#[derive(Debug, Clone, Default)]
pub struct FixedIds {
    /// The execution's ARN.
    pub execution_arn: String,
    /// The state machine's ARN.
    pub state_machine_arn: String,
}

impl ExecutionIds for FixedIds {
    fn execution_arn(&self) -> &str {
        &self.execution_arn
    }
    fn state_machine_arn(&self) -> String {
        self.state_machine_arn.clone()
    }
}

/// Something a Task state can call.
pub trait TaskHandler: Send + Sync {
    /// Runs one call.
    fn call(&self, call: TaskCall<'_>) -> TaskFuture;

    /// Runs one call, answering at once where the handler need not wait: the interpreter
    /// then runs the Task state without a future of its own (a boxed future and its
    /// set-up were a tenth of a small execution with built-in handlers).
    fn answer(&self, call: TaskCall<'_>) -> TaskAnswer {
        TaskAnswer::Later(self.call(call))
    }
}

/// The handlers available to executions, chosen by state name (mocks) or resource.
#[derive(Clone, Default)]
pub struct Tasks {
    /// Changes with every change of the handlers (0: none at all), so a route resolved by
    /// one set of handlers is never taken by another (see [`Tasks::answer_at`]).
    id: u64,
    mocks: Option<Arc<mock::Mocks>>,
    // Looked up once per call (SipHash was ~3 % of a small execution); keys come from
    // the operator's task specs and registrations, never from a request.
    by_resource: HashMap<String, Arc<dyn TaskHandler>, foldhash::fast::RandomState>,
    real: Option<Arc<RealTasks>>,
}

/// The handlers that call real services, sharing one config and one set of limits.
struct RealTasks {
    lambda: lambda::Lambda,
    http: http::Http,
    kafka: kafka::KafkaProduce,
    aws: aws::Aws,
    kafka_invoke: kafka_invoke::KafkaInvoke,
    start_execution: nested::StartExecution,
}

/// A handler made of an async closure (see [`Tasks::register_fn`]).
struct FnHandler<F>(F);

impl<F, Fut> TaskHandler for FnHandler<F>
where
    F: Fn(Value) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Value, WorkflowError>> + 'static,
{
    fn call(&self, call: TaskCall<'_>) -> TaskFuture {
        Box::pin((self.0)(call.input))
    }
}

/// Where a Task state's calls go, resolved once per state (see [`Tasks::answer_at`]).
enum Route {
    Mock,
    Handler(Arc<dyn TaskHandler>),
    Real(RealKind),
    Missing,
}

/// Which of [`RealTasks`] answers.
#[derive(Clone, Copy)]
enum RealKind {
    Lambda,
    Http,
    Kafka,
    Aws,
    KafkaInvoke,
    StartExecution,
}

/// A fresh [`Tasks::id`].
fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Tasks {
    /// No handlers: every Task fails with a clear error.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers Task states by name from these mocks first.
    pub fn with_mocks(mut self, mocks: mock::Mocks) -> Self {
        self.mocks = Some(Arc::new(mocks));
        self.id = next_id();
        self
    }

    /// Registers a handler for one resource ARN.
    pub fn register(&mut self, resource: impl Into<String>, handler: Arc<dyn TaskHandler>) {
        self.by_resource.insert(resource.into(), handler);
        self.id = next_id();
    }

    /// Binds a resource to an async function of the task input, e.g.
    /// `tasks.register_fn("arn:...", |input| async move { Ok(input) })`.
    pub fn register_fn<F, Fut>(&mut self, resource: impl Into<String>, f: F)
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + 'static,
    {
        self.register(resource, Arc::new(FnHandler(f)));
    }

    /// Lets resources nothing else answers reach real services (Lambda, HTTP, AWS) as `cfg` allows.
    pub fn with_real_tasks(mut self, cfg: TasksConfig) -> Result<Self, String> {
        cfg.check()?;
        let limits = Arc::new(net::Limits::new(cfg.max_concurrency));
        let cfg = Arc::new(cfg);
        // One producer for every Kafka task.
        let producer = Arc::new(kafka::SharedProducer::new(Arc::clone(&cfg)));
        let (c, l, p) = (&cfg, &limits, &producer);
        self.real = Some(Arc::new(RealTasks {
            lambda: lambda::Lambda::new(Arc::clone(c), Arc::clone(l)),
            http: http::Http::new(Arc::clone(c), Arc::clone(l)),
            aws: aws::Aws::new(Arc::clone(c), Arc::clone(l)),
            kafka: kafka::KafkaProduce::new(Arc::clone(c), Arc::clone(l), Arc::clone(p)),
            kafka_invoke: kafka_invoke::KafkaInvoke::new(
                Arc::clone(c),
                Arc::clone(l),
                Arc::clone(p),
            ),
            start_execution: nested::StartExecution::new(
                Arc::clone(c),
                Arc::clone(l),
                Arc::clone(p),
            ),
        }));
        self.id = next_id();
        Ok(self)
    }

    /// A copy whose real HTTP Task (`http:invoke`, when nothing else answers it) records the
    /// request it sends and the response it gets into `trace`: TestState's TRACE level.
    pub fn with_http_trace(&self, trace: http::Trace) -> Tasks {
        let mut t = self.clone();
        if let Some(real) = &self.real {
            if !t.by_resource.contains_key(http::INVOKE) {
                t.register(http::INVOKE, Arc::new(real.http.traced(trace)));
            }
        }
        t
    }

    /// Registers built-in handlers from a `{"<resource>": "<spec>"}` object (see [`builtin`]).
    pub fn register_specs(&mut self, specs: &serde_json::Value) -> Result<(), String> {
        let specs = Value::from(specs);
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
        self.answer(call).into_future()
    }

    /// Runs a call with the handler that answers it, at once where that handler can.
    pub fn answer(&self, call: TaskCall<'_>) -> TaskAnswer {
        let route = self.resolve(call.state, call.resource);
        self.answer_by(&route, call)
    }

    /// [`Tasks::answer`] for a state whose route `cell` remembers: resolved on the first
    /// call and kept with these handlers' id, so later calls skip the mocks' lookup by
    /// state name and the hash of the resource ARN (~60 instructions a call in order). A
    /// cell another set of handlers filled is left alone, and the call resolved as by
    /// `answer`.
    pub fn answer_at(
        &self,
        cell: &crate::compile::plan::TaskRoute,
        call: TaskCall<'_>,
    ) -> TaskAnswer {
        if let Some((id, route)) = cell.get() {
            if *id == self.id {
                if let Some(route) = route.downcast_ref::<Route>() {
                    return self.answer_by(route, call);
                }
            }
            return self.answer(call);
        }
        let route: Arc<dyn std::any::Any + Send + Sync> =
            Arc::new(self.resolve(call.state, call.resource));
        // Another shard may have filled it meanwhile, with the same route.
        let _ = cell.set((self.id, Arc::clone(&route)));
        let route = route
            .downcast_ref::<Route>()
            .expect("the route was made just above");
        self.answer_by(route, call)
    }

    /// Which handler answers a state's calls: its mock, then the handler registered for
    /// its resource, then a real service's.
    fn resolve(&self, state: &str, resource: &str) -> Route {
        if self.mocks.as_ref().is_some_and(|m| m.has(state)) {
            return Route::Mock;
        }
        if let Some(h) = self.by_resource.get(resource) {
            return Route::Handler(Arc::clone(h));
        }
        if self.real.is_none() {
            return Route::Missing;
        }
        let kind = if resource == lambda::INVOKE || lambda::is_function_arn(resource) {
            RealKind::Lambda
        } else if resource == http::INVOKE {
            RealKind::Http
        } else if resource == kafka::PRODUCE {
            RealKind::Kafka
        } else if aws::handles(resource) {
            RealKind::Aws
        } else if resource == kafka_invoke::INVOKE {
            RealKind::KafkaInvoke
        } else if resource == nested::START_EXECUTION {
            RealKind::StartExecution
        } else {
            return Route::Missing;
        };
        Route::Real(kind)
    }

    fn answer_by(&self, route: &Route, call: TaskCall<'_>) -> TaskAnswer {
        let handler: &dyn TaskHandler = match (route, self.real.as_deref()) {
            (Route::Mock, _) => match &self.mocks {
                Some(m) => return m.answer(call),
                None => unreachable!("a mock route is resolved only where there are mocks"),
            },
            (Route::Handler(h), _) => &**h,
            (Route::Real(kind), Some(r)) => match kind {
                RealKind::Lambda => &r.lambda,
                RealKind::Http => &r.http,
                RealKind::Kafka => &r.kafka,
                RealKind::Aws => &r.aws,
                RealKind::KafkaInvoke => &r.kafka_invoke,
                RealKind::StartExecution => &r.start_execution,
            },
            (Route::Real(_) | Route::Missing, _) => {
                // A Standard machine's job wait, callback or Activity (`exec --type
                // STANDARD` accepts them) has no handler here: nothing calls back.
                let why = match crate::asl::validate::standard_only(call.resource) {
                    Some(_) => format!(
                        "state {:?} calls {:?}, which waits for a job, a callback or an \
                         Activity worker; stepstream runs none of these, so give the state a \
                         mock (exec --mocks)",
                        call.state, call.resource
                    ),
                    None => format!(
                        "no task handler is configured for resource {:?} (state {:?})",
                        call.resource, call.state
                    ),
                };
                return TaskAnswer::Now(Err(WorkflowError::new(
                    crate::error::names::TASK_FAILED,
                    why,
                )));
            }
        };
        handler.answer(call)
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

#[cfg(test)]
mod tests {
    use crate::json;

    use super::*;
    use crate::compile::plan::Plan;
    use crate::exec::{execute_blocking, ClockMode, ExecOptions, Status};

    #[test]
    fn a_remembered_route_is_taken_only_by_the_handlers_that_resolved_it() {
        let cell = crate::compile::plan::TaskRoute::new();
        let ids = FixedIds::default();
        let answer = |tasks: &Tasks| {
            let call = TaskCall {
                state: "S",
                resource: "arn:r",
                input: json!({}),
                state_calls: 0,
                resource_calls: 0,
                timeout: None,
                execution: &ids,
            };
            let r = match tasks.answer_at(&cell, call) {
                TaskAnswer::Now(r) => r,
                TaskAnswer::Later(f) => {
                    futures::FutureExt::now_or_never(f).expect("these handlers never wait")
                }
            };
            r.map_err(|e| e.error.unwrap_or_default())
        };
        let handlers = |by: &str| {
            let mut t = Tasks::new();
            t.register_specs(
                &serde_json::json!({ "arn:r": format!("merge {{\"by\": \"{by}\"}}") }),
            )
            .expect("valid specs");
            t
        };
        let a = handlers("a");
        assert_eq!(answer(&a), Ok(json!({"by": "a"})));
        // Remembered for `a` (and its copies), never taken by other handlers.
        assert_eq!(answer(&handlers("b")), Ok(json!({"by": "b"})));
        assert_eq!(answer(&a.clone()), Ok(json!({"by": "a"})));
        let mut changed = a.clone();
        changed.register_fn("arn:r", |_| async { Ok(json!({"by": "changed"})) });
        assert_eq!(answer(&changed), Ok(json!({"by": "changed"})));
        assert_eq!(
            answer(&Tasks::new()),
            Err(crate::error::names::TASK_FAILED.to_string())
        );
        assert_eq!(answer(&a), Ok(json!({"by": "a"})));
    }

    #[test]
    fn async_closures_answer_task_states_and_their_errors_are_caught() {
        let def = json!({"StartAt": "Double", "States": {
            "Double": {"Type": "Task", "Resource": "rust:double", "ResultPath": "$.d", "Next": "Fail"},
            "Fail": {"Type": "Task", "Resource": "rust:fail",
                     "Catch": [{"ErrorEquals": ["Nope"], "ResultPath": "$.err", "Next": "End"}], "End": true},
            "End": {"Type": "Succeed"}}});
        let plan = Plan::load(&def).unwrap();
        let mut tasks = Tasks::new();
        tasks.register_fn("rust:double", |v: Value| async move {
            Ok(json!(v["n"].as_i64().unwrap_or(0) * 2))
        });
        tasks.register_fn("rust:fail", |_| async {
            Err(TaskError::new("Nope", "said no"))
        });
        let out = execute_blocking(
            &plan,
            json!({"n": 21}),
            &tasks,
            &ExecOptions::default(),
            ClockMode::Real,
        );
        assert_eq!(out.status, Status::Succeeded);
        assert_eq!(
            out.output.unwrap(),
            json!({"n": 21, "d": 42, "err": {"Error": "Nope", "Cause": "said no"}})
        );
    }

    #[test]
    fn real_resources_fall_back_to_the_integrations_only_when_enabled() {
        let def = json!({"StartAt": "H", "States": {
            "H": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                  "Parameters": {"ApiEndpoint": "https://not-allowed.example/", "Method": "GET"}, "End": true}}});
        let plan = Plan::load(&def).unwrap();
        let run = |tasks: &Tasks| {
            execute_blocking(
                &plan,
                json!({}),
                tasks,
                &ExecOptions::default(),
                ClockMode::Real,
            )
        };
        let none = run(&Tasks::new());
        assert!(none.cause.unwrap().contains("no task handler"));
        let real = run(&Tasks::new()
            .with_real_tasks(TasksConfig::default())
            .unwrap());
        assert!(real.cause.unwrap().contains("allow_hosts"));
    }
}
