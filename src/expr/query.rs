//! JSONata field values: `Arguments`, `Output`, `Assign`, `ItemSelector` and the other
//! fields of a JSONata state. A string that is exactly `{% expression %}` is evaluated;
//! every other value, however it looks (`"$.a"`, `" {% x %} "`), is copied as written.
//! Objects and arrays may mix both at any depth.

use crate::value::{Map, Value};

use super::jsonata::{Expr, Limits, Scope, Source};
use super::problem::{pointer_join, Problem};
use super::size::{json_size, string_len};
use crate::error::{names, WorkflowError};
use crate::expr::context::Context;
use crate::expr::vars::Vars;

/// A compiled JSONata field value.
#[derive(Debug, Clone)]
pub enum Query {
    /// Copied as written.
    Literal(Value),
    /// A `{% %}` expression.
    Expr(Expr),
    /// A plain `$states.input` or `$states.result` path that no other such path in the
    /// same field overlaps: where the field is the last reader of the state's data (an
    /// Output), its value is moved out of that data instead of copied.
    Take(Expr),
    /// An object with expressions somewhere inside.
    Object(Vec<(String, Query)>),
    /// An array with expressions somewhere inside.
    Array(Vec<Query>),
}

/// The expression text of a `{% ... %}` string, if it is one.
pub fn expression_text(s: &str) -> Option<&str> {
    s.strip_prefix("{%")?.strip_suffix("%}")
}

impl Query {
    /// Compiles a field value, pushing a problem for every expression that does not parse.
    pub fn compile(value: &Value, pointer: &str, problems: &mut Vec<Problem>) -> Query {
        let mut q = Query::compile_at(value, pointer, problems);
        let mut paths = Vec::new();
        q.states_paths(&mut paths);
        // A path may be moved out only if no other one reads inside it or around it.
        let movable: Vec<bool> = paths
            .iter()
            .enumerate()
            .map(|(i, a)| {
                !paths
                    .iter()
                    .enumerate()
                    .any(|(j, b)| i != j && overlap(*a, *b))
            })
            .collect();
        q.mark_takes(&mut movable.into_iter());
        q
    }

    fn compile_at(value: &Value, pointer: &str, problems: &mut Vec<Problem>) -> Query {
        if !has_expression(value) {
            return Query::Literal(value.clone());
        }
        match value {
            Value::String(s) => match expression_text(s).map(Expr::parse) {
                Some(Ok(e)) => Query::Expr(e),
                Some(Err(e)) => {
                    problems.push(Problem::new(
                        pointer,
                        format!("invalid JSONata expression {s:?}: {e}"),
                    ));
                    Query::Literal(Value::Null)
                }
                None => Query::Literal(value.clone()),
            },
            Value::Object(m) => Query::Object(
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            Query::compile_at(v, &pointer_join(pointer, k), problems),
                        )
                    })
                    .collect(),
            ),
            Value::Array(items) => Query::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        Query::compile_at(v, &pointer_join(pointer, &i.to_string()), problems)
                    })
                    .collect(),
            ),
            other => Query::Literal(other.clone()),
        }
    }

    /// The plain `$states` paths of the leaves, in the order [`Query::mark_takes`] visits them.
    fn states_paths<'q>(&'q self, out: &mut Vec<(Source, &'q [String])>) {
        match self {
            Query::Literal(_) => {}
            Query::Expr(e) | Query::Take(e) => out.extend(e.states_path()),
            Query::Object(fields) => fields.iter().for_each(|(_, q)| q.states_paths(out)),
            Query::Array(items) => items.iter().for_each(|q| q.states_paths(out)),
        }
    }

    fn mark_takes(&mut self, movable: &mut impl Iterator<Item = bool>) {
        match self {
            Query::Literal(_) | Query::Take(_) => {}
            Query::Expr(e) => {
                if e.states_path().is_some() && movable.next() == Some(true) {
                    *self = Query::Take(e.clone());
                }
            }
            Query::Object(fields) => fields.iter_mut().for_each(|(_, q)| q.mark_takes(movable)),
            Query::Array(items) => items.iter_mut().for_each(|q| q.mark_takes(movable)),
        }
    }

    /// The value, with `field` (`Output`, `Assign`, ...) naming it in errors as AWS does
    /// (`Output/result`). An expression that yields nothing is an error.
    pub fn eval(&self, scope: &Scope, field: &str) -> Result<Value, WorkflowError> {
        let limits = Self::limits(scope);
        let mut room = limits.max_result_bytes;
        self.eval_within(scope, &Field::Root(field), &limits, &mut room, None)
            .map(|(v, _)| v)
    }

    /// The same value and errors as [`Query::eval`] with `input` and `result` as
    /// `$states.input` and `$states.result`, for a field that is their last reader (a
    /// state's Output): what plain paths select is moved out of them, not copied. On an
    /// error both are left as they were. With the value comes its JSON size.
    pub fn eval_consuming(
        &self,
        context: &Context,
        vars: &Vars,
        input: &mut Value,
        mut result: Option<&mut Value>,
        field: &str,
    ) -> Result<(Value, usize), WorkflowError> {
        let mut taken = Vec::new();
        // Everything is evaluated, borrowing, before anything is moved: a general
        // expression may read what a plain path moves.
        let (mut out, size) = {
            let scope = Scope {
                input,
                result: result.as_deref(),
                error_output: None,
                context,
                vars,
            };
            let limits = Self::limits(&scope);
            let mut room = limits.max_result_bytes;
            self.eval_within(
                &scope,
                &Field::Root(field),
                &limits,
                &mut room,
                Some(&mut taken),
            )?
        };
        if taken.contains(&true) {
            self.fill(&mut out, &mut taken.into_iter(), input, &mut result);
        }
        Ok((out, size))
    }

    fn limits(scope: &Scope) -> Limits {
        Limits {
            max_result_bytes: scope.context.max_value_bytes(),
            ..Limits::default()
        }
    }

    /// Moves the values `taken` says were found into their places in `out`, where
    /// [`Query::eval_within`] left a null.
    fn fill(
        &self,
        out: &mut Value,
        taken: &mut impl Iterator<Item = bool>,
        input: &mut Value,
        result: &mut Option<&mut Value>,
    ) {
        match (self, out) {
            (Query::Take(e), out) => {
                // A leaf that was not found through objects already holds its value.
                if taken.next() != Some(true) {
                    return;
                }
                let (source, steps) = e
                    .states_path()
                    .expect("a Take is always a plain $states path");
                let from = match source {
                    Source::Input => Some(&mut *input),
                    Source::Result => result.as_deref_mut(),
                };
                let at = steps
                    .iter()
                    .fold(from, |v, k| v.and_then(|v| v.get_mut(k.as_str())));
                // Nothing changed the data since the path was found, but other takes
                // of paths outside this one.
                *out = std::mem::take(at.expect("a taken path was found through objects"));
            }
            (Query::Object(fields), Value::Object(m)) => {
                // `eval_within` inserted the keys in this order; a map that keeps insertion
                // order (serde_json's preserve_order, which the build has) pairs them
                // without hashing.
                if fields.iter().map(|(k, _)| k).eq(m.keys()) {
                    for ((_, q), v) in fields.iter().zip(m.values_mut()) {
                        q.fill(v, taken, input, result);
                    }
                } else {
                    for (k, q) in fields {
                        if let Some(v) = m.get_mut(k) {
                            q.fill(v, taken, input, result);
                        }
                    }
                }
            }
            (Query::Array(items), Value::Array(a)) => {
                for (q, v) in items.iter().zip(a.iter_mut()) {
                    q.fill(v, taken, input, result);
                }
            }
            _ => {}
        }
    }

    /// The value and its exact JSON size, as [`crate::expr::size::json_size`] counts it.
    fn eval_within(
        &self,
        scope: &Scope,
        field: &Field,
        limits: &Limits,
        room: &mut usize,
        mut taken: Option<&mut Vec<bool>>,
    ) -> Result<(Value, usize), WorkflowError> {
        match self {
            Query::Literal(v) => Ok((v.clone(), json_size(v, usize::MAX))),
            Query::Take(e) if taken.is_some() => {
                let found = found_within(e, scope, room);
                if let Some(taken) = taken {
                    taken.push(found.is_some());
                }
                match found {
                    // Taken later, by `fill`.
                    Some((_, n)) => Ok((Value::Null, n)),
                    None => eval_leaf(e, scope, field, limits, room),
                }
            }
            Query::Expr(e) | Query::Take(e) => match found_within(e, scope, room) {
                Some((v, n)) => Ok((v.clone(), n)),
                None => eval_leaf(e, scope, field, limits, room),
            },
            Query::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                let mut size = 2 + fields.len().saturating_sub(1);
                for (k, q) in fields {
                    let (v, n) = q.eval_within(
                        scope,
                        &Field::Key(field, k),
                        limits,
                        room,
                        taken.as_deref_mut(),
                    )?;
                    size += string_len(k) + 1 + n;
                    out.insert(k.as_str().into(), v);
                }
                Ok((Value::Object(out), size))
            }
            Query::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut size = 2 + items.len().saturating_sub(1);
                for (i, q) in items.iter().enumerate() {
                    let (v, n) = q.eval_within(
                        scope,
                        &Field::Index(field, i),
                        limits,
                        room,
                        taken.as_deref_mut(),
                    )?;
                    size += n;
                    out.push(v);
                }
                Ok((Value::Array(out.into()), size))
            }
        }
    }

    /// A single expression, if the whole value is one.
    pub fn as_expr(&self) -> Option<&Expr> {
        match self {
            Query::Expr(e) | Query::Take(e) => Some(e),
            _ => None,
        }
    }
}

/// What a plain path finds through objects alone, with its JSON size, if that fits in
/// `room` (then taken from it): the value `eval` would copy, measured once. `None` leaves
/// the answer (maybe an error) to [`eval_leaf`].
fn found_within<'v>(e: &Expr, scope: &Scope<'v>, room: &mut usize) -> Option<(&'v Value, usize)> {
    let v = e.found(scope)?;
    let n = json_size(v, *room);
    if n > *room {
        return None;
    }
    *room -= n;
    Some((v, n))
}

/// One expression of a field, with its JSON size, taken from `room`.
fn eval_leaf(
    e: &Expr,
    scope: &Scope,
    field: &Field,
    limits: &Limits,
    room: &mut usize,
) -> Result<(Value, usize), WorkflowError> {
    let v = eval_expr(
        e,
        scope,
        field,
        &Limits {
            max_result_bytes: *room,
            ..*limits
        },
    )?;
    let mut n = json_size(&v, *room);
    if n > *room {
        // The engine's own count let it through; the size must still be exact.
        n = json_size(&v, usize::MAX);
    }
    *room = room.saturating_sub(n);
    Ok((v, n))
}

/// Where an expression sits in its field (`Output/items/0`), written only for an error.
enum Field<'a> {
    Root(&'a str),
    Key(&'a Field<'a>, &'a str),
    Index(&'a Field<'a>, usize),
}

impl std::fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Root(name) => f.write_str(name),
            Field::Key(parent, k) => write!(f, "{parent}/{k}"),
            Field::Index(parent, i) => write!(f, "{parent}/{i}"),
        }
    }
}

/// Evaluates one expression for `field`; nothing (undefined) is an error.
pub fn eval_expr(
    e: &Expr,
    scope: &Scope,
    field: impl std::fmt::Display,
    limits: &Limits,
) -> Result<Value, WorkflowError> {
    match e.eval(scope, limits) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(WorkflowError::new(
            names::QUERY_EVALUATION_ERROR,
            format!(
                "The JSONata expression '{}' specified for the field '{field}' returned nothing (undefined).",
                e.text()
            ),
        )),
        Err(err) if err.returned_function => Err(WorkflowError::new(
            names::QUERY_EVALUATION_ERROR,
            format!(
                "The JSONata expression '{}' specified for the field '{field}' returned an unsupported result type.",
                e.text()
            ),
        )),
        Err(err) => Err(WorkflowError::new(
            names::QUERY_EVALUATION_ERROR,
            format!(
                "The JSONata expression '{}' specified for the field '{field}' threw an error during evaluation. {}",
                e.text(),
                err.message
            ),
        )),
    }
}

/// Whether moving one path's value out would change what the other names.
fn overlap(a: (Source, &[String]), b: (Source, &[String])) -> bool {
    a.0 == b.0 && (a.1.starts_with(b.1) || b.1.starts_with(a.1))
}

fn has_expression(v: &Value) -> bool {
    match v {
        Value::String(s) => expression_text(s).is_some(),
        Value::Object(m) => m.values().any(has_expression),
        Value::Array(items) => items.iter().any(has_expression),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    fn run(q: Value, input: Value) -> Result<Value, WorkflowError> {
        let mut problems = vec![];
        let q = Query::compile(&q, "/Output", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let vars = Vars::default();
        q.eval(
            &Scope {
                input: &input,
                result: None,
                error_output: None,
                context: &Context::EMPTY,
                vars: &vars,
            },
            "Output",
        )
    }

    /// The same field with every expression in parentheses, which no fast path knows.
    fn general(q: &Value) -> Value {
        match q {
            Value::String(s) => match expression_text(s) {
                Some(e) => Value::from(format!("{{% ({}) %}}", e.trim())),
                None => q.clone(),
            },
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), general(v))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(general).collect()),
            other => other.clone(),
        }
    }

    /// One Output over the same data three ways, copying, moving and through the general
    /// evaluator alone: the same value or the same error.
    fn both_ways(q: &Value, input: &Value, result: Option<&Value>, cap: usize) {
        let mut problems = vec![];
        let slow = Query::compile(&general(q), "/Output", &mut problems);
        let q = Query::compile(q, "/Output", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let mut vars = Vars::default();
        vars.set("v".into(), json!({"a": 1, "b": [1, 2]}));
        let ctx = Context::EMPTY.with_max_value_bytes(cap);
        let copied = q.eval(
            &Scope {
                input,
                result,
                error_output: None,
                context: &ctx,
                vars: &vars,
            },
            "Output",
        );
        let (mut i, mut r) = (input.clone(), result.cloned());
        let moved = q
            .eval_consuming(&ctx, &vars, &mut i, r.as_mut(), "Output")
            .map(|(v, n)| {
                assert_eq!(n, json_size(&v, usize::MAX), "the size of {v}");
                v
            });
        let show = |x: &Result<Value, WorkflowError>| match x {
            Ok(v) => format!("ok {v}"),
            Err(e) => format!("err {} {:?}", e.name(), e.cause),
        };
        assert_eq!(show(&copied), show(&moved), "{q:?} on {input} / {result:?}");
        let engine = slow.eval(
            &Scope {
                input,
                result,
                error_output: None,
                context: &ctx,
                vars: &vars,
            },
            "Output",
        );
        // Errors name the expression as written, which differs by its parentheses; the
        // engine counts sizes its own way, so only where nothing is near the cap.
        if cap < 1 << 20 {
            return;
        }
        assert_eq!(
            copied.as_ref().map_err(|e| e.name().to_string()),
            engine.as_ref().map_err(|e| e.name().to_string()),
            "{q:?} on {input} / {result:?}"
        );
        if moved.is_err() {
            assert_eq!(
                (&i, r.as_ref()),
                (input, result),
                "an error leaves the data alone"
            );
        }
    }

    #[test]
    fn consuming_output_gives_what_copying_gives() {
        let input = json!({"id": "A-1", "n": 3, "f": 18.5, "o": {"x": {"y": [1, 2]}, "e": []},
            "items": [{"sku": "S1", "q": 1}, {"sku": "S2", "q": 2}], "one": [{"sku": "S3"}], "none": []});
        let result = json!({"Payload": {"ok": true, "list": [1]}, "n": 4});
        let outputs = [
            json!("{% $states.input %}"),
            json!("{% $states.result %}"),
            json!("{% $states.result.Payload %}"),
            json!({"all": "{% $states.input %}", "res": "{% $states.result %}"}),
            // Overlapping paths: the outer one is still whole.
            json!({"o": "{% $states.input.o %}", "x": "{% $states.input.o.x %}"}),
            json!({"a": "{% $states.input.id %}", "b": "{% $states.input.id %}"}),
            // A general expression reading what a plain path takes.
            json!({"o": "{% $states.input.o %}", "c": "{% $count($states.input.o.x.y) %}"}),
            json!({"c": "{% $states.input.o.x.y[0] %}", "o": "{% $states.input.o %}"}),
            json!({"id": "{% $states.input.id %}", "n": "{% $states.input.n %}", "f": "{% $states.input.f %}",
                "skus": "{% $states.input.items.sku %}", "one": "{% $states.input.one.sku %}",
                "r": "{% $states.result.Payload.ok %}", "lit": [1, {"k": "{% $states.input.o.x %}"}], "s": "text"}),
            json!(["{% $states.input.id %}", "{% $states.result.n %}", {"v": "{% $v.a %}"}]),
            // Through arrays, empty at the end, missing: the engine's answer, or an error.
            json!({"e": "{% $states.input.o.e %}"}),
            json!({"none": "{% $states.input.none %}"}),
            json!({"a": "{% $states.input.id %}", "m": "{% $states.input.missing %}"}),
            json!({"a": "{% $states.input.o %}", "m": "{% $states.input.id.deeper %}"}),
            json!({"a": "{% $states.input.o %}", "bad": "{% $states.input.n.$foo() %}"}),
            json!({"r": "{% $states.result.Payload %}", "i": "{% $states.input.items %}"}),
        ];
        for q in &outputs {
            both_ways(q, &input, Some(&result), 1 << 20);
            both_ways(q, &input, None, 1 << 20);
            // Too large: the first value that does not fit names the limit.
            for cap in [10, 40, 100] {
                both_ways(q, &input, Some(&result), cap);
            }
        }
    }

    #[test]
    fn only_disjoint_plain_paths_are_taken() {
        let mut problems = vec![];
        let q = Query::compile(
            &json!({"a": "{% $states.input.o %}", "b": "{% $states.input.o.x %}",
                "c": "{% $states.input.p %}", "d": "{% $states.result.o %}", "e": "{% $states.input.p2 %}",
                "f": "{% $states.input.q + 1 %}"}),
            "/Output",
            &mut problems,
        );
        let Query::Object(fields) = q else {
            panic!("an object")
        };
        let taken: Vec<&str> = fields
            .iter()
            .filter(|(_, q)| matches!(q, Query::Take(_)))
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(taken, ["c", "d", "e"]);
    }

    #[test]
    fn only_whole_expression_strings_are_evaluated() {
        let out = run(
            json!({"a": "{% $states.input.x + 1 %}", "b": " {% x %} ", "c": "$.x", "d": [1, "{% 'y' %}"]}),
            json!({"x": 1}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"a": 2, "b": " {% x %} ", "c": "$.x", "d": [1, "y"]})
        );
    }

    #[test]
    fn nothing_is_an_error_naming_the_field() {
        let e = run(json!({"result": "{% $nope %}"}), json!({})).unwrap_err();
        assert_eq!(e.name(), names::QUERY_EVALUATION_ERROR);
        assert!(e
            .cause
            .unwrap_or_default()
            .contains("'Output/result' returned nothing"));
    }

    #[test]
    fn bad_expressions_are_problems_with_pointers() {
        let mut problems = vec![];
        Query::compile(&json!({"a": ["{% 1 + %}"]}), "/S/Output", &mut problems);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].pointer, "/S/Output/a/0");
    }
}
