//! Nested workflows: `arn:aws:states:::states:startExecution` starts a child execution by
//! writing a request to the pipeline's requests topic, as Express workflows allow
//! (request-response: the parent does not wait for the child; `.sync` and
//! `.waitForTaskToken` are refused by validation).
//!
//! Parameters as on AWS: `StateMachineArn` (the machine is its last segment, the name of a
//! `*.asl.json` the pipeline runs), `Input` (a JSON value, or a string holding JSON; absent
//! is `{}`) and `Name` (absent: a UUID). The request is the envelope of DESIGN.md, keyed by
//! the execution name, written to `[tasks.kafka] requests_topic` (default: the first
//! `[[inputs]]` topic not bound to a machine). The result is `{"ExecutionArn", "StartDate"}`
//! once the broker acknowledged the request: the ARN the child's own result on the results
//! topic carries (the parent picks the execution id and sends it in the
//! `stepstream-execution-id` header), and the start date in epoch milliseconds, as Step
//! Functions' optimized integrations return dates.
//!
//! A child that starts a child forever is bounded: each request carries its depth in the
//! `stepstream-depth` header (a top-level execution is at depth 0), and a start past
//! `[tasks.kafka] max_nesting_depth` fails with `stepstream.ExecutionNestingTooDeep`.
//!
//! The names and ARNs follow the request and result contracts of the pipeline.

use std::future::Future;
use std::sync::Arc;

use crate::json;

use crate::value::Value;

use super::kafka::{Outgoing, SharedProducer};
use super::net::{Limits, TasksConfig};
use super::{TaskCall, TaskFuture, TaskHandler};
use crate::error::{names, WorkflowError};
use crate::express::{check_name, execution_arn, MAX_PAYLOAD_BYTES};

/// The nested-workflow resource.
pub const START_EXECUTION: &str = "arn:aws:states:::states:startExecution";
/// Request header: how deep the execution it starts is nested (absent: 0, a top-level one).
pub const HEADER_DEPTH: &str = "stepstream-depth";
/// Request header: the id (a UUID) the execution's ARN ends with, chosen by its parent.
pub const HEADER_EXECUTION_ID: &str = "stepstream-execution-id";
/// The error a start past the depth limit fails with.
pub const NESTING_TOO_DEEP: &str = "stepstream.ExecutionNestingTooDeep";
/// Where child requests go when nothing is configured.
const DEFAULT_REQUESTS_TOPIC: &str = "stepstream.requests";

tokio::task_local! {
    // The depth of the execution whose future is being polled; Map and Parallel branches
    // run inside that future, so they see it too.
    static DEPTH: u32;
}

/// Runs `f` (an execution) at nesting `depth`, as its request's header said.
// Not an `async fn`: its state kept `f` beside the scope that holds it (rustc keeps a
// moved-from argument's slot), doubling the 1.1 KB execution future in every shard job.
pub fn at_depth<F: Future>(depth: u32, f: F) -> impl Future<Output = F::Output> {
    DEPTH.scope(depth, f)
}

/// The nesting depth of the running execution (0 outside [`at_depth`]).
pub fn depth() -> u32 {
    DEPTH.try_with(|d| *d).unwrap_or(0)
}

/// Starts child executions through the requests topic.
pub struct StartExecution {
    cfg: Arc<TasksConfig>,
    limits: Arc<Limits>,
    producer: Arc<SharedProducer>,
}

impl StartExecution {
    /// A start task using `[tasks.kafka]` and the shared producer.
    pub fn new(cfg: Arc<TasksConfig>, limits: Arc<Limits>, producer: Arc<SharedProducer>) -> Self {
        Self {
            cfg,
            limits,
            producer,
        }
    }
}

/// A child request ready to write.
#[derive(Debug, PartialEq)]
struct Child {
    machine: String,
    name: String,
    input: Value,
}

fn api_error(exception: &str, why: String) -> WorkflowError {
    WorkflowError::new(format!("StepFunctions.{exception}"), why)
}

impl Child {
    /// Reads the parameters; errors are named as the StartExecution API names them.
    fn parse(params: &Value) -> Result<Child, WorkflowError> {
        let arn = params
            .get("StateMachineArn")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                api_error(
                    "InvalidArnException",
                    "states:startExecution needs a StateMachineArn string".into(),
                )
            })?;
        let machine = arn
            .split_once(":stateMachine:")
            .map(|(_, rest)| rest.split(':').next().unwrap_or_default())
            .filter(|m| check_name(m).is_ok())
            .ok_or_else(|| {
                api_error(
                    "InvalidArnException",
                    format!("Invalid Arn: '{arn}' is not arn:aws:states:REGION:ACCOUNT:stateMachine:NAME"),
                )
            })?
            .to_string();
        let input = match params.get("Input") {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(text)) => serde_json::from_str(text).map_err(|e| {
                api_error(
                    "InvalidExecutionInputException",
                    format!("Invalid State Machine Execution Input: '{e}'"),
                )
            })?,
            Some(v) => v.clone(),
        };
        let name = match params.get("Name") {
            None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
            Some(Value::String(n)) => {
                check_name(n).map_err(|broken| {
                    api_error(
                        "InvalidNameException",
                        format!("Invalid Name: the name {broken}"),
                    )
                })?;
                n.to_string()
            }
            Some(_) => {
                return Err(api_error(
                    "InvalidNameException",
                    "Invalid Name: Name must be a string".into(),
                ))
            }
        };
        Ok(Child {
            machine,
            name,
            input,
        })
    }
}

impl TaskHandler for StartExecution {
    fn call(&self, call: TaskCall<'_>) -> TaskFuture {
        // Read here: the call is made inside the execution's future, where its depth is set.
        let depth = depth().saturating_add(1);
        let max = self.cfg.kafka.max_nesting_depth;
        let params = call.input;
        let (cfg, limits, producer) = (
            Arc::clone(&self.cfg),
            Arc::clone(&self.limits),
            Arc::clone(&self.producer),
        );
        Box::pin(async move {
            let child = Child::parse(&params)?;
            if depth > max {
                return Err(WorkflowError::new(
                    NESTING_TOO_DEEP,
                    format!(
                        "starting {:?} would nest executions {depth} deep, past [tasks.kafka] \
                         max_nesting_depth = {max}: a workflow that starts itself needs a way to stop",
                        child.machine
                    ),
                ));
            }
            let envelope =
                json!({"stateMachine": child.machine, "name": child.name, "input": child.input});
            let value =
                serde_json::to_vec(&envelope).map_err(|e| super::kafka::bad(e.to_string()))?;
            if value.len() > MAX_PAYLOAD_BYTES {
                return Err(WorkflowError::new(
                    names::DATA_LIMIT_EXCEEDED,
                    format!(
                        "the child execution's request is {} bytes, over the {}-byte limit",
                        value.len(),
                        MAX_PAYLOAD_BYTES
                    ),
                ));
            }
            let id = uuid::Uuid::new_v4();
            let topic = cfg
                .kafka
                .requests_topic
                .clone()
                .unwrap_or_else(|| DEFAULT_REQUESTS_TOPIC.into());
            let record = Outgoing {
                topic,
                key: Some(child.name.clone()),
                value: Some(value),
                headers: Vec::new(),
            };
            let producer = producer.get()?;
            let _slot = limits.acquire(START_EXECUTION).await;
            let (depth_text, id_text) = (depth.to_string(), id.to_string());
            let extra = [
                (HEADER_DEPTH, depth_text.as_str()),
                (HEADER_EXECUTION_ID, id_text.as_str()),
            ];
            record.send(&producer, &extra, cfg.call_timeout()).await?;
            Ok(json!({
                "ExecutionArn": execution_arn(&child.machine, &child.name, &id),
                "StartDate": chrono::Utc::now().timestamp_millis(),
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shard job holds an execution inside `at_depth`: the wrapper adds the depth
    /// and the task-local slot, not a second copy of the execution's future.
    #[test]
    fn at_depth_does_not_hold_the_execution_twice() {
        let plan = crate::compile::plan::Plan::load(
            &json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
        )
        .expect("a valid definition");
        let tasks = crate::tasks::Tasks::new();
        let opts = crate::exec::ExecOptions::default();
        let run = || crate::exec::execute(&plan, crate::value::Value::Null, &tasks, &opts);
        let alone = std::mem::size_of_val(&run());
        let wrapped = std::mem::size_of_val(&at_depth(1, run()));
        assert!(
            wrapped <= alone + 64,
            "execution future {alone} bytes, at_depth's {wrapped}"
        );
    }

    #[test]
    fn parameters_read_as_the_start_execution_api_reads_them() {
        let c = Child::parse(&json!({
            "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:order",
            "Input": "{\"a\": 1}", "Name": "child-1"}))
        .unwrap();
        assert_eq!(
            c,
            Child {
                machine: "order".into(),
                name: "child-1".into(),
                input: json!({"a": 1})
            }
        );
        let c =
            Child::parse(&json!({"StateMachineArn": "arn:aws:states:::stateMachine:etl"})).unwrap();
        assert_eq!((c.machine.as_str(), c.input), ("etl", json!({})));
        assert!(uuid::Uuid::parse_str(&c.name).is_ok());
        for (params, error) in [
            (json!({}), "StepFunctions.InvalidArnException"),
            (
                json!({"StateMachineArn": "order"}),
                "StepFunctions.InvalidArnException",
            ),
            (
                json!({"StateMachineArn": "arn:aws:states:::stateMachine:a", "Input": "{"}),
                "StepFunctions.InvalidExecutionInputException",
            ),
            (
                json!({"StateMachineArn": "arn:aws:states:::stateMachine:a", "Name": "a b"}),
                "StepFunctions.InvalidNameException",
            ),
        ] {
            assert_eq!(Child::parse(&params).unwrap_err().name(), error, "{params}");
        }
    }

    #[test]
    fn a_start_past_the_depth_limit_fails_before_anything_is_written() {
        use crate::compile::plan::Plan;
        use crate::exec::{execute, ExecOptions};
        let def = json!({"StartAt": "S", "States": {"S": {"Type": "Task", "Resource": START_EXECUTION,
            "Parameters": {"StateMachineArn": "arn:aws:states:::stateMachine:loop"}, "End": true}}});
        let plan = Plan::load(&def).unwrap();
        let mut cfg = TasksConfig::default();
        cfg.kafka.max_nesting_depth = 2;
        let tasks = super::super::Tasks::new().with_real_tasks(cfg).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let run = |depth| {
            rt.block_on(at_depth(
                depth,
                execute(&plan, json!({}), &tasks, &ExecOptions::default()),
            ))
        };
        let deep = run(2);
        assert_eq!(deep.error.as_deref(), Some(NESTING_TOO_DEEP));
        assert!(deep.cause.unwrap().contains("3 deep"));
        // One level up the start goes on to the producer, which has no brokers here.
        let ok_depth = run(1);
        assert!(
            ok_depth.cause.unwrap().contains("no brokers"),
            "{:?}",
            ok_depth.error
        );
    }

    #[test]
    fn the_depth_is_the_scope_s_and_zero_outside() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(depth(), 0);
        assert_eq!(rt.block_on(at_depth(3, async { depth() })), 3);
    }
}
