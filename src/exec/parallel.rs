//! Parallel: every branch runs concurrently on the same input; the first failure stops the rest.

use std::sync::Arc;

use crate::value::Value;
use futures::future::try_join_all;

use super::frame::{Exec, Frame, RunMachine};
use crate::compile::plan::Node;
use crate::error::WorkflowError;
use crate::expr::vars::Vars;

/// Runs the branches of a Parallel state; the result is their outputs in branch order.
pub(crate) async fn run(
    ex: &Exec<'_>,
    node: &Node,
    input: Value,
    frame: &Frame,
    run_machine: RunMachine,
) -> Result<Value, WorkflowError> {
    // Branches read the enclosing variables; what they assign stays inside them.
    let outer = Arc::new(frame.vars.clone());
    let mut runs = Vec::with_capacity(node.branches.len());
    for b in &node.branches {
        // Each branch's copy of the input is made here, before any branch runs: count it
        // until the branch's own frame counts it (as it starts).
        let held_in = ex
            .budget
            .hold_value(&input, "the inputs of a Parallel state's branches")?;
        let f = Frame {
            ctx: frame.ctx.clone(),
            vars: Vars::inner(&outer),
        };
        let run = run_machine(ex, b, input.clone(), f, None);
        runs.push(async move {
            drop(held_in);
            let out = run.await?;
            // A branch's output is held until every branch has finished.
            let held_out = ex
                .budget
                .hold_value(&out, "the outputs of a Parallel state's branches")?;
            Ok::<_, WorkflowError>((out, held_out))
        });
    }
    let done = try_join_all(runs).await?;
    Ok(Value::Array(done.into_iter().map(|(v, _)| v).collect()))
}
