//! A Kafka record as shard work: decode the request, run it, produce its result record.
//!
//! The poller turns each consumed record into a [`KafkaJob`]; the shard runs it like any
//! other [`Work`]. Its slot is released by the producer's delivery callback (see
//! [`super::sink`]), so a request counts as in flight until its result is acknowledged.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{BaseRecord, Producer as _};

use super::request::{self, errors, RequestLimits};
use super::result::{self, Source};
use super::sink::{self, Failure, Pending, Sink, SinkEvent};
use crate::express::Execution;
use crate::shard::{run_one, ShardView, Work};

/// What every Kafka job of a pipeline shares: the producer and where to write.
pub struct Intake {
    /// The pipeline's producer (thread-safe, batches internally; acks via its context).
    pub producer: Sink,
    /// Results topic.
    pub results_topic: String,
    /// Errors (dead letter) topic.
    pub errors_topic: String,
    /// Request size and depth limits.
    pub limits: RequestLimits,
    /// Measurement mode: copy each request to the results topic without running anything
    /// (the consume->produce ceiling the pipeline's throughput is compared against).
    pub passthrough: bool,
}

/// One consumed record, handed to a shard.
pub struct KafkaJob {
    /// What every job shares.
    pub intake: Arc<Intake>,
    /// Where it came from.
    pub source: Source,
    /// The record key (kept on the result).
    pub key: Option<Vec<u8>>,
    /// The record value.
    pub value: Option<Vec<u8>>,
    /// The state machine the topic is bound to, if any.
    pub bound: Option<Arc<str>>,
    /// `stepstream-state-machine` header, raw (checked by the decoder, not the poller).
    pub header_machine: Option<Vec<u8>>,
    /// `stepstream-execution-name` header, raw.
    pub header_name: Option<Vec<u8>>,
    /// Set only on child executions started by `states:startExecution` (boxed: rare).
    pub header_nesting: Option<Box<NestingHeaders>>,
}

/// The headers a parent execution puts on its child's request, raw.
#[derive(Debug, Default)]
pub struct NestingHeaders {
    /// `stepstream-depth`.
    pub depth: Option<Vec<u8>>,
    /// `stepstream-execution-id`.
    pub execution_id: Option<Vec<u8>>,
}

thread_local! {
    /// The shard's record buffer: librdkafka copies what it is given, so the next record
    /// reuses the buffer instead of allocating its own.
    static RECORD: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A record buffer grown past this (by a large output) is dropped, not kept for the next.
const KEPT_RECORD_CAPACITY: usize = 1 << 20;

impl Work for KafkaJob {
    fn run(self: Box<Self>, shard: ShardView) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(self.handle(shard))
    }
}

impl KafkaJob {
    /// Runs the request and hands its record to the producer, whose delivery callback
    /// releases the shard's slot.
    async fn handle(self, shard: ShardView) {
        let ctx = &*self.intake;
        if ctx.passthrough {
            let value = self.value.as_deref().unwrap_or_default();
            deliver(
                ctx,
                &ctx.results_topic,
                self.key.as_deref(),
                value,
                self.source,
                shard.in_flight,
            )
            .await;
            return;
        }
        let decoded = request::decode(
            self.value.as_deref(),
            self.bound.as_deref(),
            self.header_machine.as_deref(),
            self.header_name.as_deref(),
            ctx.limits,
        )
        .and_then(|req| {
            let nesting = match self.header_nesting.as_deref() {
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
                    &self.source,
                    self.value.as_deref(),
                    max_original,
                );
                &ctx.errors_topic
            }
            Ok((req, nesting)) => match shard.machines.get(&*req.state_machine) {
                None => {
                    let mut known: Vec<_> = shard.machines.keys().map(String::as_str).collect();
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
                        &self.source,
                        self.value.as_deref(),
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
                    let execution = Execution {
                        machine: &req.state_machine,
                        name,
                        id: &id,
                    };
                    let (outcome, start, stop) = run_one(
                        &shard,
                        m,
                        &execution,
                        req.input,
                        nesting.depth,
                        shard.ctx.max_duration,
                        crate::exec::WorkflowType::Express,
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
                        &self.source,
                    );
                    &ctx.results_topic
                }
            },
        };
        deliver(
            ctx,
            topic,
            self.key.as_deref(),
            &record,
            self.source,
            shard.in_flight,
        )
        .await;
        if record.capacity() <= KEPT_RECORD_CAPACITY {
            RECORD.set(record);
        }
    }
}

/// Queues a record in the producer. A transient refusal (full queue) is retried with a
/// capped backoff (at shutdown the shard's tasks are dropped, so this never holds it up);
/// a permanent one (too large, ...) hands the record to the sink, which replaces it with a
/// dead letter so its offset moves on; a fatal producer is waited on, never blamed on a record.
async fn deliver(
    ctx: &Intake,
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
