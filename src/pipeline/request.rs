//! Decoding one input record into an execution request, or the reason it cannot start.

use serde_json::Value;

/// Limits a request must respect before it is parsed.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Largest value in bytes.
    pub max_bytes: usize,
    /// Deepest JSON nesting.
    pub max_depth: usize,
}

/// A request ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The state machine to run.
    pub state_machine: String,
    /// The execution name, if the request gave one.
    pub name: Option<String>,
    /// The execution input.
    pub input: Value,
}

/// Why a record cannot start an execution: it goes to the errors topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The error name (`stepstream.InvalidRequest`, `States.DataLimitExceeded`, ...).
    pub error: &'static str,
    /// What is wrong, for a person.
    pub cause: String,
}

/// Error names of dead letters.
pub mod errors {
    pub const INVALID_REQUEST: &str = "stepstream.InvalidRequest";
    pub const UNKNOWN_STATE_MACHINE: &str = "stepstream.UnknownStateMachine";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    pub const INVALID_ENCODING: &str = "stepstream.InvalidEncoding";
    pub const NESTING_TOO_DEEP: &str = "stepstream.NestingTooDeep";
}

fn reject(error: &'static str, cause: impl Into<String>) -> Rejection {
    Rejection {
        error,
        cause: cause.into(),
    }
}

/// Header names that override the envelope.
pub const HEADER_STATE_MACHINE: &str = "stepstream-state-machine";
/// Header carrying the execution name.
pub const HEADER_EXECUTION_NAME: &str = "stepstream-execution-name";

/// Decodes a record value. `bound` is the state machine of a topic bound to one machine
/// (the whole value is then the input); `header_machine`/`header_name` come from headers.
pub fn decode(
    value: Option<&[u8]>,
    bound: Option<&str>,
    header_machine: Option<&str>,
    header_name: Option<&str>,
    limits: RequestLimits,
) -> Result<Request, Rejection> {
    let bytes = value.unwrap_or_default();
    if bytes.is_empty() {
        return Err(reject(errors::INVALID_REQUEST, "the record has no value"));
    }
    if bytes.len() > limits.max_bytes {
        return Err(reject(
            errors::DATA_LIMIT_EXCEEDED,
            format!(
                "the request is {} bytes, over the {}-byte limit",
                bytes.len(),
                limits.max_bytes
            ),
        ));
    }
    let depth = max_depth(bytes);
    if depth > limits.max_depth {
        return Err(reject(
            errors::NESTING_TOO_DEEP,
            format!(
                "the request nests {depth} levels deep, over the limit of {}",
                limits.max_depth
            ),
        ));
    }
    // serde_json, not simd-json: on ~1 KB requests simd-json needs its own mutable copy of
    // the bytes and then loses (benches/micro.rs: 5.1 us against 4.7 us per request).
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|e| match std::str::from_utf8(bytes) {
            // A parsed document is valid UTF-8, so the encoding is only checked on failure.
            Err(bad) => reject(
                errors::INVALID_ENCODING,
                format!(
                    "the request is not valid UTF-8 (invalid byte at offset {})",
                    bad.valid_up_to()
                ),
            ),
            Ok(_) => reject(
                errors::INVALID_REQUEST,
                format!("the request is not valid JSON: {e}"),
            ),
        })?;

    if let Some(machine) = bound.or(header_machine) {
        if bound.is_some() {
            return Ok(Request {
                state_machine: machine.to_string(),
                name: header_name.map(str::to_string),
                input: doc,
            });
        }
    }
    let Value::Object(mut env) = doc else {
        return Err(reject(
            errors::INVALID_REQUEST,
            "the request must be a JSON object {\"stateMachine\", \"name\", \"input\"}",
        ));
    };
    let state_machine = match (header_machine, env.remove("stateMachine")) {
        (Some(h), _) => h.to_string(),
        (None, Some(Value::String(s))) if !s.is_empty() => s,
        (None, Some(_)) => {
            return Err(reject(
                errors::INVALID_REQUEST,
                "\"stateMachine\" must be a non-empty string",
            ))
        }
        (None, None) => {
            return Err(reject(
                errors::INVALID_REQUEST,
                "the request has no \"stateMachine\"",
            ))
        }
    };
    let name = match (header_name, env.remove("name")) {
        (Some(h), _) => Some(h.to_string()),
        (None, None | Some(Value::Null)) => None,
        (None, Some(Value::String(s))) if valid_name(&s) => Some(s),
        (None, Some(_)) => {
            return Err(reject(
                errors::INVALID_REQUEST,
                "\"name\" must be a string of 1 to 80 characters",
            ))
        }
    };
    let input = env
        .remove("input")
        .unwrap_or_else(|| Value::Object(Default::default()));
    Ok(Request {
        state_machine,
        name,
        input,
    })
}

fn valid_name(s: &str) -> bool {
    (1..=80).contains(&s.chars().count())
}

/// Deepest nesting of arrays and objects, found by a byte scan that skips strings.
fn max_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: RequestLimits = RequestLimits {
        max_bytes: 1024,
        max_depth: 8,
    };

    fn err(v: &[u8]) -> &'static str {
        decode(Some(v), None, None, None, LIMITS).unwrap_err().error
    }

    #[test]
    fn envelope_is_decoded() {
        let r = decode(
            Some(br#"{"stateMachine":"m","name":"n","input":{"a":1}}"#),
            None,
            None,
            None,
            LIMITS,
        )
        .unwrap();
        assert_eq!(
            r,
            Request {
                state_machine: "m".into(),
                name: Some("n".into()),
                input: json!({"a": 1})
            }
        );
    }

    #[test]
    fn bound_topic_takes_the_whole_value_as_input() {
        let r = decode(Some(b"[1,2]"), Some("m"), None, None, LIMITS).unwrap();
        assert_eq!((r.state_machine.as_str(), r.input), ("m", json!([1, 2])));
    }

    #[test]
    fn headers_override_the_envelope() {
        let r = decode(
            Some(br#"{"stateMachine":"m","input":1}"#),
            None,
            Some("h"),
            Some("x"),
            LIMITS,
        )
        .unwrap();
        assert_eq!(
            (r.state_machine.as_str(), r.name.as_deref()),
            ("h", Some("x"))
        );
    }

    #[test]
    fn every_class_of_bad_input_is_named() {
        assert_eq!(err(b""), errors::INVALID_REQUEST);
        assert_eq!(err(b"{nope"), errors::INVALID_REQUEST);
        assert_eq!(err(b"[1]"), errors::INVALID_REQUEST);
        assert_eq!(err(br#"{"input":{}}"#), errors::INVALID_REQUEST);
        assert_eq!(err(&[b'"', 0xff, b'"']), errors::INVALID_ENCODING);
        assert_eq!(err(&[b' '; 2048]), errors::DATA_LIMIT_EXCEEDED);
        assert_eq!(err(b"[[[[[[[[[[]]]]]]]]]]"), errors::NESTING_TOO_DEEP);
    }

    #[test]
    fn brackets_inside_strings_do_not_count_as_nesting() {
        assert_eq!(max_depth(br#"{"a":"[[[[{{{{\"[[["}"#), 1);
    }
}
