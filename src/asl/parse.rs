//! Reads ASL JSON into the model, collecting every problem instead of stopping at the first.

use crate::value::{Map, Value};

use super::model::*;
use super::{pointer_join, Problem};
use crate::expr::choice;
use crate::expr::jsonata::Expr;
use crate::expr::path::Path;
use crate::expr::query::{expression_text, Query};
use crate::expr::template::Template;
use crate::expr::timestamp;

/// Parses a definition. The model is only returned when there is no problem at all
/// (graph checks included; see [`super::validate`]).
pub fn parse_definition<D: crate::value::convert::AsValue + ?Sized>(
    def: &D,
) -> Result<StateMachine, Vec<Problem>> {
    parse_value(&def.as_value())
}

/// [`parse_definition`] for a machine of the given type.
pub fn parse_definition_for<D: crate::value::convert::AsValue + ?Sized>(
    def: &D,
    machine: MachineType,
) -> Result<StateMachine, Vec<Problem>> {
    parse_value_for(&def.as_value(), machine)
}

/// [`parse_definition`] of a definition already in the state data type.
pub fn parse_value(def: &Value) -> Result<StateMachine, Vec<Problem>> {
    parse_value_for(def, MachineType::Express)
}

/// [`parse_value`] for a machine of the given type.
pub fn parse_value_for(def: &Value, machine: MachineType) -> Result<StateMachine, Vec<Problem>> {
    let mut problems = Vec::new();
    let sm = read_machine(def, "", QueryLanguage::JsonPath, true, &mut problems);
    if let Some(sm) = &sm {
        if sm.query_language == QueryLanguage::Jsonata {
            no_jsonpath_within(sm, &mut problems);
        }
        super::validate::check_graph(sm, machine, &mut problems);
    }
    match sm {
        Some(sm) if problems.is_empty() => Ok(sm),
        _ => {
            if problems.is_empty() {
                problems.push(Problem::new("", "the definition could not be read"));
            }
            Err(problems)
        }
    }
}

/// AWS: when the whole state machine is JSONata, no state or branch within it may be
/// JSONPath. (Only the top level counts: a JSONPath state inside a JSONata Map of a
/// JSONPath machine is valid, as AWS's ValidateStateMachineDefinition answers.)
fn no_jsonpath_within(sm: &StateMachine, problems: &mut Vec<Problem>) {
    const WHY: &str =
        "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine";
    // AWS points at the state (or branch), not at its QueryLanguage field.
    if sm.query_language == QueryLanguage::JsonPath {
        problems.push(Problem::new(sm.pointer.clone(), WHY));
    }
    for st in &sm.states {
        if st.query_language == QueryLanguage::JsonPath {
            problems.push(Problem::new(st.pointer.clone(), WHY));
        }
        match &st.kind {
            Kind::Parallel { branches } => {
                branches
                    .iter()
                    .for_each(|b| no_jsonpath_within(b, problems));
            }
            Kind::Map(spec) => no_jsonpath_within(&spec.processor, problems),
            _ => {}
        }
    }
}

/// Parses definition text; malformed JSON is reported as one problem with its position.
pub fn parse_definition_str(text: &str) -> Result<StateMachine, Vec<Problem>> {
    let def: Value = serde_json::from_str(text).map_err(|e| {
        vec![Problem::new(
            "",
            format!("the definition is not valid JSON: {e}"),
        )]
    })?;
    parse_value(&def)
}

const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];
const FLOW: &[&str] = &["Next", "End"];
const IO_IN_OUT: &[&str] = &["InputPath", "OutputPath", "Assign", "Output"];
const IO_PARAMS: &[&str] = &["Parameters", "ResultPath", "Arguments"];
const IO_RESULT: &[&str] = &["ResultSelector", "Retry", "Catch"];

fn allowed(kind: &str) -> Option<Vec<&'static str>> {
    let mut v: Vec<&str> = COMMON.to_vec();
    match kind {
        "Pass" => v.extend(
            FLOW.iter()
                .chain(IO_IN_OUT)
                .chain(IO_PARAMS)
                .chain(&["Result"]),
        ),
        "Task" => v.extend(
            FLOW.iter()
                .chain(IO_IN_OUT)
                .chain(IO_PARAMS)
                .chain(IO_RESULT)
                .chain(&[
                    "Resource",
                    "TimeoutSeconds",
                    "TimeoutSecondsPath",
                    "HeartbeatSeconds",
                    "HeartbeatSecondsPath",
                    "Credentials",
                ]),
        ),
        "Choice" => v.extend(IO_IN_OUT.iter().chain(&["Choices", "Default"])),
        "Wait" => v.extend(FLOW.iter().chain(IO_IN_OUT).chain(&[
            "Seconds",
            "Timestamp",
            "SecondsPath",
            "TimestampPath",
        ])),
        "Succeed" => v.extend(["InputPath", "OutputPath", "Output"]),
        "Fail" => v.extend(["Error", "ErrorPath", "Cause", "CausePath"]),
        "Parallel" => v.extend(
            FLOW.iter()
                .chain(IO_IN_OUT)
                .chain(IO_PARAMS)
                .chain(IO_RESULT)
                .chain(&["Branches"]),
        ),
        "Map" => v.extend(
            FLOW.iter()
                .chain(IO_IN_OUT)
                .chain(IO_PARAMS)
                .chain(IO_RESULT)
                .chain(&[
                    "Iterator",
                    "ItemProcessor",
                    "ItemsPath",
                    "Items",
                    "ItemSelector",
                    "ItemReader",
                    "ItemBatcher",
                    "ResultWriter",
                    "Label",
                    "MaxConcurrency",
                    "MaxConcurrencyPath",
                    "ToleratedFailureCount",
                    "ToleratedFailureCountPath",
                    "ToleratedFailurePercentage",
                    "ToleratedFailurePercentagePath",
                ]),
        ),
        _ => return None,
    }
    Some(v)
}

/// Fields only JSONPath states have; a JSONata state uses Arguments, Output and `{% %}`.
const JSONPATH_ONLY: &[&str] = &[
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "ItemsPath",
    "Iterator",
    "SecondsPath",
    "TimestampPath",
    "ErrorPath",
    "CausePath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "MaxConcurrencyPath",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentagePath",
];

/// Fields only JSONata states have.
const JSONATA_ONLY: &[&str] = &["Arguments", "Output", "Items"];

/// The problem with `key` in a state (or catcher) written in `ql`, if it belongs to the other language.
fn wrong_language(key: &str, ql: QueryLanguage) -> Option<String> {
    match ql {
        QueryLanguage::Jsonata if JSONPATH_ONLY.contains(&key) => Some(format!(
            "field {key:?} is a JSONPath field and not allowed in a JSONata state (use Arguments, Output, Items or {{% %}} expressions)"
        )),
        QueryLanguage::JsonPath if JSONATA_ONLY.contains(&key) => Some(format!(
            "field {key:?} is a JSONata field and not allowed in a JSONPath state (set \"QueryLanguage\": \"JSONata\")"
        )),
        _ => None,
    }
}

/// Typed access to one JSON object that records a problem for every wrong field.
struct Obj<'a, 'p> {
    map: &'a Map,
    pointer: String,
    problems: &'p mut Vec<Problem>,
}

impl<'a> Obj<'a, '_> {
    fn at(&self, key: &str) -> String {
        pointer_join(&self.pointer, key)
    }

    fn problem(&mut self, key: &str, msg: impl Into<String>) {
        let p = if key.is_empty() {
            self.pointer.clone()
        } else {
            self.at(key)
        };
        self.problems.push(Problem::new(p, msg));
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn str(&mut self, key: &str) -> Option<&'a str> {
        match self.map.get(key)? {
            Value::String(s) => Some(s),
            _ => {
                self.problem(key, format!("{key} must be a string"));
                None
            }
        }
    }

    fn required_str(&mut self, key: &str, what: &str) -> Option<&'a str> {
        if !self.map.contains_key(key) {
            self.problem("", format!("{key} is required ({what})"));
            return None;
        }
        self.str(key)
    }

    fn number(&mut self, key: &str, min: f64) -> Option<f64> {
        match self.map.get(key)? {
            Value::Number(n) => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.is_nan() || f < min {
                    self.problem(key, format!("{key} must be a number >= {min}"));
                    None
                } else {
                    Some(f)
                }
            }
            _ => {
                self.problem(key, format!("{key} must be a number"));
                None
            }
        }
    }

    fn integer(&mut self, key: &str, min: i64) -> Option<i64> {
        match self.map.get(key)? {
            Value::Number(n) if n.as_i64().is_some_and(|i| i >= min) => n.as_i64(),
            Value::Number(n) if n.as_u64().is_some() => {
                n.as_u64().map(|u| u.min(i64::MAX as u64) as i64)
            }
            _ => {
                self.problem(key, format!("{key} must be an integer >= {min}"));
                None
            }
        }
    }

    fn path(&mut self, key: &str) -> Option<Path> {
        let text = self.str(key)?;
        match Path::parse(text) {
            Ok(p) => Some(p),
            Err(e) => {
                self.problem(key, e.to_string());
                None
            }
        }
    }

    fn path_field(&mut self, key: &str, reference_only: bool) -> PathField {
        match self.map.get(key) {
            None => PathField::Default,
            Some(Value::Null) => PathField::Null,
            Some(_) => match self.path(key) {
                Some(p) if reference_only && !p.is_reference() => {
                    self.problem(
                        key,
                        format!(
                            "{key} must be a reference path (names and indexes only), not {:?}",
                            p.text()
                        ),
                    );
                    PathField::Default
                }
                Some(p) => PathField::Path(p),
                None => PathField::Default,
            },
        }
    }

    fn template(&mut self, key: &str, must_be_object: bool) -> Option<Template> {
        let v = self.map.get(key)?;
        if must_be_object && !v.is_object() {
            self.problem(key, format!("{key} must be a JSON object"));
            return None;
        }
        let at = self.at(key);
        Some(Template::compile(v, &at, self.problems))
    }

    /// A JSONata field value (`{% %}` strings evaluated, the rest literal).
    fn query(&mut self, key: &str) -> Option<Query> {
        let v = self.map.get(key)?;
        let at = self.at(key);
        Some(Query::compile(v, &at, self.problems))
    }

    /// The expression of a `"{% ... %}"` string field, if the field is one.
    fn expr(&mut self, key: &str) -> Option<Result<Expr, ()>> {
        let text = expression_text(self.map.get(key)?.as_str()?)?;
        Some(Expr::parse(text).map_err(|e| {
            self.problem(key, format!("invalid JSONata expression: {e}"));
        }))
    }

    /// A number given either as `key` or as `keyPath`, never both.
    fn amount(&mut self, key: &str, min: f64, integer: bool) -> Option<Amount> {
        if let Some(e) = self.expr(key) {
            return e.ok().map(Amount::Query);
        }
        let path_key = format!("{key}Path");
        let fixed = self.map.contains_key(key);
        let by_path = self.map.contains_key(&path_key);
        if fixed && by_path {
            self.problem("", format!("{key} and {path_key} cannot both be given"));
            return None;
        }
        if fixed {
            if integer {
                return self
                    .integer(key, min as i64)
                    .map(|i| Amount::Fixed(i as f64));
            }
            return self.number(key, min).map(Amount::Fixed);
        }
        if by_path {
            return self.path(&path_key).map(Amount::Path);
        }
        None
    }

    /// `Assign` in the state's language: an object either way.
    fn assign(&mut self, ql: QueryLanguage) -> Option<Assign> {
        match ql {
            QueryLanguage::JsonPath => self.template("Assign", true).map(Assign::Path),
            QueryLanguage::Jsonata => {
                if !self.map.get("Assign")?.is_object() {
                    self.problem("Assign", "Assign must be a JSON object");
                    return None;
                }
                self.query("Assign").map(Assign::Jsonata)
            }
        }
    }

    fn string_list(&mut self, key: &str) -> Vec<String> {
        match self.map.get(key) {
            Some(Value::Array(items)) if !items.is_empty() => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v.as_str() {
                        Some(s) => out.push(s.to_string()),
                        None => self.problems.push(Problem::new(
                            pointer_join(&self.at(key), &i.to_string()),
                            "error names must be strings",
                        )),
                    }
                }
                out
            }
            None => {
                self.problem("", format!("{key} is required"));
                vec![]
            }
            Some(_) => {
                self.problem(
                    key,
                    format!("{key} must be a non-empty array of error names"),
                );
                vec![]
            }
        }
    }
}

fn obj<'a, 'p>(
    v: &'a Value,
    pointer: &str,
    what: &str,
    problems: &'p mut Vec<Problem>,
) -> Option<Obj<'a, 'p>> {
    match v {
        Value::Object(map) => Some(Obj {
            map,
            pointer: pointer.to_string(),
            problems,
        }),
        _ => {
            let at = if pointer.is_empty() { "/" } else { pointer };
            problems.push(Problem::new(at, format!("{what} must be a JSON object")));
            None
        }
    }
}

fn query_language(o: &mut Obj, inherited: QueryLanguage) -> QueryLanguage {
    match o.get("QueryLanguage") {
        None => inherited,
        Some(Value::String(s)) if s == "JSONPath" => QueryLanguage::JsonPath,
        Some(Value::String(s)) if s == "JSONata" => QueryLanguage::Jsonata,
        Some(_) => {
            o.problem(
                "QueryLanguage",
                "QueryLanguage must be \"JSONPath\" or \"JSONata\"",
            );
            inherited
        }
    }
}

fn read_machine(
    v: &Value,
    pointer: &str,
    inherited: QueryLanguage,
    top: bool,
    problems: &mut Vec<Problem>,
) -> Option<StateMachine> {
    let mut o = obj(v, pointer, "a state machine", problems)?;
    let mut known = vec!["StartAt", "States", "Comment", "QueryLanguage"];
    if top {
        known.extend(["TimeoutSeconds", "Version"]);
    } else {
        known.push("ProcessorConfig");
    }
    for k in o.map.keys() {
        if !known.contains(&k.as_str()) {
            o.problem(
                k,
                format!(
                    "field {k:?} is not allowed here (allowed: {})",
                    known.join(", ")
                ),
            );
        }
    }
    let ql = query_language(&mut o, inherited);
    // One problem naming every missing field, in AWS's words and order
    // (ValidateStateMachineDefinition of `{}`: "These fields are required: [States, StartAt]").
    let missing: Vec<&str> = ["States", "StartAt"]
        .into_iter()
        .filter(|k| o.get(k).is_none())
        .collect();
    if !missing.is_empty() {
        o.problem(
            "",
            format!("These fields are required: [{}]", missing.join(", ")),
        );
    }
    let start_at = match o.get("StartAt") {
        Some(_) => o.required_str("StartAt", "the name of the first state"),
        None => None,
    };
    let timeout_seconds = if top {
        o.integer("TimeoutSeconds", 1).map(|i| i as u64)
    } else {
        None
    };
    if !top {
        if let Some(cfg) = o.get("ProcessorConfig") {
            read_processor_config(cfg, &o.at("ProcessorConfig"), o.problems);
        }
    }
    let states_at = o.at("States");
    let mut unreadable = Vec::new();
    let states = match o.get("States") {
        None => None,
        Some(Value::Object(map)) if map.is_empty() => {
            o.problem("States", "States must hold at least one state");
            None
        }
        Some(Value::Object(map)) => {
            let mut read = Vec::with_capacity(map.len());
            for (name, sv) in map {
                match read_state(name, sv, &pointer_join(&states_at, name), ql, o.problems) {
                    Some(s) => read.push(s),
                    None => unreadable.push(name.to_string()),
                }
            }
            Some(read)
        }
        Some(_) => {
            o.problem("States", "States must be an object of named states");
            None
        }
    };
    Some(StateMachine {
        start_at: start_at?.to_string(),
        states: states?,
        timeout_seconds,
        query_language: ql,
        pointer: pointer.to_string(),
        unreadable,
    })
}

fn read_processor_config(v: &Value, pointer: &str, problems: &mut Vec<Problem>) {
    let Some(mut o) = obj(v, pointer, "ProcessorConfig", problems) else {
        return;
    };
    for k in o.map.keys() {
        if !["Mode", "ExecutionType"].contains(&k.as_str()) {
            o.problem(k, format!("field {k:?} is not allowed in ProcessorConfig"));
        }
    }
    if let Some(mode) = o.str("Mode") {
        if mode != "INLINE" && mode != "DISTRIBUTED" {
            o.problem("Mode", "Mode must be INLINE or DISTRIBUTED");
        }
    }
    if let Some(t) = o.str("ExecutionType") {
        if t != "EXPRESS" && t != "STANDARD" {
            o.problem("ExecutionType", "ExecutionType must be EXPRESS or STANDARD");
        }
    }
}

fn read_state(
    name: &str,
    v: &Value,
    pointer: &str,
    inherited: QueryLanguage,
    problems: &mut Vec<Problem>,
) -> Option<State> {
    if name.is_empty() || name.chars().count() > 80 {
        problems.push(Problem::new(
            pointer,
            "a state name must be 1 to 80 characters long",
        ));
    }
    let mut o = obj(v, pointer, "a state", problems)?;
    let ty = o.required_str(
        "Type",
        "one of Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map",
    )?;
    let Some(allowed) = allowed(ty) else {
        o.problem(
            "Type",
            // AWS's words (TestState's recording `test_state_name_invalid_state_definition`).
            "The field 'Type' should have one of these values: [Task, Wait, Pass, Succeed, Fail, Choice, Parallel, Map]",
        );
        return None;
    };
    let ql = query_language(&mut o, inherited);
    for k in o.map.keys() {
        if !allowed.contains(&k.as_str()) {
            o.problem(k, format!("field {k:?} is not allowed in a {ty} state"));
        } else if let Some(why) = wrong_language(k, ql) {
            o.problem(k, why);
        }
    }

    // Next / End: terminal types have neither; Choice has neither (its rules carry Next).
    let flows = FLOW.iter().all(|f| allowed.contains(f));
    let next = o.str("Next").map(str::to_string);
    if flows {
        let end = match o.get("End") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                o.problem("End", "End must be true or false");
                false
            }
        };
        match (&next, end) {
            (Some(_), true) => o.problem("", "a state cannot have both Next and End"),
            (None, false) => o.problem("", format!("a {ty} state needs Next or \"End\": true")),
            _ => {}
        }
    }

    let input_path = o.path_field("InputPath", false);
    let output_path = o.path_field("OutputPath", false);
    let result_path = o.path_field("ResultPath", true);
    let parameters = o.template("Parameters", false);
    let result_selector = o.template("ResultSelector", true);
    let assign = o.assign(ql);
    let (arguments, output) = if ql == QueryLanguage::Jsonata {
        (o.query("Arguments"), o.query("Output"))
    } else {
        (None, None)
    };
    if let Some(a) = o.get("Arguments") {
        if !a.is_object() && a.as_str().is_none_or(|t| expression_text(t).is_none()) {
            o.problem(
                "Arguments",
                "Arguments must be a JSON object or a {% %} expression",
            );
        }
    }
    let retry = read_retriers(&mut o);
    let catch = read_catchers(&mut o, ql);

    let kind = match ty {
        "Pass" => Kind::Pass {
            result: o.get("Result").cloned(),
        },
        "Task" => {
            let resource = o.required_str("Resource", "the ARN of what the task calls");
            if let Some(c) = o.get("Credentials") {
                match c.as_object() {
                    None => o.problem("Credentials", "Credentials must be a JSON object"),
                    // AWS's schema: the role to assume, and nothing else (LocalStack's
                    // recordings of test_invalid_credentials_field).
                    Some(m) => {
                        let role = ["RoleArn", "RoleArn.$"];
                        let why = if !m.keys().any(|k| role.contains(&k.as_str())) {
                            Some("The field 'RoleArn' is required but was missing".to_string())
                        } else {
                            m.keys()
                                .find(|k| !role.contains(&k.as_str()))
                                .map(|k| format!("field {k:?} is not allowed in Credentials"))
                        };
                        if let Some(why) = why {
                            o.problem("Credentials", why);
                        }
                    }
                }
            }
            Kind::Task {
                resource: resource.unwrap_or_default().to_string(),
                timeout: o.amount("TimeoutSeconds", 1.0, true),
                heartbeat: o.amount("HeartbeatSeconds", 1.0, true),
            }
        }
        "Choice" => read_choice(&mut o, ql),
        "Wait" => read_wait(&mut o, ql)?,
        "Succeed" => Kind::Succeed,
        "Fail" => Kind::Fail {
            error: fail_text(&mut o, "Error", ql),
            cause: fail_text(&mut o, "Cause", ql),
        },
        "Parallel" => {
            let at = o.at("Branches");
            let branches = match o.get("Branches") {
                Some(Value::Array(bs)) if !bs.is_empty() => bs
                    .iter()
                    .enumerate()
                    .filter_map(|(i, b)| {
                        read_machine(b, &pointer_join(&at, &i.to_string()), ql, false, o.problems)
                    })
                    .collect(),
                None => {
                    o.problem("", "Branches is required");
                    vec![]
                }
                // AWS's words for `[]` (TestState's recording
                // `test_parallel_state_empty_branches`).
                Some(Value::Array(_)) => {
                    o.problem("Branches", "Value cannot be empty");
                    vec![]
                }
                Some(_) => {
                    o.problem(
                        "Branches",
                        "Branches must be a non-empty array of state machines",
                    );
                    vec![]
                }
            };
            Kind::Parallel { branches }
        }
        "Map" => Kind::Map(Box::new(read_map(&mut o, ql, &parameters)?)),
        _ => unreachable!("allowed() only knows the eight types"),
    };
    if result_selector.is_some() && matches!(kind, Kind::Pass { .. }) {
        o.problem(
            "ResultSelector",
            "ResultSelector is not allowed in a Pass state",
        );
    }
    Some(State {
        name: name.to_string(),
        pointer: pointer.to_string(),
        kind,
        query_language: ql,
        arguments,
        output,
        next,
        input_path,
        parameters,
        result_selector,
        result_path,
        output_path,
        assign,
        retry,
        catch,
    })
}

fn fail_text(o: &mut Obj, key: &str, ql: QueryLanguage) -> Option<FailText> {
    if ql == QueryLanguage::Jsonata && o.get(key).is_some_and(|v| !v.is_string()) {
        o.problem(key, format!("{key} must be a string"));
        return None;
    }
    if ql == QueryLanguage::Jsonata && o.expr(key).is_some() {
        return o.query(key).map(FailText::Query);
    }
    let path_key = format!("{key}Path");
    let fixed = o.str(key).map(|s| FailText::Fixed(s.to_string()));
    let dynamic = o.str(&path_key).map(|text| {
        let at = o.at(&path_key);
        // ErrorPath/CausePath accept a path or an intrinsic; compile them as a one-field template.
        let t = Template::compile(&crate::json!({ "v.$": text }), &at, o.problems);
        let Template::Object { mut fields, .. } = t else {
            return FailText::Fixed(String::new());
        };
        FailText::Dynamic(fields.pop().expect("one field").value)
    });
    // Template pointers above end in "/v.$"; point at the field itself.
    for p in o.problems.iter_mut() {
        if let Some(stripped) = p.pointer.strip_suffix("/v.$") {
            p.pointer = stripped.to_string();
        }
    }
    if fixed.is_some() && dynamic.is_some() {
        o.problem("", format!("{key} and {path_key} cannot both be given"));
    }
    fixed.or(dynamic)
}

fn read_retriers(o: &mut Obj) -> Vec<Retrier> {
    let at = o.at("Retry");
    let Some(v) = o.get("Retry") else {
        return vec![];
    };
    let Some(items) = v.as_array() else {
        o.problem("Retry", "Retry must be an array of retriers");
        return vec![];
    };
    let mut out = Vec::new();
    for (i, r) in items.iter().enumerate() {
        let Some(mut r) = obj(
            r,
            &pointer_join(&at, &i.to_string()),
            "a retrier",
            o.problems,
        ) else {
            continue;
        };
        for k in r.map.keys() {
            if ![
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            ]
            .contains(&k.as_str())
            {
                r.problem(k, format!("field {k:?} is not allowed in a retrier"));
            }
        }
        let error_equals = r.string_list("ErrorEquals");
        let interval = r
            .integer("IntervalSeconds", 1)
            .map(|i| i as f64)
            .unwrap_or(1.0);
        let max_attempts = r
            .integer("MaxAttempts", 0)
            .map(|i| i.min(99_999_999) as u32)
            .unwrap_or(3);
        let backoff = r.number("BackoffRate", 1.0).unwrap_or(2.0);
        let max_delay = r.integer("MaxDelaySeconds", 1).map(|i| i as f64);
        let jitter_full = match r.str("JitterStrategy") {
            None | Some("NONE") => false,
            Some("FULL") => true,
            Some(_) => {
                r.problem("JitterStrategy", "JitterStrategy must be FULL or NONE");
                false
            }
        };
        check_all_last(&mut r, &error_equals);
        out.push(Retrier {
            error_equals,
            interval_seconds: interval,
            max_attempts,
            backoff_rate: backoff,
            max_delay_seconds: max_delay,
            jitter_full,
        });
    }
    check_all_is_last_entry(o, "Retry", out.iter().map(|r| &r.error_equals));
    out
}

fn read_catchers(o: &mut Obj, ql: QueryLanguage) -> Vec<Catcher> {
    let at = o.at("Catch");
    let Some(v) = o.get("Catch") else {
        return vec![];
    };
    let Some(items) = v.as_array() else {
        o.problem("Catch", "Catch must be an array of catchers");
        return vec![];
    };
    let mut out = Vec::new();
    for (i, c) in items.iter().enumerate() {
        let Some(mut c) = obj(
            c,
            &pointer_join(&at, &i.to_string()),
            "a catcher",
            o.problems,
        ) else {
            continue;
        };
        for k in c.map.keys() {
            if ![
                "ErrorEquals",
                "Next",
                "ResultPath",
                "Assign",
                "Output",
                "Comment",
            ]
            .contains(&k.as_str())
            {
                c.problem(k, format!("field {k:?} is not allowed in a catcher"));
            } else if let Some(why) = wrong_language(k, ql) {
                c.problem(k, why);
            }
        }
        let error_equals = c.string_list("ErrorEquals");
        let next = c.required_str("Next", "the state to go to when the error is caught");
        let result_path = c.path_field("ResultPath", true);
        let assign = c.assign(ql);
        let output = if ql == QueryLanguage::Jsonata {
            c.query("Output")
        } else {
            None
        };
        check_all_last(&mut c, &error_equals);
        if let Some(next) = next {
            out.push(Catcher {
                error_equals,
                next: next.to_string(),
                result_path,
                output,
                assign,
            });
        }
    }
    check_all_is_last_entry(o, "Catch", out.iter().map(|c| &c.error_equals));
    out
}

/// AWS: States.ALL must appear alone in its ErrorEquals.
fn check_all_last(o: &mut Obj, errors: &[String]) {
    if errors.len() > 1 && errors.iter().any(|e| e == crate::error::names::ALL) {
        o.problem("ErrorEquals", "States.ALL must appear alone in ErrorEquals");
    }
}

/// AWS: a retrier or catcher on States.ALL must be the last one.
fn check_all_is_last_entry<'a>(
    o: &mut Obj,
    key: &str,
    lists: impl Iterator<Item = &'a Vec<String>>,
) {
    let lists: Vec<_> = lists.collect();
    for (i, l) in lists.iter().enumerate() {
        if i + 1 < lists.len() && l.iter().any(|e| e == crate::error::names::ALL) {
            let at = pointer_join(&o.at(key), &i.to_string());
            o.problems.push(Problem::new(
                at,
                format!("the {key} entry on States.ALL must be the last one"),
            ));
        }
    }
}

fn read_choice(o: &mut Obj, ql: QueryLanguage) -> Kind {
    let at = o.at("Choices");
    let default = o.str("Default").map(str::to_string);
    let mut rules = Vec::new();
    match o.get("Choices") {
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, r) in items.iter().enumerate() {
                let rp = pointer_join(&at, &i.to_string());
                let next = match r.get("Next") {
                    Some(Value::String(s)) => Some(s.to_string()),
                    Some(_) => {
                        o.problems.push(Problem::new(
                            pointer_join(&rp, "Next"),
                            "Next must be a string",
                        ));
                        None
                    }
                    None => {
                        o.problems
                            .push(Problem::new(&rp, "a Choice rule needs Next"));
                        None
                    }
                };
                let (condition, assign, output) = match ql {
                    QueryLanguage::JsonPath => {
                        if r.get("Condition").is_some() || r.get("Output").is_some() {
                            o.problems.push(Problem::new(
                                &rp,
                                "Condition and Output are JSONata fields, not allowed in a JSONPath Choice rule",
                            ));
                        }
                        let assign = r.get("Assign").map(|a| {
                            Assign::Path(Template::compile(
                                a,
                                &pointer_join(&rp, "Assign"),
                                o.problems,
                            ))
                        });
                        (
                            choice::compile(r, &rp, true, o.problems).map(Test::Path),
                            assign,
                            None,
                        )
                    }
                    QueryLanguage::Jsonata => jsonata_rule(r, &rp, o.problems),
                };
                if let (Some(condition), Some(next)) = (condition, next) {
                    rules.push(ChoiceRule {
                        condition,
                        next,
                        assign,
                        output,
                    });
                }
            }
        }
        None => o.problem("", "Choices is required"),
        Some(_) => o.problem("Choices", "Choices must be a non-empty array of rules"),
    }
    choice::share_lookups(rules.iter_mut().filter_map(|r| match &mut r.condition {
        Test::Path(c) => Some(c),
        Test::Jsonata(_) => None,
    }));
    Kind::Choice { rules, default }
}

/// A JSONata Choice rule: `Condition` (a boolean or an expression), `Next`, `Assign`, `Output`.
fn jsonata_rule(
    r: &Value,
    rp: &str,
    problems: &mut Vec<Problem>,
) -> (Option<Test>, Option<Assign>, Option<Query>) {
    let Some(map) = r.as_object() else {
        problems.push(Problem::new(rp, "a Choice rule must be a JSON object"));
        return (None, None, None);
    };
    for k in map.keys() {
        if !["Condition", "Next", "Assign", "Output", "Comment"].contains(&k.as_str()) {
            problems.push(Problem::new(
                pointer_join(rp, k),
                format!("field {k:?} is not allowed in a JSONata Choice rule (allowed: Condition, Next, Assign, Output, Comment)"),
            ));
        }
    }
    let at = pointer_join(rp, "Condition");
    let condition = match map.get("Condition") {
        None => {
            problems.push(Problem::new(rp, "a JSONata Choice rule needs a Condition"));
            None
        }
        Some(v @ Value::Bool(_)) => Some(Test::Jsonata(Query::Literal(v.clone()))),
        Some(Value::String(s)) if expression_text(s).is_some() => Some(Test::Jsonata(
            Query::compile(&Value::String(s.clone()), &at, problems),
        )),
        Some(_) => {
            problems.push(Problem::new(
                at,
                "Condition must be true, false or a {% %} expression",
            ));
            None
        }
    };
    let assign = match map.get("Assign") {
        Some(a) if a.is_object() => Some(Assign::Jsonata(Query::compile(
            a,
            &pointer_join(rp, "Assign"),
            problems,
        ))),
        Some(_) => {
            problems.push(Problem::new(
                pointer_join(rp, "Assign"),
                "Assign must be a JSON object",
            ));
            None
        }
        None => None,
    };
    let output = map
        .get("Output")
        .map(|v| Query::compile(v, &pointer_join(rp, "Output"), problems));
    (condition, assign, output)
}

fn read_wait(o: &mut Obj, ql: QueryLanguage) -> Option<Kind> {
    let given: Vec<&str> = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"]
        .into_iter()
        .filter(|k| o.map.contains_key(k))
        .collect();
    if given.len() != 1 {
        o.problem(
            "",
            format!(
                "a Wait state needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath (found {})",
                if given.is_empty() { "none".to_string() } else { given.join(", ") }
            ),
        );
        return None;
    }
    if ql == QueryLanguage::Jsonata {
        if let Some(e) = o.expr(given[0]) {
            let e = e.ok()?;
            return Some(Kind::Wait {
                wait: if given[0] == "Seconds" {
                    WaitFor::SecondsQuery(e)
                } else {
                    WaitFor::TimestampQuery(e)
                },
            });
        }
    }
    let wait = match given[0] {
        "Seconds" => WaitFor::Seconds(o.integer("Seconds", 0)? as f64),
        "Timestamp" => {
            let s = o.str("Timestamp")?;
            match timestamp::parse(s) {
                Some(t) => WaitFor::Timestamp(t),
                None => {
                    o.problem(
                        "Timestamp",
                        format!("{s:?} is not an RFC 3339 timestamp such as 2026-01-01T00:00:00Z"),
                    );
                    return None;
                }
            }
        }
        "SecondsPath" => WaitFor::SecondsPath(o.path("SecondsPath")?),
        _ => WaitFor::TimestampPath(o.path("TimestampPath")?),
    };
    Some(Kind::Wait { wait })
}

/// A Map's ItemBatcher: at least one limit, MaxInputBytesPerBatch at most 256 KiB.
fn read_item_batcher(
    v: &Value,
    pointer: &str,
    ql: QueryLanguage,
    problems: &mut Vec<Problem>,
) -> Option<ItemBatcher> {
    let mut o = obj(v, pointer, "ItemBatcher", problems)?;
    let mut known = vec!["MaxItemsPerBatch", "MaxInputBytesPerBatch", "BatchInput"];
    if ql == QueryLanguage::JsonPath {
        known.extend(["MaxItemsPerBatchPath", "MaxInputBytesPerBatchPath"]);
    }
    for k in o.map.keys() {
        if !known.contains(&k.as_str()) {
            o.problem(k, format!("field {k:?} is not allowed in ItemBatcher"));
        }
    }
    let max_items = o.amount("MaxItemsPerBatch", 1.0, true);
    let max_bytes = o.amount("MaxInputBytesPerBatch", 1.0, true);
    if let Some(Amount::Fixed(b)) = max_bytes {
        if b > MAX_BATCH_BYTES as f64 {
            o.problem(
                "MaxInputBytesPerBatch",
                format!("MaxInputBytesPerBatch must be at most {MAX_BATCH_BYTES} (256 KiB)"),
            );
        }
    }
    if max_items.is_none() && max_bytes.is_none() {
        o.problem(
            "",
            "ItemBatcher needs MaxItemsPerBatch or MaxInputBytesPerBatch (or their Path)",
        );
    }
    let (batch_input, batch_input_query) = if ql == QueryLanguage::Jsonata {
        (None, o.query("BatchInput"))
    } else {
        (o.template("BatchInput", true), None)
    };
    Some(ItemBatcher {
        max_items,
        max_bytes,
        batch_input,
        batch_input_query,
    })
}

/// AWS's largest MaxInputBytesPerBatch.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Why a Map's Label is not one AWS takes (1 to 40 characters, none of white space, a
/// control character or what names may not hold, `/` excepted), if it is not.
fn label_problem(label: &str) -> Option<String> {
    if label.is_empty() {
        return Some("Label cannot be empty".into());
    }
    if label.chars().count() > 40 {
        return Some("Label cannot exceed 40 characters".into());
    }
    // The characters execution names may not hold, but for `/`: AWS's recordings refuse
    // every one of the others in a Label and none has `/`.
    let bad = |c: char| {
        c.is_whitespace()
            || c.is_control()
            || (c != '/' && crate::express::FORBIDDEN_IN_NAMES.contains(c))
    };
    label
        .chars()
        .find(|&c| bad(c))
        .map(|c| format!("Label contains invalid character: {c:?}"))
}

fn read_map(o: &mut Obj, ql: QueryLanguage, parameters: &Option<Template>) -> Option<MapSpec> {
    if let Some(label) = o.get("Label") {
        match label.as_str() {
            None => o.problem("Label", "Label must be a string"),
            Some(l) => {
                if let Some(why) = label_problem(l) {
                    o.problem("Label", why);
                }
            }
        }
    }
    let (key, legacy) = match (o.get("ItemProcessor"), o.get("Iterator")) {
        (Some(_), Some(_)) => {
            o.problem("", "ItemProcessor and Iterator cannot both be given");
            return None;
        }
        (Some(_), None) => ("ItemProcessor", false),
        (None, Some(_)) => ("Iterator", true),
        (None, None) => {
            o.problem(
                "",
                "a Map state needs ItemProcessor (or the older Iterator)",
            );
            return None;
        }
    };
    let at = o.at(key);
    let processor = read_machine(o.get(key)?, &at, ql, false, o.problems);
    if o.get("ItemSelector").is_some() && parameters.is_some() {
        o.problem(
            "",
            "ItemSelector and Parameters cannot both be given (Parameters is the older name)",
        );
    }
    let _ = legacy;
    let (item_selector, item_query, items) = if ql == QueryLanguage::Jsonata {
        if o.get("ItemSelector").is_some_and(|v| !v.is_object()) {
            o.problem("ItemSelector", "ItemSelector must be a JSON object");
        }
        (None, o.query("ItemSelector"), o.query("Items"))
    } else {
        let selector = o
            .template("ItemSelector", true)
            .or_else(|| parameters.clone());
        (selector, None, None)
    };
    let items_path = o.path_field("ItemsPath", false);
    if o.get("ItemReader").is_some() {
        o.problem(
            "ItemReader",
            "reading Map items from an outside source (ItemReader) is not supported yet",
        );
    }
    if o.get("ResultWriter").is_some() {
        // Run without it, the Map would answer its results instead of the writer's summary.
        o.problem(
            "ResultWriter",
            "writing Map results to an outside store (ResultWriter) is not supported yet",
        );
    }
    let item_batcher = match o.get("ItemBatcher") {
        None => None,
        Some(v) => read_item_batcher(v, &o.at("ItemBatcher"), ql, o.problems),
    };
    let max_concurrency = o.amount("MaxConcurrency", 0.0, true);
    let tolerated_failure_count = o.amount("ToleratedFailureCount", 0.0, true);
    let tolerated_failure_percentage = o.amount("ToleratedFailurePercentage", 0.0, false);
    if let Some(Amount::Fixed(p)) = tolerated_failure_percentage {
        if p > 100.0 {
            o.problem(
                "ToleratedFailurePercentage",
                "ToleratedFailurePercentage must be between 0 and 100",
            );
        }
    }
    Some(MapSpec {
        processor: processor?,
        items_path,
        item_selector,
        items,
        item_query,
        max_concurrency,
        tolerated_failure_count,
        tolerated_failure_percentage,
        item_batcher,
    })
}
