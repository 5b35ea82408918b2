//! The value module against serde_json: same bytes out, same trees in.

use super::*;

/// A small deterministic generator for generated test cases (xorshift64): no dependency,
/// the same cases every run.
pub(super) fn xorshift() -> impl FnMut() -> u64 {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

const SAMPLES: &[&str] = &[
    r#"{"b":1,"a":[1,-2,3.5,61.5,1e21,1e-7,0.1,18446744073709551615,-9223372036854775808],"c":{"x":null,"y":true,"z":false}}"#,
    r#""esc \" \\ \n \t \r \b \f \u0001 \u001f é 日本 🎉 \ud83c\udf89""#,
    r#"{"dup":1,"other":2,"dup":3}"#,
    r#"[[],{},[[[]]],{"":{"":""}}]"#,
    r#"[1.0,2.50,-0.0,0,-0,1E400]"#,
    r#"123456789012345678901234567890"#,
    r#"{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k3":"again"}"#,
];

#[test]
fn writes_the_same_bytes_as_serde_json() {
    for s in SAMPLES {
        let theirs: Result<serde_json::Value, _> = serde_json::from_str(s);
        let ours = from_str(s);
        match (theirs, ours) {
            (Ok(t), Ok(o)) => {
                assert_eq!(to_vec(&o), serde_json::to_vec(&t).unwrap(), "{s}");
                assert_eq!(o.to_string(), t.to_string());
                assert_eq!(format!("{o:#}"), format!("{t:#}"));
                assert_eq!(Value::from(&t), o);
                assert_eq!(serde_json::Value::from(&o), t);
            }
            (Err(t), Err(o)) => assert_eq!(t.to_string(), o.to_string(), "{s}"),
            (t, o) => panic!("{s}: serde_json {t:?}, ours {o:?}"),
        }
    }
}

#[test]
fn rejects_what_serde_json_rejects_with_the_same_message() {
    let deep = "[".repeat(200) + &"]".repeat(200);
    for s in [
        "{",
        "[1,]",
        "{\"a\" 1}",
        "nul",
        "\"\\x\"",
        "01",
        "\"\u{1}\"",
        &deep,
        "1 2",
        "",
    ] {
        let theirs = serde_json::from_str::<serde_json::Value>(s).unwrap_err();
        let ours = from_str(s).unwrap_err();
        assert_eq!(theirs.to_string(), ours.to_string(), "{s}");
    }
}

#[test]
fn duplicate_keys_keep_the_first_position_and_the_last_value() {
    let v = from_str(r#"{"a":1,"b":2,"a":3}"#).unwrap();
    assert_eq!(v.to_string(), r#"{"a":3,"b":2}"#);
}

#[test]
fn equality_follows_serde_json() {
    let pairs = [
        ("1", "1.0"),
        ("1", "1"),
        ("-1", "-1"),
        (r#"{"a":1,"b":2}"#, r#"{"b":2,"a":1}"#),
        ("[1,2]", "[2,1]"),
        ("null", "null"),
        (r#""x""#, r#""x""#),
    ];
    for (a, b) in pairs {
        let theirs = serde_json::from_str::<serde_json::Value>(a).unwrap()
            == serde_json::from_str::<serde_json::Value>(b).unwrap();
        assert_eq!(
            from_str(a).unwrap() == from_str(b).unwrap(),
            theirs,
            "{a} {b}"
        );
    }
}

#[test]
fn accessors_and_indexing_match_serde_json() {
    let text = r#"{"s":"x","n":-3,"u":7,"f":2.5,"b":true,"a":[10,20],"o":{"k":"v"},"z":null}"#;
    let t: serde_json::Value = serde_json::from_str(text).unwrap();
    let o = from_str(text).unwrap();
    for k in ["s", "n", "u", "f", "b", "a", "o", "z", "missing"] {
        assert_eq!(o[k].as_str(), t[k].as_str());
        assert_eq!(o[k].as_i64(), t[k].as_i64());
        assert_eq!(o[k].as_u64(), t[k].as_u64());
        assert_eq!(o[k].as_f64(), t[k].as_f64());
        assert_eq!(o[k].as_bool(), t[k].as_bool());
        assert_eq!(o[k].is_null(), t[k].is_null());
        assert_eq!(o.get(k).is_some(), t.get(k).is_some());
    }
    assert_eq!(o["a"][1], Value::from(20));
    assert!(o["a"][5].is_null());
    assert_eq!(o.pointer("/o/k"), Some(&Value::from("v")));
    assert_eq!(o.pointer("/a/0"), Some(&Value::from(10)));
}

#[test]
fn a_nested_write_copies_only_the_spine() {
    let original = from_str(r#"{"a":{"b":{"c":1}},"big":[1,2,3]}"#).unwrap();
    let mut copy = original.clone();
    copy["a"]["b"]["d"] = Value::from(2);
    assert_eq!(original.to_string(), r#"{"a":{"b":{"c":1}},"big":[1,2,3]}"#);
    assert_eq!(
        copy.to_string(),
        r#"{"a":{"b":{"c":1,"d":2}},"big":[1,2,3]}"#
    );
    // The untouched subtree is still the same allocation.
    assert!(original["big"].ptr_eq(&copy["big"]));
    assert!(!original["a"].ptr_eq(&copy["a"]));
}

#[test]
fn a_value_is_small() {
    assert!(std::mem::size_of::<Value>() <= 32);
}

#[test]
fn json_macro_builds_the_same_tree() {
    let v = crate::json!({"a": [1, "x", null], "b": {"c": 2.5}});
    assert_eq!(v.to_string(), r#"{"a":[1,"x",null],"b":{"c":2.5}}"#);
}

/// Short plain strings are written by copying their whole inline buffer and keeping the
/// length: every length up to and past the inline limit, as key and as value, into an
/// empty buffer and into one sized for the text exactly.
#[test]
fn short_strings_are_written_exactly_at_every_length() {
    for n in 0..=super::str::INLINE + 2 {
        let s = "k".repeat(n);
        let text = format!(r#"{{"{s}":"{s}","x":["{s}",{{"{s}":1}}]}}"#);
        let v = from_str(&text).unwrap();
        assert_eq!(to_vec(&v), text.as_bytes(), "{n}");
        let mut out = Vec::new();
        to_writer(&mut out, &v);
        assert_eq!(out, text.as_bytes(), "{n}");
        let mut sized = Vec::with_capacity(text.len());
        to_writer(&mut sized, &v);
        assert_eq!(sized, text.as_bytes(), "{n}");
    }
}

#[test]
fn a_clone_is_equal_and_outlives_its_original() {
    // `Value::clone` and `Str::clone` copy bytes and raise counts by hand: every kind of
    // part (inline and shared strings, arrays, objects, scalars) must come out equal and
    // stay readable once the original and many other clones are gone.
    let long = "a string longer than the twenty-two inline bytes";
    for text in SAMPLES.iter().copied().chain([
        "\"short\"",
        "\"a string longer than the twenty-two inline bytes\"",
        "-3",
        "null",
    ]) {
        let Ok(original) = from_str(text) else {
            continue;
        };
        let written = to_string(&original);
        let copy = original.clone();
        let others: Vec<Value> = (0..100).map(|_| copy.clone()).collect();
        drop(original);
        drop(others);
        assert_eq!(to_string(&copy), written, "{text}");
    }
    let key = Str::from(long);
    let keys: Vec<Str> = (0..100).map(|_| key.clone()).collect();
    drop(key);
    assert!(keys.iter().all(|k| k.as_str() == long));
}
