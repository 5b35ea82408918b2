//! JSONata field values: `Arguments`, `Output`, `Assign`, `ItemSelector` and the other
//! fields of a JSONata state. A string that is exactly `{% expression %}` is evaluated;
//! every other value, however it looks (`"$.a"`, `" {% x %} "`), is copied as written.
//! Objects and arrays may mix both at any depth.

use serde_json::{Map, Value};

use super::jsonata::{Expr, Limits, Scope};
use crate::asl::{pointer_join, Problem};
use crate::error::{names, WorkflowError};

/// A compiled JSONata field value.
#[derive(Debug, Clone)]
pub enum Query {
    /// Copied as written.
    Literal(Value),
    /// A `{% %}` expression.
    Expr(Expr),
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
                            k.clone(),
                            Query::compile(v, &pointer_join(pointer, k), problems),
                        )
                    })
                    .collect(),
            ),
            Value::Array(items) => Query::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        Query::compile(v, &pointer_join(pointer, &i.to_string()), problems)
                    })
                    .collect(),
            ),
            other => Query::Literal(other.clone()),
        }
    }

    /// The value, with `field` (`Output`, `Assign`, ...) naming it in errors as AWS does
    /// (`Output/result`). An expression that yields nothing is an error.
    pub fn eval(&self, scope: &Scope, field: &str) -> Result<Value, WorkflowError> {
        let limits = Limits {
            max_result_bytes: scope.context.max_value_bytes(),
            ..Limits::default()
        };
        let mut room = limits.max_result_bytes;
        self.eval_within(scope, &Field::Root(field), &limits, &mut room)
    }

    fn eval_within(
        &self,
        scope: &Scope,
        field: &Field,
        limits: &Limits,
        room: &mut usize,
    ) -> Result<Value, WorkflowError> {
        match self {
            Query::Literal(v) => Ok(v.clone()),
            Query::Expr(e) => {
                let v = eval_expr(
                    e,
                    scope,
                    field,
                    &Limits {
                        max_result_bytes: *room,
                        ..*limits
                    },
                )?;
                *room = room.saturating_sub(crate::exec::json_size(&v, *room));
                Ok(v)
            }
            Query::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (k, q) in fields {
                    let v = q.eval_within(scope, &Field::Key(field, k), limits, room)?;
                    out.insert(k.clone(), v);
                }
                Ok(Value::Object(out))
            }
            Query::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, q)| q.eval_within(scope, &Field::Index(field, i), limits, room))
                .collect::<Result<_, _>>()
                .map(Value::Array),
        }
    }

    /// A single expression, if the whole value is one.
    pub fn as_expr(&self) -> Option<&Expr> {
        match self {
            Query::Expr(e) => Some(e),
            _ => None,
        }
    }
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
    use crate::exec::context::Context;
    use crate::exec::vars::Vars;
    use serde_json::json;

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
