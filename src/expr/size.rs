//! How big a value is: its size as compact JSON (what the 256 KiB payload limit counts) and
//! an estimate of the memory it holds.

use crate::value::{known_len, Remembers, Value};

pub use crate::express::MAX_PAYLOAD_BYTES;

/// Size of `v` as compact JSON, computed without serializing; stops counting past `cap`.
pub fn json_size(v: &Value, cap: usize) -> usize {
    // Leaves are counted in the loop over their parent's entries and only arrays and
    // objects recurse: a call per leaf was about half of the walk. Past the cap the loop
    // stops, so a huge value is not walked to its end.
    #[inline(always)]
    fn child(x: &Value, acc: &mut usize, cap: usize) {
        match known_len(x) {
            Some(n) => *acc += n,
            None => walk(x, acc, cap),
        }
    }
    fn walk(v: &Value, acc: &mut usize, cap: usize) {
        if *acc > cap {
            return;
        }
        match v {
            // A shared array or object remembers its size until it is written to, so
            // the state data's size check after each state measures only what changed.
            Value::Array(a) => {
                if let Some(n) = a.cached_json_size() {
                    *acc += n;
                    return;
                }
                let start = *acc;
                *acc += 2 + a.len().saturating_sub(1);
                for x in a {
                    if *acc > cap {
                        return;
                    }
                    child(x, acc, cap);
                }
                // Under the cap, every element was counted: the figure is whole.
                if *acc <= cap {
                    a.cache_json_size(*acc - start);
                }
            }
            Value::Object(o) => {
                if let Some(n) = o.cached_json_size() {
                    *acc += n;
                    return;
                }
                let start = *acc;
                *acc += 2 + o.len().saturating_sub(1);
                for (k, x) in o {
                    if *acc > cap {
                        return;
                    }
                    *acc += k.json_len() + 1;
                    child(x, acc, cap);
                }
                if *acc <= cap {
                    o.cache_json_size(*acc - start);
                }
            }
            leaf => *acc += known_len(leaf).unwrap_or(0),
        }
    }
    let mut acc = 0;
    child(v, &mut acc, cap);
    acc
}

/// What `v` takes in memory, roughly: a `Value` slot per value, plus string bytes and
/// per-entry map overhead. Stops counting past `cap`. This, not the JSON size, is what
/// the per-execution memory cap is measured in (100,000 zeros are 200 KB of JSON but
/// 3.2 MB of `Value`s). A subtree shared by several handles is counted once per handle
/// that reaches it, so this is an upper bound on what the value holds alone.
pub fn mem_size(v: &Value, cap: usize) -> usize {
    const SLOT: usize = std::mem::size_of::<Value>();
    // An object entry: key and value slots, plus the share of a hash index a large
    // object keeps.
    const ENTRY: usize = std::mem::size_of::<(crate::value::Str, Value)>() + 16;
    // As in `json_size`, leaves are counted in their parent's loop.
    #[inline(always)]
    fn child(x: &Value, acc: &mut usize, cap: usize) {
        match x {
            Value::Array(_) | Value::Object(_) => walk(x, acc, cap),
            Value::String(s) => *acc += SLOT + s.len(),
            _ => *acc += SLOT,
        }
    }
    fn walk(v: &Value, acc: &mut usize, cap: usize) {
        if *acc > cap {
            return;
        }
        // As with the JSON size, a node remembers its figure until written to: a Map's
        // outputs are counted as each iteration finishes and again as a Parallel branch's
        // output (that second walk was ~2 % of map-parallel).
        let start = *acc;
        match v {
            Value::Array(a) => {
                if let Some(n) = a.cached_mem_size() {
                    *acc += n;
                    return;
                }
                *acc += SLOT;
                for x in a {
                    if *acc > cap {
                        return;
                    }
                    child(x, acc, cap);
                }
                if *acc <= cap {
                    a.cache_mem_size(*acc - start);
                }
            }
            Value::Object(o) => {
                if let Some(n) = o.cached_mem_size() {
                    *acc += n;
                    return;
                }
                *acc += SLOT;
                for (k, x) in o {
                    if *acc > cap {
                        return;
                    }
                    *acc += ENTRY - SLOT + k.len();
                    child(x, acc, cap);
                }
                if *acc <= cap {
                    o.cache_mem_size(*acc - start);
                }
            }
            _ => *acc += SLOT,
        }
    }
    let mut acc = 0;
    child(v, &mut acc, cap);
    acc
}

pub(crate) use crate::value::string_len;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn size_matches_serialized_length_for_common_values() {
        for v in [
            json!({"a": [1, -20, "x\"y\n", null, true, false], "bb": {}, "c": []}),
            json!("héllo"),
            json!(12345678901234u64),
            json!(u64::MAX),
            json!(i64::MIN),
        ] {
            assert_eq!(json_size(&v, usize::MAX), v.to_string().len(), "{v}");
        }
    }

    #[test]
    fn floats_count_their_serialized_length() {
        for f in [
            0.5,
            -0.25,
            1e300,
            -1.5e-300,
            123456.789,
            0.1 + 0.2,
            1e21,
            1e-7,
            f64::MAX,
            f64::MIN_POSITIVE,
            3.0,
        ] {
            let v = json!(f);
            assert_eq!(json_size(&v, usize::MAX), v.to_string().len(), "{v}");
        }
        // 10,500 floats of 3 characters: 42 KB, far under the 256 KiB limit.
        let v = Value::from(vec![json!(0.5); 10_500]);
        assert_eq!(json_size(&v, usize::MAX), v.to_string().len());
    }

    #[test]
    fn a_remembered_size_is_forgotten_on_any_write_below_it() {
        let mut v = json!({"a": {"b": [1, 2, {"c": "x"}]}, "d": [true]});
        assert_eq!(json_size(&v, usize::MAX), v.to_string().len());
        let shared = v.clone();
        v["a"]["b"][2]["c"] = json!("a longer string");
        v["d"].as_array_mut().unwrap().push(json!(null));
        v.as_object_mut().unwrap().insert("e".into(), json!({}));
        assert_eq!(json_size(&v, usize::MAX), v.to_string().len());
        // The handle that shared the old tree still has the old size.
        assert_eq!(json_size(&shared, usize::MAX), shared.to_string().len());
        // A count stopped at a cap is not remembered as the whole size.
        let big = json!({"k": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]});
        assert!(json_size(&big, 5) > 5);
        assert_eq!(json_size(&big, usize::MAX), big.to_string().len());
    }

    #[test]
    fn a_remembered_memory_count_is_forgotten_on_any_write_below_it() {
        // Counted afresh: the same tree built again, so nothing in it remembers a figure.
        let fresh =
            |v: &Value| mem_size(&crate::value::from_str(&v.to_string()).unwrap(), usize::MAX);
        let mut v = json!({"a": {"b": [1, 2, {"c": "x"}]}, "d": [true]});
        let before = mem_size(&v, usize::MAX);
        assert_eq!(before, fresh(&v));
        let shared = v.clone();
        v["a"]["b"][2]["c"] = json!("a longer string");
        v["d"].as_array_mut().unwrap().push(json!(null));
        v.as_object_mut()
            .unwrap()
            .insert("e".into(), json!({"f": "g"}));
        assert_eq!(mem_size(&v, usize::MAX), fresh(&v));
        assert!(mem_size(&v, usize::MAX) > before);
        assert_eq!(mem_size(&shared, usize::MAX), before);
        // A count stopped at a cap is not remembered as the whole figure.
        let big = json!({"k": ["a long enough string", 2, 3, 4, 5, 6, 7, 8, 9, 10]});
        let whole = fresh(&big);
        assert!(mem_size(&big, 40) > 40 && mem_size(&big, 40) < whole);
        assert_eq!(mem_size(&big, usize::MAX), whole);
        assert_eq!(mem_size(&big, usize::MAX), whole);
    }

    #[test]
    fn memory_size_counts_value_slots() {
        let zeros = Value::from(vec![json!(0); 1000]);
        // Stopped at the cap (before a whole count is remembered, which is then returned).
        assert!(mem_size(&zeros, 100) <= 100 + 2 * std::mem::size_of::<Value>());
        assert!(mem_size(&zeros, usize::MAX) >= 1000 * std::mem::size_of::<Value>());
    }
}
