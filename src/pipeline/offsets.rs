//! Which offsets are safe to commit when executions finish out of order.
//!
//! Per partition the tracker keeps the offsets dispatched but not yet acknowledged (their
//! result or dead letter is not yet on the broker). The safe commit position is the lowest
//! such offset, or one past the highest dispatched offset when none is pending: committing
//! there never skips a request whose result could still be lost.

use std::collections::{BTreeSet, HashMap};

/// A topic-partition.
pub type Tp = (String, i32);

#[derive(Debug, Default)]
struct Partition {
    pending: BTreeSet<i64>,
    next: Option<i64>,
    committed: Option<i64>,
}

/// Watermarks of every partition this process owns.
#[derive(Debug, Default)]
pub struct Offsets {
    parts: HashMap<Tp, Partition>,
}

impl Offsets {
    /// Records that the request at `offset` was handed to a shard.
    pub fn dispatched(&mut self, topic: &str, partition: i32, offset: i64) {
        let p = self.part(topic, partition);
        p.pending.insert(offset);
        p.next = Some(p.next.map_or(offset + 1, |n| n.max(offset + 1)));
    }

    /// Records that the output for `offset` is on the broker. Acks for partitions no
    /// longer owned (revoked meanwhile) are ignored.
    pub fn acked(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.parts.get_mut(&(topic.to_string(), partition)) {
            p.pending.remove(&offset);
        }
    }

    /// The position that is safe to commit for one partition, if anything was dispatched.
    pub fn watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        let p = self.parts.get(&(topic.to_string(), partition))?;
        p.pending.first().copied().or(p.next)
    }

    /// Positions that moved since the last call, marked as committed.
    pub fn take_commits(&mut self) -> Vec<(Tp, i64)> {
        let mut out = Vec::new();
        for (tp, p) in &mut self.parts {
            let Some(w) = p.pending.first().copied().or(p.next) else {
                continue;
            };
            if p.committed != Some(w) {
                p.committed = Some(w);
                out.push((tp.clone(), w));
            }
        }
        out
    }

    /// Marks positions as not committed after a failed commit, so the next round retries them.
    pub fn commit_failed(&mut self, moves: &[(Tp, i64)]) {
        for (tp, _) in moves {
            if let Some(p) = self.parts.get_mut(tp) {
                p.committed = None;
            }
        }
    }

    /// Forgets a partition (revoked): later acks for it are ignored.
    pub fn forget(&mut self, topic: &str, partition: i32) {
        self.parts.remove(&(topic.to_string(), partition));
    }

    /// Requests of one partition dispatched and not yet acknowledged.
    pub fn pending_in(&self, topic: &str, partition: i32) -> usize {
        self.parts
            .get(&(topic.to_string(), partition))
            .map_or(0, |p| p.pending.len())
    }

    /// Requests dispatched and not yet acknowledged, over all partitions.
    pub fn pending(&self) -> usize {
        self.parts.values().map(|p| p.pending.len()).sum()
    }

    fn part(&mut self, topic: &str, partition: i32) -> &mut Partition {
        self.parts
            .entry((topic.to_string(), partition))
            .or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_stays_below_the_lowest_unacknowledged_offset() {
        let mut o = Offsets::default();
        for off in 10..15 {
            o.dispatched("t", 0, off);
        }
        o.acked("t", 0, 12);
        o.acked("t", 0, 10);
        assert_eq!(o.watermark("t", 0), Some(11));
        o.acked("t", 0, 11);
        assert_eq!(o.watermark("t", 0), Some(13));
        o.acked("t", 0, 13);
        o.acked("t", 0, 14);
        assert_eq!(o.watermark("t", 0), Some(15));
    }

    #[test]
    fn commits_are_reported_once_per_move() {
        let mut o = Offsets::default();
        o.dispatched("t", 1, 0);
        assert_eq!(o.take_commits(), vec![(("t".to_string(), 1), 0)]);
        assert!(o.take_commits().is_empty());
        o.acked("t", 1, 0);
        assert_eq!(o.take_commits(), vec![(("t".to_string(), 1), 1)]);
    }

    #[test]
    fn acks_after_revocation_are_ignored() {
        let mut o = Offsets::default();
        o.dispatched("t", 2, 5);
        o.forget("t", 2);
        o.acked("t", 2, 5);
        assert_eq!(o.watermark("t", 2), None);
        assert_eq!(o.pending(), 0);
    }
}
