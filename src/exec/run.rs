//! The state loop: enter a state, process its input, run it, retry or catch, move on.

use std::borrow::Cow;
use std::time::Duration;

use crate::value::Value;
use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;

use super::frame::{
    amount, execution_timeout, is_execution_timeout, show_number, Exec, Frame, FromText, EMPTY,
};
use super::log::{error_details, EventLog, Severity};
use super::{io, json_size, map, parallel, retry, ExecOptions, Outcome, Status};
use crate::asl::model::{
    Amount, Assign, FailText, Kind, PathField, QueryLanguage, State, Test, WaitFor,
};
use crate::compile::plan::{CallSlots, Node, Plan};
use crate::error::{names, WorkflowError};
use crate::expr::choice::Lookups;
use crate::expr::context::{self, Context};
use crate::expr::jsonata::{Limits, Scope};
use crate::expr::query::{eval_expr, Query};
use crate::expr::vars::Vars;
use crate::expr::{timestamp, Env};
use crate::tasks::{TaskAnswer, TaskCall, Tasks};

/// [`eval_assign`] of a state's or rule's Assign, if it has one. Matched rather than
/// `map` + `transpose`, which moved the `None` of nearly every state through memory in
/// misaligned pieces (a store-forwarding wait, ~3 % of choice-heavy's time in `step_now`).
#[inline(always)]
fn eval_assign_opt(
    a: Option<&Assign>,
    path_env: &Env,
    scope: &Scope,
) -> Result<Option<Value>, WorkflowError> {
    match a {
        None => Ok(None),
        Some(a) => eval_assign(a, path_env, scope).map(Some),
    }
}

/// Evaluates an Assign block in its language: JSONPath over `path_env`, JSONata over `scope`.
fn eval_assign(a: &Assign, path_env: &Env, scope: &Scope) -> Result<Value, WorkflowError> {
    match a {
        Assign::Path(t) => t.eval(path_env),
        Assign::Jsonata(q) => q.eval(scope, "Assign"),
    }
}

/// A JSONata state's output: its `Output`, or `default` without one.
fn jsonata_output(
    output: Option<&Query>,
    scope: &Scope,
    default: impl FnOnce() -> Value,
) -> Result<Value, WorkflowError> {
    match output {
        Some(q) => q.eval(scope, "Output"),
        None => Ok(default()),
    }
}

/// Whether a Choice rule holds (`lookups`: the values its state's rules share).
fn holds<'v>(t: &Test, env: &Env<'v>, lookups: &mut Lookups<'v>) -> Result<bool, WorkflowError> {
    match t {
        Test::Path(c) => c.eval_sharing(env, lookups),
        Test::Jsonata(q) => match q.eval(&env.scope(), "Condition")? {
            Value::Bool(b) => Ok(b),
            other => Err(WorkflowError::new(
                names::QUERY_EVALUATION_ERROR,
                format!("The Condition field evaluated to {other}, which is not a boolean"),
            )),
        },
    }
}

/// A task handler asks for these only when it needs them (`events:putEvents` adds them to
/// each event), so an execution given no ARN makes one up at most once.
impl crate::tasks::ExecutionIds for Exec<'_> {
    fn execution_arn(&self) -> &str {
        if let Some(arn) = &self.opts.execution_arn {
            return arn;
        }
        if let Some(log) = &self.log {
            return log.arn();
        }
        let name = self.opts.execution_name.as_deref().unwrap_or("execution");
        self.made_up_arn
            .get_or_init(|| made_up_arn(self.opts, name))
    }

    fn state_machine_arn(&self) -> String {
        crate::express::state_machine_arn(&self.opts.state_machine_name)
    }
}

/// Far enough ahead to never come, near enough for any clock to add.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 86_400);

impl Exec<'_> {
    /// Now, on the execution's clock (virtual time advances only through waits).
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = self.elapsed();
        self.start_wall() + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    /// When the execution started, on the wall clock.
    fn start_wall(&self) -> DateTime<Utc> {
        *self.start_wall.get_or_init(|| {
            let elapsed = self.elapsed();
            Utc::now() - chrono::Duration::from_std(elapsed).unwrap_or_default()
        })
    }

    /// Time left before the execution time cap, on the execution's clock.
    fn remaining(&self) -> Duration {
        let elapsed = self.elapsed();
        self.max_duration.saturating_sub(elapsed)
    }

    /// Sleeps (a Wait, a retry delay), but never past the execution time cap.
    // One clock read serves both the cap and the deadline (a read costs ~32 ns on the
    // Zen 2 VM; four of them per delay were ~6 % of retry-catch's time).
    async fn sleep(&self, d: Duration) -> Result<(), WorkflowError> {
        let now = tokio::time::Instant::now();
        let left = self.max_duration.saturating_sub(self.elapsed_at(now));
        // A cap beyond what the clock can count waits practically for ever.
        let at = |d: Duration| now.checked_add(d).unwrap_or(now + FOREVER);
        if d >= left {
            super::timer::sleep_until(at(left)).await;
            return Err(execution_timeout());
        }
        if d.is_zero() {
            // No time passes on a virtual clock: real time bounds a loop of such
            // sleeps (a retrier whose jittered delays come out as zero).
            return self.check_deadline();
        }
        // Woken before the cap: `d` was less than what was left.
        super::timer::sleep_until(at(d)).await;
        Ok(())
    }

    /// Counts a call; returns how many calls by this state and to this resource came before.
    fn count_call(&self, slots: CallSlots) -> (u32, u32) {
        let mut calls = self.calls.borrow_mut();
        if calls.is_empty() {
            calls.resize(self.call_counters, 0);
        }
        let needed = slots.state.max(slots.resource) + 1;
        if calls.len() < needed {
            // Only a node from outside this execution's plan could get here; count it anyway.
            calls.resize(needed, 0);
        }
        let mut bump = |i: usize| {
            calls[i] += 1;
            calls[i] - 1
        };
        (bump(slots.state), bump(slots.resource))
    }

    /// AWS's `States.DataLimitExceeded` when `v` is over the payload limit (its exact
    /// wording: the limit is not named).
    fn check_size(&self, v: &Value, state: &str) -> Result<(), WorkflowError> {
        let limit = self.opts.max_payload_bytes;
        if json_size(v, limit) > limit {
            return Err(WorkflowError::new(
                names::DATA_LIMIT_EXCEEDED,
                format!("The state/task '{state}' returned a result with a size exceeding the maximum number of bytes service limit."),
            ));
        }
        Ok(())
    }
}

pub(crate) async fn execute(
    plan: &Plan,
    input: Value,
    tasks: &Tasks,
    opts: &ExecOptions,
) -> (Outcome, Option<EventLog>) {
    // One name for the log's ARN and the Context object's Name and Id, made up only
    // where something shows it.
    let made_name = (opts.execution_name.is_none()
        && (plan.uses_context || opts.log.level != super::LogLevel::Off))
        .then(|| uuid::Uuid::new_v4().to_string());
    let name = opts
        .execution_name
        .as_deref()
        .or(made_name.as_deref())
        .unwrap_or("execution");
    let ex = Exec::new(
        plan,
        tasks,
        opts,
        0,
        EventLog::new(opts.log, execution_arn(opts, name)),
    );
    let id = ex.next_event();
    if let Some(log) = &ex.log {
        log.push(id, "ExecutionStarted", Severity::Info, false, |l| {
            let mut d = crate::value::Map::new();
            l.data(&mut d, "input", &input);
            d.insert("roleArn".into(), Value::from(context::ROLE_ARN));
            d
        });
    }
    let fail = |status, e: WorkflowError| Outcome {
        status,
        output: None,
        error: e.error,
        cause: e.cause,
    };
    let input_size = json_size(&input, opts.max_payload_bytes.saturating_add(1));
    if input_size > opts.max_payload_bytes {
        let e = ex
            .check_size(&input, "input")
            .expect_err("the input was just measured over the limit");
        let out = fail(Status::Failed, e);
        return ended(ex, out);
    }
    let ctx = if !plan.uses_context {
        Context::EMPTY
    } else {
        let machine = &opts.state_machine_name;
        let machine_arn = crate::express::state_machine_arn(machine);
        let exec_arn = opts
            .execution_arn
            .clone()
            .or_else(|| ex.log.as_ref().map(|l| l.arn().to_string()))
            .unwrap_or_else(|| {
                let arn = made_up_arn(opts, name);
                // Task handlers that ask for the ARN get the one `$$.Execution.Id` holds.
                let _ = ex.made_up_arn.set(arn.clone());
                arn
            });
        context::root(
            &exec_arn,
            name,
            &machine_arn,
            machine,
            &input,
            ex.start_wall(),
            opts.workflow_type.has_redrive_count(),
        )
    };
    let ctx = ctx.with_max_value_bytes(opts.max_payload_bytes);
    let frame = Frame {
        ctx,
        vars: Vars::default(),
    };
    // No timer wraps the whole execution (a million parked executions would each hold one):
    // every sleep, task call and transition checks the cap itself.
    let out = match run_states(&ex, plan, input, frame, Some(input_size)).await {
        Ok(output) => Outcome {
            status: Status::Succeeded,
            output: Some(output),
            error: None,
            cause: None,
        },
        // AWS reports an execution timeout with its error name alone, no cause.
        Err(e) if is_execution_timeout(&e) => {
            fail(Status::TimedOut, WorkflowError { cause: None, ..e })
        }
        Err(e) => fail(Status::Failed, e),
    };
    ended(ex, out)
}

/// Logs the execution's last event and hands back its outcome and log.
fn ended(ex: Exec<'_>, out: Outcome) -> (Outcome, Option<EventLog>) {
    let id = ex.next_event();
    if let Some(log) = &ex.log {
        let (kind, severity) = match out.status {
            Status::Succeeded => ("ExecutionSucceeded", Severity::Info),
            Status::Failed => ("ExecutionFailed", Severity::Fatal),
            Status::TimedOut => ("ExecutionTimedOut", Severity::Fatal),
        };
        log.push(id, kind, severity, true, |l| {
            let mut d = error_details(out.error.as_deref(), out.cause.as_deref());
            if let Some(o) = &out.output {
                l.data(&mut d, "output", o);
            }
            d
        });
    }
    (out, ex.log)
}

/// Sets the Context object's `State` on entering `state`, and `Task.Token` for a Task
/// that waits for a callback or a job (only a Standard machine has one; a mock answers it).
fn enter_context(ctx: &mut Context, state: &State, now: DateTime<Utc>) {
    let with_retry = matches!(
        state.kind,
        Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map(_)
    );
    ctx.enter_state(&state.name, now, with_retry);
    if let Kind::Task { resource, .. } = &state.kind {
        // AWS gives a token to a job wait too (`.sync`; LocalStack's recording
        // `test_sync_with_task_token` passes it to the child execution).
        use crate::asl::validate::{standard_only, StandardOnly};
        if matches!(
            standard_only(resource),
            Some(StandardOnly::Callback | StandardOnly::JobWait)
        ) {
            use base64::Engine as _;
            // Opaque, as AWS's: unique per execution and state entry.
            let token = uuid::Uuid::new_v4();
            ctx.set_task_token(
                &base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", state.name, token.simple()).as_bytes()),
            );
        }
    }
}

/// An ARN for an execution that was given none: an Express execution's
/// (`...:express:MACHINE:NAME:UUID`) or a Standard one's (`...:execution:MACHINE:NAME`).
fn made_up_arn(opts: &ExecOptions, name: &str) -> String {
    let machine = &opts.state_machine_name;
    match opts.workflow_type {
        super::WorkflowType::Express | super::WorkflowType::ExpressSync => {
            crate::express::execution_arn(machine, name, &uuid::Uuid::new_v4())
        }
        super::WorkflowType::Standard => {
            format!("{}execution:{machine}:{name}", crate::express::ARN_PREFIX)
        }
    }
}

/// The execution's ARN for its log (made up when not given; only built when logging).
fn execution_arn(opts: &ExecOptions, name: &str) -> String {
    if opts.log.level == super::LogLevel::Off {
        return String::new();
    }
    opts.execution_arn
        .clone()
        .unwrap_or_else(|| made_up_arn(opts, name))
}

/// Runs a machine (or branch, or iteration) from its start state to its end, boxed: a
/// Parallel branch or Map iteration runs a machine within a state of one (a future cannot
/// hold itself).
pub(crate) fn run_machine<'a>(
    ex: &'a Exec<'a>,
    plan: &'a Plan,
    input: Value,
    frame: Frame,
    input_size: Option<usize>,
) -> LocalBoxFuture<'a, Result<Value, WorkflowError>> {
    Box::pin(run_states(ex, plan, input, frame, input_size))
}

/// [`run_machine`] unboxed, which the top level runs inside its own future (one
/// allocation less per execution).
async fn run_states<'a>(
    ex: &'a Exec<'a>,
    plan: &'a Plan,
    input: Value,
    mut frame: Frame,
    input_size: Option<usize>,
) -> Result<Value, WorkflowError> {
    let mut cur = plan.start;
    let limit = ex.opts.max_payload_bytes;
    // An upper bound on the current data's size, so it is measured only when it may be too big.
    let mut bound = input_size.unwrap_or_else(|| json_size(&input, limit.saturating_add(1)));
    // The data this frame holds counts against the execution's memory cap, so nested
    // Maps and Parallels waiting on many branches at once stay bounded too. It is
    // charged by its JSON size bound, which is known here without another walk.
    let mut held = ex.budget.hold(bound, FRAME_DATA)?;
    // Variables this frame set, counted the same way.
    let mut vars_bound = 0;
    let mut data = input;
    loop {
        let n = ex.transitions.get() + 1;
        ex.transitions.set(n);
        // Reading two clocks per transition is measurable; every 16th bounds a busy loop
        // just as well (waits and task calls check the cap themselves).
        if n.is_multiple_of(16) {
            ex.check_deadline()?;
        }
        if n.is_multiple_of(1024) {
            // Let sibling branches and timers run during long loops.
            tokio::task::yield_now().await;
        }
        let node = &plan.nodes[cur];
        if let Some(m) = &ex.opts.metrics {
            m.transition(&node.state.kind);
        }
        if ex.uses_context {
            enter_context(&mut frame.ctx, &node.state, ex.now());
        }
        let entered = ex.next_event();
        if let Some(log) = &ex.log {
            let t = node.state.type_name();
            // Entering a Fail state is a failure event (logged at ERROR), as on AWS.
            let severity = match node.state.kind {
                Kind::Fail { .. } => Severity::Error,
                _ => Severity::Info,
            };
            log.push(entered, &format!("{t}StateEntered"), severity, false, |l| {
                let mut d = crate::value::Map::new();
                d.insert("name".into(), Value::from(node.state.name.clone()));
                l.data(&mut d, "input", &data);
                d
            });
        }
        let stepped = if never_waits(&node.state) {
            step_now(node, data, &mut frame)
        } else {
            step(ex, node, data, &mut frame).await
        };
        // Matched as it came: a `map_err` over the whole result moved the state's output
        // through one more `Result`, whose copy waited on the narrower writes that built
        // it (perf: ~20 % of this loop's samples in wait-loop, on that one load).
        let (out, next, growth) = match stepped {
            Ok(s) => s,
            Err(e) => return Err(state_failed(ex, node, e, entered)),
        };
        bound = match growth {
            Growth::Same => bound,
            Growth::Replaced(n) => n,
            Growth::Added(n) => bound.saturating_add(n),
        };
        if bound > limit {
            // An output over the limit fails the execution with no Exited event: AWS's
            // history goes from the state's Entered event to ExecutionFailed (LocalStack's
            // recording `test_start_large_input`).
            ex.check_size(&out, &node.state.name)
                .map_err(|e| locate(e, &node.state, Some(entered)))?;
            bound = json_size(&out, limit);
        }
        log_exited(ex, node, &out);
        if node.may_assign {
            vars_bound = frame.vars.local_size(ex.opts.max_memory_bytes);
        }
        held.resize(bound.saturating_add(vars_bound), FRAME_DATA)
            .map_err(|e| locate(e, &node.state, Some(entered)))?;
        match next {
            Some(n) => {
                cur = n;
                data = out;
            }
            None => return Ok(out),
        }
    }
}

const FRAME_DATA: &str = "the data and variables of its running states";

/// Counts and logs a state's `<Type>StateExited` event, with its output.
fn log_exited(ex: &Exec<'_>, node: &Node, out: &Value) {
    let id = ex.next_event();
    if let Some(log) = &ex.log {
        let t = node.state.type_name();
        log.push(id, &format!("{t}StateExited"), Severity::Info, false, |l| {
            let mut d = crate::value::Map::new();
            d.insert("name".into(), Value::from(node.state.name.clone()));
            l.data(&mut d, "output", out);
            d
        })
    }
}

/// A state's failure as its execution sees it: located (see [`locate`]), and its events
/// logged.
#[cold]
fn state_failed(ex: &Exec<'_>, node: &Node, e: WorkflowError, entered: u64) -> WorkflowError {
    let e = locate(e, &node.state, Some(entered));
    // AWS's history has an EvaluationFailed event for a JSONata error, before the state's
    // own failure event.
    if e.name() == names::QUERY_EVALUATION_ERROR {
        ex.event("EvaluationFailed", Severity::Error, || {
            let mut d = error_details(e.error.as_deref(), e.cause.as_deref());
            d.insert("state".into(), Value::from(node.state.name.as_str()));
            d
        });
    }
    log_failed(ex, node, &e);
    e
}

/// Counts and logs a Map or Parallel state's failure as `<Type>StateFailed` (another
/// state's failure has no event of its own).
fn log_failed(ex: &Exec<'_>, node: &Node, e: &WorkflowError) {
    if !matches!(node.state.kind, Kind::Map(_) | Kind::Parallel { .. }) {
        return;
    }
    let id = ex.next_event();
    if let Some(log) = &ex.log {
        let t = node.state.type_name();
        log.push(
            id,
            &format!("{t}StateFailed"),
            Severity::Error,
            false,
            |_| error_details(e.error.as_deref(), e.cause.as_deref()),
        )
    }
}

/// AWS prefixes runtime errors with the state they happened in and the history event
/// that entered it.
/// (`entered`: that event's id; TestState, which runs one state outside any history,
/// names none.)
fn locate(mut e: WorkflowError, state: &State, entered: Option<u64>) -> WorkflowError {
    if e.name() == names::RUNTIME || e.name() == names::QUERY_EVALUATION_ERROR {
        if let Some(c) = &e.cause {
            if !c.starts_with("An error occurred while executing the state") {
                let at = entered
                    .map(|id| format!(" (entered at the event id #{id})"))
                    .unwrap_or_default();
                e.cause = Some(format!(
                    "An error occurred while executing the state '{}'{at}. {c}",
                    state.name
                ));
            }
        }
    }
    e
}

/// How a state's output can be larger than its input, to bound sizes without re-measuring.
#[derive(Debug, Clone, Copy)]
enum Growth {
    /// The output is part of the input.
    Same,
    /// The output is part of a new value of this size.
    Replaced(usize),
    /// The output is part of the input plus a new value of this size.
    Added(usize),
}

/// What one state did: its output, the next state (`None` ends this machine) and how the
/// data grew.
type Stepped = Result<(Value, Option<usize>, Growth), WorkflowError>;

/// Whether [`step_now`] runs this state: it cannot wait (no timer, task call, branches or
/// retry), so it needs no future of its own.
fn never_waits(s: &State) -> bool {
    match s.kind {
        Kind::Succeed | Kind::Fail { .. } | Kind::Choice { .. } => true,
        Kind::Pass { .. } => s.retry.is_empty() && s.catch.is_empty(),
        _ => false,
    }
}

/// The state's effective input: `raw` itself (moved) without InputPath, else what it selects.
#[inline(always)]
fn effective_input(s: &State, raw: Value, frame: &Frame) -> Result<Value, WorkflowError> {
    io::effective(&s.input_path, raw, |v| {
        io::select(&s.input_path, "InputPath", &frame.env(v)).map(Cow::into_owned)
    })
}

/// Runs one state that [`never_waits`].
fn step_now(node: &Node, mut raw: Value, frame: &mut Frame) -> Stepped {
    let s = &node.state;
    match &s.kind {
        Kind::Succeed if s.query_language == QueryLanguage::Jsonata => {
            let out = match &s.output {
                Some(q) => {
                    q.eval_consuming(&frame.ctx, &frame.vars, &mut raw, None, "Output")?
                        .0
                }
                None => raw,
            };
            Ok((out, None, Growth::Same))
        }
        Kind::Succeed => {
            let eff = effective_input(s, raw, frame)?;
            let out = io::output(&s.output_path, eff, &frame.env(&EMPTY))?;
            Ok((out, None, Growth::Same))
        }
        Kind::Fail { error, cause } => {
            let env = frame.env(&raw);
            Err(WorkflowError {
                error: fail_text(error.as_ref(), &env, "ErrorPath")?,
                cause: fail_text(cause.as_ref(), &env, "CausePath")?,
            })
        }
        Kind::Choice { rules, .. } => {
            // Moved as it is where InputPath is the default: through `effective_input`'s
            // `Result` it was copied in pieces and read back whole, a stall (perf: ~11 % of
            // this function's time in choice-heavy).
            let mut eff = match s.input_path {
                PathField::Default => raw,
                _ => effective_input(s, raw, frame)?,
            };
            let env_eff = frame.env(&eff);
            let mut chosen = None;
            let mut lookups = Lookups::new();
            for (i, r) in rules.iter().enumerate() {
                if holds(&r.condition, &env_eff, &mut lookups)? {
                    chosen = Some(i);
                    break;
                }
            }
            let next = match chosen {
                Some(i) => node.choice_next[i],
                None => node.default.ok_or_else(|| {
                    WorkflowError::new(
                        names::NO_CHOICE_MATCHED,
                        format!("No Choice Rules in state '{}' matched the input and there is no Default", s.name),
                    )
                })?,
            };
            let rule = chosen.map(|i| &rules[i]);
            let rule_assign = rule.and_then(|r| r.assign.as_ref());
            // The usual Choice (JSONPath, no Assign) returns here: the two empty assignments
            // below were written and read back through memory, another stall (~11 %).
            if s.assign.is_none()
                && rule_assign.is_none()
                && s.query_language == QueryLanguage::JsonPath
            {
                let out = match s.output_path {
                    PathField::Default => eff,
                    _ => io::output(&s.output_path, eff, &frame.env(&EMPTY))?,
                };
                return Ok((out, Some(next), Growth::Same));
            }
            let (state_assign, rule_assign) = if s.assign.is_none() && rule_assign.is_none() {
                (None, None)
            } else {
                let scope = frame.scope(&eff, None, None);
                (
                    eval_assign_opt(s.assign.as_ref(), &env_eff, &scope)?,
                    eval_assign_opt(rule_assign, &env_eff, &scope)?,
                )
            };
            let out = if s.query_language == QueryLanguage::Jsonata {
                // A rule's Output wins over the state's.
                let output = rule.and_then(|r| r.output.as_ref()).or(s.output.as_ref());
                match output {
                    Some(q) => {
                        q.eval_consuming(&frame.ctx, &frame.vars, &mut eff, None, "Output")?
                            .0
                    }
                    None => eff,
                }
            } else {
                io::output(&s.output_path, eff, &frame.env(&EMPTY))?
            };
            apply_assigns(&mut frame.vars, state_assign.into_iter().chain(rule_assign));
            Ok((out, Some(next), Growth::Same))
        }
        Kind::Pass { result } => {
            let result = attempt_pass(node, result.as_ref(), &raw, frame)?;
            let (out, growth) = finish(s, raw, result, frame).map_err(|(e, _)| e)?;
            Ok((out, node.next, growth))
        }
        _ => unreachable!("run_machine() steps only states that never wait here"),
    }
}

/// Runs one state.
async fn step(ex: &Exec<'_>, node: &Node, raw: Value, frame: &mut Frame) -> Stepped {
    let s = &node.state;
    match &s.kind {
        Kind::Wait { wait } => {
            // The defaults taken without a call, as the Choice state's are: a value or
            // `None` returned through a `Result` was copied in pieces and read back whole,
            // a stall (perf: ~15 % of the state loop's samples in wait-loop).
            let mut eff = match s.input_path {
                PathField::Default => raw,
                _ => effective_input(s, raw, frame)?,
            };
            let env_eff = frame.env(&eff);
            let delay = wait_delay(ex, wait, &env_eff)?;
            let assign = match &s.assign {
                None => None,
                Some(a) => Some(eval_assign(a, &env_eff, &frame.scope(&eff, None, None))?),
            };
            let out = if s.query_language == QueryLanguage::Jsonata {
                match &s.output {
                    Some(q) => {
                        q.eval_consuming(&frame.ctx, &frame.vars, &mut eff, None, "Output")?
                            .0
                    }
                    None => eff,
                }
            } else {
                match s.output_path {
                    PathField::Default => eff,
                    _ => io::output(&s.output_path, eff, &frame.env(&EMPTY))?,
                }
            };
            ex.sleep(delay).await?;
            apply_assigns(&mut frame.vars, assign);
            Ok((out, node.next, Growth::Same))
        }
        Kind::Pass { .. } | Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map(_) => {
            let mut attempts = vec![0u32; s.retry.len()];
            let mut retries = 0u32;
            let mut raw = raw;
            loop {
                // A Pass state never waits, nor a Task whose handler answers at once: they
                // run here, without the boxed future (one allocation per state) the others need.
                let attempted = match &s.kind {
                    Kind::Pass { result } => attempt_pass(node, result.as_ref(), &raw, frame),
                    Kind::Task { .. } => match if node.hands_over_input {
                        // Nothing reads `raw` after the call: the handler owns it.
                        start_task_owned(ex, node, std::mem::take(&mut raw), frame)
                    } else {
                        start_task(ex, node, &raw, frame)
                    } {
                        Ok(Started::Answered(result)) => select_result(s, result, frame),
                        Ok(Started::Waiting(w)) => Box::pin(w.wait(ex, node, frame)).await,
                        Err(e) => Err(e),
                    },
                    _ => Box::pin(attempt(ex, node, &raw, frame)).await,
                };
                let err = match attempted {
                    Ok(result) => match finish(s, raw, result, frame) {
                        Ok((out, growth)) => return Ok((out, node.next, growth)),
                        Err((e, back)) => {
                            raw = back;
                            e
                        }
                    },
                    Err(e) => e,
                };
                if is_execution_timeout(&err) {
                    return Err(err);
                }
                if let Some(delay) = retry::next_delay(&s.retry, &mut attempts, &err) {
                    ex.sleep(delay).await?;
                    retries += 1;
                    if let Some(m) = &ex.opts.metrics {
                        m.retried();
                    }
                    frame.ctx.set_retry_count(retries);
                    continue;
                }
                let caught = s
                    .catch
                    .iter()
                    .position(|c| c.error_equals.iter().any(|e| err.matches(e)));
                let Some(i) = caught else { return Err(err) };
                let c = &s.catch[i];
                let err_out = io::error_output(&err);
                let added = json_size(&err_out, usize::MAX);
                let scope = frame.scope(&raw, None, Some(&err_out));
                let assign = eval_assign_opt(c.assign.as_ref(), &frame.env(&err_out), &scope)?;
                if s.query_language == QueryLanguage::Jsonata {
                    // A JSONata catcher's output is its Output, or the error output itself.
                    let out = jsonata_output(c.output.as_ref(), &scope, || err_out.clone())?;
                    let size = json_size(&out, usize::MAX);
                    apply_assigns(&mut frame.vars, assign);
                    return Ok((out, Some(node.catch_next[i]), Growth::Replaced(size)));
                }
                let out = io::place_result(&c.result_path, raw, err_out).map_err(|(e, _)| e)?;
                apply_assigns(&mut frame.vars, assign);
                return Ok((
                    out,
                    Some(node.catch_next[i]),
                    growth_of(&c.result_path, added),
                ));
            }
        }
        _ => step_now(node, raw, frame),
    }
}

fn growth_of(result_path: &PathField, added: usize) -> Growth {
    match result_path {
        PathField::Null => Growth::Same,
        PathField::Default => Growth::Replaced(added),
        PathField::Path(p) if p.is_root_only() => Growth::Replaced(added),
        // New keys along the path add their names and punctuation.
        PathField::Path(p) => Growth::Added(added + p.text().len() + 8),
    }
}

/// One attempt of a Parallel or Map state up to its (selected) result: everything Retry
/// may repeat (a Pass state's is [`attempt_pass`], a Task's [`start_task`]).
async fn attempt(
    ex: &Exec<'_>,
    node: &Node,
    raw: &Value,
    frame: &mut Frame,
) -> Result<Value, WorkflowError> {
    let s = &node.state;
    let env = frame.env(raw);
    let eff = io::select(&s.input_path, "InputPath", &env)?;
    let result = match &s.kind {
        // Boxed: a parked execution's future is as large as its largest branch, and
        // Map/Parallel futures are big; a million Waits must stay small.
        Kind::Map(spec) => Box::pin(map::run(ex, node, spec, &eff, frame, run_machine)).await?,
        Kind::Parallel { .. } => {
            let input = state_input(s, &eff, frame)?;
            Box::pin(parallel::run(ex, node, input, frame, run_machine)).await?
        }
        _ => unreachable!("step() only sends Parallel and Map here"),
    };
    select_result(s, result, frame)
}

/// [`attempt`] for a Pass state, which has nothing to wait for.
fn attempt_pass(
    node: &Node,
    fixed: Option<&Value>,
    raw: &Value,
    frame: &Frame,
) -> Result<Value, WorkflowError> {
    let s = &node.state;
    let eff = io::select(&s.input_path, "InputPath", &frame.env(raw))?;
    let input = state_input(s, &eff, frame)?;
    select_result(s, fixed.cloned().unwrap_or(input), frame)
}

/// The effective input after Parameters (JSONPath) or Arguments (JSONata).
fn state_input(s: &State, eff: &Value, frame: &Frame) -> Result<Value, WorkflowError> {
    Ok(match (&s.parameters, &s.arguments) {
        (Some(t), _) => t.eval(&frame.env(eff))?,
        (None, Some(q)) => q.eval(&frame.scope(eff, None, None), "Arguments")?,
        (None, None) => eff.clone(),
    })
}

/// ResultSelector applied to a state's result, if it has one.
fn select_result(s: &State, result: Value, frame: &Frame) -> Result<Value, WorkflowError> {
    match &s.result_selector {
        Some(t) => t.eval(&frame.env(&result)),
        None => Ok(result),
    }
}

/// Assign, ResultPath and OutputPath: consumes the raw input, or hands it back on an error
/// a retrier or catcher may still need it for.
fn finish(
    s: &State,
    mut raw: Value,
    mut result: Value,
    frame: &mut Frame,
) -> Result<(Value, Growth), (WorkflowError, Value)> {
    if s.query_language == QueryLanguage::Jsonata {
        // JSONata: Assign and Output both see `$states.input` and `$states.result`;
        // variables change after Output is built.
        let assign = s
            .assign
            .as_ref()
            .map(|a| {
                eval_assign(
                    a,
                    &frame.env(&result),
                    &frame.scope(&raw, Some(&result), None),
                )
            })
            .transpose();
        let assign = match assign {
            Ok(a) => a,
            Err(e) => return Err((e, raw)),
        };
        // Output is the last reader of the input and the result: it may take from them.
        let (out, size) = match &s.output {
            Some(q) => match q.eval_consuming(
                &frame.ctx,
                &frame.vars,
                &mut raw,
                Some(&mut result),
                "Output",
            ) {
                Ok(out) => out,
                Err(e) => return Err((e, raw)),
            },
            None => {
                let size = json_size(&result, usize::MAX);
                (result, size)
            }
        };
        apply_assigns(&mut frame.vars, assign);
        return Ok((out, Growth::Replaced(size)));
    }
    // AWS evaluates Assign on the result, before ResultPath; variables change after OutputPath.
    let assign = match &s.assign {
        None => None,
        Some(a) => match eval_assign(a, &frame.env(&result), &frame.scope(&result, None, None)) {
            Ok(v) => Some(v),
            Err(e) => return Err((e, raw)),
        },
    };
    let growth = growth_of(&s.result_path, json_size(&result, usize::MAX));
    let placed = io::place_result(&s.result_path, raw, result)?;
    // OutputPath fails only with States.Runtime, which no retrier or catcher handles.
    let out =
        io::output(&s.output_path, placed, &frame.env(&EMPTY)).map_err(|e| (e, Value::Null))?;
    apply_assigns(&mut frame.vars, assign);
    Ok((out, growth))
}

/// A Task state's attempt as far as it goes without waiting.
enum Started<'a> {
    /// The handler answered at once (built-in handlers, mocks): the task's result.
    Answered(Value),
    /// A call to wait for.
    Waiting(WaitingTask<'a>),
}

/// One attempt of a Task state up to its handler's answer: InputPath, Parameters, the
/// timeouts, the call. Everything Retry may repeat, with [`WaitingTask::wait`] when the
/// handler does not answer at once.
fn start_task<'a>(
    ex: &'a Exec<'_>,
    node: &'a Node,
    raw: &Value,
    frame: &Frame,
) -> Result<Started<'a>, WorkflowError> {
    let s = &node.state;
    let eff = io::select(&s.input_path, "InputPath", &frame.env(raw))?;
    let input = state_input(s, &eff, frame)?;
    let timeout = task_timeouts(node, &frame.env(&eff))?;
    call_task(ex, node, input, timeout)
}

/// [`start_task`] for a state that hands its raw input to the handler (see
/// [`Node::hands_over_input`]): that input is the handler's input, moved rather than
/// shared, so a handler that changes it does not copy it first.
fn start_task_owned<'a>(
    ex: &'a Exec<'_>,
    node: &'a Node,
    raw: Value,
    frame: &Frame,
) -> Result<Started<'a>, WorkflowError> {
    debug_assert!(node.hands_over_input);
    let timeout = task_timeouts(node, &frame.env(&raw))?;
    call_task(ex, node, raw, timeout)
}

/// TimeoutSeconds (or its path) and HeartbeatSeconds, checked against the effective input.
#[inline(always)]
fn task_timeouts(node: &Node, env: &Env) -> Result<Option<u64>, WorkflowError> {
    let Kind::Task {
        timeout, heartbeat, ..
    } = &node.state.kind
    else {
        unreachable!("step() only starts Task states here")
    };
    // Most Task states set neither (two calls a task were ~150 instructions).
    if timeout.is_none() && heartbeat.is_none() {
        return Ok(None);
    }
    let timeout = task_seconds(
        timeout.as_ref(),
        env,
        "TimeoutSeconds",
        "TimeoutSecondsPath",
    )?;
    // Tasks here do not heartbeat, but a bad value is still an error, as on AWS.
    task_seconds(
        heartbeat.as_ref(),
        env,
        "HeartbeatSeconds",
        "HeartbeatSecondsPath",
    )?;
    Ok(timeout)
}

/// Calls a Task state's handler with its input: a result now, or a call to wait for.
// Inlined into both starts: the input passed through memory cost ~40 instructions a task.
#[inline(always)]
fn call_task<'a>(
    ex: &'a Exec<'_>,
    node: &'a Node,
    input: Value,
    timeout: Option<u64>,
) -> Result<Started<'a>, WorkflowError> {
    let s = &node.state;
    let Kind::Task { resource, .. } = &s.kind else {
        unreachable!("step() only starts Task states here")
    };
    if let Err(why) = crate::tasks::check_service_parameters(resource, &input) {
        return Err(WorkflowError::runtime(format!(
            "The Parameters '{input}' could not be used to start the Task: [{why}]"
        )));
    }
    let metrics = ex.opts.metrics.as_deref().and_then(|m| m.task(resource));
    if let Some(m) = metrics {
        m.scheduled();
    }
    let (scheduled, started) = (ex.next_event(), ex.next_event());
    if let Some(log) = &ex.log {
        // A Lambda function ARN's call is logged as LambdaFunction* events, with the
        // payload as `input`, as AWS's histories have it.
        if crate::tasks::lambda::is_function_arn(resource) {
            log.push(
                scheduled,
                "LambdaFunctionScheduled",
                Severity::Info,
                false,
                |l| {
                    let mut d = crate::value::Map::new();
                    l.data(&mut d, "input", &input);
                    d.insert("resource".into(), Value::from(resource.to_string()));
                    if let Some(t) = timeout {
                        d.insert("timeoutInSeconds".into(), Value::from(t));
                    }
                    d
                },
            );
            log.push(
                started,
                "LambdaFunctionStarted",
                Severity::Info,
                false,
                |_| crate::value::Map::new(),
            );
        } else {
            log.push(scheduled, "TaskScheduled", Severity::Info, false, |l| {
                let mut d = crate::value::Map::new();
                d.insert("resource".into(), Value::from(resource.to_string()));
                d.insert("region".into(), Value::String("local".into()));
                l.data(&mut d, "parameters", &input);
                if let Some(t) = timeout {
                    d.insert("timeoutInSeconds".into(), Value::from(t));
                }
                d
            });
            log.push(started, "TaskStarted", Severity::Info, false, |_| {
                let mut d = crate::value::Map::new();
                d.insert("resource".into(), Value::from(resource.to_string()));
                d
            });
        }
    }
    let slots = node
        .call_slots
        .expect("compile gives every Task state its call counters");
    let (state_calls, resource_calls) = ex.count_call(slots);
    let answer = ex.tasks.answer_at(
        &node.task_route,
        TaskCall {
            state: &s.name,
            resource,
            input,
            state_calls,
            resource_calls,
            timeout: timeout.map(Duration::from_secs),
            execution: ex,
        },
    );
    match answer {
        TaskAnswer::Now(r) => {
            if let Some(m) = metrics {
                m.answered_at_once(r.is_ok());
            }
            task_ended(ex, resource, r).map(Started::Answered)
        }
        TaskAnswer::Later(fut) => Ok(Started::Waiting(WaitingTask {
            fut,
            resource,
            timeout,
            metrics,
        })),
    }
}

/// A task call whose handler did not answer at once.
struct WaitingTask<'a> {
    fut: crate::tasks::TaskFuture,
    resource: &'a str,
    timeout: Option<u64>,
    metrics: Option<&'a crate::metrics::TaskMetrics>,
}

impl WaitingTask<'_> {
    /// Waits for the answer under the task's and the execution's time limits, then
    /// applies ResultSelector.
    async fn wait(self, ex: &Exec<'_>, node: &Node, frame: &Frame) -> Result<Value, WorkflowError> {
        let WaitingTask {
            mut fut,
            resource,
            timeout,
            metrics,
        } = self;
        // A handler's future may still be ready at once: then no timer (and no clock read).
        let answer = if let std::task::Poll::Ready(r) = futures::poll!(&mut fut) {
            if let Some(m) = metrics {
                m.answered_at_once(r.is_ok());
            }
            r
        } else {
            // Counts the call timed out if it is dropped unanswered: by a timeout below, or
            // with the whole execution (a shutdown).
            let mut pending = PendingCall {
                metrics,
                start: std::time::Instant::now(),
            };
            // The task's own TimeoutSeconds is a catchable States.Timeout; the execution
            // cap is not.
            let left = ex.remaining();
            let task_limit = timeout.map(Duration::from_secs);
            match tokio::time::timeout(task_limit.map_or(left, |t| t.min(left)), fut).await {
                Ok(r) => {
                    pending.answered(r.is_ok());
                    r
                }
                Err(_) if task_limit.is_some_and(|t| t < left) => Err(WorkflowError::new(
                    names::TIMEOUT,
                    format!(
                        "Task '{}' timed out after {} seconds",
                        node.state.name,
                        timeout.unwrap_or_default()
                    ),
                )),
                Err(_) => Err(execution_timeout()),
            }
        };
        select_result(&node.state, task_ended(ex, resource, answer)?, frame)
    }
}

/// A task's answer as the state sees it: its size checked, its end logged.
fn task_ended(
    ex: &Exec<'_>,
    resource: &str,
    answer: Result<Value, WorkflowError>,
) -> Result<Value, WorkflowError> {
    let result = answer.and_then(|v| {
        ex.check_size(&v, resource)?;
        Ok(v)
    });
    let id = ex.next_event();
    if let Some(log) = &ex.log {
        // LambdaFunction* events carry no resource (AWS's histories).
        let lambda = crate::tasks::lambda::is_function_arn(resource);
        let with_resource = |mut d: crate::value::Map| {
            if !lambda {
                d.insert("resource".into(), Value::from(resource.to_string()));
            }
            d
        };
        match &result {
            Ok(v) => {
                let kind = if lambda {
                    "LambdaFunctionSucceeded"
                } else {
                    "TaskSucceeded"
                };
                log.push(id, kind, Severity::Info, false, |l| {
                    let mut d = with_resource(crate::value::Map::new());
                    l.data(&mut d, "output", v);
                    d
                })
            }
            Err(e) => {
                let kind = match (lambda, e.name() == names::TIMEOUT) {
                    (true, true) => "LambdaFunctionTimedOut",
                    (true, false) => "LambdaFunctionFailed",
                    (false, true) => "TaskTimedOut",
                    (false, false) => "TaskFailed",
                };
                log.push(id, kind, Severity::Error, false, |_| {
                    with_resource(error_details(e.error.as_deref(), e.cause.as_deref()))
                })
            }
        }
    }
    result
}

/// A task call waiting for its answer, as its metrics see it.
struct PendingCall<'a> {
    metrics: Option<&'a crate::metrics::TaskMetrics>,
    start: std::time::Instant,
}

impl PendingCall<'_> {
    fn answered(&mut self, ok: bool) {
        if let Some(m) = self.metrics.take() {
            m.answered(self.start.elapsed().as_secs_f64(), ok);
        }
    }
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        // Only an unanswered call still has its handles here: one add, no other work.
        if let Some(m) = self.metrics {
            m.timed_out();
        }
    }
}

// Inlined so that a state without Assign (nearly all) costs a test of its `None`, not a
// call reading it back through memory (~2 % of choice-heavy, most of it that wait).
#[inline(always)]
fn apply_assigns(vars: &mut Vars, assigns: impl IntoIterator<Item = Value>) {
    for a in assigns {
        assign_object(vars, a);
    }
}

fn assign_object(vars: &mut Vars, assigned: Value) {
    if let Value::Object(m) = assigned {
        for (k, v) in m {
            vars.set(k, v);
        }
    }
}

fn fail_text(
    t: Option<&FailText>,
    env: &Env,
    field: &str,
) -> Result<Option<String>, WorkflowError> {
    match t {
        None => Ok(None),
        Some(FailText::Fixed(s)) => Ok(Some(s.clone())),
        Some(FailText::Query(q)) => {
            let name = field.strip_suffix("Path").unwrap_or(field);
            match q.eval(&env.scope(), name)? {
                Value::String(s) => Ok(Some(s.into_string())),
                other => Ok(Some(other.to_string())),
            }
        }
        Some(FailText::Dynamic(t)) => {
            let v = t.eval(env).map_err(|e| {
                // Name the field the way AWS does ('ErrorPath'), not as the template does: a
                // plain path by its own text, anything else by the internal key.
                let named = match t {
                    crate::expr::template::Template::Path(p) => format!("'{}'", p.text()),
                    _ => "'v.$'".to_string(),
                };
                let (from, to) = (
                    format!("specified for the field {named}"),
                    format!("specified for the field '{field}'"),
                );
                WorkflowError {
                    cause: e.cause.map(|c| c.replacen(&from, &to, 1)),
                    ..e
                }
            })?;
            match v {
                Value::String(s) => Ok(Some(s.into_string())),
                other => Ok(Some(other.to_string())),
            }
        }
    }
}

/// AWS's largest TimeoutSeconds / HeartbeatSeconds.
const MAX_TASK_SECONDS: u64 = 99_999_999;

/// A Task's TimeoutSeconds or HeartbeatSeconds (fixed or `...Path`): a positive integer
/// of at most [`MAX_TASK_SECONDS`], or `States.Runtime` naming the field and the value.
fn task_seconds(
    a: Option<&Amount>,
    env: &Env,
    field: &str,
    path_field: &str,
) -> Result<Option<u64>, WorkflowError> {
    let Some(f) = amount(a, env, path_field, FromText::Never)? else {
        return Ok(None);
    };
    if f >= 1.0 && f.fract() == 0.0 && f <= MAX_TASK_SECONDS as f64 {
        return Ok(Some(f as u64));
    }
    let source = match a {
        Some(Amount::Path(p)) => format!(
            "{path_field} field refers to value '{}' ({})",
            show_number(f),
            p.text()
        ),
        _ => format!("{field} field is {}", show_number(f)),
    };
    Err(WorkflowError::runtime(format!(
        "The {source}, which is not a positive integer of at most {MAX_TASK_SECONDS} seconds"
    )))
}

fn wait_delay(ex: &Exec<'_>, wait: &WaitFor, env: &Env) -> Result<Duration, WorkflowError> {
    // AWS counts a Wait's delay in 32-bit seconds: a timestamp 2^31 s or more ahead fails
    // the state (recorded: 24,855 days ahead waits, 24,856 days fails).
    let until = |t: timestamp::Timestamp| {
        let dt = t.to_utc() - ex.now();
        if dt.num_seconds() >= 1 << 31 {
            return Err(WorkflowError::runtime("Wait state delay is too long."));
        }
        Ok(dt.to_std().unwrap_or(Duration::ZERO))
    };
    match wait {
        // Validation keeps this a non-negative number; a huge one just waits past the cap.
        WaitFor::Seconds(s) => Ok(Duration::try_from_secs_f64(*s).unwrap_or(Duration::MAX)),
        WaitFor::Timestamp(t) => until(*t),
        WaitFor::SecondsQuery(e) => match eval_expr(e, &env.scope(), "Seconds", &Limits::default())? {
            Value::Number(n) if n.as_u64().is_some() => Ok(Duration::from_secs(n.as_u64().unwrap_or(0))),
            other => Err(WorkflowError::new(
                names::QUERY_EVALUATION_ERROR,
                format!("The Seconds field evaluated to {other}, which is not a valid non-negative integer"),
            )),
        },
        WaitFor::TimestampQuery(e) => {
            let v = eval_expr(e, &env.scope(), "Timestamp", &Limits::default())?;
            match v.as_str().and_then(timestamp::parse) {
                Some(t) => until(t),
                None => Err(WorkflowError::new(
                    names::QUERY_EVALUATION_ERROR,
                    format!(
                        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                    ),
                )),
            }
        }
        WaitFor::SecondsPath(p) => {
            let v = p
                .eval(env)
                .ok_or_else(|| no_input_value(p.text(), "SecondsPath"))?;
            // AWS reads the value as a Java long: a whole number up to 2^63 - 1.
            match v.as_ref() {
                Value::Number(n) => match n.as_i64() {
                    Some(s) if s >= 0 => Ok(Duration::from_secs(s.unsigned_abs())),
                    Some(_) => Err(WorkflowError::runtime(format!(
                        "The SecondsPath parameter references a negative value: {} == {n}",
                        p.text()
                    ))),
                    None => Err(not_a_long(p.text(), &v)),
                },
                other => Err(not_a_long(p.text(), other)),
            }
        }
        WaitFor::TimestampPath(p) => {
            let v: Cow<Value> = p
                .eval(env)
                .ok_or_else(|| no_input_value(p.text(), "TimestampPath"))?;
            match v.as_ref().as_str().and_then(timestamp::parse) {
                Some(t) => until(t),
                None => Err(WorkflowError::runtime(format!(
                    "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {} == {}",
                    p.text(),
                    as_text(&v)
                ))),
            }
        }
    }
}

/// A Wait's `...Path` that finds nothing, in AWS's words.
fn no_input_value(path: &str, field: &str) -> WorkflowError {
    WorkflowError::runtime(format!(
        "The {field} parameter does not reference an input value: {path}"
    ))
}

fn not_a_long(path: &str, v: &Value) -> WorkflowError {
    WorkflowError::runtime(format!(
        "The SecondsPath parameter cannot be parsed as a long value: {path} == {}",
        as_text(v)
    ))
}

/// A value as AWS shows it after `==` in a Wait's causes: a string's own text, anything
/// else as JSON.
fn as_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        other => Cow::Owned(other.to_string()),
    }
}

/// TestState: the start state of `plan` alone, as [`execute`] would run it first, over
/// variables already set and (when given) a Context object the caller made; it moves on to
/// no other state. Retry and Catch act as the state defines them.
pub(crate) async fn run_start_state(
    plan: &Plan,
    input: Value,
    variables: crate::value::Map,
    context: Option<Value>,
    tasks: &Tasks,
    opts: &ExecOptions,
) -> super::StateRun {
    let ex = Exec::new(plan, tasks, opts, 1, None);
    let node = &plan.nodes[plan.start];
    let given_context = context.is_some();
    let ctx = match context {
        Some(v) => Context::from_value(v),
        None if !plan.uses_context => Context::EMPTY,
        None => {
            let name = opts
                .execution_name
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let machine = &opts.state_machine_name;
            let exec_arn = opts
                .execution_arn
                .clone()
                .unwrap_or_else(|| made_up_arn(opts, &name));
            context::root(
                &exec_arn,
                &name,
                &crate::express::state_machine_arn(machine),
                machine,
                &input,
                ex.start_wall(),
                opts.workflow_type.has_redrive_count(),
            )
        }
    };
    let mut frame = Frame {
        ctx: ctx.with_max_value_bytes(opts.max_payload_bytes),
        vars: Vars::default(),
    };
    for (k, v) in variables {
        frame.vars.set(k, v);
    }
    // A Context object the caller gave is the state's as given, its State part included.
    if ex.uses_context && !given_context {
        enter_context(&mut frame.ctx, &node.state, ex.now());
    }
    let result = match step(&ex, node, input, &mut frame).await {
        Ok((out, next, _)) => ex.check_size(&out, &node.state.name).map(|()| (out, next)),
        Err(e) => Err(e),
    }
    .map_err(|e| locate(e, &node.state, None));
    super::StateRun {
        result,
        variables: frame.vars.local().clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::path::Path;
    use crate::json;

    fn seconds_from(v: Value) -> Result<Option<u64>, WorkflowError> {
        let input = json!({ "n": v });
        let vars = Vars::default();
        let env = Env {
            input: &input,
            context: &Context::EMPTY,
            vars: &vars,
        };
        let path = Path::parse("$.n").expect("a valid path");
        task_seconds(
            Some(&Amount::Path(path)),
            &env,
            "TimeoutSeconds",
            "TimeoutSecondsPath",
        )
    }

    #[test]
    fn task_seconds_from_data_must_be_positive_integers() {
        assert_eq!(seconds_from(json!(30)).ok(), Some(Some(30)));
        assert_eq!(seconds_from(json!(30.0)).ok(), Some(Some(30)));
        for bad in [
            json!(-5),
            json!(0),
            json!(0.5),
            json!(1e300),
            json!(1e8),
            json!("x"),
        ] {
            let e = seconds_from(bad.clone()).expect_err("a bad value is an error");
            assert_eq!(e.name(), names::RUNTIME, "{bad}");
            let cause = e.cause.unwrap_or_default();
            assert!(cause.contains("TimeoutSecondsPath"), "{bad}: {cause}");
        }
        let e = seconds_from(json!(1e300)).expect_err("huge");
        let cause = e.cause.unwrap_or_default();
        assert!(
            cause.contains("'1e+300'"),
            "shown as JSON, not 301 digits: {cause}"
        );
    }

    /// AWS names the Fail state's field in the cause ("... specified for the field
    /// 'CausePath' ..."; LocalStack's recording `test_invalid_jsonpath`), not the path.
    #[test]
    fn a_missing_error_or_cause_path_is_named_by_its_field() {
        use crate::exec::{execute_blocking, ClockMode, ExecOptions, Status};
        for (field, other) in [("ErrorPath", "CausePath"), ("CausePath", "ErrorPath")] {
            // After a Pass state (history events 2 and 3), F is entered at event 4.
            let def = serde_json::json!({"StartAt": "P", "States": {
                "P": {"Type": "Pass", "Next": "F"},
                "F": {"Type": "Fail", field: "$.nope", other: "$.e"}}});
            let plan = crate::compile::plan::Plan::load(&def).expect("a valid definition");
            let out = execute_blocking(
                &plan,
                json!({"e": "x"}),
                &crate::tasks::Tasks::new(),
                &ExecOptions::default(),
                ClockMode::Virtual,
            );
            assert_eq!(out.status, Status::Failed);
            assert_eq!(out.error.as_deref(), Some(names::RUNTIME));
            let cause = out.cause.unwrap_or_default();
            assert!(
                cause.contains(&format!(
                    "the state 'F' (entered at the event id #4). The JSONPath '$.nope' specified for the field '{field}' could not be found"
                )),
                "{cause}"
            );
        }
    }

    /// AWS: a Wait until a timestamp 2^31 seconds or more ahead fails at once; one just
    /// under that waits (here: past a 5 s cap on the virtual clock).
    #[test]
    fn a_wait_2_31_seconds_or_more_ahead_is_a_runtime_error() {
        use crate::exec::{execute_blocking, ClockMode, ExecOptions, Status};
        let def = serde_json::json!({"StartAt": "W", "States": {
            "W": {"Type": "Wait", "TimestampPath": "$.at", "End": true}}});
        let plan = crate::compile::plan::Plan::load(&def).expect("a valid definition");
        let opts = ExecOptions {
            max_duration: std::time::Duration::from_secs(5),
            ..ExecOptions::default()
        };
        for (days, status) in [(24_855, Status::TimedOut), (24_856, Status::Failed)] {
            let at = chrono::Utc::now() + chrono::Duration::days(days);
            let at = at.format("%Y-%m-%dT%H:%M:%S.000Z").to_string();
            let out = execute_blocking(
                &plan,
                json!({ "at": at }),
                &crate::tasks::Tasks::new(),
                &opts,
                ClockMode::Virtual,
            );
            assert_eq!(out.status, status, "{days} days: {:?}", out.cause);
            if status == Status::Failed {
                assert_eq!(out.error.as_deref(), Some(names::RUNTIME));
                let cause = out.cause.unwrap_or_default();
                assert!(cause.ends_with("Wait state delay is too long."), "{cause}");
            }
        }
    }
}
