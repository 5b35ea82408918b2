//! Thread-per-core executors.
//!
//! Each shard is one OS thread running a single-threaded tokio runtime. It owns the
//! executions it was handed and their timers (a Wait costs memory, not a thread); the
//! compiled machines are shared read-only. The Kafka poller hands work over through a
//! bounded crossbeam queue that the shard drains in batches, and wakes it with a
//! `Notify` only when the queue was empty.

pub mod router;
pub mod worker;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::pipeline::result::Source;

/// One input record handed to a shard.
#[derive(Debug)]
pub struct Job {
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
    /// Set only on a StartSyncExecution call of the API: the result goes back to the caller,
    /// not to Kafka, and the Kafka fields above are unused.
    pub sync: Option<Box<SyncCall>>,
}

/// One StartSyncExecution: an execution whose outcome is answered, not produced.
pub struct SyncCall {
    /// The state machine.
    pub machine: String,
    /// The execution's name.
    pub name: String,
    /// The id its ARN ends with (the caller built the ARN already).
    pub id: uuid::Uuid,
    /// The execution input as JSON text, size-checked by the caller; parsed (and its
    /// nesting checked) here, on the shard, so the caller's thread does not.
    pub input: String,
    /// The deepest nesting the input may have.
    pub max_depth: usize,
    /// Called on the shard with how it ended, so the answer is built on the shard too.
    pub reply: Box<dyn FnOnce(Result<SyncDone, SyncRefused>) + Send>,
}

/// Why a StartSyncExecution did not run.
#[derive(Debug)]
pub enum SyncRefused {
    /// The state machine was deleted before the execution started.
    MachineGone,
    /// The input is not JSON, or nested too deep.
    BadInput(String),
}

impl std::fmt::Debug for SyncCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncCall")
            .field("machine", &self.machine)
            .field("name", &self.name)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// How a StartSyncExecution ended.
#[derive(Debug)]
pub struct SyncDone {
    /// The outcome.
    pub outcome: crate::exec::Outcome,
    /// When it started.
    pub start: chrono::DateTime<chrono::Utc>,
    /// When it stopped.
    pub stop: chrono::DateTime<chrono::Utc>,
    /// The input text, handed back.
    pub input: String,
}

/// A shard's queue as another thread than the poller (the API) uses it.
#[derive(Clone)]
pub struct Submitter {
    tx: crossbeam_channel::Sender<Job>,
    notify: Arc<tokio::sync::Notify>,
    in_flight: Arc<AtomicUsize>,
}

impl Submitter {
    /// Hands a job over unless the shard holds `limit` executions already or its queue is
    /// full; the job comes back then (boxed: a refusal is the rare case).
    pub fn try_submit(&self, job: Job, limit: usize) -> Result<(), Box<Job>> {
        if self.in_flight.load(Ordering::Relaxed) >= limit {
            return Err(Box::new(job));
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let was_empty = self.tx.is_empty();
        if let Err(e) = self.tx.try_send(job) {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return Err(Box::new(e.into_inner()));
        }
        if was_empty {
            self.notify.notify_one();
        }
        Ok(())
    }

    /// Executions this shard holds.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// The headers a parent execution puts on its child's request, raw.
#[derive(Debug, Default)]
pub struct NestingHeaders {
    /// `stepstream-depth`.
    pub depth: Option<Vec<u8>>,
    /// `stepstream-execution-id`.
    pub execution_id: Option<Vec<u8>>,
}

/// The poller's side of a shard.
pub struct ShardHandle {
    /// Hands jobs over.
    pub tx: crossbeam_channel::Sender<Job>,
    /// Wakes the shard when it may be waiting for work.
    pub notify: Arc<tokio::sync::Notify>,
    /// Executions handed over and not yet acknowledged.
    pub in_flight: Arc<AtomicUsize>,
    /// The thread, joined at shutdown.
    pub thread: Option<JoinHandle<()>>,
}

impl ShardHandle {
    /// Hands a job over; blocks only if the queue is full (it is sized far above the in-flight limit).
    pub fn submit(&self, job: Job) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let was_empty = self.tx.is_empty();
        if self.tx.send(job).is_err() {
            // The shard is gone (it only exits at shutdown); the offset stays uncommitted.
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// Executions this shard holds.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A handle for another thread; the queue closes only once every submitter is dropped.
    pub fn submitter(&self) -> Submitter {
        Submitter {
            tx: self.tx.clone(),
            notify: Arc::clone(&self.notify),
            in_flight: Arc::clone(&self.in_flight),
        }
    }
}
