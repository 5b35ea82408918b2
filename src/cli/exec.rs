//! `stepstream exec`: one execution in process, one JSON object out.

use std::time::Duration;

use serde_json::Value;

use crate::compile::plan::Plan;
use crate::exec::{execute_blocking, ClockMode, ExecOptions};
use crate::tasks::mock::Mocks;
use crate::tasks::Tasks;

/// What an `exec` run needs besides the definition and input.
#[derive(Debug, Clone, Default)]
pub struct ExecArgs {
    /// Mocked Task responses by state name.
    pub mocks: Option<Value>,
    /// Built-in task specs by resource (`{"arn:...": "identity"}`).
    pub tasks: Option<Value>,
    /// Real or virtual clock.
    pub clock: ClockMode,
    /// Execution name for the Context object.
    pub name: Option<String>,
    /// Overrides the 5-minute Express cap.
    pub max_duration: Option<Duration>,
    /// An AWS Step Functions Local MockConfigFile and the test case to answer from
    /// (`CASE`, or `MACHINE#CASE` when several machines define it).
    pub mock_config: Option<(Value, String)>,
    /// How real Lambda and HTTP calls are made (the config file's `[tasks]`); defaults otherwise.
    pub real_tasks: Option<crate::tasks::TasksConfig>,
    /// Overrides the per-execution memory cap (bytes).
    pub max_memory_bytes: Option<usize>,
    /// Which history events to print to stderr, one JSON object a line.
    pub log: crate::exec::LogSettings,
    /// Runs the execution this many times in a row and prints the time they took to
    /// stderr (0: once, untimed).
    pub repeat: u64,
    /// Standard or Express, for the Context object.
    pub workflow_type: crate::exec::WorkflowType,
}

/// Parses `--timeout-seconds`: a positive, finite number of seconds no larger than a
/// year (it is an override of a 5-minute cap, not a way to run forever).
pub fn parse_timeout_seconds(text: &str) -> Result<Duration, String> {
    const MAX: f64 = 365.0 * 24.0 * 3600.0;
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= MAX) {
        return Err(format!(
            "{text:?} is not a positive number of seconds of at most {MAX} (one year)"
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"))
}

/// Parses `--max-memory-bytes`: a whole number of bytes, at least 1 KiB.
pub fn parse_memory_bytes(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1024 => Ok(n),
        _ => Err(format!(
            "{text:?} is not a whole number of bytes of at least 1024"
        )),
    }
}

/// Runs one execution and returns the `{"status","output","error","cause"}` object.
/// An invalid definition gives status `INVALID_DEFINITION`; bad mocks give `INVALID_ARGUMENTS`.
pub fn run(definition: &Value, input: Value, args: &ExecArgs) -> Value {
    run_value(definition, input.into(), args).to_serde()
}

fn run_value(
    definition: &Value,
    input: crate::value::Value,
    args: &ExecArgs,
) -> crate::value::Value {
    let plan = match Plan::load_for(definition, args.workflow_type.machine()) {
        Ok(p) => p,
        Err(problems) => {
            let cause = problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n");
            return crate::json!({
                "status": "INVALID_DEFINITION",
                "output": null,
                "error": "States.InvalidDefinition",
                "cause": cause,
            });
        }
    };
    let tasks = match build_tasks(args) {
        Ok(t) => t,
        Err(cause) => {
            return crate::json!({"status": "INVALID_ARGUMENTS", "output": null, "error": "stepstream.InvalidArguments", "cause": cause})
        }
    };
    let mut opts = ExecOptions {
        execution_name: args.name.clone(),
        workflow_type: args.workflow_type,
        ..ExecOptions::default()
    };
    if let Some(d) = args.max_duration {
        opts.max_duration = d;
    }
    if let Some(m) = args.max_memory_bytes {
        opts.max_memory_bytes = m;
    }
    if args.repeat > 0 {
        return run_repeated(&plan, &input, &tasks, &opts, args);
    }
    if args.log.level == crate::exec::LogLevel::Off {
        return execute_blocking(&plan, input, &tasks, &opts, args.clock).to_json();
    }
    opts.log = args.log;
    let (out, log) = crate::exec::execute_blocking_logged(&plan, input, &tasks, &opts, args.clock);
    for e in &log.events {
        eprintln!("{e}");
    }
    if log.dropped > 0 {
        tracing::warn!(
            "{} events past the cap of {} were not logged",
            log.dropped,
            crate::exec::log::MAX_EVENTS_PER_EXECUTION
        );
    }
    out.to_json()
}

/// `--repeat N`: the outcome of the last of N executions, and their time on stderr.
fn run_repeated(
    plan: &Plan,
    input: &crate::value::Value,
    tasks: &Tasks,
    opts: &ExecOptions,
    args: &ExecArgs,
) -> crate::value::Value {
    let text = crate::value::to_vec(input);
    let (out, took) =
        crate::exec::execute_blocking_repeated(plan, &text, tasks, opts, args.clock, args.repeat)
            .expect("the input was JSON when it was read, and reads back the same");
    eprintln!("{}", timing_line(args.repeat, took));
    out.to_json()
}

/// "N executions in T ms: X ns each, Y executions/s".
fn timing_line(n: u64, took: Duration) -> String {
    let ns = took.as_nanos() as f64 / n as f64;
    format!(
        "{n} executions in {:.1} ms: {:.0} ns each, {:.0} executions/s \
         (one thread; each parses its input and serializes its output)",
        took.as_secs_f64() * 1e3,
        ns,
        1e9 / ns.max(1.0)
    )
}

/// Parses `--repeat`: a whole number of executions from 1 to a billion.
pub fn parse_repeat(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if (1..=1_000_000_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a whole number of executions from 1 to 1000000000"
        )),
    }
}

/// Parses `--log-level`: ALL, ERROR, FATAL or OFF.
pub fn parse_log_level(text: &str) -> Result<crate::exec::LogLevel, String> {
    crate::exec::LogLevel::parse(text)
        .ok_or_else(|| format!("{text:?} is not a log level (ALL, ERROR, FATAL or OFF)"))
}

fn build_tasks(args: &ExecArgs) -> Result<Tasks, String> {
    let mut tasks = Tasks::new().with_real_tasks(args.real_tasks.clone().unwrap_or_default())?;
    if let Some(specs) = &args.tasks {
        tasks.register_specs(specs)?;
    }
    if let Some(m) = &args.mocks {
        tasks = tasks.with_mocks(Mocks::from_json(m)?);
    }
    if let Some((doc, case)) = &args.mock_config {
        tasks = tasks.with_mocks(crate::tasks::mock_config::mocks_for_case(doc, case)?);
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_seconds_must_be_positive_finite_and_at_most_a_year() {
        assert_eq!(
            parse_timeout_seconds("2.5"),
            Ok(Duration::from_millis(2500))
        );
        for bad in ["0", "-5", "1e300", "NaN", "inf", "x", ""] {
            assert!(parse_timeout_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repeat_is_a_whole_number_from_one_to_a_billion() {
        assert_eq!(parse_repeat("1"), Ok(1));
        assert_eq!(parse_repeat("1000000000"), Ok(1_000_000_000));
        for bad in ["0", "-1", "1.5", "1000000001", "x", ""] {
            assert!(parse_repeat(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repeated_runs_report_the_last_outcome_and_a_timing() {
        let def = serde_json::json!({"StartAt": "T", "States": {"T": {"Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f", "End": true}}});
        let args = ExecArgs {
            // Mocks count calls per execution: every run gets the first answer.
            mocks: Some(serde_json::json!({"T": [{"result": {"n": 1}}]})),
            clock: crate::exec::ClockMode::Virtual,
            repeat: 3,
            ..ExecArgs::default()
        };
        let out = run(&def, serde_json::json!({"x": 1}), &args);
        assert_eq!(out["status"], "SUCCEEDED", "{out}");
        assert_eq!(out["output"], serde_json::json!({"n": 1}));
        assert!(timing_line(3, Duration::from_micros(30))
            .starts_with("3 executions in 0.0 ms: 10000 ns each, 100000 executions/s"));
    }

    #[test]
    fn memory_bytes_must_be_a_whole_number() {
        assert_eq!(parse_memory_bytes("65536"), Ok(65536));
        for bad in ["0", "-1", "1.5", "1e9", "x"] {
            assert!(parse_memory_bytes(bad).is_err(), "{bad}");
        }
    }
}
