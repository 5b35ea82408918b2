//! JSONata state machines through `stepstream validate` and `stepstream exec`: AWS's rules
//! that keep the two languages' fields apart, `$states`, variables shared across
//! languages, and hostile expressions that must end the execution, not the process.

mod common;

use common::{exec, stepstream, Scratch};
use serde_json::{json, Value};

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("scratch paths are UTF-8")
}

fn run(tag: &str, def: Value, input: Value) -> Value {
    let dir = Scratch::new(tag);
    let d = dir.write("def.json", def.to_string());
    let i = dir.write("input.json", input.to_string());
    exec(&[
        "--definition",
        path(&d),
        "--input",
        path(&i),
        "--clock",
        "virtual",
    ])
}

fn validate(tag: &str, def: Value) -> String {
    let dir = Scratch::new(tag);
    let d = dir.write("def.json", def.to_string());
    let out = stepstream(&["validate", path(&d)]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn jsonpath_fields_are_refused_in_jsonata_states_and_back_with_pointers() {
    let report = validate(
        "ql-mix",
        json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "QueryLanguage": "JSONata", "InputPath": "$.x", "Next": "B"},
            "B": {"Type": "Pass", "Output": {"a": 1}, "Next": "C"},
            "C": {"Type": "Task", "Resource": "arn:aws:lambda:x", "QueryLanguage": "JSONata",
                  "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "D"}],
                  "End": true},
            "D": {"Type": "Choice", "QueryLanguage": "JSONata",
                  "Choices": [{"Variable": "$.x", "BooleanEquals": true, "Next": "A"}]}
        }}),
    );
    for expected in [
        "/States/A/InputPath",
        "/States/B/Output",
        "/States/C/Catch/0/ResultPath",
        "/States/D/Choices/0/Variable",
        "/States/D/Choices/0: a JSONata Choice rule needs a Condition",
    ] {
        assert!(
            report.contains(expected),
            "{expected} missing from:\n{report}"
        );
    }
}

#[test]
fn a_jsonata_machine_cannot_hold_jsonpath_states_and_bad_expressions_are_located() {
    let report = validate(
        "ql-top",
        json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {
            "A": {"Type": "Pass", "QueryLanguage": "JSONPath", "Next": "B"},
            "B": {"Type": "Pass", "Output": {"x": ["{% 1 + %}"]}, "End": true}
        }}),
    );
    assert!(
        report.contains("/States/A: 'QueryLanguage' can not be"),
        "{report}"
    );
    assert!(report.contains("/States/B/Output/x/0"), "{report}");
}

#[test]
fn states_result_input_and_variables_flow_through_a_jsonata_machine() {
    let out = run(
        "flow",
        json!({"StartAt": "Init", "States": {
            "Init": {"Type": "Pass", "Assign": {"rate.$": "$.rate"}, "Next": "Price"},
            "Price": {"Type": "Pass", "QueryLanguage": "JSONata",
                "Assign": {"count": "{% $count($states.input.items) %}"},
                "Output": {"total": "{% $sum($states.input.items.(price * qty)) * $rate %}",
                           "first": "{% $states.input.items[0].sku %}"},
                "Next": "Check"},
            "Check": {"Type": "Choice", "QueryLanguage": "JSONata",
                "Choices": [{"Condition": "{% $states.input.total > 10 %}", "Next": "Big",
                             "Output": {"big": true, "total": "{% $states.input.total %}", "n": "{% $count %}"}}],
                "Default": "Small"},
            "Big": {"Type": "Pass", "Parameters": {"n.$": "$count", "t.$": "$.total"}, "End": true},
            "Small": {"Type": "Fail", "QueryLanguage": "JSONata", "Error": "Small", "Cause": "{% 'total ' & $string($states.input.total) %}"}
        }}),
        json!({"rate": 2, "items": [{"sku": "a", "price": 3, "qty": 2}, {"sku": "b", "price": 1.5, "qty": 1}]}),
    );
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    assert_eq!(out["output"], json!({"n": 2, "t": 15}));
}

#[test]
fn map_items_selector_and_numbers_from_expressions() {
    let out = run(
        "map",
        json!({"QueryLanguage": "JSONata", "StartAt": "M", "States": {
            "M": {"Type": "Map", "Items": "{% $states.input.xs %}",
                  "MaxConcurrency": "{% $states.input.n %}",
                  "ItemSelector": {"v": "{% $states.context.Map.Item.Value * 10 %}",
                                   "i": "{% $states.context.Map.Item.Index %}"},
                  "ItemProcessor": {"StartAt": "W", "States": {
                      "W": {"Type": "Wait", "Seconds": "{% $states.input.i %}", "End": true}}},
                  "Output": "{% $states.result.v %}",
                  "End": true}
        }}),
        json!({"xs": [1, 2, 3], "n": 2}),
    );
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    assert_eq!(out["output"], json!([10, 20, 30]));
}

/// AWS's wording when Items is not an array: the expression, the type and the value; a
/// function result is an unsupported type, not an evaluation error.
#[test]
fn map_items_of_another_type_name_the_expression_and_the_type() {
    for (expr, cause) in [
        ("{% $states.input.xs %}", "The JSONata expression '$states.input.xs' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was 'object' for value: {\"foo\":\"bar\"}"),
        ("{% null %}", "The JSONata expression 'null' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was 'null' for value: null"),
        ("{% $fn := function($x){$x} %}", "The JSONata expression '$fn := function($x){$x}' specified for the field 'Items' returned an unsupported result type."),
    ] {
        let out = run(
            "map-items-type",
            json!({"QueryLanguage": "JSONata", "StartAt": "M", "States": {
                "M": {"Type": "Map", "Items": expr,
                      "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
                      "End": true}}}),
            json!({"xs": {"foo": "bar"}}),
        );
        assert_eq!(out["error"], "States.QueryEvaluationError", "{out}");
        assert_eq!(
            out["cause"],
            format!("An error occurred while executing the state 'M' (entered at the event id #2). {cause}"),
        );
    }
}

#[test]
fn a_catcher_sees_the_error_output_and_sets_variables() {
    let out = run(
        "catch",
        json!({"QueryLanguage": "JSONata", "StartAt": "F", "States": {
            "F": {"Type": "Parallel", "Branches": [{"StartAt": "X", "States": {
                    "X": {"Type": "Fail", "Error": "Boom", "Cause": "{% 'at ' & $states.input.where %}"}}}],
                  "Arguments": {"where": "{% $states.input.place %}"},
                  "Catch": [{"ErrorEquals": ["Boom"], "Assign": {"err": "{% $states.errorOutput.Error %}"},
                             "Output": {"cause": "{% $states.errorOutput.Cause %}", "in": "{% $states.input.place %}"},
                             "Next": "Done"}],
                  "End": true},
            "Done": {"Type": "Pass", "Output": {"err": "{% $err %}", "was": "{% $states.input %}"}, "End": true}
        }}),
        json!({"place": "Lyon"}),
    );
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    assert_eq!(
        out["output"],
        json!({"err": "Boom", "was": {"cause": "at Lyon", "in": "Lyon"}})
    );
}

#[test]
fn a_seeded_random_is_java_util_randoms() {
    let out = run(
        "random",
        json!({"QueryLanguage": "JSONata", "StartAt": "R", "States": {
            "R": {"Type": "Pass", "Output": "{% $random(42) %}", "End": true}}}),
        json!({}),
    );
    assert_eq!(out["output"], json!(0.7275636800328681), "{out}");
}

#[test]
fn hostile_expressions_end_the_execution_with_a_query_evaluation_error() {
    for (what, expr) in [
        (
            "endless recursion",
            "($f := function($n) { $f($n + 1) + 1 }; $f(0))",
        ),
        (
            "endless tail recursion",
            "($f := function($n) { $f($n + 1) }; $f(0))",
        ),
        ("a billion-element range", "$range(0, 1000000000, 1)"),
        ("a billion-element sequence", "$count([1..1000000000])"),
        ("a huge string", "$pad('', 1000000000)"),
        (
            "a deeply nested value",
            "$reduce([1..100000], function($a, $i) { {'a': $a} }, {})",
        ),
    ] {
        let out = run(
            "hostile",
            json!({"QueryLanguage": "JSONata", "StartAt": "H", "States": {
                "H": {"Type": "Pass", "Output": {"v": format!("{{% {expr} %}}")}, "End": true}}}),
            json!({}),
        );
        assert_eq!(out["status"], "FAILED", "{what}: {out}");
        assert_eq!(out["error"], "States.QueryEvaluationError", "{what}: {out}");
    }
}

/// `$states` taken whole holds the Context object too (AWS, TestState recording
/// `test_state_task_catch_error`: a catcher's `Output: "{% $states %}"` shows Execution,
/// StateMachine and State). The plan decides from the definition's text whether to build
/// the Context object at all; a bare `$states` must count.
#[test]
fn states_taken_whole_holds_the_context_object() {
    let out = run(
        "states-whole",
        json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
            "P": {"Type": "Pass", "Output": "{% $states %}", "End": true}}}),
        json!({"a": 1}),
    );
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    let o = &out["output"];
    assert_eq!(o["input"], json!({"a": 1}), "{out}");
    let ctx = &o["context"];
    assert_eq!(ctx["Execution"]["Input"], json!({"a": 1}), "{out}");
    assert!(ctx["StateMachine"]["Id"].is_string(), "{out}");
    assert_eq!(ctx["State"]["Name"], "P", "{out}");
    assert!(ctx["State"]["EnteredTime"].is_string(), "{out}");
}

/// AWS's rule is about the whole machine (ValidateStateMachineDefinition, LocalStack's
/// recordings VALID_QUERY_LANGUAGE_PASS and INVALID_DOWNGRADE_QUERY_LANGUAGE): a JSONata
/// machine holds no JSONPath state, but a JSONPath machine may hold a JSONPath state inside
/// a JSONata Map.
#[test]
fn only_a_jsonata_machine_refuses_jsonpath_states_within() {
    let nested = validate(
        "ql-nested",
        json!({"QueryLanguage": "JSONPath", "StartAt": "M", "States": {
            "M": {"Type": "Map", "QueryLanguage": "JSONata", "End": true,
                  "ItemProcessor": {"StartAt": "P", "States": {
                      "P": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}}}}}}),
    );
    assert!(nested.contains(": ok"), "{nested}");
    let downgrade = validate(
        "ql-downgrade",
        json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
            "P": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}}}),
    );
    assert!(
        downgrade.contains("/States/P: 'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine"),
        "{downgrade}"
    );
}
