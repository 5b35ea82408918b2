//! The feeder's Kafka clients: a consumer of the results topic (plain assignment, never
//! committed) and a producer of requests, plus topic and offset lookups.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, DeliveryResult, ProducerContext};
use rdkafka::ClientContext;

use super::{kafka_error, key_index, FeedError, FeedSpec, CONNECT_TIMEOUT, TOPIC_POLL};

pub(super) fn results_consumer(spec: &FeedSpec) -> Result<BaseConsumer, FeedError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &spec.bootstrap)
        // Never committed; unique so it cannot disturb any real group.
        .set(
            "group.id",
            format!("stepstream-demo-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        // Only reached when the broker dropped records we had not read yet (the embedded
        // broker does that beyond 5 MiB per partition): keep the rest rather than skip to now.
        .set("auto.offset.reset", "earliest")
        // Low so an idle fetch cannot delay a result: the embedded broker answers an empty
        // fetch only after the whole wait (a real broker answers as soon as data arrives).
        .set("fetch.wait.max.ms", "5");
    for (key, value) in &spec.client_properties {
        config.set(key, value);
    }
    config.create().map_err(FeedError::Client)
}

pub(super) fn requests_producer(spec: &FeedSpec) -> Result<BaseProducer<Deliveries>, FeedError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &spec.bootstrap)
        .set("acks", "all")
        // Short: the linger is part of every measured latency.
        .set("linger.ms", "1")
        .set("compression.type", "lz4");
    for (key, value) in &spec.client_properties {
        config.set(key, value);
    }
    config
        .create_with_context(Deliveries::default())
        .map_err(FeedError::Client)
}

/// The end offset of every partition of `topic`, indexed by partition; `None` when `stop`
/// was raised while waiting for the topic.
pub(super) fn end_offsets(
    consumer: &BaseConsumer,
    spec: &FeedSpec,
    topic: &str,
    stop: &AtomicBool,
) -> Result<Option<Vec<i64>>, FeedError> {
    let Some(partitions) = partitions_of(consumer, spec, topic, stop)? else {
        return Ok(None);
    };
    // Kafka numbers partitions 0..n, so the offsets are indexed by partition.
    let mut ends = vec![0; partitions.len()];
    for id in partitions {
        let slot = usize::try_from(id)
            .ok()
            .and_then(|i| ends.get_mut(i))
            .ok_or_else(|| {
                kafka_error(
                    format!("reading the partitions of {topic}"),
                    KafkaError::MetadataFetch(RDKafkaErrorCode::InvalidPartitions),
                )
            })?;
        *slot = consumer
            .fetch_watermarks(topic, id, spec.timeout.min(CONNECT_TIMEOUT))
            .map(|(_, high)| high)
            .map_err(|error| {
                kafka_error(
                    format!("reading the end offset of {topic} partition {id}"),
                    error,
                )
            })?;
    }
    Ok(Some(ends))
}

/// The partitions of `topic`, waiting up to `spec.timeout` for it to appear, because the
/// pipeline may still be creating its topics when the feeder starts; `None` on `stop`.
fn partitions_of(
    consumer: &BaseConsumer,
    spec: &FeedSpec,
    topic: &str,
    stop: &AtomicBool,
) -> Result<Option<Vec<i32>>, FeedError> {
    let started = Instant::now();
    let mut said_waiting = false;
    loop {
        let metadata = consumer
            .fetch_metadata(Some(topic), spec.timeout.min(CONNECT_TIMEOUT))
            .map_err(|error| FeedError::Unreachable {
                bootstrap: spec.bootstrap.clone(),
                error,
            })?;
        let described = metadata.topics().iter().find(|t| t.name() == topic);
        if let Some(described) = described {
            if described.error().is_none() && !described.partitions().is_empty() {
                return Ok(Some(
                    described.partitions().iter().map(|p| p.id()).collect(),
                ));
            }
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if started.elapsed() >= spec.timeout {
            return Err(FeedError::MissingTopic {
                topic: topic.to_string(),
                bootstrap: spec.bootstrap.clone(),
                waited: spec.timeout,
            });
        }
        if !said_waiting {
            said_waiting = true;
            eprintln!("waiting for topic {topic:?} to be created");
        }
        std::thread::sleep(TOPIC_POLL);
    }
}

/// Collects the requests the broker did not take, so their keys stop counting as outstanding.
#[derive(Default)]
pub(super) struct Deliveries {
    pub(super) failed: Mutex<Vec<(Option<u64>, KafkaError)>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        if let Err((error, message)) = result {
            let index = message.key().and_then(key_index);
            // A poisoned lock only means a panic elsewhere; the list itself is still sound.
            let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
            failed.push((index, error.clone()));
        }
    }
}
