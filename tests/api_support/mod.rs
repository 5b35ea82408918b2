//! Helpers for the API tests: raw HTTP calls, the AWS CLI and boto3 from the venv of
//! `scripts/aws/setup.sh`, and the API's address read from a process's log.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The address the process logged for its API (`serving the AWS Step Functions API on http://ADDR`).
pub fn api_addr(stderr: &str) -> Option<String> {
    let marker = "serving the AWS Step Functions API on http://";
    let line = stderr.lines().find(|l| l.contains(marker))?;
    let rest = &line[line.find(marker)? + marker.len()..];
    Some(rest.split_whitespace().next()?.to_string())
}

/// One raw HTTP/1.1 request; the status and the body parsed as JSON (`Value::Null` if not JSON).
pub fn raw(addr: &str, method: &str, target: Option<&str>, body: &[u8]) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("the API accepts connections");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!(
        "{method} / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(t) = target {
        head.push_str(&format!("X-Amz-Target: {t}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body; a broken pipe then is fine.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// `AWSStepFunctions.<op>` with a JSON body.
pub fn call(addr: &str, op: &str, body: &Value) -> (u16, Value) {
    raw(
        addr,
        "POST",
        Some(&format!("AWSStepFunctions.{op}")),
        body.to_string().as_bytes(),
    )
}

/// The venv with the AWS CLI and boto3 (installed by scripts/aws/setup.sh on first use).
pub fn venv_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("bash")
            .arg(root.join("scripts/aws/setup.sh"))
            .output()
            .expect("bash runs scripts/aws/setup.sh");
        let text = String::from_utf8_lossy(&out.stdout);
        let python = text
            .lines()
            .find_map(|l| l.strip_prefix("AWS_PYTHON="))
            .unwrap_or_else(|| {
                panic!(
                    "setup.sh printed no AWS_PYTHON=: {text} {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        PathBuf::from(python)
            .parent()
            .expect("the python is in a bin folder")
            .to_path_buf()
    })
    .clone()
}

/// The environment the AWS CLI and boto3 get: dummy credentials, a region, and no `sync-`
/// host prefix (botocore puts it before StartSyncExecution's host, even for --endpoint-url).
pub fn aws_env(cmd: &mut Command, key_id: &str, secret: &str) {
    cmd.env("AWS_ACCESS_KEY_ID", key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
        .env("AWS_PAGER", "")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
}

/// Runs `aws stepfunctions --endpoint-url http://ADDR ARGS...`: Ok(parsed stdout) or
/// Err(stderr).
pub fn aws_cli(addr: &str, args: &[&str], key: (&str, &str)) -> Result<Value, String> {
    let mut cmd = Command::new(venv_bin().join("aws"));
    cmd.arg("stepfunctions")
        .arg("--endpoint-url")
        .arg(format!("http://{addr}"))
        .arg("--output")
        .arg("json")
        .args(args);
    aws_env(&mut cmd, key.0, key.1);
    let out = cmd.output().expect("the aws CLI runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {text}"))
}

/// Runs a Python script with boto3 in the venv; `ENDPOINT` is set for it. Returns stdout.
pub fn boto3(addr: &str, script: &str) -> Result<String, String> {
    let mut cmd = Command::new(venv_bin().join("python3"));
    cmd.arg("-c")
        .arg(script)
        .env("ENDPOINT", format!("http://{addr}"));
    aws_env(&mut cmd, "test", "test");
    // boto3 gets the prefix turned off in its Config, not from the environment.
    cmd.env_remove("AWS_DISABLE_HOST_PREFIX_INJECTION");
    let out = cmd.output().expect("python runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `stepstream run` on the embedded broker with the API on a free port; killed when dropped.
pub struct Local {
    pub child: Child,
    pub scratch: crate::common::Scratch,
    pub addr: String,
}

impl Local {
    /// Starts it with `extra_config` appended to the config; the folder holds the order workload.
    pub fn start(tag: &str, extra_config: &str) -> Local {
        let scratch = crate::common::Scratch::new(tag);
        let machines = scratch.0.join("machines");
        std::fs::create_dir_all(&machines).unwrap();
        let order = workload("order");
        std::fs::write(
            machines.join("order.asl.json"),
            order["definition"].to_string(),
        )
        .unwrap();
        std::fs::write(
            machines.join("order.tasks.json"),
            order["tasks"].to_string(),
        )
        .unwrap();
        let config = scratch.write(
            "config.toml",
            format!(
                "[kafka]\nbrokers = \"\"\n\n[engine]\nstate_machines_dir = {:?}\nshards = 2\n\n\
                 [metrics]\nlisten = \"off\"\n\n[api]\nlisten = \"127.0.0.1:0\"\n{extra_config}",
                machines.display().to_string()
            ),
        );
        let stderr = std::fs::File::create(scratch.0.join("stderr.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_stepstream"))
            .args(["run", "--config"])
            .arg(&config)
            .current_dir(&scratch.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("stepstream starts");
        let mut local = Local {
            child,
            scratch,
            addr: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = local.stderr();
            if log.contains("stepstream: ready") {
                local.addr = api_addr(&log).expect("the API address is logged");
                return local;
            }
            assert!(
                local.child.try_wait().unwrap().is_none(),
                "stepstream exited: {log}"
            );
            assert!(Instant::now() < deadline, "not ready in 60 s: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.scratch.0.join("stderr.log")).unwrap_or_default()
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A workload of `../shared/bench`; a missing file fails the test naming its path.
pub fn workload(name: &str) -> Value {
    let path = crate::common::root().join(format!("../shared/bench/workloads/{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("benchmark workload not found at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
