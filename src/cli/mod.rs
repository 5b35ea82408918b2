//! The `stepstream` commands as library functions; `main.rs` only parses arguments.

pub mod exec;
pub mod graph;
pub mod load;
pub mod run;
pub mod validate;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde_json::Value;

/// Sends operational logs (`tracing` events) to stderr as `cfg` says: text or JSON, at
/// `cfg.level` unless `RUST_LOG` is set. A second call (a test in the same process) keeps
/// the first subscriber.
pub fn init_logs(cfg: &crate::config::LogConfig) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => {
            EnvFilter::try_new(&v).map_err(|e| format!("RUST_LOG {v:?}: {e}"))?
        }
        _ => {
            EnvFilter::try_new(&cfg.level).map_err(|e| format!("log.level {:?}: {e}", cfg.level))?
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if cfg.format == "json" {
        builder.json().with_current_span(false).try_init()
    } else {
        use std::io::IsTerminal;
        builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
    Ok(())
}

/// A flag that SIGINT or SIGTERM sets, for commands that stop gracefully.
pub fn stop_on_signals() -> std::io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    Ok(stop)
}

/// Reads a JSON argument: the contents of a file if `arg` names one, else `arg` itself as JSON.
pub fn json_arg(arg: &str, what: &str) -> Result<Value, String> {
    let (text, from) = if Path::new(arg).is_file() {
        let t = std::fs::read_to_string(arg)
            .map_err(|e| format!("cannot read {what} file {arg}: {e}"))?;
        (t, format!("file {arg}"))
    } else {
        (arg.to_string(), "the command line".to_string())
    };
    serde_json::from_str(&text)
        .map_err(|e| format!("the {what} from {from} is not valid JSON: {e}"))
}
