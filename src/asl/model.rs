//! The typed model of a state machine, as written, with its leaf expressions already parsed.
//!
//! Paths, payload templates and Choice conditions are parsed while the model is read
//! (their syntax is part of validation); state names are still names here and become
//! indices in the compiled plan (`compile::plan`).

use crate::value::Value;

use crate::expr::choice::Condition;
use crate::expr::jsonata::Expr;
use crate::expr::path::Path;
use crate::expr::query::Query;
use crate::expr::template::Template;

/// The kind of state machine a definition is checked for: AWS refuses job waits
/// (`.sync`), callbacks (`.waitForTaskToken`) and Activities in Express machines only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MachineType {
    /// What stepstream's pipeline and API run.
    #[default]
    Express,
    /// A Standard machine (`exec --type STANDARD`): those resources are accepted, and
    /// answered by a mock (stepstream waits for no callback, job or Activity worker).
    Standard,
}

/// Which expression language a state's fields are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryLanguage {
    /// JSONPath fields: InputPath, Parameters, ResultSelector, ResultPath, OutputPath.
    #[default]
    JsonPath,
    /// JSONata fields: Arguments, Output, `{% %}` expressions.
    Jsonata,
}

/// A whole state machine, or one Parallel branch / Map item processor.
#[derive(Debug, Clone)]
pub struct StateMachine {
    /// Name of the first state.
    pub start_at: String,
    /// States in definition order.
    pub states: Vec<State>,
    /// Execution time cap from the definition (top level only).
    pub timeout_seconds: Option<u64>,
    /// The language states use unless they say otherwise.
    pub query_language: QueryLanguage,
    /// JSON pointer of this machine's `States` object's parent.
    pub pointer: String,
    /// States the definition names but that could not be read (their problems are
    /// reported); a transition to one is not also reported as undefined.
    pub unreadable: Vec<String>,
}

/// A path-valued field that may be absent (default `$`) or `null` (discard / empty object).
#[derive(Debug, Clone, Default)]
pub enum PathField {
    /// Not written: behaves as `$`.
    #[default]
    Default,
    /// Written as `null`.
    Null,
    /// Written as a path.
    Path(Path),
}

/// A number field that may instead come from a path (`TimeoutSecondsPath`, `MaxConcurrencyPath`, ...).
#[derive(Debug, Clone)]
pub enum Amount {
    /// A constant.
    Fixed(f64),
    /// Read from the state's input at run time.
    Path(Path),
    /// A JSONata expression (`"{% ... %}"` in a JSONata state).
    Query(Expr),
}

/// An `Assign` block in either language; both set the same variables.
#[derive(Debug, Clone)]
pub enum Assign {
    /// JSONPath: keys ending in `.$` take paths or intrinsics.
    Path(Template),
    /// JSONata: `{% %}` strings are expressions over `$states`.
    Jsonata(Query),
}

/// What a Choice rule tests.
#[derive(Debug, Clone)]
pub enum Test {
    /// A JSONPath rule (`Variable` and a comparison, or And/Or/Not).
    Path(Condition),
    /// A JSONata `Condition`: a boolean or an expression that must yield one.
    Jsonata(Query),
}

/// One Retry entry.
#[derive(Debug, Clone)]
pub struct Retrier {
    /// Error names this retrier handles.
    pub error_equals: Vec<String>,
    /// Seconds before the first retry.
    pub interval_seconds: f64,
    /// Retries allowed (0 = none).
    pub max_attempts: u32,
    /// Multiplier applied to the interval after each attempt.
    pub backoff_rate: f64,
    /// Upper bound on one delay.
    pub max_delay_seconds: Option<f64>,
    /// FULL jitter randomises each delay between 0 and its computed value.
    pub jitter_full: bool,
}

/// One Catch entry.
#[derive(Debug, Clone)]
pub struct Catcher {
    /// Error names this catcher handles.
    pub error_equals: Vec<String>,
    /// State to go to.
    pub next: String,
    /// Where the error output goes in the state's input (default: replaces it).
    pub result_path: PathField,
    /// JSONata: the state's output (default: the error output).
    pub output: Option<Query>,
    /// Variables to set from the error output.
    pub assign: Option<Assign>,
}

/// One Choice rule at the top level of `Choices`.
#[derive(Debug, Clone)]
pub struct ChoiceRule {
    /// The compiled condition.
    pub condition: Test,
    /// State to go to when it holds.
    pub next: String,
    /// Variables to set when it holds.
    pub assign: Option<Assign>,
    /// JSONata: the state's output when this rule holds.
    pub output: Option<Query>,
}

/// How a Wait state decides how long to wait.
#[derive(Debug, Clone)]
pub enum WaitFor {
    /// A fixed number of seconds.
    Seconds(f64),
    /// Until a fixed timestamp (already validated).
    Timestamp(crate::expr::timestamp::Timestamp),
    /// Seconds read from the input.
    SecondsPath(Path),
    /// Timestamp read from the input.
    TimestampPath(Path),
    /// Seconds from a JSONata expression.
    SecondsQuery(Expr),
    /// Timestamp from a JSONata expression.
    TimestampQuery(Expr),
}

/// Where a Fail state's Error or Cause comes from.
#[derive(Debug, Clone)]
pub enum FailText {
    /// A constant string.
    Fixed(String),
    /// A path (or intrinsic function) evaluated on the state's input.
    Dynamic(Template),
    /// A JSONata expression.
    Query(Query),
}

/// What kind of state this is, with the fields only that kind has.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Passes its input (or `Result`) on.
    Pass {
        /// A fixed result, if given.
        result: Option<Value>,
    },
    /// Calls a task handler.
    Task {
        /// The resource ARN the handler is chosen by.
        resource: String,
        /// Time limit for one call.
        timeout: Option<Amount>,
        /// Heartbeat limit (accepted; tasks here do not heartbeat).
        heartbeat: Option<Amount>,
    },
    /// Branches on conditions.
    Choice {
        /// Rules in order; the first that holds wins.
        rules: Vec<ChoiceRule>,
        /// State to go to when none holds.
        default: Option<String>,
    },
    /// Waits, then goes on.
    Wait {
        /// How long.
        wait: WaitFor,
    },
    /// Ends the execution (or branch) successfully.
    Succeed,
    /// Ends the execution (or branch) with an error.
    Fail {
        /// Error name.
        error: Option<FailText>,
        /// Cause.
        cause: Option<FailText>,
    },
    /// Runs branches concurrently on the same input.
    Parallel {
        /// The branches.
        branches: Vec<StateMachine>,
    },
    /// Runs a processor for every item of an array.
    Map(Box<MapSpec>),
}

/// The fields of a Map state.
#[derive(Debug, Clone)]
pub struct MapSpec {
    /// What runs for each item.
    pub processor: StateMachine,
    /// Where the items are in the effective input (default `$`).
    pub items_path: PathField,
    /// Builds each iteration's input (`ItemSelector`, or the legacy `Parameters`).
    pub item_selector: Option<Template>,
    /// JSONata: the items (`Items`; default: the state's input).
    pub items: Option<Query>,
    /// JSONata: builds each iteration's input (`ItemSelector`).
    pub item_query: Option<Query>,
    /// How many iterations may run at once (0 = no limit).
    pub max_concurrency: Option<Amount>,
    /// How many failed items are tolerated.
    pub tolerated_failure_count: Option<Amount>,
    /// Which percentage of failed items is tolerated.
    pub tolerated_failure_percentage: Option<Amount>,
    /// Groups the items into batches, one iteration per batch (`ItemBatcher`).
    pub item_batcher: Option<ItemBatcher>,
}

/// A Map's `ItemBatcher`: each iteration gets `{"BatchInput": .., "Items": [..]}`.
#[derive(Debug, Clone)]
pub struct ItemBatcher {
    /// Most items per batch (`MaxItemsPerBatch`, or its Path or expression).
    pub max_items: Option<Amount>,
    /// Most bytes of JSON per batch (`MaxInputBytesPerBatch`, at most 256 KiB).
    pub max_bytes: Option<Amount>,
    /// JSONPath: `BatchInput`, a payload template over the state's effective input.
    pub batch_input: Option<Template>,
    /// JSONata: `BatchInput`.
    pub batch_input_query: Option<Query>,
}

/// One state with the fields every state type shares.
#[derive(Debug, Clone)]
pub struct State {
    /// Its name in `States`.
    pub name: String,
    /// JSON pointer to it.
    pub pointer: String,
    /// Type-specific fields.
    pub kind: Kind,
    /// The language its fields are written in.
    pub query_language: QueryLanguage,
    /// JSONata: builds the task (or branch) input from the state's input.
    pub arguments: Option<Query>,
    /// JSONata: the state's output (default: the result, or the input where there is none).
    pub output: Option<Query>,
    /// The state to go to next (`None` for terminal states).
    pub next: Option<String>,
    /// Selects the effective input.
    pub input_path: PathField,
    /// Builds the task input (or Pass result) from the effective input.
    pub parameters: Option<Template>,
    /// Reshapes the raw result.
    pub result_selector: Option<Template>,
    /// Where the result goes in the state's input.
    pub result_path: PathField,
    /// Selects the state's output.
    pub output_path: PathField,
    /// Variables set when the state completes.
    pub assign: Option<Assign>,
    /// Retriers, in order.
    pub retry: Vec<Retrier>,
    /// Catchers, in order.
    pub catch: Vec<Catcher>,
}

impl State {
    /// The type name as written in the definition.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Pass { .. } => "Pass",
            Kind::Task { .. } => "Task",
            Kind::Choice { .. } => "Choice",
            Kind::Wait { .. } => "Wait",
            Kind::Succeed => "Succeed",
            Kind::Fail { .. } => "Fail",
            Kind::Parallel { .. } => "Parallel",
            Kind::Map(_) => "Map",
        }
    }
}
