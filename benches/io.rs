//! Throughput with I/O: every execution's Task calls a local HTTP endpoint that answers
//! after 5 ms, so executions/s depends on how many calls a shard overlaps.
//!
//! `cargo bench --bench io -- [--seconds S] [--warmup S] [--shards N] [--in-flight A,B,C] [--delay-ms D]`
//! (defaults 5, 2, 1, `1,100,5000`, 5). A hyper server on its own thread answers every
//! request after the delay; each shard is a thread with a current-thread runtime, as in
//! `stepstream run`, keeping the given number of executions in flight. Printed per level:
//! executions/s, latency percentiles, and the most requests the server held at once (the
//! proof that calls overlap). The executions go through the real HTTP Task
//! (`arn:aws:states:::http:invoke`), reqwest's pool and the per-resource limit.

use std::cell::RefCell;
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use stepstream::compile::plan::Plan;
use stepstream::exec::{execute, ExecOptions, Status};
use stepstream::tasks::{Tasks, TasksConfig};

// The stepstream binary's allocator: the figures are about the shipped process.
#[global_allocator]
static GLOBAL: stepstream::alloc::Mimalloc = stepstream::alloc::Mimalloc;

/// Requests the server holds now, and the most it held at once.
static HELD: AtomicUsize = AtomicUsize::new(0);
static MOST_HELD: AtomicUsize = AtomicUsize::new(0);

struct Options {
    seconds: f64,
    warmup: f64,
    shards: usize,
    levels: Vec<usize>,
    delay: Duration,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 5.0,
        warmup: 2.0,
        shards: 1,
        levels: vec![1, 100, 5000],
        delay: Duration::from_millis(5),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).map(String::as_str).unwrap_or("");
        let bad = |what: &str| -> ! {
            eprintln!("io: {what} wants a value, got {value:?}");
            std::process::exit(2)
        };
        match args[i].as_str() {
            "--seconds" => o.seconds = value.parse().unwrap_or_else(|_| bad("--seconds")),
            "--warmup" => o.warmup = value.parse().unwrap_or_else(|_| bad("--warmup")),
            "--shards" => o.shards = value.parse().unwrap_or_else(|_| bad("--shards")),
            "--delay-ms" => {
                o.delay = Duration::from_millis(value.parse().unwrap_or_else(|_| bad("--delay-ms")))
            }
            "--in-flight" => {
                o.levels = value
                    .split(',')
                    .map(|n| n.parse().unwrap_or_else(|_| bad("--in-flight")))
                    .collect()
            }
            // cargo bench passes --bench; criterion-style filters are not used here.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// Starts the slow endpoint on its own thread and returns its port.
fn start_server(delay: Duration) -> u16 {
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            // std's listen backlog (128) overflows when 5,000 executions connect at once:
            // dropped SYNs are retried after 1 s, 3 s, ..., which would measure the
            // kernel's backoff instead of the engine.
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket
                .bind("127.0.0.1:0".parse().expect("address"))
                .expect("bind 127.0.0.1");
            let listener = socket.listen(4096).expect("listen");
            let _ = port_tx.send(listener.local_addr().expect("local addr").port());
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |_req: Request<hyper::body::Incoming>| async move {
                            let now = HELD.fetch_add(1, Ordering::Relaxed) + 1;
                            MOST_HELD.fetch_max(now, Ordering::Relaxed);
                            tokio::time::sleep(delay).await;
                            HELD.fetch_sub(1, Ordering::Relaxed);
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from_static(
                                        b"{\"ok\":true,\"stock\":3}",
                                    )))
                                    .expect("a valid response"),
                            )
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    port_rx.recv().expect("the server thread reports its port")
}

/// What one shard measured.
#[derive(Default)]
struct ShardResult {
    done: usize,
    failed: usize,
    first_failure: Option<String>,
    latencies_us: Vec<u32>,
}

/// One shard keeping `in_flight` executions going until `end`; counts those that finish
/// after `measure_from`.
fn run_shard(def: Value, in_flight: usize, measure_from: Instant, end: Instant) -> ShardResult {
    let plan = Plan::load(&def).expect("valid definition");
    let cfg = TasksConfig {
        // All calls share the HTTP resource's limit; the bench is about overlap, not the cap.
        max_concurrency: in_flight.max(1),
        ..TasksConfig::default()
    };
    let tasks = Rc::new(Tasks::new().with_real_tasks(cfg).expect("tasks config"));
    let opts = Rc::new(ExecOptions::default());
    let result = Rc::new(RefCell::new(ShardResult::default()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("shard runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let mut drivers = Vec::with_capacity(in_flight);
        for d in 0..in_flight {
            let (plan, tasks, opts, result) = (
                plan.clone(),
                Rc::clone(&tasks),
                Rc::clone(&opts),
                Rc::clone(&result),
            );
            drivers.push(tokio::task::spawn_local(async move {
                let mut n = 0u64;
                while Instant::now() < end {
                    let t0 = Instant::now();
                    let input = json!({"orderId": format!("ORD-{d}-{n}"), "qty": 1});
                    let out = execute(&plan, input, &tasks, &opts).await;
                    n += 1;
                    let t1 = Instant::now();
                    if t1 < measure_from {
                        continue;
                    }
                    let mut r = result.borrow_mut();
                    if out.status == Status::Succeeded {
                        r.done += 1;
                        r.latencies_us
                            .push(t1.duration_since(t0).as_micros().min(u32::MAX as u128) as u32);
                    } else {
                        r.failed += 1;
                        if r.first_failure.is_none() {
                            r.first_failure = Some(format!("{:?}: {:?}", out.error, out.cause));
                        }
                    }
                }
            }));
        }
        for d in drivers {
            let _ = d.await;
        }
    });
    Rc::try_unwrap(result)
        .ok()
        .expect("drivers are done")
        .into_inner()
}

fn main() {
    let o = options();
    let port = start_server(o.delay);
    let url = format!("http://127.0.0.1:{port}/inventory");
    let def = json!({"StartAt": "CheckStock", "States": {
        "CheckStock": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
            "Parameters": {"ApiEndpoint": url, "Method": "GET",
                           "QueryParameters": {"order.$": "$.orderId"}},
            "ResultSelector": {"stock.$": "$.ResponseBody.stock", "status.$": "$.StatusCode"},
            "ResultPath": "$.check", "Next": "Done"},
        "Done": {"Type": "Succeed"}}});
    println!(
        "io: {} shard(s), endpoint answers after {} ms, {:.0} s measured per level after {:.0} s of warm-up",
        o.shards,
        o.delay.as_millis(),
        o.seconds,
        o.warmup
    );
    for &level in &o.levels {
        MOST_HELD.store(0, Ordering::Relaxed);
        let start = Instant::now();
        let measure_from = start + Duration::from_secs_f64(o.warmup);
        let end = measure_from + Duration::from_secs_f64(o.seconds);
        let cpu0 = process_cpu_seconds();
        let handles: Vec<_> = (0..o.shards)
            .map(|_| {
                let def = def.clone();
                std::thread::spawn(move || run_shard(def, level, measure_from, end))
            })
            .collect();
        let mut all = ShardResult::default();
        for h in handles {
            let r = h.join().expect("shard thread");
            all.done += r.done;
            all.failed += r.failed;
            all.first_failure = all.first_failure.or(r.first_failure);
            all.latencies_us.extend(r.latencies_us);
        }
        let wall = start.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds() - cpu0;
        all.latencies_us.sort_unstable();
        let pct = |p: f64| {
            all.latencies_us
                .get(((all.latencies_us.len().max(1) - 1) as f64 * p) as usize)
                .map_or(0.0, |us| *us as f64 / 1000.0)
        };
        println!(
            "io/in-flight={level:<5} {:>9.0} exec/s  latency p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  \
             server held at most {} requests at once  failed {}  process CPU {:.2} of {:.1} s",
            all.done as f64 / o.seconds,
            pct(0.5),
            pct(0.99),
            pct(1.0),
            MOST_HELD.load(Ordering::Relaxed),
            all.failed,
            cpu,
            wall
        );
        if let Some(f) = all.first_failure {
            println!("io:   first failure: {f}");
        }
    }
}

/// User plus system CPU seconds of this process so far.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line, 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}
