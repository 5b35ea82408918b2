//! The pipeline's side of [`crate::metrics`]: the Kafka clients the metrics sampler uses to
//! read the group's consumer lag and to write the metrics topic.
//!
//! Both are clients of their own, never the pipeline's: the lag reader does only metadata,
//! watermark and committed-offset requests (it never joins the group), and the metrics
//! topic has its own small producer because the pipeline producer's delivery callback
//! acknowledges request offsets, which a metrics record does not answer.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use super::{request, sink};
use crate::config::Config;
use crate::metrics::{LagReader, Publisher, Sampler, Sources};
use crate::shard::ShardHandle;

/// How long one lag request may take; a slow broker costs a stale gauge, never a stall.
const LAG_TIMEOUT: Duration = Duration::from_secs(2);
/// Partitions whose lag one sample reads, at most (each costs a watermark request).
const MAX_LAG_PARTITIONS: usize = 1024;
/// Longest one lag sample may take: past it the rest of the partitions keep their last value.
const LAG_SAMPLE_BUDGET: Duration = Duration::from_secs(5);

/// Starts the sampler for a pipeline with these shards, per `cfg.metrics`; none when no
/// recorder is installed (a pipeline run in-process by the load tool or a test).
pub fn start(
    cfg: &Config,
    brokers: &str,
    shards: &[ShardHandle],
) -> std::io::Result<Option<Sampler>> {
    if crate::metrics::handle().is_none() {
        return Ok(None);
    }
    // Series that exist from the start read 0, not "no data", until something happens.
    let names = [
        request::errors::INVALID_REQUEST,
        request::errors::UNKNOWN_STATE_MACHINE,
        request::errors::DATA_LIMIT_EXCEEDED,
        request::errors::INVALID_ENCODING,
        request::errors::NESTING_TOO_DEEP,
        sink::OUTPUT_REJECTED,
    ];
    crate::metrics::register_rare_series(&names);
    for i in 0..shards.len() {
        crate::metrics::partitions_paused(i, 0);
    }
    let lag = lag_reader(cfg, brokers);
    let publish = metrics_writer(cfg, brokers);
    Sampler::start(
        Sources {
            in_flight: shards.iter().map(|s| Arc::clone(&s.in_flight)).collect(),
            lag,
            publish,
        },
        Duration::from_secs(cfg.metrics.interval_seconds),
    )
    .map(Some)
}

/// Reads each input partition's high watermark less the group's committed offset (less
/// the low watermark when nothing is committed yet): the whole group's lag, so every
/// process of a group reports the same figures.
fn lag_reader(cfg: &Config, brokers: &str) -> Option<LagReader> {
    let consumer: BaseConsumer = match sink::base_config(cfg, brokers)
        .set("group.id", &cfg.kafka.group_id)
        .set("enable.auto.commit", "false")
        .create()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("consumer lag is not measured: cannot create its client: {e}");
            return None;
        }
    };
    let topics: Vec<String> = cfg.inputs.iter().map(|i| i.topic.clone()).collect();
    Some(Box::new(move || {
        let deadline = std::time::Instant::now() + LAG_SAMPLE_BUDGET;
        let mut tpl = TopicPartitionList::new();
        for t in &topics {
            let Ok(meta) = consumer.fetch_metadata(Some(t), LAG_TIMEOUT) else {
                continue;
            };
            for topic in meta.topics() {
                for p in topic.partitions() {
                    if tpl.count() < MAX_LAG_PARTITIONS {
                        tpl.add_partition(topic.name(), p.id());
                    }
                }
            }
        }
        let Ok(committed) = consumer.committed_offsets(tpl, LAG_TIMEOUT) else {
            return Vec::new();
        };
        committed
            .elements()
            .iter()
            .take_while(|_| std::time::Instant::now() < deadline)
            .filter_map(|e| {
                let (low, high) = consumer
                    .fetch_watermarks(e.topic(), e.partition(), LAG_TIMEOUT)
                    .ok()?;
                let from = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => low,
                };
                Some((e.topic().to_string(), e.partition(), (high - from).max(0)))
            })
            .collect()
    }))
}

/// A producer that flushes what it holds when the sampler is done with it.
struct Flushing(ThreadedProducer<DefaultProducerContext>);

impl Drop for Flushing {
    fn drop(&mut self) {
        if let Err(e) = self.0.flush(Duration::from_secs(5)) {
            tracing::warn!("the last metrics or log records may be lost: flushing failed: {e}");
        }
    }
}

/// Writes execution history events to the logs topic: one record per event, keyed by the
/// execution's ARN (so one execution's events stay in order on one partition).
///
/// A producer of its own, like the metrics topic's: the pipeline producer's delivery
/// callback acknowledges request offsets, which a log record does not answer. Log records
/// are best effort: a record the producer refuses at once (its queue is full) is counted
/// and dropped, never waited for, so logging cannot hold an execution's result back.
pub struct LogsWriter {
    producer: Flushing,
    topic: String,
    refused: metrics::Counter,
}

impl LogsWriter {
    /// A writer for `cfg.logs.topic`; none when no machine logs or the producer cannot be made.
    pub fn new(cfg: &Config, brokers: &str) -> Option<LogsWriter> {
        if !cfg.logs.any_on() {
            return None;
        }
        let producer: ThreadedProducer<DefaultProducerContext> =
            match sink::base_config(cfg, brokers)
                .set("linger.ms", "20")
                // Bounds what logging may hold in memory when the broker is slow.
                .set("queue.buffering.max.kbytes", "65536")
                .create()
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("no logs topic: cannot create its producer: {e}");
                    return None;
                }
            };
        Some(LogsWriter {
            producer: Flushing(producer),
            topic: cfg.logs.topic.clone(),
            refused: metrics::counter!(crate::metrics::LOG_RECORDS_FAILED),
        })
    }
}

impl crate::shard::HistoryWriter for LogsWriter {
    /// Queues one record per event of `log`, keyed by `arn`.
    fn write(&self, arn: &str, log: &crate::exec::ExecutionLog) {
        for e in &log.events {
            let bytes = e.to_string();
            let record = BaseRecord::<str, [u8]>::to(&self.topic)
                .key(arn)
                .payload(bytes.as_bytes());
            if self.producer.0.send(record).is_err() {
                self.refused.increment(1);
            }
        }
        if log.dropped > 0 {
            tracing::debug!(
                "execution {arn}: {} history events past the cap were not logged",
                log.dropped
            );
        }
    }
}

/// Writes metrics records to `cfg.metrics.topic`, keyed by nothing (one process's records
/// need no order across partitions: each carries its own timestamp and process).
fn metrics_writer(cfg: &Config, brokers: &str) -> Option<Publisher> {
    if cfg.metrics.topic.is_empty() {
        return None;
    }
    let producer: ThreadedProducer<DefaultProducerContext> = match sink::base_config(cfg, brokers)
        .set("linger.ms", "100")
        // A metrics record older than two intervals is not worth delivering late.
        .set(
            "message.timeout.ms",
            (cfg.metrics.interval_seconds * 2000).to_string(),
        )
        .create()
    {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("no metrics topic: cannot create its producer: {e}");
            return None;
        }
    };
    let producer = Flushing(producer);
    let topic = cfg.metrics.topic.clone();
    Some(Box::new(move |bytes: &[u8]| {
        producer
            .0
            .send(BaseRecord::<(), [u8]>::to(&topic).payload(bytes))
            .is_ok()
    }))
}
