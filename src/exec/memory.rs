//! The memory caps: what an execution holds (its frames' data and variables, Map outputs
//! being collected, Parallel branch inputs and outputs) is counted, and past its own cap,
//! or past the cap shared by all executions of its shard, the execution fails instead of
//! the process.

use std::cell::Cell;
use std::rc::Rc;

use crate::value::Value;

use crate::error::{names, WorkflowError};
use crate::expr::size::mem_size;

/// Default cap on the data one execution holds: 64 MiB.
pub const DEFAULT_MAX_EXECUTION_MEMORY_BYTES: usize = 64 * 1024 * 1024;

/// Default cap on the data all executions of one shard hold together: 1 GiB.
pub const DEFAULT_MAX_SHARD_MEMORY_BYTES: usize = 1024 * 1024 * 1024;

/// The bytes one execution may hold and holds now. Single-threaded, like an execution.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: Cell<usize>,
    /// The shard's budget, charged with everything this one is.
    shard: Option<ShardMemory>,
}

/// The memory all executions of one shard share (one thread, so no atomics): a cap on
/// the sum of what they hold, so many large executions at once cannot exhaust the process.
#[derive(Debug, Clone)]
pub struct ShardMemory(Rc<ShardCell>);

#[derive(Debug)]
struct ShardCell {
    limit: usize,
    used: Cell<usize>,
}

impl ShardMemory {
    /// A shard's budget of `limit` bytes.
    pub fn new(limit: usize) -> ShardMemory {
        ShardMemory(Rc::new(ShardCell {
            limit,
            used: Cell::new(0),
        }))
    }

    /// What the shard's executions hold now.
    pub fn used(&self) -> usize {
        self.0.used.get()
    }
}

/// Bytes charged to a [`Budget`]; given back when dropped.
#[derive(Debug)]
pub(crate) struct Held<'b> {
    budget: &'b Budget,
    bytes: usize,
}

impl Budget {
    pub fn new(limit: usize, shard: Option<ShardMemory>) -> Budget {
        Budget {
            limit,
            used: Cell::new(0),
            shard,
        }
    }

    /// Charges what `v` takes in memory, as `what` (named in the error past the cap).
    pub fn hold_value(&self, v: &Value, what: &str) -> Result<Held<'_>, WorkflowError> {
        self.hold(self.measure(v), what)
    }

    /// What `v` takes in memory, counted no further than the room left (a figure past
    /// the room fails any [`Budget::hold`] of it, as the whole figure would).
    pub fn measure(&self, v: &Value) -> usize {
        mem_size(v, self.limit.saturating_sub(self.used.get()))
    }

    /// `v`'s JSON size, counted no further than the room left: what a frame charges for
    /// its data, remembered on the value once measured.
    pub fn measure_json(&self, v: &Value) -> usize {
        crate::expr::size::json_size(v, self.limit.saturating_sub(self.used.get()))
    }

    /// Charges `bytes`; fails with `States.DataLimitExceeded` past the cap.
    pub fn hold(&self, bytes: usize, what: &str) -> Result<Held<'_>, WorkflowError> {
        let used = self.used.get().saturating_add(bytes);
        if used > self.limit {
            return Err(WorkflowError::new(
                names::DATA_LIMIT_EXCEEDED,
                format!(
                    "The execution would hold more than its memory limit of {} bytes (engine.max_execution_memory_bytes) with {what}.",
                    self.limit
                ),
            ));
        }
        if let Some(ShardMemory(s)) = &self.shard {
            let shard_used = s.used.get().saturating_add(bytes);
            if shard_used > s.limit {
                return Err(WorkflowError::new(
                    names::DATA_LIMIT_EXCEEDED,
                    format!(
                        "The executions of this shard together would hold more than {} bytes (engine.max_shard_memory_bytes) with {what}.",
                        s.limit
                    ),
                ));
            }
            s.used.set(shard_used);
        }
        self.used.set(used);
        Ok(Held {
            budget: self,
            bytes,
        })
    }

    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used.get()
    }

    fn release(&self, bytes: usize) {
        self.used.set(self.used.get().saturating_sub(bytes));
        if let Some(ShardMemory(s)) = &self.shard {
            s.used.set(s.used.get().saturating_sub(bytes));
        }
    }
}

impl<'b> Held<'b> {
    /// Changes this charge to `bytes`; fails with `States.DataLimitExceeded` past the cap
    /// (the charge is then unchanged).
    pub fn resize(&mut self, bytes: usize, what: &str) -> Result<(), WorkflowError> {
        if bytes > self.bytes {
            let more = self.budget.hold(bytes - self.bytes, what)?;
            self.absorb(more);
        } else {
            self.budget.release(self.bytes - bytes);
            self.bytes = bytes;
        }
        Ok(())
    }

    /// Adds `other`'s bytes to this charge (one charge for a growing collection).
    pub fn absorb(&mut self, mut other: Held<'b>) {
        self.bytes += std::mem::take(&mut other.bytes);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn charges_are_given_back_when_dropped() {
        let b = Budget::new(10_000, None);
        let mut all = b.hold(100, "a").unwrap();
        all.absorb(b.hold_value(&json!([1, 2, 3]), "b").unwrap());
        assert!(b.used() > 100);
        all.resize(50, "c").unwrap();
        assert_eq!(b.used(), 50);
        assert!(all.resize(20_000, "c").is_err());
        assert_eq!(b.used(), 50);
        drop(all);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn past_the_cap_is_a_data_limit_error() {
        let b = Budget::new(1000, None);
        let _kept = b.hold(900, "a").unwrap();
        let e = b.hold(200, "the outputs of Map state 'M'").unwrap_err();
        assert_eq!(e.name(), names::DATA_LIMIT_EXCEEDED);
        assert!(e.cause.unwrap_or_default().contains("Map state 'M'"));
        assert_eq!(b.used(), 900);
    }

    #[test]
    fn executions_of_a_shard_share_its_cap() {
        let shard = ShardMemory::new(1000);
        let a = Budget::new(800, Some(shard.clone()));
        let b = Budget::new(800, Some(shard.clone()));
        let held_a = a.hold(600, "x").unwrap();
        // Within b's own cap, but not within what the shard has left.
        let e = b.hold(600, "y").unwrap_err();
        assert!(e
            .cause
            .unwrap_or_default()
            .contains("max_shard_memory_bytes"));
        assert_eq!((b.used(), shard.used()), (0, 600));
        drop(held_a);
        assert_eq!(shard.used(), 0);
        let mut held_b = b.hold(600, "y").unwrap();
        held_b.resize(100, "y").unwrap();
        assert_eq!(shard.used(), 100);
    }
}
