//! Thread-per-core executors.
//!
//! Each shard is one OS thread running a single-threaded tokio runtime. It owns the
//! executions it was handed and their timers (a Wait costs memory, not a thread); the
//! compiled machines are shared read-only. Whoever feeds a shard (the Kafka poller, the
//! API) hands [`Work`] over through a bounded crossbeam queue that the shard drains in
//! batches, and wakes it with a `Notify` only when the queue was empty. The shard knows
//! nothing of where work comes from or where results go: a Kafka record decodes itself
//! and produces its own result record (`pipeline::intake`), a StartSyncExecution answers
//! its caller (`api::executions`).

pub mod router;
pub mod worker;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::machines::Machines;

pub use worker::{run_one, ShardContext};

/// Something a shard runs on its thread.
pub trait Work: Send + 'static {
    /// Starts the work; the future runs as a local task of the shard. It must release its
    /// slot (`shard.in_flight`) once what it started is finished, which may be after the
    /// future ends (a Kafka result is finished when the broker acknowledges it).
    fn run(self: Box<Self>, shard: ShardView) -> Pin<Box<dyn Future<Output = ()>>>;
}

/// One unit of work handed to a shard.
pub type Job = Box<dyn Work>;

/// What work sees of the shard that runs it.
pub struct ShardView {
    /// The deployed machines as this shard last saw them (an `Rc` around the shared
    /// snapshot, so handing it to each job touches no counter another thread writes).
    pub machines: Rc<Arc<Machines>>,
    /// The limits and history writer every shard shares.
    pub ctx: Arc<ShardContext>,
    /// The shard's memory budget, shared by all its executions.
    pub memory: crate::exec::ShardMemory,
    /// The shard's in-flight counter, which the work decrements once finished.
    pub in_flight: Arc<AtomicUsize>,
}

/// Where executions of machines with logging on write their history events.
pub trait HistoryWriter: Send + Sync {
    /// Writes the events of one execution.
    fn write(&self, execution_arn: &str, log: &crate::exec::ExecutionLog);
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
    /// full; the job comes back then.
    pub fn try_submit(&self, job: Job, limit: usize) -> Result<(), Job> {
        if self.in_flight.load(Ordering::Relaxed) >= limit {
            return Err(job);
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let was_empty = self.tx.is_empty();
        if let Err(e) = self.tx.try_send(job) {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return Err(e.into_inner());
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
