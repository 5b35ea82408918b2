//! The executable plan: the validated model with every transition resolved to an index.

use std::collections::HashMap;
use std::sync::Arc;

use crate::asl::model::{Kind, State, StateMachine};
use crate::asl::parse::parse_definition;
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
}

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
}

impl Plan {
    /// Parses, validates and compiles a definition.
    pub fn load<D: crate::value::convert::AsValue + ?Sized>(
        def: &D,
    ) -> Result<Arc<Plan>, Vec<Problem>> {
        let def = def.as_value();
        let sm = parse_definition(&*def)?;
        let text = def.to_string();
        // JSONata reads the Context object as `$states.context`.
        let uses_context =
            text.contains("$$") || (text.contains("$states") && text.contains("context"));
        Ok(Arc::new(Plan::from_model(&sm, uses_context)))
    }

    /// Compiles an already validated model.
    pub fn from_model(sm: &StateMachine, uses_context: bool) -> Plan {
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
                        .map(|b| Arc::new(Plan::from_model(b, uses_context)))
                        .collect(),
                    _ => vec![],
                };
                let processor = match &s.kind {
                    Kind::Map(spec) => {
                        Some(Arc::new(Plan::from_model(&spec.processor, uses_context)))
                    }
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
                }
            })
            .collect();
        Plan {
            nodes,
            start: at(&sm.start_at),
            timeout_seconds: sm.timeout_seconds,
            uses_context,
        }
    }
}
