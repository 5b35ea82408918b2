//! Property tests of the entry points that read outside data: the ASL parser and
//! validator (and running what it accepts), JSONPath, payload templates, intrinsic
//! functions, timestamps and request decoding.
//!
//! Every entry point gets arbitrary bytes or text and grammar-shaped input, and must
//! answer with a value or an error, never a panic. Where a round trip exists it is
//! checked too. The libFuzzer targets in `fuzz/` hammer the same entry points for longer
//! (`scripts/fuzz.sh`); these run in the normal `cargo test` and are sized to take a few
//! seconds each in a debug build (`STEPSTREAM_PROPTEST_SCALE=10` runs ten times as many).

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::Config;
use stepstream::json;
use stepstream::value::{Map, Value};

use stepstream::asl::parse::{parse_definition, parse_definition_str};
use stepstream::cli::exec::{run, ExecArgs};
use stepstream::exec::ClockMode;
use stepstream::expr::context::Context;
use stepstream::expr::intrinsic::{is_intrinsic, Intrinsic};
use stepstream::expr::path::Path;
use stepstream::expr::template::Template;
use stepstream::expr::timestamp::{self, Timestamp};
use stepstream::expr::vars::Vars;
use stepstream::expr::Env;
use stepstream::pipeline::request::{decode, RequestLimits};

const LIMITS: RequestLimits = RequestLimits {
    max_bytes: 256 * 1024,
    max_depth: 64,
};

/// `n` cases, times `STEPSTREAM_PROPTEST_SCALE` (default 1) for a deeper run by hand.
fn cases(n: u32) -> Config {
    let scale = std::env::var("STEPSTREAM_PROPTEST_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1);
    Config {
        cases: n.saturating_mul(scale),
        // A failure is shrunk, but not for longer than a normal test run.
        max_shrink_iters: 2048,
        ..Config::default()
    }
}

/// The document expressions are evaluated against: every JSON type, nesting, strings
/// holding JSON, numbers at the edges of their ranges.
fn document() -> Value {
    json!({
        "a": 1, "b": -2.5, "c": "text", "d": true, "e": null,
        "big": 9007199254740993u64, "neg": i64::MIN, "huge": 1.7e308,
        "s": "a,b;;c", "json": "{\"k\":[1,2]}", "b64": "aGVsbG8=",
        "arr": [1, 2, 3, "x", null, [4, 5], {"a": 6}],
        "objs": [{"id": 1, "price": 9.5}, {"id": 2, "price": 20}, {"id": 3}],
        "nest": {"a": {"b": {"c": [{"d": [1, {"e": "deep"}]}]}}},
        "emptyObj": {}, "emptyArr": []
    })
}

fn context() -> Context {
    Context::from_value(
        json!({"Execution": {"Id": "arn:x", "Name": "n", "Input": {}}, "State": {"Name": "S", "RetryCount": 0}}),
    )
}

fn vars() -> Vars {
    let mut v = Vars::default();
    v.set("x".into(), json!(42));
    v.set("list".into(), json!([1, "two", {"three": 3}]));
    v
}

// ---------- generators ----------

/// Any JSON value, a few levels deep, with keys that are sometimes `.$` keys.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::from),
        path_text().prop_map(Value::from),
        intrinsic_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map>())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z]{1,6}", "[a-zA-Z]{1,6}\\.\\$", "\\PC{0,6}"]
}

/// Plain JSON with no `.$` key anywhere: a constant template.
fn constant_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        path_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec(("[a-zA-Z .]{0,6}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map>())),
        ]
    })
}

/// A field name that needs no quoting in a path.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("arr".to_string()),
        Just("objs".to_string()),
        Just("nest".to_string()),
        "[a-z][a-zA-Z0-9_]{0,5}",
    ]
}

/// One filter expression, built from the grammar `[?( ... )]` accepts.
fn filter() -> impl Strategy<Value = String> {
    let operand = prop_oneof![
        name().prop_map(|n| format!("@.{n}")),
        Just("@".to_string()),
        Just("$.a".to_string()),
        any::<i32>().prop_map(|i| i.to_string()),
        "[a-z]{0,4}".prop_map(|s| format!("'{s}'")),
        Just("true".to_string()),
        Just("null".to_string()),
    ];
    let op = prop_oneof![
        Just("=="),
        Just("!="),
        Just("<"),
        Just("<="),
        Just(">"),
        Just(">="),
    ];
    let cmp = (operand.clone(), op, operand.clone()).prop_map(|(a, o, b)| format!("{a} {o} {b}"));
    let atom = prop_oneof![cmp, operand];
    atom.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} || {b}")),
            inner.clone().prop_map(|a| format!("!({a})")),
        ]
    })
}

/// One path step from the JSONPath grammar, valid or slightly off.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => name().prop_map(|n| format!(".{n}")),
        2 => (-3i64..8).prop_map(|i| format!("[{i}]")),
        1 => "[a-z .]{0,5}".prop_map(|n| format!("['{n}']")),
        1 => Just("[*]".to_string()),
        1 => Just(".*".to_string()),
        1 => (prop::option::of(-4i64..6), prop::option::of(-4i64..6), prop::option::of(-3i64..4))
            .prop_map(|(a, b, c)| {
                let f = |x: Option<i64>| x.map(|v| v.to_string()).unwrap_or_default();
                match c {
                    Some(c) => format!("[{}:{}:{}]", f(a), f(b), c),
                    None => format!("[{}:{}]", f(a), f(b)),
                }
            }),
        1 => prop::collection::vec(-2i64..5, 1..4)
            .prop_map(|v| format!("[{}]", v.iter().map(i64::to_string).collect::<Vec<_>>().join(","))),
        1 => (name(), name()).prop_map(|(a, b)| format!("['{a}','{b}']")),
        1 => name().prop_map(|n| format!("..{n}")),
        1 => Just("..*".to_string()),
        1 => filter().prop_map(|f| format!("[?({f})]")),
        1 => Just(".length()".to_string()),
        1 => "[\\[\\]().'*?@:,0-9a-z -]{1,4}",
    ]
}

/// A path from the grammar: a root and up to six steps.
fn path_text() -> impl Strategy<Value = String> {
    let root = prop_oneof![
        3 => Just("$"),
        1 => Just("$$"),
        1 => Just("$x"),
        1 => Just("$list"),
    ];
    (root, prop::collection::vec(segment(), 0..6)).prop_map(|(r, s)| format!("{r}{}", s.concat()))
}

const FUNCS: &[&str] = &[
    "Format",
    "StringToJson",
    "JsonToString",
    "Array",
    "ArrayPartition",
    "ArrayContains",
    "ArrayRange",
    "ArrayGetItem",
    "ArrayLength",
    "ArrayUnique",
    "Base64Encode",
    "Base64Decode",
    "Hash",
    "JsonMerge",
    "MathRandom",
    "MathAdd",
    "StringSplit",
    "UUID",
];

/// An intrinsic argument of any type: literal string (with escapes and `{}`), number,
/// boolean, null, a path, or a nested call.
fn intrinsic_arg() -> impl Strategy<Value = String> {
    let literal = prop_oneof![
        "[a-z ,;{}]{0,8}".prop_map(|s| format!("'{s}'")),
        Just("'\\'\\{\\}\\\\'".to_string()),
        Just("'{\"k\": [1, 2]}'".to_string()),
        Just("'SHA-256'".to_string()),
        Just("'aGVsbG8='".to_string()),
        any::<i32>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        Just("1e400".to_string()),
        Just("-0".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("null".to_string()),
        path_text(),
        Just("$.arr".to_string()),
        Just("$.json".to_string()),
        Just("$.b64".to_string()),
    ];
    literal.prop_recursive(3, 12, 4, |inner| {
        (
            prop::sample::select(FUNCS),
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(f, args)| format!("States.{f}({})", args.join(", ")))
    })
}

/// A call to an intrinsic function with 0 to 4 arguments of random types.
fn intrinsic_text() -> impl Strategy<Value = String> {
    (
        prop::sample::select(FUNCS),
        prop::collection::vec(intrinsic_arg(), 0..4),
    )
        .prop_map(|(f, args)| format!("States.{f}({})", args.join(", ")))
}

/// A date-time laid out as ASL writes it, with every field somewhat past its range.
fn timestamp_text() -> impl Strategy<Value = String> {
    (
        (0u32..10000, 0u32..14, 0u32..33),
        (0u32..25, 0u32..61, 0u32..61),
        prop::option::of("[0-9]{1,10}"),
        prop_oneof![
            Just("Z".to_string()),
            (any::<bool>(), 0u32..20, 0u32..61)
                .prop_map(|(neg, h, m)| format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' })),
        ],
    )
        .prop_map(|((y, mo, d), (h, mi, s), frac, off)| {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{off}")
        })
}

const FIELDS: &[&str] = &[
    "Next",
    "End",
    "Comment",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Result",
    "Assign",
    "Resource",
    "TimeoutSeconds",
    "HeartbeatSeconds",
    "Retry",
    "Catch",
    "Choices",
    "Default",
    "Seconds",
    "SecondsPath",
    "Timestamp",
    "TimestampPath",
    "Error",
    "Cause",
    "ErrorPath",
    "Branches",
    "ItemsPath",
    "ItemSelector",
    "ItemProcessor",
    "Iterator",
    "MaxConcurrency",
    "QueryLanguage",
    "Output",
    "Arguments",
];

/// A value a state field might hold: a state name, a path, a number, a template, a
/// list of rules or retriers, a nested machine.
fn field_value(names: Vec<String>) -> impl Strategy<Value = Value> {
    let state_name = prop::sample::select(names);
    let rule = (
        path_text(),
        prop::sample::select(
            &[
                "StringEquals",
                "NumericGreaterThan",
                "BooleanEquals",
                "IsPresent",
                "TimestampLessThan",
                "StringMatches",
                "NumericEqualsPath",
                "IsNull",
            ][..],
        ),
        json_value(),
        state_name.clone(),
    )
        .prop_map(|(v, op, x, next)| json!({"Variable": v, op: x, "Next": next}));
    let retrier = (
        prop::collection::vec(prop::sample::select(&["States.ALL", "States.TaskFailed", "E"][..]), 0..3),
        json_value(),
        json_value(),
    )
        .prop_map(|(errs, max, rate)| {
            json!({"ErrorEquals": errs, "MaxAttempts": max, "BackoffRate": rate, "IntervalSeconds": 0})
        });
    let catcher = (state_name.clone(), path_text()).prop_map(
        |(next, rp)| json!({"ErrorEquals": ["States.ALL"], "Next": next, "ResultPath": rp}),
    );
    let nested = state_name.clone().prop_map(
        |n| json!({"StartAt": "In", "States": {"In": {"Type": "Pass", "Result": {"n": n}, "End": true}}}),
    );
    prop_oneof![
        3 => state_name.prop_map(Value::from),
        3 => path_text().prop_map(Value::from),
        2 => json_value(),
        1 => timestamp_text().prop_map(Value::from),
        1 => (0u64..3).prop_map(Value::from),
        1 => Just(Value::Bool(true)),
        1 => prop::collection::vec(rule, 0..3).prop_map(Value::from),
        1 => prop::collection::vec(retrier, 0..2).prop_map(Value::from),
        1 => prop::collection::vec(catcher, 0..2).prop_map(Value::from),
        1 => prop::collection::vec(nested.clone(), 0..2).prop_map(Value::from),
        1 => nested,
    ]
}

/// The body of one state of type `ty` whose successor is `next` (`None`: the last state),
/// with what the type requires filled in from the generators.
fn state_body(ty: &'static str, next: Option<String>) -> BoxedStrategy<Value> {
    let flow = move |mut m: Map| {
        match &next {
            Some(n) => m.insert("Next".into(), json!(n)),
            None => m.insert("End".into(), json!(true)),
        };
        m
    };
    let branch = (
        prop::sample::select(&["Pass", "Succeed", "Fail"][..]),
        json_value(),
    )
        .prop_map(|(t, r)| {
            let mut s = json!({"Type": t});
            if t == "Pass" {
                s["Result"] = r;
                s["End"] = json!(true);
            }
            json!({"StartAt": "In", "States": {"In": s}})
        })
        .boxed();
    let template = prop::collection::vec(
        (
            "[a-z]{1,4}",
            prop_oneof![
                path_text().prop_map(|p| (true, p)),
                intrinsic_text().prop_map(|c| (true, c)),
                "[a-z]{0,4}".prop_map(|c| (false, c)),
            ],
        ),
        0..4,
    )
    .prop_map(|kv| {
        Value::Object(
            kv.into_iter()
                .map(|(k, (dynamic, v))| (if dynamic { format!("{k}.$") } else { k }, json!(v)))
                .collect(),
        )
    })
    .boxed();
    let result_path = prop_oneof![
        Just(Value::Null),
        Just(json!("$")),
        name().prop_map(|n| json!(format!("$.{n}"))),
        path_text().prop_map(Value::from),
    ];
    match ty {
        "Pass" => (prop::option::of(json_value()), prop::option::of(template), prop::option::of(result_path))
            .prop_map(move |(r, p, rp)| {
                let mut m = Map::new();
                m.insert("Type".into(), json!("Pass"));
                r.map(|r| m.insert("Result".into(), r));
                p.map(|p| m.insert("Parameters".into(), p));
                rp.map(|rp| m.insert("ResultPath".into(), rp));
                Value::Object(flow(m))
            })
            .boxed(),
        "Task" => (prop::option::of(template.clone()), prop::option::of(result_path), prop::option::of(template))
            .prop_map(move |(p, rp, sel)| {
                let mut m = Map::new();
                m.insert("Type".into(), json!("Task"));
                m.insert("Resource".into(), json!("arn:aws:lambda:us-east-1:123456789012:function:F"));
                p.map(|p| m.insert("Parameters".into(), p));
                rp.map(|rp| m.insert("ResultPath".into(), rp));
                sel.map(|s| m.insert("ResultSelector".into(), s));
                m.insert("Retry".into(), json!([{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 1}]));
                Value::Object(flow(m))
            })
            .boxed(),
        "Wait" => prop_oneof![
            (0u64..5).prop_map(|n| ("Seconds", json!(n))),
            timestamp_text().prop_map(|t| ("Timestamp", json!(t))),
            path_text().prop_map(|p| ("SecondsPath", json!(p))),
            path_text().prop_map(|p| ("TimestampPath", json!(p))),
        ]
        .prop_map(move |(k, v)| {
            let mut m = Map::new();
            m.insert("Type".into(), json!("Wait"));
            m.insert(k.into(), v);
            Value::Object(flow(m))
        })
        .boxed(),
        "Parallel" => prop::collection::vec(branch.clone(), 1..3)
            .prop_map(move |b| {
                let mut m = Map::new();
                m.insert("Type".into(), json!("Parallel"));
                m.insert("Branches".into(), Value::from(b));
                Value::Object(flow(m))
            })
            .boxed(),
        "Map" => (branch, prop_oneof![Just("$.arr".to_string()), Just("$.objs".to_string()), path_text()])
            .prop_map(move |(b, items)| {
                let mut m = Map::new();
                m.insert("Type".into(), json!("Map"));
                m.insert("ItemsPath".into(), json!(items));
                m.insert("ItemProcessor".into(), b);
                Value::Object(flow(m))
            })
            .boxed(),
        _ => Just(Value::Object(flow(Map::from_iter([("Type".to_string(), json!(ty))])))).boxed(),
    }
}

/// A Choice state whose rules and Default lead to `targets` (later states only, so
/// no generated machine loops).
fn choice_body(targets: Vec<String>) -> BoxedStrategy<Value> {
    let target = prop::sample::select(targets);
    let op = prop::sample::select(
        &[
            "StringEquals",
            "NumericGreaterThan",
            "NumericLessThanEquals",
            "BooleanEquals",
            "IsPresent",
            "IsNull",
            "TimestampLessThan",
            "StringMatches",
            "NumericEqualsPath",
        ][..],
    );
    let operand = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (-5i64..5).prop_map(Value::from),
        "[a-z*]{0,4}".prop_map(Value::from),
        timestamp_text().prop_map(Value::from),
        path_text().prop_map(Value::from),
    ];
    let rule = (path_text(), op, operand, target.clone())
        .prop_map(|(v, op, x, next)| json!({"Variable": v, op: x, "Next": next}))
        .boxed();
    let rule = prop_oneof![
        3 => rule.clone(),
        1 => (prop::collection::vec(rule.clone(), 1..3), target.clone())
            .prop_map(|(rs, next)| {
                let inner: Vec<Value> = rs.into_iter().map(|mut r| {
                    r.as_object_mut().map(|m| m.remove("Next"));
                    r
                }).collect();
                json!({"And": inner, "Next": next})
            }),
    ];
    (prop::collection::vec(rule, 1..4), target)
        .prop_map(
            |(rules, default)| json!({"Type": "Choice", "Choices": rules, "Default": default}),
        )
        .boxed()
}

/// A definition that looks like ASL: a chain of 1 to 4 states of random types, each
/// with what its type requires drawn from the generators, and sometimes a few random
/// fields with random values added (which mostly makes it invalid).
fn asl_definition() -> impl Strategy<Value = Value> {
    const KINDS: &[&str] = &[
        "Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map",
    ];
    prop::collection::vec(prop::sample::select(KINDS), 1..5).prop_flat_map(|kinds| {
        let n = kinds.len();
        let names: Vec<String> = (0..n).map(|i| format!("S{i}")).collect();
        let states: Vec<BoxedStrategy<Value>> = kinds
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                let next = names.get(i + 1).cloned();
                match (k, next) {
                    ("Choice", Some(_)) => choice_body(names[i + 1..].to_vec()),
                    ("Choice", None) => state_body("Succeed", None),
                    (k, next) => state_body(k, next),
                }
            })
            .collect();
        let all_names = names
            .iter()
            .cloned()
            .chain(["Missing".to_string()])
            .collect::<Vec<_>>();
        let noise = prop::collection::vec(
            (0..n, prop::sample::select(FIELDS), field_value(all_names)),
            0..3,
        );
        (
            states,
            noise,
            prop::bool::weighted(0.5),
            prop::option::of(json_value()),
        )
            .prop_map(move |(mut states, noise, noisy, timeout)| {
                if noisy {
                    for (i, k, v) in noise {
                        if let Some(m) = states[i].as_object_mut() {
                            m.insert(k.into(), v);
                        }
                    }
                }
                let all: Map = names.iter().cloned().zip(states).collect();
                let mut def = json!({"StartAt": "S0", "States": all});
                if let Some(t) = timeout.filter(|_| noisy) {
                    def["TimeoutSeconds"] = t;
                }
                def
            })
    })
}

// ---------- properties ----------

fn run_args(def: &Value) -> ExecArgs {
    // Every Task resource answers with its input, so states after a Task run too.
    let mut tasks = Map::new();
    fn walk(v: &Value, out: &mut Map) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if let ("Resource", Value::String(r)) = (k.as_str(), x) {
                        out.insert(r.clone(), json!("identity"));
                    }
                    walk(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(def, &mut tasks);
    ExecArgs {
        tasks: Some(Value::Object(tasks).to_serde()),
        clock: ClockMode::Virtual,
        max_duration: Some(Duration::from_millis(200)),
        ..ExecArgs::default()
    }
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn asl_parser_answers_any_text(text in "\\PC{0,200}") {
        if let Err(problems) = parse_definition_str(&text) {
            prop_assert!(!problems.is_empty());
        }
    }

    #[test]
    fn asl_parser_answers_any_bytes_as_text(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_definition_str(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn jsonpath_answers_any_text(text in "\\PC{0,40}") {
        if let Ok(p) = Path::parse(&text) {
            let (doc, ctx, vars) = (document(), context(), vars());
            let _ = p.eval(&Env { input: &doc, context: &ctx, vars: &vars });
        }
    }

    #[test]
    fn intrinsic_parser_answers_any_text(text in "States\\.\\PC{0,40}") {
        let _ = is_intrinsic(&text);
        if let Ok(f) = Intrinsic::parse(&text) {
            let (doc, ctx, vars) = (document(), context(), vars());
            let _ = f.eval(&Env { input: &doc, context: &ctx, vars: &vars });
        }
    }

    #[test]
    fn timestamp_parser_answers_any_text(text in "[0-9T:.Z+-]{0,40}|\\PC{0,40}") {
        if let Some(t) = timestamp::parse(&text) {
            prop_assert_eq!(Timestamp::from_utc(t.to_utc()), t);
        }
    }

    #[test]
    fn request_decoder_answers_any_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        flags in 0u8..16,
    ) {
        let r = decode(
            (flags & 8 == 0).then_some(&bytes[..]),
            (flags & 1 != 0).then_some("m"),
            (flags & 2 != 0).then_some(b"h".as_slice()),
            (flags & 4 != 0).then_some(b"n".as_slice()),
            LIMITS,
        );
        if let Err(rej) = r {
            prop_assert!(rej.error.starts_with("stepstream.") || rej.error.starts_with("States."));
            prop_assert!(!rej.cause.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn asl_like_definitions_are_parsed_or_rejected_with_pointers(def in asl_definition()) {
        match parse_definition(&def) {
            Ok(_) => {}
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                for p in &problems {
                    prop_assert!(p.pointer.is_empty() || p.pointer.starts_with('/'), "{}", p);
                }
            }
        }
    }

    #[test]
    fn grammar_paths_parse_or_fail_and_evaluate(text in path_text()) {
        if let Ok(p) = Path::parse(&text) {
            prop_assert_eq!(p.text(), text.as_str());
            let (doc, ctx, vars) = (document(), context(), vars());
            let env = Env { input: &doc, context: &ctx, vars: &vars };
            // A borrowed lookup and an evaluation of the same path agree.
            if let Some(v) = p.get(&env) {
                let evaluated = p.eval(&env);
                prop_assert_eq!(evaluated.as_deref(), Some(v));
            }
            if p.is_reference() {
                let mut target = doc.clone();
                let _ = p.set(&mut target, json!("w"));
            }
        }
    }

    #[test]
    fn random_intrinsic_calls_parse_or_fail_and_evaluate(text in intrinsic_text()) {
        prop_assert!(is_intrinsic(&text));
        if let Ok(f) = Intrinsic::parse(&text) {
            let (doc, ctx, vars) = (document(), context(), vars());
            if let Err(e) = f.eval(&Env { input: &doc, context: &ctx, vars: &vars }) {
                let name = e.error.unwrap_or_default();
                prop_assert!(name.starts_with("States."), "{}", name);
            }
        }
    }

    #[test]
    fn random_templates_compile_or_fail_and_evaluate(t in json_value()) {
        let mut problems = Vec::new();
        let template = Template::compile(&t, "/Parameters", &mut problems);
        if problems.is_empty() {
            let (doc, ctx, vars) = (document(), context(), vars());
            let _ = template.eval(&Env { input: &doc, context: &ctx, vars: &vars });
        } else {
            prop_assert!(problems.iter().all(|p| p.pointer.starts_with("/Parameters")));
        }
    }

    #[test]
    fn timestamps_agree_with_rfc3339(text in timestamp_text()) {
        // chrono accepts leap seconds, which java.time (and so AWS) does not.
        let chrono = chrono::DateTime::parse_from_rfc3339(&text)
            .ok()
            .filter(|_| !text[17..19].starts_with("60"));
        let ours = timestamp::parse(&text);
        let fraction_digits = text[19..].bytes().skip(1).take_while(u8::is_ascii_digit).count();
        let offset_ok = text.ends_with('Z') || {
            let o = &text[text.len() - 5..];
            let (h, m): (u32, u32) = (o[..2].parse().unwrap_or(99), o[3..].parse().unwrap_or(99));
            m < 60 && h * 60 + m <= 18 * 60
        };
        if fraction_digits <= 9 && offset_ok {
            prop_assert_eq!(ours.is_some(), chrono.is_some(), "{}", text);
            if let (Some(t), Some(c)) = (ours, chrono) {
                prop_assert_eq!(t, Timestamp::from_utc(c.to_utc()), "{}", text);
            }
        } else {
            prop_assert!(ours.is_none(), "{} accepted", text);
        }
    }
}

proptest! {
    #![proptest_config(cases(160))]

    #[test]
    fn asl_like_definitions_that_parse_run_to_an_end(def in asl_definition(), input in json_value()) {
        let out = run(&def.to_serde(), input.to_serde(), &run_args(&def));
        let status = out["status"].as_str().unwrap_or_default().to_string();
        prop_assert!(
            ["SUCCEEDED", "FAILED", "TIMED_OUT", "INVALID_DEFINITION"].contains(&status.as_str()),
            "{}", out
        );
    }
}

proptest! {
    #![proptest_config(cases(384))]

    /// A definite path of names and indexes reads back the value planted at its end.
    #[test]
    fn a_definite_path_reads_the_value_planted_there(
        steps in prop::collection::vec(prop_oneof![
            "[a-zA-Z_][a-zA-Z0-9_]{0,6}".prop_map(Ok),
            (0usize..4).prop_map(Err),
        ], 0..6),
        planted in constant_json(),
    ) {
        let mut doc = planted.clone();
        let mut text = String::new();
        for step in steps.iter().rev() {
            doc = match step {
                Ok(name) => json!({ name.clone(): doc }),
                Err(i) => {
                    let mut a = vec![Value::Null; *i];
                    a.push(doc);
                    Value::from(a)
                }
            };
        }
        for step in &steps {
            match step {
                Ok(name) => text.push_str(&format!(".{name}")),
                Err(i) => text.push_str(&format!("[{i}]")),
            }
        }
        let path = Path::parse(&format!("${text}")).expect("names and indexes form a path");
        let (ctx, vars) = (context(), vars());
        let env = Env { input: &doc, context: &ctx, vars: &vars };
        prop_assert_eq!(path.get(&env), Some(&planted));
        // Writing it into an empty object and reading it back gives it again, for names only.
        if steps.iter().all(Result::is_ok) {
            let mut target = json!({});
            path.set(&mut target, planted.clone()).expect("objects are created along the way");
            prop_assert_eq!(path.get(&Env { input: &target, ..env }), Some(&planted));
        }
    }

    /// A template with no `.$` key is a constant: it evaluates to itself.
    #[test]
    fn a_template_with_no_paths_evaluates_to_itself(t in constant_json()) {
        let mut problems = Vec::new();
        let template = Template::compile(&t, "", &mut problems);
        prop_assert!(problems.is_empty(), "{:?}", problems);
        let (doc, ctx, vars) = (document(), context(), vars());
        let out = template.eval(&Env { input: &doc, context: &ctx, vars: &vars });
        prop_assert_eq!(out.ok(), Some(t));
    }

    /// `States.StringToJson(States.JsonToString(x))` gives `x` back.
    #[test]
    fn json_to_string_and_back_is_the_identity(v in constant_json()) {
        let f = Intrinsic::parse("States.StringToJson(States.JsonToString($.v))")
            .expect("a valid call");
        let (doc, ctx, vars) = (json!({"v": v.clone()}), context(), vars());
        let out = f.eval(&Env { input: &doc, context: &ctx, vars: &vars });
        prop_assert_eq!(out.ok(), Some(v));
    }

    /// An envelope written as JSON decodes to the machine, name and input it holds.
    #[test]
    fn an_encoded_envelope_decodes_to_what_it_holds(
        // Names as AWS allows them: no whitespace, control or reserved characters.
        machine in "[\\p{L}\\p{N}_.-]{1,20}",
        name in prop::option::of("[\\p{L}\\p{N}_.-]{1,80}"),
        input in constant_json(),
    ) {
        let mut env = json!({"stateMachine": machine, "input": input});
        if let Some(n) = &name {
            env["name"] = json!(n);
        }
        let bytes = serde_json::to_vec(&env).expect("JSON serializes");
        let r = decode(Some(&bytes), None, None, None, LIMITS);
        let Ok(r) = r else {
            return Err(TestCaseError::fail(format!("{r:?} for {env}")));
        };
        prop_assert_eq!(&*r.state_machine, machine.as_str());
        prop_assert_eq!(r.name.as_deref(), name.as_deref());
        prop_assert_eq!(&r.input, &input);
    }
}

/// The structured generators must reach the accepting side of each parser often enough,
/// or the properties above would only ever test error paths.
#[test]
fn generators_reach_valid_inputs() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    fn share<S: Strategy>(s: S, n: usize, ok: impl Fn(&S::Value) -> bool) -> f64 {
        let mut runner = TestRunner::deterministic();
        let hits = (0..n)
            .filter(|_| ok(&s.new_tree(&mut runner).expect("a value").current()))
            .count();
        hits as f64 / n as f64
    }
    let paths = share(path_text(), 200, |t| Path::parse(t).is_ok());
    let calls = share(intrinsic_text(), 200, |t| Intrinsic::parse(t).is_ok());
    let stamps = share(timestamp_text(), 200, |t| timestamp::parse(t).is_some());
    let defs = share(asl_definition(), 200, |d| parse_definition(d).is_ok());
    let templates = share(json_value(), 200, |t| {
        let mut problems = Vec::new();
        Template::compile(t, "", &mut problems);
        problems.is_empty()
    });
    eprintln!(
        "accepted: paths {paths:.2}, intrinsic calls {calls:.2}, timestamps {stamps:.2}, \
         definitions {defs:.2}, templates {templates:.2}"
    );
    for (what, share) in [
        ("paths", paths),
        ("intrinsic calls", calls),
        ("timestamps", stamps),
        ("definitions", defs),
        ("templates", templates),
    ] {
        assert!(
            share >= 0.05,
            "only {share:.2} of generated {what} are valid"
        );
    }
}
