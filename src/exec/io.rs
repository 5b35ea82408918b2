//! Input and output processing: InputPath, ResultPath, OutputPath.
//!
//! AWS's order: InputPath -> Parameters -> (task) -> ResultSelector -> ResultPath -> OutputPath.
//! Parameters and ResultSelector are templates ([`crate::expr::template`]).

use std::borrow::Cow;

use crate::value::{Map, Str, Value};

use crate::asl::model::PathField;
use crate::error::{names, WorkflowError};
use crate::expr::path::Path;
use crate::expr::Env;

/// InputPath, OutputPath and the `...SecondsPath` fields finding nothing: AWS words this
/// as its JSONPath library does (`Invalid path '$.a' : No results for path: $['a']`), not
/// as the "could not be found in the input" of template fields.
pub(crate) fn invalid_path(path: &Path, root: &Value) -> WorkflowError {
    WorkflowError::runtime(format!(
        "Invalid path '{}' : {}",
        path.text(),
        path.miss_cause(root)
    ))
}

/// Applies InputPath (or OutputPath) to `env.input`: `$` by default, `{}` for null.
// The default arm inlined: a value returned through memory is read back with wide loads
// of the callee's narrow stores still in flight (a store-forwarding wait, ~10 % of
// `start_task`'s samples on order), and nearly every state has no InputPath.
#[inline(always)]
pub fn select<'v>(
    field: &PathField,
    name: &str,
    env: &Env<'v>,
) -> Result<Cow<'v, Value>, WorkflowError> {
    match field {
        PathField::Default => Ok(Cow::Borrowed(env.input)),
        _ => select_path(field, name, env),
    }
}

fn select_path<'v>(
    field: &PathField,
    name: &str,
    env: &Env<'v>,
) -> Result<Cow<'v, Value>, WorkflowError> {
    match field {
        PathField::Default => Ok(Cow::Borrowed(env.input)),
        PathField::Null => Ok(Cow::Owned(Value::Object(Map::new()))),
        PathField::Path(p) => p
            .eval_checked(env)
            .map_err(|e| e.error(p.text(), name))?
            .ok_or_else(|| invalid_path(p, env.input)),
    }
}

/// Places `result` into the state's raw input as ResultPath says. The input is taken by
/// value so that only the spine ResultPath changes is written, never a copy of the whole;
/// on failure it is handed back untouched (a catcher still needs it).
pub fn place_result(
    field: &PathField,
    raw: Value,
    result: Value,
) -> Result<Value, (WorkflowError, Value)> {
    match field {
        PathField::Default => Ok(result),
        PathField::Null => Ok(raw),
        PathField::Path(p) if p.is_root_only() => Ok(result),
        PathField::Path(p) => {
            let mut out = raw;
            match p.set(&mut out, result) {
                Ok(()) => Ok(out),
                // `set` fails before it changes anything: it only creates objects under
                // missing keys, and only fails on an existing value that is not an object.
                Err(why) => Err((
                    WorkflowError::new(
                        names::RESULT_PATH_MATCH_FAILURE,
                        format!(
                            "Unable to apply ResultPath '{}' to input '{}': {why}",
                            p.text(),
                            out
                        ),
                    ),
                    out,
                )),
            }
        }
    }
}

/// The effective input: `raw` itself (moved, not copied) when InputPath is the default.
// Inlined: one instantiation serves every state kind, and a call returned `raw` through
// memory (+0.4 % instructions on choice-heavy).
#[inline(always)]
pub fn effective(
    field: &PathField,
    raw: Value,
    env_of: impl Fn(&Value) -> Result<Value, WorkflowError>,
) -> Result<Value, WorkflowError> {
    match field {
        PathField::Default => Ok(raw),
        _ => env_of(&raw),
    }
}

/// Applies OutputPath to the value ResultPath produced (the default arm inlined, as in
/// [`select`]).
#[inline(always)]
pub fn output(field: &PathField, value: Value, env: &Env) -> Result<Value, WorkflowError> {
    match field {
        PathField::Default => Ok(value),
        _ => output_path(field, value, env),
    }
}

fn output_path(field: &PathField, value: Value, env: &Env) -> Result<Value, WorkflowError> {
    match field {
        PathField::Default => Ok(value),
        PathField::Null => Ok(Value::Object(Map::new())),
        PathField::Path(p) if p.is_root_only() && *p.root() == crate::expr::path::Root::Input => {
            Ok(value)
        }
        PathField::Path(p) => {
            let env = env.with_input(&value);
            match p
                .eval_checked(&env)
                .map_err(|e| e.error(p.text(), "OutputPath"))?
            {
                Some(v) => Ok(v.into_owned()),
                None => Err(invalid_path(p, &value)),
            }
        }
    }
}

/// The `{"Error": .., "Cause": ..}` object a catcher passes on.
// Built from its entries with its JSON size known, not by inserts into an empty map:
// that was ~1,600 instructions a catch on retry-catch, half of them growing the map, and
// the catcher then measured it again.
pub fn error_output(e: &WorkflowError) -> Value {
    let mut out = Map::with_capacity(2);
    if e.error.is_none() && e.cause.is_none() {
        // A failure that named nothing (a callback's SendTaskFailure without error or
        // cause): AWS passes both as null (LocalStack's recording
        // `test_sqs_failure_in_wait_for_task_tok_no_error_field`).
        out.insert(Str::plain("Error"), Value::Null);
        out.insert(Str::plain("Cause"), Value::Null);
        return Value::Object(out);
    }
    // `{`, then each `"Key":value` with the `,` or `}` after it.
    let mut size = 1;
    if let Some(err) = &e.error {
        let v = Str::scanned(err);
        size += "\"Error\":".len() + v.json_len() + 1;
        out.push_distinct(Str::plain("Error"), Value::String(v));
    }
    // AWS always passes a Cause to a catcher, empty when the error had none.
    let cause = Str::scanned(e.cause.as_deref().unwrap_or_default());
    size += "\"Cause\":".len() + cause.json_len() + 1;
    out.push_distinct(Str::plain("Cause"), Value::String(cause));
    const KEYS: u64 = crate::value::key_bit(b"Error") | crate::value::key_bit(b"Cause");
    out.finish_distinct(Some(size), KEYS);
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_output_knows_its_size_and_escapes_its_text() {
        for e in [
            WorkflowError::new("Oops", "it \"broke\"\n"),
            WorkflowError {
                error: None,
                cause: Some("C".into()),
            },
            WorkflowError {
                error: Some("E".into()),
                cause: None,
            },
        ] {
            let v = error_output(&e);
            let text = crate::value::to_string(&v);
            let theirs =
                serde_json::json!({"Error": e.error, "Cause": e.cause.clone().unwrap_or_default()});
            let mut theirs = theirs;
            if e.error.is_none() {
                theirs.as_object_mut().unwrap().remove("Error");
            }
            assert_eq!(text, theirs.to_string());
            assert_eq!(crate::value::known_len(&v), Some(text.len()), "{text}");
        }
    }

    #[test]
    fn a_failure_that_names_nothing_passes_both_as_null() {
        let e = WorkflowError {
            error: None,
            cause: None,
        };
        assert_eq!(
            crate::value::to_string(&error_output(&e)),
            r#"{"Error":null,"Cause":null}"#
        );
    }
}
