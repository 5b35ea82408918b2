//! Helpers shared by the CLI integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

/// A scratch directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// Creates a fresh directory for one test.
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("stepstream-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        Scratch(dir)
    }

    /// Writes a file and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).expect("scratch file is writable");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the `stepstream` binary.
pub fn stepstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stepstream"))
        .args(args)
        .output()
        .expect("the stepstream binary runs")
}

/// Runs `stepstream exec` and parses the one JSON object it prints.
pub fn exec(args: &[&str]) -> Value {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    let out = stepstream(&all);
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "exec printed no JSON object ({e}): stdout {text:?} stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Structural equality where numbers compare by value (`24.0 == 24`).
#[allow(unused_imports)]
pub use stepstream::load::same_json;

/// A Map whose ItemSelector reads `$$.Map.Item.Value`: the hostile definition of issue 10
/// (each item used to copy the whole context, which holds the execution input).
pub fn map_over_item_values() -> Value {
    json!({
        "StartAt": "M",
        "States": {"M": {
            "Type": "Map",
            "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "P",
                "States": {"P": {"Type": "Pass", "End": true}}
            },
            "ResultSelector": {"n.$": "States.ArrayLength($)", "last.$": "$[-1:]"},
            "End": true
        }}
    })
}
