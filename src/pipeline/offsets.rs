//! Which offsets are safe to commit when executions finish out of order.
//!
//! Per partition the tracker keeps the offsets dispatched but not yet acknowledged (their
//! result or dead letter is not yet on the broker). The safe commit position is the lowest
//! such offset, or one past the highest dispatched offset when none is pending: committing
//! there never skips a request whose result could still be lost.
//!
//! Each commit also carries which offsets above that position are already acknowledged
//! ([`super::acked`]); a partition assigned with such a commit skips them
//! ([`Offsets::resume`], [`Offsets::skip`]), so a crash repeats only what finished since the
//! last commit.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ops::Range;

use super::acked;

/// A topic-partition.
pub type Tp = (String, i32);

#[derive(Debug, Default)]
struct Partition {
    pending: BTreeSet<i64>,
    next: Option<i64>,
    committed: Option<(i64, String)>,
    /// Offsets a previous owner recorded as acknowledged, ascending; bounded by the
    /// metadata size they were read from.
    skip: VecDeque<Range<i64>>,
}

impl Partition {
    fn watermark(&self) -> Option<i64> {
        self.pending.first().copied().or(self.next)
    }

    /// The commit position and its metadata.
    fn position(&self, max_metadata: usize) -> Option<(i64, String)> {
        let w = self.watermark()?;
        let next = self.next.unwrap_or(w);
        Some((
            w,
            acked::encode(self.pending.iter().copied(), next, max_metadata),
        ))
    }
}

/// A commit to send: the partition, the position and its metadata.
pub type Commit = (Tp, i64, String);

/// Watermarks of every partition this process owns.
#[derive(Debug, Default)]
pub struct Offsets {
    /// By topic, then partition: looked up with the record's `&str` for every record, so no
    /// `String` is made to find a partition.
    parts: HashMap<String, HashMap<i32, Partition>>,
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
        if let Some(p) = self.get_mut(topic, partition) {
            p.pending.remove(&offset);
        }
    }

    /// Takes over a newly assigned partition: `acked` are the offsets a previous owner
    /// recorded as acknowledged (from the committed metadata); they will be skipped.
    pub fn resume(&mut self, topic: &str, partition: i32, acked: Vec<Range<i64>>) {
        let p = self.part(topic, partition);
        *p = Partition::default();
        p.skip = acked.into_iter().filter(|r| r.start < r.end).collect();
    }

    /// Whether the request at `offset` already has an acknowledged output (a previous owner
    /// recorded it). A skipped offset counts as consumed: the watermark moves past it.
    pub fn skip(&mut self, topic: &str, partition: i32, offset: i64) -> bool {
        let Some(p) = self.get_mut(topic, partition) else {
            return false;
        };
        while p.skip.front().is_some_and(|r| r.end <= offset) {
            p.skip.pop_front();
        }
        if !p.skip.front().is_some_and(|r| r.contains(&offset)) {
            return false;
        }
        p.next = Some(p.next.map_or(offset + 1, |n| n.max(offset + 1)));
        true
    }

    /// The position that is safe to commit for one partition, if anything was dispatched.
    pub fn watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.get(topic, partition)?.watermark()
    }

    /// The position to commit for one partition with its metadata (at most `max_metadata`
    /// characters), if anything was dispatched.
    pub fn position(
        &self,
        topic: &str,
        partition: i32,
        max_metadata: usize,
    ) -> Option<(i64, String)> {
        self.get(topic, partition)?.position(max_metadata)
    }

    /// Positions (or their metadata) that changed since the last call, marked as committed.
    pub fn take_commits(&mut self, max_metadata: usize) -> Vec<Commit> {
        let mut out = Vec::new();
        for (topic, parts) in &mut self.parts {
            for (partition, p) in parts {
                let Some(now) = p.position(max_metadata) else {
                    continue;
                };
                if p.committed.as_ref() != Some(&now) {
                    out.push(((topic.clone(), *partition), now.0, now.1.clone()));
                    p.committed = Some(now);
                }
            }
        }
        out
    }

    /// Marks positions as not committed after a failed commit, so the next round retries them.
    pub fn commit_failed(&mut self, moves: &[Commit]) {
        for ((topic, partition), _, _) in moves {
            if let Some(p) = self.get_mut(topic, *partition) {
                p.committed = None;
            }
        }
    }

    /// Forgets a partition (revoked): later acks for it are ignored.
    pub fn forget(&mut self, topic: &str, partition: i32) {
        if let Some(parts) = self.parts.get_mut(topic) {
            parts.remove(&partition);
            if parts.is_empty() {
                self.parts.remove(topic);
            }
        }
    }

    /// Requests of one partition dispatched and not yet acknowledged.
    pub fn pending_in(&self, topic: &str, partition: i32) -> usize {
        self.get(topic, partition).map_or(0, |p| p.pending.len())
    }

    /// Requests dispatched and not yet acknowledged, over all partitions.
    pub fn pending(&self) -> usize {
        self.parts
            .values()
            .flat_map(HashMap::values)
            .map(|p| p.pending.len())
            .sum()
    }

    fn part(&mut self, topic: &str, partition: i32) -> &mut Partition {
        // The topic's name is copied once, when its first partition is added.
        if !self.parts.contains_key(topic) {
            self.parts.insert(topic.to_string(), HashMap::new());
        }
        self.parts
            .get_mut(topic)
            .expect("the topic was just added")
            .entry(partition)
            .or_default()
    }

    fn get(&self, topic: &str, partition: i32) -> Option<&Partition> {
        self.parts.get(topic)?.get(&partition)
    }

    fn get_mut(&mut self, topic: &str, partition: i32) -> Option<&mut Partition> {
        self.parts.get_mut(topic)?.get_mut(&partition)
    }
}

#[cfg(test)]
// Lists holding one offset range are what these tests mean, not a range of numbers.
#[allow(clippy::single_range_in_vec_init)]
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

    fn tp(p: i32) -> Tp {
        ("t".to_string(), p)
    }

    #[test]
    fn commits_are_reported_once_per_move() {
        let mut o = Offsets::default();
        o.dispatched("t", 1, 0);
        assert_eq!(o.take_commits(MAX), vec![(tp(1), 0, String::new())]);
        assert!(o.take_commits(MAX).is_empty());
        o.acked("t", 1, 0);
        assert_eq!(o.take_commits(MAX), vec![(tp(1), 1, String::new())]);
    }

    const MAX: usize = acked::MAX_METADATA;

    #[test]
    fn partitions_of_several_topics_are_kept_apart_and_forgotten_with_their_topic() {
        let mut o = Offsets::default();
        o.dispatched("t", 0, 5);
        o.dispatched("u", 0, 7);
        o.dispatched("t", 1, 9);
        assert_eq!(o.pending(), 3);
        o.acked("u", 0, 5);
        assert_eq!((o.pending_in("t", 0), o.pending_in("u", 0)), (1, 1));
        o.forget("t", 0);
        assert_eq!(o.watermark("t", 0), None);
        assert_eq!(o.watermark("t", 1), Some(9));
        o.forget("t", 1);
        o.forget("u", 0);
        // A revoked topic leaves nothing behind: the map does not grow with old topics.
        assert!(o.parts.is_empty());
    }

    #[test]
    fn a_commit_records_acknowledged_offsets_above_the_watermark() {
        let mut o = Offsets::default();
        for off in 10..20 {
            o.dispatched("t", 0, off);
        }
        for off in [11, 12, 15, 19] {
            o.acked("t", 0, off);
        }
        let commits = o.take_commits(MAX);
        assert_eq!(commits.len(), 1);
        let (_, w, meta) = &commits[0];
        assert_eq!(*w, 10);
        assert_eq!(
            acked::decode(meta.as_bytes(), 10),
            vec![11..13, 15..16, 19..20]
        );
        // The watermark stays, but more is acknowledged: that is worth a commit too.
        o.acked("t", 0, 17);
        let commits = o.take_commits(MAX);
        assert_eq!(commits.len(), 1);
        assert_eq!(
            acked::decode(commits[0].2.as_bytes(), 10),
            vec![11..13, 15..16, 17..18, 19..20]
        );
        assert!(o.take_commits(MAX).is_empty());
    }

    #[test]
    fn a_failed_commit_is_sent_again() {
        let mut o = Offsets::default();
        o.dispatched("t", 0, 3);
        let moves = o.take_commits(MAX);
        o.commit_failed(&moves);
        assert_eq!(o.take_commits(MAX), moves);
    }

    #[test]
    fn a_resumed_partition_skips_what_the_previous_owner_recorded() {
        // The previous owner: 100 pending, 101..103 and 105 acknowledged, 103 and 104 pending.
        let mut before = Offsets::default();
        for off in 100..106 {
            before.dispatched("t", 0, off);
        }
        for off in [101, 102, 105] {
            before.acked("t", 0, off);
        }
        let (w, meta) = before.position("t", 0, MAX).unwrap();
        assert_eq!(w, 100);

        // The next owner starts at the commit and skips exactly the acknowledged offsets.
        let mut o = Offsets::default();
        o.resume("t", 0, acked::decode(meta.as_bytes(), w));
        let mut ran = Vec::new();
        for off in 100..110 {
            if !o.skip("t", 0, off) {
                o.dispatched("t", 0, off);
                ran.push(off);
            }
        }
        assert_eq!(ran, vec![100, 103, 104, 106, 107, 108, 109]);
        // Skipped offsets count as consumed: once the rest is acknowledged the watermark
        // passes them all.
        for off in &ran {
            o.acked("t", 0, *off);
        }
        assert_eq!(o.watermark("t", 0), Some(110));
        assert_eq!(o.pending(), 0);
    }

    #[test]
    fn skipped_offsets_at_the_end_move_the_watermark() {
        let mut o = Offsets::default();
        o.resume("t", 0, vec![5..8]);
        o.dispatched("t", 0, 4);
        o.acked("t", 0, 4);
        assert!(o.skip("t", 0, 5));
        assert!(o.skip("t", 0, 6));
        assert!(o.skip("t", 0, 7));
        assert!(!o.skip("t", 0, 8));
        assert_eq!(o.watermark("t", 0), Some(8));
    }

    #[test]
    fn nothing_is_skipped_without_recorded_offsets_or_after_a_revocation() {
        let mut o = Offsets::default();
        assert!(!o.skip("t", 0, 0));
        o.resume("t", 1, vec![0..10]);
        o.forget("t", 1);
        assert!(!o.skip("t", 1, 3));
        // A fresh assignment replaces what an earlier one knew.
        o.resume("t", 2, vec![0..10]);
        o.dispatched("t", 2, 20);
        o.resume("t", 2, Vec::new());
        assert!(!o.skip("t", 2, 3));
        assert_eq!(o.watermark("t", 2), None);
    }

    #[test]
    fn an_offset_is_never_both_skipped_and_pending_in_a_commit() {
        // Garbage-free but hostile ranges (overlapping, empty, unordered) from a decoder bug
        // must still never hide a dispatched offset from the commit.
        let mut o = Offsets::default();
        o.resume("t", 0, vec![3..3, 2..6, 4..5]);
        let mut pending = Vec::new();
        for off in 0..10 {
            if !o.skip("t", 0, off) {
                o.dispatched("t", 0, off);
                pending.push(off);
            }
        }
        assert_eq!(o.watermark("t", 0), Some(0));
        assert_eq!(o.pending_in("t", 0), pending.len());
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
