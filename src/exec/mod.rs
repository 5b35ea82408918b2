//! One execution: the interpreter that walks a compiled [`Plan`].
//!
//! [`execute`] is async so that Wait states, retries and slow tasks never hold a thread;
//! executions are single-threaded futures (a shard runs many of them on one thread).
//! [`execute_blocking`] runs one on a fresh current-thread runtime, with a real or a
//! virtual clock (delays then pass instantly, in order).

mod frame;
mod io;
pub mod log;
mod map;
pub use map::items_not_an_array;
mod memory;
mod parallel;
mod retry;
mod run;
pub mod timer;

use std::time::Duration;

use crate::value::Value;

use crate::compile::plan::Plan;
use crate::tasks::Tasks;

pub use crate::expr::size::{json_size, mem_size, MAX_PAYLOAD_BYTES};
pub use log::{LogLevel, LogSettings};
pub use memory::{ShardMemory, DEFAULT_MAX_EXECUTION_MEMORY_BYTES, DEFAULT_MAX_SHARD_MEMORY_BYTES};

pub use crate::express::Status;

/// The result of one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// The final output (successful executions only).
    pub output: Option<Value>,
    /// The error name (failed or timed-out executions).
    pub error: Option<String>,
    /// The error cause.
    pub cause: Option<String>,
}

impl Outcome {
    /// The `{"status","output","error","cause"}` object `stepstream exec` prints.
    pub fn to_json(&self) -> Value {
        let mut m = crate::value::Map::with_capacity(4);
        m.insert("status".into(), Value::from(self.status.as_str()));
        m.insert("output".into(), Value::from(self.output.clone()));
        m.insert("error".into(), Value::from(self.error.clone()));
        m.insert("cause".into(), Value::from(self.cause.clone()));
        Value::Object(m)
    }
}

/// Which clock Wait states and retry delays use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockMode {
    /// Wall-clock time.
    #[default]
    Real,
    /// Delays pass instantly but in order (tests, `exec --clock virtual`).
    Virtual,
}

/// The kind of workflow an execution stands for, and how it was started. They differ, for
/// an execution, only in the Context object: `$$.Execution.RedriveCount` is in a Standard
/// execution's and in an Express one started asynchronously (StartExecution), not in an
/// Express one started synchronously (StartSyncExecution, TestState): AWS's recordings of
/// all three.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorkflowType {
    /// An Express execution started asynchronously: the Kafka pipeline, the API's
    /// StartExecution.
    #[default]
    Express,
    /// An Express execution started synchronously: the API's StartSyncExecution and
    /// TestState.
    ExpressSync,
    /// As a Standard machine's StartExecution (`exec`'s default, so that AWS's recorded
    /// Standard executions compare one to one).
    Standard,
}

impl WorkflowType {
    /// The kind of machine, for the definition's checks.
    pub fn machine(self) -> crate::asl::model::MachineType {
        match self {
            WorkflowType::Express | WorkflowType::ExpressSync => {
                crate::asl::model::MachineType::Express
            }
            WorkflowType::Standard => crate::asl::model::MachineType::Standard,
        }
    }

    /// Whether `$$.Execution` holds `RedriveCount`.
    pub fn has_redrive_count(self) -> bool {
        self != WorkflowType::ExpressSync
    }
}

/// Limits and names for one execution.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Express executions stop after this long (AWS: 5 minutes) unless the definition says less.
    pub max_duration: Duration,
    /// Largest state input/output, in bytes of JSON (AWS: 256 KiB).
    pub max_payload_bytes: usize,
    /// Most data one execution may hold at once (its running frames' data and variables,
    /// Map and Parallel outputs being collected); past it the execution fails, not the process.
    pub max_memory_bytes: usize,
    /// The memory cap shared with the other executions of the same shard, if any.
    pub shard_memory: Option<ShardMemory>,
    /// The state machine's name, for the Context object and ARNs.
    pub state_machine_name: String,
    /// The execution's name (a UUID when not given).
    pub execution_name: Option<String>,
    /// The execution's ARN (`$$.Execution.Id`); made up from the names when not given.
    pub execution_arn: Option<String>,
    /// The state machine's interpreter metrics (transitions, retries, task calls), if counted.
    pub metrics: Option<std::sync::Arc<crate::metrics::ExecMetrics>>,
    /// Which history events the execution logs (level OFF: none, and no cost).
    pub log: LogSettings,
    /// Express or Standard, for the Context object.
    pub workflow_type: WorkflowType,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            max_duration: Duration::from_secs(300),
            max_payload_bytes: MAX_PAYLOAD_BYTES,
            max_memory_bytes: DEFAULT_MAX_EXECUTION_MEMORY_BYTES,
            shard_memory: None,
            state_machine_name: "stepstream".to_string(),
            execution_name: None,
            execution_arn: None,
            metrics: None,
            log: LogSettings::default(),
            workflow_type: WorkflowType::default(),
        }
    }
}

/// Runs one execution to its end.
/// The input may be given as a [`Value`] or as a `serde_json::Value` (converted once).
pub async fn execute(
    plan: &Plan,
    input: impl Into<Value>,
    tasks: &Tasks,
    opts: &ExecOptions,
) -> Outcome {
    run::execute(plan, input.into(), tasks, opts).await.0
}

/// The history events one execution logged, per its [`ExecOptions::log`] settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionLog {
    /// The events in order: `{"id", "previous_event_id", "event_timestamp", "type",
    /// "execution_arn", "details"}`.
    pub events: Vec<Value>,
    /// Events past [`log::MAX_EVENTS_PER_EXECUTION`] that were not kept.
    pub dropped: u64,
}

/// Runs one execution to its end and returns its log too (empty at level OFF).
pub async fn execute_logged(
    plan: &Plan,
    input: impl Into<Value>,
    tasks: &Tasks,
    opts: &ExecOptions,
) -> (Outcome, ExecutionLog) {
    let (out, log) = run::execute(plan, input.into(), tasks, opts).await;
    let log = log.map_or_else(ExecutionLog::default, |l| {
        let (events, dropped) = l.into_events();
        ExecutionLog { events, dropped }
    });
    (out, log)
}

/// What one state did when run on its own ([`run_start_state`]).
#[derive(Debug)]
pub struct StateRun {
    /// Its output and the index of the state it goes to (`None`: it ends its machine), or
    /// its error.
    pub result: Result<(Value, Option<usize>), crate::error::WorkflowError>,
    /// The variables when it ended: those it was given, then those it assigned.
    pub variables: crate::value::Map,
}

/// Runs only the start state of `plan`, over these variables and (when given) this Context
/// object, without moving on: what TestState reports is one state's doing.
pub async fn run_start_state(
    plan: &Plan,
    input: impl Into<Value>,
    variables: crate::value::Map,
    context: Option<Value>,
    tasks: &Tasks,
    opts: &ExecOptions,
) -> StateRun {
    run::run_start_state(plan, input.into(), variables, context, tasks, opts).await
}

/// Runs one execution on a new current-thread runtime and waits for it.
pub fn execute_blocking(
    plan: &Plan,
    input: impl Into<Value>,
    tasks: &Tasks,
    opts: &ExecOptions,
    clock: ClockMode,
) -> Outcome {
    block_on(clock, execute(plan, input, tasks, opts))
}

/// Runs the same execution `times` times in a row on one runtime, each from the input's
/// JSON text to the output's JSON text as a shard does, and returns the last outcome and
/// the time all of them took: `stepstream exec --repeat`, for timing a machine of one's own
/// and for training the profile-guided release build (`scripts/pgo_train.py`).
pub fn execute_blocking_repeated(
    plan: &Plan,
    input: &[u8],
    tasks: &Tasks,
    opts: &ExecOptions,
    clock: ClockMode,
    times: u64,
) -> Result<(Outcome, Duration), serde_json::Error> {
    block_on(clock, async {
        let start = std::time::Instant::now();
        let mut last = None;
        for _ in 0..times.max(1) {
            let out = execute(plan, crate::value::from_slice(input)?, tasks, opts).await;
            std::hint::black_box(out.output.as_ref().map(crate::value::to_vec));
            last = Some(out);
        }
        let last = last.expect("at least one execution ran");
        Ok((last, start.elapsed()))
    })
}

/// [`execute_blocking`], with the execution's log.
pub fn execute_blocking_logged(
    plan: &Plan,
    input: impl Into<Value>,
    tasks: &Tasks,
    opts: &ExecOptions,
    clock: ClockMode,
) -> (Outcome, ExecutionLog) {
    block_on(clock, execute_logged(plan, input, tasks, opts))
}

fn block_on<T>(clock: ClockMode, fut: impl std::future::Future<Output = T>) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        // I/O for real task calls (Lambda, HTTP).
        .enable_io()
        .enable_time()
        .start_paused(clock == ClockMode::Virtual)
        .build()
        .expect("a current-thread runtime can always be built");
    rt.block_on(fut)
}
