//! The length of a value as compact JSON, counted without writing it: what the 256 KiB
//! payload limit counts, kept equal to what [`super::to_vec`] writes.

use super::{Number, Value};

/// The bytes `s` takes as a JSON string, quotes and escapes included.
#[inline]
pub(crate) fn string_len(s: &str) -> usize {
    let b = s.as_bytes();
    // Most strings need no escape; this test runs over whole words, the count below
    // per byte.
    if !b.iter().any(|&c| needs_escape(c)) {
        return b.len() + 2;
    }
    2 + b
        .iter()
        .map(|&c| match c {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// Whether a byte of a string is written as an escape.
#[inline]
pub(crate) fn needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

/// The bytes `n` takes as JSON.
#[inline]
pub(crate) fn number_len(n: &Number) -> usize {
    if let Some(u) = n.as_u64() {
        u.checked_ilog10().map_or(1, |d| d as usize + 1)
    } else if let Some(i) = n.as_i64() {
        // Negative here: u64 took every non-negative integer.
        i.unsigned_abs()
            .checked_ilog10()
            .map_or(1, |d| d as usize + 2)
    } else {
        // The shortest form serde_json and our writer both use.
        let f = n
            .as_f64()
            .expect("a Number is an integer or a finite float");
        zmij::Buffer::new().format_finite(f).len()
    }
}

/// The JSON length of a scalar, or of an array or object whose length is remembered;
/// `None` for one that would have to be walked.
#[inline]
pub(crate) fn known_len(v: &Value) -> Option<usize> {
    Some(match v {
        Value::Null => 4,
        Value::Bool(b) => {
            if *b {
                4
            } else {
                5
            }
        }
        Value::Number(n) => number_len(n),
        Value::String(s) => string_len(s),
        Value::Array(a) if a.is_empty() => 2,
        Value::Array(a) => return a.cached_json_size(),
        Value::Object(o) if o.is_empty() => 2,
        Value::Object(o) => return o.cached_json_size(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn lengths_match_what_serde_json_writes() {
        for v in [
            json!(0),
            json!(9),
            json!(10),
            json!(-1),
            json!(-10),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(0.5),
            json!(-1.5e-300),
            json!(1e21),
            json!(3.0),
            json!(""),
            json!("plain"),
            json!("tab\there \"q\" \\ \u{1} é \u{7f}"),
            json!(null),
            json!(true),
            json!(false),
            json!([]),
            json!({}),
        ] {
            let written = serde_json::to_string(&serde_json::Value::from(&v)).unwrap();
            assert_eq!(known_len(&v), Some(written.len()), "{written}");
        }
    }
}
