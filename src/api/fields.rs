//! Reading an operation's JSON body, with AWS's validation messages.

use hyper::body::Bytes;
use serde_json::{Map, Value};

use super::errors::ApiError;

/// An operation's input object.
pub struct Fields {
    map: Map<String, Value>,
    /// The `input` string as the body wrote it (escapes and all, without the quotes), where
    /// the fast reader read the body: StartSyncExecution hands it back by copying it rather
    /// than escaping it again. No other field is handed back, so no other text is kept.
    input_text: Option<Bytes>,
}

impl Fields {
    /// Parses a body: a JSON object (an empty body counts as `{}`, as botocore sends it).
    pub fn parse(body: &Bytes) -> Result<Fields, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields {
                map: Map::new(),
                input_text: None,
            });
        }
        if let Some(f) = Fields::read_fast(body) {
            return Ok(f);
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Fields {
                map,
                input_text: None,
            }),
            Ok(_) => Err(ApiError::serialization(
                "the request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::serialization(format!(
                "the request body is not valid JSON: {e}"
            ))),
        }
    }

    /// The body read by the state data's reader, which also tells where the `input` string
    /// lies; `None` for anything it does not finish (serde_json then reads the body, so
    /// what is accepted and every error message stay serde_json's).
    fn read_fast(body: &Bytes) -> Option<Fields> {
        let text = std::str::from_utf8(body).ok()?;
        let mut r = crate::value::Reader::new(text);
        let mut map = Map::new();
        let mut input_text = None;
        r.object(|key, r| {
            let start = r.next_offset()?;
            let value = r.str_or_value()?;
            if key == "input" {
                // A repeated key: the last one counts, as in the map. Between the quotes:
                // the reader stands just past the closing one.
                input_text = value.is_ok().then(|| body.slice(start + 1..r.offset() - 1));
            }
            let value = match value {
                Ok(s) => Value::String(s.into_owned()),
                Err(v) => Value::from(v),
            };
            map.insert(key.to_string(), value);
            Some(())
        })?;
        r.at_end().then_some(Fields { map, input_text })
    }

    /// The `input` field's text as the body wrote it: valid JSON string content (escapes
    /// kept), not necessarily the escapes serde_json would choose. `None` when the body was
    /// not read by the fast reader or `input` is not a string.
    pub fn input_text(&self) -> Option<&Bytes> {
        self.input_text.as_ref()
    }

    /// A field that may be absent (null counts as absent).
    pub fn optional(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// A string field that must be there.
    pub fn string(&self, name: &str) -> Result<String, ApiError> {
        self.optional_string(name)?.ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value null at '{name}' failed to satisfy \
                 constraint: Member must not be null"
            ))
        })
    }

    /// A string field that may be absent.
    pub fn optional_string(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.optional(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::serialization(format!(
                "'{name}' must be a string"
            ))),
        }
    }

    /// A string field that may be absent, moved out of the input.
    pub fn take_optional_string(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::serialization(format!(
                "'{name}' must be a string"
            ))),
        }
    }

    /// A whole-number field that may be absent.
    pub fn optional_u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.optional(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| ApiError::serialization(format!("'{name}' must be a whole number"))),
        }
    }
}

/// The machine name a state machine ARN names
/// (`arn:aws:states:REGION:ACCOUNT:stateMachine:NAME`, any region and account).
pub fn machine_name(arn: &str) -> Result<&str, ApiError> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    match parts.as_slice() {
        ["arn", _, "states", _, _, "stateMachine", name]
            if !name.is_empty() && !name.contains(':') =>
        {
            Ok(name)
        }
        _ => Err(ApiError::invalid_arn(arn)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Bytes {
        Bytes::from(text.to_string())
    }

    #[test]
    fn the_fast_read_gives_serde_jsons_fields_and_each_strings_own_text() {
        let bodies = [
            r#"{"stateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:m", "input": "{\"who\": \"you\"}"}"#,
            r#"{"input":"{\"w\":\"\u00e9\/\ud83d\ude00\\n\"}","name":"n-1"}"#,
            r#" { "a" : 1 , "b" : [1, 2.5, {"c": null}], "d": true, "e": null, "a": "again" } "#,
            r#"{"input": "plain", "input": 3}"#,
            r#"{"input": "first", "name": "n", "input": "a\"b"}"#,
            "{}",
        ];
        for text in bodies {
            let f = Fields::parse(&body(text)).unwrap();
            let want: Map<String, Value> = serde_json::from_str(text).unwrap();
            assert_eq!(f.map, want, "{text}");
            match (want.get("input"), f.input_text()) {
                (Some(Value::String(_)), None) => panic!("{text}: not read by the fast reader"),
                (_, Some(raw)) => {
                    let quoted = format!("\"{}\"", std::str::from_utf8(raw).unwrap());
                    let decoded: String = serde_json::from_str(&quoted).unwrap();
                    assert_eq!(Some(&Value::String(decoded)), want.get("input"), "{text}");
                }
                _ => {}
            }
        }
        let f = Fields::parse(&body(r#"{"input": "plain", "input": 3}"#)).unwrap();
        assert_eq!(f.input_text(), None, "its last value is no string");
        let f =
            Fields::parse(&body(r#"{"input": "first", "name": "n", "input": "a\"b"}"#)).unwrap();
        assert_eq!(f.input_text().unwrap().as_ref(), br#"a\"b"#);
    }

    #[test]
    fn a_body_of_many_string_fields_is_read_in_one_pass() {
        // 200,000 fields: a search of kept texts per field (an earlier form) took minutes.
        let members: Vec<String> = (0..200_000).map(|i| format!("\"k{i}\":\"v\"")).collect();
        let text = format!("{{{},\"input\":\"{{}}\"}}", members.join(","));
        let f = Fields::parse(&body(&text)).unwrap();
        assert_eq!(f.map.len(), 200_001);
        assert_eq!(f.input_text().unwrap().as_ref(), b"{}");
    }

    #[test]
    fn what_the_fast_read_refuses_gets_serde_jsons_answer() {
        for text in [
            r#"{"a": 1"#,
            r#"{"a": 1} x"#,
            "[1]",
            r#"{"a": 1e400}"#,
            "{\"a\": \"\x01\"}",
        ] {
            let fast = Fields::parse(&body(text));
            let slow = serde_json::from_str::<Map<String, Value>>(text);
            match (fast, slow) {
                (Ok(f), Ok(m)) => assert_eq!(f.map, m, "{text}"),
                (Err(e), Err(_)) => assert_eq!(e.status, 400, "{text}"),
                (Err(_), Ok(_)) if text == "[1]" => {}
                (f, s) => panic!("{text}: {:?} vs {s:?}", f.map(|f| f.map)),
            }
        }
        let bad = [0xffu8, b'{', b'}'];
        assert!(Fields::parse(&Bytes::copy_from_slice(&bad)).is_err());
    }
}
