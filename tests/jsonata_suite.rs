//! Runs JSONata's own test suite (`../shared/jsonata-suite`, format in its TESTSUITE.md)
//! through stepstream's JSONata adapter (`stepstream::expr::jsonata`), the same code
//! that evaluates `{% %}` in state machines: every case is checked by its result, or by
//! its error code when it names one.
//!
//! Every failure is printed with its reason; the summary line is
//! `jsonata-suite: N passed, M failed`. The test fails, naming each case, when a case
//! listed in `tests/jsonata_suite.pass` no longer passes; `STEPSTREAM_JSONATA_SUITE_UPDATE=1`
//! rewrites that list from the run.

use std::path::{Path, PathBuf};

use stepstream::expr::jsonata::{evaluate_json, Expr, Functions, Limits};
use stepstream::value::{Map, Value};

fn suite_dir() -> PathBuf {
    std::env::var_os("STEPSTREAM_JSONATA_SUITE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/jsonata-suite"))
}

/// One case: its id (`group/case000`, `group/case000#1` inside an array file) and fields.
struct Case {
    id: String,
    spec: Value,
    dir: PathBuf,
}

fn load_cases(root: &Path) -> Vec<Case> {
    let mut out = vec![];
    let mut groups: Vec<PathBuf> = std::fs::read_dir(root.join("groups"))
        .unwrap_or_else(|e| panic!("the JSONata suite is not at {}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    groups.sort();
    for g in groups {
        let group = g
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&g)
            .expect("a group is a directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
            let text = std::fs::read_to_string(&f).expect("a case file is readable");
            // Some cases hold lone UTF-16 surrogates ("\ud800"), which serde_json (and so
            // every value stepstream handles) rejects: such a case fails with that reason.
            let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
                stepstream::json!({ "unreadable": format!("the case file is not JSON serde_json reads: {e}") })
            });
            match v {
                Value::Array(items) => {
                    for (i, spec) in items.into_iter().enumerate() {
                        out.push(Case {
                            id: format!("{group}/{stem}#{i}"),
                            spec,
                            dir: g.clone(),
                        });
                    }
                }
                spec => out.push(Case {
                    id: format!("{group}/{stem}"),
                    spec,
                    dir: g.clone(),
                }),
            }
        }
    }
    out
}

/// Equal as JSONata results: numbers by value, `unordered` arrays as multisets.
fn same(expected: &Value, actual: &Value, unordered: bool) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            a == b || ((a - b).abs() <= 1e-12 * a.abs().max(b.abs()))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            if unordered {
                let mut used = vec![false; b.len()];
                a.iter().all(|x| {
                    let hit = b
                        .iter()
                        .enumerate()
                        .find(|(i, y)| !used[*i] && same(x, y, false))
                        .map(|(i, _)| i);
                    hit.map(|i| used[i] = true).is_some()
                })
            } else {
                a.iter().zip(b).all(|(x, y)| same(x, y, false))
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| same(x, y, false)))
        }
        _ => expected == actual,
    }
}

/// Runs one case; `None` when it passes, else why not.
fn run_case(case: &Case, root: &Path) -> Option<String> {
    let s = &case.spec;
    if let Some(why) = s.get("unreadable").and_then(Value::as_str) {
        return Some(why.to_string());
    }
    let text = match (s.get("expr"), s.get("expr-file")) {
        (Some(Value::String(e)), _) => e.to_string(),
        (_, Some(Value::String(f))) => match std::fs::read_to_string(case.dir.join(f.as_str())) {
            Ok(t) => t,
            Err(e) => return Some(format!("expression file {f}: {e}")),
        },
        _ => return Some("the case has no expression".into()),
    };
    let data: Option<Value> = match (s.get("data"), s.get("dataset")) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(Value::String(name))) => {
            let p = root.join("datasets").join(format!("{name}.json"));
            match std::fs::read_to_string(&p).map(|t| serde_json::from_str(&t)) {
                Ok(Ok(v)) => Some(v),
                _ => return Some(format!("dataset {name} unreadable")),
            }
        }
        _ => None,
    };
    let bindings: Map = s
        .get("bindings")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut limits = Limits {
        // The suite's own results may be large; the payload cap is an ASL rule.
        max_result_bytes: 64 << 20,
        // jsonata-js's runner limits no sequence; two cases count ten million items.
        max_sequence: 20_000_000,
        functions: Functions::Jsonata,
        ..Limits::default()
    };
    if let Some(t) = s.get("timelimit").and_then(Value::as_u64) {
        limits.timeout_ms = t;
    }
    if let Some(d) = s.get("depth").and_then(Value::as_u64) {
        limits.max_depth = d as usize;
    }
    let want_code = s
        .get("code")
        .or_else(|| s.get("error").and_then(|e| e.get("code")))
        .and_then(Value::as_str);
    let outcome =
        Expr::parse(&text).and_then(|e| evaluate_json(&e, data.as_ref(), &bindings, &limits));
    match (outcome, want_code) {
        (Err(e), Some(code)) if e.code.as_deref() == Some(code) => None,
        // U1001 is the suite runner's own code, not the language's: jsonata-js's
        // `timeboxExpression` (test/run-test-suite.js) throws it both when the evaluation
        // nests past `depth` and when it runs past `timelimit`. The engine raises D1011 and
        // D1012 for those two limits. (tail-recursion/case006, `$inf := function(){$inf()}`,
        // is a tail call: it never deepens, in jsonata-js either, and ends on the time limit.)
        (Err(e), Some("U1001")) if matches!(e.code.as_deref(), Some("D1011" | "D1012")) => None,
        (Err(e), Some(code)) => Some(format!(
            "error {:?} (expected code {code}): {}",
            e.code, e.message
        )),
        (Ok(v), Some(code)) => Some(format!("returned {v:?}, expected error {code}")),
        (Err(e), None) => Some(format!("error: {}", e.message)),
        (Ok(v), None) => {
            if s.get("undefinedResult").and_then(Value::as_bool) == Some(true) {
                return v.map(|v| format!("returned {v}, expected undefined"));
            }
            let Some(want) = s.get("result") else {
                return Some("the case names no result".into());
            };
            let unordered = s.get("unordered").and_then(Value::as_bool) == Some(true);
            match v {
                Some(got) if same(want, &got, unordered) => None,
                Some(got) => Some(format!("returned {got}, expected {want}")),
                None => Some(format!("returned undefined, expected {want}")),
            }
        }
    }
}

#[test]
fn jsonata_suite_through_the_adapter() {
    let root = suite_dir();
    let cases = load_cases(&root);
    assert!(!cases.is_empty(), "no cases in {}", root.display());
    // Deep recursions run on the engine's own stack segments, but give the runner room too.
    let verdicts: Vec<(String, Option<String>)> = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            cases
                .iter()
                .map(|c| (c.id.clone(), run_case(c, &root)))
                .collect()
        })
        .expect("a thread starts")
        .join()
        .expect("the suite runner does not panic");

    let failed: Vec<&(String, Option<String>)> =
        verdicts.iter().filter(|(_, f)| f.is_some()).collect();
    for (id, why) in &failed {
        let why = why.as_deref().unwrap_or("");
        let short: String = why.chars().take(300).collect();
        println!("FAIL {id}: {short}");
    }
    let passed = verdicts.len() - failed.len();
    println!("jsonata-suite: {passed} passed, {} failed", failed.len());

    let list_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jsonata_suite.pass");
    if std::env::var_os("STEPSTREAM_JSONATA_SUITE_UPDATE").is_some() {
        let names: Vec<&str> = verdicts
            .iter()
            .filter(|(_, f)| f.is_none())
            .map(|(id, _)| id.as_str())
            .collect();
        std::fs::write(&list_path, names.join("\n") + "\n").expect("the pass list is writable");
        println!("wrote {} names to {}", names.len(), list_path.display());
    }
    let listed = std::fs::read_to_string(&list_path)
        .expect("tests/jsonata_suite.pass lists the cases that must pass");
    let ran: std::collections::HashMap<&str, &Option<String>> =
        verdicts.iter().map(|(id, f)| (id.as_str(), f)).collect();
    let regressions: Vec<String> = listed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter_map(|id| match ran.get(id) {
            Some(None) => None,
            Some(Some(why)) => Some(format!("{id} now fails: {why}")),
            None => Some(format!("{id} is missing from the suite")),
        })
        .collect();
    assert!(
        regressions.is_empty(),
        "the JSONata suite regressed ({} cases):\n  {}",
        regressions.len(),
        regressions.join("\n  ")
    );
}
