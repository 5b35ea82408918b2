//! Generic built-in task handlers, bound to resources by a short spec string.
//!
//! | spec | behaviour |
//! |---|---|
//! | `identity` | returns its input |
//! | `merge {JSON object}` | returns the input object with the object's keys set (shallow) |
//! | `fail ErrorName cause text` | fails with that error and cause |
//! | `fail-first N ErrorName then SPEC` | the first N calls of the resource in one execution fail, later ones run SPEC |
//! | `sleep MS` | returns its input after MS milliseconds (a task that does not answer at once) |

use crate::value::{Map, Value};

use super::{TaskAnswer, TaskCall, TaskFuture, TaskHandler};
use crate::error::WorkflowError;

/// A parsed built-in handler.
#[derive(Debug, Clone, PartialEq)]
pub enum Builtin {
    /// Returns the input.
    Identity,
    /// Sets these keys on the input object.
    Merge(Map),
    /// Always fails.
    Fail {
        /// Error name.
        error: String,
        /// Cause text.
        cause: String,
    },
    /// Fails the first `times` calls, then behaves as `then`.
    FailFirst {
        /// How many calls fail.
        times: u32,
        /// Error name of those failures.
        error: String,
        /// What later calls do.
        then: Box<Builtin>,
    },
    /// Returns the input after this many milliseconds.
    Sleep(u64),
}

impl Builtin {
    /// Parses a spec string.
    pub fn parse(spec: &str) -> Result<Builtin, String> {
        let spec = spec.trim();
        let (word, rest) = spec.split_once(char::is_whitespace).unwrap_or((spec, ""));
        let rest = rest.trim();
        match word {
            "identity" if rest.is_empty() => Ok(Builtin::Identity),
            "merge" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(m)) => Ok(Builtin::Merge(m)),
                _ => Err(format!("merge needs a JSON object, got {rest:?}")),
            },
            "fail" => {
                let (error, cause) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                if error.is_empty() {
                    return Err("fail needs an error name".into());
                }
                Ok(Builtin::Fail {
                    error: error.to_string(),
                    cause: cause.trim().to_string(),
                })
            }
            "sleep" => rest
                .parse()
                .map(Builtin::Sleep)
                .map_err(|_| format!("sleep needs a whole number of milliseconds, got {rest:?}")),
            "fail-first" => {
                let mut parts = rest.splitn(4, char::is_whitespace);
                let times = parts
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("fail-first needs a count")?;
                let error = parts.next().ok_or("fail-first needs an error name")?.to_string();
                if parts.next() != Some("then") {
                    return Err("expected 'fail-first N ErrorName then SPEC'".into());
                }
                let then = Builtin::parse(parts.next().unwrap_or(""))?;
                Ok(Builtin::FailFirst {
                    times,
                    error,
                    then: Box::new(then),
                })
            }
            _ => Err(format!(
                "unknown task spec {spec:?} (expected identity, merge {{..}}, fail E cause, fail-first N E then SPEC, sleep MS)"
            )),
        }
    }

    /// How long this call waits before it answers (`sleep`, also after `fail-first`).
    fn delay_ms(&self, resource_calls: u32) -> Option<u64> {
        match self {
            Builtin::Sleep(ms) => Some(*ms),
            Builtin::FailFirst { times, then, .. } if resource_calls >= *times => {
                then.delay_ms(resource_calls)
            }
            _ => None,
        }
    }

    /// Runs the handler synchronously.
    pub fn apply(&self, input: Value, resource_calls: u32) -> Result<Value, WorkflowError> {
        match self {
            Builtin::Identity | Builtin::Sleep(_) => Ok(input),
            Builtin::Merge(m) => match input {
                Value::Object(mut obj) => {
                    for (k, v) in m {
                        obj.insert_cloned(k, v.clone());
                    }
                    Ok(Value::Object(obj))
                }
                _ => Ok(Value::Object(m.clone())),
            },
            Builtin::Fail { error, cause } => Err(WorkflowError::new(error, cause)),
            Builtin::FailFirst { times, error, then } => {
                if resource_calls < *times {
                    Err(WorkflowError::new(
                        error,
                        format!("transient failure on attempt {}", resource_calls + 1),
                    ))
                } else {
                    then.apply(input, resource_calls)
                }
            }
        }
    }
}

impl TaskHandler for Builtin {
    fn call(&self, call: TaskCall<'_>) -> TaskFuture {
        self.answer(call).into_future()
    }

    fn answer(&self, call: TaskCall<'_>) -> TaskAnswer {
        let delay = self.delay_ms(call.resource_calls);
        let out = self.apply(call.input, call.resource_calls);
        match delay {
            Some(ms) => {
                let d = std::time::Duration::from_millis(ms);
                TaskAnswer::Later(Box::pin(async move {
                    tokio::time::sleep(d).await;
                    out
                }))
            }
            None => TaskAnswer::Now(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn specs_parse_and_behave() {
        let m = Builtin::parse(r#"merge {"ok": true}"#).unwrap();
        assert_eq!(
            m.apply(json!({"a": 1}), 0).unwrap(),
            json!({"a": 1, "ok": true})
        );
        let f = Builtin::parse("fail-first 2 Busy then identity").unwrap();
        assert_eq!(
            f.apply(json!(1), 0).unwrap_err().cause.as_deref(),
            Some("transient failure on attempt 1")
        );
        assert!(f.apply(json!(1), 1).is_err());
        assert_eq!(f.apply(json!(1), 2).unwrap(), json!(1));
        let e = Builtin::parse("fail Out.Of.Stock no stock left")
            .unwrap()
            .apply(json!(null), 0)
            .unwrap_err();
        assert_eq!(
            (e.error.as_deref(), e.cause.as_deref()),
            (Some("Out.Of.Stock"), Some("no stock left"))
        );
        assert!(Builtin::parse("explode").is_err());
        assert_eq!(Builtin::parse("sleep 250"), Ok(Builtin::Sleep(250)));
        assert!(Builtin::parse("sleep -1").is_err());
    }
}
