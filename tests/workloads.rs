//! The benchmark workloads (five, and two of them again in JSONata), run through `stepstream exec` with their task specs,
//! must produce the output AWS would (checked by hand, kept in each workload file).

mod common;

use common::{exec, root, same_json, Scratch};
use serde_json::Value;

fn run_workload(name: &str) {
    let path = root()
        .join("benches/workloads")
        .join(format!("{name}.json"));
    let w: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("workload file"))
        .expect("workload JSON");
    let dir = Scratch::new(&format!("workload-{name}"));
    let def = dir.write("definition.json", w["definition"].to_string());
    let input = dir.write("input.json", w["input"].to_string());
    let tasks = dir.write("tasks.json", w["tasks"].to_string());
    let out = exec(&[
        "--definition",
        def.to_str().expect("utf-8 path"),
        "--input",
        input.to_str().expect("utf-8 path"),
        "--tasks",
        tasks.to_str().expect("utf-8 path"),
        "--clock",
        "virtual",
    ]);
    assert_eq!(out["status"], "SUCCEEDED", "{name}: {out}");
    assert!(
        same_json(&out["output"], &w["expected_output"]),
        "{name}: got {} expected {}",
        out["output"],
        w["expected_output"]
    );
}

#[test]
fn order_workload_matches_expected_output() {
    run_workload("order");
}

#[test]
fn article_choice_workload_matches_expected_output() {
    run_workload("article-choice");
}

#[test]
fn choice_heavy_workload_matches_expected_output() {
    run_workload("choice-heavy");
}

#[test]
fn map_parallel_workload_matches_expected_output() {
    run_workload("map-parallel");
}

#[test]
fn retry_catch_workload_matches_expected_output() {
    run_workload("retry-catch");
}

#[test]
fn order_jsonata_workload_matches_expected_output() {
    run_workload("order-jsonata");
}

#[test]
fn article_choice_jsonata_workload_matches_expected_output() {
    run_workload("article-choice-jsonata");
}
