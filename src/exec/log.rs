//! Express-style execution logging: the history events Step Functions writes to CloudWatch
//! Logs for an Express workflow (`ExecutionStarted`, `TaskStateEntered`, `TaskScheduled`,
//! ..., `ExecutionSucceeded`), each `{"id", "previous_event_id", "event_timestamp", "type",
//! "execution_arn", "details"}` as AWS shapes them (ids and the millisecond timestamp as
//! strings).
//!
//! An execution logs only when its [`LogSettings`] level is not `OFF`: then it buffers its
//! events here and hands them back with its outcome; with `OFF` the interpreter builds no
//! event and pays one branch per hook. A buffer is bounded: at most
//! [`MAX_EVENTS_PER_EXECUTION`] events (the execution's last event always fits: one slot is
//! kept for it), and the `input` / `output` / `parameters` of an event are cut to
//! [`MAX_EVENT_DATA_BYTES`] of JSON text with `"truncated": true` in their details, as AWS
//! marks data it cut.

use std::cell::RefCell;

use crate::json;

use crate::value::{Map, Value};

use super::json_size;

/// Most events one execution logs; later state and task events are counted, not kept.
pub const MAX_EVENTS_PER_EXECUTION: usize = 256;
/// Largest `input`, `output` or `parameters` text one event carries.
pub const MAX_EVENT_DATA_BYTES: usize = 8 * 1024;
/// Longest `error` or `cause` one event carries, in bytes.
const MAX_ERROR_TEXT_BYTES: usize = 4 * 1024;

/// Which events an execution logs (AWS's `LoggingConfiguration.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    /// Nothing.
    #[default]
    Off,
    /// Only execution-level failures (`ExecutionFailed`, `ExecutionTimedOut`, `ExecutionAborted`).
    Fatal,
    /// Every failure event (`TaskFailed`, `MapStateFailed`, ...) and the FATAL ones.
    Error,
    /// Every event.
    All,
}

impl LogLevel {
    /// `ALL`, `ERROR`, `FATAL` or `OFF` (any case).
    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.to_ascii_uppercase().as_str() {
            "ALL" => Some(LogLevel::All),
            "ERROR" => Some(LogLevel::Error),
            "FATAL" => Some(LogLevel::Fatal),
            "OFF" => Some(LogLevel::Off),
            _ => None,
        }
    }
}

/// One state machine's logging settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogSettings {
    /// Which events are logged.
    pub level: LogLevel,
    /// Whether events carry the execution's data (inputs, outputs, task parameters).
    pub include_execution_data: bool,
}

/// How bad an event is, for the level filter.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    /// Logged at ALL only.
    Info,
    /// A failure inside the execution: logged at ERROR and ALL.
    Error,
    /// The execution failed: logged at every level but OFF.
    Fatal,
}

impl Severity {
    fn logged_at(self, level: LogLevel) -> bool {
        match self {
            Severity::Info => level >= LogLevel::All,
            Severity::Error => level >= LogLevel::Error,
            Severity::Fatal => level >= LogLevel::Fatal,
        }
    }
}

/// One execution's buffered events.
pub(crate) struct EventLog {
    settings: LogSettings,
    arn: String,
    events: RefCell<Vec<Value>>,
    /// Events past the cap that were not kept.
    dropped: std::cell::Cell<u64>,
}

impl EventLog {
    /// A log for the execution `arn`, or none when `settings` log nothing.
    pub fn new(settings: LogSettings, arn: String) -> Option<EventLog> {
        (settings.level != LogLevel::Off).then(|| EventLog {
            settings,
            arn,
            events: RefCell::new(Vec::new()),
            dropped: std::cell::Cell::new(0),
        })
    }

    /// The execution's ARN.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// Logs event `id` (its place in the execution's whole history, logged or not: AWS
    /// numbers the history, so an ERROR-level log's events keep their ids) of `kind` if
    /// the level wants it; `details` is built only then. `last` marks the execution's
    /// final event, which always gets a slot.
    pub fn push(
        &self,
        id: u64,
        kind: &str,
        severity: Severity,
        last: bool,
        details: impl FnOnce(&EventLog) -> Map,
    ) {
        if !severity.logged_at(self.settings.level) {
            return;
        }
        let mut events = self.events.borrow_mut();
        let room = if last {
            MAX_EVENTS_PER_EXECUTION
        } else {
            MAX_EVENTS_PER_EXECUTION - 1
        };
        if events.len() >= room {
            self.dropped.set(self.dropped.get() + 1);
            return;
        }
        let millis = chrono::Utc::now().timestamp_millis();
        // As AWS's histories have it: the first event after ExecutionStarted follows
        // event 0 too.
        let previous = if id == 2 { 0 } else { id - 1 };
        events.push(json!({
            "id": id.to_string(),
            "previous_event_id": previous.to_string(),
            "event_timestamp": millis.to_string(),
            "type": kind,
            "execution_arn": self.arn,
            "details": Value::Object(details(self)),
        }));
    }

    /// The events, in order, and how many past the cap were not kept.
    pub fn into_events(self) -> (Vec<Value>, u64) {
        (self.events.into_inner(), self.dropped.get())
    }

    /// Puts `v` into `details` as `key` (a JSON string, as AWS writes data), cut to
    /// [`MAX_EVENT_DATA_BYTES`], with `<key>Details: {"truncated"}` beside it; nothing
    /// without includeExecutionData.
    pub fn data(&self, details: &mut Map, key: &str, v: &Value) {
        if !self.settings.include_execution_data {
            return;
        }
        let truncated = json_size(v, MAX_EVENT_DATA_BYTES) > MAX_EVENT_DATA_BYTES;
        let text = if truncated {
            let mut t = v.to_string();
            cut(&mut t, MAX_EVENT_DATA_BYTES);
            t
        } else {
            v.to_string()
        };
        details.insert(key.into(), Value::from(text));
        details.insert(
            format!("{key}Details").into(),
            json!({ "truncated": truncated }),
        );
    }
}

/// Cuts `s` to at most `max` bytes, at a character boundary.
fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// `{"error", "cause"}` details, each cut to a bounded length.
pub(crate) fn error_details(error: Option<&str>, cause: Option<&str>) -> Map {
    let mut m = Map::new();
    for (k, v) in [("error", error), ("cause", cause)] {
        if let Some(v) = v {
            let mut s = v.to_string();
            cut(&mut s, MAX_ERROR_TEXT_BYTES);
            m.insert((*k).into(), Value::from(s));
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(level: LogLevel, data: bool) -> EventLog {
        EventLog::new(
            LogSettings {
                level,
                include_execution_data: data,
            },
            "arn:x".into(),
        )
        .expect("a level that logs")
    }

    #[test]
    fn levels_keep_what_aws_keeps() {
        let kinds = [
            ("TaskStateEntered", Severity::Info),
            ("TaskFailed", Severity::Error),
            ("ExecutionFailed", Severity::Fatal),
        ];
        let types = |level| {
            let l = log(level, false);
            for (id, (k, s)) in (1..).zip(kinds) {
                l.push(id, k, s, false, |_| Map::new());
            }
            let (events, _) = l.into_events();
            events
                .iter()
                .map(|e| e["type"].as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            types(LogLevel::All),
            ["TaskStateEntered", "TaskFailed", "ExecutionFailed"]
        );
        assert_eq!(types(LogLevel::Error), ["TaskFailed", "ExecutionFailed"]);
        assert_eq!(types(LogLevel::Fatal), ["ExecutionFailed"]);
        assert!(EventLog::new(LogSettings::default(), "a".into()).is_none());
    }

    #[test]
    fn the_buffer_is_capped_but_keeps_the_last_event() {
        let l = log(LogLevel::All, false);
        let n = MAX_EVENTS_PER_EXECUTION as u64 + 10;
        for id in 1..=n {
            l.push(id, "PassStateEntered", Severity::Info, false, |_| {
                Map::new()
            });
        }
        l.push(n + 1, "ExecutionSucceeded", Severity::Info, true, |_| {
            Map::new()
        });
        let (events, dropped) = l.into_events();
        assert_eq!(events.len(), MAX_EVENTS_PER_EXECUTION);
        assert_eq!(dropped, 11);
        assert_eq!(events[events.len() - 1]["type"], "ExecutionSucceeded");
        assert_eq!(events[1]["previous_event_id"], "0");
        assert_eq!(events[1]["id"], "2");
        assert_eq!(events[2]["previous_event_id"], "2");
        // The last event keeps its place in the whole history.
        let last = &events[events.len() - 1];
        assert_eq!(last["id"], (MAX_EVENTS_PER_EXECUTION + 11).to_string());
    }

    /// A Lambda function ARN's call is logged as AWS's histories log it: LambdaFunction*
    /// events, the payload as `input`, no resource on the outcome (LocalStack's recording
    /// `test_raise_exception`).
    #[test]
    fn a_lambda_function_call_logs_lambda_function_events() {
        let def = json!({"StartAt": "L", "States": {"L": {"Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f", "End": true}}});
        let (_, types) = run(def, json!({"a": 1}), LogLevel::All);
        assert_eq!(
            types,
            [
                "ExecutionStarted",
                "TaskStateEntered",
                "LambdaFunctionScheduled",
                "LambdaFunctionStarted",
                "LambdaFunctionFailed",
                "ExecutionFailed"
            ]
        );
    }

    /// A JSONata error is an EvaluationFailed event before the state's own failure (AWS's
    /// histories, e.g. LocalStack's `test_map_catch_error`).
    #[test]
    fn a_jsonata_error_logs_evaluation_failed() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
            "P": {"Type": "Pass", "Output": "{% $nope %}", "End": true}}});
        let (_, types) = run(def, json!({}), LogLevel::Error);
        assert_eq!(types, ["EvaluationFailed", "ExecutionFailed"]);
    }

    /// An ERROR or FATAL log keeps the ids its events have in the whole history, and
    /// FailStateEntered is an ERROR event (AWS's recorded CloudWatch logs, LocalStack's
    /// `test_partial_log_levels`).
    #[test]
    fn partial_logs_keep_history_ids_and_count_a_fail_state_as_an_error() {
        use crate::exec::{execute_blocking_logged, ClockMode, ExecOptions};
        let def = crate::json!({"StartAt": "P", "States": {
            "P": {"Type": "Pass", "Next": "F"},
            "F": {"Type": "Fail", "Error": "E", "Cause": "C"}}});
        let plan = crate::compile::plan::Plan::load(&def).expect("a valid definition");
        let at = |level| {
            let opts = ExecOptions {
                log: LogSettings {
                    level,
                    include_execution_data: false,
                },
                ..ExecOptions::default()
            };
            let (_, log) = execute_blocking_logged(
                &plan,
                Value::Null,
                &crate::tasks::Tasks::new(),
                &opts,
                ClockMode::Virtual,
            );
            log.events
                .iter()
                .map(|e| {
                    format!(
                        "{} {} {}",
                        e["id"].as_str().unwrap_or(""),
                        e["previous_event_id"].as_str().unwrap_or(""),
                        e["type"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            at(LogLevel::All),
            [
                "1 0 ExecutionStarted",
                "2 0 PassStateEntered",
                "3 2 PassStateExited",
                "4 3 FailStateEntered",
                "5 4 ExecutionFailed"
            ]
        );
        assert_eq!(
            at(LogLevel::Error),
            ["4 3 FailStateEntered", "5 4 ExecutionFailed"]
        );
        assert_eq!(at(LogLevel::Fatal), ["5 4 ExecutionFailed"]);
    }

    fn run(def: Value, input: Value, level: LogLevel) -> (super::super::Outcome, Vec<String>) {
        use crate::exec::{execute_blocking_logged, ClockMode, ExecOptions};
        let plan = crate::compile::plan::Plan::load(&def).expect("a valid definition");
        let opts = ExecOptions {
            max_duration: std::time::Duration::from_secs(5),
            log: LogSettings {
                level,
                include_execution_data: false,
            },
            ..ExecOptions::default()
        };
        let tasks = crate::tasks::Tasks::new();
        let (out, log) = execute_blocking_logged(&plan, input, &tasks, &opts, ClockMode::Virtual);
        let types = log
            .events
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("?").to_string())
            .collect();
        (out, types)
    }

    /// An output over the payload limit fails the execution straight from the state's
    /// Entered event, with no Exited event (LocalStack's recording `test_start_large_input`).
    #[test]
    fn an_oversized_output_has_no_exited_event() {
        let def = json!({"StartAt": "P", "States": {
            "P": {"Type": "Pass", "Parameters": {"a.$": "$.s", "b.$": "$.s"}, "End": true}}});
        let big = "x".repeat(200 * 1024);
        let (out, types) = run(def, json!({ "s": big }), LogLevel::All);
        assert_eq!(out.error.as_deref(), Some("States.DataLimitExceeded"));
        assert_eq!(
            types,
            ["ExecutionStarted", "PassStateEntered", "ExecutionFailed"]
        );
    }

    /// The sequence AWS's histories have (LocalStack's recording `test_base_map`): a Map's
    /// started, iteration and succeeded events, a Parallel's started and succeeded ones.
    #[test]
    fn map_and_parallel_states_log_their_inner_states() {
        let def = json!({"StartAt": "M", "States": {
            "M": {"Type": "Map", "Next": "P", "ItemProcessor": {"StartAt": "I", "States": {
                "I": {"Type": "Pass", "End": true}}}},
            "P": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}]}}});
        let (_, types) = run(def, json!([1, 2]), LogLevel::All);
        assert_eq!(
            types,
            [
                "ExecutionStarted",
                "MapStateEntered",
                "MapStateStarted",
                "MapIterationStarted",
                "PassStateEntered",
                "PassStateExited",
                "MapIterationSucceeded",
                "MapIterationStarted",
                "PassStateEntered",
                "PassStateExited",
                "MapIterationSucceeded",
                "MapStateSucceeded",
                "MapStateExited",
                "ParallelStateEntered",
                "ParallelStateStarted",
                "SucceedStateEntered",
                "SucceedStateExited",
                "ParallelStateSucceeded",
                "ParallelStateExited",
                "ExecutionSucceeded",
            ]
        );
    }

    #[test]
    fn fatal_logs_only_the_execution_failing() {
        let def = json!({"StartAt": "M", "States": {
            "M": {"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "F", "States": {
                "F": {"Type": "Fail", "Error": "Bad"}}}}}});
        // ERROR also logs entering a Fail state and a failed iteration (AWS's recorded logs
        // and log levels).
        let (_, types) = run(def.clone(), json!([1]), LogLevel::Error);
        assert_eq!(
            types,
            [
                "FailStateEntered",
                "MapIterationFailed",
                "MapStateFailed",
                "ExecutionFailed"
            ]
        );
        let (_, types) = run(def, json!([1]), LogLevel::Fatal);
        assert_eq!(types, ["ExecutionFailed"]);
        let wait =
            json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": true}}});
        let (out, types) = run(wait, json!({}), LogLevel::Fatal);
        assert_eq!(out.status, super::super::Status::TimedOut);
        assert_eq!(types, ["ExecutionTimedOut"]);
    }

    #[test]
    fn data_is_cut_and_marked_or_left_out() {
        let big = Value::from("é".repeat(MAX_EVENT_DATA_BYTES));
        let l = log(LogLevel::All, true);
        let mut d = Map::new();
        l.data(&mut d, "input", &big);
        assert!(d["input"]
            .as_str()
            .is_some_and(|s| s.len() <= MAX_EVENT_DATA_BYTES));
        assert_eq!(d["inputDetails"]["truncated"], true);
        l.data(&mut d, "output", &json!({"a": 1}));
        assert_eq!(d["output"], "{\"a\":1}");
        assert_eq!(d["outputDetails"]["truncated"], false);
        let mut d = Map::new();
        log(LogLevel::All, false).data(&mut d, "input", &big);
        assert!(d.is_empty());
    }
}
