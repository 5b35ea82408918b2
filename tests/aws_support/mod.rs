//! AWS services on 127.0.0.1 for integration tests: moto's server mode (SQS, SNS,
//! DynamoDB, EventBridge, Step Functions, ... on one port) and boto3 to set up and check
//! effects, both installed by scripts/aws/setup.sh.

#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The credentials and region every call in these tests uses (moto accepts any key).
pub const AWS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
];

/// The venv's python (boto3 and moto are in it; `moto_server` is beside it).
pub fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("bash")
            .arg(root.join("scripts/aws/setup.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("bash runs scripts/aws/setup.sh");
        assert!(out.status.success(), "scripts/aws/setup.sh failed");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("AWS_PYTHON="))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("setup.sh printed no AWS_PYTHON=: {text}"))
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral port can be bound")
        .port()
}

/// One moto server in its own process group, killed on drop.
pub struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Starts `moto_server` on a free port of 127.0.0.1 and waits until it answers.
    pub fn start() -> Moto {
        let server = python().with_file_name("moto_server");
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("moto_server starts");
            let mut moto = Moto { child, port };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return moto;
                }
                if moto.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(moto);
        }
        panic!("moto_server did not start");
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs a Python snippet with `c(service)` giving a boto3 client of this server, and
    /// parses the JSON the snippet prints last (`out(value)`).
    pub fn boto(&self, script: &str) -> Value {
        let prelude = format!(
            "import boto3, json\n\
             def c(name):\n    return boto3.client(name, endpoint_url={url:?}, region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             def out(v):\n    print(json.dumps(v, default=str))\n",
            url = self.url()
        );
        let mut child = Command::new(python())
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python runs");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(format!("{prelude}{script}").as_bytes())
            .expect("the script is written");
        let out = child.wait_with_output().expect("python finishes");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "boto3 script failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
        let last = stdout.lines().last().unwrap_or("null");
        serde_json::from_str(last).unwrap_or_else(|e| panic!("boto3 printed {stdout:?}: {e}"))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this struct created; no memory is touched.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Runs `stepstream exec` with the AWS test environment and parses the JSON it prints.
pub fn exec(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_stepstream"))
        .arg("exec")
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .envs(AWS_ENV.iter().copied())
        .output()
        .expect("the stepstream binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "exec printed no JSON object ({e}): stdout {text:?} stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
