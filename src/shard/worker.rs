//! The shard loop: take work, start it in place and keep what waits as local tasks; and
//! [`run_one`], one execution.

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

/// Jobs a shard starts before it lets its waiting tasks run: a resumed execution waits
/// behind at most this many new ones.
const START_BATCH: usize = 256;

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
        // Wait and Retry delays of this shard's executions (see `exec::timer`).
        exec::timer::start();
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
                        start(job.run(view)).await;
                        taken += 1;
                        if taken % START_BATCH == 0 {
                            let_due_tasks_run().await;
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

/// Lets whatever is due (a Wait's timer, a Lambda's reply) run before a loop on the
/// LocalSet starts more jobs. Due delays on the thread's timers fire first (without waiting
/// for their driver's turn); the first yield lets the runtime poll its timers and sockets,
/// which wakes those tasks; the second lets the LocalSet run them (it polls the loop before
/// its tasks, so after one yield another batch would start first).
pub async fn let_due_tasks_run() {
    exec::timer::fire_due_now();
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
}

/// Polls a job once, here in the shard loop, and spawns it as a local task only if it
/// waits. Most executions never do, and a spawned task costs an allocation, a pass
/// through the LocalSet's queue, and its waker and count. A job that waits was polled
/// with the loop's waker, so it may wake the loop once for nothing; the spawned task
/// registers its own at its first poll, which comes at once.
///
/// A panic in that first poll is caught as tokio catches one in a task: the job is dropped
/// (its slot is never released, as with a task that panics), and the shard goes on.
pub async fn start(mut job: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>) {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::task::Poll;
    let first = std::future::poll_fn(|cx| {
        Poll::Ready(catch_unwind(AssertUnwindSafe(|| job.as_mut().poll(cx))))
    })
    .await;
    match first {
        Ok(Poll::Ready(())) => {}
        Ok(Poll::Pending) => {
            tokio::task::spawn_local(job);
        }
        // Dropping a future that panicked may panic again; tokio catches that too.
        Err(_) => drop(catch_unwind(AssertUnwindSafe(move || drop(job)))),
    }
}

/// Runs one execution of `m` to its end, counted and logged as the config says;
/// `workflow_type` says how it was started (the pipeline's are asynchronous Express ones).
pub async fn run_one(
    shard: &ShardView,
    m: &Machine,
    execution: &Execution<'_>,
    input: crate::value::Value,
    depth: u32,
    max_duration: Duration,
    workflow_type: exec::WorkflowType,
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
        workflow_type,
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

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::time::Instant;

    use super::*;
    use crate::machines::Machines;
    use crate::shard::Work;

    /// When each job started or resumed.
    type Times = Arc<Mutex<Vec<Instant>>>;

    /// Waits `pause` as a Wait state does (on the shard's timers); records when it was due
    /// and when it resumed.
    struct Sleeper {
        pause: Duration,
        due_and_resumed: Times,
    }

    impl Work for Sleeper {
        fn run(self: Box<Self>, shard: ShardView) -> Pin<Box<dyn Future<Output = ()>>> {
            Box::pin(async move {
                let due = Instant::now() + self.pause;
                crate::exec::timer::sleep_until(due.into()).await;
                *self.due_and_resumed.lock().unwrap() = vec![due, Instant::now()];
                shard.in_flight.fetch_sub(1, Ordering::Relaxed);
            })
        }
    }

    /// Takes `cost` of the shard's time when it starts, as starting an execution does.
    struct Starter {
        cost: Duration,
        started: Times,
    }

    impl Work for Starter {
        fn run(self: Box<Self>, shard: ShardView) -> Pin<Box<dyn Future<Output = ()>>> {
            let t0 = Instant::now();
            while t0.elapsed() < self.cost {
                std::hint::spin_loop();
            }
            self.started.lock().unwrap().push(t0);
            shard.in_flight.fetch_sub(1, Ordering::Relaxed);
            Box::pin(async {})
        }
    }

    /// A shard context with no machines deployed, for jobs that need none.
    fn no_machines() -> Arc<ShardContext> {
        Arc::new(ShardContext {
            machines: Arc::new(Deployed::new(Machines::new())),
            max_duration: Duration::from_secs(60),
            max_memory_bytes: 1 << 20,
            max_shard_memory_bytes: 1 << 24,
            history: None,
        })
    }

    /// A flood of new jobs must not hold back an execution that resumes meanwhile: it
    /// waits behind at most about one batch of unstarted jobs, not behind all of them
    /// (which made the first executions of a burst of Waits resume seconds late).
    #[test]
    fn a_resumed_execution_does_not_wait_for_a_flood_of_new_jobs_to_start() {
        let ctx = no_machines();
        let flood = 10_000;
        let shard = spawn(0, flood + 16, ctx).expect("a thread");
        let (sleeper, started): (Times, Times) = Default::default();
        shard.submit(Box::new(Sleeper {
            pause: Duration::from_millis(20),
            due_and_resumed: Arc::clone(&sleeper),
        }));
        // 10,000 starts of 20 µs each keep the shard busy far past the pause.
        for _ in 0..flood {
            shard.submit(Box::new(Starter {
                cost: Duration::from_micros(20),
                started: Arc::clone(&started),
            }));
        }
        while shard.in_flight() > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let (due, resumed) = match sleeper.lock().unwrap()[..] {
            [due, resumed] => (due, resumed),
            _ => panic!("the sleeper never resumed"),
        };
        let started = started.lock().unwrap();
        assert!(
            started.iter().any(|t| *t > resumed),
            "the flood was over before the sleeper was due: the test shows nothing"
        );
        let ahead = started
            .iter()
            .filter(|t| **t > due && **t < resumed)
            .count();
        assert!(
            ahead <= 2 * START_BATCH,
            "{ahead} new jobs started between the sleeper's due time and its resumption"
        );
        drop(shard);
    }

    /// Panics when polled.
    struct Panicker;

    impl Work for Panicker {
        fn run(self: Box<Self>, _: ShardView) -> Pin<Box<dyn Future<Output = ()>>> {
            Box::pin(async { panic!("a job that panics (expected by this test)") })
        }
    }

    /// A job is polled first in the shard loop itself (see `start`): a panic there must
    /// cost that job only, as it did when every job was a task of its own.
    #[test]
    fn a_job_that_panics_costs_only_itself() {
        let ctx = no_machines();
        let shard = spawn(0, 16, ctx).expect("a thread");
        shard.submit(Box::new(Panicker));
        let (sleeper, started): (Times, Times) = Default::default();
        shard.submit(Box::new(Starter {
            cost: Duration::ZERO,
            started: Arc::clone(&started),
        }));
        shard.submit(Box::new(Sleeper {
            pause: Duration::from_millis(5),
            due_and_resumed: Arc::clone(&sleeper),
        }));
        let deadline = Instant::now() + Duration::from_secs(10);
        // The panicking job never releases its slot.
        while shard.in_flight() > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            started.lock().unwrap().len(),
            1,
            "the job after it never ran"
        );
        assert_eq!(
            sleeper.lock().unwrap().len(),
            2,
            "the waiting job never resumed"
        );
        drop(shard);
    }
}
