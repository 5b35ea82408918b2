//! Graph checks over a parsed machine: transitions that lead nowhere, states nothing
//! reaches, machines that can never end. Field-level checks happen while parsing.

use std::collections::{HashMap, HashSet};

use super::model::{Kind, MachineType, StateMachine};
use super::{pointer_join, Problem};

/// What keeps a Task waiting, which only a Standard machine allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandardOnly {
    /// `.sync` or `.sync:2`: waits for a job to finish.
    JobWait,
    /// `.waitForTaskToken`: waits for a callback with the task token.
    Callback,
    /// An Activity ARN: waits for a worker to poll for it.
    Activity,
}

/// Which Standard-only kind of call this resource is, if any.
pub fn standard_only(resource: &str) -> Option<StandardOnly> {
    if resource.ends_with(".sync") || resource.contains(".sync:") {
        Some(StandardOnly::JobWait)
    } else if resource.ends_with(".waitForTaskToken") {
        Some(StandardOnly::Callback)
    } else if resource.starts_with("arn:aws:states:") && resource.contains(":activity:") {
        Some(StandardOnly::Activity)
    } else {
        None
    }
}

/// Why an Express workflow cannot call this resource, if it cannot: Express workflows run
/// request-response calls only, so no job waits (`.sync`), callbacks or Activities.
pub fn express_refuses(resource: &str) -> Option<String> {
    let what = match standard_only(resource)? {
        StandardOnly::JobWait => "waits for a job to finish (.sync, \"Run a Job\")",
        StandardOnly::Callback => "waits for a callback with a task token (.waitForTaskToken)",
        StandardOnly::Activity => "is an Activity, which waits for a worker to poll for it",
    };
    Some(format!(
        "{resource:?} {what}: Express workflows (what stepstream runs) support only \
         request-response integrations; call the service without the suffix and poll \
         or react to its completion in another execution"
    ))
}

/// The actions of the optimized integrations whose whole list is known here; another
/// action of one of these services is not a resource AWS recognizes.
const OPTIMIZED: &[(&str, &[&str], &str)] = &[
    (
        "dynamodb",
        &["getItem", "putItem", "updateItem", "deleteItem"],
        "dynamodb",
    ),
    ("sqs", &["sendMessage"], "sqs"),
    ("sns", &["publish"], "sns"),
    ("events", &["putEvents"], "eventbridge"),
    ("lambda", &["invoke"], "lambda"),
    ("http", &["invoke"], ""),
];

/// Why AWS would not recognize this resource, if it is an optimized integration's ARN
/// with an action that integration does not have (`arn:aws:states:::dynamodb:query`:
/// AWS refuses the definition; LocalStack's recording `test_invalid_integration`).
pub fn unknown_integration(resource: &str) -> Option<String> {
    let rest = resource.strip_prefix("arn:aws:states:::")?;
    let (service, action) = rest.split_once(':')?;
    if action.contains(['.', ':']) {
        return None;
    }
    let (_, actions, sdk) = OPTIMIZED.iter().find(|(s, ..)| *s == service)?;
    if actions.contains(&action) {
        return None;
    }
    let hint = if sdk.is_empty() {
        String::new()
    } else {
        format!(
            " ({service} has {}; arn:aws:states:::aws-sdk:{sdk}:{action} calls any API action)",
            actions.join(", ")
        )
    };
    Some(format!(
        "The resource provided {resource} is not recognized. The value is not a valid resource \
         ARN, or the resource is not available in this region.{hint}"
    ))
}

/// Checks one machine and, recursively, its Parallel branches and Map processors.
pub fn check_graph(sm: &StateMachine, machine: MachineType, problems: &mut Vec<Problem>) {
    let index: HashMap<&str, usize> = sm
        .states
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); sm.states.len()];
    let mut target =
        |from: usize, name: &str, pointer: String, problems: &mut Vec<Problem>| match index
            .get(name)
        {
            Some(&to) => edges[from].push(to),
            // Its own problems say why it could not be read.
            None if sm.unreadable.iter().any(|u| u == name) => {}
            None => problems.push(Problem::new(
                pointer,
                format!(
                    "state {name:?} is not defined (referenced by {:?})",
                    sm.states[from].name
                ),
            )),
        };

    for (i, s) in sm.states.iter().enumerate() {
        if let Some(n) = &s.next {
            target(i, n, pointer_join(&s.pointer, "Next"), problems);
        }
        if let Kind::Choice { rules, default } = &s.kind {
            for (r, rule) in rules.iter().enumerate() {
                let p = pointer_join(
                    &pointer_join(&pointer_join(&s.pointer, "Choices"), &r.to_string()),
                    "Next",
                );
                target(i, &rule.next, p, problems);
            }
            if let Some(d) = default {
                target(i, d, pointer_join(&s.pointer, "Default"), problems);
            }
        }
        for (c, catcher) in s.catch.iter().enumerate() {
            let p = pointer_join(
                &pointer_join(&pointer_join(&s.pointer, "Catch"), &c.to_string()),
                "Next",
            );
            target(i, &catcher.next, p, problems);
        }
        if let Kind::Task { resource, .. } = &s.kind {
            let express_only = match machine {
                MachineType::Express => express_refuses(resource),
                MachineType::Standard => None,
            };
            if let Some(why) = express_only.or_else(|| unknown_integration(resource)) {
                problems.push(Problem::new(pointer_join(&s.pointer, "Resource"), why));
            }
        }
        match &s.kind {
            Kind::Parallel { branches } => branches
                .iter()
                .for_each(|b| check_graph(b, machine, problems)),
            Kind::Map(spec) => check_graph(&spec.processor, machine, problems),
            _ => {}
        }
    }

    let Some(&start) = index.get(sm.start_at.as_str()) else {
        if sm.unreadable.contains(&sm.start_at) {
            return;
        }
        problems.push(Problem::new(
            pointer_join(&sm.pointer, "StartAt"),
            format!(
                "StartAt names state {:?}, which is not defined",
                sm.start_at
            ),
        ));
        return;
    };

    let mut seen = HashSet::from([start]);
    let mut stack = vec![start];
    while let Some(i) = stack.pop() {
        for &j in &edges[i] {
            if seen.insert(j) {
                stack.push(j);
            }
        }
    }
    for (i, s) in sm.states.iter().enumerate() {
        if !seen.contains(&i) {
            problems.push(Problem::new(
                &s.pointer,
                format!(
                    "state {:?} can never be reached from StartAt {:?}",
                    s.name, sm.start_at
                ),
            ));
        }
    }
    let terminal = sm
        .states
        .iter()
        .any(|s| s.next.is_none() && !matches!(s.kind, Kind::Choice { .. }));
    if !terminal {
        let at = pointer_join(&sm.pointer, "States");
        problems.push(Problem::new(
            at,
            "no state ends the execution: add \"End\": true, a Succeed or a Fail state",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::json;

    use crate::asl::parse::parse_definition;

    #[test]
    fn express_refuses_job_waits_callbacks_and_activities_with_a_reason() {
        for (resource, words) in [
            ("arn:aws:states:::glue:startJobRun.sync", ".sync"),
            ("arn:aws:states:::states:startExecution.sync:2", ".sync"),
            (
                "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "task token",
            ),
            (
                "arn:aws:states:us-east-1:123456789012:activity:Approve",
                "Activity",
            ),
        ] {
            let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": resource, "End": true}}});
            let problems = parse_definition(&def).expect_err(resource);
            let text = problems[0].to_string();
            assert!(text.contains("/States/T/Resource"), "{text}");
            assert!(
                text.contains(words) && text.contains("request-response"),
                "{text}"
            );
        }
        let ok = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true}}});
        assert!(parse_definition(&ok).is_ok());
    }

    #[test]
    fn an_optimized_integrations_unknown_action_is_not_recognized() {
        let task = |r: &str| json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": r, "End": true}}});
        let text = parse_definition(&task("arn:aws:states:::dynamodb:query")).expect_err("refused")
            [0]
        .to_string();
        assert!(
            text.contains("/States/T/Resource")
                && text.contains(
                    "The resource provided arn:aws:states:::dynamodb:query is not recognized"
                )
                && text.contains("arn:aws:states:::aws-sdk:dynamodb:query"),
            "{text}"
        );
        for ok in [
            "arn:aws:states:::dynamodb:putItem",
            "arn:aws:states:::aws-sdk:dynamodb:query",
            "arn:aws:states:::sqs:sendMessage",
            "arn:aws:states:::glue:startJobRun",
            "arn:aws:lambda:us-east-1:123456789012:function:f",
        ] {
            assert!(parse_definition(&task(ok)).is_ok(), "{ok}");
        }
    }

    #[test]
    fn an_item_batcher_needs_a_limit_within_aws_bounds() {
        let map = |batcher: crate::value::Value| {
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemBatcher": batcher, "End": true,
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}})
        };
        for (b, words) in [
            (
                json!({}),
                "ItemBatcher needs MaxItemsPerBatch or MaxInputBytesPerBatch",
            ),
            (json!({"MaxInputBytesPerBatch": 262_145}), "at most 262144"),
            (
                json!({"MaxItemsPerBatch": 2, "Batch": {}}),
                "field \"Batch\" is not allowed",
            ),
        ] {
            let text = parse_definition(&map(b.clone())).expect_err("refused")[0].to_string();
            assert!(
                text.contains("/States/M/ItemBatcher") && text.contains(words),
                "{b}: {text}"
            );
        }
        let mut writer = map(json!({"MaxItemsPerBatch": 1}));
        writer["States"]["M"]["ResultWriter"] =
            json!({"Resource": "arn:aws:states:::s3:putObject"});
        let text = parse_definition(&writer).expect_err("refused")[0].to_string();
        assert!(
            text.contains("/States/M/ResultWriter") && text.contains("not supported yet"),
            "{text}"
        );
        for ok in [
            json!({"MaxItemsPerBatch": 10}),
            json!({"MaxInputBytesPerBatchPath": "$.b", "BatchInput": {"a.$": "$.a"}}),
        ] {
            assert!(parse_definition(&map(ok.clone())).is_ok(), "{ok}");
        }
    }

    /// AWS refuses these labels (LocalStack's recordings of `test_map_state_label_*`).
    #[test]
    fn map_labels_follow_aws_rules() {
        let map = |label: &str| {
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "Label": label, "End": true,
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}})
        };
        for (label, words) in [
            ("", "Label cannot be empty"),
            (&"x".repeat(41), "Label cannot exceed 40 characters"),
            ("a b", "invalid character: ' '"),
            ("a\u{9f}", "invalid character: '\\u{9f}'"),
            ("a:b", "invalid character: ':'"),
            ("a\\b", "invalid character: '\\\\'"),
        ] {
            let text = parse_definition(&map(label)).expect_err(label)[0].to_string();
            assert!(
                text.contains("/States/M/Label") && text.contains(words),
                "{label:?}: {text}"
            );
        }
        for ok in ["batch-1", "Ünïcode_label.v2/x", &"x".repeat(40)] {
            assert!(parse_definition(&map(ok)).is_ok(), "{ok}");
        }
    }

    /// AWS: Credentials names the role to assume (LocalStack's recordings of
    /// `test_invalid_credentials_field`: `{}` and `{"InvalidField": ..}` are refused).
    #[test]
    fn credentials_need_a_role_and_nothing_else() {
        let task = |c: crate::value::Value| {
            json!({"StartAt": "T", "States": {"T": {"Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke", "Credentials": c, "End": true}}})
        };
        for (c, words) in [
            (json!({}), "The field 'RoleArn' is required but was missing"),
            (
                json!({"InvalidField": "x"}),
                "The field 'RoleArn' is required",
            ),
            (
                json!({"RoleArn": "arn:aws:iam::1:role/r", "Extra": 1}),
                "field \"Extra\" is not allowed in Credentials",
            ),
        ] {
            let text = parse_definition(&task(c.clone())).expect_err("refused")[0].to_string();
            assert!(
                text.contains("/States/T/Credentials") && text.contains(words),
                "{c}: {text}"
            );
        }
        for c in [
            json!({"RoleArn": "arn:aws:iam::1:role/r"}),
            json!({"RoleArn.$": "$.role"}),
        ] {
            assert!(parse_definition(&task(c.clone())).is_ok(), "{c}");
        }
    }
}
