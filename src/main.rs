//! The `stepstream` binary: parses the command line and maps results to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use stepstream::cli;
use stepstream::exec::ClockMode;

// Executions allocate and free many small JSON nodes across shard threads; glibc's malloc
// took ~30% of a pipeline run under perf, mimalloc a fraction of that.
// Watched: a JSONata evaluation arms a memory budget on its thread (stepstream::alloc).
#[global_allocator]
static GLOBAL: stepstream::alloc::Watched<stepstream::alloc::Mimalloc> =
    stepstream::alloc::Watched(stepstream::alloc::Mimalloc);

#[derive(Parser)]
#[command(
    name = "stepstream",
    version,
    about = "Amazon States Language workflows (Express semantics) on Kafka"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check definitions; prints every problem with a JSON pointer, exits 1 if any.
    Validate {
        /// Definition files (ASL JSON).
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Run one execution in process and print {"status","output","error","cause"}.
    Exec {
        /// Definition file (ASL JSON).
        #[arg(long)]
        definition: String,
        /// Execution input: a file, or JSON text.
        #[arg(long, default_value = "{}")]
        input: String,
        /// Mocked Task responses: {"<state>": [{"result": ..} | {"error": "E", "cause": "C"}, ..]}.
        #[arg(long)]
        mocks: Option<String>,
        /// Built-in task handlers by resource: {"<resource ARN>": "identity" | "merge {..}" | "fail E cause" | "sleep MS" | ..}.
        #[arg(long)]
        tasks: Option<String>,
        /// Clock for Wait and Retry delays; `virtual` makes them pass instantly, in order.
        #[arg(long, value_enum, default_value_t = Clock::Real)]
        clock: Clock,
        /// Execution name (a UUID when not given).
        #[arg(long)]
        name: Option<String>,
        /// Config file whose [tasks] section says how Lambda and HTTP Tasks are called.
        #[arg(long)]
        config: Option<PathBuf>,
        /// AWS Step Functions Local MockConfigFile (with --test-case).
        #[arg(long, requires = "test_case")]
        mock_config: Option<String>,
        /// Test case of --mock-config: CASE, or MACHINE#CASE.
        #[arg(long, requires = "mock_config")]
        test_case: Option<String>,
        /// Execution time cap in seconds (default 300, the Express limit).
        #[arg(long, value_parser = cli::exec::parse_timeout_seconds)]
        timeout_seconds: Option<Duration>,
        /// Most data one execution may hold at once, in bytes (default 64 MiB); past it
        /// the execution fails with States.DataLimitExceeded.
        #[arg(long, value_parser = cli::exec::parse_memory_bytes)]
        max_memory_bytes: Option<usize>,
        /// Print the execution's history events (ALL, ERROR, FATAL; default OFF) to stderr,
        /// one JSON object a line, as Step Functions logs them to CloudWatch Logs.
        #[arg(long, value_parser = cli::exec::parse_log_level)]
        log_level: Option<stepstream::exec::LogLevel>,
        /// With --log-level: include inputs, outputs and task parameters in the events.
        #[arg(long, requires = "log_level")]
        log_execution_data: bool,
        /// Run the execution N times in a row in this process (each parsing its input and
        /// serializing its output) and print their time to stderr; prints the last outcome.
        #[arg(long, value_name = "N", value_parser = cli::exec::parse_repeat)]
        repeat: Option<u64>,
        /// Run as a Standard or an Express workflow's execution. STANDARD, the default,
        /// compares one to one with AWS's recorded Standard executions and accepts job
        /// waits (.sync), callbacks (.waitForTaskToken) and Activities, which a mock then
        /// answers; the pipeline and the API run EXPRESS, which refuses them.
        #[arg(long = "type", value_enum, default_value_t = WorkflowTypeArg::Standard)]
        workflow_type: WorkflowTypeArg,
        /// Start the Express execution as StartSyncExecution does (no
        /// `$$.Execution.RedriveCount`); without it, as StartExecution (the pipeline's way).
        #[arg(long)]
        sync: bool,
    },
    /// Draw a state machine: Choice rules as edge labels, Catch edges dashed, Map/Parallel as subgraphs.
    Graph {
        /// Definition file (ASL JSON).
        file: String,
        /// Picture language.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Drive a pipeline with a benchmark workload: throughput, latency percentiles, outputs checked.
    Load(cli::load::LoadArgs),
    /// Run the Kafka pipeline (an embedded broker when no brokers are configured).
    Run {
        /// Config file (default: config/stepstream.toml when present, else built-in defaults).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Feed this many demo requests, show live throughput and latency, then stop.
        #[arg(long)]
        demo: Option<u64>,
        /// Demo requests per second (default: as fast as results come back).
        #[arg(long)]
        demo_rate: Option<f64>,
        /// State machine the demo runs.
        #[arg(long, default_value = "order")]
        demo_machine: String,
        /// Input of each demo execution.
        #[arg(long, default_value = "config/demo/order-input.json")]
        demo_input: PathBuf,
        /// Measurement mode: copy requests to the results topic without running them.
        #[arg(long)]
        passthrough: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "UPPER")]
enum WorkflowTypeArg {
    Standard,
    Express,
}

#[derive(Clone, Copy, ValueEnum)]
enum Clock {
    Real,
    Virtual,
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stepstream: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode> {
    match Cli::parse().command {
        Command::Validate { files } => {
            let ok = cli::validate::run(&files, &mut std::io::stdout().lock())?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Graph { file, format } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read definition file {file}: {e}"))?;
            let def: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{file} is not valid JSON: {e}"))?;
            let format = match format {
                GraphFormat::Mermaid => cli::graph::Format::Mermaid,
                GraphFormat::Dot => cli::graph::Format::Dot,
            };
            match cli::graph::render(&def, format) {
                Ok(picture) => {
                    print!("{picture}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    eprintln!("{file}: not a valid state machine");
                    for p in problems {
                        eprintln!("  {p}");
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Load(args) => {
            cli::load::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            config,
            demo,
            demo_rate,
            demo_machine,
            demo_input,
            passthrough,
        } => {
            cli::run::run(&cli::run::RunArgs {
                config,
                demo,
                demo_rate,
                demo_machine,
                demo_input,
                passthrough,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Exec {
            definition,
            input,
            mocks,
            tasks,
            clock,
            name,
            timeout_seconds,
            config,
            mock_config,
            test_case,
            max_memory_bytes,
            log_level,
            log_execution_data,
            repeat,
            workflow_type,
            sync,
        } => {
            if sync && matches!(workflow_type, WorkflowTypeArg::Standard) {
                // AWS's StartSyncExecution refuses Standard machines.
                eprintln!("error: --sync needs --type EXPRESS (only Express executions start synchronously)");
                return Ok(ExitCode::from(2));
            }
            if let (Some(_), Some(level)) = (repeat, log_level) {
                if level != stepstream::exec::LogLevel::Off {
                    // N executions' events would bury the one timing line asked for.
                    let level = format!("{level:?}").to_uppercase();
                    eprintln!("error: --repeat cannot be used with --log-level {level} (only OFF)");
                    return Ok(ExitCode::from(2));
                }
            }
            let def_text = std::fs::read_to_string(&definition)
                .map_err(|e| anyhow::anyhow!("cannot read definition file {definition}: {e}"))?;
            let def = match serde_json::from_str(&def_text) {
                Ok(d) => d,
                Err(e) => {
                    let out = serde_json::json!({"status": "INVALID_DEFINITION", "output": null,
                        "error": "States.InvalidDefinition", "cause": format!("the definition is not valid JSON: {e}")});
                    println!("{out}");
                    return Ok(ExitCode::from(2));
                }
            };
            let input = match cli::json_arg(&input, "input") {
                Ok(v) => v,
                Err(cause) => {
                    let out = serde_json::json!({"status": "INVALID_INPUT", "output": null,
                        "error": "stepstream.InvalidInput", "cause": cause});
                    println!("{out}");
                    return Ok(ExitCode::from(2));
                }
            };
            let args = cli::exec::ExecArgs {
                mocks: mocks
                    .map(|m| cli::json_arg(&m, "mocks"))
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                tasks: tasks
                    .map(|t| cli::json_arg(&t, "tasks"))
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                clock: match clock {
                    Clock::Real => ClockMode::Real,
                    Clock::Virtual => ClockMode::Virtual,
                },
                name,
                mock_config: match (mock_config, test_case) {
                    (Some(f), Some(case)) => Some((
                        cli::json_arg(&f, "mock-config").map_err(anyhow::Error::msg)?,
                        case,
                    )),
                    _ => None,
                },
                real_tasks: config
                    .map(|c| stepstream::config::Config::load(Some(&c)).map(|c| c.tasks))
                    .transpose()?,
                max_duration: timeout_seconds,
                max_memory_bytes,
                log: stepstream::exec::LogSettings {
                    level: log_level.unwrap_or_default(),
                    include_execution_data: log_execution_data,
                },
                repeat: repeat.unwrap_or(0),
                workflow_type: match workflow_type {
                    WorkflowTypeArg::Standard => stepstream::exec::WorkflowType::Standard,
                    WorkflowTypeArg::Express if sync => stepstream::exec::WorkflowType::ExpressSync,
                    WorkflowTypeArg::Express => stepstream::exec::WorkflowType::Express,
                },
            };
            let out = cli::exec::run(&def, input, &args);
            println!("{out}");
            Ok(match out["status"].as_str() {
                Some("SUCCEEDED") => ExitCode::SUCCESS,
                Some("FAILED") | Some("TIMED_OUT") => ExitCode::from(1),
                _ => ExitCode::from(2),
            })
        }
    }
}
