//! Which shard a partition's requests go to.
//!
//! Routing by partition (not by key) keeps each partition on one shard, so pausing a full
//! shard means pausing exactly the partitions that feed it.

use std::hash::{Hash, Hasher};

/// The shard for a topic-partition.
pub fn shard_for(topic: &str, partition: i32, shards: usize) -> usize {
    shard_of(topic_hash(topic), partition, shards)
}

/// What [`shard_of`] needs of a topic's name; the poller computes it once per topic.
pub fn topic_hash(topic: &str) -> u64 {
    // A fixed hasher: the mapping must not change between runs or processes.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    topic.hash(&mut h);
    h.finish()
}

/// The shard for a partition of the topic whose [`topic_hash`] is `topic`.
pub fn shard_of(topic: u64, partition: i32, shards: usize) -> usize {
    ((topic as usize).wrapping_add(partition.max(0) as usize)) % shards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_partitions_spread_over_shards() {
        let mut seen = vec![0; 2];
        for p in 0..4 {
            seen[shard_for("orders", p, 2)] += 1;
        }
        assert_eq!(seen, [2, 2]);
    }
}
