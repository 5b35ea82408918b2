//! Map: runs the item processor for every item, at most MaxConcurrency at a time,
//! failing once more items failed than ToleratedFailureCount/Percentage allow.

use std::sync::Arc;
use std::task::Poll;

use crate::value::Value;
use futures::future::LocalBoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};

use super::frame::{amount, is_execution_timeout, show_number, Exec, Frame, FromText, RunMachine};
use super::log::Severity;
use crate::asl::model::{Amount, ItemBatcher, MapSpec, PathField, QueryLanguage};
use crate::asl::parse::MAX_BATCH_BYTES;
use crate::compile::plan::Node;
use crate::error::{names, WorkflowError};
use crate::exec::json_size;
use crate::expr::context::Context;
use crate::expr::vars::Vars;
use crate::expr::Env;

/// Runs a Map state over its effective input; the result is the outputs in item order.
pub(crate) async fn run(
    ex: &Exec<'_>,
    node: &Node,
    spec: &MapSpec,
    eff: &Value,
    frame: &Frame,
    run_machine: RunMachine,
) -> Result<Value, WorkflowError> {
    let env = frame.env(eff);
    let jsonata = node.state.query_language == QueryLanguage::Jsonata;
    let items = match &spec.items_path {
        _ if spec.items.is_some() => {
            let q = spec.items.as_ref().expect("checked just above");
            std::borrow::Cow::Owned(q.eval(&frame.scope(eff, None, None), "Items")?)
        }
        PathField::Path(p) => p
            .eval_checked(&env)
            .map_err(|e| e.error(p.text(), "ItemsPath"))?
            .ok_or_else(|| {
            WorkflowError::runtime(format!(
                "The JSONPath '{}' specified for the field 'ItemsPath' could not be found in the input '{eff}'",
                p.text()
            ))
        })?,
        _ => std::borrow::Cow::Borrowed(eff),
    };
    let Value::Array(items) = items.as_ref() else {
        if let Some(e) = spec.items.as_ref().and_then(|q| q.as_expr()) {
            return Err(WorkflowError::new(
                names::QUERY_EVALUATION_ERROR,
                format!(
                    "The JSONata expression '{}' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was '{}' for value: {}",
                    e.text(),
                    items.json_type(),
                    items.as_ref()
                ),
            ));
        }
        if jsonata {
            return Err(WorkflowError::new(
                names::QUERY_EVALUATION_ERROR,
                format!(
                    "Map state input must be an array but was: {}",
                    items.as_ref()
                ),
            ));
        }
        let path = match &spec.items_path {
            PathField::Path(p) => Some(p.text()),
            _ => None,
        };
        return Err(WorkflowError::runtime(items_not_an_array(
            path,
            items.as_ref(),
        )));
    };

    let concurrency = count(
        spec.max_concurrency.as_ref(),
        &env,
        ["MaxConcurrency", "MaxConcurrencyPath"],
        "MaxConcurrency must be a non-negative integer",
    )?;
    let tolerated_count = count(
        spec.tolerated_failure_count.as_ref(),
        &env,
        ["ToleratedFailureCount", "ToleratedFailureCountPath"],
        "ToleratedFailureCount cannot be negative.",
    )?;
    let tolerated_pct = amount(
        spec.tolerated_failure_percentage.as_ref(),
        &env,
        "ToleratedFailurePercentagePath",
        FromText::Float,
    )?;
    if tolerated_pct.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
        return Err(WorkflowError::runtime(
            "ToleratedFailurePercentage must be between 0 and 100.",
        ));
    }
    // AWS runs at most 40 iterations of an inline Map at once, whatever MaxConcurrency
    // says; iterations are started (and their inputs built) only as earlier ones finish.
    let limit = match concurrency.unwrap_or(0) {
        0 => MAX_INLINE_CONCURRENCY,
        n => usize::try_from(n).map_or(MAX_INLINE_CONCURRENCY, |n| n.min(MAX_INLINE_CONCURRENCY)),
    };
    let processor = node
        .processor
        .as_ref()
        .expect("a Map node always has a processor");
    let outer = Arc::new(frame.vars.clone());
    let item_ctx = |i: usize, item: &Value| {
        if ex.uses_context {
            frame.ctx.for_map_item(i, item.clone())
        } else {
            frame.ctx.clone()
        }
    };
    let item_input = |i: usize, item: &Value| -> Result<(Context, Value), WorkflowError> {
        let ctx = item_ctx(i, item);
        let env = Env {
            input: eff,
            context: &ctx,
            vars: &frame.vars,
        };
        let input = match (&spec.item_selector, &spec.item_query) {
            (Some(t), _) => t.eval(&env)?,
            (None, Some(q)) => q.eval(&env.scope(), "ItemSelector")?,
            (None, None) => item.clone(),
        };
        Ok((ctx, input))
    };
    // AWS fails a Map whose ItemSelector fails for any item before any iteration runs:
    // check every item first, keeping nothing, then build each input again as it starts.
    if spec.item_selector.is_some() || spec.item_query.is_some() {
        for (i, item) in items.iter().enumerate() {
            // A selector that copies much per item makes this loop long: keep it within
            // the execution's time cap like any other busy loop.
            if i % 256 == 255 {
                ex.check_deadline()?;
            }
            item_input(i, item)?;
        }
    }

    // With an ItemBatcher each iteration runs one batch of the selected items. They are
    // all built before the first batch runs, so each is charged to the memory cap as it
    // is built (a selector can make every item far larger than it was).
    const BATCHES: &str = "the batches of an ItemBatcher";
    let mut batches_held = None;
    let batched: Option<Vec<Value>> = match &spec.item_batcher {
        None => None,
        Some(b) => {
            let held = batches_held.insert(ex.budget.hold(0, BATCHES)?);
            let mut selected = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if i % 256 == 255 {
                    ex.check_deadline()?;
                }
                let v = item_input(i, item)?.1;
                held.absorb(ex.budget.hold_value(&v, BATCHES)?);
                selected.push(v);
            }
            Some(batches(b, frame, eff, selected)?)
        }
    };
    let items: &[Value] = batched.as_deref().unwrap_or(items);
    let item_input = |i: usize, item: &Value| -> Result<(Context, Value), WorkflowError> {
        match batched {
            Some(_) => Ok((item_ctx(i, item), item.clone())),
            None => item_input(i, item),
        }
    };
    let total = items.len();
    // AWS's history: MapStateStarted once the items are known, MapIterationStarted and
    // MapIterationSucceeded/Failed round each iteration, MapStateSucceeded at the end.
    let iteration = |kind: &str, severity: Severity, i: usize| {
        ex.event(kind, severity, || {
            let mut d = crate::value::Map::new();
            d.insert("index".into(), Value::from(i));
            d.insert("name".into(), Value::from(node.state.name.as_str()));
            d
        })
    };
    ex.event("MapStateStarted", Severity::Info, || {
        let mut d = crate::value::Map::new();
        d.insert("length".into(), Value::from(total));
        d
    });
    let what_out = format!("the outputs of Map state '{}'", node.state.name);
    let outer = &outer;
    // An iteration starts (its frame charging its input to the memory cap) only when a
    // slot under the concurrency limit is free.
    let start = |i: usize, item: &Value| -> LocalBoxFuture<'_, Result<Value, WorkflowError>> {
        match item_input(i, item) {
            Ok((ctx, input)) => {
                let f = Frame {
                    ctx,
                    vars: Vars::inner(outer),
                };
                run_machine(ex, processor, input, f, None)
            }
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    };

    let tolerates = tolerated_count.is_some() || tolerated_pct.is_some();
    // Filled as iterations finish, in whatever order they do.
    let mut out = vec![Value::Null; total];
    let mut held = ex.budget.hold(0, &what_out)?;
    let mut failed = 0usize;
    // Takes iteration `i`'s outcome, in the order iterations finish: the first failure past
    // the tolerance fails the Map then, as on AWS, not after every earlier item is done.
    // The output slots are one per item, as many as the items already in memory.
    let mut take = |i: usize, r: Result<Value, WorkflowError>| -> Result<(), WorkflowError> {
        match &r {
            Ok(_) => iteration("MapIterationSucceeded", Severity::Info, i),
            Err(_) => iteration("MapIterationFailed", Severity::Error, i),
        }
        let v = match r {
            Ok(v) => v,
            Err(e) if !tolerates || is_execution_timeout(&e) => return Err(e),
            Err(e) => {
                failed += 1;
                // Either threshold, once exceeded, fails the whole Map.
                let over_count = tolerated_count.is_some_and(|c| failed as u64 > c);
                let over_pct =
                    tolerated_pct.is_some_and(|p| failed as f64 * 100.0 / total as f64 > p);
                if over_count || over_pct {
                    return Err(WorkflowError::new(
                        names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                        "The specified tolerated failure threshold was exceeded",
                    ));
                }
                super::io::error_output(&e)
            }
        };
        held.absorb(ex.budget.hold_value(&v, &what_out)?);
        out[i] = v;
        Ok(())
    };
    // At most `limit` iterations run at once; one that has finished frees its slot, as
    // on AWS, even while an earlier one still waits. One that finishes at its first poll
    // (nothing in it waits) is taken at once and never enters the set, whose bookkeeping
    // per iteration (a task node, its waker, the ready queue) was ~750 instructions an
    // item on map-parallel.
    let mut running = FuturesUnordered::new();
    let mut next = items.iter().enumerate();
    loop {
        while running.len() < limit {
            let Some((i, item)) = next.next() else { break };
            iteration("MapIterationStarted", Severity::Info, i);
            let mut run = start(i, item);
            match futures::poll!(run.as_mut()) {
                Poll::Ready(r) => take(i, r)?,
                Poll::Pending => running.push(async move { (i, run.await) }),
            }
        }
        match running.next().await {
            Some((i, r)) => take(i, r)?,
            None => break,
        }
    }
    ex.event("MapStateSucceeded", Severity::Info, crate::value::Map::new);
    Ok(Value::Array(out.into()))
}

/// Groups the selected items into ItemBatcher batches, `{"BatchInput": .., "Items": [..]}`
/// (BatchInput only when the batcher has one): each holds up to MaxItemsPerBatch items
/// and up to MaxInputBytesPerBatch bytes of JSON, its wrapping and BatchInput included,
/// but always at least one item.
fn batches(
    b: &ItemBatcher,
    frame: &Frame,
    eff: &Value,
    selected: Vec<Value>,
) -> Result<Vec<Value>, WorkflowError> {
    let env = frame.env(eff);
    let positive = |a: Option<&Amount>, names: [&str; 2]| -> Result<Option<u64>, WorkflowError> {
        let why = format!("{} must be a positive integer", names[0]);
        match count(a, &env, names, &why)? {
            Some(0) => Err(WorkflowError::runtime(why)),
            n => Ok(n),
        }
    };
    let max_items = positive(
        b.max_items.as_ref(),
        ["MaxItemsPerBatch", "MaxItemsPerBatchPath"],
    )?;
    let max_bytes = positive(
        b.max_bytes.as_ref(),
        ["MaxInputBytesPerBatch", "MaxInputBytesPerBatchPath"],
    )?;
    if max_bytes.is_some_and(|m| m > MAX_BATCH_BYTES as u64) {
        return Err(WorkflowError::runtime(format!(
            "MaxInputBytesPerBatch must be at most {MAX_BATCH_BYTES}"
        )));
    }
    let batch_input = match (&b.batch_input, &b.batch_input_query) {
        (Some(t), _) => Some(t.eval(&env)?),
        (None, Some(q)) => Some(q.eval(&frame.scope(eff, None, None), "BatchInput")?),
        (None, None) => None,
    };
    let cap = MAX_BATCH_BYTES + 1;
    // `{"Items":[]}` round the items, and `"BatchInput":..,` when there is one.
    let wrapping = 12 + batch_input.as_ref().map_or(0, |v| 14 + json_size(v, cap)) as u64;
    let make = |items: Vec<Value>| {
        let mut m = crate::value::Map::with_capacity(2);
        if let Some(v) = &batch_input {
            m.insert("BatchInput".into(), v.clone());
        }
        m.insert("Items".into(), Value::Array(items.into()));
        Value::Object(m)
    };
    let mut out = Vec::new();
    let (mut current, mut bytes) = (Vec::new(), wrapping);
    for item in selected {
        // An item after the first also takes a comma.
        let size = json_size(&item, cap) as u64 + u64::from(!current.is_empty());
        let full = max_items.is_some_and(|m| current.len() as u64 >= m)
            || max_bytes.is_some_and(|m| !current.is_empty() && bytes + size > m);
        if full {
            out.push(make(std::mem::take(&mut current)));
            bytes = wrapping;
        }
        bytes += size - u64::from(full);
        current.push(item);
    }
    if !current.is_empty() {
        out.push(make(current));
    }
    Ok(out)
}

/// AWS's cap on the iterations of an inline Map that run at once.
const MAX_INLINE_CONCURRENCY: usize = 40;

/// [`whole_amount`] of a count given as `names[0]` or read from the data by `names[1]`
/// (its Path, or an expression).
fn count(
    a: Option<&Amount>,
    env: &Env,
    names: [&str; 2],
    why: &str,
) -> Result<Option<u64>, WorkflowError> {
    whole_amount(amount(a, env, names[1], FromText::Integer)?, names[0], why)
}

/// A count read from the definition or the data: a non-negative whole number that fits
/// a `u64`, or `States.Runtime` naming the field and the value.
fn whole_amount(v: Option<f64>, field: &str, why: &str) -> Result<Option<u64>, WorkflowError> {
    match v {
        None => Ok(None),
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
        Some(f) if f < 0.0 => Err(WorkflowError::runtime(why)),
        Some(f) => Err(WorkflowError::runtime(format!(
            "{field} must be a non-negative integer that fits 64 bits, not {}",
            show_number(f)
        ))),
    }
}

/// The cause of a JSONPath Map whose items are not an array. AWS words it by where
/// ItemsPath points: into the Context object (`$$...`) it names the path, `$` for `$$`
/// (LocalStack's TestState recordings `test_state_map_context_object`); into the input it
/// shows the value.
pub fn items_not_an_array(items_path: Option<&str>, items: &Value) -> String {
    match items_path.and_then(|p| p.strip_prefix('$')) {
        Some(rest) if rest.starts_with('$') => {
            format!("Reference path \"{rest}\" must point to array.")
        }
        _ => format!("Map state input must be an array, but was: {items}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a Map over items 0..6 whose odd items wait 10 seconds, under a cap of `cap`
    /// seconds on the virtual clock.
    fn waiting_map(max_concurrency: u32, cap: u64) -> crate::exec::Outcome {
        use crate::exec::{execute_blocking, ClockMode, ExecOptions};
        let def = serde_json::json!({"StartAt": "M", "States": {"M": {
            "Type": "Map", "MaxConcurrency": max_concurrency, "End": true,
            "ItemProcessor": {"StartAt": "Odd?", "States": {
                "Odd?": {"Type": "Choice", "Default": "Done",
                         "Choices": [{"Variable": "$.n", "NumericEqualsPath": "$.odd", "Next": "Sleep"}]},
                "Sleep": {"Type": "Wait", "Seconds": 10, "Next": "Done"},
                "Done": {"Type": "Pass", "Parameters": {"item.$": "$.n"}, "End": true}}}}}});
        let plan = crate::compile::plan::Plan::load(&def).expect("a valid definition");
        let items: Vec<Value> = (0..6)
            .map(|n| crate::json!({"n": n, "odd": if n % 2 == 1 { n } else { -1 }}))
            .collect();
        let opts = ExecOptions {
            max_duration: std::time::Duration::from_secs(cap),
            ..ExecOptions::default()
        };
        let tasks = crate::tasks::Tasks::new();
        execute_blocking(&plan, Value::from(items), &tasks, &opts, ClockMode::Virtual)
    }

    #[test]
    fn iterations_that_wait_run_side_by_side_and_outputs_keep_item_order() {
        use crate::exec::Status::{Succeeded, TimedOut};
        // Three 10 s waits side by side end in 10 s; one after another would be 30.
        let out = waiting_map(0, 15);
        let expected: Vec<Value> = (0..6).map(|n| crate::json!({"item": n})).collect();
        assert_eq!(
            (out.status, out.output),
            (Succeeded, Some(Value::from(expected)))
        );
        // Two at a time: the three waits take two rounds (20 s), not three (30 s: a finished
        // iteration must not hold its slot until the ones before it finish).
        for (cap, status) in [(15, TimedOut), (25, Succeeded)] {
            let out = waiting_map(2, cap);
            assert_eq!(out.status, status, "cap {cap} s: {:?}", out.cause);
        }
    }

    #[test]
    fn counts_must_be_whole_non_negative_and_fit() {
        let w = |f| {
            whole_amount(
                Some(f),
                "MaxConcurrency",
                "MaxConcurrency must be a non-negative integer",
            )
        };
        assert_eq!(w(0.0).ok(), Some(Some(0)));
        assert_eq!(w(40.0).ok(), Some(Some(40)));
        for bad in [-1.0, 0.5, 1e300, f64::INFINITY] {
            let e = w(bad).expect_err("a bad count is an error");
            assert_eq!(e.name(), names::RUNTIME);
            assert!(e.cause.unwrap_or_default().contains("MaxConcurrency"));
        }
        assert_eq!(whole_amount(None, "x", "y").ok(), Some(None));
    }

    /// A Map whose `field` reads `$.v` (JSONPath) and `$v` (a variable set by Assign).
    fn map_reading(field: &str, v: serde_json::Value) -> Vec<crate::exec::Outcome> {
        use crate::exec::{execute_blocking, ClockMode, ExecOptions};
        ["$.v", "$v"]
            .into_iter()
            .map(|path| {
                let def = serde_json::json!({"StartAt": "S", "States": {
                    "S": {"Type": "Pass", "Assign": {"v.$": "$.v"}, "Next": "M"},
                    "M": {"Type": "Map", "ItemsPath": "$.items", field: path, "End": true,
                          "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}});
                let plan = crate::compile::plan::Plan::load(&def).expect("a valid definition");
                let input = Value::from(serde_json::json!({"items": [1, 2, 3], "v": v}));
                let tasks = crate::tasks::Tasks::new();
                execute_blocking(&plan, input, &tasks, &ExecOptions::default(), ClockMode::Virtual)
            })
            .collect()
    }

    /// AWS reads a number written as a string in these fields (recorded for
    /// MaxConcurrencyPath and both ToleratedFailure paths, from a variable `"1"`), and names
    /// the value, the kind and the path when the string holds none.
    #[test]
    fn map_count_paths_take_numbers_written_as_strings() {
        use crate::exec::Status::{Failed, Succeeded};
        for (field, good, kind) in [
            ("MaxConcurrencyPath", "1", "integer"),
            ("ToleratedFailureCountPath", "1", "integer"),
            ("ToleratedFailurePercentagePath", "12.5", "float"),
        ] {
            for out in map_reading(field, serde_json::json!(good)) {
                assert_eq!(out.status, Succeeded, "{field} = {good:?}: {:?}", out.cause);
                assert_eq!(out.output, Some(crate::json!([1, 2, 3])));
            }
            for (out, path) in map_reading(field, serde_json::json!("NoNumber"))
                .iter()
                .zip(["$.v", "$v"])
            {
                assert_eq!(out.status, Failed);
                let cause = out.cause.as_deref().unwrap_or_default();
                let want = format!(
                    "The {field} field refers to value \"NoNumber\" which is not a valid {kind}: {path}"
                );
                assert!(cause.contains(&want), "{cause}");
            }
        }
        // A string holding a fraction is not a whole count.
        for out in map_reading("MaxConcurrencyPath", serde_json::json!("1.5")) {
            assert_eq!(out.status, Failed, "{:?}", out.output);
        }
    }

    fn run_map(def: serde_json::Value, input: serde_json::Value) -> crate::exec::Outcome {
        use crate::exec::{execute_blocking, ClockMode, ExecOptions};
        let plan = crate::compile::plan::Plan::load(&def).expect("a valid definition");
        execute_blocking(
            &plan,
            Value::from(&input),
            &crate::tasks::Tasks::new(),
            &ExecOptions::default(),
            ClockMode::Virtual,
        )
    }

    /// ItemBatcher: each iteration gets `{"BatchInput", "Items"}`, the items already
    /// through ItemSelector (their `$$.Map.Item` is the item's own), up to
    /// MaxItemsPerBatch of them.
    #[test]
    fn an_item_batcher_hands_each_iteration_a_batch() {
        let out = run_map(
            serde_json::json!({"StartAt": "M", "States": {"M": {"Type": "Map",
                "ItemsPath": "$.xs", "End": true,
                "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
                "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"k.$": "$.k"}},
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass",
                    "Parameters": {"n.$": "States.ArrayLength($.Items)", "b.$": "$.BatchInput",
                                   "first.$": "$.Items[0].v"}, "End": true}}}}}}),
            serde_json::json!({"xs": [10, 11, 12, 13, 14], "k": "K"}),
        );
        assert_eq!(
            out.status,
            crate::exec::Status::Succeeded,
            "{:?}",
            out.cause
        );
        assert_eq!(
            out.output,
            Some(crate::json!([
                {"n": 2, "b": {"k": "K"}, "first": 10},
                {"n": 2, "b": {"k": "K"}, "first": 12},
                {"n": 1, "b": {"k": "K"}, "first": 14}
            ]))
        );
    }

    /// MaxInputBytesPerBatch counts the batch's JSON, `{"Items":[..]}` included, and a
    /// batch always takes one item.
    #[test]
    fn an_item_batcher_counts_bytes_and_refuses_a_zero_limit() {
        let def = |batcher: serde_json::Value| {
            serde_json::json!({"StartAt": "M", "States": {"M": {"Type": "Map",
                "ItemsPath": "$.xs", "ItemBatcher": batcher, "End": true,
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}})
        };
        // Each item is 12 bytes of JSON: two make `{"Items":["..","..."]}`, 37 bytes.
        let xs = serde_json::json!({"xs": ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccccccccccccccccccccccccccccccccc"], "n": 0});
        for (limit, sizes) in [(37, vec![2, 1]), (36, vec![1, 1, 1])] {
            let out = run_map(
                def(serde_json::json!({"MaxInputBytesPerBatch": limit})),
                xs.clone(),
            );
            let batches = out.output.expect("succeeded");
            let got: Vec<usize> = batches
                .as_array()
                .expect("an array")
                .iter()
                .map(|b| b["Items"].as_array().map_or(0, |a| a.len()))
                .collect();
            assert_eq!(got, sizes, "limit {limit}");
        }
        let out = run_map(def(serde_json::json!({"MaxItemsPerBatchPath": "$.n"})), xs);
        assert_eq!(out.status, crate::exec::Status::Failed);
        let cause = out.cause.unwrap_or_default();
        assert!(
            cause.contains("MaxItemsPerBatch must be a positive integer"),
            "{cause}"
        );
    }

    /// The selected items are all built before the first batch runs: each is charged to
    /// the execution's memory cap as it is built, so a selector that makes every item large
    /// fails the execution, not the process. (Each batch alone, 10 items of 2 KB, and its
    /// output fit the cap; the 2,000 items built up front, 4 MB, do not.)
    #[test]
    fn an_item_batchers_items_count_against_the_memory_cap() {
        use crate::exec::{execute_blocking, ClockMode, ExecOptions};
        let def = serde_json::json!({"StartAt": "M", "States": {"M": {"Type": "Map",
            "ItemsPath": "$.xs", "ItemSelector": {"p.$": "$.pad", "i.$": "$$.Map.Item.Value"},
            "ItemBatcher": {"MaxItemsPerBatch": 10}, "End": true,
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "End": true}}}}}});
        let plan = crate::compile::plan::Plan::load(&def).expect("a valid definition");
        let input = crate::json!({"xs": (0..2000).collect::<Vec<_>>(), "pad": "x".repeat(2000)});
        let opts = ExecOptions {
            max_memory_bytes: 1 << 20,
            ..ExecOptions::default()
        };
        let out = execute_blocking(
            &plan,
            input,
            &crate::tasks::Tasks::new(),
            &opts,
            ClockMode::Virtual,
        );
        assert_eq!(
            out.error.as_deref(),
            Some(names::DATA_LIMIT_EXCEEDED),
            "{:?}",
            out.cause
        );
    }
}
