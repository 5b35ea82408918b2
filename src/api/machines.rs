//! State machine operations: Create, Describe, List, Update, Delete, and
//! ValidateStateMachineDefinition with AWS's diagnostics.

use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::fields::{self, Fields};
use super::Api;
use crate::asl::model::MachineType;
use crate::asl::Problem;
use crate::pipeline::definitions::{epoch_seconds, DefinitionRecord, Origin, MAX_DEFINITION_CHARS};
use crate::pipeline::result::state_machine_arn;

/// The state machine a `stateMachineArn` names, if it exists.
pub fn resolve(api: &Api, arn: &str) -> Result<DefinitionRecord, ApiError> {
    let name = fields::machine_name(arn)?;
    api.registry
        .get(name)
        .ok_or_else(|| ApiError::no_machine(arn))
}

/// CreateStateMachine.
pub async fn create(api: &Api, f: Fields) -> Result<Value, ApiError> {
    let name = f.string("name")?;
    crate::pipeline::request::check_name(&name)
        .map_err(|e| ApiError::invalid_name(format!("Invalid Name: '{name}' ({e})")))?;
    let definition = f.string("definition")?;
    let role_arn = f.string("roleArn")?;
    let kind = f
        .optional_string("type")?
        .unwrap_or_else(|| "STANDARD".into());
    express_only(&kind)?;
    checked_definition(api, &name, &definition)?;
    if let Some(held) = api.registry.get(&name) {
        // AWS answers an identical create with the existing machine instead of an error.
        if held.definition == definition && held.role_arn == role_arn && held.kind == kind {
            return Ok(json!({
                "stateMachineArn": state_machine_arn(&name),
                "creationDate": held.creation_date,
            }));
        }
        return Err(ApiError {
            status: 400,
            kind: "StateMachineAlreadyExists",
            message: format!(
                "State Machine Already Exists: '{}'",
                state_machine_arn(&name)
            ),
        });
    }
    let now = epoch_seconds(chrono::Utc::now());
    let record = DefinitionRecord {
        name: name.clone(),
        definition,
        role_arn,
        kind,
        creation_date: now,
        update_date: now,
        revision_id: crate::pipeline::result::new_uuid().to_string(),
        origin: Origin::Api,
        description: String::new(),
        logging_configuration: f.optional("loggingConfiguration").cloned(),
        tracing_configuration: f.optional("tracingConfiguration").cloned(),
    };
    api.registry
        .write(&name, Some(&record))
        .await
        .map_err(ApiError::unavailable)?;
    Ok(json!({"stateMachineArn": state_machine_arn(&name), "creationDate": now}))
}

/// DescribeStateMachine.
pub fn describe(api: &Api, f: Fields) -> Result<Value, ApiError> {
    let arn = f.string("stateMachineArn")?;
    let r = resolve(api, &arn)?;
    let mut out = Map::new();
    out.insert("stateMachineArn".into(), json!(state_machine_arn(&r.name)));
    out.insert("name".into(), json!(r.name));
    out.insert("status".into(), json!("ACTIVE"));
    out.insert("definition".into(), json!(r.definition));
    out.insert("roleArn".into(), json!(r.role_arn));
    out.insert("type".into(), json!(r.kind));
    out.insert("creationDate".into(), json!(r.creation_date));
    out.insert(
        "loggingConfiguration".into(),
        r.logging_configuration
            .clone()
            .unwrap_or_else(|| json!({"level": "OFF", "includeExecutionData": false})),
    );
    out.insert(
        "tracingConfiguration".into(),
        r.tracing_configuration
            .clone()
            .unwrap_or_else(|| json!({"enabled": false})),
    );
    out.insert("revisionId".into(), json!(r.revision_id));
    if !r.description.is_empty() {
        out.insert("description".into(), json!(r.description));
    }
    Ok(Value::Object(out))
}

/// ListStateMachines, by name, paged with `maxResults` / `nextToken`.
pub fn list(api: &Api, f: Fields) -> Result<Value, ApiError> {
    let limit =
        match f.optional_u64("maxResults")? {
            None | Some(0) => 100,
            Some(n) if n <= 1000 => n as usize,
            Some(_) => return Err(ApiError::validation(
                "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: \
                 Member must have value less than or equal to 1000",
            )),
        };
    let token = f.optional_string("nextToken")?;
    let (page, more) = api.registry.list(token.as_deref(), limit);
    let items: Vec<Value> = page
        .iter()
        .map(|r| {
            json!({
                "stateMachineArn": state_machine_arn(&r.name),
                "name": r.name,
                "type": r.kind,
                "creationDate": r.creation_date,
            })
        })
        .collect();
    let mut out = json!({"stateMachines": items});
    if more {
        if let Some(last) = page.last() {
            out["nextToken"] = json!(last.name);
        }
    }
    Ok(out)
}

/// UpdateStateMachine: a new definition and/or role; logging and tracing kept as given.
pub async fn update(api: &Api, f: Fields) -> Result<Value, ApiError> {
    let arn = f.string("stateMachineArn")?;
    let mut r = resolve(api, &arn)?;
    let definition = f.optional_string("definition")?;
    let role_arn = f.optional_string("roleArn")?;
    let logging = f.optional("loggingConfiguration").cloned();
    let tracing = f.optional("tracingConfiguration").cloned();
    if definition.is_none() && role_arn.is_none() && logging.is_none() && tracing.is_none() {
        return Err(ApiError {
            status: 400,
            kind: "MissingRequiredParameter",
            message: "Either the definition, the role ARN, the LoggingConfiguration, or the \
                      TracingConfiguration must be specified"
                .into(),
        });
    }
    if let Some(d) = definition {
        checked_definition(api, &r.name, &d)?;
        r.definition = d;
    }
    if let Some(role) = role_arn {
        r.role_arn = role;
    }
    if logging.is_some() {
        r.logging_configuration = logging;
    }
    if tracing.is_some() {
        r.tracing_configuration = tracing;
    }
    if let Some(d) = f.optional_string("versionDescription")? {
        r.description = d;
    }
    let now = epoch_seconds(chrono::Utc::now());
    r.update_date = now;
    r.revision_id = crate::pipeline::result::new_uuid().to_string();
    r.origin = Origin::Api;
    api.registry
        .write(&r.name, Some(&r))
        .await
        .map_err(ApiError::unavailable)?;
    Ok(json!({"updateDate": now, "revisionId": r.revision_id}))
}

/// DeleteStateMachine: a tombstone on the topic; deleting what is not there succeeds, as on AWS.
pub async fn delete(api: &Api, f: Fields) -> Result<Value, ApiError> {
    let arn = f.string("stateMachineArn")?;
    let name = fields::machine_name(&arn)?;
    if api.registry.get(name).is_some() {
        api.registry
            .write(name, None)
            .await
            .map_err(ApiError::unavailable)?;
    }
    Ok(json!({}))
}

/// ValidateStateMachineDefinition: `result` OK or FAIL and one diagnostic per problem.
pub fn validate(f: Fields) -> Result<Value, ApiError> {
    let definition = f.string("definition")?;
    if let Some(kind) = f.optional_string("type")? {
        if kind != "STANDARD" && kind != "EXPRESS" {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{kind}' at 'type' failed to satisfy \
                 constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]"
            )));
        }
    }
    let max = match f.optional_u64("maxResults")? {
        None | Some(0) => 100,
        Some(n) => n.min(100) as usize,
    };
    // `severity` (ERROR or WARNING) needs nothing: stepstream reports errors only.
    let all = diagnostics(&definition);
    let truncated = all.len() > max;
    let shown: Vec<Value> = all.into_iter().take(max).collect();
    Ok(json!({
        "result": if shown.is_empty() { "OK" } else { "FAIL" },
        "diagnostics": shown,
        "truncated": truncated,
    }))
}

/// stepstream runs Express workflows only.
pub fn express_only(kind: &str) -> Result<(), ApiError> {
    match kind {
        "EXPRESS" => Ok(()),
        "STANDARD" => Err(ApiError::validation(
            "stepstream runs Express workflows only: create the state machine with type EXPRESS \
             (aws stepfunctions create-state-machine --type EXPRESS ...)",
        )),
        other => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'type' failed to satisfy constraint: \
             Member must satisfy enum value set: [STANDARD, EXPRESS]"
        ))),
    }
}

/// A definition the API accepts: within AWS's size, valid, and compiling with this
/// process's task bindings; otherwise AWS's InvalidDefinition (or ValidationException).
fn checked_definition(api: &Api, name: &str, definition: &str) -> Result<(), ApiError> {
    let chars = definition.chars().count();
    if chars > MAX_DEFINITION_CHARS {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at 'definition' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_DEFINITION_CHARS} (it has {chars})"
        )));
    }
    let found = diagnostics(definition);
    if !found.is_empty() {
        return Err(refusal(&found));
    }
    let def: Value = serde_json::from_str(definition).map_err(|e| {
        ApiError::invalid_definition(format!("Invalid State Machine Definition: {e}"))
    })?;
    api.registry
        .check(name, &def)
        .map_err(|e| ApiError::invalid_definition(format!("Invalid State Machine Definition: {e}")))
}

/// Every problem of a definition as AWS's diagnostics (`severity`, `code`, `message`, `location`).
pub fn diagnostics(definition: &str) -> Vec<Value> {
    let diag = |code: &str, message: &str, location: &str| json!({"severity": "ERROR", "code": code, "message": message, "location": location});
    if definition.trim().is_empty() {
        // AWS's answer to a blank definition has no location (LocalStack's recording
        // `test_validate_state_machine_definition_not_a_definition[EMPTY_STRING]`).
        return vec![
            json!({"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED",
            "message": "Definition must be a valid JSON object"}),
        ];
    }
    let def: Value = match serde_json::from_str(definition) {
        Ok(v) => v,
        Err(e) => {
            return vec![diag(
                "INVALID_JSON_DESCRIPTION",
                &format!("The definition is not valid JSON: {e}"),
                "/",
            )]
        }
    };
    diagnostics_of(&def, MachineType::Express)
}

/// AWS's InvalidDefinition refusal listing these diagnostics, as CreateStateMachine words it.
pub(crate) fn refusal(found: &[Value]) -> ApiError {
    let listed: Vec<String> = found
        .iter()
        .map(|d| {
            format!(
                "'{}: {} at {}'",
                d["code"].as_str().unwrap_or_default(),
                d["message"].as_str().unwrap_or_default(),
                d["location"].as_str().unwrap_or("/")
            )
        })
        .collect();
    ApiError::invalid_definition(format!(
        "Invalid State Machine Definition: {}",
        listed.join(", ")
    ))
}

/// The diagnostics of a definition already read as JSON, checked as a machine of this type.
pub(crate) fn diagnostics_of(def: &Value, machine: MachineType) -> Vec<Value> {
    let diag = |code: &str, message: &str, location: &str| json!({"severity": "ERROR", "code": code, "message": message, "location": location});
    let problems = match crate::asl::parse::parse_definition_for(def, machine) {
        Ok(_) => return vec![],
        Err(p) => p,
    };
    let mut standard_only = Vec::new();
    if machine == MachineType::Express {
        standard_only_resources(def, "", &mut standard_only);
    }
    problems
        .iter()
        .map(|p| {
            let location = if p.pointer.is_empty() {
                "/"
            } else {
                &p.pointer
            };
            if let Some((_, message)) = standard_only.iter().find(|(at, _)| at == &p.pointer) {
                return diag("SCHEMA_VALIDATION_FAILED", message, location);
            }
            diag(code_of(p), &p.message, location)
        })
        .collect()
}

fn code_of(p: &Problem) -> &'static str {
    let m = &p.message;
    if m.contains("is not defined (referenced by") || m.starts_with("StartAt names state") {
        "MISSING_TRANSITION_TARGET"
    } else if m.starts_with("no state ends the execution") {
        "MISSING_END_STATE"
    } else {
        // AWS's list of codes has none for unreachable states; its schema check reports them.
        "SCHEMA_VALIDATION_FAILED"
    }
}

/// The Task resources an Express workflow cannot call, with AWS's message, by pointer.
fn standard_only_resources(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    let Some(states) = v.get("States").and_then(Value::as_object) else {
        return;
    };
    for (name, state) in states {
        let here = crate::asl::pointer_join(&crate::asl::pointer_join(at, "States"), name);
        if let Some(resource) = state.get("Resource").and_then(Value::as_str) {
            use crate::asl::validate::{standard_only, StandardOnly};
            let what = standard_only(resource).map(|kind| match kind {
                StandardOnly::JobWait => {
                    "Express state machine does not support '.sync' service integration"
                }
                // With AWS's trailing space (ValidateStateMachineDefinition's recording
                // `ILLEGAL_WFTT`; CreateStateMachine's shows two spaces before " at").
                StandardOnly::Callback => {
                    "Express state machine does not support '.waitForTaskToken' service integration "
                }
                StandardOnly::Activity => "Express state machine does not support Activity ARN",
            });
            if let Some(m) = what {
                out.push((crate::asl::pointer_join(&here, "Resource"), m.to_string()));
            }
        }
        if let Some(branches) = state.get("Branches").and_then(Value::as_array) {
            for (i, b) in branches.iter().enumerate() {
                let p = crate::asl::pointer_join(
                    &crate::asl::pointer_join(&here, "Branches"),
                    &i.to_string(),
                );
                standard_only_resources(b, &p, out);
            }
        }
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(proc) = state.get(key) {
                standard_only_resources(proc, &crate::asl::pointer_join(&here, key), out);
            }
        }
    }
}
