//! Conversions to and from `serde_json::Value`, for the edges that keep serde_json:
//! definitions and config (converted once at compile time) and network task payloads.
//! Strings are scanned for escapes here, once, so that writing a definition's literal (a
//! Parameters constant written into every output) copies it without a scan.

use super::{Map, Str, Value};

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(s) => Value::String(Str::scanned(&s)),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, v)| (Str::scanned(&k), Value::from(v)))
                    .collect::<Map>(),
            ),
        }
    }
}

impl From<&serde_json::Value> for Value {
    fn from(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.clone()),
            serde_json::Value::String(s) => Value::String(Str::scanned(s)),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (Str::scanned(k), Value::from(v)))
                    .collect::<Map>(),
            ),
        }
    }
}

impl From<&Value> for serde_json::Value {
    fn from(v: &Value) -> serde_json::Value {
        match v {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Into::into).collect()),
            Value::Object(o) => serde_json::Value::Object(
                o.iter()
                    .map(|(k, v)| (k.to_string(), serde_json::Value::from(v)))
                    .collect(),
            ),
        }
    }
}

impl From<Value> for serde_json::Value {
    fn from(v: Value) -> serde_json::Value {
        serde_json::Value::from(&v)
    }
}

impl Value {
    /// The same JSON as a `serde_json::Value` (a deep copy).
    pub fn to_serde(&self) -> serde_json::Value {
        self.into()
    }
}

/// Reads a typed value out of state data (through serde_json: for edges, not hot paths).
pub fn from_value<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(v.to_serde())
}

/// JSON in either representation, for entry points (definitions) that callers hold as
/// serde_json or as state data: borrowed when it already is a [`Value`].
pub trait AsValue {
    /// The JSON as a [`Value`].
    fn as_value(&self) -> std::borrow::Cow<'_, Value>;
}

impl AsValue for Value {
    fn as_value(&self) -> std::borrow::Cow<'_, Value> {
        std::borrow::Cow::Borrowed(self)
    }
}

impl AsValue for serde_json::Value {
    fn as_value(&self) -> std::borrow::Cow<'_, Value> {
        std::borrow::Cow::Owned(Value::from(self))
    }
}

/// Equality across the two representations (tests and edges compare them), with the
/// semantics of [`Value`]'s own `==`.
impl PartialEq<serde_json::Value> for Value {
    fn eq(&self, other: &serde_json::Value) -> bool {
        same(self, other)
    }
}

impl PartialEq<Value> for serde_json::Value {
    fn eq(&self, other: &Value) -> bool {
        same(other, self)
    }
}

fn same(a: &Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (Value::Null, serde_json::Value::Null) => true,
        (Value::Bool(x), serde_json::Value::Bool(y)) => x == y,
        (Value::Number(x), serde_json::Value::Number(y)) => x == y,
        (Value::String(x), serde_json::Value::String(y)) => x.as_str() == y,
        (Value::Array(x), serde_json::Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), serde_json::Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k.as_str()).is_some_and(|w| same(v, w)))
        }
        _ => false,
    }
}
