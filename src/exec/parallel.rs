//! Parallel: every branch runs concurrently on the same input; the first failure stops the rest.

use std::sync::Arc;

use futures::future::try_join_all;
use serde_json::Value;

use super::run::{run_machine, Exec, Frame};
use crate::compile::plan::Node;
use crate::error::WorkflowError;
use crate::exec::vars::Vars;

/// Runs the branches of a Parallel state; the result is their outputs in branch order.
pub(crate) async fn run(
    ex: &Exec<'_>,
    node: &Node,
    input: Value,
    frame: &Frame,
) -> Result<Value, WorkflowError> {
    // Branches read the enclosing variables; what they assign stays inside them.
    let outer = Arc::new(frame.vars.clone());
    let runs = node.branches.iter().map(|b| {
        let f = Frame {
            ctx: frame.ctx.clone(),
            vars: Vars::inner(&outer),
        };
        run_machine(ex, b, input.clone(), f, None)
    });
    try_join_all(runs).await.map(Value::Array)
}
