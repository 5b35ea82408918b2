//! The embedded default broker: `stepstream run` with no brokers configured starts an
//! in-process Kafka-protocol broker so the README demo works with nothing installed.
//!
//! It is librdkafka's mock cluster, because it is already linked into the binary through
//! `rdkafka`, starts in milliseconds, adds no dependency and is fast (~300k produced records/s
//! here). The alternatives cost far more for a demo: an embeddable Rust broker (`tansu-broker`)
//! pulls in ~385 crates and ten minutes of build, a real Kafka needs a JVM and ~15 s to start.
//!
//! Its limit decides where it may be used. Each partition keeps at most 5 MiB of stored
//! (compressed) record batches or 100,000 batches, and beyond that the mock **silently drops
//! the oldest records** (`rd_kafka_mock_partition_init` in librdkafka; nothing in its API
//! changes it). A consumer that falls further behind than that loses records without an
//! error: 200,000 records of 1 KB produced to 4 partitions before reading left 19,501 to read
//! (~4,900 per partition). So it is only safe while the backlog per partition stays far below
//! 5 MiB: the demo feeder (`super::demo`) keeps at most `max_outstanding` requests without a
//! result, which bounds the backlog of both the requests and the results topic (paced at
//! 2,000 outstanding, all 200,000 arrived, at ~120k records/s); [`safe_backlog`] says how many
//! records that may be. Nothing is persisted either: everything is gone when the broker is
//! dropped. Never point real traffic at it.
//!
//! Two more things differ from a real broker and matter to clients:
//! - A fetch that finds no data is answered only after the full `fetch.wait.max.ms` (a real
//!   broker answers as soon as data arrives), so consumers of it must set that low (see
//!   [`CONSUMER_PROPERTIES`]). With librdkafka's default of 500 ms a paced feeder crawled at
//!   ~4k records/s instead of ~100k/s. Lower costs idle CPU: 5 ms adds ~4 ms per hop at low
//!   load for ~2 % of a core per idle consumer; 1 ms adds ~1 ms for ~6 %.
//! - A consumer group's first join waits `group.initial.rebalance.delay.ms` (3 s by default in
//!   the mock, as in Kafka); the embedded broker sets it to [`INITIAL_REBALANCE_DELAY_MS`] so
//!   a demo starts at once.
//!
//! Threads: rdkafka's `MockCluster` holds a raw pointer and so is neither `Send` nor `Sync`.
//! [`EmbeddedBroker`] instead owns the librdkafka client handle that created the cluster
//! (`test.mock.num.brokers`); that handle is `Send + Sync`, and the cluster serves its
//! listeners on its own librdkafka thread. So the main thread keeps the broker alive (or moves
//! it wherever it likes) while any thread connects to [`EmbeddedBroker::bootstrap_servers`].

use std::fmt;

use rdkafka::client::{Client, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaType;

/// Properties consumers of the embedded broker should set (see the module doc for why).
pub const CONSUMER_PROPERTIES: &[(&str, &str)] = &[("fetch.wait.max.ms", "5")];

/// Delay before a consumer group's first assignment; short so the demo starts at once, not
/// zero so consumers created together still land in one generation.
pub const INITIAL_REBALANCE_DELAY_MS: i32 = 100;

/// Stored bytes the mock keeps per partition before it drops the oldest records.
pub const RETAINED_BYTES_PER_PARTITION: usize = 5 * 1024 * 1024;

/// Record batches the mock keeps per partition (a batch holds one record or more).
pub const RETAINED_BATCHES_PER_PARTITION: usize = 100_000;

/// How many records of about `record_bytes` each may wait unread in a topic of `partitions`
/// partitions without the mock dropping any: a quarter of what it keeps, because keys do
/// not spread evenly over partitions and compression may gain nothing.
pub fn safe_backlog(record_bytes: usize, partitions: i32) -> usize {
    let partitions = usize::try_from(partitions).unwrap_or(0).max(1);
    let per_partition =
        (RETAINED_BYTES_PER_PARTITION / record_bytes.max(1)).min(RETAINED_BATCHES_PER_PARTITION);
    (per_partition * partitions / 4).max(1)
}

/// Kafka's longest legal topic name.
const MAX_TOPIC_NAME_LEN: usize = 249;

/// Why the embedded broker could not start. Each message includes librdkafka's error, which
/// is therefore not also exposed as `source()` (an error chain would print it twice).
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// librdkafka refused to create the mock cluster.
    #[error(
        "could not start the embedded Kafka broker (librdkafka mock cluster): {0}; \
         configure `brokers` to use a real Kafka cluster instead"
    )]
    Start(KafkaError),
    /// A topic name Kafka would reject.
    #[error("cannot create topic {topic:?} on the embedded broker: {reason}")]
    InvalidTopic {
        /// The name as given.
        topic: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The mock cluster refused to create a topic (for example, one listed twice).
    #[error(
        "the embedded broker could not create topic {topic:?} with {partitions} partitions: \
         {error} (is it listed twice?)"
    )]
    CreateTopic {
        /// The topic.
        topic: String,
        /// Partitions asked for.
        partitions: i32,
        /// librdkafka's error.
        error: KafkaError,
    },
}

/// An in-process Kafka-protocol broker for demos (librdkafka's mock cluster).
pub struct EmbeddedBroker {
    // Owns the mock cluster: destroying this handle destroys the cluster and its listeners.
    _handle: Client<DefaultClientContext>,
    bootstrap: String,
}

impl EmbeddedBroker {
    /// Starts it and creates the topics (name, partitions).
    pub fn start(topics: &[(&str, i32)]) -> Result<EmbeddedBroker, EmbeddedError> {
        for &(topic, partitions) in topics {
            check_topic(topic, partitions)?;
        }
        let mut config = ClientConfig::new();
        // One broker: the mock serves all of its brokers on one thread, so more add nothing.
        config.set("test.mock.num.brokers", "1");
        let native = config
            .create_native_config()
            .map_err(EmbeddedError::Start)?;
        let handle = Client::new(
            &config,
            native,
            RDKafkaType::RD_KAFKA_PRODUCER,
            DefaultClientContext,
        )
        .map_err(EmbeddedError::Start)?;
        let cluster = handle.mock_cluster().ok_or_else(|| {
            EmbeddedError::Start(KafkaError::ClientCreation(
                "this librdkafka build has no mock cluster".to_string(),
            ))
        })?;
        set_initial_rebalance_delay(&handle, INITIAL_REBALANCE_DELAY_MS);
        for &(topic, partitions) in topics {
            cluster
                .create_topic(topic, partitions, 1)
                .map_err(|error| EmbeddedError::CreateTopic {
                    topic: topic.to_string(),
                    partitions,
                    error,
                })?;
        }
        let bootstrap = cluster.bootstrap_servers();
        drop(cluster);
        Ok(EmbeddedBroker {
            _handle: handle,
            bootstrap,
        })
    }

    /// `host:port,...` for clients.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }
}

impl fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

/// Checks what the mock would accept silently but a real Kafka would not, so a config that
/// works on the demo broker also works on a real one.
fn check_topic(topic: &str, partitions: i32) -> Result<(), EmbeddedError> {
    let invalid = |reason| {
        Err(EmbeddedError::InvalidTopic {
            topic: topic.to_string(),
            reason,
        })
    };
    if topic.is_empty() {
        return invalid("the name is empty");
    }
    if topic == "." || topic == ".." {
        return invalid("\".\" and \"..\" are not allowed as topic names");
    }
    if topic.len() > MAX_TOPIC_NAME_LEN {
        return invalid("the name is longer than 249 characters");
    }
    if !topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    if partitions < 1 {
        return invalid("a topic needs at least one partition");
    }
    Ok(())
}

/// Shortens the first group join, which `rdkafka`'s safe API cannot configure.
fn set_initial_rebalance_delay(handle: &Client<DefaultClientContext>, delay_ms: i32) {
    // SAFETY: `handle` is a live librdkafka handle for the whole call. The cluster pointer it
    // returns is owned by that handle (it was created by `test.mock.num.brokers`) and so lives
    // as long as it; the setter only stores an int under the cluster's own mutex.
    unsafe {
        let cluster = rdkafka::bindings::rd_kafka_handle_mock_cluster(handle.native_ptr());
        if !cluster.is_null() {
            rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, delay_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_broker_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<EmbeddedBroker>();
    }

    #[test]
    fn start_creates_topics_and_reports_a_loopback_address() {
        let broker = EmbeddedBroker::start(&[("requests", 4), ("results", 2)])
            .expect("the mock cluster starts");
        assert!(broker.bootstrap_servers().starts_with("127.0.0.1:"));
    }

    #[test]
    fn start_rejects_names_a_real_kafka_would_reject() {
        for (topic, partitions) in [("", 1), ("a b", 1), ("..", 1), ("ok", 0)] {
            let result = EmbeddedBroker::start(&[(topic, partitions)]);
            assert!(
                matches!(result, Err(EmbeddedError::InvalidTopic { .. })),
                "{topic:?} {partitions}: {result:?}"
            );
        }
    }

    #[test]
    fn safe_backlog_keeps_a_margin_below_what_the_mock_retains() {
        // 1 KiB records on 4 partitions: 5,120 fit per partition, a quarter of 4 x 5,120.
        assert_eq!(safe_backlog(1024, 4), 5_120);
        // Tiny records are bound by the batch count instead.
        assert_eq!(safe_backlog(1, 1), 25_000);
        // A record larger than a partition keeps still allows one at a time.
        assert_eq!(safe_backlog(64 << 20, 1), 1);
        assert_eq!(safe_backlog(0, 0), 25_000);
    }

    #[test]
    fn start_reports_a_topic_listed_twice() {
        let result = EmbeddedBroker::start(&[("twice", 1), ("twice", 1)]);
        assert!(
            matches!(result, Err(EmbeddedError::CreateTopic { .. })),
            "{result:?}"
        );
    }
}
