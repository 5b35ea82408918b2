//! Writing [`Value`] as JSON: our tree, serde_json's writer.
//!
//! The bytes are serde_json's own (ryu's shortest floats such as `61.5` and `1e21`, its
//! escapes), written straight into the output buffer with no intermediate tree.

use std::fmt;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::{Array, Map, Str, Value};

impl Serialize for Value {
    #[inline]
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => n.serialize(s),
            Value::String(x) => s.serialize_str(x),
            Value::Array(a) => a.serialize(s),
            Value::Object(m) => m.serialize(s),
        }
    }
}

impl Serialize for Array {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for x in self.iter() {
            seq.serialize_element(x)?;
        }
        seq.end()
    }
}

impl Serialize for Map {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            m.serialize_entry(k.as_str(), v)?;
        }
        m.end()
    }
}

impl Serialize for Str {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

/// Compact JSON bytes.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    to_writer(&mut out, v);
    out
}

/// Appends compact JSON to `out`.
pub fn to_writer(out: &mut Vec<u8>, v: &Value) {
    let mut ser = serde_json::Serializer::new(out);
    v.serialize(&mut ser)
        .expect("writing a Value into a Vec cannot fail");
}

/// Compact JSON text.
pub fn to_string(v: &Value) -> String {
    String::from_utf8(to_vec(v)).expect("serde_json writes UTF-8")
}

/// Indented JSON text (serde_json's pretty form).
pub fn to_string_pretty(v: &Value) -> String {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::pretty(&mut out);
    v.serialize(&mut ser)
        .expect("writing a Value into a Vec cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Compact JSON (`{:#}`: indented), as serde_json's `Value` displays.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = if f.alternate() {
            to_string_pretty(self)
        } else {
            to_string(self)
        };
        f.write_str(&text)
    }
}
