//! The shard loop: take work, run it as local tasks; and [`run_one`], one execution.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::{HistoryWriter, Job, ShardHandle, ShardView};
use crate::exec::{self, ExecOptions};
use crate::express::Execution;
use crate::machines::{Deployed, Machine};
use crate::metrics::ShardMetrics;
use crate::tasks::nested::at_depth;

/// What every shard shares: read-only machines, limits, where history goes.
pub struct ShardContext {
    /// Compiled state machines by name, as deployed now.
    pub machines: Arc<Deployed>,
    /// Express execution time cap.
    pub max_duration: Duration,
    /// Most data one execution may hold at once (bytes).
    pub max_memory_bytes: usize,
    /// Most data all executions of one shard may hold together (bytes).
    pub max_shard_memory_bytes: usize,
    /// Where executions of machines with logging on write their history events.
    pub history: Option<Arc<dyn HistoryWriter>>,
}

/// Starts shard `id`.
pub fn spawn(
    id: usize,
    queue_capacity: usize,
    ctx: Arc<ShardContext>,
) -> std::io::Result<ShardHandle> {
    let (tx, rx) = crossbeam_channel::bounded::<Job>(queue_capacity);
    let notify = Arc::new(tokio::sync::Notify::new());
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (n, f) = (Arc::clone(&notify), Arc::clone(&in_flight));
    let thread = std::thread::Builder::new()
        .name(format!("shard-{id}"))
        .spawn(move || run(id, rx, n, f, ctx))?;
    Ok(ShardHandle {
        tx,
        notify,
        in_flight,
        thread: Some(thread),
    })
}

fn run(
    id: usize,
    rx: crossbeam_channel::Receiver<Job>,
    notify: Arc<tokio::sync::Notify>,
    in_flight: Arc<AtomicUsize>,
    ctx: Arc<ShardContext>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        // I/O for real task calls (Lambda, HTTP); their clients live on this thread.
        .enable_io()
        .enable_time()
        .build()
        .expect("a current-thread runtime can always be built");
    let local = tokio::task::LocalSet::new();
    // One budget for every execution on this thread: however many are in flight, what
    // they hold together stays under the shard's cap.
    let shard_memory = exec::ShardMemory::new(ctx.max_shard_memory_bytes);
    let shard_metrics = ShardMetrics::register(id);
    // The shard's own handle on the deployed machines: an `Rc` cloned per job, refreshed
    // only when the deployed version moved (see `Deployed`).
    let mut version = ctx.machines.version();
    let mut machines = Rc::new(ctx.machines.snapshot());
    local.block_on(&rt, async move {
        loop {
            let mut taken = 0;
            loop {
                match rx.try_recv() {
                    Ok(job) => {
                        shard_metrics.consumed.increment(1);
                        let now = ctx.machines.version();
                        if now != version {
                            version = now;
                            machines = Rc::new(ctx.machines.snapshot());
                        }
                        let view = ShardView {
                            machines: Rc::clone(&machines),
                            ctx: Arc::clone(&ctx),
                            memory: shard_memory.clone(),
                            in_flight: Arc::clone(&in_flight),
                        };
                        tokio::task::spawn_local(job.run(view));
                        taken += 1;
                        if taken % 256 == 0 {
                            // Let started executions make progress between batches.
                            tokio::task::yield_now().await;
                        }
                    }
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        // Shutdown: the poller already granted the grace period; what is
                        // still running now is abandoned (never acked, so redelivered).
                        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                        while in_flight.load(Ordering::Relaxed) > 0
                            && tokio::time::Instant::now() < deadline
                        {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        return;
                    }
                }
            }
            // A permit stored by notify_one() is never lost, so this cannot miss a job.
            tokio::select! {
                _ = notify.notified() => {}
                // Also look for a closed queue now and then (shutdown needs no extra signal).
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    });
}

/// Runs one execution of `m` to its end, counted and logged as the config says.
pub async fn run_one(
    shard: &ShardView,
    m: &Machine,
    execution: &Execution<'_>,
    input: crate::value::Value,
    depth: u32,
    max_duration: Duration,
) -> (exec::Outcome, chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
    let ctx = &shard.ctx;
    let logged = ctx.history.is_some() && m.log.level != exec::LogLevel::Off;
    // Only the Context object (`$$`) and the history events read the names as
    // Strings; the result record writes them from the parts.
    let arn = (m.plan.uses_context || logged).then(|| execution.arn());
    let opts = ExecOptions {
        max_duration,
        max_payload_bytes: exec::MAX_PAYLOAD_BYTES,
        max_memory_bytes: ctx.max_memory_bytes,
        shard_memory: Some(shard.memory.clone()),
        state_machine_name: match arn {
            Some(_) => execution.machine.to_string(),
            None => String::new(),
        },
        execution_name: arn.as_ref().map(|_| execution.name.to_string()),
        execution_arn: arn.clone(),
        metrics: Some(Arc::clone(&m.exec_metrics)),
        // Events are built only where they can be written.
        log: if ctx.history.is_some() {
            m.log
        } else {
            exec::LogSettings::default()
        },
    };
    let start = Utc::now();
    let running = m.metrics.started();
    // The depth bounds the children this execution may start in turn.
    let (outcome, log) = match &ctx.history {
        Some(logs) if logged => {
            let (outcome, log) =
                at_depth(depth, exec::execute_logged(&m.plan, input, &m.tasks, &opts)).await;
            (outcome, Some((logs, log)))
        }
        _ => (
            at_depth(depth, exec::execute(&m.plan, input, &m.tasks, &opts)).await,
            None,
        ),
    };
    let stop = Utc::now();
    // A wall clock stepped back (NTP) reads as 0, not as a negative duration.
    let seconds = (stop - start).to_std().map_or(0.0, |d| d.as_secs_f64());
    running.finished(outcome.status, seconds);
    if let (Some((logs, log)), Some(arn)) = (log, &arn) {
        logs.write(arn, &log);
    }
    (outcome, start, stop)
}
