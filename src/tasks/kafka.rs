//! Kafka as a Task target: `arn:stepstream:::kafka:produce` writes one record and returns
//! where it landed once the broker acknowledged it.
//!
//! Arguments: `Topic` (required), `Key` (a string), `Value` (a string is sent as its
//! text, any other JSON value as JSON), `Headers` (an object of strings). Result:
//! `{"Topic", "Partition", "Offset"}`. A refused or unacknowledged record fails the task
//! with `Kafka.<ErrorCode>` (`Kafka.UnknownTopicOrPartition`, `Kafka.MessageTimedOut`, ...).
//!
//! The producer ([`SharedProducer`]) is made on first use with `[tasks.kafka]`'s brokers (or
//! `[kafka]`'s), one per [`super::Tasks::with_real_tasks`] (the pipeline makes one for all
//! its machines), and serves produce, [`super::kafka_invoke`] and [`super::nested`] alike:
//! rdkafka's delivery futures are runtime-agnostic, so every shard shares it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::json;
use crate::value::Value;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Deserialize;

use super::net::{Limits, TasksConfig};
use super::{TaskCall, TaskFuture, TaskHandler};
use crate::error::{names, WorkflowError};

/// The produce resource.
pub const PRODUCE: &str = "arn:stepstream:::kafka:produce";

/// `[tasks.kafka]`: where the Kafka tasks (produce, invoke, startExecution) write and read.
#[derive(Debug, Clone, Deserialize)]
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
    /// Where `kafka:invoke` workers answer when a call names no `ReplyTopic`.
    #[serde(default = "default_reply_topic")]
    pub reply_topic: String,
    /// Partitions of a reply topic `kafka:invoke` creates because it is missing.
    #[serde(default = "default_reply_partitions")]
    pub reply_partitions: i32,
    /// Where `states:startExecution` writes child requests; unset uses the first
    /// `[[inputs]]` topic not bound to a machine (`stepstream.requests` without a config).
    #[serde(default)]
    pub requests_topic: Option<String>,
    /// How deep executions may start executions (a child of a top-level execution is at
    /// depth 1); a `states:startExecution` past it fails instead of starting one.
    #[serde(default = "default_max_nesting_depth")]
    pub max_nesting_depth: u32,
}

impl Default for KafkaTaskConfig {
    fn default() -> Self {
        Self {
            brokers: String::new(),
            topics: Vec::new(),
            properties: Default::default(),
            reply_topic: default_reply_topic(),
            reply_partitions: default_reply_partitions(),
            requests_topic: None,
            max_nesting_depth: default_max_nesting_depth(),
        }
    }
}

fn default_reply_topic() -> String {
    "stepstream.replies".into()
}
fn default_reply_partitions() -> i32 {
    4
}
fn default_max_nesting_depth() -> u32 {
    8
}

impl KafkaTaskConfig {
    /// Whether a task may write to (or read replies from) `topic`.
    pub fn allows_topic(&self, topic: &str) -> bool {
        self.topics.is_empty() || self.topics.iter().any(|t| t == topic)
    }

    /// The bootstrap servers, or the error a task that needs them fails with.
    pub fn brokers(&self, what: &str) -> Result<&str, String> {
        if self.brokers.is_empty() {
            return Err(format!(
                "{what} has no brokers: set [tasks.kafka] brokers (or [kafka] brokers)"
            ));
        }
        Ok(&self.brokers)
    }
}

/// The producer every Kafka task of one [`super::Tasks`] writes with, made on first use.
pub struct SharedProducer {
    cfg: Arc<TasksConfig>,
    producer: OnceLock<Result<FutureProducer, String>>,
}

impl SharedProducer {
    /// A producer for `[tasks.kafka]` (created on the first call).
    pub fn new(cfg: Arc<TasksConfig>) -> Self {
        Self {
            cfg,
            producer: OnceLock::new(),
        }
    }

    /// The producer, or the task error saying why there is none.
    pub fn get(&self) -> Result<FutureProducer, WorkflowError> {
        let made = self.producer.get_or_init(|| {
            let k = &self.cfg.kafka;
            let brokers = k.brokers("a Kafka task")?;
            let mut c = ClientConfig::new();
            c.set("bootstrap.servers", brokers)
                .set("enable.idempotence", "true")
                .set("acks", "all")
                // Request-reply round trips wait on this producer: send at once.
                .set("linger.ms", "1")
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
                .map_err(|e| format!("a Kafka task cannot create its producer: {e}"))
        });
        made.clone().map_err(bad)
    }
}

/// How long a producer flush may take when the handler goes away.
const FLUSH_ON_DROP: Duration = Duration::from_secs(5);

impl Drop for SharedProducer {
    fn drop(&mut self) {
        use rdkafka::producer::Producer as _;
        // Records already acknowledged need nothing; this only bounds shutdown.
        if let Some(Ok(p)) = self.producer.get() {
            let _ = p.flush(FLUSH_ON_DROP);
        }
    }
}

/// A record as a task's arguments describe it (`Topic`, `Key`, `Value`, `Headers`).
pub struct Outgoing {
    /// The topic.
    pub topic: String,
    /// The key.
    pub key: Option<String>,
    /// The value bytes.
    pub value: Option<Vec<u8>>,
    /// The headers, in the order given.
    pub headers: Vec<(String, String)>,
}

impl Outgoing {
    /// Reads the arguments of `what` (`kafka:produce`, `kafka:invoke`); the topic must be allowed.
    pub fn parse(input: &Value, cfg: &KafkaTaskConfig, what: &str) -> Result<Self, WorkflowError> {
        let topic = input
            .get("Topic")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("{what} needs a Topic string in its Parameters")))?
            .to_string();
        if !cfg.allows_topic(&topic) {
            return Err(bad(format!(
                "topic {topic:?} is not allowed: add it to [tasks.kafka] topics in the config"
            )));
        }
        let key = match input.get("Key") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.to_string()),
            Some(_) => return Err(bad(format!("{what} Key must be a string"))),
        };
        let value = match input.get("Value") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_bytes().to_vec()),
            Some(v) => Some(serde_json::to_vec(v).map_err(|e| bad(e.to_string()))?),
        };
        let mut headers = Vec::new();
        if let Some(h) = input.get("Headers") {
            let h = h
                .as_object()
                .ok_or_else(|| bad(format!("{what} Headers must be an object of strings")))?;
            for (k, v) in h {
                let v = v
                    .as_str()
                    .ok_or_else(|| bad(format!("{what} header {k:?} must be a string")))?;
                headers.push((k.to_string(), v.to_string()));
            }
        }
        Ok(Self {
            topic,
            key,
            value,
            headers,
        })
    }

    /// Writes the record with `extra` headers after its own; returns (partition, offset)
    /// once the broker acknowledged it, within `limit` of waiting for queue space.
    pub async fn send(
        &self,
        producer: &FutureProducer,
        extra: &[(&str, &str)],
        limit: Duration,
    ) -> Result<(i32, i64), WorkflowError> {
        let mut headers = OwnedHeaders::new_with_capacity(self.headers.len() + extra.len());
        let own = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        for (key, value) in own.chain(extra.iter().copied()) {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record = FutureRecord::<String, Vec<u8>>::to(&self.topic).headers(headers);
        if let Some(k) = &self.key {
            record = record.key(k);
        }
        if let Some(v) = &self.value {
            record = record.payload(v);
        }
        match producer.send(record, limit).await {
            Ok(delivery) => Ok((delivery.partition, delivery.offset)),
            Err((e, _)) => Err(kafka_error(&e)),
        }
    }
}

/// Writes records for `kafka:produce`.
pub struct KafkaProduce {
    cfg: Arc<TasksConfig>,
    limits: Arc<Limits>,
    producer: Arc<SharedProducer>,
}

impl KafkaProduce {
    /// A producer task using `[tasks.kafka]` and the shared producer.
    pub fn new(cfg: Arc<TasksConfig>, limits: Arc<Limits>, producer: Arc<SharedProducer>) -> Self {
        Self {
            cfg,
            limits,
            producer,
        }
    }
}

/// A task failure that is the caller's doing (bad arguments, missing config).
pub(crate) fn bad(why: impl Into<String>) -> WorkflowError {
    WorkflowError::new(names::TASK_FAILED, why)
}

/// `Kafka.<ErrorCode>` for a refused record, as the broker or client named the problem.
pub(crate) fn kafka_error(e: &KafkaError) -> WorkflowError {
    let code = e
        .rdkafka_error_code()
        .map(|c| format!("{c:?}"))
        .unwrap_or_else(|| "ClientError".into());
    WorkflowError::new(format!("Kafka.{code}"), e.to_string())
}

impl TaskHandler for KafkaProduce {
    fn call(&self, call: TaskCall<'_>) -> TaskFuture {
        let input = call.input;
        let (cfg, limits, producer) = (
            Arc::clone(&self.cfg),
            Arc::clone(&self.limits),
            Arc::clone(&self.producer),
        );
        Box::pin(async move {
            let record = Outgoing::parse(&input, &cfg.kafka, "kafka:produce")?;
            let producer = producer.get()?;
            let _slot = limits.acquire(&record.topic).await;
            // Waiting for queue space counts toward the call limit like the delivery itself.
            let (partition, offset) = record.send(&producer, &[], cfg.call_timeout()).await?;
            Ok(json!({
                "Topic": record.topic,
                "Partition": partition,
                "Offset": offset,
            }))
        })
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
