//! `stepstream exec`: one execution in process, one JSON object out.

use std::time::Duration;

use serde_json::{json, Value};

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
}

/// Runs one execution and returns the `{"status","output","error","cause"}` object.
/// An invalid definition gives status `INVALID_DEFINITION`; bad mocks give `INVALID_ARGUMENTS`.
pub fn run(definition: &Value, input: Value, args: &ExecArgs) -> Value {
    let plan = match Plan::load(definition) {
        Ok(p) => p,
        Err(problems) => {
            let cause = problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n");
            return json!({
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
            return json!({"status": "INVALID_ARGUMENTS", "output": null, "error": "stepstream.InvalidArguments", "cause": cause})
        }
    };
    let mut opts = ExecOptions {
        execution_name: args.name.clone(),
        ..ExecOptions::default()
    };
    if let Some(d) = args.max_duration {
        opts.max_duration = d;
    }
    execute_blocking(&plan, input, &tasks, &opts, args.clock).to_json()
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
