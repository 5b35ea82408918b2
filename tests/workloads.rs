//! The benchmark workloads (every file in benches/workloads/: the five shared ones, two of
//! them again in JSONata, and any added there), run through `stepstream exec` with their
//! task specs, must produce the output AWS would (checked by hand, kept in each file).

mod common;

use common::{exec, root, same_json, Scratch};
use serde_json::Value;

fn run_workload(dir: &std::path::Path, name: &str) {
    let path = dir.join(format!("{name}.json"));
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

/// Every workload file in `benches/workloads/` (or in `STEPSTREAM_WORKLOADS_DIR`, the
/// folder the benches and the peers' harnesses also read): a file added there is checked
/// without a test of its own.
#[test]
fn every_workload_matches_its_expected_output() {
    let dir = std::env::var_os("STEPSTREAM_WORKLOADS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("benches/workloads"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "json").then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    assert!(
        names.len() >= 7,
        "expected the seven shared workloads, found {names:?}"
    );
    for name in names {
        run_workload(&dir, &name);
    }
}
