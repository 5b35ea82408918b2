//! Workflow errors: the named errors that flow through Retry and Catch.
//!
//! These are ASL semantics, not program failures. Program failures (a bad definition,
//! an unreadable file) are `thiserror` enums in the module that detects them.

use std::fmt;

/// An error raised inside an execution, matched by `ErrorEquals` and reported in results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowError {
    /// The error name (`States.TaskFailed`, or a task's own name); `None` for a Fail state without Error.
    pub error: Option<String>,
    /// Human-readable cause; `None` when the raiser gave none.
    pub cause: Option<String>,
}

/// Reserved error names raised by the interpreter itself.
pub mod names {
    pub const ALL: &str = "States.ALL";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    pub const RUNTIME: &str = "States.Runtime";
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
    pub const RESULT_WRITER_FAILED: &str = "States.ResultWriterFailed";
    pub const PERMISSIONS: &str = "States.Permissions";
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
}

impl WorkflowError {
    /// An error with a name and a cause.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        WorkflowError {
            error: Some(error.into()),
            cause: Some(cause.into()),
        }
    }

    /// `States.Runtime`: the execution cannot go on (a path that is not there, a bad value).
    pub fn runtime(cause: impl Into<String>) -> Self {
        Self::new(names::RUNTIME, cause)
    }

    /// `States.IntrinsicFailure`: an intrinsic function was given arguments it rejects.
    pub fn intrinsic(cause: impl Into<String>) -> Self {
        Self::new(names::INTRINSIC_FAILURE, cause)
    }

    /// The error name used for matching; a nameless error only matches `States.ALL`.
    pub fn name(&self) -> &str {
        self.error.as_deref().unwrap_or("")
    }

    /// Whether this error matches one `ErrorEquals` entry.
    pub fn matches(&self, pattern: &str) -> bool {
        // AWS: States.Runtime always ends the execution. No retrier or catcher sees it, not
        // even one that names it (recorded: a Catch on "States.Runtime" around a failing
        // OutputPath leaves the execution FAILED).
        if self.name() == names::RUNTIME {
            return false;
        }
        match pattern {
            names::ALL => true,
            // AWS: States.TaskFailed matches any error except States.Timeout.
            names::TASK_FAILED => self.name() != names::TIMEOUT,
            _ => self.name() == pattern,
        }
    }
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error.as_deref().unwrap_or("(no error)"))?;
        if let Some(c) = &self.cause {
            write!(f, ": {c}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WorkflowError {}
