//! Kafka client settings: the results/errors producer and the input consumer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaResult;
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::result::Source;
use crate::config::Config;

/// What travels with a produced record until the broker acknowledges it.
pub struct Pending {
    /// The request the record answers.
    pub source: Source,
    /// The shard's in-flight counter, released on acknowledgement.
    pub in_flight: Arc<AtomicUsize>,
}

/// Acknowledges requests straight from librdkafka's delivery callback, so offsets move
/// as soon as the broker has a result, whatever the shards are busy with.
pub struct AckContext {
    acks: crossbeam_channel::Sender<Source>,
}

impl AckContext {
    /// A context that reports acknowledged sources on `acks`.
    pub fn new(acks: crossbeam_channel::Sender<Source>) -> Self {
        AckContext { acks }
    }
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        match result {
            Ok(_) => {
                // The poller may be gone at shutdown; then nothing is committed anyway.
                let _ = self.acks.send(pending.source);
            }
            // With message.timeout.ms = 0 librdkafka retries transient failures forever, so
            // this is a permanent one. The request stays unacknowledged: its offset is never
            // committed past, and a restart runs it again.
            Err((e, _)) => eprintln!(
                "stepstream: the output for {}/{}@{} could not be written: {e}",
                pending.source.topic, pending.source.partition, pending.source.offset
            ),
        }
        pending.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The pipeline's producer.
pub type Sink = ThreadedProducer<AckContext>;

/// Settings every client gets: brokers plus the user's pass-through properties.
pub fn base_config(cfg: &Config, brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    c.set("client.id", "stepstream");
    for (k, v) in &cfg.kafka.properties {
        c.set(k, v);
    }
    c
}

/// The producer for results and dead letters: idempotent, acks=all, batched, lz4.
pub fn producer(
    cfg: &Config,
    brokers: &str,
    acks: crossbeam_channel::Sender<Source>,
) -> KafkaResult<Sink> {
    let mut c = ClientConfig::new();
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "2")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.kbytes", "262144")
        // Never give up on a result: a broker outage delays it, it does not drop it.
        .set("message.timeout.ms", "0");
    // The user's properties win over our defaults.
    for (k, v) in base_config(cfg, brokers).config_map() {
        c.set(k, v);
    }
    c.create_with_context(AckContext::new(acks))
}

/// The consumer of the input topics: manual commits of safe watermarks only.
pub fn consumer_config(cfg: &Config, brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("group.id", &cfg.kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", &cfg.kafka.auto_offset_reset)
        .set("enable.partition.eof", "false")
        // Keep the prefetch small: memory must stay bounded when shards are paused.
        .set("queued.max.messages.kbytes", "16384")
        // Incremental rebalancing: members keep their partitions (and in-flight work) when
        // another member joins or leaves.
        .set("partition.assignment.strategy", "cooperative-sticky")
        // A crashed member's partitions move on after 10 s instead of librdkafka's 45 s.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "2000");
    for (k, v) in base_config(cfg, brokers).config_map() {
        c.set(k, v);
    }
    for (k, v) in &cfg.kafka.consumer_properties {
        c.set(k, v);
    }
    c
}
