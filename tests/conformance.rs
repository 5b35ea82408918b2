//! Runs every AWS-recorded case in `../shared/conformance/cases` through `stepstream exec`
//! (the real binary, virtual clock) and compares status, output and error with AWS's.
//!
//! Every failure is printed with its reason; the summary line is
//! `conformance: N passed, M failed`. The test fails, naming each case, when a case listed
//! in `tests/conformance.pass` no longer passes; `STEPSTREAM_CONFORMANCE_UPDATE=1` rewrites
//! that list from the run (do so when the engine passes more cases).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

fn cases_dir() -> PathBuf {
    std::env::var_os("STEPSTREAM_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/cases")
        })
}

/// Strings AWS's recording replaced with a stand-in match any string.
fn is_wildcard(expected: &str, placeholders: &[String]) -> bool {
    const STANDINS: [&str; 6] = [
        "start-time",
        "start-date",
        "entered-time",
        "timestamp",
        "date",
        "snf_role_arn",
    ];
    if STANDINS.contains(&expected) || placeholders.iter().any(|p| expected.contains(p.as_str())) {
        return true;
    }
    // `<ExecArnPart_0idx>`, `<uuid:1>`, `<RandomNumberGenerated>`, `arn:<partition>:...`
    let mut rest = expected;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        match after.find('>') {
            Some(close) if close > 0 && !after[..close].contains([' ', '<', '"']) => return true,
            _ => rest = after,
        }
    }
    false
}

/// Compares `actual` to AWS's `expected`; returns where they first differ.
fn diff(expected: &Value, actual: &Value, placeholders: &[String], at: &str) -> Option<String> {
    match (expected, actual) {
        (Value::String(e), Value::String(_)) if is_wildcard(e, placeholders) => None,
        // A recorded placeholder may stand for a number (a random value).
        (Value::String(e), Value::Number(_)) if is_wildcard(e, placeholders) => None,
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{at}/{k}");
                match a.get(k) {
                    None => return Some(format!("{p}: missing (expected {ev})")),
                    Some(av) => {
                        if let Some(d) = diff(ev, av, placeholders, &p) {
                            return Some(d);
                        }
                    }
                }
            }
            a.keys()
                .find(|k| !e.contains_key(*k))
                .map(|k| format!("{at}/{k}: unexpected field"))
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (ev, av))| diff(ev, av, placeholders, &format!("{at}/{i}"))),
        _ if expected == actual => None,
        _ => Some(format!(
            "{}: expected {expected}, got {actual}",
            if at.is_empty() { "/" } else { at }
        )),
    }
}

/// The strings of a JSON array (none when it is not one).
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

struct Verdict {
    name: String,
    features: Vec<String>,
    failure: Option<String>,
    cause: CauseMatch,
}

/// How a failed execution's cause compares with AWS's wording (a softer check than the
/// error name: counted and listed, never failed on).
#[derive(Clone)]
enum CauseMatch {
    /// A success, or an execution that already fails the case: no cause to weigh.
    NotCompared,
    Same,
    /// Equal once ` (entered at the event id #N)` is taken out of both: stepstream counts
    /// the history events AWS would have up to there, but not yet every kind of them
    /// (a Map's iteration events, for one), so after some states its N differs.
    BarEventId,
    /// Worded otherwise: expected, then actual.
    Differs(String),
}

/// `cause` without AWS's reference to the history event the state was entered at.
fn without_event_id(cause: &Value) -> Value {
    const AT: &str = " (entered at the event id #";
    let Some(text) = cause.as_str() else {
        return cause.clone();
    };
    let Some(start) = text.find(AT) else {
        return cause.clone();
    };
    let rest = &text[start + AT.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    match rest[digits..].strip_prefix(')') {
        Some(after) if digits > 0 => Value::String(format!("{}{after}", &text[..start])),
        _ => cause.clone(),
    }
}

fn run_case(path: &Path, scratch: &Path) -> Verdict {
    let case: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("case file is readable"))
            .expect("case file is JSON");
    let name = case["name"].as_str().unwrap_or("?").to_string();
    let features = strings(&case["features"]);
    let placeholders = strings(&case["placeholders"]);
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("case")
        .replace(['[', ']', '"'], "_");
    let def_file = scratch.join(format!("{stem}.definition.json"));
    let input_file = scratch.join(format!("{stem}.input.json"));
    std::fs::write(&def_file, case["definition"].to_string()).expect("scratch dir is writable");
    std::fs::write(&input_file, case["input"].to_string()).expect("scratch dir is writable");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stepstream"));
    cmd.arg("exec")
        .arg("--definition")
        .arg(&def_file)
        .arg("--input")
        .arg(&input_file)
        .args(["--clock", "virtual"]);
    // A recording of a synchronous Express start (a StartSyncExecution response, TestState)
    // runs as one, an asynchronous Express execution's as that; the rest were recorded on
    // Standard machines, exec's default. (A test *named* start_execution_sync may start a
    // child with `states:startExecution.sync` from a Standard machine.)
    let source = case["source"].as_str().unwrap_or("");
    if source.contains("(start_execution_sync_response)") || source.contains("[TestState") {
        cmd.args(["--type", "EXPRESS", "--sync"]);
    } else if source.contains("/express/test_express_async.py") {
        cmd.args(["--type", "EXPRESS"]);
    }
    if let Some(m) = case.get("mocks").filter(|m| !m.is_null()) {
        let mocks_file = scratch.join(format!("{stem}.mocks.json"));
        std::fs::write(&mocks_file, m.to_string()).expect("scratch dir is writable");
        cmd.arg("--mocks").arg(&mocks_file);
    }
    let out = cmd.output().expect("the stepstream binary runs");
    let verdict = |failure: Option<String>, cause| Verdict {
        name: name.clone(),
        features: features.clone(),
        failure,
        cause,
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Ok(actual) = serde_json::from_str::<Value>(stdout.trim()) else {
        return verdict(
            Some(format!(
                "exec did not print one JSON object (exit {:?}): {} {}",
                out.status.code(),
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            CauseMatch::NotCompared,
        );
    };
    let expected = &case["expected"];
    let want = expected["status"].as_str().unwrap_or("?");
    let got = actual["status"].as_str().unwrap_or("?");
    if want != got {
        return verdict(
            Some(format!(
                "status {got} (expected {want}); error {} cause {}",
                actual["error"], actual["cause"]
            )),
            CauseMatch::NotCompared,
        );
    }
    if want == "SUCCEEDED" {
        return verdict(
            diff(&expected["output"], &actual["output"], &placeholders, ""),
            CauseMatch::NotCompared,
        );
    }
    let e_err = expected.get("error").cloned().unwrap_or(Value::Null);
    if diff(&e_err, &actual["error"], &placeholders, "").is_some() {
        return verdict(
            Some(format!(
                "error {} (expected {e_err}); cause {}",
                actual["error"], actual["cause"]
            )),
            CauseMatch::NotCompared,
        );
    }
    // The cause is AWS's wording: a softer check, counted but not failed on.
    let e_cause = expected.get("cause").cloned().unwrap_or(Value::Null);
    let cause = if diff(&e_cause, &actual["cause"], &placeholders, "").is_none() {
        CauseMatch::Same
    } else if diff(
        &without_event_id(&e_cause),
        &without_event_id(&actual["cause"]),
        &placeholders,
        "",
    )
    .is_none()
    {
        CauseMatch::BarEventId
    } else {
        CauseMatch::Differs(format!("expected {e_cause}, got {}", actual["cause"]))
    };
    verdict(None, cause)
}

#[test]
fn aws_recorded_conformance_cases() {
    let dir = cases_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("conformance cases not found at {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no conformance cases in {}",
        dir.display()
    );

    let scratch =
        std::env::temp_dir().join(format!("stepstream-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("temp dir is writable");
    let queue = Mutex::new(files.iter());
    let verdicts = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let next = queue.lock().expect("queue lock").next();
                let Some(path) = next else { break };
                let v = run_case(path, &scratch);
                verdicts.lock().expect("verdict lock").push(v);
            });
        }
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let mut verdicts = verdicts.into_inner().expect("verdict lock");
    verdicts.sort_by(|a, b| a.name.cmp(&b.name));

    let mut by_feature: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for v in &verdicts {
        for f in &v.features {
            let e = by_feature.entry(f.as_str()).or_default();
            if v.failure.is_none() {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
    }
    let failed: Vec<&Verdict> = verdicts.iter().filter(|v| v.failure.is_some()).collect();
    for v in &failed {
        println!("FAIL {}: {}", v.name, v.failure.as_deref().unwrap_or(""));
    }
    println!("\nby feature (passed/total):");
    for (f, (p, m)) in &by_feature {
        println!("  {f}: {p}/{}", p + m);
    }
    let passed = verdicts.len() - failed.len();
    let bar_event_id = verdicts
        .iter()
        .filter(|v| matches!(v.cause, CauseMatch::BarEventId))
        .count();
    println!(
        "\n{bar_event_id} failed executions match AWS's error and cause but for the N in \
         \"(entered at the event id #N)\""
    );
    let worded_otherwise: Vec<(&str, &str)> = verdicts
        .iter()
        .filter_map(|v| match &v.cause {
            CauseMatch::Differs(d) => Some((v.name.as_str(), d.as_str())),
            _ => None,
        })
        .collect();
    println!(
        "{} failed executions match AWS's error but word the cause differently:",
        worded_otherwise.len()
    );
    for (name, d) in &worded_otherwise {
        println!("  CAUSE {name}: {d}");
    }
    println!("conformance: {passed} passed, {} failed", failed.len());

    // Guard by name, not by count: a case that starts failing is named even when another
    // starts passing at the same time.
    let list_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance.pass");
    if std::env::var_os("STEPSTREAM_CONFORMANCE_UPDATE").is_some() {
        let names: Vec<&str> = verdicts
            .iter()
            .filter(|v| v.failure.is_none())
            .map(|v| v.name.as_str())
            .collect();
        std::fs::write(&list_path, names.join("\n") + "\n").expect("the pass list is writable");
        println!("wrote {} names to {}", names.len(), list_path.display());
    }
    let expected = std::fs::read_to_string(&list_path)
        .expect("tests/conformance.pass lists the cases that must pass");
    let ran: BTreeMap<&str, &Verdict> = verdicts.iter().map(|v| (v.name.as_str(), v)).collect();
    let own_corpus = std::env::var_os("STEPSTREAM_CONFORMANCE_DIR").is_none();
    let mut regressions = vec![];
    for name in expected.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match ran.get(name) {
            Some(v) if v.failure.is_some() => regressions.push(format!("{name} now fails")),
            Some(_) => {}
            // Another corpus (STEPSTREAM_CONFORMANCE_DIR) need not hold every listed case.
            None if own_corpus => regressions.push(format!("{name} is missing from the corpus")),
            None => {}
        }
    }
    let listed: std::collections::BTreeSet<&str> = expected.lines().map(str::trim).collect();
    let newly: Vec<&str> = verdicts
        .iter()
        .filter(|v| v.failure.is_none() && !listed.contains(v.name.as_str()))
        .map(|v| v.name.as_str())
        .collect();
    if !newly.is_empty() {
        println!(
            "{} cases pass that tests/conformance.pass does not list yet (STEPSTREAM_CONFORMANCE_UPDATE=1 rewrites it):",
            newly.len()
        );
        for n in newly {
            println!("  {n}");
        }
    }
    assert!(
        regressions.is_empty(),
        "conformance regressed ({} cases):\n  {}",
        regressions.len(),
        regressions.join("\n  ")
    );
}
