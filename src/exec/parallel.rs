//! Parallel: every branch runs concurrently on the same input; the first failure stops the rest.

use std::sync::Arc;

use crate::value::Value;
use futures::future::try_join_all;

use super::frame::{Exec, Frame, RunMachine};
use super::log::Severity;
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
    // AWS's history: ParallelStateStarted after entering, ParallelStateSucceeded before
    // leaving (ParallelStateFailed is the failure's, counted where the state ends).
    ex.event(
        "ParallelStateStarted",
        Severity::Info,
        crate::value::Map::new,
    );
    // Branches read the enclosing variables; what they assign stays inside them.
    let outer = Arc::new(frame.vars.clone());
    let mut runs = Vec::with_capacity(node.branches.len());
    // Every branch is handed the same input: a clone is a pointer, so what a branch adds
    // is a handle on a tree the execution holds already. It is charged as the branch's own
    // frame charges its data once it starts: by JSON size, which the input remembers (a
    // memory walk of the whole input here was ~2 % of map-parallel).
    let input_bytes = ex.budget.measure_json(&input);
    for b in &node.branches {
        // Each branch's copy of the input is made here, before any branch runs: count it
        // until the branch's own frame counts it (as it starts).
        let held_in = ex
            .budget
            .hold(input_bytes, "the inputs of a Parallel state's branches")?;
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
    ex.event(
        "ParallelStateSucceeded",
        Severity::Info,
        crate::value::Map::new,
    );
    Ok(Value::Array(done.into_iter().map(|(v, _)| v).collect()))
}

#[cfg(test)]
mod tests {
    use crate::exec::{execute_blocking, ClockMode, ExecOptions, Status};
    use crate::json;

    /// Runs a Parallel of `branches` Pass branches on an input of ~200 KB of strings
    /// under a memory cap of 1 MB.
    fn run(branches: usize) -> crate::exec::Outcome {
        let branch =
            json!({"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": 1, "End": true}}});
        let def = json!({"StartAt": "P", "States": {"P": {
            "Type": "Parallel", "End": true,
            "Branches": vec![branch; branches]}}});
        let plan = crate::compile::plan::Plan::load(&def).expect("a valid definition");
        let opts = ExecOptions {
            max_memory_bytes: 1_000_000,
            ..ExecOptions::default()
        };
        let input = json!({"blob": "x".repeat(200_000)});
        let tasks = crate::tasks::Tasks::new();
        execute_blocking(&plan, input, &tasks, &opts, ClockMode::Virtual)
    }

    #[test]
    fn every_branch_is_charged_its_input_before_any_runs() {
        // The execution's frame holds the input once (~200 KB); each branch is charged
        // it again as it is created: two branches fit the cap, six do not.
        assert_eq!(run(2).status, Status::Succeeded);
        let over = run(6);
        assert_eq!(over.status, Status::Failed);
        assert_eq!(over.error.as_deref(), Some("States.DataLimitExceeded"));
        assert!(
            over.cause
                .as_deref()
                .is_some_and(|c| c.contains("the inputs of a Parallel state's branches")),
            "{:?}",
            over.cause
        );
    }
}
