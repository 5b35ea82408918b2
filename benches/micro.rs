//! The pieces an execution is made of, timed one by one: Choice evaluation, path lookup,
//! payload templates, intrinsic functions and request decoding. A regression in
//! `benches/workloads.rs` can be traced to one of these.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use stepstream::json;
use stepstream::value::Value;

use stepstream::expr::choice::{self, Condition};
use stepstream::expr::intrinsic::Intrinsic;
use stepstream::expr::path::Path;
use stepstream::expr::template::Template;
use stepstream::expr::vars::Vars;
use stepstream::expr::Env;
use stepstream::pipeline::request::{self, RequestLimits};

// The stepstream binary's allocator, so the figures are the shipped engine's.
#[global_allocator]
static GLOBAL: stepstream::alloc::Mimalloc = stepstream::alloc::Mimalloc;

fn workload(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("benches/workloads")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The choice-heavy input as its Evaluate state sees it: Init has added `$.loop`.
fn choice_heavy_input(w: &Value, counter: u64, trace: &str) -> Value {
    let mut input = w["input"].clone();
    input["loop"] = json!({"counter": counter, "trace": trace});
    input
}

/// The top-level rules of one Choice state, compiled as the engine compiles them.
fn compile_rules(w: &Value, state: &str) -> Vec<Condition> {
    let rules = w["definition"]["States"][state]["Choices"]
        .as_array()
        .unwrap_or_else(|| panic!("{state} is not a Choice state"));
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut problems = vec![];
            let pointer = format!("/States/{state}/Choices/{i}");
            choice::compile(r, &pointer, true, &mut problems)
                .unwrap_or_else(|| panic!("{pointer} does not compile: {problems:?}"))
        })
        .collect()
}

/// What a Choice state does: the index of the first rule that holds.
fn first_match(rules: &[Condition], env: &Env) -> Option<usize> {
    rules
        .iter()
        .position(|r| r.eval(env).expect("the rules only read paths that exist"))
}

fn choice(c: &mut Criterion) {
    let w = workload("choice-heavy");
    let rules = compile_rules(&w, "Evaluate");
    let (context, vars) = (Value::Null, Vars::default());
    let mut group = c.benchmark_group("choice");
    // The counter decides which rule matches: 0 is the 9th (TallyLow), 5 the 10th
    // (TallyMid) and 9 the 8th (TallyHigh), so each case evaluates 8 to 10 rules.
    for (counter, expect) in [(0, 8), (5, 9), (9, 7)] {
        let input = choice_heavy_input(&w, counter, "");
        let env = Env {
            input: &input,
            context: &stepstream::expr::context::Context::from_value(context.clone()),
            vars: &vars,
        };
        assert_eq!(first_match(&rules, &env), Some(expect), "counter {counter}");
        group.bench_with_input(
            BenchmarkId::new("evaluate-10-rules/counter", counter),
            &env,
            |b, env| b.iter(|| first_match(&rules, env)),
        );
    }
    group.finish();
}

fn path(c: &mut Criterion) {
    let input = workload("order")["input"].clone();
    let (context, vars) = (Value::Null, Vars::default());
    let env = Env {
        input: &input,
        context: &stepstream::expr::context::Context::from_value(context.clone()),
        vars: &vars,
    };
    let mut group = c.benchmark_group("path");
    for text in ["$.items[4].price", "$.shipping.address.postalCode"] {
        let p = Path::parse(text).expect("a valid path");
        assert!(
            p.get(&env).is_some(),
            "{text} names nothing in the order input"
        );
        group.bench_with_input(BenchmarkId::new("get", text), &p, |b, p| {
            b.iter(|| p.get(&env))
        });
    }
    // The order workload's ReserveInventory reads this indefinite path: it builds an array.
    let skus = Path::parse("$.items[*].sku").expect("a valid path");
    group.bench_function("eval/$.items[*].sku", |b| b.iter(|| skus.eval(&env)));
    group.finish();
}

fn template(c: &mut Criterion) {
    let w = workload("order");
    let (context, vars) = (Value::Null, Vars::default());
    let env = Env {
        input: &w["input"],
        context: &stepstream::expr::context::Context::from_value(context.clone()),
        vars: &vars,
    };
    let mut group = c.benchmark_group("template/order");
    let states = w["definition"]["States"]
        .as_object()
        .expect("States is an object");
    for (name, state) in states {
        let Some(params) = state.get("Parameters") else {
            continue;
        };
        let mut problems = vec![];
        let t = Template::compile(params, &format!("/States/{name}/Parameters"), &mut problems);
        assert!(problems.is_empty(), "{name}: {problems:?}");
        t.eval(&env)
            .unwrap_or_else(|e| panic!("{name}: Parameters fail: {e:?}"));
        group.bench_function(name.as_str(), |b| b.iter(|| t.eval(&env)));
    }
    group.finish();
}

fn intrinsics(c: &mut Criterion) {
    let input = choice_heavy_input(&workload("choice-heavy"), 5, "LLLMM");
    let (context, vars) = (Value::Null, Vars::default());
    let env = Env {
        input: &input,
        context: &stepstream::expr::context::Context::from_value(context.clone()),
        vars: &vars,
    };
    let mut group = c.benchmark_group("intrinsic");
    for (label, text) in [
        ("Format", "States.Format('{}M', $.loop.trace)"),
        (
            "Format-2-args",
            "States.Format('Order {} for {}', $.order.id, $.customer.name)",
        ),
        ("MathAdd", "States.MathAdd($.loop.counter, 1)"),
        ("ArrayRange-1-100", "States.ArrayRange(1, 100, 1)"),
    ] {
        let f = Intrinsic::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        f.eval(&env)
            .unwrap_or_else(|e| panic!("{text} fails: {e:?}"));
        group.bench_function(label, |b| b.iter(|| f.eval(&env)));
    }
    group.finish();
}

/// Request decoding on a ~1 KB order envelope, as a Kafka record value arrives.
fn decode(c: &mut Criterion) {
    let input = workload("order")["input"].clone();
    let envelope = serde_json::to_vec(&json!({
        "stateMachine": "order",
        "name": "order-000123",
        "input": input,
    }))
    .expect("a Value always serializes");
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(envelope.len() as u64));
    group.bench_function("serde_json", |b| {
        b.iter(|| serde_json::from_slice::<Value>(&envelope).expect("valid JSON"))
    });
    // simd-json parses in place, so every parse needs its own copy of the record bytes;
    // the copy is timed because the pipeline pays for it too.
    group.bench_function("simd_json+copy", |b| {
        b.iter(|| {
            let mut buf = envelope.clone();
            simd_json::serde::from_slice::<Value>(&mut buf).expect("valid JSON")
        })
    });
    // The copy alone, outside the timing, to show how much of the above it is.
    group.bench_function("simd_json-no-copy", |b| {
        b.iter_batched_ref(
            || envelope.clone(),
            |buf| simd_json::serde::from_slice::<Value>(buf).expect("valid JSON"),
            BatchSize::SmallInput,
        )
    });
    // Into stepstream's value: through serde's visitor, and by the hand reader the
    // pipeline and the API use (same result, sizes counted on the way).
    group.bench_function("value-serde", |b| {
        b.iter(|| {
            serde_json::from_slice::<stepstream::value::Value>(&envelope).expect("valid JSON")
        })
    });
    group.bench_function("value-hand", |b| {
        b.iter(|| stepstream::value::from_slice(&envelope).expect("valid JSON"))
    });
    // The pipeline's whole decode: header, size and depth checks, the envelope read by
    // the hand reader.
    let limits = RequestLimits {
        max_bytes: 256 * 1024,
        max_depth: 64,
    };
    group.bench_function("pipeline-request-decode", |b| {
        b.iter(|| request::decode(Some(&envelope), None, None, None, limits).expect("valid"))
    });
    group.finish();
}

/// Each workload's request read into state data, against simd-json's structural pass over
/// the same bytes (a tape, no values built): how far the reader is from the floor of any
/// reader that looks at every byte, and what that floor leaves of a P1/P2 budget.
fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read");
    for name in [
        "order",
        "article-choice",
        "choice-heavy",
        "map-parallel",
        "retry-catch",
        // Nested objects and arrays, nearly all of which its paths read.
        "pass-reshape",
        // A JSON document carried in a string, as SQS and SNS deliver one.
        "etl-intrinsics",
    ] {
        let bytes = stepstream::value::to_vec(&workload(name)["input"]);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("{name}/value"), |b| {
            b.iter(|| stepstream::value::from_slice(&bytes).expect("valid JSON"))
        });
        group.bench_function(format!("{name}/simd_json-tape"), |b| {
            b.iter_batched_ref(
                || bytes.clone(),
                |buf| {
                    simd_json::to_tape(buf)
                        .map(|t| t.0.len())
                        .expect("valid JSON")
                },
                BatchSize::SmallInput,
            )
        });
        let value = stepstream::value::from_slice(&bytes).expect("valid JSON");
        group.bench_function(format!("{name}/write"), |b| {
            b.iter(|| stepstream::value::to_vec(&value))
        });
    }
    group.finish();
}

/// The JSON size of a string the engine built (so not known to need no escape), as the
/// payload check counts it: etl-intrinsics' JSON body carried in a string, all `\"`, and
/// a plain sentence of the same length.
fn size(c: &mut Criterion) {
    let mut group = c.benchmark_group("size");
    let body = workload("etl-intrinsics")["input"]["body"].clone();
    let body = body.as_str().expect("the body is a string");
    let plain = "x".repeat(body.len());
    for (name, text) in [("escaped-body", body), ("plain", plain.as_str())] {
        let v = Value::from(text.to_string());
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| stepstream::expr::size::json_size(std::hint::black_box(&v), usize::MAX))
        });
    }
    group.finish();
}

criterion_group!(benches, choice, path, template, intrinsics, decode, read, size);
criterion_main!(benches);
