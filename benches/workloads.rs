//! Whole executions of every workload in `benches/workloads/` (DESIGN.md P1–P3: the five
//! shared ones and their JSONata forms), or in the folder `STEPSTREAM_WORKLOADS_DIR` names.
//!
//! One iteration is what P1 calls an in-process execution: parse the request bytes,
//! run the execution with the workload's built-in task handlers, serialize the output.
//! Each workload's output is checked against its `expected_output` once before timing,
//! so a figure is never reported for an engine that gives the wrong answer.

use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use serde_json::Value;
use tokio::runtime::Runtime;

use stepstream::compile::plan::Plan;
use stepstream::exec::{execute, ExecOptions, Status};
use stepstream::load::same_json;
use stepstream::tasks::Tasks;

// The same allocator as the stepstream binary, so the figures are the shipped engine's.
#[global_allocator]
static GLOBAL: stepstream::alloc::Mimalloc = stepstream::alloc::Mimalloc;

/// The folder whose `*.json` workload files `executions/*` and `floor/*` run: every file
/// in it, so a workload added there (or kept elsewhere and named by
/// `STEPSTREAM_WORKLOADS_DIR`, as `compare.sh` and the Node peer's harness also read) is
/// measured the same way as the five of DESIGN.md P1-P3 and their JSONata forms.
fn workloads_dir() -> PathBuf {
    std::env::var_os("STEPSTREAM_WORKLOADS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/workloads"))
}

/// The names of every workload file in [`workloads_dir`], sorted.
fn workload_names() -> Vec<String> {
    let dir = workloads_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list workloads in {}: {e}", dir.display()));
    let mut names: Vec<String> = entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "json").then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no workload files in {}", dir.display());
    names
}

/// Executions each thread runs per iteration of the sharded benchmark: enough that
/// spawning and joining the threads is noise next to the work.
const SHARD_BATCH: u64 = 256;

/// A workload ready to run: everything derived from its file once, outside the timing.
struct Workload {
    name: String,
    state_transitions: u64,
    plan: Arc<Plan>,
    tasks: Arc<Tasks>,
    /// The request as it would arrive: the workload input as JSON bytes.
    request: Vec<u8>,
    expected: Value,
}

impl Workload {
    /// Loads a workload by name: from [`workloads_dir`], or from `benches/workloads/` for
    /// the fixed ones P2 and the scaling bench use when that folder lacks them.
    fn load(name: &str) -> Workload {
        let file = format!("{name}.json");
        let mut path = workloads_dir().join(&file);
        if !path.exists() {
            path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("benches/workloads")
                .join(&file);
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let w: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let plan = Plan::load(&w["definition"])
            .unwrap_or_else(|p| panic!("{name}: the definition does not compile: {p:?}"));
        let mut tasks = Tasks::new();
        tasks
            .register_specs(&w["tasks"])
            .unwrap_or_else(|e| panic!("{name}: bad task specs: {e}"));
        Workload {
            name: name.to_string(),
            state_transitions: w["state_transitions"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: state_transitions must be a number")),
            plan,
            tasks: Arc::new(tasks),
            request: serde_json::to_vec(&w["input"]).expect("a Value always serializes"),
            expected: w["expected_output"].clone(),
        }
    }
}

/// Retry delays use tokio's clock; a paused clock auto-advances when the runtime is idle,
/// so retry-catch measures the engine, not its `IntervalSeconds`.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime can always be built")
}

/// One P1 execution: request bytes in, output bytes out.
fn run_once(rt: &Runtime, w: &Workload, request: &[u8], opts: &ExecOptions) -> Vec<u8> {
    let input = stepstream::value::from_slice(request).expect("the workload input is JSON");
    let outcome = drive(rt, execute(&w.plan, input, &w.tasks, opts));
    match &outcome.output {
        Some(v) => stepstream::value::to_vec(v),
        None => b"null".to_vec(),
    }
}

/// Runs an execution as a shard starts one (`shard::worker::start`): polled once in place,
/// and handed to the runtime only if it waits on something other than a delay. A
/// `block_on` per execution, which no shard does, cost order ~5 % and article-choice ~15 %
/// of their time in tokio's entering and leaving (perf).
///
/// Wait and Retry delays go to this thread's timers (`exec::timer`, as in a shard), fired
/// here in order as soon as the execution waits on them: a virtual clock, as the peers
/// skip their delays (the Node peer's overrides, fakecloud's paused clock).
fn drive<T>(rt: &Runtime, fut: impl std::future::Future<Output = T>) -> T {
    let mut fut = std::pin::pin!(fut);
    let first = {
        // Timers and the clock need the runtime's handle, as in the shard.
        let _in = rt.enter();
        stepstream::exec::timer::poll_virtual(fut.as_mut())
    };
    match first {
        std::task::Poll::Ready(v) => v,
        // Not a delay: the noop waker is never woken, so block_on polls again at once.
        std::task::Poll::Pending => rt.block_on(fut),
    }
}

/// Panics unless one execution succeeds with the expected output.
fn verify(rt: &Runtime, w: &Workload, opts: &ExecOptions) {
    let input = stepstream::value::from_slice(&w.request).expect("the workload input is JSON");
    let outcome = drive(rt, execute(&w.plan, input, &w.tasks, opts));
    assert!(
        outcome.status == Status::Succeeded,
        "workload {}: expected SUCCEEDED, got {} (error {:?}, cause {:?})",
        w.name,
        outcome.status.as_str(),
        outcome.error,
        outcome.cause
    );
    let bytes = run_once(rt, w, &w.request, opts);
    let got: Value = serde_json::from_slice(&bytes).expect("the engine wrote JSON");
    assert!(
        same_json(&got, &w.expected),
        "workload {}: wrong output, not benchmarking it\n  got:      {got}\n  expected: {}",
        w.name,
        w.expected
    );
}

fn options(w: &Workload) -> ExecOptions {
    ExecOptions {
        state_machine_name: w.name.clone(),
        ..ExecOptions::default()
    }
}

/// P1 and P3: executions per second for each workload, one at a time on one core.
fn executions(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("executions");
    group.throughput(Throughput::Elements(1));
    for name in workload_names() {
        let w = Workload::load(&name);
        let opts = options(&w);
        verify(&rt, &w, &opts);
        group.bench_function(name, |b| {
            if cpu_clock() {
                b.iter_custom(|iters| {
                    let start = thread_cpu_time();
                    for _ in 0..iters {
                        std::hint::black_box(run_once(&rt, &w, &w.request, &opts));
                    }
                    thread_cpu_time() - start
                })
            } else {
                b.iter(|| run_once(&rt, &w, &w.request, &opts))
            }
        });
    }
    group.finish();
}

/// What no execution of a workload can go below in this design: reading its request into
/// a tree and writing that tree back (an unchanged tree is written as one copy of its
/// text), with no state run. Set against P3's budget (a hundredth of the fastest peer's
/// time per execution) in `benches/compare.sh`, it shows how much of that budget is left
/// for running the states.
fn floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("floor");
    group.throughput(Throughput::Elements(1));
    for name in workload_names() {
        let w = Workload::load(&name);
        group.bench_function(&name, |b| {
            b.iter(|| {
                let v = stepstream::value::from_slice(&w.request).expect("the input is JSON");
                stepstream::value::to_vec(&v)
            })
        });
    }
    group.finish();
}

/// With `STEPSTREAM_BENCH_CPU=1`, `executions/*` time this thread's CPU time instead of
/// the wall clock, so that on a shared machine time spent descheduled is not counted
/// (same-run comparisons of two builds then move far less with the machine's load).
fn cpu_clock() -> bool {
    std::env::var_os("STEPSTREAM_BENCH_CPU").is_some_and(|v| v == "1")
}

/// CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux has.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is always readable on Linux");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// P2: the same choice-heavy execution, counted in state transitions.
fn transitions(c: &mut Criterion) {
    let rt = runtime();
    let w = Workload::load("choice-heavy");
    let opts = options(&w);
    verify(&rt, &w, &opts);
    let mut group = c.benchmark_group("transitions");
    group.throughput(Throughput::Elements(w.state_transitions));
    group.bench_function("choice-heavy", |b| {
        b.iter(|| run_once(&rt, &w, &w.request, &opts))
    });
    group.finish();
}

/// How executions/s grows with cores: the order workload on 1 and on 2 threads at once,
/// each with its own runtime, request bytes and options, sharing only the plan and the
/// task handlers, as shards do.
fn sharded(c: &mut Criterion) {
    let w = Workload::load("order");
    verify(&runtime(), &w, &options(&w));
    let mut group = c.benchmark_group("sharded-order");
    for threads in [1u64, 2] {
        group.throughput(Throughput::Elements(threads * SHARD_BATCH));
        group.bench_with_input(
            BenchmarkId::new("threads", threads),
            &threads,
            |b, &threads| b.iter_custom(|iters| run_sharded(&w, threads, iters * SHARD_BATCH)),
        );
    }
    group.finish();
}

/// Runs `per_thread` executions on each of `threads` threads; the time from the common
/// start to the last thread's end, leaving thread and runtime setup and teardown out.
fn run_sharded(w: &Workload, threads: u64, per_thread: u64) -> Duration {
    let start_line = Barrier::new(threads as usize + 1);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (plan, tasks) = (Arc::clone(&w.plan), Arc::clone(&w.tasks));
                let start_line = &start_line;
                s.spawn(move || {
                    let rt = runtime();
                    let mine = Workload {
                        name: w.name.clone(),
                        state_transitions: w.state_transitions,
                        plan,
                        tasks,
                        request: w.request.clone(),
                        expected: Value::Null,
                    };
                    let opts = options(&mine);
                    start_line.wait();
                    for _ in 0..per_thread {
                        std::hint::black_box(run_once(&rt, &mine, &mine.request, &opts));
                    }
                    Instant::now()
                })
            })
            .collect();
        start_line.wait();
        let start = Instant::now();
        let end = workers
            .into_iter()
            .map(|h| h.join().expect("a benchmark thread panicked"))
            .max()
            .expect("at least one thread");
        end.saturating_duration_since(start)
    })
}

/// The order workload with the metrics a shard records per execution (a record consumed,
/// an execution started, its end and duration) into an installed Prometheus recorder:
/// compare with `executions/order` from the same run for the metrics' cost.
fn executions_with_metrics(c: &mut Criterion) {
    // An order execution's usual duration, recorded as a shard would record it.
    const EXECUTION_SECONDS: f64 = 10e-6;
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("no other recorder in this bench");
    // As in the process (the exporter's upkeep, every 5 s): histogram samples are drained
    // into buckets, so they do not pile up for the whole measurement.
    {
        let handle = handle.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(5));
            handle.run_upkeep();
        });
    }
    let rt = runtime();
    let w = Workload::load("order");
    // Transitions, retries and task calls counted and timed by the interpreter, with handles
    // registered once, as a loaded state machine's are.
    let exec_metrics = Arc::new(stepstream::metrics::ExecMetrics::register(&w.name, &w.plan));
    let opts = ExecOptions {
        metrics: Some(Arc::clone(&exec_metrics)),
        ..options(&w)
    };
    verify(&rt, &w, &opts);
    // Registered once, as a shard and a loaded state machine do.
    let machine = stepstream::metrics::MachineMetrics::register(&w.name);
    let shard = stepstream::metrics::ShardMetrics::register(0);
    let mut group = c.benchmark_group("executions-metrics");
    group.throughput(Throughput::Elements(1));
    group.bench_function("order", |b| {
        b.iter(|| {
            shard.consumed.increment(1);
            let running = machine.started();
            let input: stepstream::value::Value =
                serde_json::from_slice(&w.request).expect("the workload input is JSON");
            let outcome = drive(&rt, execute(&w.plan, input, &w.tasks, &opts));
            // A shard passes the duration from the two wall-clock reads it makes for the
            // result record anyway (not part of this bench, with or without metrics): the
            // metrics add the sample, not the reads, so a fixed duration is recorded here.
            running.finished(outcome.status, EXECUTION_SECONDS);
            serde_json::to_vec(&outcome.output).expect("a Value always serializes")
        })
    });
    group.finish();

    // The metric operations of one order execution alone (a record consumed, an execution
    // started and ended, four transitions, four task calls counted and timed as answered on
    // their first poll): a figure the shared machine's noise hardly moves, to set against
    // executions/order.
    let resources: Vec<String> = w
        .plan
        .nodes
        .iter()
        .filter_map(|n| match &n.state.kind {
            stepstream::asl::model::Kind::Task { resource, .. } => Some(resource.clone()),
            _ => None,
        })
        .collect();
    let kinds: Vec<&stepstream::asl::model::Kind> =
        w.plan.nodes.iter().map(|n| &n.state.kind).collect();
    let mut group = c.benchmark_group("metrics-ops");
    group.throughput(Throughput::Elements(1));
    group.bench_function("order", |b| {
        b.iter(|| {
            shard.consumed.increment(1);
            let running = machine.started();
            for k in &kinds {
                exec_metrics.transition(std::hint::black_box(k));
            }
            for r in &resources {
                if let Some(t) = exec_metrics.task(std::hint::black_box(r)) {
                    t.scheduled();
                    t.answered_at_once(true);
                }
            }
            running.finished(Status::Succeeded, EXECUTION_SECONDS);
        })
    });
    group.finish();
    let text = handle.render();
    assert!(
        text.contains("stepstream_executions_total")
            && text.contains("stepstream_task_calls_total"),
        "the recorder saw no execution or no task call"
    );
}

criterion_group!(
    benches,
    executions,
    floor,
    transitions,
    sharded,
    executions_with_metrics
);
/// `STEPSTREAM_BENCH_LOOP=<workload>:<n>` runs that many executions of one workload and
/// nothing else, for `benches/instructions.sh` (instructions counted under callgrind do
/// not move with the shared VM's speed, as timings do by ±15-30 %) and
/// `benches/alternate.sh` (two builds timed in alternation).
fn run_loop(spec: &str) {
    let (name, n) = spec
        .split_once(':')
        .and_then(|(w, n)| Some((w, n.parse::<u64>().ok()?)))
        .unwrap_or_else(|| {
            panic!("STEPSTREAM_BENCH_LOOP must be <workload>:<count>, got {spec:?}")
        });
    let w = Workload::load(name);
    let rt = runtime();
    let opts = options(&w);
    verify(&rt, &w, &opts);
    let mut bytes = 0usize;
    let start = std::time::Instant::now();
    for _ in 0..n {
        bytes += run_once(&rt, &w, std::hint::black_box(&w.request), &opts).len();
    }
    // Wall time, for `benches/alternate.sh` (meaningless under callgrind).
    let ns = start.elapsed().as_nanos() / u128::from(n.max(1));
    println!("{name}: {n} executions, {bytes} output bytes, {ns} ns per execution");
}

/// `STEPSTREAM_BENCH_TRAIN=<folder>:<n>` runs each AWS-recorded conformance case in a
/// folder (`definition`, `input`, optional `mocks`, as `tests/conformance.rs` reads them)
/// `n` times in a row: the training of a profile-guided build (`benches/pgo.sh`), with
/// executions back to back over every ASL feature the corpus covers and none of the
/// workloads P3 measures. A case whose definition does not compile (AWS recorded it
/// refused) is skipped; outcomes are not checked here, `tests/conformance.rs` does that.
fn run_training(spec: &str) {
    let (dir, n) = spec
        .rsplit_once(':')
        .and_then(|(d, n)| Some((d, n.parse::<u64>().ok()?)))
        .unwrap_or_else(|| panic!("STEPSTREAM_BENCH_TRAIN must be <folder>:<count>, got {spec:?}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list cases in {dir}: {e}"))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let opts = ExecOptions::default();
    let (mut cases, mut runs) = (0u64, 0u64);
    for path in &files {
        let Ok(case) = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
        else {
            continue;
        };
        let Ok(plan) = Plan::load(&case["definition"]) else {
            continue;
        };
        let mut tasks = Tasks::new();
        if let Some(m) = case.get("mocks").filter(|m| !m.is_null()) {
            match stepstream::tasks::mock::Mocks::from_json(m) {
                Ok(m) => tasks = tasks.with_mocks(m),
                Err(_) => continue,
            }
        }
        let request = serde_json::to_vec(&case["input"]).expect("a Value always serializes");
        // What `stepstream exec --repeat` runs: parse, execute, serialize, n times.
        let repeated = stepstream::exec::execute_blocking_repeated(
            &plan,
            &request,
            &tasks,
            &opts,
            stepstream::exec::ClockMode::Virtual,
            n,
        );
        if repeated.is_ok() {
            runs += n;
        }
        cases += 1;
    }
    println!("trained on {cases} cases of {dir}, {runs} executions");
}

fn main() {
    if let Ok(spec) = std::env::var("STEPSTREAM_BENCH_LOOP") {
        return run_loop(&spec);
    }
    if let Ok(spec) = std::env::var("STEPSTREAM_BENCH_TRAIN") {
        return run_training(&spec);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
