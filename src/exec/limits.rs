//! Express payload limits.

use serde_json::Value;

/// AWS's limit on a state's input or output: 256 KiB of JSON.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Size of `v` as compact JSON, computed without serializing; stops counting past `cap`.
pub fn json_size(v: &Value, cap: usize) -> usize {
    fn walk(v: &Value, acc: &mut usize, cap: usize) {
        if *acc > cap {
            return;
        }
        match v {
            Value::Null => *acc += 4,
            Value::Bool(b) => *acc += if *b { 4 } else { 5 },
            Value::Number(n) => *acc += number_len(n),
            Value::String(s) => *acc += string_len(s),
            Value::Array(a) => {
                *acc += 2 + a.len().saturating_sub(1);
                for x in a {
                    walk(x, acc, cap);
                }
            }
            Value::Object(o) => {
                *acc += 2 + o.len().saturating_sub(1);
                for (k, x) in o {
                    *acc += string_len(k) + 1;
                    walk(x, acc, cap);
                }
            }
        }
    }
    let mut acc = 0;
    walk(v, &mut acc, cap);
    acc
}

fn number_len(n: &serde_json::Number) -> usize {
    if let Some(i) = n.as_i64() {
        let digits = i
            .unsigned_abs()
            .checked_ilog10()
            .map_or(1, |d| d as usize + 1);
        digits + usize::from(i < 0)
    } else if let Some(u) = n.as_u64() {
        u.checked_ilog10().map_or(1, |d| d as usize + 1)
    } else {
        // Floats are rare in payloads; their exact text length is not worth computing here.
        24
    }
}

fn string_len(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn size_matches_serialized_length_for_common_values() {
        for v in [
            json!({"a": [1, -20, "x\"y\n", null, true, false], "bb": {}, "c": []}),
            json!("héllo"),
            json!(12345678901234u64),
        ] {
            assert_eq!(json_size(&v, usize::MAX), v.to_string().len(), "{v}");
        }
    }
}
