//! `stepstream graph` as a user runs it: a picture on stdout, problems on stderr.

use std::process::Command;

fn graph(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stepstream"))
        .arg("graph")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_shipped_state_machine_draws_in_both_formats() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/state-machines");
    let mut drawn = 0;
    for entry in std::fs::read_dir(&dir).expect("config/state-machines exists") {
        let path = entry.expect("readable").path();
        if !path.to_string_lossy().ends_with(".asl.json") {
            continue;
        }
        let file = path.to_string_lossy().into_owned();
        let (code, mermaid, err) = graph(&[&file]);
        assert_eq!(code, 0, "{file}: {err}");
        assert!(mermaid.starts_with("flowchart TD\n"), "{file}: {mermaid}");
        let (code, dot, err) = graph(&["--format", "dot", &file]);
        assert_eq!(code, 0, "{file}: {err}");
        assert!(dot.starts_with("digraph stepstream {"), "{file}: {dot}");
        drawn += 1;
    }
    assert!(
        drawn >= 5,
        "only {drawn} machines found in {}",
        dir.display()
    );
}

#[test]
fn retry_catch_example_shows_its_catch_edge_dashed() {
    let (code, dot, err) = graph(&[
        "--format",
        "dot",
        "examples/retry-catch/definition.asl.json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        dot.contains("[label=\"States.ALL\", style=dashed]"),
        "{dot}"
    );
}

#[test]
fn a_broken_definition_is_refused_with_its_problems() {
    let dir = std::env::temp_dir().join(format!("stepstream-graph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("broken.json");
    std::fs::write(
        &file,
        r#"{"StartAt": "Missing", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}"#,
    )
    .expect("write");
    let (code, out, err) = graph(&[file.to_str().expect("utf-8 path")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("Nowhere"), "{err}");
    let (code, _, err) = graph(&["/no/such/file.json"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read definition file"), "{err}");
}
