//! Reading JSON into [`Value`] through serde: serde_json's reader (or any other
//! deserializer), our tree. [`super::from_slice`] is the faster way for whole documents.
//!
//! serde_json does the lexing (its number parsing, escape handling, error messages and
//! its 128-level recursion limit stay exactly as before); this visitor builds the tree.
//! Keys and strings without escapes arrive borrowed from the input, so a short one costs
//! no allocation at all.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{known_len, Array, Map, Number, Remembers, Str, Value};

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Number::from_f64(f).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(Str::scanned(s)))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(Str::scanned(&s)))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Deserialize::deserialize(d)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        // The JSON size, counted while the elements are at hand: the execution measures
        // its input before it starts, and then finds every node's size remembered.
        let mut size = Some(1usize);
        while let Some(x) = seq.next_element()? {
            size = add(size, known_len(&x), 1);
            v.push(x);
        }
        if v.is_empty() {
            size = Some(2);
        }
        Ok(Value::Array(Array::from_sized(v, size)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        // Up to a few keys the entries are collected in a vector and checked for
        // duplicates by a scan, with no copy-on-write check per key; beyond that the map
        // keeps its hash index as it grows.
        let mut entries: Vec<(Str, Value)> = Vec::new();
        let mut size = Some(1usize);
        while let Some(k) = access.next_key::<Str>()? {
            let v: Value = access.next_value()?;
            if let Some((_, old)) = entries.iter_mut().find(|(x, _)| *x == k) {
                // A duplicate key: the later value in the first position, as serde_json.
                *old = v;
                size = None;
                continue;
            }
            size = add(size, known_len(&v), k.json_len() + 2);
            entries.push((k, v));
            if entries.len() == Map::SCAN_KEYS {
                let mut m = Map::from_distinct(entries, None);
                while let Some(k) = access.next_key::<Str>()? {
                    let v: Value = access.next_value()?;
                    let (vl, kl) = (known_len(&v), k.json_len() + 2);
                    size = match m.insert(k, v) {
                        None => add(size, vl, kl),
                        Some(_) => None,
                    };
                }
                if let Some(n) = size {
                    m.cache_json_size(n);
                }
                return Ok(Value::Object(m));
            }
        }
        if entries.is_empty() {
            size = Some(2);
        }
        Ok(Value::Object(Map::from_distinct(entries, size)))
    }
}

/// A size count plus one more member of `member` bytes and `extra` bytes of punctuation
/// and key; unknown once any part is.
#[inline]
fn add(size: Option<usize>, member: Option<usize>, extra: usize) -> Option<usize> {
    Some(size?.saturating_add(member?).saturating_add(extra))
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct StrVisitor;

impl Visitor<'_> for StrVisitor {
    type Value = Str;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Str, E> {
        Ok(Str::scanned(s))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Str, E> {
        Ok(Str::scanned(&s))
    }
}

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Str, D::Error> {
        d.deserialize_str(StrVisitor)
    }
}

impl<'de> Deserialize<'de> for Map {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
        match Value::deserialize(d)? {
            Value::Object(m) => Ok(m),
            _ => Err(de::Error::custom("expected a JSON object")),
        }
    }
}
