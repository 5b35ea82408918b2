//! The length of a value as compact JSON, counted without writing it: what the 256 KiB
//! payload limit counts, kept equal to what [`super::to_vec`] writes.

use super::{Number, Value};

/// The bytes `s` takes as a JSON string, quotes and escapes included.
#[inline]
pub(crate) fn string_len(s: &str) -> usize {
    let b = s.as_bytes();
    // Most strings need no escape: the test runs eight bytes at a time, the count
    // below per byte from the first escape on.
    let first = special(b, 0);
    if first == b.len() {
        return b.len() + 2;
    }
    2 + first
        + b[first..]
            .iter()
            .map(|&c| match c {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
                0..=0x1f => 6,
                _ => 1,
            })
            .sum::<usize>()
}

/// The position of the first `"`, `\` or control byte at or after `from` (or the end),
/// eight bytes at a time.
#[inline]
pub(crate) fn special(b: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let quote = w ^ (ONES * u64::from(b'"'));
        let slash = w ^ (ONES * u64::from(b'\\'));
        // A byte is flagged when zero (quote, slash) or below 0x20 (control); bytes at
        // or above 0x80 clear the test through `!w`, so UTF-8 text is never flagged.
        let hit = (quote.wrapping_sub(ONES) & !quote
            | slash.wrapping_sub(ONES) & !slash
            | w.wrapping_sub(ONES * 0x20) & !w)
            & HIGH;
        if hit != 0 {
            // Borrows can flag a byte above a real hit, never one below it.
            return i + (hit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            return i;
        }
        i += 1;
    }
    i
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
        Value::String(s) => s.json_len(),
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
