//! Thread-per-core executors.
//!
//! Each shard is one OS thread running a single-threaded tokio runtime. It owns the
//! executions it was handed and their timers (a Wait costs memory, not a thread); the
//! compiled machines are shared read-only. Whoever feeds a shard (the Kafka poller, the
//! API) hands [`Work`] over through a bounded crossbeam queue that the shard drains in
//! batches, and wakes it with a `Notify` after every hand-over. The shard knows
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
        if let Err(e) = self.tx.try_send(job) {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return Err(e.into_inner());
        }
        // Every time, not only into an empty queue: see `ShardHandle::submit`.
        self.notify.notify_one();
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
        if self.tx.send(job).is_err() {
            // The shard is gone (it only exits at shutdown); the offset stays uncommitted.
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        // Every time: notifying only a queue seen empty before the send loses a wake-up when
        // the shard empties it between that look and the send (it then waits for its
        // 100 ms fallback tick; that was the ~100 ms p99 of every Kafka load run). With no
        // shard waiting this only stores a permit: one atomic operation.
        self.notify.notify_one();
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

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    struct Nothing;

    impl Work for Nothing {
        fn run(self: Box<Self>, _: ShardView) -> Pin<Box<dyn Future<Output = ()>>> {
            Box::pin(async {})
        }
    }

    /// The shard may take the queued job and find the queue empty between a feeder's look
    /// at the queue and its send, then wait: a job handed into a queue that looked busy must
    /// still leave a wake-up, or it waits for the shard's fallback tick (this was the
    /// ~100 ms p99 of every Kafka load run).
    #[test]
    fn a_job_handed_into_a_busy_queue_still_wakes_the_shard() {
        let (tx, _rx) = crossbeam_channel::bounded(8);
        let handle = ShardHandle {
            tx,
            notify: Arc::new(tokio::sync::Notify::new()),
            in_flight: Arc::new(AtomicUsize::new(0)),
            thread: None,
        };
        let submitter = handle.submitter();
        handle.submit(Box::new(Nothing));
        // The shard woke for the first job (taking the wake-up) but has not drained it yet.
        assert!(handle.notify.notified().now_or_never().is_some());
        handle.submit(Box::new(Nothing));
        assert!(
            handle.notify.notified().now_or_never().is_some(),
            "a job handed into a non-empty queue left no wake-up"
        );
        assert!(submitter.try_submit(Box::new(Nothing), 8).is_ok());
        assert!(
            handle.notify.notified().now_or_never().is_some(),
            "a job handed over by a submitter into a non-empty queue left no wake-up"
        );
        assert_eq!(handle.in_flight(), 3);
    }
}
