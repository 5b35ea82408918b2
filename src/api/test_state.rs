//! TestState: one state run on its own, as AWS's TestState runs it. The state runs once,
//! without retries: an error its first matching retrier would retry is RETRIABLE (with the
//! backoff AWS would wait), one a catcher handles is CAUGHT_ERROR (with the catcher's output
//! and next state), anything else FAILED. `inspectionLevel` DEBUG reports the data after
//! each step of input/output processing (JSONPath: InputPath, Parameters, the result,
//! ResultSelector, ResultPath; JSONata: Arguments and the result) and the variables after
//! the state; TRACE adds the HTTP request and response an `http:invoke` Task exchanged.
//! For a Map state DEBUG also shows how it makes its iterations' inputs: what ReaderConfig's
//! ItemsPointer selected of what its ItemReader read, each item after ItemSelector, the
//! ItemBatcher's batches.
//!
//! `stateConfiguration` places the state in a longer run: the retries already made
//! (`retrierRetryCount`), a mocked Map's failed iterations (`mapIterationFailureCount`,
//! held against its tolerances), the state inside a mocked Map or Parallel state an error
//! came from (`errorCausedByState`), what an ItemReader read (`mapItemReaderData`). A
//! mocked result is checked against the integration's answer where [`mock_shapes`] knows
//! its shape (`mock.fieldValidationMode`).
//!
//! Everything runs through the interpreter ([`exec::run_start_state`]: one state, no
//! transition) in small machines built around the state, so the figures are the engine's
//! own: the state itself with a Succeed placeholder per transition target; for a caught
//! error, a Task with the state's catchers whose call fails with that error; for the
//! JSONPath steps no call reports, Pass states that apply one field at a time. A Task is
//! called once, through a recorder that keeps what it was sent (after Parameters or
//! Arguments) and what it answered (the result); `mock` answers it instead
//! (`{"result": "<JSON>"}` or `{"errorOutput": {"error", "cause"}}`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::asl::model::MachineType;
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::fields::Fields;
use super::Api;
use crate::error::{names, WorkflowError};
use crate::exec::{self, ExecOptions};
use crate::tasks::{http, TaskCall, TaskFuture, TaskHandler, Tasks};

mod mock_shapes;

use mock_shapes::FieldValidation;

/// How long the tested state may run.
const MAX_DURATION: Duration = Duration::from_secs(60);

/// The most items a Map's ItemSelector and ItemBatcher are shown for at DEBUG, and the
/// most JSON those fields may hold; past either, the field is left out.
const MAX_INSPECTED_ITEMS: usize = 10_000;
const MAX_INSPECTED_BYTES: usize = super::executions::MAX_INPUT_BYTES;

/// The name the tested state gets when the definition is a state, not a machine: AWS's.
const DEFAULT_STATE_NAME: &str = "StateName";

/// The resource of the stand-in Tasks that replay a caught error or a mocked Map or
/// Parallel state; always answered by a mock, never called.
const STAND_IN_RESOURCE: &str = "arn:aws:states:::stepstream:test-state";

/// The request's parts besides the state.
struct Request {
    level: Level,
    input_text: String,
    input: Value,
    variables: Map<String, Value>,
    context: Option<Value>,
    mock: Option<Value>,
    reveal_secrets: bool,
    config: StateConfiguration,
}

/// `stateConfiguration`: where in a longer run the tested state is taken to be.
#[derive(Default)]
struct StateConfiguration {
    /// Retries the retrier matching the mocked error has already made.
    retrier_retry_count: u64,
    /// Iterations of a mocked Map taken to have failed, checked against its tolerances.
    map_iteration_failure_count: Option<u64>,
    /// What a Map's ItemReader would have read, parsed by its ReaderConfig.
    map_item_reader_data: Option<Value>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Info,
    Debug,
    Trace,
}

/// TestState.
pub async fn test_state(api: &Api, f: Fields) -> Result<Value, ApiError> {
    let definition = f.string("definition")?;
    if definition.len() > crate::pipeline::definitions::MAX_DEFINITION_CHARS {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at 'definition' failed to satisfy constraint: \
             Member must have length less than or equal to {}",
            crate::pipeline::definitions::MAX_DEFINITION_CHARS
        )));
    }
    let def: Value = serde_json::from_str(&definition).map_err(|e| {
        ApiError::invalid_definition(format!("Invalid State Machine Definition: {e}"))
    })?;
    let (name, state, query_language) = pick_state(&def, f.optional_string("stateName")?)?;
    let req = read_request(api, &f, &state)?;
    // Every run of the test sees one Context object, so what the inspection data shows
    // and what the state did agree on `$$`.
    let context = match &req.context {
        Some(c) => crate::value::Value::from(c),
        None => default_context(&state, f.optional_string("roleArn")?, &req.input),
    };
    let t = Tester {
        api,
        name: &name,
        jsonata: query_language == "JSONata",
        variables: to_value_map(&req.variables),
        context,
    };
    t.test(&state, &req).await
}

/// Reads and checks the request's fields other than `definition` and `stateName`.
fn read_request(api: &Api, f: &Fields, state: &Map<String, Value>) -> Result<Request, ApiError> {
    let level = match f.optional_string("inspectionLevel")?.as_deref() {
        None | Some("INFO") => Level::Info,
        Some("DEBUG") => Level::Debug,
        Some("TRACE") => Level::Trace,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'inspectionLevel' failed to \
                 satisfy constraint: Member must satisfy enum value set: [INFO, DEBUG, TRACE]"
            )))
        }
    };
    let input_text = f.optional_string("input")?.unwrap_or_else(|| "{}".into());
    let input = bounded_json(api, &input_text).map_err(|why| {
        ApiError::invalid_input(format!("Invalid State Machine Execution Input: {why}"))
    })?;
    let variables = match f.optional_string("variables")? {
        None => Map::new(),
        Some(text) => match bounded_json(api, &text) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(ApiError::validation(
                    "variables must be a JSON object of variable name -> value, up to 256 KiB",
                ))
            }
        },
    };
    let (mock, validation) = mock_of(api, f)?;
    let kind = state.get("Type").and_then(Value::as_str).unwrap_or("");
    if let Some(result) = mock.as_ref().and_then(|m| m.get("result")) {
        check_mocked_result(state, result, validation)?;
    }
    // AWS runs a real call as the role it is given (nothing here checks what the role
    // may do, but a request AWS refuses is refused here too).
    if kind == "Task" && mock.is_none() && f.optional_string("roleArn")?.is_none() {
        return Err(ApiError::validation(
            "RoleArn must be specified when testing a Task state",
        ));
    }
    if mock.is_some() && !matches!(kind, "Task" | "Map" | "Parallel") {
        // AWS's wording.
        return Err(ApiError::validation(format!(
            "State type '{kind}' is not supported when a mock is specified"
        )));
    }
    let context = match f.optional_string("context")? {
        None => None,
        Some(_) if mock.is_none() => {
            return Err(ApiError::validation(
                "context may only be specified together with a mock",
            ))
        }
        Some(text) => match bounded_json(api, &text) {
            Ok(v @ Value::Object(_)) => Some(v),
            _ => {
                return Err(ApiError::validation(
                    "context must be a JSON object (a Context object), up to 256 KiB",
                ))
            }
        },
    };
    let reveal_secrets = match f.optional("revealSecrets") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::serialization("'revealSecrets' must be a boolean")),
    };
    if reveal_secrets && mock.is_some() {
        // A mock makes no call, so there is no secret to reveal; AWS refuses the pair.
        return Err(ApiError::validation(
            "TestState does not support RevealSecrets when a mock is specified.",
        ));
    }
    if reveal_secrets && !api.reveal_secrets {
        return Err(ApiError::access_denied(
            "revealSecrets is not allowed on this endpoint: set [api] reveal_secrets = true \
             to let TestState callers see the secrets a [[tasks.http.connections]] entry adds \
             (AWS asks for the states:RevealSecrets permission)",
        ));
    }
    let config = match f.optional("stateConfiguration") {
        None => StateConfiguration::default(),
        Some(c) => state_configuration(api, c, state, mock.as_ref())?,
    };
    // After the settings: AWS answers a mapIterationFailureCount without a mock first.
    if mock.is_none() && matches!(kind, "Map" | "Parallel") {
        // AWS tests a Map or Parallel state only as a mock stands in for its iterations or
        // branches (LocalStack's recordings `test_state_type_requires_mock`, 2025-12).
        return Err(ApiError::invalid_definition(
            "TestState API does not support Map or Parallel states. Supported state types \
             include: [Task, Wait, Pass, Succeed, Fail, Choice]",
        ));
    }
    Ok(Request {
        level,
        input_text,
        input,
        variables,
        context,
        mock,
        reveal_secrets,
        config,
    })
}

/// Checks a mocked result against what the state could have answered: a Task's against
/// its integration's answer (as `validation` asks), a Map's and a Parallel's against the
/// result shape of the state itself (in AWS's words).
fn check_mocked_result(
    state: &Map<String, Value>,
    result: &Value,
    validation: FieldValidation,
) -> Result<(), ApiError> {
    let problem = match state.get("Type").and_then(Value::as_str) {
        Some("Task") => {
            let resource = state.get("Resource").and_then(Value::as_str).unwrap_or("");
            mock_shapes::check(resource, result, validation).err()
        }
        // A ResultWriter's answer is the description of what it wrote, not the results.
        Some("Map") if state.contains_key("ResultWriter") => {
            (!result.is_object()).then(|| "Mocked result must be a JSON object.".to_string())
        }
        Some("Map") => (!result.is_array()).then(|| "Mocked result must be an array.".into()),
        Some("Parallel") => {
            let branches = state
                .get("Branches")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            match result.as_array() {
                None => Some("Mocked result must be an array.".into()),
                Some(r) if r.len() != branches => Some(
                    "Mocked result must contain the same number of items as number of \
                     Parallel branches."
                        .into(),
                ),
                Some(_) => None,
            }
        }
        _ => None,
    };
    problem.map_or(Ok(()), |p| Err(ApiError::validation(p)))
}

/// Reads and checks `stateConfiguration` for this state and mock.
fn state_configuration(
    api: &Api,
    c: &Value,
    state: &Map<String, Value>,
    mock: Option<&Value>,
) -> Result<StateConfiguration, ApiError> {
    let Some(c) = c.as_object() else {
        return Err(ApiError::serialization(
            "'stateConfiguration' must be an object",
        ));
    };
    let kind = state.get("Type").and_then(Value::as_str).unwrap_or("");
    let mocked_error = mock.is_some_and(|m| m.get("result").is_none());
    let mut config = StateConfiguration::default();
    for (k, v) in c {
        let whole = |what: &str| {
            v.as_u64().ok_or_else(|| {
                ApiError::validation(format!(
                    "stateConfiguration.{what} must be a whole number >= 0"
                ))
            })
        };
        match k.as_str() {
            "retrierRetryCount" => config.retrier_retry_count = whole(k)?,
            "mapIterationFailureCount" => {
                // An unmocked Map counts its own failures. With a mocked error the error
                // is the Map's, whatever the count (as AWS answers).
                if mock.is_none() {
                    // AWS's wording.
                    return Err(ApiError::validation(
                        "TestState does not support MapIterationFailureCount when a mock is \
                         not specified.",
                    ));
                }
                if kind != "Map" {
                    return Err(ApiError::validation(
                        "stateConfiguration.mapIterationFailureCount applies to a mocked Map \
                         state (the count is checked against its ToleratedFailureCount and \
                         ToleratedFailurePercentage)",
                    ));
                }
                let failed = whole(k)?;
                let items = mock
                    .and_then(|m| m.get("result"))
                    .and_then(Value::as_array)
                    .map(Vec::len);
                if items.is_some_and(|n| failed > n as u64) {
                    return Err(ApiError::validation(
                        "Map iteration failure count must be less than or equal to the number \
                         of Map iterations",
                    ));
                }
                config.map_iteration_failure_count = Some(failed);
            }
            "errorCausedByState" => {
                let name = v
                    .as_str()
                    .filter(|n| (1..=80).contains(&n.chars().count()))
                    .ok_or_else(|| {
                        ApiError::validation(
                            "stateConfiguration.errorCausedByState must be a state name \
                             (1 to 80 characters)",
                        )
                    })?;
                if !matches!(kind, "Map" | "Parallel") || !mocked_error {
                    return Err(ApiError::validation(
                        "stateConfiguration.errorCausedByState names the state inside a Map \
                         or Parallel state that a mocked error (mock.errorOutput) comes from",
                    ));
                }
                if !has_inner_state(state, name, 0) {
                    return Err(ApiError::validation(format!(
                        "stateConfiguration.errorCausedByState: {name:?} is not a state \
                         inside this {kind} state"
                    )));
                }
            }
            "mapItemReaderData" => {
                let Some(text) = v.as_str() else {
                    return Err(ApiError::serialization(
                        "'stateConfiguration.mapItemReaderData' must be a string",
                    ));
                };
                let Some(reader) = state.get("ItemReader").filter(|_| kind == "Map") else {
                    return Err(ApiError::validation(
                        "stateConfiguration.mapItemReaderData is what a Map state's \
                         ItemReader reads: the state has no ItemReader",
                    ));
                };
                config.map_item_reader_data = Some(read_item_reader_data(api, text, reader)?);
            }
            other => {
                return Err(ApiError::validation(format!(
                    "stateConfiguration.{other} is not a TestState setting (retrierRetryCount, \
                     errorCausedByState, mapIterationFailureCount, mapItemReaderData)"
                )))
            }
        }
    }
    Ok(config)
}

/// Whether a state named `name` is inside this Map's item processor or this Parallel's
/// branches, at any depth.
fn has_inner_state(state: &Map<String, Value>, name: &str, depth: usize) -> bool {
    // Nesting deeper than this is no machine anyone writes; the bound keeps a hostile
    // definition from recursing far.
    if depth > 32 {
        return false;
    }
    let machines = ["ItemProcessor", "Iterator"]
        .iter()
        .filter_map(|k| state.get(*k))
        .chain(
            state
                .get("Branches")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    machines
        .filter_map(|m| m.get("States").and_then(Value::as_object))
        .any(|states| {
            states.contains_key(name)
                || states
                    .values()
                    .filter_map(Value::as_object)
                    .any(|s| has_inner_state(s, name, depth + 1))
        })
}

/// `mapItemReaderData` as the ItemReader's ReaderConfig reads it: a JSON document, or JSON
/// Lines (one value a line, read into an array).
fn read_item_reader_data(api: &Api, text: &str, reader: &Value) -> Result<Value, ApiError> {
    let bad =
        |why: String| ApiError::validation(format!("stateConfiguration.mapItemReaderData: {why}"));
    let input_type = reader
        .pointer("/ReaderConfig/InputType")
        .and_then(Value::as_str)
        .unwrap_or("JSON");
    match input_type {
        "JSON" => bounded_json(api, text).map_err(bad),
        "JSONL" => {
            if text.len() > super::executions::MAX_INPUT_BYTES {
                return Err(bad("over 256 KiB".into()));
            }
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| bounded_json(api, l).map_err(bad))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        other => Err(bad(format!(
            "stepstream's TestState reads JSON and JSONL item data; InputType {other} is not \
             supported"
        ))),
    }
}

/// JSON text within the execution input limits (size and nesting).
fn bounded_json(api: &Api, text: &str) -> Result<Value, String> {
    if text.len() > super::executions::MAX_INPUT_BYTES
        || crate::pipeline::request::max_depth(text.as_bytes()) > api.max_input_depth
    {
        return Err("over 256 KiB or nested too deep".into());
    }
    serde_json::from_str(text).map_err(|e| format!("'{e}'"))
}

fn to_value_map(m: &Map<String, Value>) -> crate::value::Map {
    match crate::value::Value::from(&Value::Object(m.clone())) {
        crate::value::Value::Object(m) => m,
        _ => crate::value::Map::new(),
    }
}

/// The Context object of a test that names none: a made-up execution of a machine named
/// `TestState`, run as the request's role (null without one), that has just entered the
/// state. AWS calls the state `StateName` there, whatever its name in a given machine
/// (LocalStack's recordings `test_state_task_catch_error`, `test_state_with_variables`).
fn default_context(
    state: &Map<String, Value>,
    role_arn: Option<String>,
    input: &Value,
) -> crate::value::Value {
    let machine = "TestState";
    let execution = uuid::Uuid::new_v4().to_string();
    let arn = crate::express::execution_arn(machine, &execution, &uuid::Uuid::new_v4());
    let now = chrono::Utc::now();
    let mut ctx = crate::expr::context::root(
        &arn,
        &execution,
        &crate::express::state_machine_arn(machine),
        machine,
        &crate::value::Value::from(input),
        now,
        crate::exec::WorkflowType::ExpressSync.has_redrive_count(),
    );
    let kind = state.get("Type").and_then(Value::as_str).unwrap_or("");
    ctx.enter_state(
        DEFAULT_STATE_NAME,
        now,
        matches!(kind, "Task" | "Map" | "Parallel"),
    );
    let mut v = Value::from(ctx.to_value());
    if let Some(e) = v.get_mut("Execution") {
        e["RoleArn"] = json!(role_arn);
    }
    crate::value::Value::from(&v)
}

/// The state to test: the definition itself, or `stateName` of a whole machine.
fn pick_state(
    def: &Value,
    state_name: Option<String>,
) -> Result<(String, Map<String, Value>, String), ApiError> {
    let Some(obj) = def.as_object() else {
        return Err(ApiError::invalid_definition(
            "Invalid State Machine Definition: a state must be a JSON object",
        ));
    };
    let ql = |o: &Map<String, Value>| {
        o.get("QueryLanguage")
            .and_then(Value::as_str)
            .unwrap_or("JSONPath")
            .to_string()
    };
    match obj.get("States").and_then(Value::as_object) {
        Some(states) => {
            let name = state_name.ok_or_else(|| {
                ApiError::validation(
                    "stateName is required when the definition is a whole state machine",
                )
            })?;
            // Any state of the machine, nested ones too (AWS tests a state inside a Map's
            // ItemProcessor: LocalStack's recording `test_base_state_name`).
            let (state, inherited) = find_state(states, &name, ql(obj), 0).ok_or_else(|| {
                ApiError::validation(format!("the definition has no state named {name:?}"))
            })?;
            let mut state = state.clone();
            // A state inherits its machine's query language unless it names its own.
            if !state.contains_key("QueryLanguage") {
                state.insert("QueryLanguage".into(), json!(inherited));
            }
            let lang = ql(&state);
            Ok((name, state, lang))
        }
        None => {
            let lang = ql(obj);
            Ok((
                state_name.unwrap_or_else(|| DEFAULT_STATE_NAME.into()),
                obj.clone(),
                lang,
            ))
        }
    }
}

/// The state named `name` among `states` or inside their Parallel branches and Map item
/// processors, with the query language it inherits (`ql`: that of the machine holding
/// `states`). The search stops 64 machines deep: a definition is at most 1 MiB, but its
/// nesting is bounded here, not by the parser's stack.
fn find_state<'a>(
    states: &'a Map<String, Value>,
    name: &str,
    ql: String,
    depth: usize,
) -> Option<(&'a Map<String, Value>, String)> {
    if let Some(s) = states.get(name).and_then(Value::as_object) {
        return Some((s, ql));
    }
    if depth >= 64 {
        return None;
    }
    for s in states.values().filter_map(Value::as_object) {
        let inner_ql = s
            .get("QueryLanguage")
            .and_then(Value::as_str)
            .map_or_else(|| ql.clone(), str::to_string);
        let machines = s
            .get("Branches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(
                ["ItemProcessor", "Iterator"]
                    .iter()
                    .filter_map(|k| s.get(*k)),
            );
        for m in machines {
            let Some(inner) = m.get("States").and_then(Value::as_object) else {
                continue;
            };
            let m_ql = m
                .get("QueryLanguage")
                .and_then(Value::as_str)
                .map_or_else(|| inner_ql.clone(), str::to_string);
            if let Some(found) = find_state(inner, name, m_ql, depth + 1) {
                return Some(found);
            }
        }
    }
    None
}

/// The mock a TestState `mock` asks for, in the mocks format of [`crate::tasks::mock`],
/// and how strictly its result is checked.
fn mock_of(api: &Api, f: &Fields) -> Result<(Option<Value>, FieldValidation), ApiError> {
    let Some(m) = f.optional("mock") else {
        return Ok((None, FieldValidation::default()));
    };
    let validation = match m.get("fieldValidationMode").filter(|v| !v.is_null()) {
        None => FieldValidation::default(),
        Some(mode) => mode
            .as_str()
            .and_then(FieldValidation::parse)
            .ok_or_else(|| {
                ApiError::validation(
                    "mock.fieldValidationMode must be one of STRICT, PRESENT, NONE",
                )
            })?,
    };
    if m.get("result").is_some() && m.get("errorOutput").is_some() {
        return Err(ApiError::validation(
            "A test mock should have only one of the following fields: [result, errorOutput].",
        ));
    }
    if let Some(text) = m.get("result").and_then(Value::as_str) {
        let v = bounded_json(api, text).map_err(|why| {
            // AWS's wording for text that is not JSON; ours for JSON over the limits.
            match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Err(_) => ApiError::validation("Mocked result must be valid JSON"),
                Ok(_) => {
                    ApiError::validation(format!("mock.result is not JSON of up to 256 KiB: {why}"))
                }
            }
        })?;
        return Ok((Some(json!({"result": v})), validation));
    }
    if let Some(e) = m.get("errorOutput") {
        return Ok((
            Some(json!({"error": e.get("error"), "cause": e.get("cause")})),
            validation,
        ));
    }
    Err(ApiError::validation(
        "mock needs result (a JSON string) or errorOutput {error, cause}",
    ))
}

fn matches_any(rule: &Value, err: &WorkflowError) -> bool {
    rule.get("ErrorEquals")
        .and_then(Value::as_array)
        .is_some_and(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .any(|n| err.matches(n))
        })
}

/// What the tested Task was sent and what it answered.
#[derive(Default)]
struct Recorded {
    input: Option<crate::value::Value>,
    result: Option<Result<crate::value::Value, WorkflowError>>,
}

/// Passes the tested Task's one call on to the real handlers, keeping a copy of both ends.
struct Recorder {
    inner: Tasks,
    seen: Arc<Mutex<Recorded>>,
}

impl TaskHandler for Recorder {
    fn call(&self, call: TaskCall<'_>) -> TaskFuture {
        let seen = Arc::clone(&self.seen);
        seen.lock().unwrap_or_else(|p| p.into_inner()).input = Some(call.input.clone());
        let fut = self.inner.call(call);
        Box::pin(async move {
            let r = fut.await;
            seen.lock().unwrap_or_else(|p| p.into_inner()).result = Some(r.clone());
            r
        })
    }
}

/// One run of the tested state.
struct Run {
    /// Its output and the state it goes to (its name), or its error.
    result: Result<(Value, Option<String>), WorkflowError>,
    /// The variables after it.
    variables: crate::value::Map,
}

struct Tester<'a> {
    api: &'a Api,
    name: &'a str,
    jsonata: bool,
    variables: crate::value::Map,
    context: crate::value::Value,
}

/// Placeholder state names, unlikely to clash with a user's.
fn placeholder(i: usize) -> String {
    format!("stepstream:next:{i}")
}

/// A Map state's items, and the value its ItemReader's ItemsPointer selected.
struct Items {
    items: Vec<Value>,
    after_pointer: Option<Value>,
}

/// The fields of a Pass state that applies `state`'s InputPath and nothing else.
fn input_path_only(state: &Map<String, Value>) -> Map<String, Value> {
    let mut pass = Map::new();
    if let Some(p) = state.get("InputPath") {
        pass.insert("InputPath".into(), p.clone());
    }
    pass
}

/// A JSONata Pass state whose output is `q` (an expression, or JSON with expressions).
fn jsonata_output(q: &Value) -> Map<String, Value> {
    let mut pass = Map::new();
    pass.insert("QueryLanguage".into(), json!("JSONata"));
    pass.insert("Output".into(), q.clone());
    pass
}

/// JSON text, as AWS reports data.
fn text(v: &Value) -> Value {
    Value::String(v.to_string())
}

impl Tester<'_> {
    async fn test(&self, state: &Map<String, Value>, req: &Request) -> Result<Value, ApiError> {
        let kind = state.get("Type").and_then(Value::as_str).unwrap_or("");
        let resource = state.get("Resource").and_then(Value::as_str).unwrap_or("");
        // The state without Retry and Catch: TestState reports what they would do.
        let mut bare = state.clone();
        bare.remove("Retry");
        bare.remove("Catch");
        // A mock stands in for a Map's iterations or a Parallel's branches, but AWS still
        // refuses a state written wrong, in its words (its recordings
        // `test_parallel_state_empty_branches`, `test_state_name_invalid_state_definition`).
        // A Choice's targets are elsewhere in the machine: it is checked as it is run.
        if kind != "Choice" {
            self.check_as_written(&bare)?;
        }
        if req.mock.is_some() {
            stand_in_for_mocked(&mut bare);
        }
        let reader_data = req.config.map_item_reader_data.as_ref();
        let mut mock = req.mock.clone();
        let mocked_result = mock.as_ref().and_then(|m| m.get("result"));
        if let (Some(failed), Some(result)) =
            (req.config.map_iteration_failure_count, mocked_result)
        {
            let items = self.map_items(state, &req.input, reader_data).await;
            let total = items
                .map(|i| i.items.len())
                .or_else(|| result.as_array().map(Vec::len));
            if self
                .exceeds_tolerance(state, &req.input, failed, total)
                .await
            {
                // The Map fails as a real one would after that many failed iterations; its
                // Retry and Catch take it from there.
                mock = Some(json!({"error": names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                                   "cause": "The specified tolerated failure threshold was exceeded"}));
            }
        }
        let items_mocked =
            kind == "Map" && mock.as_ref().is_some_and(|m| m.get("result").is_some());
        if items_mocked && !self.jsonata && !state.contains_key("ItemReader") {
            // The mock stands in for the iterations, but AWS reads ItemsPath first and
            // fails when it finds no array there (its recording
            // `test_state_map_context_object`).
            if let Some(v) = self.items_path_value(state, &req.input).await {
                if !v.is_array() {
                    let path = state.get("ItemsPath").and_then(Value::as_str);
                    let cause = exec::items_not_an_array(path, &crate::value::Value::from(&v));
                    return Ok(self.items_not_an_array(state, req, &cause).await);
                }
            }
        }
        let trace = (req.level == Level::Trace && resource == http::INVOKE && req.mock.is_none())
            .then(http::Trace::default);
        let seen = Arc::new(Mutex::new(Recorded::default()));
        let run = self
            .run_state(bare, &req.input, mock.as_ref(), trace.clone(), &seen)
            .await?;
        let recorded = std::mem::take(&mut *seen.lock().unwrap_or_else(|p| p.into_inner()));

        let mut out = Map::new();
        let mut inspection = Map::new();
        let mut variables = run.variables;
        match run.result {
            Ok((output, next)) => {
                if let Some(n) = next {
                    out.insert("nextState".into(), json!(n));
                }
                out.insert("output".into(), text(&output));
                out.insert("status".into(), json!("SUCCEEDED"));
            }
            Err(err) => {
                out.insert("error".into(), json!(err.error));
                out.insert("cause".into(), json!(err.cause));
                let status = match handling(state, &err, req.config.retrier_retry_count) {
                    Handling::Retry { index, backoff } => {
                        inspection.insert(
                            "errorDetails".into(),
                            json!({"retryIndex": index, "retryBackoffIntervalSeconds": backoff}),
                        );
                        "RETRIABLE"
                    }
                    Handling::Catch(index) => {
                        inspection.insert("errorDetails".into(), json!({"catchIndex": index}));
                        let caught = self.replay_catch(state, &req.input, &err).await?;
                        variables = caught.variables;
                        match caught.result {
                            Ok((output, next)) => {
                                if let Some(n) = next {
                                    out.insert("nextState".into(), json!(n));
                                }
                                out.insert("output".into(), text(&output));
                                "CAUGHT_ERROR"
                            }
                            Err(e) => {
                                // The catcher itself failed (its Output or Assign): that
                                // error is the state's.
                                out.insert("error".into(), json!(e.error));
                                out.insert("cause".into(), json!(e.cause));
                                inspection.remove("errorDetails");
                                "FAILED"
                            }
                        }
                    }
                    Handling::Uncaught(retrier) => {
                        // AWS still names the retrier whose attempts are used up
                        // (LocalStack's recording `exceeds_tolerated_retry_count`).
                        if let Some(index) = retrier {
                            inspection.insert("errorDetails".into(), json!({"retryIndex": index}));
                        }
                        "FAILED"
                    }
                };
                out.insert("status".into(), json!(status));
            }
        }
        if req.level >= Level::Debug {
            let mut data = Map::new();
            data.insert("input".into(), json!(req.input_text));
            if self.jsonata {
                self.inspect_jsonata(kind, &recorded, &mut data);
            } else {
                self.inspect_jsonpath(state, kind, &req.input, &recorded, &mut data)
                    .await;
            }
            if kind == "Map" {
                self.inspect_map(state, &req.input, &mut data).await;
                self.inspect_map_items(state, &req.input, reader_data, &mut data)
                    .await;
            }
            if !variables.is_empty() {
                let vars = Value::from(crate::value::Value::Object(std::mem::take(&mut variables)));
                data.insert("variables".into(), text(&vars));
            }
            if let Some(t) = &trace {
                let exchange = t.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(x) = exchange {
                    http_trace(&x, req.reveal_secrets, &mut data);
                }
            }
            data.extend(inspection);
            out.insert("inspectionData".into(), Value::Object(data));
        }
        Ok(Value::Object(out))
    }

    /// The state's catchers applied to `err`: a stand-in Task with the state's Catch whose
    /// call fails with that error, so the catcher's ResultPath, Output and Assign are the
    /// engine's own and nothing is called again.
    async fn replay_catch(
        &self,
        state: &Map<String, Value>,
        input: &Value,
        err: &WorkflowError,
    ) -> Result<Run, ApiError> {
        let mut stand_in = Map::new();
        stand_in.insert("Type".into(), json!("Task"));
        stand_in.insert("Resource".into(), json!(STAND_IN_RESOURCE));
        for k in ["QueryLanguage", "Catch"] {
            if let Some(v) = state.get(k) {
                stand_in.insert(k.into(), v.clone());
            }
        }
        stand_in.insert("End".into(), json!(true));
        let mock = json!({"error": err.error, "cause": err.cause});
        let seen = Arc::new(Mutex::new(Recorded::default()));
        self.run_state(stand_in, input, Some(&mock), None, &seen)
            .await
    }

    /// DEBUG's data for a JSONata state: what its task call was sent and answered.
    fn inspect_jsonata(&self, kind: &str, recorded: &Recorded, data: &mut Map<String, Value>) {
        if kind != "Task" {
            return;
        }
        if let Some(i) = &recorded.input {
            data.insert("afterArguments".into(), text(&Value::from(i.clone())));
        }
        if let Some(Ok(r)) = &recorded.result {
            data.insert("result".into(), text(&Value::from(r.clone())));
        }
    }

    /// DEBUG's data after each step of JSONPath input and output processing, up to the
    /// first step that fails; per state type, the fields AWS reports.
    async fn inspect_jsonpath(
        &self,
        state: &Map<String, Value>,
        kind: &str,
        input: &Value,
        recorded: &Recorded,
        data: &mut Map<String, Value>,
    ) {
        let field = |k: &str| state.get(k).cloned();
        let pass_result = if kind == "Pass" {
            field("Result")
        } else {
            None
        };
        // A Pass state with a Result reads no input before it, and AWS shows none for a
        // (mocked) Parallel state either: its inspection data is the input and what became
        // of the branches' outputs (LocalStack's recording `test_base_parallel_state_mock_success`).
        let mut after_parameters = None;
        if pass_result.is_none() && kind != "Parallel" {
            let mut pass = input_path_only(state);
            let Some(after_input) = self.run_pass(pass.clone(), input).await else {
                return;
            };
            data.insert("afterInputPath".into(), text(&after_input));
            if kind == "Map" {
                let mut items = pass.clone();
                let path = field("ItemsPath").unwrap_or_else(|| json!("$"));
                items.insert("OutputPath".into(), path);
                if let Some(v) = self.run_pass(items, input).await {
                    data.insert("afterItemsPath".into(), text(&v));
                }
            }
            if kind == "Map" && recorded.result.is_none() {
                return;
            }
            // A mocked Map's result is the mock: no Parameters step before it.
            if matches!(kind, "Task" | "Pass") {
                let params = match (&recorded.input, field("Parameters")) {
                    (Some(sent), _) => Value::from(sent.clone()),
                    (None, Some(p)) => {
                        pass.insert("Parameters".into(), p);
                        match self.run_pass(pass, input).await {
                            Some(v) => v,
                            None => return,
                        }
                    }
                    (None, None) => after_input,
                };
                data.insert("afterParameters".into(), text(&params));
                after_parameters = Some(params);
            }
        }
        let result = match kind {
            "Task" | "Map" | "Parallel" => match &recorded.result {
                Some(Ok(r)) => Value::from(r.clone()),
                _ => return,
            },
            "Pass" => match pass_result {
                Some(r) => {
                    data.insert("result".into(), text(&r));
                    r
                }
                None => after_parameters.unwrap_or(Value::Null),
            },
            _ => return,
        };
        if kind == "Task" {
            data.insert("result".into(), text(&result));
        }
        let after_selector = match field("ResultSelector") {
            Some(sel) => {
                let mut p = Map::new();
                p.insert("Parameters".into(), sel);
                match self.run_pass(p, &result).await {
                    Some(v) => v,
                    None => return,
                }
            }
            None => result,
        };
        data.insert("afterResultSelector".into(), text(&after_selector));
        let mut p = Map::new();
        p.insert("Result".into(), after_selector);
        if let Some(rp) = field("ResultPath") {
            p.insert("ResultPath".into(), rp);
        }
        if let Some(v) = self.run_pass(p, input).await {
            data.insert("afterResultPath".into(), text(&v));
        }
    }

    /// A Map state's concurrency and failure tolerance as this input makes them (AWS
    /// reports `maxConcurrency` always, 0 for no limit, the tolerances when set).
    async fn inspect_map(
        &self,
        state: &Map<String, Value>,
        input: &Value,
        data: &mut Map<String, Value>,
    ) {
        for (field, key) in [
            ("MaxConcurrency", "maxConcurrency"),
            ("ToleratedFailureCount", "toleratedFailureCount"),
            ("ToleratedFailurePercentage", "toleratedFailurePercentage"),
        ] {
            match self.amount(state, state, field, input).await {
                Some(v) => {
                    data.insert(key.into(), v);
                }
                None if key == "maxConcurrency" => {
                    data.insert(key.into(), json!(0));
                }
                None => {}
            }
        }
    }

    /// The number `holder` (the state, or a field of it such as ItemBatcher) sets in
    /// `field`: a number, a JSONata expression, or (JSONPath) a `{field}Path` into the
    /// state's input.
    async fn amount(
        &self,
        state: &Map<String, Value>,
        holder: &Map<String, Value>,
        field: &str,
        input: &Value,
    ) -> Option<Value> {
        match (holder.get(field), holder.get(&format!("{field}Path"))) {
            (Some(v @ Value::Number(_)), _) => Some(v.clone()),
            (Some(q @ Value::String(_)), _) if self.jsonata => {
                self.run_pass(jsonata_output(q), input).await
            }
            (None, Some(path)) if !self.jsonata => {
                let mut pass = input_path_only(state);
                pass.insert("Parameters".into(), json!({"v.$": path}));
                self.run_pass(pass, input)
                    .await
                    .and_then(|v| v.get("v").cloned())
            }
            _ => None,
        }
    }

    /// Whether `failed` iterations of `total` are more than the Map state tolerates. A Map
    /// that names no tolerance is not checked: AWS's TestState answers it as mocked.
    async fn exceeds_tolerance(
        &self,
        state: &Map<String, Value>,
        input: &Value,
        failed: u64,
        total: Option<usize>,
    ) -> bool {
        let number = |v: Option<Value>| v.and_then(|v| v.as_f64());
        let count = number(
            self.amount(state, state, "ToleratedFailureCount", input)
                .await,
        );
        let percentage = number(
            self.amount(state, state, "ToleratedFailurePercentage", input)
                .await,
        );
        let failed = failed as f64;
        let over_count = count.is_some_and(|c| failed > c);
        let over_percentage = match (percentage, total) {
            (Some(p), Some(t)) if t > 0 => failed * 100.0 / t as f64 > p,
            _ => false,
        };
        over_count || over_percentage
    }

    /// The answer for a mocked Map whose ItemsPath selects no array: FAILED with
    /// `States.Runtime`, and at DEBUG the data up to InputPath, as AWS answers.
    async fn items_not_an_array(
        &self,
        state: &Map<String, Value>,
        req: &Request,
        cause: &str,
    ) -> Value {
        let mut out = Map::new();
        out.insert("status".into(), json!("FAILED"));
        out.insert("error".into(), json!(names::RUNTIME));
        out.insert("cause".into(), json!(cause));
        if req.level >= Level::Debug {
            let mut data = Map::new();
            data.insert("input".into(), json!(req.input_text));
            let pass = input_path_only(state);
            if let Some(v) = self.run_pass(pass, &req.input).await {
                data.insert("afterInputPath".into(), text(&v));
            }
            out.insert("inspectionData".into(), Value::Object(data));
        }
        Value::Object(out)
    }

    /// What a JSONPath Map's ItemsPath selects of the input (after InputPath).
    async fn items_path_value(&self, state: &Map<String, Value>, input: &Value) -> Option<Value> {
        let mut pass = input_path_only(state);
        let path = state
            .get("ItemsPath")
            .cloned()
            .unwrap_or_else(|| json!("$"));
        pass.insert("OutputPath".into(), path);
        self.run_pass(pass, input).await
    }

    /// A Map state's items for this input: what its ItemReader read (`mapItemReaderData`,
    /// through ReaderConfig's ItemsPointer), else its ItemsPath (JSONPath) or Items
    /// (JSONata) applied to the input.
    async fn map_items(
        &self,
        state: &Map<String, Value>,
        input: &Value,
        reader_data: Option<&Value>,
    ) -> Option<Items> {
        if let Some(reader) = state.get("ItemReader") {
            let data = reader_data?;
            let pointer = reader
                .pointer("/ReaderConfig/ItemsPointer")
                .and_then(Value::as_str);
            let Some(p) = pointer else {
                return Some(Items {
                    items: data.as_array()?.clone(),
                    after_pointer: None,
                });
            };
            let selected = data.pointer(p)?;
            return Some(Items {
                items: selected.as_array()?.clone(),
                after_pointer: Some(selected.clone()),
            });
        }
        let items = if self.jsonata {
            match state.get("Items") {
                Some(q) => self.run_pass(jsonata_output(q), input).await?,
                None => input.clone(),
            }
        } else {
            self.items_path_value(state, input).await?
        };
        match items {
            Value::Array(items) => Some(Items {
                items,
                after_pointer: None,
            }),
            _ => None,
        }
    }

    /// DEBUG's data on how a Map state makes its iterations' inputs: the items its
    /// ItemsPointer selected, each item after ItemSelector, the ItemBatcher's batches
    /// (built from the selected items).
    async fn inspect_map_items(
        &self,
        state: &Map<String, Value>,
        input: &Value,
        reader_data: Option<&Value>,
        data: &mut Map<String, Value>,
    ) {
        let Some(Items {
            items,
            after_pointer,
        }) = self.map_items(state, input, reader_data).await
        else {
            return;
        };
        if let Some(p) = after_pointer {
            data.insert("afterItemsPointer".into(), text(&p));
        }
        if items.len() > MAX_INSPECTED_ITEMS {
            return;
        }
        let selector = match state.get("ItemSelector") {
            Some(s) => Some(s),
            // JSONPath's older name for ItemSelector.
            None if !self.jsonata => state.get("Parameters"),
            None => None,
        };
        let items = match selector {
            Some(sel) => {
                let Some(selected) = self.select_items(state, sel, input, &items).await else {
                    return;
                };
                data.insert(
                    "afterItemSelector".into(),
                    text(&Value::Array(selected.clone())),
                );
                selected
            }
            None => items,
        };
        if let Some(batcher) = state.get("ItemBatcher").and_then(Value::as_object) {
            if let Some(batches) = self.batch_items(state, batcher, input, items).await {
                data.insert("afterItemBatcher".into(), text(&Value::Array(batches)));
            }
        }
    }

    /// Each item through the Map's ItemSelector, with `$$.Map.Item` set as in its
    /// iteration; `None` if one fails or they pass [`MAX_INSPECTED_BYTES`].
    async fn select_items(
        &self,
        state: &Map<String, Value>,
        selector: &Value,
        input: &Value,
        items: &[Value],
    ) -> Option<Vec<Value>> {
        let machine = self
            .compile(self.pass_states(self.template_pass(state, selector)))
            .ok()?;
        // Converted once: every item's run shares the one input.
        let input = crate::value::Value::from(input);
        let mut selected = Vec::with_capacity(items.len());
        let mut bytes = 0;
        for (index, item) in items.iter().enumerate() {
            let mut context = self.context.clone();
            if let crate::value::Value::Object(m) = &mut context {
                let map = json!({"Item": {"Index": index, "Value": item}});
                m.insert("Map".into(), crate::value::Value::from(&map));
            }
            let v = self.run_plan(&machine, input.clone(), context).await?;
            bytes += v.to_string().len() + 1;
            if bytes > MAX_INSPECTED_BYTES {
                return None;
            }
            selected.push(v);
        }
        Some(selected)
    }

    /// The ItemBatcher's batches of `items` (`{"Items": [..]}`, with BatchInput when it
    /// names one): each holds up to MaxItemsPerBatch items and, roughly (items' JSON
    /// size), up to MaxInputBytesPerBatch bytes.
    async fn batch_items(
        &self,
        state: &Map<String, Value>,
        batcher: &Map<String, Value>,
        input: &Value,
        items: Vec<Value>,
    ) -> Option<Vec<Value>> {
        let limit = |v: Option<Value>| v.and_then(|v| v.as_u64()).filter(|n| *n > 0);
        let max_items = limit(self.amount(state, batcher, "MaxItemsPerBatch", input).await);
        let max_bytes = limit(
            self.amount(state, batcher, "MaxInputBytesPerBatch", input)
                .await,
        );
        if max_items.is_none() && max_bytes.is_none() {
            return None;
        }
        let batch_input = match batcher.get("BatchInput") {
            None => None,
            Some(t) => Some(self.run_pass(self.template_pass(state, t), input).await?),
        };
        let make = |items: Vec<Value>| {
            let mut b = Map::new();
            if let Some(i) = &batch_input {
                b.insert("BatchInput".into(), i.clone());
            }
            b.insert("Items".into(), Value::Array(items));
            Value::Object(b)
        };
        // Every batch repeats BatchInput and its own wrapping: counted, with the items, so
        // the whole stays within what the field may hold.
        let per_batch = batch_input.as_ref().map_or(0, |b| b.to_string().len()) as u64 + 32;
        let (mut batches, mut current, mut current_bytes) = (Vec::new(), Vec::new(), 0u64);
        let mut total_bytes = per_batch;
        for item in items {
            let size = item.to_string().len() as u64 + 1;
            let full = max_items.is_some_and(|m| current.len() as u64 >= m)
                || max_bytes.is_some_and(|m| !current.is_empty() && current_bytes + size > m);
            if full {
                batches.push(make(std::mem::take(&mut current)));
                current_bytes = 0;
                total_bytes += per_batch;
            }
            total_bytes += size;
            if total_bytes > MAX_INSPECTED_BYTES as u64 {
                return None;
            }
            current_bytes += size;
            current.push(item);
        }
        if !current.is_empty() {
            batches.push(make(current));
        }
        Some(batches)
    }

    /// A Pass state that builds `template` (a JSONPath payload template over the input
    /// after InputPath, or a JSONata value) as its output.
    fn template_pass(&self, state: &Map<String, Value>, template: &Value) -> Map<String, Value> {
        if self.jsonata {
            return jsonata_output(template);
        }
        let mut pass = input_path_only(state);
        pass.insert("Parameters".into(), template.clone());
        pass
    }

    /// Runs `state` once in a machine of its own: the output and the name of the state it
    /// goes to, or its error, and the variables after it.
    async fn run_state(
        &self,
        mut state: Map<String, Value>,
        input: &Value,
        mock: Option<&Value>,
        trace: Option<http::Trace>,
        seen: &Arc<Mutex<Recorded>>,
    ) -> Result<Run, ApiError> {
        // Every transition goes to a placeholder that names the target it stands for.
        let mut targets: Vec<String> = Vec::new();
        let mut retarget = |v: &mut Value| {
            if let Some(t) = v.as_str() {
                let i = targets.iter().position(|x| x == t).unwrap_or_else(|| {
                    targets.push(t.to_string());
                    targets.len() - 1
                });
                *v = json!(placeholder(i));
            }
        };
        for k in ["Next", "Default"] {
            if let Some(v) = state.get_mut(k) {
                retarget(v);
            }
        }
        for k in ["Choices", "Catch"] {
            if let Some(rules) = state.get_mut(k).and_then(Value::as_array_mut) {
                for r in rules {
                    if let Some(v) = r.get_mut("Next") {
                        retarget(v);
                    }
                }
            }
        }
        let resource = state
            .get("Resource")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut states = Map::new();
        states.insert(self.name.to_string(), Value::Object(state));
        for (i, t) in targets.iter().enumerate() {
            states.insert(placeholder(i), json!({"Type": "Succeed", "Comment": t}));
        }
        let compiled = self.compile(states)?;
        let mut tasks = (*compiled.tasks).clone();
        if let Some(t) = trace {
            tasks = tasks.with_http_trace(t);
        }
        if let Some(m) = mock {
            let mocks = crate::tasks::mock::Mocks::from_json(&json!({self.name: [m]}))
                .map_err(ApiError::validation)?;
            tasks = tasks.with_mocks(mocks);
        }
        // A Task's one call goes through the recorder; a Map or Parallel state's calls go
        // straight to the handlers.
        if let Some(r) = resource {
            let mut outer = Tasks::new();
            outer.register(
                r,
                Arc::new(Recorder {
                    inner: tasks,
                    seen: Arc::clone(seen),
                }),
            );
            tasks = outer;
        }
        let ran = exec::run_start_state(
            &compiled.plan,
            input.clone(),
            self.variables.clone(),
            Some(self.context.clone()),
            &tasks,
            &self.options(),
        )
        .await;
        let result = ran.result.map(|(out, next)| {
            // The placeholder's index back to the target it stands for.
            let name = next.and_then(|i| {
                let n = &compiled.plan.nodes.get(i)?.state.name;
                let k = n.strip_prefix("stepstream:next:")?.parse::<usize>().ok()?;
                targets.get(k).cloned()
            });
            (Value::from(out), name)
        });
        Ok(Run {
            result,
            variables: ran.variables,
        })
    }

    /// Runs one Pass state built from the tested state's fields (JSONPath unless it names
    /// its language); its output, if it succeeded.
    async fn run_pass(&self, pass: Map<String, Value>, input: &Value) -> Option<Value> {
        let machine = self.compile(self.pass_states(pass)).ok()?;
        self.run_plan(
            &machine,
            crate::value::Value::from(input),
            self.context.clone(),
        )
        .await
    }

    /// Runs the start state of `machine` (no task calls) over this Context object; its
    /// output, if it succeeded.
    async fn run_plan(
        &self,
        machine: &crate::machines::Machine,
        input: crate::value::Value,
        context: crate::value::Value,
    ) -> Option<Value> {
        let ran = exec::run_start_state(
            &machine.plan,
            input,
            self.variables.clone(),
            Some(context),
            &Tasks::new(),
            &self.options(),
        )
        .await;
        ran.result.ok().map(|(out, _)| Value::from(out))
    }

    /// The states of a machine of one Pass state (JSONPath unless it names its language),
    /// named as the tested state so `$$.State.Name` reads the same.
    fn pass_states(&self, mut pass: Map<String, Value>) -> Map<String, Value> {
        pass.insert("Type".into(), json!("Pass"));
        pass.entry("QueryLanguage").or_insert(json!("JSONPath"));
        pass.insert("End".into(), json!(true));
        let mut states = Map::new();
        states.insert(self.name.to_string(), Value::Object(pass));
        states
    }

    /// Refuses the state, as written, if a machine holding only it would be refused. (A
    /// Standard machine's: a mock answers a job wait.)
    fn check_as_written(&self, state: &Map<String, Value>) -> Result<(), ApiError> {
        let mut alone = state.clone();
        // A state that goes on ends here instead (Succeed and Fail have neither field).
        if alone.remove("Next").is_some() {
            alone.insert("End".into(), json!(true));
        }
        // TestState reads an ItemReader's data from mapItemReaderData (and a mock stands
        // for a ResultWriter's answer); a machine refuses both.
        alone.remove("ItemReader");
        alone.remove("ResultWriter");
        let mut states = Map::new();
        states.insert(self.name.to_string(), Value::Object(alone));
        let mut machine = json!({"StartAt": self.name, "States": states});
        if self.jsonata {
            machine["QueryLanguage"] = json!("JSONata");
        }
        let found = super::machines::diagnostics_of(&machine, MachineType::Standard);
        match found.is_empty() {
            true => Ok(()),
            false => Err(super::machines::refusal(&found)),
        }
    }

    fn compile(&self, states: Map<String, Value>) -> Result<crate::machines::Machine, ApiError> {
        let mut machine = json!({"StartAt": self.name, "States": states});
        if self.jsonata {
            machine["QueryLanguage"] = json!("JSONata");
        }
        self.api.registry.compile_test(&machine).map_err(|e| {
            ApiError::invalid_definition(format!("Invalid State Machine Definition: {e}"))
        })
    }

    fn options(&self) -> ExecOptions {
        ExecOptions {
            max_duration: MAX_DURATION,
            state_machine_name: "TestState".into(),
            // AWS's recordings of TestState have no `$$.Execution.RedriveCount`.
            workflow_type: crate::exec::WorkflowType::ExpressSync,
            ..ExecOptions::default()
        }
    }
}

/// What the state's Retry and Catch make of an error.
fn handling(state: &Map<String, Value>, err: &WorkflowError, retries: u64) -> Handling {
    // AWS uses the first retrier whose ErrorEquals matches; once it is exhausted, no
    // later one applies and the error goes to the catchers.
    let retrier = state
        .get("Retry")
        .and_then(Value::as_array)
        .and_then(|rs| rs.iter().enumerate().find(|(_, r)| matches_any(r, err)));
    if let Some((index, r)) = &retrier {
        let (index, r) = (*index, *r);
        let num = |k: &str, default: f64| r.get(k).and_then(Value::as_f64).unwrap_or(default);
        if (retries as f64) < num("MaxAttempts", 3.0) {
            let exponent = i32::try_from(retries.min(1024)).unwrap_or(1024);
            let mut backoff = num("IntervalSeconds", 1.0) * num("BackoffRate", 2.0).powi(exponent);
            if let Some(max) = r.get("MaxDelaySeconds").and_then(Value::as_f64) {
                backoff = backoff.min(max);
            }
            // A whole number of seconds, as AWS reports it; a year at most.
            let backoff = backoff.clamp(0.0, 31_536_000.0) as u64;
            return Handling::Retry { index, backoff };
        }
    }
    state
        .get("Catch")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().position(|c| matches_any(c, err)))
        .map_or(Handling::Uncaught(retrier.map(|(i, _)| i)), Handling::Catch)
}

/// What Retry and Catch do with an error.
#[derive(Debug, PartialEq)]
enum Handling {
    /// This retrier retries it after this many seconds.
    Retry { index: usize, backoff: u64 },
    /// This catcher handles it.
    Catch(usize),
    /// Nothing handles it; the retrier that matched it, its attempts used up, if any.
    Uncaught(Option<usize>),
}

/// A mocked state's call stands for all it would do: a Map or Parallel state becomes a
/// Task with the same input and output processing whose result is the mock, and a
/// resource an Express machine cannot call (`.sync`, `.waitForTaskToken`, an activity)
/// needs no calling.
fn stand_in_for_mocked(state: &mut Map<String, Value>) {
    let kind = state
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match kind.as_str() {
        "Map" | "Parallel" => {
            for k in [
                "Branches",
                "ItemProcessor",
                "Iterator",
                "ItemsPath",
                "Items",
                "ItemSelector",
                "ItemReader",
                "ItemBatcher",
                "ResultWriter",
                "MaxConcurrency",
                "MaxConcurrencyPath",
                "ToleratedFailureCount",
                "ToleratedFailureCountPath",
                "ToleratedFailurePercentage",
                "ToleratedFailurePercentagePath",
                "Label",
            ] {
                state.remove(k);
            }
            if kind == "Map" {
                // A Map's Parameters select each item, not the state's input.
                state.remove("Parameters");
            }
            state.insert("Type".into(), json!("Task"));
            state.insert("Resource".into(), json!(STAND_IN_RESOURCE));
        }
        "Task" => {
            let resource = state.get("Resource").and_then(Value::as_str).unwrap_or("");
            let waits = resource.ends_with(".waitForTaskToken")
                || resource.contains(".sync")
                || resource.contains(":activity:");
            if waits {
                state.insert("Resource".into(), json!(STAND_IN_RESOURCE));
            }
        }
        _ => {}
    }
}

/// TRACE's request and response of an HTTP Task, as sent and received; without
/// `reveal_secrets`, without what a connection added.
fn http_trace(x: &http::Exchange, reveal_secrets: bool, data: &mut Map<String, Value>) {
    let url = if reveal_secrets {
        &x.url
    } else {
        &x.url_without_secrets
    };
    let protocol = url.split(':').next().unwrap_or("https");
    // AWS writes headers as `[name: value, name: value]`.
    let headers = |h: &mut dyn Iterator<Item = (&str, &str)>| {
        let parts: Vec<String> = h.map(|(k, v)| format!("{k}: {v}")).collect();
        format!("[{}]", parts.join(", "))
    };
    let request_headers = headers(
        &mut x
            .headers
            .iter()
            .filter(|(_, _, secret)| reveal_secrets || !secret)
            .map(|(k, v, _)| (k.as_str(), v.as_str())),
    );
    data.insert(
        "request".into(),
        json!({"protocol": protocol, "method": x.method, "url": url,
               "headers": request_headers, "body": x.body}),
    );
    if let Some(r) = &x.response {
        let response_headers =
            headers(&mut r.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        data.insert(
            "response".into(),
            json!({"protocol": protocol, "statusCode": r.status_code.to_string(),
                   "statusMessage": r.status_message, "headers": response_headers,
                   "body": r.body}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_retrier_decides_and_its_backoff_grows_to_its_cap() {
        let state = json!({"Retry": [
            {"ErrorEquals": ["A"], "IntervalSeconds": 3, "BackoffRate": 2.0,
             "MaxAttempts": 2, "MaxDelaySeconds": 5},
            {"ErrorEquals": ["States.ALL"], "MaxAttempts": 10}],
            "Catch": [{"ErrorEquals": ["B"], "Next": "X"}, {"ErrorEquals": ["A"], "Next": "Y"}]});
        let state = state.as_object().unwrap();
        let a = WorkflowError::new("A", "x");
        assert_eq!(
            handling(state, &a, 0),
            Handling::Retry {
                index: 0,
                backoff: 3
            }
        );
        assert_eq!(
            handling(state, &a, 1),
            Handling::Retry {
                index: 0,
                backoff: 5
            }
        );
        // Exhausted: the later States.ALL retrier does not take over; the catcher does.
        assert_eq!(handling(state, &a, 2), Handling::Catch(1));
        let b = WorkflowError::new("B", "x");
        assert_eq!(
            handling(state, &b, 0),
            Handling::Retry {
                index: 1,
                backoff: 1
            }
        );
        let none = json!({});
        assert_eq!(
            handling(none.as_object().unwrap(), &b, 0),
            Handling::Uncaught(None)
        );
        // Used up with no catcher: AWS still names the retrier.
        let retry_only = json!({"Retry": [{"ErrorEquals": ["B"], "MaxAttempts": 1}]});
        assert_eq!(
            handling(retry_only.as_object().unwrap(), &b, 1),
            Handling::Uncaught(Some(0))
        );
    }

    #[test]
    fn a_trace_leaves_out_what_a_connection_added_unless_secrets_are_revealed() {
        let x = http::Exchange {
            method: "GET".into(),
            url: "https://api.example/x?q=1&token=s3cret".into(),
            url_without_secrets: "https://api.example/x?q=1".into(),
            headers: vec![
                ("x-trace".into(), "t1".into(), false),
                ("x-api-key".into(), "s3cret".into(), true),
            ],
            body: String::new(),
            response: Some(http::ExchangeResponse {
                status_code: 200,
                status_message: "OK".into(),
                headers: vec![("content-type".into(), "text/plain".into())],
                body: "fine".into(),
            }),
        };
        let render = |reveal| {
            let mut data = Map::new();
            http_trace(&x, reveal, &mut data);
            Value::Object(data)
        };
        let hidden = render(false);
        assert_eq!(hidden["request"]["url"], "https://api.example/x?q=1");
        assert_eq!(hidden["request"]["headers"], "[x-trace: t1]");
        assert_eq!(hidden["request"]["protocol"], "https");
        assert_eq!(hidden["response"]["headers"], "[content-type: text/plain]");
        assert_eq!(hidden["response"]["statusCode"], "200");
        let shown = render(true);
        assert_eq!(shown["request"]["url"], x.url);
        assert_eq!(
            shown["request"]["headers"],
            "[x-trace: t1, x-api-key: s3cret]"
        );
    }

    #[test]
    fn an_errors_origin_is_looked_for_in_branches_and_item_processors_at_any_depth() {
        let parallel = json!({"Type": "Parallel", "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}},
            {"StartAt": "M", "States": {"M": {"Type": "Map", "Iterator": {"StartAt": "Deep",
                "States": {"Deep": {"Type": "Pass", "End": true}}}, "End": true}}}]});
        let parallel = parallel.as_object().unwrap();
        for inner in ["A", "M", "Deep"] {
            assert!(has_inner_state(parallel, inner, 0), "{inner}");
        }
        assert!(!has_inner_state(parallel, "Nowhere", 0));
        // The state itself is not inside itself.
        let map = json!({"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {}}});
        assert!(!has_inner_state(map.as_object().unwrap(), "TestState", 0));
    }

    #[test]
    fn a_mocked_map_becomes_a_task_with_its_output_processing() {
        let mut map = json!({"Type": "Map", "ItemsPath": "$.xs", "Parameters": {"v.$": "$$.Map.Item.Value"},
            "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}},
            "MaxConcurrency": 2, "ResultSelector": {"n.$": "$[0]"}, "ResultPath": "$.r", "End": true});
        stand_in_for_mocked(map.as_object_mut().unwrap());
        assert_eq!(
            map,
            json!({"Type": "Task", "Resource": STAND_IN_RESOURCE,
                   "ResultSelector": {"n.$": "$[0]"}, "ResultPath": "$.r", "End": true})
        );
        let mut sync =
            json!({"Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync"});
        stand_in_for_mocked(sync.as_object_mut().unwrap());
        assert_eq!(sync["Resource"], STAND_IN_RESOURCE);
        let mut plain = json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke"});
        stand_in_for_mocked(plain.as_object_mut().unwrap());
        assert_eq!(plain["Resource"], "arn:aws:states:::lambda:invoke");
    }
}
