//! StartSyncExecution requests/s over keep-alive connections, against the ceiling of this
//! machine's HTTP path: the same server (`stepstream::api::server`, one accepting thread,
//! connections served on as many shards, same limits, same body reading) answering a
//! fixed body. Both in the same run, alternated; with more than one shard a one-shard
//! fixed-body server runs too, and the answer is also set against the higher of the two
//! fixed-body figures (the machine's HTTP ceiling, whichever server shape gives it).
//!
//! `cargo bench --bench api -- [--seconds S] [--connections C] [--shards N] [--rounds R] [--sync-only]`
//! (defaults 5, 32, 0 = one per core as `stepstream run`, 2). The API runs inside `pipeline::run_with_service` on an embedded broker, with
//! the order workload of `../shared/bench` created through CreateStateMachine (its Task
//! resources bound to the workload's built-in specs); every answer is checked for status 200
//! and, once per connection, for the expected output.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::LocalBoxFuture;
use hyper::body::Bytes;
use serde_json::{json, Value};
use stepstream::api::server::{self, Answer, Call, Handler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// The stepstream binary's allocator: the figures are about the shipped process.
#[global_allocator]
static GLOBAL: stepstream::alloc::Mimalloc = stepstream::alloc::Mimalloc;

struct Options {
    seconds: f64,
    connections: usize,
    shards: usize,
    rounds: usize,
    /// Skip the fixed-body runs (for profiling the API alone).
    sync_only: bool,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 5.0,
        connections: 32,
        shards: 0,
        rounds: 2,
        sync_only: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).map(String::as_str).unwrap_or("");
        let bad = |what: &str| -> ! {
            eprintln!("api: {what} wants a value, got {value:?}");
            std::process::exit(2)
        };
        match args[i].as_str() {
            "--seconds" => o.seconds = value.parse().unwrap_or_else(|_| bad("--seconds")),
            "--connections" => {
                o.connections = value.parse().unwrap_or_else(|_| bad("--connections"))
            }
            "--shards" => o.shards = value.parse().unwrap_or_else(|_| bad("--shards")),
            "--rounds" => o.rounds = value.parse().unwrap_or_else(|_| bad("--rounds")),
            "--sync-only" => {
                o.sync_only = true;
                i += 1;
                continue;
            }
            // cargo bench passes --bench; ignore what is not ours.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// The fixed-body handler: what the HTTP path costs without Step Functions behind it.
struct Fixed(Bytes);

impl Handler for Fixed {
    fn call(self: Rc<Self>, _call: Call) -> LocalBoxFuture<'static, Answer> {
        Box::pin(async move {
            Answer {
                status: 200,
                body: self.0.clone(),
            }
        })
    }
    fn too_large(&self, _limit: usize) -> Answer {
        Answer {
            status: 413,
            body: Bytes::new(),
        }
    }
    fn bad_body(&self, _why: String) -> Answer {
        Answer {
            status: 400,
            body: Bytes::new(),
        }
    }
}

/// A connection of the fixed-body server, served on a shard like the API's.
struct FixedConnection {
    accepted: server::Accepted,
    body: Bytes,
}

impl stepstream::shard::Work for FixedConnection {
    fn run(
        self: Box<Self>,
        shard: stepstream::shard::ShardView,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
        shard.in_flight.fetch_sub(1, Ordering::Relaxed);
        let FixedConnection { accepted, body } = *self;
        Box::pin(server::connection(
            accepted,
            Rc::new(Fixed(body)),
            server::Limits::default(),
        ))
    }
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn request(addr: &str, op: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.0\r\n\
         X-Amz-Target: AWSStepFunctions.{op}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads one response; returns its status and body.
async fn read_response(
    s: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<(u16, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap_or("").to_string();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let total = end + 4 + len;
            while buf.len() < total {
                let mut chunk = [0u8; 16384];
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..total].to_vec();
            buf.drain(..total);
            return Ok((status, body));
        }
        let mut chunk = [0u8; 16384];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Requests/s of `connections` keep-alive clients sending `req` for `seconds`.
fn drive(addr: &str, req: Vec<u8>, connections: usize, seconds: f64, check: Option<Value>) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let req = Rc::new(req);
    let check = Rc::new(check);
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let warmup = Duration::from_secs_f64((seconds / 4.0).min(1.0));
        let start = Instant::now() + warmup;
        let stop = start + Duration::from_secs_f64(seconds);
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (addr, req, check) = (addr.to_string(), Rc::clone(&req), Rc::clone(&check));
            tasks.push(tokio::task::spawn_local(async move {
                let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                let mut buf = Vec::with_capacity(16384);
                let mut counted = 0u64;
                let mut checked = false;
                loop {
                    let now = Instant::now();
                    if now >= stop {
                        return counted;
                    }
                    s.write_all(&req).await.unwrap();
                    let (status, body) = read_response(&mut s, &mut buf).await.unwrap();
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                    if let (false, Some(expected)) = (checked, check.as_ref()) {
                        let v: Value = serde_json::from_slice(&body).unwrap();
                        assert_eq!(v["status"], "SUCCEEDED", "{v}");
                        let out: Value =
                            serde_json::from_str(v["output"].as_str().unwrap()).unwrap();
                        assert!(stepstream::load::same_json(&out, expected), "{out}");
                        checked = true;
                    }
                    if now >= start {
                        counted += 1;
                    }
                }
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total as f64 / seconds
    })
}

/// A fixed-body server on `shard_count` shards: its address, what stops it, its thread.
fn start_fixed(
    shard_count: usize,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let addr = free_addr();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = {
        let addr = addr.clone();
        // The same shape as the API: one thread accepts, `shard_count` shards serve the
        // connections, each with the fixed-body handler.
        let shard_ctx = Arc::new(stepstream::shard::ShardContext {
            machines: Arc::new(stepstream::machines::Deployed::new(Default::default())),
            max_duration: Duration::from_secs(300),
            max_memory_bytes: 1 << 30,
            max_shard_memory_bytes: 1 << 30,
            history: None,
        });
        let shards: Vec<_> = (0..shard_count)
            .map(|i| stepstream::shard::worker::spawn(i, 4096, Arc::clone(&shard_ctx)).unwrap())
            .collect();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            let submitters: Vec<_> = shards.iter().map(|s| s.submitter()).collect();
            local.block_on(&rt, async move {
                let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
                let next = std::cell::Cell::new(0usize);
                let place = |accepted| {
                    let i = next.get() % submitters.len();
                    next.set(i + 1);
                    let job: stepstream::shard::Job = Box::new(FixedConnection {
                        accepted,
                        body: Bytes::from_static(b"{\"ok\":true}"),
                    });
                    submitters[i]
                        .try_submit(job, usize::MAX)
                        .map_err(|_| unreachable!("the queue is far larger than the connections"))
                };
                server::serve(listener, place, server::Limits::default(), async {
                    let _ = stop_rx.await;
                })
                .await;
            });
            drop(shards);
        })
    };
    (addr, stop_tx, thread)
}

fn main() {
    let o = options();
    let workload: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/bench/workloads/order.json"),
        )
        .expect("../shared/bench/workloads/order.json"),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("stepstream-api-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("order.tasks.json"), workload["tasks"].to_string()).unwrap();

    let api_addr = free_addr();
    let cfg_text = format!(
        "[kafka]\nbrokers = \"\"\npartitions = 1\n\n[engine]\nstate_machines_dir = {:?}\nshards = {}\n\n\
         [metrics]\nlisten = \"off\"\ntopic = \"\"\n\n[api]\nlisten = {api_addr:?}\n",
        dir.display().to_string(),
        o.shards
    );
    let mut cfg: stepstream::config::Config = toml::from_str(&cfg_text).unwrap();
    let topics = [
        ("stepstream.requests", 1),
        ("stepstream.results", 1),
        ("stepstream.errors", 1),
        ("stepstream.state-machines", 1),
    ];
    let broker = stepstream::pipeline::embedded::EmbeddedBroker::start(&topics).unwrap();
    cfg.kafka.use_embedded_consumer_settings();
    let brokers = broker.bootstrap_servers().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let pipeline = {
        let (cfg, stop) = (cfg.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            stepstream::pipeline::run_with_service(
                &cfg,
                &brokers,
                &stop,
                stepstream::pipeline::Mode::Execute,
                Arc::new(AtomicBool::new(false)),
                Some(stepstream::api::service()),
            )
        })
    };
    // Wait for the API, then create the machine through it.
    let create = json!({"name": "order", "type": "EXPRESS", "roleArn": "arn:aws:iam::1:role/r",
                        "definition": workload["definition"].to_string()})
    .to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(&api_addr) {
            use std::io::{Read, Write};
            let mut req = request(&api_addr, "CreateStateMachine", &create);
            req.splice(
                req.windows(4).position(|w| w == b"\r\n\r\n").unwrap()..,
                b"\r\nConnection: close\r\n\r\n".iter().copied(),
            );
            req.extend_from_slice(create.as_bytes());
            s.write_all(&req).unwrap();
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            assert!(text.starts_with("HTTP/1.1 200"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "the API did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (fixed_addr, fixed_stop_tx, fixed) = start_fixed(cfg.shard_count());
    // With more shards than one, the clients' thread shares the cores with more server
    // threads; a one-shard fixed-body server is then often faster, and the highest of the
    // two is this machine's HTTP ceiling (the issue's strict reading).
    let one = (cfg.shard_count() > 1 && !o.sync_only).then(|| start_fixed(1));
    std::thread::sleep(Duration::from_millis(200));

    let sync_body = json!({
        "stateMachineArn": "arn:aws:states:local:000000000000:stateMachine:order",
        "input": workload["input"].to_string(),
    })
    .to_string();
    let sync_req = request(&api_addr, "StartSyncExecution", &sync_body);
    // The same request to the fixed server: same bytes read, fixed answer.
    let fixed_req = request(&fixed_addr, "StartSyncExecution", &sync_body);
    let (mut fixed_rates, mut one_rates, mut sync_rates) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..o.rounds {
        let f = if o.sync_only {
            f64::NAN
        } else {
            drive(
                &fixed_addr,
                fixed_req.clone(),
                o.connections,
                o.seconds,
                None,
            )
        };
        let one_rate = one.as_ref().map(|(addr, ..)| {
            let req = request(addr, "StartSyncExecution", &sync_body);
            drive(addr, req, o.connections, o.seconds, None)
        });
        let s = drive(
            &api_addr,
            sync_req.clone(),
            o.connections,
            o.seconds,
            Some(workload["expected_output"].clone()),
        );
        let ceiling = one_rate.map_or(f, |r| r.max(f));
        println!(
            "round {}: fixed body {f:.0} req/s{}, StartSyncExecution {s:.0} req/s, ratio {:.2} \
             (to the best fixed body {:.2})",
            round + 1,
            one_rate.map_or(String::new(), |r| format!(" (one shard: {r:.0})")),
            s / f,
            s / ceiling
        );
        fixed_rates.push(f);
        one_rates.extend(one_rate);
        sync_rates.push(s);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (f, s) = (mean(&fixed_rates), mean(&sync_rates));
    let best = if one_rates.is_empty() {
        f
    } else {
        f.max(mean(&one_rates))
    };
    println!(
        "api: {} connections, {} shard(s), {} s x {} rounds: fixed body {f:.0} req/s{}, \
         StartSyncExecution (order workflow) {s:.0} req/s, ratio {:.2}, to the best fixed body \
         (this machine's HTTP ceiling) {:.2} (target >= 0.5)",
        o.connections,
        cfg.shard_count(),
        o.seconds,
        o.rounds,
        if one_rates.is_empty() {
            String::new()
        } else {
            format!(" (one shard: {:.0})", mean(&one_rates))
        },
        s / f,
        s / best
    );
    if let Some((_, stop_tx, thread)) = one {
        let _ = stop_tx.send(());
        let _ = thread.join();
    }
    let _ = fixed_stop_tx.send(());
    let _ = fixed.join();
    stop.store(true, Ordering::Relaxed);
    let _ = pipeline.join();
    let _ = std::fs::remove_dir_all(&dir);
}
