//! The executable plan: the validated model with every transition resolved to an index.

use std::collections::HashMap;
use std::sync::Arc;

use crate::asl::model::MachineType;
use crate::asl::model::{Kind, State, StateMachine};
use crate::asl::parse::parse_value_for;
use crate::asl::Problem;

/// A compiled state machine (or branch, or Map item processor), shared read-only.
#[derive(Debug)]
pub struct Plan {
    /// States by index; transitions below point into this vector.
    pub nodes: Vec<Node>,
    /// Index of the first state.
    pub start: usize,
    /// Execution time cap from the definition.
    pub timeout_seconds: Option<u64>,
    /// Whether any expression reads the Context object (`$$`); if not, none is built.
    pub uses_context: bool,
    /// How many call counters an execution of this plan keeps: one per Task state name
    /// and one per resource, over the whole tree of branches and item processors.
    pub call_counters: usize,
}

/// A Task state's handler as resolved by whoever runs the plan, with that resolver's
/// identity: the plan does not know the task handlers, only keeps what they decided.
pub type TaskRoute = std::sync::OnceLock<(u64, Arc<dyn std::any::Any + Send + Sync>)>;

/// One state and its resolved transitions.
#[derive(Debug)]
pub struct Node {
    /// The state as parsed.
    pub state: State,
    /// Where `Next` goes.
    pub next: Option<usize>,
    /// Where each Choice rule goes, in rule order.
    pub choice_next: Vec<usize>,
    /// Where a Choice's Default goes.
    pub default: Option<usize>,
    /// Where each catcher goes, in catcher order.
    pub catch_next: Vec<usize>,
    /// Parallel branches.
    pub branches: Vec<Arc<Plan>>,
    /// Map item processor.
    pub processor: Option<Arc<Plan>>,
    /// A Task state's call counters (by state name, by resource), as indices into the
    /// execution's counters: mocks and built-in tasks answer by the n-th call, and
    /// counting by index costs no hashing or key copy per call.
    pub call_slots: Option<CallSlots>,
    /// A Task state whose handler is given the state's raw input itself, not a copy (see
    /// [`hands_over_input`]).
    pub hands_over_input: bool,
    /// Which handler answers a Task state's calls, as the task handlers resolved it the
    /// first time (see `crate::tasks::Tasks::answer_at`).
    pub task_route: TaskRoute,
    /// Whether running the state may set variables (its Assign, a catcher's or a Choice
    /// rule's): decided once, not per transition.
    pub may_assign: bool,
}

/// Whether running `s` may set variables.
fn may_assign(s: &State) -> bool {
    s.assign.is_some()
        || s.catch.iter().any(|c| c.assign.is_some())
        || matches!(&s.kind, Kind::Choice { rules, .. } if rules.iter().any(|r| r.assign.is_some()))
}

/// Whether a Task state's handler may own the state's raw input: the handler's input is
/// that input unchanged (JSONPath, no InputPath, no Parameters) and nothing reads it after
/// the call (no retrier calls again, no catcher places an error into it, the result
/// replaces it). A handler that builds its result from its input (a built-in merge, a
/// nested execution) then changes it in place instead of copying an object the state
/// still shares.
pub fn hands_over_input(s: &State) -> bool {
    use crate::asl::model::{PathField, QueryLanguage};
    matches!(s.kind, Kind::Task { .. })
        && s.query_language == QueryLanguage::JsonPath
        && matches!(s.input_path, PathField::Default)
        && s.parameters.is_none()
        && s.retry.is_empty()
        && s.catch.is_empty()
        && match &s.result_path {
            PathField::Default => true,
            PathField::Path(p) => p.is_root_only(),
            PathField::Null => false,
        }
}

/// Where a Task state's two call counters are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSlots {
    /// The counter of calls by this state's name.
    pub state: usize,
    /// The counter of calls to this state's resource.
    pub resource: usize,
}

/// Hands out one counter per distinct state name and resource across a plan's tree, so
/// states that share a name (or a resource) share a count, as they did when the counts
/// were kept by name.
#[derive(Default)]
struct Slots<'m> {
    states: HashMap<&'m str, usize>,
    resources: HashMap<&'m str, usize>,
    next: usize,
}

impl<'m> Slots<'m> {
    fn slot(map: &mut HashMap<&'m str, usize>, next: &mut usize, key: &'m str) -> usize {
        *map.entry(key).or_insert_with(|| {
            *next += 1;
            *next - 1
        })
    }

    fn for_state(&mut self, s: &'m State) -> Option<CallSlots> {
        let Kind::Task { resource, .. } = &s.kind else {
            return None;
        };
        Some(CallSlots {
            state: Slots::slot(&mut self.states, &mut self.next, &s.name),
            resource: Slots::slot(&mut self.resources, &mut self.next, resource),
        })
    }
}

impl Plan {
    /// Parses, validates and compiles a definition.
    pub fn load<D: crate::value::convert::AsValue + ?Sized>(
        def: &D,
    ) -> Result<Arc<Plan>, Vec<Problem>> {
        Plan::load_for(def, MachineType::Express)
    }

    /// [`Plan::load`] for a machine of the given type (`exec --type STANDARD`).
    pub fn load_for<D: crate::value::convert::AsValue + ?Sized>(
        def: &D,
        machine: MachineType,
    ) -> Result<Arc<Plan>, Vec<Problem>> {
        let def = def.as_value();
        let sm = parse_value_for(&def, machine)?;
        let text = def.to_string();
        // JSONata reads the Context object as `$states.context`, or within `$states` taken
        // whole (`{% $states %}`, `$lookup($states, $k)`).
        let uses_context = text.contains("$$")
            || (text.contains("$states")
                && (text.contains("context")
                    || !crate::expr::jsonata::mentions_member_only(&text)));
        Ok(Arc::new(Plan::from_model(&sm, uses_context)))
    }

    /// Compiles an already validated model.
    pub fn from_model(sm: &StateMachine, uses_context: bool) -> Plan {
        let mut slots = Slots::default();
        let mut plan = Plan::compile(sm, uses_context, &mut slots);
        plan.call_counters = slots.next;
        plan
    }

    /// Compiles one machine, branch or item processor; `slots` spans the whole tree.
    fn compile<'m>(sm: &'m StateMachine, uses_context: bool, slots: &mut Slots<'m>) -> Plan {
        let index: HashMap<&str, usize> = sm
            .states
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let at = |name: &str| {
            *index
                .get(name)
                .expect("validated: every transition target exists")
        };
        let nodes = sm
            .states
            .iter()
            .map(|s| {
                let (choice_next, default) = match &s.kind {
                    Kind::Choice { rules, default } => (
                        rules.iter().map(|r| at(&r.next)).collect(),
                        default.as_deref().map(at),
                    ),
                    _ => (vec![], None),
                };
                let branches = match &s.kind {
                    Kind::Parallel { branches } => branches
                        .iter()
                        .map(|b| Arc::new(Plan::compile(b, uses_context, slots)))
                        .collect(),
                    _ => vec![],
                };
                let processor = match &s.kind {
                    Kind::Map(spec) => Some(Arc::new(Plan::compile(
                        &spec.processor,
                        uses_context,
                        slots,
                    ))),
                    _ => None,
                };
                Node {
                    state: s.clone(),
                    next: s.next.as_deref().map(at),
                    choice_next,
                    default,
                    catch_next: s.catch.iter().map(|c| at(&c.next)).collect(),
                    branches,
                    processor,
                    call_slots: slots.for_state(s),
                    hands_over_input: hands_over_input(s),
                    task_route: TaskRoute::new(),
                    may_assign: may_assign(s),
                }
            })
            .collect();
        Plan {
            nodes,
            start: at(&sm.start_at),
            timeout_seconds: sm.timeout_seconds,
            uses_context,
            // Set by `from_model` once the whole tree is numbered.
            call_counters: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_task_hands_over_its_input_only_when_nothing_reads_it_after_the_call() {
        let cases = [
            ("Plain", json!({}), true),
            ("RootResult", json!({"ResultPath": "$"}), true),
            ("Merged", json!({"ResultPath": "$.r"}), false),
            ("Discarded", json!({"ResultPath": null}), false),
            ("Params", json!({"Parameters": {"a.$": "$.a"}}), false),
            ("Narrowed", json!({"InputPath": "$.a"}), false),
            (
                "Retried",
                json!({"Retry": [{"ErrorEquals": ["States.ALL"]}]}),
                false,
            ),
            (
                "Caught",
                json!({"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Pass"}]}),
                false,
            ),
            ("Jsonata", json!({"QueryLanguage": "JSONata"}), false),
        ];
        // One chain through every case, ending in a Pass state (never handed anything).
        let mut states = serde_json::Map::new();
        for (i, (name, extra, _)) in cases.iter().enumerate() {
            let next = cases.get(i + 1).map_or("Pass", |c| c.0);
            let mut s = json!({"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:F", "Next": next});
            for (k, v) in extra.as_object().expect("an object") {
                s[k.as_str()] = v.clone();
            }
            states.insert(name.to_string(), s);
        }
        states.insert("Pass".into(), json!({"Type": "Pass", "End": true}));
        let def = json!({"StartAt": "Plain", "States": states});
        let plan = Plan::load(&def).expect("a valid definition");
        let hands: HashMap<&str, bool> = plan
            .nodes
            .iter()
            .map(|n| (n.state.name.as_str(), n.hands_over_input))
            .collect();
        for (name, _, expected) in &cases {
            assert_eq!(hands[name], *expected, "{name}");
        }
        assert!(!hands["Pass"]);
    }
}
