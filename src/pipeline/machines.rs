//! The state machines a pipeline runs: `*.asl.json` files in one folder, compiled at start.
//!
//! `order.asl.json` is the machine named `order`. Its Task resources are answered by the
//! built-in handlers listed in `order.tasks.json` beside it (`{"<resource>": "<spec>"}`,
//! see [`crate::tasks::builtin`]), if that file exists. Resources neither answers reach real
//! services (Lambda, HTTP) as the config's `[tasks]` section allows.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::compile::plan::Plan;
use crate::tasks::{Tasks, TasksConfig};

/// One deployable state machine.
pub struct Machine {
    /// The compiled plan.
    pub plan: Arc<Plan>,
    /// Its task handlers.
    pub tasks: Arc<Tasks>,
    /// Its execution metrics (handles registered at load).
    pub metrics: crate::metrics::MachineMetrics,
    /// What its executions count inside the interpreter (transitions, retries, task calls).
    pub exec_metrics: Arc<crate::metrics::ExecMetrics>,
    /// Which history events its executions log (`[logs]`; OFF unless configured).
    pub log: crate::exec::LogSettings,
}

/// Machines by name, shared read-only by every shard.
pub type Machines = HashMap<String, Machine>;

/// Why the machines could not be loaded; start-up stops with this message.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The folder cannot be read.
    #[error("cannot read the state machine folder {dir}: {source}")]
    Dir {
        /// The folder.
        dir: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A definition is invalid.
    #[error("{file} is not a valid state machine:\n{problems}")]
    Invalid {
        /// The file.
        file: String,
        /// One problem per line, with JSON pointers.
        problems: String,
    },
    /// A tasks file is malformed.
    #[error("{file}: {message}")]
    Tasks {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The folder holds no definition.
    #[error("no *.asl.json state machine found in {0}")]
    Empty(String),
}

/// Loads and compiles every `*.asl.json` in `dir`, with real tasks as the default `[tasks]` allows.
pub fn load(dir: &Path) -> Result<Machines, LoadError> {
    load_with(dir, &TasksConfig::default())
}

/// Loads and compiles every `*.asl.json` in `dir`; real task calls follow `real`.
pub fn load_with(dir: &Path, real: &TasksConfig) -> Result<Machines, LoadError> {
    // One set of real integrations for all machines: concurrency limits and the Kafka
    // producer are per process, not per machine.
    let base = Tasks::new()
        .with_real_tasks(real.clone())
        .map_err(|message| LoadError::Tasks {
            file: "[tasks] in the config".into(),
            message,
        })?;
    let mock_config = match (&real.mock_config, &real.test_case) {
        (Some(path), Some(case)) => {
            let file = path.display().to_string();
            let doc: serde_json::Value = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
                .map_err(|message| LoadError::Tasks {
                    file: file.clone(),
                    message,
                })?;
            Some((doc, case.as_str(), file))
        }
        _ => None,
    };
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Dir {
        dir: dir.display().to_string(),
        source,
    })?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(".asl.json")))
        .collect();
    files.sort();
    let mut out = Machines::new();
    for f in files {
        let file = f.display().to_string();
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".asl.json"))
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&f).map_err(|source| LoadError::Dir {
            dir: file.clone(),
            source,
        })?;
        let def: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| LoadError::Invalid {
                file: file.clone(),
                problems: format!("  /: not valid JSON: {e}"),
            })?;
        let plan = Plan::load(&def).map_err(|ps| LoadError::Invalid {
            file: file.clone(),
            problems: ps
                .iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n"),
        })?;
        let mut tasks = base.clone();
        let tasks_file = f.with_file_name(format!("{name}.tasks.json"));
        if tasks_file.exists() {
            let tf = tasks_file.display().to_string();
            let specs = std::fs::read_to_string(&tasks_file)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
                .map_err(|message| LoadError::Tasks {
                    file: tf.clone(),
                    message,
                })?;
            tasks = Tasks::new();
            tasks
                .register_specs(&specs)
                .map_err(|message| LoadError::Tasks { file: tf, message })?;
        }
        if let Some((doc, case, file)) = &mock_config {
            let mocks =
                crate::tasks::mock_config::mocks_for(doc, &name, case).map_err(|message| {
                    LoadError::Tasks {
                        file: file.clone(),
                        message,
                    }
                })?;
            if let Some(m) = mocks {
                tasks = tasks.with_mocks(m);
            }
        }
        let metrics = crate::metrics::MachineMetrics::register(&name);
        // Task calls are counted and timed per resource (stepstream_task_*) in the interpreter.
        let exec_metrics = Arc::new(crate::metrics::ExecMetrics::register(&name, &plan));
        out.insert(
            name,
            Machine {
                plan,
                tasks: Arc::new(tasks),
                metrics,
                exec_metrics,
                log: crate::exec::LogSettings::default(),
            },
        );
    }
    if out.is_empty() {
        return Err(LoadError::Empty(dir.display().to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::exec::{execute_blocking, ClockMode, ExecOptions};

    #[test]
    fn a_mock_config_test_case_answers_the_machines_it_names() {
        let dir = std::env::temp_dir().join(format!("stepstream-machines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:F", "End": true}}});
        for name in ["a", "b"] {
            std::fs::write(dir.join(format!("{name}.asl.json")), def.to_string()).unwrap();
        }
        let mock_file = dir.join("mocks.json");
        std::fs::write(
            &mock_file,
            json!({"StateMachines": {"a": {"TestCases": {"Happy": {"T": "Ok"}}}},
                   "MockedResponses": {"Ok": {"0": {"Return": {"ok": 1}}}}})
            .to_string(),
        )
        .unwrap();
        let cfg = TasksConfig {
            mock_config: Some(mock_file),
            test_case: Some("Happy".into()),
            ..TasksConfig::default()
        };
        let machines = load_with(&dir, &cfg).unwrap();
        let run = |m: &Machine| {
            execute_blocking(
                &m.plan,
                json!({}),
                &m.tasks,
                &ExecOptions::default(),
                ClockMode::Real,
            )
        };
        assert_eq!(run(&machines["a"]).output, Some(crate::json!({"ok": 1})));
        // Machine b is not in the file: its Lambda ARN goes to the real integration,
        // which has no endpoint for it.
        assert!(run(&machines["b"]).cause.unwrap().contains("allow_hosts"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
