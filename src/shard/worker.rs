//! The shard loop: take jobs, run executions as local tasks, write their records, ack.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rdkafka::producer::{BaseRecord, Producer as _};

use super::{Job, ShardHandle};
use crate::exec::{self, ExecOptions};
use crate::machines::{Deployed, Machine, Machines};
use crate::metrics::ShardMetrics;
use crate::pipeline::request::{self, errors, RequestLimits};
use crate::pipeline::result::{self, Source};
use crate::pipeline::sink::{self, Failure, Pending, Sink, SinkEvent};
use crate::tasks::nested::at_depth;

/// What every shard shares: read-only machines, the producer, where to write.
pub struct ShardContext {
    /// Compiled state machines by name, as deployed now.
    pub machines: Arc<Deployed>,
    /// The pipeline's producer (thread-safe, batches internally; acks via its context).
    pub producer: Sink,
    /// Results topic.
    pub results_topic: String,
    /// Errors (dead letter) topic.
    pub errors_topic: String,
    /// Request size and depth limits.
    pub limits: RequestLimits,
    /// Express execution time cap.
    pub max_duration: Duration,
    /// Most data one execution may hold at once (bytes).
    pub max_memory_bytes: usize,
    /// Most data all executions of one shard may hold together (bytes).
    pub max_shard_memory_bytes: usize,
    /// Measurement mode: copy each request to the results topic without running anything
    /// (the consume->produce ceiling the pipeline's throughput is compared against).
    pub passthrough: bool,
    /// Where executions of machines with logging on write their history events.
    pub logs: Option<crate::pipeline::observe::LogsWriter>,
}

/// Starts shard `id`; the producer's context acknowledges what it finishes.
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
                        let (ctx, in_flight) = (Arc::clone(&ctx), Arc::clone(&in_flight));
                        let memory = shard_memory.clone();
                        let machines = Rc::clone(&machines);
                        tokio::task::spawn_local(async move {
                            handle(&ctx, &machines, job, in_flight, memory).await
                        });
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

thread_local! {
    /// The shard's record buffer: librdkafka copies what it is given, so the next record
    /// reuses the buffer instead of allocating its own.
    static RECORD: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// StartSyncExecution's limit (AWS's, for Express workflows).
const SYNC_MAX_DURATION: Duration = Duration::from_secs(300);

/// A record buffer grown past this (by a large output) is dropped, not kept for the next.
const KEPT_RECORD_CAPACITY: usize = 1 << 20;

/// Runs one job and hands its record to the producer, whose delivery callback acks it.
async fn handle(
    ctx: &ShardContext,
    machines: &Machines,
    mut job: Job,
    in_flight: Arc<AtomicUsize>,
    shard_memory: exec::ShardMemory,
) {
    if let Some(call) = job.sync.take() {
        let super::SyncCall {
            machine,
            name,
            id,
            input,
            max_depth,
            reply,
        } = *call;
        let depth = request::max_depth(input.as_bytes());
        let parsed = if depth > max_depth {
            Err(super::SyncRefused::BadInput(format!(
                "it nests {depth} levels deep, over the limit of {max_depth}"
            )))
        } else {
            serde_json::from_str::<crate::value::Value>(&input)
                .map_err(|e| super::SyncRefused::BadInput(e.to_string()))
        };
        let done = match (machines.get(&machine), parsed) {
            (None, _) => Err(super::SyncRefused::MachineGone),
            (_, Err(e)) => Err(e),
            (Some(m), Ok(value)) => {
                let execution = result::Execution {
                    machine: &machine,
                    name: &name,
                    id: &id,
                };
                // AWS ends a synchronous Express execution after 5 minutes, whatever the config.
                let cap = ctx.max_duration.min(SYNC_MAX_DURATION);
                let (outcome, start, stop) =
                    run_one(ctx, m, &execution, value, 0, cap, shard_memory).await;
                Ok(super::SyncDone {
                    outcome,
                    start,
                    stop,
                    input,
                })
            }
        };
        reply(done);
        in_flight.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    if ctx.passthrough {
        let value = job.value.as_deref().unwrap_or_default();
        deliver(
            ctx,
            &ctx.results_topic,
            job.key.as_deref(),
            value,
            job.source,
            in_flight,
        )
        .await;
        return;
    }
    let decoded = request::decode(
        job.value.as_deref(),
        job.bound.as_deref(),
        job.header_machine.as_deref(),
        job.header_name.as_deref(),
        ctx.limits,
    )
    .and_then(|req| {
        let nesting = match job.header_nesting.as_deref() {
            None => request::Nesting::default(),
            Some(h) => request::nesting(h.depth.as_deref(), h.execution_id.as_deref())?,
        };
        Ok((req, nesting))
    });
    let max_original = ctx.producer.context().dead_letters().max_original;
    let mut record: Vec<u8>;
    let topic = match decoded {
        Err(rej) => {
            crate::metrics::dead_lettered(rej.error);
            record = result::dead_letter(
                rej.error,
                &rej.cause,
                &job.source,
                job.value.as_deref(),
                max_original,
            );
            &ctx.errors_topic
        }
        Ok((req, nesting)) => match machines.get(&*req.state_machine) {
            None => {
                let mut known: Vec<_> = machines.keys().map(String::as_str).collect();
                known.sort_unstable();
                // The API may have deployed thousands: the cause names a few.
                const NAMED: usize = 20;
                let more = known.len().saturating_sub(NAMED);
                known.truncate(NAMED);
                let cause = format!(
                    "no state machine named {:?} is deployed (known: {}{})",
                    req.state_machine,
                    known.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                );
                crate::metrics::dead_lettered(errors::UNKNOWN_STATE_MACHINE);
                record = result::dead_letter(
                    errors::UNKNOWN_STATE_MACHINE,
                    &cause,
                    &job.source,
                    job.value.as_deref(),
                    max_original,
                );
                &ctx.errors_topic
            }
            Some(m) => {
                let mut generated = [0u8; uuid::fmt::Hyphenated::LENGTH];
                let name: &str = match &req.name {
                    Some(name) => name.as_ref(),
                    None => result::new_uuid().hyphenated().encode_lower(&mut generated),
                };
                // A child's id was chosen by its parent, which returned the ARN already.
                let id = nesting.execution_id.unwrap_or_else(result::new_uuid);
                let execution = result::Execution {
                    machine: &req.state_machine,
                    name,
                    id: &id,
                };
                let (outcome, start, stop) = run_one(
                    ctx,
                    m,
                    &execution,
                    req.input,
                    nesting.depth,
                    ctx.max_duration,
                    shard_memory,
                )
                .await;
                // Taken, not borrowed, and only once the execution is over: another
                // execution of this shard may need a buffer while this one waits in
                // `deliver`, and then grows one of its own.
                record = RECORD.take();
                result::write_result_record(
                    &mut record,
                    &execution,
                    &outcome,
                    start,
                    stop,
                    &job.source,
                );
                &ctx.results_topic
            }
        },
    };
    deliver(
        ctx,
        topic,
        job.key.as_deref(),
        &record,
        job.source,
        in_flight,
    )
    .await;
    if record.capacity() <= KEPT_RECORD_CAPACITY {
        RECORD.set(record);
    }
}

/// Runs one execution of `m` to its end, counted and logged as the config says.
async fn run_one(
    ctx: &ShardContext,
    m: &Machine,
    execution: &result::Execution<'_>,
    input: crate::value::Value,
    depth: u32,
    max_duration: Duration,
    shard_memory: exec::ShardMemory,
) -> (exec::Outcome, chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
    let logged = ctx.logs.is_some() && m.log.level != exec::LogLevel::Off;
    // Only the Context object (`$$`) and the history events read the names as
    // Strings; the result record writes them from the parts.
    let arn = (m.plan.uses_context || logged).then(|| execution.arn());
    let opts = ExecOptions {
        max_duration,
        max_payload_bytes: exec::MAX_PAYLOAD_BYTES,
        max_memory_bytes: ctx.max_memory_bytes,
        shard_memory: Some(shard_memory),
        state_machine_name: match arn {
            Some(_) => execution.machine.to_string(),
            None => String::new(),
        },
        execution_name: arn.as_ref().map(|_| execution.name.to_string()),
        execution_arn: arn.clone(),
        metrics: Some(Arc::clone(&m.exec_metrics)),
        // Events are built only where they can be written.
        log: if ctx.logs.is_some() {
            m.log
        } else {
            exec::LogSettings::default()
        },
    };
    let start = Utc::now();
    let running = m.metrics.started();
    // The depth bounds the children this execution may start in turn.
    let (outcome, log) = match &ctx.logs {
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

/// Queues a record in the producer. A transient refusal (full queue) is retried with a
/// capped backoff (at shutdown the shard's tasks are dropped, so this never holds it up);
/// a permanent one (too large, ...) hands the record to the sink, which replaces it with a
/// dead letter so its offset moves on; a fatal producer is waited on, never blamed on a record.
async fn deliver(
    ctx: &ShardContext,
    topic: &str,
    key: Option<&[u8]>,
    payload: &[u8],
    source: Source,
    in_flight: Arc<AtomicUsize>,
) {
    let mut pending = Pending::new(source, in_flight);
    let mut backoff = Duration::from_millis(1);
    loop {
        let mut record =
            BaseRecord::<[u8], [u8], Box<Pending>>::with_opaque_to(topic, pending).payload(payload);
        if let Some(k) = key {
            record = record.key(k);
        }
        match ctx.producer.send(record) {
            Ok(()) => return,
            Err((e, record)) => {
                pending = record.delivery_opaque;
                match sink::classify(&e) {
                    Failure::Permanent => {
                        ctx.producer
                            .context()
                            .reject(topic, key, payload, &e, pending);
                        return;
                    }
                    // Held, not replaced: the shard fills up, its partitions pause, and a
                    // restart (which the log asks for) redoes what was not committed.
                    Failure::Fatal | Failure::Purged => {
                        SinkEvent::ProducerFatal { error: &e }.emit()
                    }
                    Failure::Transient => SinkEvent::ProduceRetried {
                        topic,
                        error: &e,
                        backoff,
                    }
                    .emit(),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}
