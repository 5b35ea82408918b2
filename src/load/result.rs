//! Reading and checking result records cheaply: they carry the whole output and arrive at the
//! pipeline's full rate, on the same cores as the pipeline.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// The fields of a result the feeder needs, borrowed from the record. Every other field is
/// skipped by serde without being built; `output` and `input` stay raw JSON text.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ResultFields<'a> {
    #[serde(borrow, default)]
    pub(super) status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) source: Option<Source<'a>>,
    #[serde(borrow, default)]
    pub(super) output: Option<&'a RawValue>,
    /// A passthrough result is the request itself: its `input` is what is checked.
    #[serde(borrow, default)]
    pub(super) input: Option<&'a RawValue>,
}

/// Where the request of a result was read (`source`).
#[derive(Debug, Deserialize, PartialEq)]
pub(super) struct Source<'a> {
    #[serde(borrow)]
    pub(super) topic: Cow<'a, str>,
    pub(super) partition: i64,
    pub(super) offset: i64,
}

impl<'a> ResultFields<'a> {
    /// The fields of a result; none for a record that is not a JSON object of this shape.
    pub(super) fn read(bytes: &'a [u8]) -> ResultFields<'a> {
        serde_json::from_slice(bytes).unwrap_or_default()
    }
}

/// The expected value of a checked field, and the JSON texts known to be equal to it.
pub(super) struct Check {
    expected: Value,
    /// The expected value as serde_json writes it, and the first differing text a result
    /// had that still compared equal by value (the engine writes keys in its own order):
    /// results are deterministic, so later ones match one of these as bytes.
    known: Vec<Vec<u8>>,
    /// Results that had to be parsed.
    pub(super) parsed: u64,
}

impl Check {
    /// A check against `expected`.
    pub(super) fn new(expected: Value) -> Check {
        let text = serde_json::to_vec(&expected).expect("a serde_json::Value always serializes");
        Check {
            expected,
            known: vec![text],
            parsed: 0,
        }
    }

    /// Whether `got` equals the expected value: as bytes first, by value when they differ.
    pub(super) fn matches(&mut self, got: Option<&RawValue>) -> bool {
        let Some(got) = got else {
            return false;
        };
        let text = got.get().as_bytes();
        if self.known.iter().any(|k| k == text) {
            return true;
        }
        self.parsed += 1;
        let equal = serde_json::from_slice::<Value>(text)
            .is_ok_and(|value| same_json(&value, &self.expected));
        // Two forms at most: a result that keeps varying in spelling is parsed every time,
        // which the summary then shows.
        if equal && self.known.len() < 2 {
            self.known.push(text.to_vec());
        }
        equal
    }
}

/// Structural equality with numbers compared by value (`24.0 == 24`): expected outputs
/// written by hand or by JavaScript engines do not keep a float's `.0`.
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const RESULT: &str = r#"{"executionArn":"arn:aws:states:local:000000000000:express:m:demo-7:u","stateMachineArn":"arn:aws:states:local:000000000000:stateMachine:m","name":"demo-7","status":"FAILED","startDate":"2026-11-21T10:00:00.123Z","stopDate":"2026-11-21T10:00:00.124Z","output":{"status":"SUCCEEDED","s":"}]\"{[","n":[1,{"a":null}]},"error":"States.TaskFailed","cause":"x \"status\": \"OK\"","billingDetails":{"billedDurationInMilliseconds":100,"billedMemoryUsedInMB":64},"source":{"topic":"requests","partition":3,"offset":1042}}"#;

    fn source(partition: i64, offset: i64) -> Option<Source<'static>> {
        Some(Source {
            topic: "requests".into(),
            partition,
            offset,
        })
    }

    #[test]
    fn result_fields_come_from_the_top_level_only() {
        let f = ResultFields::read(RESULT.as_bytes());
        assert_eq!(f.status.as_deref(), Some("FAILED"));
        assert_eq!(f.source, source(3, 1042));
        assert_eq!(
            f.output.map(RawValue::get),
            Some(r#"{"status":"SUCCEEDED","s":"}]\"{[","n":[1,{"a":null}]}"#)
        );
    }

    #[test]
    fn result_fields_are_read_from_pretty_printed_json() {
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<Value>(RESULT).expect("valid test JSON"),
        )
        .expect("serializes");
        let f = ResultFields::read(pretty.as_bytes());
        assert_eq!(f.status.as_deref(), Some("FAILED"));
        assert_eq!(f.source, source(3, 1042));
    }

    #[test]
    fn escaped_status_is_decoded() {
        let escaped =
            r#"{"status":"SUCC\u0045EDED","source":{"topic":"requests","partition":0,"offset":5}}"#;
        let f = ResultFields::read(escaped.as_bytes());
        assert_eq!(f.status.as_deref(), Some("SUCCEEDED"));
        assert_eq!(f.source, source(0, 5));
    }

    #[test]
    fn unreadable_results_have_no_fields() {
        for bytes in [
            &b"not json"[..],
            b"",
            b"[1,2]",
            b"{\"status\":",
            b"{\"status\":}",
        ] {
            let f = ResultFields::read(bytes);
            assert!(
                f.status.is_none() && f.source.is_none() && f.output.is_none(),
                "{bytes:?}"
            );
        }
        let no_source = ResultFields::read(br#"{"status":"TIMED_OUT","source":null}"#);
        assert_eq!(no_source.status.as_deref(), Some("TIMED_OUT"));
        assert_eq!(no_source.source, None);
    }

    #[test]
    fn checks_compare_bytes_and_parse_only_what_differs() {
        let raw = |s: &str| RawValue::from_string(s.to_string()).expect("valid JSON");
        let mut check = Check::new(json!({"a": 1, "b": [2.0]}));
        assert!(check.matches(Some(&raw(r#"{"a":1,"b":[2.0]}"#))));
        assert_eq!(check.parsed, 0);
        // Other key order and number spelling: equal by value, parsed once, then known.
        let other = raw(r#"{"b":[2],"a":1}"#);
        assert!(check.matches(Some(&other)));
        assert!(check.matches(Some(&other)));
        assert_eq!(check.parsed, 1);
        assert!(!check.matches(Some(&raw(r#"{"a":1,"b":[3]}"#))));
        assert!(!check.matches(None));
        assert_eq!(check.parsed, 2);
    }
}
