//! What every part of one execution shares: the [`Exec`] of the whole execution, the
//! [`Frame`] of one thread of control, and the helpers the state loop (`run.rs`), Map and
//! Parallel all use. Map and Parallel run their sub-machines through a [`RunMachine`]
//! they are handed, so the three form no cycle.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;

use super::log::EventLog;
use super::memory::Budget;
use super::ExecOptions;
use crate::asl::model::Amount;
use crate::compile::plan::Plan;
use crate::error::{names, WorkflowError};
use crate::expr::context::Context;
use crate::expr::jsonata::{Limits, Scope};
use crate::expr::query::eval_expr;
use crate::expr::vars::Vars;
use crate::expr::Env;
use crate::tasks::Tasks;
use crate::value::Value;

/// Runs a machine (or a branch, or an iteration) from its start state to its end: the
/// state loop's entry, handed to Map and Parallel.
pub(crate) type RunMachine = for<'a> fn(
    &'a Exec<'a>,
    &'a Plan,
    Value,
    Frame,
    Option<usize>,
) -> LocalBoxFuture<'a, Result<Value, WorkflowError>>;

/// What all frames of one execution share.
pub(crate) struct Exec<'a> {
    pub tasks: &'a Tasks,
    pub opts: &'a ExecOptions,
    pub uses_context: bool,
    /// What the execution holds beyond its current data, against its memory cap.
    pub budget: Budget,
    /// Task calls so far, by the counter slots the plan gave each state name and resource;
    /// inline up to 16 slots (8 Task states with a resource each), so that most executions
    /// allocate nothing for them.
    pub(super) calls: RefCell<smallvec::SmallVec<[u32; 16]>>,
    pub(super) call_counters: usize,
    /// Wall-clock start, read only if something asks for the time (it costs a clock read).
    pub(super) start_wall: std::cell::OnceCell<DateTime<Utc>>,
    /// The execution's clock (virtual under a paused runtime) from the first time anything
    /// reads it, for the reason `start_real` gives: what runs before that is transitions
    /// that never wait, at most 16 of them, and a read under a paused clock costs more
    /// than a vDSO call (tokio looks up the runtime's clock: ~1 % of order's time).
    pub(super) start_clock: std::cell::OnceCell<tokio::time::Instant>,
    /// Real time from the first deadline check (the 16th transition, or a wait or retry),
    /// not from the start: an execution that never gets there is too short to need it,
    /// and it saves a clock read (~20 ns, 2-4 % of the shortest workloads' time).
    pub(super) start_real: std::cell::OnceCell<std::time::Instant>,
    pub(super) max_duration: Duration,
    pub(super) transitions: Cell<u64>,
    /// History events so far, logged or not: AWS names a state's entered event by its
    /// place in the history ("entered at the event id #4"), and logs keep those ids.
    pub(super) events: Cell<u64>,
    /// The execution's buffered log events; none at level OFF.
    pub log: Option<EventLog>,
    /// The execution's ARN when it was not given, made once when something asks.
    pub(super) made_up_arn: std::cell::OnceCell<String>,
}

impl<'a> Exec<'a> {
    /// An execution of `plan` starting now, its time cap the plan's or the options', the
    /// smaller; `transitions` counts what is already entered.
    pub(super) fn new(
        plan: &Plan,
        tasks: &'a Tasks,
        opts: &'a ExecOptions,
        transitions: u64,
        log: Option<EventLog>,
    ) -> Exec<'a> {
        let max_duration = plan
            .timeout_seconds
            .map(Duration::from_secs)
            .map_or(opts.max_duration, |d| d.min(opts.max_duration));
        Exec {
            tasks,
            opts,
            uses_context: plan.uses_context,
            budget: Budget::new(opts.max_memory_bytes, opts.shard_memory.clone()),
            calls: RefCell::default(),
            call_counters: plan.call_counters,
            start_wall: std::cell::OnceCell::new(),
            start_clock: std::cell::OnceCell::new(),
            start_real: std::cell::OnceCell::new(),
            max_duration,
            transitions: Cell::new(transitions),
            events: Cell::new(0),
            log,
            made_up_arn: std::cell::OnceCell::new(),
        }
    }
}

impl Exec<'_> {
    /// Counts one history event and returns its id.
    #[inline]
    pub(super) fn next_event(&self) -> u64 {
        let id = self.events.get() + 1;
        self.events.set(id);
        id
    }

    /// Counts one history event of `kind` and logs it when the level wants it; `details`
    /// is built only then.
    pub(super) fn event(
        &self,
        kind: &str,
        severity: super::log::Severity,
        details: impl FnOnce() -> crate::value::Map,
    ) {
        let id = self.next_event();
        if let Some(log) = &self.log {
            log.push(id, kind, severity, false, |_| details());
        }
    }
}

/// One thread of control: the top level, a Parallel branch or a Map iteration.
pub(crate) struct Frame {
    /// The Context object (empty when the machine never reads it).
    pub ctx: Context,
    /// Variables visible here.
    pub vars: Vars,
}

pub(super) static EMPTY: Value = Value::Null;

impl Frame {
    pub fn env<'v>(&'v self, input: &'v Value) -> Env<'v> {
        Env {
            input,
            context: &self.ctx,
            vars: &self.vars,
        }
    }

    /// JSONata's `$states` over this frame: `input`, and `result` / `errorOutput` when given.
    pub fn scope<'v>(
        &'v self,
        input: &'v Value,
        result: Option<&'v Value>,
        error_output: Option<&'v Value>,
    ) -> Scope<'v> {
        Scope {
            input,
            result,
            error_output,
            context: &self.ctx,
            vars: &self.vars,
        }
    }
}

impl Exec<'_> {
    /// Time on the execution's clock since it was first read (see `start_clock`).
    pub(super) fn elapsed(&self) -> Duration {
        self.elapsed_at(tokio::time::Instant::now())
    }

    /// [`Exec::elapsed`] at `now`, for a caller that needs the reading itself too.
    pub(super) fn elapsed_at(&self, now: tokio::time::Instant) -> Duration {
        now.saturating_duration_since(*self.start_clock.get_or_init(|| now))
    }

    pub(crate) fn check_deadline(&self) -> Result<(), WorkflowError> {
        let virtual_elapsed = self.elapsed();
        // A busy loop never lets a virtual clock advance, so real time counts too.
        let real_elapsed = self
            .start_real
            .get_or_init(std::time::Instant::now)
            .elapsed();
        if virtual_elapsed >= self.max_duration || real_elapsed >= self.max_duration {
            return Err(execution_timeout());
        }
        Ok(())
    }
}

const EXECUTION_TIMEOUT_CAUSE: &str = "the execution ran past its time limit";

/// The error that ends an execution at its time cap; no retrier or catcher handles it.
pub(super) fn execution_timeout() -> WorkflowError {
    WorkflowError::new(names::TIMEOUT, EXECUTION_TIMEOUT_CAUSE)
}

pub(crate) fn is_execution_timeout(e: &WorkflowError) -> bool {
    e.name() == names::TIMEOUT && e.cause.as_deref() == Some(EXECUTION_TIMEOUT_CAUSE)
}

/// Which strings a `...Path` field reads as its number.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum FromText {
    /// Only a JSON number will do.
    Never,
    /// A whole number written as a string (`"3"`) too, as AWS does for the Map's
    /// MaxConcurrencyPath and ToleratedFailureCountPath (recorded with a variable `"1"`).
    Integer,
    /// Any finite number written as a string too (ToleratedFailurePercentagePath).
    Float,
}

impl FromText {
    fn parse(self, s: &str) -> Option<f64> {
        match self {
            FromText::Never => None,
            FromText::Integer => s.parse::<i64>().ok().map(|n| n as f64),
            FromText::Float => s.parse::<f64>().ok().filter(|f| f.is_finite()),
        }
    }
}

/// Resolves a number that may come from a path; `None` when the field is absent.
pub(crate) fn amount(
    a: Option<&Amount>,
    env: &Env,
    field: &str,
    text: FromText,
) -> Result<Option<f64>, WorkflowError> {
    match a {
        None => Ok(None),
        Some(Amount::Fixed(f)) => Ok(Some(*f)),
        Some(Amount::Query(e)) => {
            let name = field.strip_suffix("Path").unwrap_or(field);
            match eval_expr(e, &env.scope(), name, &Limits::default())? {
                Value::Number(n) => Ok(n.as_f64()),
                other => Err(WorkflowError::new(
                    names::QUERY_EVALUATION_ERROR,
                    format!("The {name} field evaluated to {other}, which is not a number"),
                )),
            }
        }
        Some(Amount::Path(p)) => {
            let Some(v) = p.eval(env) else {
                if matches!(field, "TimeoutSecondsPath" | "HeartbeatSecondsPath") {
                    return Err(super::io::invalid_path(p, env.input));
                }
                return Err(WorkflowError::runtime(format!(
                    "The JSONPath '{}' specified for the field '{field}' could not be found in the input '{}'",
                    p.text(),
                    env.input
                )));
            };
            let read = match v.as_ref() {
                Value::Number(n) => return Ok(n.as_f64()),
                Value::String(s) => text.parse(s),
                _ => None,
            };
            if read.is_some() {
                return Ok(read);
            }
            Err(WorkflowError::runtime(match (text, v.as_ref()) {
                (FromText::Never, other) => {
                    format!(
                        "The {field} field refers to value '{other}', which is not a valid number"
                    )
                }
                // AWS's wording: the string as it is, anything else as JSON.
                (_, other) => {
                    let shown = match other {
                        Value::String(s) => s.to_string(),
                        v => v.to_string(),
                    };
                    let kind = if text == FromText::Float {
                        "float"
                    } else {
                        "integer"
                    };
                    format!(
                        "The {field} field refers to value \"{shown}\" which is not a valid {kind}: {}",
                        p.text()
                    )
                }
            }))
        }
    }
}

/// A number as JSON writes it (`1e300`, not 301 digits).
pub(crate) fn show_number(f: f64) -> String {
    serde_json::Number::from_f64(f).map_or_else(|| f.to_string(), |n| n.to_string())
}
