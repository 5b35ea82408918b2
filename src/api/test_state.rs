//! TestState: one state run on its own, as AWS's TestState runs it: no retries (a matching
//! retrier makes the status RETRIABLE), a matching catcher makes it CAUGHT_ERROR with the
//! catcher's output and next state, and `inspectionLevel` DEBUG / TRACE reports the data
//! after each step of JSONPath input/output processing.
//!
//! Everything runs through the interpreter as small machines built around the state: the
//! state itself with a Succeed placeholder per transition target (whose entry names the next
//! state), and Pass states that apply one field at a time (InputPath, Parameters,
//! ResultSelector, ResultPath) for the inspection data, so the figures are the engine's own.
//! A Task is called once; `mock` answers it instead (`{"result": "<JSON>"}` or
//! `{"errorOutput": {"error", "cause"}}`).

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::fields::Fields;
use super::Api;
use crate::error::WorkflowError;
use crate::exec::{self, ExecOptions, LogLevel, LogSettings, Status};

/// How long the tested state may run.
const MAX_DURATION: Duration = Duration::from_secs(60);

/// The name the tested state gets when the definition is a state, not a machine.
const DEFAULT_STATE_NAME: &str = "TestState";

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
    let level = f
        .optional_string("inspectionLevel")?
        .unwrap_or_else(|| "INFO".into());
    if !["INFO", "DEBUG", "TRACE"].contains(&level.as_str()) {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{level}' at 'inspectionLevel' failed to satisfy \
             constraint: Member must satisfy enum value set: [INFO, DEBUG, TRACE]"
        )));
    }
    let input_text = f.optional_string("input")?.unwrap_or_else(|| "{}".into());
    if input_text.len() > super::executions::MAX_INPUT_BYTES
        || crate::pipeline::request::max_depth(input_text.as_bytes()) > api.max_input_depth
    {
        return Err(ApiError::invalid_input(
            "Invalid State Machine Execution Input: over 256 KiB or nested too deep",
        ));
    }
    let input: Value = serde_json::from_str(&input_text).map_err(|e| {
        ApiError::invalid_input(format!("Invalid State Machine Execution Input: '{e}'"))
    })?;
    let variables = match f.optional_string("variables")? {
        None => None,
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) if text.len() <= super::executions::MAX_INPUT_BYTES => Some(m),
            _ => {
                return Err(ApiError::validation(
                    "variables must be a JSON object of variable name -> value, up to 256 KiB",
                ))
            }
        },
    };
    let def: Value = serde_json::from_str(&definition).map_err(|e| {
        ApiError::invalid_definition(format!("Invalid State Machine Definition: {e}"))
    })?;
    let (name, state, query_language) = pick_state(&def, f.optional_string("stateName")?)?;
    let mock = mock_of(&f)?;

    let t = Tester {
        api,
        name: &name,
        query_language: query_language.clone(),
        variables: variables.as_ref(),
    };
    // The state without Retry and Catch: TestState reports what they would do.
    let mut bare = state.clone();
    bare.remove("Retry");
    bare.remove("Catch");
    let (outcome, events) = t.run_state(bare, &input, mock.as_ref()).await?;

    let mut out = Map::new();
    let debug = level != "INFO";
    let mut inspection = Map::new();
    if debug {
        inspection.insert("input".into(), json!(input_text));
        if let Some(v) = &variables {
            inspection.insert(
                "variables".into(),
                json!(Value::Object(v.clone()).to_string()),
            );
        }
    }
    match outcome.status {
        Status::Succeeded => {
            let output = state_output(&events, &name).or(outcome.output.map(Value::from));
            if let Some(next) = entered_after(&events) {
                out.insert("nextState".into(), json!(next));
            }
            if let Some(o) = &output {
                out.insert("output".into(), json!(o.to_string()));
            }
            out.insert("status".into(), json!("SUCCEEDED"));
            if debug && query_language != "JSONata" {
                t.inspect(&state, &input, &events, &mut inspection).await;
                if level == "TRACE" {
                    http_trace(&state, &mut inspection);
                }
            }
        }
        _ => {
            let err = WorkflowError {
                error: outcome.error.clone(),
                cause: outcome.cause.clone(),
            };
            out.insert("error".into(), json!(err.error));
            out.insert("cause".into(), json!(err.cause));
            let retrier = state.get("Retry").and_then(Value::as_array).and_then(|rs| {
                rs.iter().enumerate().find(|(_, r)| {
                    matches_any(r, &err)
                        && r.get("MaxAttempts").and_then(Value::as_u64).unwrap_or(3) > 0
                })
            });
            let catcher = state
                .get("Catch")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| matches_any(c, &err)));
            if let Some((i, r)) = retrier {
                out.insert("status".into(), json!("RETRIABLE"));
                let interval = r
                    .get("IntervalSeconds")
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                inspection.insert(
                    "errorDetails".into(),
                    json!({"retryIndex": i, "retryBackoffIntervalSeconds": interval}),
                );
            } else if let Some(c) = catcher {
                out.insert("status".into(), json!("CAUGHT_ERROR"));
                if let Some(next) = c.get("Next").and_then(Value::as_str) {
                    out.insert("nextState".into(), json!(next));
                }
                let error_output =
                    json!({"Error": err.error, "Cause": err.cause.clone().unwrap_or_default()});
                let caught = match c.get("ResultPath") {
                    Some(rp) if query_language != "JSONata" => {
                        let mut pass = Map::new();
                        pass.insert("Result".into(), error_output.clone());
                        pass.insert("ResultPath".into(), rp.clone());
                        t.run_pass(pass, &input).await
                    }
                    _ => Some(error_output),
                };
                if let Some(o) = caught {
                    out.insert("output".into(), json!(o.to_string()));
                }
            } else {
                out.insert("status".into(), json!("FAILED"));
            }
        }
    }
    if debug || inspection.contains_key("errorDetails") {
        out.insert("inspectionData".into(), Value::Object(inspection));
    }
    Ok(Value::Object(out))
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
            let state = states
                .get(&name)
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    ApiError::validation(format!("the definition has no state named {name:?}"))
                })?;
            let mut state = state.clone();
            // A state inherits the machine's query language unless it names its own.
            if !state.contains_key("QueryLanguage") {
                state.insert("QueryLanguage".into(), json!(ql(obj)));
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

/// The mocks a TestState `mock` asks for, as the tested state's mocks.
fn mock_of(f: &Fields) -> Result<Option<Value>, ApiError> {
    let Some(m) = f.optional("mock") else {
        return Ok(None);
    };
    if let Some(text) = m.get("result").and_then(Value::as_str) {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| ApiError::validation(format!("mock.result is not JSON: {e}")))?;
        return Ok(Some(json!({"result": v})));
    }
    if let Some(e) = m.get("errorOutput") {
        return Ok(Some(
            json!({"error": e.get("error"), "cause": e.get("cause")}),
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

struct Tester<'a> {
    api: &'a Api,
    name: &'a str,
    query_language: String,
    variables: Option<&'a Map<String, Value>>,
}

/// Placeholder state names, unlikely to clash with a user's.
fn placeholder(i: usize) -> String {
    format!("stepstream:next:{i}")
}

impl Tester<'_> {
    /// Runs the state in a machine of its own; returns the outcome and the history events.
    async fn run_state(
        &self,
        mut state: Map<String, Value>,
        input: &Value,
        mock: Option<&Value>,
    ) -> Result<(exec::Outcome, Vec<Value>), ApiError> {
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
        if let Some(v) = state.get_mut("Next") {
            retarget(v);
        }
        if let Some(v) = state.get_mut("Default") {
            retarget(v);
        }
        if let Some(rules) = state.get_mut("Choices").and_then(Value::as_array_mut) {
            for r in rules {
                if let Some(v) = r.get_mut("Next") {
                    retarget(v);
                }
            }
        }
        let mut states = Map::new();
        states.insert(self.name.to_string(), Value::Object(state));
        for (i, t) in targets.iter().enumerate() {
            states.insert(placeholder(i), json!({"Type": "Succeed", "Comment": t}));
        }
        let result = self.run_machine(states, input, mock).await?;
        // Placeholders back to the names they stand for.
        let events = result
            .1
            .into_iter()
            .map(|mut e| {
                if let Some(n) = e.pointer("/details/name").and_then(Value::as_str) {
                    if let Some(i) = n
                        .strip_prefix("stepstream:next:")
                        .and_then(|i| i.parse::<usize>().ok())
                    {
                        if let Some(t) = targets.get(i) {
                            e["details"]["name"] = json!(t);
                            e["placeholder"] = json!(true);
                        }
                    }
                }
                e
            })
            .collect();
        Ok((result.0, events))
    }

    async fn run_machine(
        &self,
        mut states: Map<String, Value>,
        input: &Value,
        mock: Option<&Value>,
    ) -> Result<(exec::Outcome, Vec<Value>), ApiError> {
        let mut start = self.name.to_string();
        if let Some(vars) = self.variables {
            // Variables are set by a Pass state before the tested one, as a workflow would.
            let pre = "stepstream:variables";
            states.insert(
                pre.into(),
                json!({"Type": "Pass", "QueryLanguage": "JSONPath", "Assign": vars, "Next": start}),
            );
            start = pre.into();
        }
        let mut machine = json!({"StartAt": start, "States": states});
        if self.query_language == "JSONata" {
            machine["QueryLanguage"] = json!("JSONata");
        }
        let compiled = self.api.registry.compile_test(&machine).map_err(|e| {
            ApiError::invalid_definition(format!("Invalid State Machine Definition: {e}"))
        })?;
        let mut tasks = (*compiled.tasks).clone();
        if let Some(m) = mock {
            let mocks = crate::tasks::mock::Mocks::from_json(&json!({self.name: [m]}))
                .map_err(ApiError::validation)?;
            tasks = tasks.with_mocks(mocks);
        }
        let opts = ExecOptions {
            max_duration: MAX_DURATION,
            state_machine_name: "TestState".into(),
            log: LogSettings {
                level: LogLevel::All,
                include_execution_data: true,
            },
            ..ExecOptions::default()
        };
        let (outcome, log) =
            exec::execute_logged(&compiled.plan, input.clone(), &tasks, &opts).await;
        // TestState shapes its answer with serde_json; a test run's events are few.
        Ok((outcome, log.events.into_iter().map(Value::from).collect()))
    }

    /// Runs one Pass state built from the tested state's fields; its output, if it succeeded.
    async fn run_pass(&self, mut pass: Map<String, Value>, input: &Value) -> Option<Value> {
        pass.insert("Type".into(), json!("Pass"));
        pass.insert("QueryLanguage".into(), json!("JSONPath"));
        pass.insert("End".into(), json!(true));
        let mut states = Map::new();
        states.insert(self.name.to_string(), Value::Object(pass));
        let (outcome, _) = self.run_machine(states, input, None).await.ok()?;
        outcome.output.map(Value::from)
    }

    /// DEBUG's data after each step of JSONPath input and output processing.
    async fn inspect(
        &self,
        state: &Map<String, Value>,
        input: &Value,
        events: &[Value],
        out: &mut Map<String, Value>,
    ) {
        let field = |k: &str| state.get(k).cloned();
        let mut pass = Map::new();
        if let Some(p) = field("InputPath") {
            pass.insert("InputPath".into(), p);
        }
        let Some(after_input) = self.run_pass(pass.clone(), input).await else {
            return;
        };
        out.insert("afterInputPath".into(), json!(after_input.to_string()));
        let after_parameters = match field("Parameters") {
            Some(p) => {
                pass.insert("Parameters".into(), p);
                match self.run_pass(pass, input).await {
                    Some(v) => v,
                    None => return,
                }
            }
            None => after_input,
        };
        out.insert(
            "afterParameters".into(),
            json!(after_parameters.to_string()),
        );
        let kind = state.get("Type").and_then(Value::as_str).unwrap_or("");
        let result = match kind {
            "Task" => events
                .iter()
                .find(|e| e["type"] == "TaskSucceeded")
                .and_then(|e| e.pointer("/details/output"))
                .and_then(Value::as_str)
                .and_then(|t| serde_json::from_str::<Value>(t).ok()),
            "Pass" => Some(field("Result").unwrap_or(after_parameters)),
            _ => None,
        };
        let Some(result) = result else { return };
        out.insert("result".into(), json!(result.to_string()));
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
        out.insert(
            "afterResultSelector".into(),
            json!(after_selector.to_string()),
        );
        let mut p = Map::new();
        p.insert("Result".into(), after_selector);
        if let Some(rp) = field("ResultPath") {
            p.insert("ResultPath".into(), rp);
        }
        if let Some(v) = self.run_pass(p, input).await {
            out.insert("afterResultPath".into(), json!(v.to_string()));
        }
    }
}

/// TRACE's request and response of an HTTP Task, read from its parameters and result.
fn http_trace(state: &Map<String, Value>, inspection: &mut Map<String, Value>) {
    if state.get("Resource").and_then(Value::as_str) != Some("arn:aws:states:::http:invoke") {
        return;
    }
    let read = |k: &str| {
        inspection
            .get(k)
            .and_then(Value::as_str)
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
    };
    let (params, result) = (read("afterParameters"), read("result"));
    if let Some(p) = params {
        inspection.insert(
            "request".into(),
            json!({
                "protocol": "https",
                "method": p.get("Method"),
                "url": p.get("ApiEndpoint"),
                "headers": p.get("Headers").map(Value::to_string),
                "body": p.get("RequestBody").map(Value::to_string),
            }),
        );
    }
    if let Some(r) = result {
        inspection.insert(
            "response".into(),
            json!({
                "protocol": "https",
                "statusCode": r.get("StatusCode").map(Value::to_string),
                "statusMessage": r.get("StatusText"),
                "headers": r.get("Headers").map(Value::to_string),
                "body": r.get("ResponseBody").map(Value::to_string),
            }),
        );
    }
}

/// The tested state's output, from its `...StateExited` event.
fn state_output(events: &[Value], name: &str) -> Option<Value> {
    events
        .iter()
        .find(|e| {
            e["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("StateExited"))
                && e.pointer("/details/name").and_then(Value::as_str) == Some(name)
                && e.get("placeholder").is_none()
        })
        .and_then(|e| e.pointer("/details/output"))
        .and_then(Value::as_str)
        .and_then(|t| serde_json::from_str(t).ok())
}

/// The state entered after the tested one (a placeholder's target), if any.
fn entered_after(events: &[Value]) -> Option<String> {
    events
        .iter()
        .find(|e| {
            e.get("placeholder").is_some()
                && e["type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("StateEntered"))
        })
        .and_then(|e| e.pointer("/details/name"))
        .and_then(Value::as_str)
        .map(str::to_string)
}
