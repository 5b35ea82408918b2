//! AWS Step Functions Local's MockConfigFile, read into [`Mocks`].
//!
//! ```json
//! {"StateMachines": {"order": {"TestCases": {"HappyPath": {"Charge": "ChargeOk"}}}},
//!  "MockedResponses": {"ChargeOk": {"0": {"Throw": {"Error": "Busy", "Cause": "try again"}},
//!                                   "1-2": {"Return": {"charged": true}}}}}
//! ```
//! A test case maps Task state names to mocked responses; a response maps invocation
//! numbers (`"0"`, or an inclusive range `"1-2"`) of that state to a `Return` value or a
//! `Throw` `{Error, Cause}`.

use std::collections::HashMap;

use serde_json::Value;

use super::mock::{MockResponse, Mocks};
use crate::error::WorkflowError;

/// Highest invocation number a mocked response may name (ranges are expanded in memory).
const MAX_INVOCATION: u32 = 10_000;

/// The test case `case` of `state_machine` in a MockConfigFile; `None` when that machine
/// has no entry in the file (then nothing of it is mocked).
pub fn mocks_for(doc: &Value, state_machine: &str, case: &str) -> Result<Option<Mocks>, String> {
    let Some(machine) = doc.pointer(&format!("/StateMachines/{}", escape(state_machine))) else {
        return Ok(None);
    };
    let cases = machine
        .get("TestCases")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("StateMachines.{state_machine}.TestCases must be an object"))?;
    let states = cases.get(case).and_then(Value::as_object).ok_or_else(|| {
        let known: Vec<&str> = cases.keys().map(String::as_str).collect();
        format!("state machine {state_machine:?} has no test case {case:?} (it has {known:?})")
    })?;
    let mut by_state = HashMap::new();
    for (state, name) in states {
        let name = name.as_str().ok_or_else(|| {
            format!("test case {case:?}: state {state:?} must name a mocked response")
        })?;
        let resp = doc
            .pointer(&format!("/MockedResponses/{}", escape(name)))
            .ok_or_else(|| format!("MockedResponses has no {name:?} (used by state {state:?})"))?;
        by_state.insert(state.clone(), responses(name, resp)?);
    }
    Ok(Some(Mocks::from_parts(by_state)))
}

/// The one state machine of a MockConfigFile that defines `case`, for `exec` (which runs
/// a definition without a name). `MACHINE#CASE` picks the machine explicitly.
pub fn mocks_for_case(doc: &Value, case: &str) -> Result<Mocks, String> {
    if let Some((machine, case)) = case.split_once('#') {
        return mocks_for(doc, machine, case)?
            .ok_or_else(|| format!("the mock config has no state machine {machine:?}"));
    }
    let machines = doc
        .get("StateMachines")
        .and_then(Value::as_object)
        .ok_or("a MockConfigFile needs a StateMachines object")?;
    let with: Vec<&String> = machines
        .iter()
        .filter(|(_, m)| m.pointer(&format!("/TestCases/{}", escape(case))).is_some())
        .map(|(name, _)| name)
        .collect();
    match with.as_slice() {
        [one] => mocks_for(doc, one, case).map(|m| m.unwrap_or_default()),
        [] => Err(format!(
            "no state machine in the mock config has a test case {case:?}"
        )),
        many => Err(format!(
            "test case {case:?} is defined for {many:?}: name one as MACHINE#{case}"
        )),
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// One mocked response's invocations, in order.
fn responses(name: &str, v: &Value) -> Result<Vec<MockResponse>, String> {
    let map = v.as_object().ok_or_else(|| {
        format!("MockedResponses.{name} must be an object of invocation -> response")
    })?;
    let mut slots: Vec<Option<MockResponse>> = Vec::new();
    for (range, resp) in map {
        let bad = || {
            format!("MockedResponses.{name}: {range:?} is not an invocation number or range like \"1-2\"")
        };
        let (from, to) = match range.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<u32>().map_err(|_| bad())?,
                b.trim().parse::<u32>().map_err(|_| bad())?,
            ),
            None => {
                let n = range.trim().parse::<u32>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if from > to || to > MAX_INVOCATION {
            return Err(format!("MockedResponses.{name}: range {range:?} must run upwards, at most to {MAX_INVOCATION}"));
        }
        let r = response(name, range, resp)?;
        if slots.len() <= to as usize {
            slots.resize(to as usize + 1, None);
        }
        for slot in &mut slots[from as usize..=to as usize] {
            if slot.is_some() {
                return Err(format!(
                    "MockedResponses.{name}: invocation {range:?} is given twice"
                ));
            }
            *slot = Some(r.clone());
        }
    }
    slots
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            s.ok_or_else(|| format!("MockedResponses.{name}: invocation {i} has no response"))
        })
        .collect()
}

fn response(name: &str, range: &str, v: &Value) -> Result<MockResponse, String> {
    if let Some(r) = v.get("Return") {
        return Ok(MockResponse::Result(crate::value::Value::from(r)));
    }
    if let Some(t) = v.get("Throw") {
        let text = |k: &str| t.get(k).and_then(Value::as_str).map(str::to_string);
        return Ok(MockResponse::Error(WorkflowError {
            error: text("Error"),
            cause: text("Cause"),
        }));
    }
    Err(format!(
        "MockedResponses.{name}.{range} needs Return or Throw"
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tasks::{TaskCall, TaskHandler};

    fn doc() -> Value {
        json!({
            "StateMachines": {
                "order": {"TestCases": {"Happy": {"Charge": "ChargeOk"}, "Flaky": {"Charge": "ChargeFlaky"}}},
                "other": {"TestCases": {"Happy": {"X": "ChargeOk"}}}
            },
            "MockedResponses": {
                "ChargeOk": {"0": {"Return": {"charged": true}}},
                "ChargeFlaky": {"0-1": {"Throw": {"Error": "Busy", "Cause": "try again"}},
                                "2": {"Return": {"charged": true}}}
            }
        })
    }

    fn answer(m: &Mocks, state: &str, n: u32) -> Result<crate::value::Value, WorkflowError> {
        let fut = m.call(TaskCall {
            state,
            resource: "r",
            input: crate::value::Value::Null,
            state_calls: n,
            resource_calls: n,
            timeout: None,
            execution: &crate::tasks::FixedIds::default(),
        });
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(fut)
    }

    #[test]
    fn invocation_ranges_expand_in_order() {
        let m = mocks_for(&doc(), "order", "Flaky").unwrap().unwrap();
        assert_eq!(
            answer(&m, "Charge", 0).unwrap_err().error.as_deref(),
            Some("Busy")
        );
        assert_eq!(
            answer(&m, "Charge", 1).unwrap_err().cause.as_deref(),
            Some("try again")
        );
        assert_eq!(answer(&m, "Charge", 2).unwrap(), json!({"charged": true}));
        assert!(answer(&m, "Charge", 3).is_err());
        assert!(mocks_for(&doc(), "absent", "Happy").unwrap().is_none());
    }

    #[test]
    fn a_test_case_is_found_by_name_or_machine_and_name() {
        assert!(mocks_for_case(&doc(), "Flaky").unwrap().has("Charge"));
        assert!(mocks_for_case(&doc(), "Happy")
            .unwrap_err()
            .contains("MACHINE#Happy"));
        assert!(mocks_for_case(&doc(), "other#Happy").unwrap().has("X"));
        assert!(mocks_for_case(&doc(), "Nope").is_err());
    }

    #[test]
    fn gaps_overlaps_and_huge_ranges_are_refused() {
        let with = |r: Value| {
            let mut d = doc();
            d["MockedResponses"]["ChargeOk"] = r;
            mocks_for(&d, "order", "Happy").map(|_| ())
        };
        assert!(with(json!({"1": {"Return": 1}}))
            .unwrap_err()
            .contains("invocation 0"));
        assert!(with(json!({"0-1": {"Return": 1}, "1": {"Return": 2}}))
            .unwrap_err()
            .contains("twice"));
        assert!(with(json!({"0-99999999": {"Return": 1}})).is_err());
        assert!(with(json!({"0": {"Nothing": 1}})).is_err());
    }
}
