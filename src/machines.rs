//! The state machines a pipeline runs: `*.asl.json` files in one folder, compiled at start,
//! and those the definitions topic adds ([`Deployed`] holds what runs now).
//!
//! `order.asl.json` is the machine named `order`. Its Task resources are answered by the
//! built-in handlers listed in `order.tasks.json` beside it (`{"<resource>": "<spec>"}`,
//! see [`crate::tasks::builtin`]), if that file exists. Resources neither answers reach real
//! services (Lambda, HTTP) as the config's `[tasks]` section allows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

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
pub type Machines = HashMap<String, Arc<Machine>>;

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
    let compiler = Compiler::new(dir, real)?;
    let mut out = Machines::new();
    for (name, file, _, def) in read_dir(dir)? {
        let machine = compiler.compile(&name, &def).map_err(|e| match e {
            LoadError::Invalid { problems, .. } => LoadError::Invalid {
                file: file.clone(),
                problems,
            },
            e => e,
        })?;
        out.insert(name, Arc::new(machine));
    }
    if out.is_empty() {
        return Err(LoadError::Empty(dir.display().to_string()));
    }
    Ok(out)
}

/// One definition of a folder: `(name, file, text, definition)`.
pub type DirEntry = (String, String, String, serde_json::Value);

/// The definitions of a folder, one per `*.asl.json`, by name.
pub fn read_dir(dir: &Path) -> Result<Vec<DirEntry>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Dir {
        dir: dir.display().to_string(),
        source,
    })?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(".asl.json")))
        .collect();
    files.sort();
    let mut out = Vec::with_capacity(files.len());
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
        out.push((name, file, text, def));
    }
    Ok(out)
}

/// Turns a definition into a deployable machine, the same way whether it comes from the
/// folder or from the definitions topic: `NAME.tasks.json` in the folder and the config's
/// MockConfigFile test case bind the Task resources of the machine named NAME.
pub struct Compiler {
    dir: PathBuf,
    /// One set of real integrations for all machines: concurrency limits and the Kafka
    /// producer are per process, not per machine.
    base: Tasks,
    mock_config: Option<(serde_json::Value, String, String)>,
    logs: Option<crate::config::LogsConfig>,
}

impl Compiler {
    /// A compiler for the machines of `dir`, real task calls following `real`.
    pub fn new(dir: &Path, real: &TasksConfig) -> Result<Compiler, LoadError> {
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
                Some((doc, case.clone(), file))
            }
            _ => None,
        };
        Ok(Compiler {
            dir: dir.to_path_buf(),
            base,
            mock_config,
            logs: None,
        })
    }

    /// Gives the machines their `[logs]` settings.
    pub fn with_logs(mut self, logs: &crate::config::LogsConfig) -> Compiler {
        self.logs = Some(logs.clone());
        self
    }

    /// Validates and compiles the machine `name`.
    pub fn compile(&self, name: &str, def: &serde_json::Value) -> Result<Machine, LoadError> {
        let plan = Plan::load(def).map_err(|ps| LoadError::Invalid {
            file: name.to_string(),
            problems: ps
                .iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n"),
        })?;
        let mut tasks = self.base.clone();
        let tasks_file = self.dir.join(format!("{name}.tasks.json"));
        // Names are checked before they get here (no `/`, no `..`), so this stays in the folder.
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
        if let Some((doc, case, file)) = &self.mock_config {
            let mocks =
                crate::tasks::mock_config::mocks_for(doc, name, case).map_err(|message| {
                    LoadError::Tasks {
                        file: file.clone(),
                        message,
                    }
                })?;
            if let Some(m) = mocks {
                tasks = tasks.with_mocks(m);
            }
        }
        let log = match &self.logs {
            Some(logs) => logs.settings(name).map_err(|e| LoadError::Tasks {
                file: "[logs] in the config".into(),
                message: e.to_string(),
            })?,
            None => crate::exec::LogSettings::default(),
        };
        let metrics = crate::metrics::MachineMetrics::register(name);
        // Task calls are counted and timed per resource (stepstream_task_*) in the interpreter.
        let exec_metrics = Arc::new(crate::metrics::ExecMetrics::register(name, &plan));
        Ok(Machine {
            plan,
            tasks: Arc::new(tasks),
            metrics,
            exec_metrics,
            log,
        })
    }
}

/// The machines deployed now, replaced as a whole when one changes (the API, the
/// definitions topic). Shards read [`Deployed::version`] per job, a plain atomic load,
/// and take the lock only when it moved, so the hot path shares no written cache line.
pub struct Deployed {
    version: AtomicU64,
    current: RwLock<Arc<Machines>>,
}

impl Deployed {
    /// Deploys `machines`.
    pub fn new(machines: Machines) -> Deployed {
        Deployed {
            version: AtomicU64::new(0),
            current: RwLock::new(Arc::new(machines)),
        }
    }

    /// Changes with every [`Deployed::replace`].
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The machines deployed now.
    pub fn snapshot(&self) -> Arc<Machines> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Deploys a new set of machines; executions already running keep the one they started with.
    pub fn replace(&self, machines: Machines) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(machines);
        self.version.fetch_add(1, Ordering::Release);
    }
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
