//! The JSONata adapter: the only module that knows which engine evaluates `{% ... %}`.
//!
//! An [`Expr`] is parsed once, when the definition is compiled, into an AST shared by every
//! execution. Plain paths (`$states.input.order.total`, `$var.a`) are looked up directly in
//! the state's data, with no engine at all; everything else runs on the `jsonata-core`
//! evaluator. That evaluator is not `Send` (it uses `Rc`): it is built on the thread that
//! evaluates and never held across an await. Every evaluation is bounded: a timeout, a depth limit, a sequence length limit, a
//! cap on the size of what it returns, and a panic guard. AWS's extra functions
//! (`$partition`, `$range`, `$hash`, `$random(seed)`, `$uuid`, `$parse`) are registered on
//! it and `$eval` is removed, as AWS does.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use crate::value::{Map, Value};
use jsonata_core::ast::AstNode;
use jsonata_core::evaluator::{CancelToken, Evaluator, EvaluatorOptions};
use jsonata_core::value::JValue;

use crate::expr::context::Context;
use crate::expr::vars::Vars;

/// Why an expression could not be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JsonataError {
    /// JSONata's error code (`T1006`, `D3137`, `S0201`, ...), when the engine gave one.
    pub code: Option<String>,
    /// The engine's message, code included, as AWS quotes it in causes.
    pub message: String,
    /// The expression ran but returned a function, which JSON cannot hold (AWS words
    /// this as an unsupported result type, not as an evaluation error).
    pub returned_function: bool,
}

impl JsonataError {
    fn new(message: impl Into<String>) -> JsonataError {
        let mut message = message.into();
        // The engine reports an unclosed comment without JSONata's code for it.
        if message.starts_with("Unclosed comment") {
            message = format!("S0106: {message}");
        }
        // The engine names the function it could not find; JSONata's own message (which
        // AWS quotes, recorded for `$randomSeeded(...)`) does not.
        const T1006: &str = "T1006: Attempted to invoke a non-function";
        if message.starts_with(T1006) {
            message.truncate(T1006.len());
        }
        JsonataError {
            code: code_of(&message),
            message,
            returned_function: false,
        }
    }
}

/// The `X0000` code of an engine message: at its start, or after a prefix such as
/// `Invalid syntax: `.
fn code_of(msg: &str) -> Option<String> {
    let b = msg.as_bytes();
    (0..b.len().saturating_sub(5))
        .filter(|&i| i == 0 || b[i - 1] == b' ')
        .find(|&i| {
            b[i].is_ascii_uppercase()
                && b[i + 1..i + 5].iter().all(u8::is_ascii_digit)
                && b[i + 5] == b':'
        })
        .map(|i| msg[i..i + 5].to_string())
}

/// Bounds on one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock time one evaluation may take (D1012 past it).
    pub timeout_ms: u64,
    /// Deepest evaluation stack (D1011 past it): bounds recursion and its memory.
    pub max_depth: usize,
    /// Longest sequence a path, filter or range may build (D2015 past it).
    pub max_sequence: usize,
    /// Largest result, in bytes of JSON; a larger one is an error, not a value.
    pub max_result_bytes: usize,
    /// Most memory one evaluation may add while it runs (where the binary's allocator
    /// watches it, [`crate::alloc`]); past it the evaluation stops with an error.
    pub max_memory_bytes: usize,
    /// Which functions exist: AWS's set, or plain JSONata's (the suite).
    pub functions: Functions,
}

/// The function library an evaluation sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Functions {
    /// JSONata's, plus `$partition`, `$range`, `$hash`, `$random(seed)`, `$uuid`,
    /// `$parse`, without `$eval`: what AWS Step Functions offers.
    StepFunctions,
    /// JSONata's own (JSONata's test suite).
    Jsonata,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_ms: 1000,
            // About 1,000 nested calls of a recursive function; ~3 KB of stack each.
            max_depth: 3000,
            max_sequence: 1_000_000,
            max_result_bytes: crate::express::MAX_PAYLOAD_BYTES,
            max_memory_bytes: 64 << 20,
            functions: Functions::StepFunctions,
        }
    }
}

/// A parsed JSONata expression, shared read-only by every execution.
#[derive(Debug, Clone)]
pub struct Expr {
    text: Arc<str>,
    /// The engine's AST, plus what it may read, to bind only that.
    general: Arc<General>,
    /// A way to get the same answer without the engine, for the common simple forms.
    fast: Option<Fast>,
}

#[derive(Debug)]
struct General {
    ast: AstNode,
    /// Variable names the text mentions (`$name`), other than `states`.
    vars: Vec<String>,
    /// Which members of `$states` to build (input, result, errorOutput, context).
    states: [bool; 4],
    /// Which of the functions the adapter adds or replaces the text mentions.
    functions: super::jsonata_fns::Mentions,
}

/// Expressions answered by a lookup: they run at JSONPath speed.
#[derive(Debug, Clone)]
enum Fast {
    /// `$states.<member>.a.b` or `$var.a.b`.
    Path(PlainPath),
    /// `<plain path> = <literal>` or `!=`, where the path ends at a string, number or boolean.
    Compare {
        path: PlainPath,
        negate: bool,
        literal: Value,
    },
}

#[derive(Debug, Clone)]
struct PlainPath {
    root: Root,
    steps: Arc<[String]>,
    /// For each step k, `$v.<steps k..>`: where the path meets an array, the engine maps
    /// the rest of it over just that array, bound as `$v`, not over the whole input.
    rests: Arc<[AstNode]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Root {
    States(usize),
    Var(String),
}

/// The state data a plain `$states` path starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `$states.input`.
    Input,
    /// `$states.result`.
    Result,
}

const STATES_MEMBERS: [&str; 4] = ["input", "result", "errorOutput", "context"];

/// What `$states` and the workflow variables hold for one evaluation.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// `$states.input`: the state's input.
    pub input: &'a Value,
    /// `$states.result`: the task, Parallel, Map or Pass result, once there is one.
    pub result: Option<&'a Value>,
    /// `$states.errorOutput`: what a catcher caught.
    pub error_output: Option<&'a Value>,
    /// `$states.context`: the Context object.
    pub context: &'a Context,
    /// Workflow variables (`$name`), shared with JSONPath states.
    pub vars: &'a Vars,
}

impl Expr {
    /// Parses the text between `{%` and `%}`; a syntax error names its JSONata code.
    pub fn parse(text: &str) -> Result<Expr, JsonataError> {
        let text = text.trim();
        let ast = catch_unwind(|| jsonata_core::parser::parse(text))
            .map_err(|_| JsonataError::new("the JSONata parser failed on this expression"))?
            .map_err(|e| JsonataError::new(e.to_string()))?;
        let all = text.contains("$states") && !mentions_member_only(text);
        Ok(Expr {
            text: text.into(),
            general: Arc::new(General {
                ast,
                vars: mentioned_vars(text),
                states: STATES_MEMBERS.map(|m| all || text.contains(m)),
                functions: super::jsonata_fns::mentions(text),
            }),
            fast: plain_path(text)
                .map(Fast::Path)
                .or_else(|| comparison(text)),
        })
    }

    /// The expression as written (trimmed).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this usually runs without the general evaluator (a plain path, or one
    /// compared with a literal).
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// The member and names of a plain `$states.input...` or `$states.result...` path
    /// (`$states.result.Payload` is `(Result, ["Payload"])`); `None` for anything else.
    pub fn states_path(&self) -> Option<(Source, &[String])> {
        match &self.fast {
            Some(Fast::Path(PlainPath {
                root: Root::States(i @ (0 | 1)),
                steps,
                ..
            })) => Some((
                if *i == 0 {
                    Source::Input
                } else {
                    Source::Result
                },
                steps,
            )),
            _ => None,
        }
    }

    /// The value a plain path names, borrowed, where [`Expr::eval`] would return a copy of
    /// it found through objects alone (no mapping over an array); `None` otherwise, and
    /// then only `eval` knows the answer.
    pub fn found<'v>(&self, scope: &Scope<'v>) -> Option<&'v Value> {
        match &self.fast {
            Some(Fast::Path(p)) => match p.lookup(scope) {
                Walk::Found(std::borrow::Cow::Borrowed(v)) => Some(v),
                _ => None,
            },
            _ => None,
        }
    }

    /// Evaluates in an ASL state: `$states` and the variables bound; `Ok(None)` is
    /// JSONata's `undefined`.
    pub fn eval(&self, scope: &Scope, limits: &Limits) -> Result<Option<Value>, JsonataError> {
        match &self.fast {
            Some(Fast::Path(p)) => match p.lookup(scope) {
                Walk::Found(v) => return Ok(Some(checked_size(v.as_ref(), limits)?.clone())),
                Walk::Missing => return Ok(None),
                // A path through an array maps over it: that is the engine's job.
                Walk::ThroughArray { array, rest } => {
                    if rest + 1 == p.steps.len() {
                        if let Some(v) = last_step_over(array, &p.steps[rest]) {
                            return match v {
                                Some(v) => Ok(Some(checked_size(&v, limits)?.clone())),
                                None => Ok(None),
                            };
                        }
                    }
                    if let Some(ast) = p.rests.get(rest) {
                        let bound = vec![("v".to_string(), to_jvalue(array))];
                        return evaluate(ast, &JValue::Undefined, bound, limits, &[false; 8]);
                    }
                }
                Walk::EndsEmpty => {}
            },
            Some(Fast::Compare {
                path,
                negate,
                literal,
            }) => match path.lookup(scope) {
                // JSONata: a comparison with nothing is false, `=` and `!=` alike.
                Walk::Missing => return Ok(Some(Value::Bool(false))),
                Walk::Found(v) => {
                    if let Some(eq) = scalar_eq(v.as_ref(), literal) {
                        return Ok(Some(Value::Bool(eq != *negate)));
                    }
                }
                Walk::ThroughArray { .. } | Walk::EndsEmpty => {}
            },
            None => {}
        }
        self.eval_general(scope, limits)
    }

    fn eval_general(&self, scope: &Scope, limits: &Limits) -> Result<Option<Value>, JsonataError> {
        let g = &self.general;
        let mut bindings = Vec::with_capacity(g.vars.len() + 1);
        if g.states.iter().any(|b| *b) {
            bindings.push(("states".to_string(), states_value(scope, g.states)));
        }
        for name in &g.vars {
            if let Some(v) = scope.vars.get(name) {
                bindings.push((name.clone(), to_jvalue(v)));
            }
        }
        evaluate(&g.ast, &JValue::Undefined, bindings, limits, &g.functions)
    }
}

/// `array.key` as JSONata maps it, for the plain case only: every item an object whose
/// `key` (if any) is not an array. The values found, one alone as itself, none as
/// nothing. `None` when the case is not that plain (the engine then decides).
fn last_step_over(array: &Value, key: &str) -> Option<Option<Value>> {
    let Value::Array(items) = array else {
        return None;
    };
    let mut found = Vec::new();
    for item in items {
        match item.as_object()?.get(key) {
            Some(Value::Array(_)) => return None,
            Some(v) => found.push(v.clone()),
            None => {}
        }
    }
    Some(match found.len() {
        0 => None,
        1 => found.pop(),
        _ => Some(Value::Array(found.into())),
    })
}

/// Whether a scalar equals a literal as JSONata's `=` says; `None` for arrays and objects.
fn scalar_eq(v: &Value, literal: &Value) -> Option<bool> {
    match (v, literal) {
        (Value::Array(_) | Value::Object(_), _) => None,
        (Value::Number(a), Value::Number(b)) => Some(a.as_f64() == b.as_f64()),
        _ => Some(v == literal),
    }
}

impl PlainPath {
    fn lookup<'v>(&self, scope: &Scope<'v>) -> Walk<'v> {
        match &self.root {
            Root::States(3) => {
                let Some((first, rest)) = self.steps.split_first() else {
                    return Walk::Found(std::borrow::Cow::Owned(scope.context.to_value()));
                };
                match walk(scope.context.part(first), rest) {
                    // `rest` counts from the second step here.
                    Walk::ThroughArray { array, rest } => Walk::ThroughArray {
                        array,
                        rest: rest + 1,
                    },
                    w => w,
                }
            }
            Root::States(i) => {
                let base = match i {
                    0 => Some(scope.input),
                    1 => scope.result,
                    _ => scope.error_output,
                };
                walk(base, &self.steps)
            }
            Root::Var(name) => walk(scope.vars.get(name), &self.steps),
        }
    }
}

/// Evaluates a parsed expression on `data` with `bindings` (`$name` -> value), bounded by
/// `limits`. The JSONata test suite drives the adapter through this too.
pub fn evaluate_json(
    expr: &Expr,
    data: Option<&Value>,
    bindings: &Map,
    limits: &Limits,
) -> Result<Option<Value>, JsonataError> {
    let data = data.map_or(JValue::Undefined, to_jvalue);
    let bindings = bindings
        .iter()
        .map(|(k, v)| (k.to_string(), to_jvalue(v)))
        .collect();
    evaluate(
        &expr.general.ast,
        &data,
        bindings,
        limits,
        &expr.general.functions,
    )
}

/// Drops a value without recursion: an expression can build one nested far deeper than
/// the recursive drop of the engine's values survives on a thread's stack.
fn drop_flat(v: JValue) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            JValue::Array(a) => stack.extend(a.into_vec()),
            JValue::Object(m) => {
                if let Ok(m) = Rc::try_unwrap(m) {
                    stack.extend(m.into_inner().into_values());
                }
            }
            _ => {}
        }
    }
}

impl crate::alloc::Trip for CancelToken {
    fn trip(&self) {
        self.cancel();
    }
}

fn options_for(limits: &Limits) -> EvaluatorOptions {
    EvaluatorOptions {
        timeout_ms: Some(limits.timeout_ms),
        max_stack_depth: Some(limits.max_depth),
        max_sequence_length: Some(limits.max_sequence),
        ..EvaluatorOptions::default()
    }
}

fn evaluate(
    ast: &AstNode,
    data: &JValue,
    bindings: Vec<(String, JValue)>,
    limits: &Limits,
    functions: &super::jsonata_fns::Mentions,
) -> Result<Option<Value>, JsonataError> {
    // The engine takes bindings only when it is built, so each evaluation builds one
    // (a few small allocations) on this thread; it never crosses threads or awaits.
    let cancel = CancelToken::new();
    let watch = crate::alloc::watch(limits.max_memory_bytes, &cancel);
    let run = catch_unwind(AssertUnwindSafe(|| {
        let mut ctx = jsonata_core::evaluator::Context::new();
        for (k, v) in bindings {
            ctx.bind(k, v);
        }
        let options = EvaluatorOptions {
            cancel: Some(cancel.clone()),
            ..options_for(limits)
        };
        let mut engine = Evaluator::with_options(ctx, options);
        super::jsonata_fns::register(&mut engine, limits, functions);
        engine.evaluate(ast, data)
    }));
    let over_budget = watch.tripped();
    drop(watch);
    if over_budget {
        // A builtin that finished past the budget may still have returned a value.
        if let Ok(Ok(v)) = run {
            drop_flat(v);
        }
        return Err(JsonataError::new(format!(
            "the expression used more than {} MiB of memory while it ran",
            limits.max_memory_bytes >> 20
        )));
    }
    match run {
        Ok(Ok(v)) => {
            let returned_function = matches!(v, JValue::Lambda(_) | JValue::Builtin { .. });
            let out = to_json(&v, limits.max_result_bytes).map_err(|m| JsonataError {
                returned_function,
                ..JsonataError::new(m)
            });
            drop_flat(v);
            out
        }
        Ok(Err(e)) => Err(JsonataError::new(e.message())),
        Err(_) => Err(JsonataError::new(
            "the JSONata engine failed on this expression and input",
        )),
    }
}

/// `$states` with the members an expression may read.
fn states_value(scope: &Scope, which: [bool; 4]) -> JValue {
    let mut m = indexmap::IndexMap::with_capacity(4);
    if which[0] {
        m.insert("input".to_string(), to_jvalue(scope.input));
    }
    if which[1] {
        if let Some(r) = scope.result {
            m.insert("result".to_string(), to_jvalue(r));
        }
    }
    if which[2] {
        if let Some(e) = scope.error_output {
            m.insert("errorOutput".to_string(), to_jvalue(e));
        }
    }
    if which[3] {
        m.insert("context".to_string(), to_jvalue(&scope.context.to_value()));
    }
    JValue::object(m)
}

/// Whether every `$states` in the text is followed by `.member` (so only the named
/// members need building).
pub(crate) fn mentions_member_only(text: &str) -> bool {
    text.match_indices("$states").all(|(i, _)| {
        let rest = &text[i + "$states".len()..];
        rest.starts_with('.')
    })
}

/// The `$name`s a text mentions (over-inclusive: names inside strings count too, which
/// only binds a variable nothing reads).
fn mentioned_vars(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            let name = &text[start..j];
            if !name.is_empty() && name != "states" && !out.iter().any(|n| n == name) {
                out.push(name.to_string());
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// Recognises `$states.member(.name)*` and `$var(.name)*` with plain names.
fn plain_path(text: &str) -> Option<PlainPath> {
    let rest = text.strip_prefix('$')?;
    let mut parts = rest.split('.');
    let head = parts.next()?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
            && !s.as_bytes()[0].is_ascii_digit()
    };
    if !plain(head) {
        return None;
    }
    let mut steps: Vec<String> = Vec::new();
    for p in parts {
        // `and`, `or`, `in` are operators, not names, when written bare.
        if !plain(p) || matches!(p, "and" | "or" | "in") {
            return None;
        }
        steps.push(p.to_string());
    }
    let root = if head == "states" {
        let member = steps.first()?;
        let i = STATES_MEMBERS.iter().position(|m| m == member)?;
        steps.remove(0);
        Root::States(i)
    } else {
        Root::Var(head.to_string())
    };
    let rests = (0..steps.len())
        .map(|k| jsonata_core::parser::parse(&format!("$v.{}", steps[k..].join("."))))
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some(PlainPath {
        root,
        steps: steps.into(),
        rests: rests.into(),
    })
}

/// Recognises `<plain path> = <literal>` and `!=`, the literal a quoted string without
/// escapes, a number, `true` or `false`.
fn comparison(text: &str) -> Option<Fast> {
    let (lhs, rhs, negate) = match text.split_once("!=") {
        Some((l, r)) => (l, r, true),
        None => {
            let (l, r) = text.split_once('=')?;
            (l, r, false)
        }
    };
    let path = plain_path(lhs.trim())?;
    let rhs = rhs.trim();
    let literal = if let Some(inner) = rhs
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| rhs.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
    {
        if inner.contains(['\'', '"', '\\']) {
            return None;
        }
        Value::from(inner.to_string())
    } else {
        match rhs {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            n => {
                let f: f64 = n.parse().ok()?;
                if !n
                    .bytes()
                    .all(|c| c.is_ascii_digit() || c == b'.' || c == b'-')
                {
                    return None;
                }
                Value::Number(serde_json::Number::from_f64(f)?)
            }
        }
    };
    Some(Fast::Compare {
        path,
        negate,
        literal,
    })
}

enum Walk<'v> {
    Found(std::borrow::Cow<'v, Value>),
    Missing,
    /// Step `rest` would map over `array`.
    ThroughArray {
        array: &'v Value,
        rest: usize,
    },
    /// The path ends at an empty array, which JSONata reads as nothing.
    EndsEmpty,
}

fn walk<'v>(base: Option<&'v Value>, steps: &[String]) -> Walk<'v> {
    let Some(mut cur) = base else {
        return Walk::Missing;
    };
    for (i, s) in steps.iter().enumerate() {
        cur = match cur {
            Value::Object(m) => match m.get(s) {
                Some(v) => v,
                None => return Walk::Missing,
            },
            Value::Array(_) => {
                return Walk::ThroughArray {
                    array: cur,
                    rest: i,
                }
            }
            _ => return Walk::Missing,
        };
    }
    // JSONata reads an empty array at the end of a path as nothing: leave it to the engine.
    if matches!(cur, Value::Array(a) if a.is_empty()) && !steps.is_empty() {
        return Walk::EndsEmpty;
    }
    Walk::Found(std::borrow::Cow::Borrowed(cur))
}

fn checked_size<'v>(v: &'v Value, limits: &Limits) -> Result<&'v Value, JsonataError> {
    let n = crate::expr::size::json_size(v, limits.max_result_bytes);
    if n > limits.max_result_bytes {
        return Err(JsonataError::new(too_large(limits.max_result_bytes)));
    }
    Ok(v)
}

fn too_large(max: usize) -> String {
    format!("the result is larger than {max} bytes of JSON")
}

/// serde_json -> the engine's values.
pub(crate) fn to_jvalue(v: &Value) -> JValue {
    match v {
        Value::Null => JValue::Null,
        Value::Bool(b) => JValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => JValue::from(i),
            None => JValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => JValue::string(Rc::<str>::from(s.as_str())),
        Value::Array(a) => JValue::array(a.iter().map(to_jvalue).collect()),
        Value::Object(m) => JValue::object(
            m.iter()
                .map(|(k, v)| (k.to_string(), to_jvalue(v)))
                .collect::<indexmap::IndexMap<_, _>>(),
        ),
    }
}

/// The engine's values -> serde_json, whole numbers kept whole (the engine's own converter
/// writes 3 as 3.0), stopping with an error once the JSON would pass `max_bytes`.
/// `undefined` at the top is `None`; inside, it is dropped as JSON.stringify drops it.
pub(crate) fn to_json(v: &JValue, max_bytes: usize) -> Result<Option<Value>, String> {
    let mut room = max_bytes;
    match v {
        JValue::Undefined => Ok(None),
        JValue::Lambda(_) | JValue::Builtin { .. } => {
            Err("the expression returned a function, which is not JSON".to_string())
        }
        _ => convert(v, &mut room, 0).map(Some),
    }
}

/// Deepest value the converter follows; deeper results are errors (inputs parsed by
/// serde_json are at most 128 deep).
const MAX_CONVERT_DEPTH: usize = 512;

fn convert(v: &JValue, room: &mut usize, depth: usize) -> Result<Value, String> {
    let limit = *room;
    let spend = |n: usize, room: &mut usize| {
        if n > *room {
            return Err(too_large(limit));
        }
        *room -= n;
        Ok(())
    };
    if depth > MAX_CONVERT_DEPTH {
        return Err(format!(
            "the result is nested deeper than {MAX_CONVERT_DEPTH} levels"
        ));
    }
    Ok(match v {
        JValue::Null | JValue::Undefined => {
            spend(4, room)?;
            Value::Null
        }
        JValue::Bool(b) => {
            spend(5, room)?;
            Value::Bool(*b)
        }
        JValue::Number(f) => {
            spend(8, room)?;
            number(*f)?
        }
        JValue::String(s) => {
            spend(s.len() + 2, room)?;
            Value::from(s.to_string())
        }
        JValue::Array(a) => {
            spend(2, room)?;
            let mut out = Vec::with_capacity(a.len().min(1024));
            for x in a.iter() {
                spend(1, room)?;
                // JSON.stringify writes a function inside an array as null.
                out.push(match x {
                    JValue::Lambda(_) | JValue::Builtin { .. } => Value::Null,
                    _ => convert(x, room, depth + 1)?,
                });
            }
            Value::Array(out.into())
        }
        JValue::Object(m) => {
            spend(2, room)?;
            let mut out = Map::with_capacity(m.len().min(1024));
            for (k, x) in m.iter() {
                if matches!(
                    x,
                    JValue::Undefined | JValue::Lambda(_) | JValue::Builtin { .. }
                ) {
                    continue;
                }
                spend(k.len() + 4, room)?;
                out.insert(crate::value::Str::from(&**k), convert(x, room, depth + 1)?);
            }
            Value::Object(out)
        }
        JValue::Lambda(_) | JValue::Builtin { .. } => Value::Null,
        JValue::Regex { pattern, .. } => {
            spend(pattern.len() + 2, room)?;
            Value::from(pattern.to_string())
        }
    })
}

/// A JSONata number as JSON: whole numbers that fit exactly are integers.
fn number(f: f64) -> Result<Value, String> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if f.fract() == 0.0 && f.abs() < EXACT {
        // -0 is written 0, as JSON.stringify writes it.
        return Ok(Value::from(f as i64));
    }
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("the result holds a number JSON cannot write ({f})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    fn run(text: &str, input: Value) -> Result<Option<Value>, JsonataError> {
        let vars = Vars::default();
        let scope = Scope {
            input: &input,
            result: None,
            error_output: None,
            context: &Context::EMPTY,
            vars: &vars,
        };
        Expr::parse(text)?.eval(&scope, &Limits::default())
    }

    #[test]
    fn whole_numbers_stay_integers() {
        assert_eq!(run("1 + 2", json!({})).unwrap(), Some(json!(3)));
        assert_eq!(run("3 / 2", json!({})).unwrap(), Some(json!(1.5)));
        assert_eq!(
            run("$states.input.n * 2", json!({"n": 21})).unwrap(),
            Some(json!(42))
        );
    }

    #[test]
    fn plain_paths_skip_the_engine_and_agree_with_it() {
        let input = json!({"order": {"total": 7, "items": [{"p": 1}, {"p": 2}], "one": [5], "none": [],
            "single": [{"p": {"q": 1}}], "gaps": [{"p": 1}, {"x": 2}, {"p": [3, 4]}], "mixed": [{"p": 1}, 2]}});
        for (text, plain) in [
            ("$states.input.order.total", true),
            ("$states.input.order.items.p", true),
            ("$states.input.order.single.p", true),
            ("$states.input.order.single.p.q", true),
            ("$states.input.order.gaps.p", true),
            ("$states.input.order.mixed.p", true),
            ("$states.input.order.nothing.p", true),
            ("$states.input.order.one", true),
            ("$states.input.order.none", true),
            ("$states.input.order.nothing", true),
            ("$states.input.order.total + 0", false),
            ("$states.input.order.total = 7", true),
            ("$states.input.order.total != 7", true),
            ("$states.input.order.total = 7.5", true),
            ("$states.input.order.nothing = 'x'", true),
            ("$states.input.order.nothing != 'x'", true),
            ("$states.input.order.items.p = 1", true),
            ("$states.input.order.one = 5", true),
            ("$states.input.order = 'x'", true),
        ] {
            let e = Expr::parse(text).unwrap();
            assert_eq!(e.is_fast(), plain, "{text}");
            let fast = run(text, input.clone()).unwrap();
            let slow = evaluate_json(
                &Expr::parse(&format!("({text})")).unwrap(),
                None,
                &Map::from_iter([("states".to_string(), json!({"input": input}))]),
                &Limits::default(),
            )
            .unwrap();
            assert_eq!(fast, slow, "{text}");
        }
    }

    #[test]
    fn a_context_path_through_an_array_maps_over_it() {
        let vars = Vars::default();
        let ctx =
            Context::from_value(json!({"Execution": {"Input": {"items": [{"p": 1}, {"p": 2}]}}}));
        let input = json!({});
        let scope = Scope {
            input: &input,
            result: None,
            error_output: None,
            context: &ctx,
            vars: &vars,
        };
        let e = Expr::parse("$states.context.Execution.Input.items.p").unwrap();
        assert_eq!(
            e.eval(&scope, &Limits::default()).unwrap(),
            Some(json!([1, 2]))
        );
    }

    #[test]
    fn undefined_is_none() {
        assert_eq!(run("$states.input.nope", json!({})).unwrap(), None);
        assert_eq!(run("$nope", json!({})).unwrap(), None);
    }

    #[test]
    fn errors_carry_their_code() {
        let e = run("$notAFunction()", json!({})).unwrap_err();
        assert_eq!(e.code.as_deref(), Some("T1006"), "{e}");
        let e = Expr::parse("1 +").unwrap_err();
        assert!(e.code.is_some(), "{e}");
        let e = run("$eval('1')", json!({})).unwrap_err();
        assert!(e.message.contains("eval"), "{e}");
    }

    #[test]
    fn runaway_expressions_end_with_an_error() {
        for text in [
            "($f := function($n) { $f($n + 1) + 1 }; $f(0))",
            "($f := function($n) { $f($n + 1) }; $f(0))",
            "[1..1000000000]",
            "$count([1..10000000].($ * 2))",
            "$range(0, 1000000000, 1)",
            "$pad('', 100000000)",
        ] {
            let r = run(text, json!({}));
            assert!(r.is_err(), "{text}: {r:?}");
        }
        // A value built deeper than JSON output allows is an error, and is freed safely.
        let deep = "$reduce([1..100000], function($acc, $i) { {'a': $acc} }, {})";
        let e = run(deep, json!({})).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e}");
        // A constructor nested past the parser's limit is refused when it is compiled.
        let deep = format!("{}1{}", "{'a':".repeat(5000), "}".repeat(5000));
        assert!(Expr::parse(&deep).is_err());
    }
}
