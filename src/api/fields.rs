//! Reading an operation's JSON body, with AWS's validation messages.

use serde_json::{Map, Value};

use super::errors::ApiError;

/// An operation's input object.
pub struct Fields(pub Map<String, Value>);

impl Fields {
    /// Parses a body: a JSON object (an empty body counts as `{}`, as botocore sends it).
    pub fn parse(body: &[u8]) -> Result<Fields, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields(Map::new()));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(Fields(m)),
            Ok(_) => Err(ApiError::serialization(
                "the request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::serialization(format!(
                "the request body is not valid JSON: {e}"
            ))),
        }
    }

    /// A field that may be absent (null counts as absent).
    pub fn optional(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
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
        match self.0.remove(name) {
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
