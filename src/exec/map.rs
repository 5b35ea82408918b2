//! Map: runs the item processor for every item, at most MaxConcurrency at a time,
//! failing once more items failed than ToleratedFailureCount/Percentage allow.

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde_json::Value;

use super::context;
use super::run::{amount, run_machine, Exec, Frame};
use crate::asl::model::{MapSpec, PathField};
use crate::compile::plan::Node;
use crate::error::{names, WorkflowError};
use crate::exec::vars::Vars;

/// Runs a Map state over its effective input; the result is the outputs in item order.
pub(crate) async fn run(
    ex: &Exec<'_>,
    node: &Node,
    spec: &MapSpec,
    eff: &Value,
    frame: &Frame,
) -> Result<Value, WorkflowError> {
    let env = frame.env(eff);
    let items = match &spec.items_path {
        PathField::Path(p) => p.eval(&env).ok_or_else(|| {
            WorkflowError::runtime(format!(
                "The JSONPath '{}' specified for the field 'ItemsPath' could not be found in the input '{eff}'",
                p.text()
            ))
        })?,
        _ => std::borrow::Cow::Borrowed(eff),
    };
    let Value::Array(items) = items.as_ref() else {
        return Err(WorkflowError::runtime(format!(
            "Map state input must be an array, but was: {}",
            items.as_ref()
        )));
    };

    let concurrency = amount(spec.max_concurrency.as_ref(), &env, "MaxConcurrencyPath")?;
    let tolerated_count = amount(
        spec.tolerated_failure_count.as_ref(),
        &env,
        "ToleratedFailureCountPath",
    )?;
    let tolerated_pct = amount(
        spec.tolerated_failure_percentage.as_ref(),
        &env,
        "ToleratedFailurePercentagePath",
    )?;
    if concurrency.is_some_and(|c| c < 0.0 || c.fract() != 0.0) {
        return Err(WorkflowError::runtime(
            "MaxConcurrency must be a non-negative integer",
        ));
    }
    if tolerated_count.is_some_and(|c| c < 0.0) {
        return Err(WorkflowError::runtime(
            "ToleratedFailureCount cannot be negative.",
        ));
    }
    if tolerated_pct.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
        return Err(WorkflowError::runtime(
            "ToleratedFailurePercentage must be between 0 and 100.",
        ));
    }
    let limit = match concurrency.unwrap_or(0.0) as usize {
        0 => items.len().max(1),
        n => n,
    };
    let processor = node
        .processor
        .as_ref()
        .expect("a Map node always has a processor");
    let outer = Arc::new(frame.vars.clone());

    // Item inputs are built up front so a bad ItemSelector fails before any iteration runs.
    let mut inputs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut ctx = frame.ctx.clone();
        if let Some(c) = ctx.as_mut() {
            context::set_map_item(c, i, item);
        }
        let input = match &spec.item_selector {
            Some(t) => {
                let f = Frame {
                    ctx,
                    vars: frame.vars.clone(),
                };
                let v = t.eval(&f.env(eff))?;
                ctx = f.ctx;
                v
            }
            None => item.clone(),
        };
        inputs.push((ctx, input));
    }

    let total = inputs.len();
    let mut runs = stream::iter(inputs.into_iter().map(|(ctx, input)| {
        let f = Frame {
            ctx,
            vars: Vars::inner(&outer),
        };
        run_machine(ex, processor, input, f, None)
    }))
    .buffered(limit);

    let tolerates = tolerated_count.is_some() || tolerated_pct.is_some();
    let mut out = Vec::with_capacity(total);
    let mut failed = 0usize;
    while let Some(r) = runs.next().await {
        match r {
            Ok(v) => out.push(v),
            Err(e) if !tolerates || super::run::is_execution_timeout(&e) => return Err(e),
            Err(e) => {
                failed += 1;
                // Either threshold, once exceeded, fails the whole Map.
                let over_count = tolerated_count.is_some_and(|c| failed as f64 > c);
                let over_pct =
                    tolerated_pct.is_some_and(|p| failed as f64 * 100.0 / total as f64 > p);
                if over_count || over_pct {
                    return Err(WorkflowError::new(
                        names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                        "The specified tolerated failure threshold was exceeded",
                    ));
                }
                out.push(super::io::error_output(&e));
            }
        }
    }
    Ok(Value::Array(out))
}
