//! P5: how much memory executions parked in a Wait state hold, and whether they resume on time.
//!
//! `cargo bench --bench waiting -- [COUNT] [WAIT_SECONDS]` (default 1,000,000 and 20): starts
//! COUNT executions of a Pass -> Wait -> Pass machine on one shard-style runtime (one thread,
//! real clock), reports the process's resident memory once all are waiting, then how late
//! the last one resumed.

use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::json;
use stepstream::compile::plan::Plan;
use stepstream::exec::{execute, ExecOptions, Status};
use stepstream::tasks::Tasks;

// The stepstream binary's allocator: P5 is about the shipped process's memory.
#[global_allocator]
static GLOBAL: stepstream::alloc::Mimalloc = stepstream::alloc::Mimalloc;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let count: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let wait: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let def = json!({"StartAt": "Receive", "States": {
        "Receive": {"Type": "Pass", "Parameters": {"orderId.$": "$.orderId", "step": "received"}, "Next": "Hold"},
        "Hold": {"Type": "Wait", "Seconds": wait, "Next": "Release"},
        "Release": {"Type": "Pass", "Result": "released", "ResultPath": "$.step", "End": true}}});
    let plan = Plan::load(&def).expect("valid definition");
    let tasks = Rc::new(Tasks::new());
    let opts = Rc::new(ExecOptions::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    {
        let f = execute(&plan, json!({}), &tasks, &opts);
        println!(
            "waiting: one execution future is {} bytes before it starts",
            std::mem::size_of_val(&f)
        );
    }
    let before = rss_mib();
    let started = Instant::now();
    let done = Rc::new(std::cell::Cell::new(0usize));
    let last_done = Rc::new(std::cell::Cell::new(Instant::now()));
    // Lateness of each execution past its own due time, in milliseconds.
    let late = Rc::new(std::cell::RefCell::new(Vec::with_capacity(count)));
    // Each execution starts as a shard starts it (`shard::worker::start`): polled once in
    // the loop, and kept as a local task once it waits (here at once, in its Wait). As in
    // a shard, the loop lets whatever is due run between batches, so the first timers do
    // not fire behind a million starts.
    local.block_on(&rt, async {
        // The shard's timers for the Wait (`exec::timer`), driven as a shard drives them.
        stepstream::exec::timer::start();
        for i in 0..count {
            let (plan, tasks, opts, done, last, late) = (
                plan.clone(),
                Rc::clone(&tasks),
                Rc::clone(&opts),
                Rc::clone(&done),
                Rc::clone(&last_done),
                Rc::clone(&late),
            );
            stepstream::shard::worker::start(Box::pin(async move {
                let t0 = Instant::now();
                let out = execute(&plan, json!({"orderId": format!("ORD-{i:08}")}), &tasks, &opts).await;
                assert_eq!(out.status, Status::Succeeded);
                let now = Instant::now();
                let due = t0 + Duration::from_secs(wait);
                late.borrow_mut().push(now.saturating_duration_since(due).as_secs_f64() * 1000.0);
                done.set(done.get() + 1);
                last.set(now);
            }))
            .await;
            if i % 256 == 255 {
                stepstream::shard::worker::let_due_tasks_run().await;
            }
        }
        let parked = started.elapsed();
        let rss = rss_mib();
        println!(
            "waiting: {count} executions parked in {:.1} s; RSS {:.0} MiB ({:.0} MiB before, {:.0} bytes per execution)",
            parked.as_secs_f64(),
            rss,
            before,
            (rss - before) * 1024.0 * 1024.0 / count as f64
        );
        while done.get() < count {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let all_done = last_done.get().duration_since(started);
    let mut late = late.take();
    late.sort_by(f64::total_cmp);
    let pct = |p: f64| late[((late.len() - 1) as f64 * p) as usize];
    println!(
        "waiting: all {count} resumed and finished {:.2} s after the first start (Wait {wait} s); \
         lateness past each one's due time: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        all_done.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}
