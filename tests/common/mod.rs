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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stepstream"));
    // The binary runs with what the test gives it: a `STEPSTREAM_KAFKA_BROKERS` left in the
    // developer's shell would override a test's unreachable broker, and that test then
    // waited on a running pipeline instead of checking that start-up gives up.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("STEPSTREAM_")) {
            cmd.env_remove(&key);
        }
    }
    cmd.args(args).output().expect("the stepstream binary runs")
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

/// Python's test HTTP server (`tests/fixtures/http_server.py`) on 127.0.0.1, killed on drop.
pub struct HttpServer {
    child: std::process::Child,
    /// The port it listens on.
    pub port: u16,
}

impl HttpServer {
    /// Starts it and waits for the port it prints.
    pub fn start() -> HttpServer {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let script = root().join("tests/fixtures/http_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the test server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the server prints its port");
        let port = line.trim().parse().expect("a port number");
        HttpServer { child, port }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
