//! Kafka as a Task target: `arn:stepstream:::kafka:produce` writes one record and returns
//! where it landed once the broker acknowledged it.
//!
//! Arguments: `Topic` (required), `Key` (a string), `Value` (a string is sent as its
//! text, any other JSON value as JSON), `Headers` (an object of strings). Result:
//! `{"Topic", "Partition", "Offset"}`. A refused or unacknowledged record fails the task
//! with `Kafka.<ErrorCode>` (`Kafka.UnknownTopicOrPartition`, `Kafka.MessageTimedOut`, ...).
//!
//! The producer is made on first use with `[tasks.kafka]`'s brokers (or `[kafka]`'s), one
//! per [`super::Tasks::with_real_tasks`] (the pipeline makes one for all its machines):
//! rdkafka's delivery futures are runtime-agnostic, so every shard shares it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Deserialize;
use serde_json::{json, Value};

use super::net::{Limits, TasksConfig};
use super::{TaskCall, TaskFuture, TaskHandler};
use crate::error::{names, WorkflowError};

/// The produce resource.
pub const PRODUCE: &str = "arn:stepstream:::kafka:produce";

/// `[tasks.kafka]`: where `kafka:produce` writes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaTaskConfig {
    /// Bootstrap servers; empty uses `[kafka] brokers` (an embedded demo broker has none
    /// to give: set this then).
    #[serde(default)]
    pub brokers: String,
    /// Topics a task may write to; empty allows every topic.
    #[serde(default)]
    pub topics: Vec<String>,
    /// librdkafka producer properties (TLS, SASL); `[kafka.properties]` when empty.
    /// Values are not logged.
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
}

/// Writes records for `kafka:produce`.
pub struct KafkaProduce {
    cfg: Arc<TasksConfig>,
    limits: Arc<Limits>,
    producer: OnceLock<Result<FutureProducer, String>>,
}

impl KafkaProduce {
    /// A producer task using `[tasks.kafka]` (created on the first call).
    pub fn new(cfg: Arc<TasksConfig>, limits: Arc<Limits>) -> Self {
        Self {
            cfg,
            limits,
            producer: OnceLock::new(),
        }
    }

    fn producer(&self) -> Result<FutureProducer, WorkflowError> {
        let made = self.producer.get_or_init(|| {
            let k = &self.cfg.kafka;
            if k.brokers.is_empty() {
                return Err(
                    "kafka:produce has no brokers: set [tasks.kafka] brokers (or [kafka] brokers)"
                        .into(),
                );
            }
            let mut c = ClientConfig::new();
            c.set("bootstrap.servers", &k.brokers)
                .set("enable.idempotence", "true")
                .set("acks", "all")
                // A record not acknowledged within the call limit fails the task.
                .set(
                    "message.timeout.ms",
                    self.cfg
                        .call_timeout()
                        .as_millis()
                        .clamp(1, 3_600_000)
                        .to_string(),
                );
            for (name, value) in &k.properties {
                c.set(name, value);
            }
            c.create()
                .map_err(|e| format!("kafka:produce cannot create its producer: {e}"))
        });
        made.clone()
            .map_err(|why| WorkflowError::new(names::TASK_FAILED, why))
    }
}

fn bad(why: impl Into<String>) -> WorkflowError {
    WorkflowError::new(names::TASK_FAILED, why)
}

/// `Kafka.<ErrorCode>` for a refused record, as the broker or client named the problem.
fn kafka_error(e: &KafkaError) -> WorkflowError {
    let code = e
        .rdkafka_error_code()
        .map(|c| format!("{c:?}"))
        .unwrap_or_else(|| "ClientError".into());
    WorkflowError::new(format!("Kafka.{code}"), e.to_string())
}

impl TaskHandler for KafkaProduce {
    fn call(&self, call: TaskCall<'_>) -> TaskFuture {
        let input = call.input;
        let producer = self.producer();
        let (cfg, limits) = (Arc::clone(&self.cfg), Arc::clone(&self.limits));
        Box::pin(async move {
            let topic = input
                .get("Topic")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("kafka:produce needs a Topic string in its Parameters"))?
                .to_string();
            let allowed = &cfg.kafka.topics;
            if !allowed.is_empty() && !allowed.contains(&topic) {
                return Err(bad(format!(
                    "topic {topic:?} is not allowed: add it to [tasks.kafka] topics in the config"
                )));
            }
            let key = match input.get("Key") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(bad("kafka:produce Key must be a string")),
            };
            let value = match input.get("Value") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone().into_bytes()),
                Some(v) => Some(serde_json::to_vec(v).map_err(|e| bad(e.to_string()))?),
            };
            let mut headers = OwnedHeaders::new();
            if let Some(h) = input.get("Headers") {
                let h = h
                    .as_object()
                    .ok_or_else(|| bad("kafka:produce Headers must be an object of strings"))?;
                for (k, v) in h {
                    let v = v.as_str().ok_or_else(|| {
                        bad(format!("kafka:produce header {k:?} must be a string"))
                    })?;
                    headers = headers.insert(Header {
                        key: k,
                        value: Some(v),
                    });
                }
            }
            let producer = producer?;
            let _slot = limits.acquire(&topic).await;
            let mut record = FutureRecord::<String, Vec<u8>>::to(&topic).headers(headers);
            if let Some(k) = &key {
                record = record.key(k);
            }
            if let Some(v) = &value {
                record = record.payload(v);
            }
            // Waiting for queue space counts toward the call limit like the delivery itself.
            match producer.send(record, cfg.call_timeout()).await {
                Ok(delivery) => Ok(json!({
                    "Topic": topic,
                    "Partition": delivery.partition,
                    "Offset": delivery.offset,
                })),
                Err((e, _)) => Err(kafka_error(&e)),
            }
        })
    }
}

/// How long a producer flush may take when the handler goes away.
const FLUSH_ON_DROP: Duration = Duration::from_secs(5);

impl Drop for KafkaProduce {
    fn drop(&mut self) {
        use rdkafka::producer::Producer as _;
        // Records already acknowledged need nothing; this only bounds shutdown.
        if let Some(Ok(p)) = self.producer.get() {
            let _ = p.flush(FLUSH_ON_DROP);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn refused_records_get_kafka_error_names() {
        let e = KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition);
        assert_eq!(
            kafka_error(&e).error.as_deref(),
            Some("Kafka.UnknownTopicOrPartition")
        );
    }
}
