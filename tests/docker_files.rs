//! What can be checked of docker/ without a Docker engine (issue 12): hadolint passes on
//! the Dockerfile, `docker-compose config` accepts the compose file, Prometheus scrapes the
//! port stepstream serves, and the binary, started here (outside a container) with the
//! config the image carries and the compose file's environment against the real broker,
//! serves every metric the Grafana dashboard queries.
//!
//! ```sh
//! export KAFKA_RUN_DIR=$PWD/.cache/kafka-run; kafka_env="$(scripts/kafka/start.sh)"; export "$kafka_env"
//! export STEPSTREAM_OPS_PYTHON="$(scripts/ops/venv.sh)"
//! cargo test --test docker_files -- --nocapture
//! ```

mod kafka_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kafka_support::{bootstrap, produce, repo_root, unique, Outgoing};
use serde_json::{json, Value};

/// The venv's python (scripts/ops/venv.sh prints it); its bin/ has hadolint and docker-compose.
fn ops_python() -> PathBuf {
    let p = std::env::var_os("STEPSTREAM_OPS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/opsvenv/bin/python"));
    assert!(
        p.exists(),
        "no ops venv at {}: run scripts/ops/venv.sh (or set STEPSTREAM_OPS_PYTHON)",
        p.display()
    );
    p
}

fn ops_tool(name: &str) -> PathBuf {
    let tool = ops_python()
        .parent()
        .expect("the python is in a bin/ folder")
        .join(name);
    assert!(
        tool.exists(),
        "{} is missing: run scripts/ops/venv.sh",
        tool.display()
    );
    tool
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the tool starts");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A YAML file (or YAML text on stdin) as JSON, through PyYAML in the venv.
fn yaml(text: &str) -> Value {
    let mut child = Command::new(ops_python())
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes())
        .expect("python reads");
    let out = child.wait_with_output().expect("python runs");
    assert!(out.status.success(), "not YAML:\n{text}");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn docker_dir() -> PathBuf {
    repo_root().join("docker")
}

/// The compose file as `docker-compose config` resolves it.
fn compose() -> Value {
    let text = run(Command::new(ops_tool("docker-compose"))
        .arg("-f")
        .arg(docker_dir().join("compose.yaml"))
        .arg("config")
        .current_dir(docker_dir()));
    yaml(&text)
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("{addr:?} has no port"))
}

#[test]
fn hadolint_passes_on_the_dockerfile() {
    run(Command::new(ops_tool("hadolint")).arg(docker_dir().join("Dockerfile")));
}

#[test]
fn the_dockerfile_builds_the_binary_as_a_non_root_user_with_config() {
    let text = std::fs::read_to_string(docker_dir().join("Dockerfile")).expect("a Dockerfile");
    let froms = text.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(
        froms >= 2,
        "a multi-stage build has at least two FROM lines"
    );
    let user = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        !user.starts_with("0") && !user.starts_with("root"),
        "the runtime user is {user}"
    );
    assert!(
        text.contains("COPY config ./config"),
        "the image carries config/"
    );
    assert!(text.contains("/usr/local/bin/stepstream"));
    assert!(
        text.contains("bash scripts/release.sh"),
        "the image ships the build of scripts/release.sh (profile-guided where that pays)"
    );
}

#[test]
fn prometheus_scrapes_the_port_stepstream_serves() {
    let c = compose();
    let env = &c["services"]["stepstream"]["environment"];
    let listen = env["STEPSTREAM_METRICS_LISTEN"]
        .as_str()
        .expect("the compose file sets metrics.listen");
    let served = port_of(listen);
    let prom = yaml(
        &std::fs::read_to_string(docker_dir().join("prometheus.yml")).expect("prometheus.yml"),
    );
    let targets: Vec<&str> = prom["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .flat_map(|s| s["static_configs"].as_array().into_iter().flatten())
        .flat_map(|s| s["targets"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(targets, [format!("stepstream:{served}").as_str()]);
    let dockerfile = std::fs::read_to_string(docker_dir().join("Dockerfile")).expect("Dockerfile");
    assert!(
        dockerfile.contains(&format!("EXPOSE {served}")),
        "the image exposes {served}"
    );
    // The example config serves the same port (on loopback, outside a container).
    let cfg = stepstream::config::Config::load(Some(&repo_root().join("config/stepstream.toml")))
        .expect("the example config loads");
    assert_eq!(port_of(&cfg.metrics.listen), served);
    // Grafana's data source is the Prometheus service.
    let ds = yaml(
        &std::fs::read_to_string(
            docker_dir().join("grafana/provisioning/datasources/prometheus.yaml"),
        )
        .expect("the data source"),
    );
    assert_eq!(ds["datasources"][0]["url"], "http://prometheus:9090");
    assert!(c["services"]["prometheus"].is_object());
    assert!(c["services"]["grafana"].is_object());
    assert!(c["services"]["kafka"].is_object());
}

/// Every `stepstream_*` name the dashboard's queries use.
fn dashboard_metrics() -> BTreeSet<String> {
    let d: Value = serde_json::from_str(
        &std::fs::read_to_string(docker_dir().join("grafana/dashboards/stepstream.json"))
            .expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut names = BTreeSet::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("an expr");
            let mut rest = expr;
            while let Some(i) = rest.find("stepstream_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                names.insert(tail[..end].to_string());
                rest = &tail[end..];
            }
        }
    }
    names
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scrape(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    head.contains(" 200 ").then(|| body.to_string())
}

/// Sample names (histograms' `_bucket`/`_sum`/`_count` included) prometheus_client parses.
fn served_names(text: &str) -> BTreeMap<String, f64> {
    let mut child = Command::new(ops_python())
        .arg(repo_root().join("scripts/ops/prom_parse.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the parser starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes())
        .expect("the parser reads");
    let out = child.wait_with_output().expect("the parser runs");
    assert!(out.status.success(), "prometheus_client rejected:\n{text}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut names = BTreeMap::new();
    for s in v["samples"].as_array().expect("samples") {
        *names
            .entry(s["name"].as_str().expect("a name").to_string())
            .or_insert(0.0) += s["value"].as_f64().unwrap_or(0.0);
    }
    names
}

#[test]
fn the_binary_starts_with_the_compose_config_and_serves_every_dashboard_metric() {
    let kafka = bootstrap();
    let c = compose();
    let service = &c["services"]["stepstream"];
    let command: Vec<&str> = service["command"]
        .as_array()
        .expect("the stepstream service has a command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let env: BTreeMap<String, String> = service["environment"]
        .as_object()
        .expect("an environment")
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map(str::to_string).unwrap_or(v.to_string()),
            )
        })
        .collect();
    // Only what locates things on the compose network is replaced: the broker's address,
    // the listening host (loopback here) and port (a free one: other processes may hold
    // 9464), and the group (so earlier runs' commits do not hide this run's records).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stepstream"));
    cmd.args(&command)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("STEPSTREAM_") || var == "RUST_LOG" {
            cmd.env_remove(var);
        }
    }
    cmd.envs(&env)
        .env("STEPSTREAM_KAFKA_BROKERS", &kafka)
        .env("STEPSTREAM_METRICS_LISTEN", &addr)
        .env("STEPSTREAM_KAFKA_GROUP_ID", unique("docker-check"));
    let stderr_path = std::env::temp_dir().join(format!("{}.stderr", unique("docker-check")));
    cmd.stderr(std::fs::File::create(&stderr_path).expect("a temp file"));
    let mut child = Killed(cmd.spawn().expect("stepstream starts"));
    eprintln!(
        "stepstream {command:?} with {env:?}; stderr in {}",
        stderr_path.display()
    );

    let ready = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .contains("stepstream: ready")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(&stderr_path) {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!(
                "stepstream exited ({status}):\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "stepstream was not ready in 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The compose file asks for JSON logs: every line is one object with a level.
    let logs = std::fs::read_to_string(&stderr_path).expect("the logs");
    for line in logs.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(v["fields"]["message"].is_string(), "{line}");
    }

    let workload: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("benches/workloads/order.json"))
            .expect("the order workload"),
    )
    .expect("JSON");
    let mut records: Vec<Outgoing> = (0..5)
        .map(|i| {
            Outgoing::new(
                format!("order-{i}"),
                json!({"stateMachine": "order", "input": workload["input"]}).to_string(),
            )
        })
        .collect();
    records.push(Outgoing::new("not-json", "{"));
    produce(&kafka, "stepstream.requests", &records);

    let wanted = dashboard_metrics();
    assert!(wanted.len() >= 5, "the dashboard queries {wanted:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let served = scrape(&addr).map(|t| served_names(&t)).unwrap_or_default();
        let missing: Vec<&String> = wanted.iter().filter(|n| !served.contains_key(*n)).collect();
        let executed = served
            .get("stepstream_execution_duration_seconds_count")
            .copied()
            .unwrap_or(0.0);
        if missing.is_empty() && executed >= 5.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 60 s /metrics on {addr} still lacks {missing:?} ({executed} executions timed)\n{}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
