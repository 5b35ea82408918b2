//! Real AWS Lambda functions on 127.0.0.1 for integration tests: Python handlers run by
//! AWS's Runtime Interface Emulator, installed by scripts/lambda/setup.sh.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The emulator binary and the Python that has awslambdaric.
pub struct Toolchain {
    /// `aws-lambda-rie`.
    pub rie: PathBuf,
    /// The venv's python3.
    pub python: PathBuf,
}

/// Installs (once per test binary, quick when already done) and returns the toolchain.
pub fn toolchain() -> &'static Toolchain {
    static TOOLS: OnceLock<Toolchain> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("bash")
            .arg(root.join("scripts/lambda/setup.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("bash runs scripts/lambda/setup.sh");
        assert!(out.status.success(), "scripts/lambda/setup.sh failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(PathBuf::from)
                .unwrap_or_else(|| panic!("setup.sh printed no {k}: {text}"))
        };
        Toolchain {
            rie: get("LAMBDA_RIE="),
            python: get("LAMBDA_PYTHON="),
        }
    })
}

/// A free port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral port can be bound")
        .port()
}

/// One function in its own emulator process group, killed on drop.
pub struct Emulator {
    child: Child,
    port: u16,
}

impl Emulator {
    /// Runs `handler` (`module.function`) from `dir` with extra environment variables.
    pub fn start(dir: &Path, handler: &str, env: &[(&str, &str)]) -> Emulator {
        let tools = toolchain();
        for _ in 0..3 {
            let (port, api_port) = (free_port(), free_port());
            let mut cmd = Command::new(&tools.rie);
            cmd.arg("--runtime-interface-emulator-address")
                .arg(format!("127.0.0.1:{port}"))
                // The emulator's own Runtime API defaults to 127.0.0.1:9001: one per process.
                .arg("--runtime-api-address")
                .arg(format!("127.0.0.1:{api_port}"))
                .arg(&tools.python)
                .args(["-m", "awslambdaric", handler])
                .current_dir(dir)
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own group, so drop ends the emulator and the Python runtime it started.
                .process_group(0);
            let child = cmd.spawn().expect("aws-lambda-rie starts");
            let mut em = Emulator { child, port };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return em;
                }
                if em.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(em);
        }
        panic!("the Lambda emulator for {handler} did not start");
    }

    /// The invocation URL to bind a function to in `[tasks.lambda.functions]`.
    pub fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/2015-03-31/functions/function/invocations",
            self.port
        )
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let pid = self.child.id();
        // The emulator starts the Python runtime in a session of its own, so the group
        // kill below misses it: end the emulator's children by their ids first.
        for child in children_of(pid) {
            // SAFETY: kill(2) on a process id read from /proc; no memory is touched.
            unsafe {
                libc::kill(child as i32, libc::SIGKILL);
            }
        }
        // SAFETY: kill(2) on the process group this struct created; no memory is touched.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The ids of the processes whose parent is `parent` (from /proc/PID/stat).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    // Fields after the command name (which may hold spaces) in parentheses.
                    let rest = s.rsplit_once(')')?.1;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}
