//! The API's connections are served on the shards: a keep-alive connection sees a machine
//! it just created, many connections run at once, and idle connections never hold up a
//! shutdown (the shards own them, so stopping must not wait for clients to hang up).

mod api_support;
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use api_support::Local;
use serde_json::{json, Value};

/// One keep-alive connection: requests go one after the other on the same socket.
struct KeepAlive {
    reader: BufReader<TcpStream>,
    addr: String,
}

impl KeepAlive {
    fn open(addr: &str) -> KeepAlive {
        let s = TcpStream::connect(addr).expect("the API accepts connections");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        KeepAlive {
            reader: BufReader::new(s),
            addr: addr.to_string(),
        }
    }

    fn call(&mut self, op: &str, body: &Value) -> (u16, Value) {
        let body = body.to_string();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.0\r\n\
             X-Amz-Target: AWSStepFunctions.{op}\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let s = self.reader.get_mut();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body.as_bytes()).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {status_line:?}"));
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0u8; length];
        self.reader.read_exact(&mut body).unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

fn arn(name: &str) -> String {
    format!("arn:aws:states:local:000000000000:stateMachine:{name}")
}

#[test]
fn connections_live_on_the_shards_and_never_hold_up_a_shutdown() {
    let mut local = Local::start("api-shards", "");
    let addr = local.addr.clone();

    // Created and run on one connection: the shard serving it reads the deployed
    // machines per execution, not once per connection.
    let mut first = KeepAlive::open(&addr);
    let definition = json!({"StartAt": "P", "States": {"P": {"Type": "Pass",
        "Parameters": {"n.$": "$.n"}, "End": true}}});
    let created = first.call(
        "CreateStateMachine",
        &json!({"name": "echo", "type": "EXPRESS", "roleArn": "arn:aws:iam::1:role/r",
                "definition": definition.to_string()}),
    );
    assert_eq!(created.0, 200, "{created:?}");
    for n in 0..50 {
        let run = first.call(
            "StartSyncExecution",
            &json!({"stateMachineArn": arn("echo"), "input": json!({"n": n}).to_string()}),
        );
        assert_eq!(run.0, 200, "{run:?}");
        assert_eq!(run.1["output"], json!({"n": n}).to_string(), "{run:?}");
    }

    // Connections spread over the shards run at once.
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut c = KeepAlive::open(&addr);
                for n in 0..100 {
                    let input = json!({"n": t * 1000 + n}).to_string();
                    let run = c.call(
                        "StartSyncExecution",
                        &json!({"stateMachineArn": arn("echo"), "input": input}),
                    );
                    assert_eq!(run.0, 200, "{run:?}");
                    assert_eq!(run.1["output"], input, "{run:?}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a client thread");
    }

    // Idle keep-alive connections stay open while the process stops.
    let _idle: Vec<KeepAlive> = (0..4).map(|_| KeepAlive::open(&addr)).collect();
    let stopping = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &local.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let limit = Duration::from_secs(30);
    loop {
        if let Some(status) = local.child.try_wait().unwrap() {
            assert!(status.success(), "{status}: {}", local.stderr());
            break;
        }
        if stopping.elapsed() > limit {
            panic!(
                "idle API connections held the process past {limit:?}: {}",
                local.stderr()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "stopped with 4 idle API connections open in {:?}",
        stopping.elapsed()
    );
}
