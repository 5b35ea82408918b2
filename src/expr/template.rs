//! Payload templates: `Parameters`, `ResultSelector`, `ItemSelector`, `Assign`.
//!
//! A key ending in `.$` takes its value from a path or an intrinsic function; every other
//! value is copied as written. Parts with no `.$` key are kept as one constant.

use crate::value::{Map, Value};

use super::intrinsic::{is_intrinsic, Intrinsic};
use super::path::Path;
use super::problem::{pointer_join, Problem};
use super::Env;
use crate::error::{names, WorkflowError};

/// A compiled payload template.
#[derive(Debug, Clone)]
pub enum Template {
    /// Copied as written.
    Literal(Value),
    /// A path's value.
    Path(Path),
    /// An intrinsic function's value.
    Intrinsic(Box<Intrinsic>),
    /// An object whose fields are templates (keys already stripped of `.$`).
    Object {
        /// Its fields, in order.
        fields: Vec<Field>,
        /// The [`crate::value::key_bit`]s of their keys, which the object built remembers.
        keys: u64,
    },
    /// An array whose items are templates.
    Array(Vec<Template>),
}

/// One field of an object template.
#[derive(Debug, Clone)]
pub struct Field {
    /// The output key (without `.$`), shared so building the payload copies no text.
    pub key: crate::value::Str,
    /// The key as written, for error messages.
    pub written: String,
    /// Its value.
    pub value: Template,
    /// Where an earlier field with the same output key (`"a"` and `"a.$"`) put its entry,
    /// found when compiled: this field's value replaces that one in place. `None` for
    /// every other field, whose key is then known new.
    pub replaces: Option<usize>,
}

impl Template {
    /// Compiles a template, pushing a problem for every bad path or intrinsic in it.
    pub fn compile(value: &Value, pointer: &str, problems: &mut Vec<Problem>) -> Template {
        if !has_dynamic(value) {
            return Template::Literal(value.clone());
        }
        match value {
            Value::Object(map) => {
                let mut fields: Vec<Field> = Vec::with_capacity(map.len());
                // Each output key's entry: its position among the fields that add one.
                let mut slots = std::collections::HashMap::with_capacity(map.len());
                for (k, v) in map.iter() {
                    let p = pointer_join(pointer, k);
                    let (key, value) = match k.strip_suffix(".$") {
                        Some(key) => (
                            crate::value::Str::scanned(key),
                            compile_dynamic(v, &p, problems),
                        ),
                        None => (k.clone(), Template::compile(v, &p, problems)),
                    };
                    let replaces = slots.get(&key).copied();
                    if replaces.is_none() {
                        slots.insert(key.clone(), slots.len());
                    }
                    fields.push(Field {
                        key,
                        written: k.to_string(),
                        value,
                        replaces,
                    });
                }
                let keys = fields
                    .iter()
                    .fold(0, |bits, f| bits | crate::value::key_bit(f.key.as_bytes()));
                Template::Object { fields, keys }
            }
            Value::Array(items) => Template::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        Template::compile(v, &pointer_join(pointer, &i.to_string()), problems)
                    })
                    .collect(),
            ),
            other => Template::Literal(other.clone()),
        }
    }

    /// Builds the payload. A path that is not there is a `States.Runtime` error, as in AWS.
    /// The values read from paths and intrinsics may add up to at most the Context's
    /// `max_value_bytes` (the payload limit): a template that copies its input many times
    /// fails with `States.DataLimitExceeded` before it has built more than that.
    pub fn eval(&self, env: &Env) -> Result<Value, WorkflowError> {
        let mut room = env.context.max_value_bytes();
        self.eval_within(env, &mut room)
    }

    fn eval_within(&self, env: &Env, room: &mut usize) -> Result<Value, WorkflowError> {
        match self {
            // Literals are bounded by the definition's own size.
            Template::Literal(v) => Ok(v.clone()),
            Template::Path(p) => Ok(charge(lookup(p, env, p.text())?, room, p.text())?.0),
            Template::Intrinsic(f) => Ok(charge(f.eval(env)?, room, "an intrinsic function")?.0),
            Template::Array(items) => items
                .iter()
                .map(|t| t.eval_within(env, room))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Template::Object { fields, keys } => {
                // Measured as it is built, from the sizes charged anyway: the size checks
                // after the state (and after a task that merges into it) then walk nothing.
                // The keys are known distinct but where `replaces` says otherwise, so the
                // entries go straight into the map, with no lookup per key.
                let mut entries = Map::with_capacity(fields.len());
                let mut size = Some(2 + fields.len().saturating_sub(1));
                for f in fields {
                    // A plain path on the input, the usual field: its value is copied
                    // straight into the new entry.
                    if let (Template::Path(p), None) = (&f.value, f.replaces) {
                        if let Some(found) = p.on_input(env) {
                            let v = found.ok_or_else(|| not_found(p, env, &f.written))?;
                            let len = crate::value::known_len(v)
                                .unwrap_or_else(|| crate::expr::size::json_size(v, *room));
                            if len > *room {
                                return Err(too_large(&f.written));
                            }
                            *room -= len;
                            size = size.map(|n| n + f.key.json_len() + 1 + len);
                            entries.push_distinct_cloned(&f.key, v);
                            continue;
                        }
                    }
                    let (v, len) = match &f.value {
                        Template::Path(p) => charge(lookup(p, env, &f.written)?, room, &f.written)?,
                        Template::Intrinsic(i) => charge(i.eval(env)?, room, &f.written)?,
                        // A constant remembers its size once measured: no walk, no call.
                        Template::Literal(v) => (
                            v.clone(),
                            crate::value::known_len(v)
                                .unwrap_or_else(|| crate::expr::size::json_size(v, usize::MAX)),
                        ),
                        t => {
                            // A nested part, mostly of measured pieces.
                            let v = t.eval_within(env, room)?;
                            let n = crate::expr::size::json_size(&v, usize::MAX);
                            (v, n)
                        }
                    };
                    // Every field before it that adds an entry has added it, so the slot is
                    // there.
                    if let Some(earlier) = f.replaces.and_then(|at| entries.value_at_mut(at)) {
                        // The later value in the first position, as an insert does; the
                        // size is then measured when next needed.
                        *earlier = v;
                        size = None;
                        continue;
                    }
                    size = size.map(|n| n + f.key.json_len() + 1 + len);
                    entries.push_distinct(f.key.clone(), v);
                }
                entries.finish_distinct(size, *keys);
                Ok(Value::Object(entries))
            }
        }
    }
}

/// Takes `v`'s JSON size out of `room`, or fails once the template has built too much;
/// gives the size back with the value.
///
/// `charge` and `lookup` are inlined: a value returned from a call came back through
/// memory and was copied on at once, and that copy waited on the callee's narrower writes
/// (perf: ~30 % of `eval_within`'s samples on one such load in the order workload).
#[inline(always)]
fn charge(v: Value, room: &mut usize, field: &str) -> Result<(Value, usize), WorkflowError> {
    // A scalar's length, or a subtree's remembered size, without the walk's call.
    let n = crate::value::known_len(&v).unwrap_or_else(|| crate::expr::size::json_size(&v, *room));
    if n > *room {
        return Err(too_large(field));
    }
    *room -= n;
    Ok((v, n))
}

#[cold]
fn too_large(field: &str) -> WorkflowError {
    WorkflowError::new(
        names::DATA_LIMIT_EXCEEDED,
        format!("The payload built from a template is too large: with the value for '{field}' it exceeds the maximum number of bytes service limit."),
    )
}

#[inline(always)]
fn lookup(p: &Path, env: &Env, field: &str) -> Result<Value, WorkflowError> {
    match p.eval_checked(env) {
        Ok(Some(v)) => Ok(v.into_owned()),
        Ok(None) => Err(not_found(p, env, field)),
        Err(e) => Err(e.error(p.text(), field)),
    }
}

#[cold]
fn not_found(p: &Path, env: &Env, field: &str) -> WorkflowError {
    WorkflowError::runtime(format!(
        "The JSONPath '{}' specified for the field '{}' could not be found in the input '{}'",
        p.text(),
        field,
        env.input
    ))
}

fn compile_dynamic(v: &Value, pointer: &str, problems: &mut Vec<Problem>) -> Template {
    let Some(text) = v.as_str() else {
        problems.push(Problem::new(
            pointer,
            "a field whose name ends in '.$' must be a string holding a path or an intrinsic function",
        ));
        return Template::Literal(Value::Null);
    };
    if is_intrinsic(text) {
        match Intrinsic::parse(text) {
            Ok(f) => Template::Intrinsic(Box::new(f)),
            Err(e) => {
                problems.push(Problem::new(
                    pointer,
                    format!("invalid intrinsic function {text:?}: {e}"),
                ));
                Template::Literal(Value::Null)
            }
        }
    } else {
        match Path::parse(text) {
            Ok(p) => Template::Path(p),
            Err(e) => {
                problems.push(Problem::new(pointer, e.to_string()));
                Template::Literal(Value::Null)
            }
        }
    }
}

fn has_dynamic(v: &Value) -> bool {
    match v {
        Value::Object(map) => map.iter().any(|(k, v)| k.ends_with(".$") || has_dynamic(v)),
        Value::Array(items) => items.iter().any(has_dynamic),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::vars::Vars;
    use crate::json;
    use crate::value::Remembers;

    fn run(t: Value, input: Value) -> Result<Value, WorkflowError> {
        let mut problems = vec![];
        let t = Template::compile(&t, "", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let vars = Vars::default();
        let ctx = json!({"State": {"Name": "S"}});
        t.eval(&Env {
            input: &input,
            context: &crate::expr::context::Context::from_value(ctx.clone()),
            vars: &vars,
        })
    }

    #[test]
    fn dynamic_keys_lose_their_suffix_and_static_parts_are_copied() {
        let out = run(
            json!({"a.$": "$.x", "b": {"c.$": "$$.State.Name", "d": [1, {"e.$": "$.y"}]}}),
            json!({"x": 1, "y": 2}),
        )
        .unwrap();
        assert_eq!(out, json!({"a": 1, "b": {"c": "S", "d": [1, {"e": 2}]}}));
    }

    #[test]
    fn an_object_built_from_a_template_knows_its_written_size() {
        let out = run(
            json!({
                "a.$": "$.x",
                "q.$": "$.s",
                "f.$": "States.Format('{} \"{}\"', $.x, $.s)",
                "lit": {"n": 0.1, "t": "tab\there"},
                "b": {"c.$": "$$.State.Name", "d": [1, {"e.$": "$.y"}]},
                "all.$": "$"
            }),
            json!({"x": 1.5, "y": [2, "é"], "s": "quote \" here"}),
        )
        .unwrap();
        let Value::Object(m) = &out else {
            panic!("an object template builds an object")
        };
        assert_eq!(
            m.cached_json_size(),
            Some(crate::value::to_vec(&out).len()),
            "{out}"
        );
    }

    /// `"a"` and `"a.$"` both write key `a`: the later value lands in the first one's
    /// place, as an insert into a map does, and the size is measured right when needed.
    #[test]
    fn a_repeated_output_key_keeps_the_later_value_in_the_first_place() {
        let out = run(
            json!({"a": "fixed", "z.$": "$.x", "a.$": "$.s"}),
            json!({"x": 1, "s": "from the path"}),
        )
        .unwrap();
        assert_eq!(
            crate::value::to_string(&out),
            r#"{"a":"from the path","z":1}"#
        );
        assert_eq!(
            crate::expr::size::json_size(&out, usize::MAX),
            crate::value::to_vec(&out).len()
        );
        // Two repeated keys, each replacing its own earlier entry.
        let out = run(
            json!({"a": 1, "b.$": "$.x", "b": 2, "a.$": "$.s", "c": 3}),
            json!({"x": 1, "s": "s"}),
        )
        .unwrap();
        assert_eq!(crate::value::to_string(&out), r#"{"a":"s","b":2,"c":3}"#);
    }

    #[test]
    fn missing_path_is_a_runtime_error_naming_the_field() {
        let err = run(json!({"v.$": "$.nope"}), json!({})).unwrap_err();
        assert_eq!(err.error.as_deref(), Some("States.Runtime"));
        assert!(err.cause.unwrap().contains("'v.$'"));
    }

    #[test]
    fn a_template_that_copies_its_input_many_times_stops_at_the_value_cap() {
        let fields: Map = (0..1000).map(|i| (format!("f{i}.$"), json!("$"))).collect();
        let mut problems = vec![];
        let t = Template::compile(&Value::Object(fields), "", &mut problems);
        let input = json!({"blob": "x".repeat(10_000)});
        let vars = Vars::default();
        let ctx = crate::expr::context::Context::EMPTY.with_max_value_bytes(100_000);
        let env = Env {
            input: &input,
            context: &ctx,
            vars: &vars,
        };
        let err = t.eval(&env).unwrap_err();
        assert_eq!(err.error.as_deref(), Some("States.DataLimitExceeded"));
        assert!(
            err.cause.unwrap().contains("'f9.$'"),
            "the 10th copy crosses 100,000 bytes"
        );
        // Nine copies fit.
        let nine: Map = (0..9).map(|i| (format!("f{i}.$"), json!("$"))).collect();
        let t = Template::compile(&Value::Object(nine), "", &mut problems);
        assert!(t.eval(&env).is_ok());
    }

    #[test]
    fn bad_paths_are_reported_with_pointers() {
        let mut problems = vec![];
        Template::compile(
            &json!({"a": {"b.$": "nope"}, "c.$": 3}),
            "/P",
            &mut problems,
        );
        let ptrs: Vec<_> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(ptrs, ["/P/a/b.$", "/P/c.$"]);
    }
}
