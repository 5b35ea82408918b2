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
    /// The checked field was found equal, as bytes, to a text known to equal the expected
    /// value (see [`ResultFields::read_checked`]); it was then not read at all.
    #[serde(skip)]
    pub(super) known_equal: bool,
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

    /// The fields of a result whose `field` (`output`, or `input` in passthrough) is
    /// first looked for, by bytes alone, as one of the texts `check` knows to be right.
    ///
    /// Why: a result carries the whole output, and skipping it value by value was the
    /// feeder's largest cost (perf, order: ~1.1 µs a result, twice what a passthrough copy
    /// cost, so the feeder's work differed between the two modes P4 compares). Where a
    /// known text sits at the first `"<field>":`, the record is read with `0` in its
    /// place (into `scratch`), and that `0` must then be the top-level field's value;
    /// any other record is read whole and checked by value as before.
    pub(super) fn read_checked(
        bytes: &'a [u8],
        field: Checked,
        check: Option<&Check>,
        scratch: &'a mut Vec<u8>,
    ) -> ResultFields<'a> {
        let Some(at) = check.and_then(|c| c.known_at(bytes, field)) else {
            return ResultFields::read(bytes);
        };
        scratch.clear();
        scratch.extend_from_slice(&bytes[..at.start]);
        // Not `null`: an `Option` field reads that as absent, and then where it was is lost.
        scratch.push(b'0');
        scratch.extend_from_slice(&bytes[at.end..]);
        let Ok(mut fields) = serde_json::from_slice::<ResultFields<'a>>(scratch) else {
            return ResultFields::read(bytes);
        };
        // The field read must be the `0` put in, not a nested key of the same name.
        let at_start = fields.checked(field).is_some_and(|raw| {
            raw.get() == "0" && raw.get().as_ptr() as usize - scratch.as_ptr() as usize == at.start
        });
        if !at_start {
            return ResultFields::read(bytes);
        }
        fields.known_equal = true;
        fields
    }

    /// The checked field's text, if the result has it.
    pub(super) fn checked(&self, field: Checked) -> Option<&'a RawValue> {
        match field {
            Checked::Output => self.output,
            Checked::Input => self.input,
        }
    }
}

/// Which field of a result is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Checked {
    /// An execution's `output`.
    Output,
    /// A passthrough copy's `input`: the request itself.
    Input,
}

impl Checked {
    /// The field's key as written, with its colon.
    fn key(self) -> &'static [u8] {
        match self {
            Checked::Output => b"\"output\":",
            Checked::Input => b"\"input\":",
        }
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

    /// The byte range of the value at the first `"<field>":` in `record` when a text known
    /// to equal the expected value starts there (not yet known to be the top-level field).
    fn known_at(&self, record: &[u8], field: Checked) -> Option<std::ops::Range<usize>> {
        let key = field.key();
        let after = memchr::memmem::find(record, key)? + key.len();
        let start = after
            + record[after..]
                .iter()
                .position(|b| !b.is_ascii_whitespace())?;
        let text = self.known.iter().find(|k| record[start..].starts_with(k))?;
        Some(start..start + text.len())
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
    fn a_known_output_is_found_by_bytes_and_the_rest_still_read() {
        let mut check =
            Check::new(json!({"status": "SUCCEEDED", "s": "}]\"{[", "n": [1, {"a": null}]}));
        // The record's output as the engine writes it, in its own key order: learned once.
        let output = r#"{"status":"SUCCEEDED","s":"}]\"{[","n":[1,{"a":null}]}"#;
        assert!(check.matches(Some(&RawValue::from_string(output.into()).unwrap())));
        let mut scratch = Vec::new();
        // As written, and with white space after the colon.
        for record in [
            RESULT.to_string(),
            RESULT.replace("\"output\":", "\"output\":  \n"),
        ] {
            let f = ResultFields::read_checked(
                record.as_bytes(),
                Checked::Output,
                Some(&check),
                &mut scratch,
            );
            assert!(f.known_equal, "{record}");
            assert_eq!(f.status.as_deref(), Some("FAILED"));
            assert_eq!(f.source, source(3, 1042));
        }
    }

    #[test]
    fn only_the_top_level_field_counts_as_known() {
        let check = Check::new(json!({"a": 1}));
        let mut scratch = Vec::new();
        let mut read = |record: &str| {
            let f = ResultFields::read_checked(
                record.as_bytes(),
                Checked::Output,
                Some(&check),
                &mut scratch,
            );
            (
                f.known_equal,
                f.output.map(|r| r.get().to_string()),
                f.status.map(|s| s.into_owned()),
            )
        };
        // The first `"output":` is nested in an earlier field: the record is read whole.
        let nested = r#"{"x":{"output":{"a":1}},"status":"SUCCEEDED","output":{"a":2}}"#;
        assert_eq!(
            read(nested),
            (false, Some(r#"{"a":2}"#.into()), Some("SUCCEEDED".into()))
        );
        // Nested in the output itself: the output is not the known text.
        let inside = r#"{"status":"SUCCEEDED","output":{"output":{"a":1}}}"#;
        assert!(!read(inside).0);
        // A known text that is only the start of the value.
        let check = Check::new(json!(12));
        let f = ResultFields::read_checked(
            br#"{"output":123,"status":"S"}"#,
            Checked::Output,
            Some(&check),
            &mut scratch,
        );
        assert!(!f.known_equal);
        assert_eq!(f.output.map(RawValue::get), Some("123"));
        // A passthrough copy is checked by its input, not by a key named output in it.
        let check = Check::new(json!({"output": 1}));
        let copy = br#"{"stateMachine":"m","input":{"output":1}}"#;
        let f = ResultFields::read_checked(copy, Checked::Input, Some(&check), &mut scratch);
        assert!(f.known_equal);
        let f = ResultFields::read_checked(copy, Checked::Output, Some(&check), &mut scratch);
        assert!(!f.known_equal);
        // No check, or a record that is not JSON: read as before.
        let f = ResultFields::read_checked(copy, Checked::Input, None, &mut scratch);
        assert!(!f.known_equal && f.input.is_some());
        let f = ResultFields::read_checked(
            br#"{"input":{"output":1}"#,
            Checked::Input,
            Some(&check),
            &mut scratch,
        );
        assert!(!f.known_equal && f.input.is_none());
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
