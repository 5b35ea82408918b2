//! The README's examples: each `examples/*/` runs with its mocks and gives the output
//! kept beside it (what AWS Step Functions returns for the same definition and results).

mod common;

use common::{exec, root};
use serde_json::Value;

fn run_example(name: &str) {
    let dir = root().join("examples").join(name);
    let p = |f: &str| dir.join(f).to_str().expect("utf-8 path").to_string();
    let out = exec(&[
        "--definition",
        &p("definition.asl.json"),
        "--input",
        &p("input.json"),
        "--mocks",
        &p("mocks.json"),
        "--clock",
        "virtual",
    ]);
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected-output.json")).expect("expected output"),
    )
    .expect("expected output is JSON");
    assert_eq!(out["status"], "SUCCEEDED", "{name}: {out}");
    assert_eq!(out["output"], expected, "{name}");
}

#[test]
fn order_processing_example() {
    run_example("order-processing");
}

#[test]
fn article_status_choice_example() {
    run_example("article-status");
}

#[test]
fn parallel_with_map_example() {
    run_example("parallel");
}

#[test]
fn retry_then_catch_example() {
    run_example("retry-catch");
}
