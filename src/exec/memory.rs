//! The per-execution memory cap: what an execution holds beyond its current state data
//! (Map outputs being collected, iteration and branch inputs in flight, Parallel branch
//! outputs) is counted, and past the cap the execution fails instead of the process.

use std::cell::Cell;

use serde_json::Value;

use super::limits::mem_size;
use crate::error::{names, WorkflowError};

/// Default cap on the data one execution holds: 64 MiB.
pub const DEFAULT_MAX_EXECUTION_MEMORY_BYTES: usize = 64 * 1024 * 1024;

/// The bytes one execution may hold and holds now. Single-threaded, like an execution.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: Cell<usize>,
}

/// Bytes charged to a [`Budget`]; given back when dropped.
#[derive(Debug)]
pub(crate) struct Held<'b> {
    budget: &'b Budget,
    bytes: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit,
            used: Cell::new(0),
        }
    }

    /// Charges what `v` takes in memory, as `what` (named in the error past the cap).
    pub fn hold_value(&self, v: &Value, what: &str) -> Result<Held<'_>, WorkflowError> {
        let room = self.limit.saturating_sub(self.used.get());
        self.hold(mem_size(v, room), what)
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
}

impl<'b> Held<'b> {
    /// Changes this charge to `bytes`; fails with `States.DataLimitExceeded` past the cap
    /// (the charge is then unchanged).
    pub fn resize(&mut self, bytes: usize, what: &str) -> Result<(), WorkflowError> {
        if bytes > self.bytes {
            let more = self.budget.hold(bytes - self.bytes, what)?;
            self.absorb(more);
        } else {
            let b = self.budget;
            b.used.set(b.used.get().saturating_sub(self.bytes - bytes));
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
        let b = self.budget;
        b.used.set(b.used.get().saturating_sub(self.bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn charges_are_given_back_when_dropped() {
        let b = Budget::new(10_000);
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
        let b = Budget::new(1000);
        let _kept = b.hold(900, "a").unwrap();
        let e = b.hold(200, "the outputs of Map state 'M'").unwrap_err();
        assert_eq!(e.name(), names::DATA_LIMIT_EXCEEDED);
        assert!(e.cause.unwrap_or_default().contains("Map state 'M'"));
        assert_eq!(b.used(), 900);
    }
}
