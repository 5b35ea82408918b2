//! Request-reply over Kafka: `arn:stepstream:::kafka:invoke` writes a request for a worker
//! and completes when the worker's reply arrives, so Task workers in any language are plain
//! Kafka consumers, scaled by their own consumer group.
//!
//! Arguments: `Topic`, `Key`, `Value`, `Headers` as for `kafka:produce`, and `ReplyTopic`
//! (default `[tasks.kafka] reply_topic`, `stepstream.replies`). The request carries two more
//! headers: `stepstream-correlation-id` and `stepstream-reply-topic`.
//!
//! The reply contract, for worker authors: write one record to the topic named by the
//! request's `stepstream-reply-topic` header, with the request's `stepstream-correlation-id`
//! header copied unchanged (key and partition do not matter), and either
//! - the result as the value: JSON text, at most 256 KiB (an empty value is `null`); or
//! - a `stepstream-error` header whose value is the error name (what Retry and Catch match,
//!   `States.TaskFailed` when empty) and the cause as the value (text).
//!
//! No reply within the Task's `TimeoutSeconds` (else `[tasks] call_timeout_seconds`) fails
//! the task with `States.Timeout`; a reply that comes later, or whose id is unknown, is
//! dropped and counted in `stepstream_task_replies_unmatched_total`. A value that is not
//! JSON is `States.TaskFailed`; one over 256 KiB is `States.DataLimitExceeded`. Replies are
//! routed to the waiting shard by [`super::replies`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::value::Value;

use super::kafka::{bad, Outgoing, SharedProducer};
use super::net::{Limits, TasksConfig};
use super::replies::{Replies, Reply, HEADER_CORRELATION_ID, HEADER_ERROR, HEADER_REPLY_TOPIC};
use super::{TaskCall, TaskFuture, TaskHandler};
use crate::error::{names, WorkflowError};

/// The request-reply resource.
pub const INVOKE: &str = "arn:stepstream:::kafka:invoke";

/// Most distinct reply topics one process reads (each has its own consumer thread).
pub const MAX_REPLY_TOPICS: usize = 16;

/// Sends requests and waits for their replies.
pub struct KafkaInvoke {
    cfg: Arc<TasksConfig>,
    limits: Arc<Limits>,
    producer: Arc<SharedProducer>,
    /// The configured reply topic's consumer: the common case reads it without a lock.
    default_replies: OnceLock<Result<Arc<Replies>, String>>,
    /// Consumers of reply topics named by `ReplyTopic` arguments.
    other_replies: Mutex<HashMap<String, Arc<Replies>>>,
}

impl KafkaInvoke {
    /// An invoke task using `[tasks.kafka]` and the shared producer; consumers start on first use.
    pub fn new(cfg: Arc<TasksConfig>, limits: Arc<Limits>, producer: Arc<SharedProducer>) -> Self {
        Self {
            cfg,
            limits,
            producer,
            default_replies: OnceLock::new(),
            other_replies: Mutex::new(HashMap::new()),
        }
    }

    fn replies(&self, topic: &str) -> Result<Arc<Replies>, WorkflowError> {
        if topic == self.cfg.kafka.reply_topic {
            return self
                .default_replies
                .get_or_init(|| Replies::start(&self.cfg.kafka, topic))
                .clone()
                .map_err(bad);
        }
        // A poisoned lock only means another thread panicked mid-insert; the map is fine.
        let mut map = self.other_replies.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = map.get(topic) {
            return Ok(Arc::clone(r));
        }
        if map.len() + 1 >= MAX_REPLY_TOPICS {
            return Err(bad(format!(
                "kafka:invoke reads at most {MAX_REPLY_TOPICS} reply topics in one process"
            )));
        }
        let r = Replies::start(&self.cfg.kafka, topic).map_err(bad)?;
        map.insert(topic.to_string(), Arc::clone(&r));
        Ok(r)
    }
}

/// The task result (or error) a reply stands for.
fn outcome(reply: Reply, topic: &str) -> Result<Value, WorkflowError> {
    match reply {
        Reply::Value(v) if v.is_empty() => Ok(Value::Null),
        Reply::Value(v) => serde_json::from_slice(&v).map_err(|e| {
            bad(format!(
                "the reply on {topic:?} is not JSON ({e}); a worker answers with the result's JSON text"
            ))
        }),
        Reply::Error { name, cause } => Err(WorkflowError::new(
            name,
            String::from_utf8_lossy(&cause).into_owned(),
        )),
        Reply::TooLarge(n) => Err(WorkflowError::new(
            names::DATA_LIMIT_EXCEEDED,
            format!(
                "the reply on {topic:?} is {n} bytes, over the {} byte limit",
                super::net::MAX_RESPONSE_BYTES
            ),
        )),
    }
}

impl TaskHandler for KafkaInvoke {
    fn call(&self, call: TaskCall<'_>) -> TaskFuture {
        let input = call.input;
        let limit = self.cfg.call_limit(call.timeout);
        let reply_topic = match input.get("ReplyTopic") {
            None | Some(Value::Null) => Ok(self.cfg.kafka.reply_topic.clone()),
            Some(Value::String(t)) if *t == self.cfg.kafka.reply_topic => Ok(t.to_string()),
            Some(Value::String(t)) if self.cfg.kafka.allows_topic(t) => Ok(t.to_string()),
            Some(Value::String(t)) => Err(bad(format!(
                "reply topic {t:?} is not allowed: add it to [tasks.kafka] topics in the config"
            ))),
            Some(_) => Err(bad("kafka:invoke ReplyTopic must be a string")),
        };
        let replies = reply_topic.and_then(|t| self.replies(&t));
        let (cfg, limits, producer) = (
            Arc::clone(&self.cfg),
            Arc::clone(&self.limits),
            Arc::clone(&self.producer),
        );
        Box::pin(async move {
            let record = Outgoing::parse(&input, &cfg.kafka, "kafka:invoke")?;
            if let Some((k, _)) = record.headers.iter().find(|(k, _)| {
                [HEADER_CORRELATION_ID, HEADER_REPLY_TOPIC, HEADER_ERROR].contains(&k.as_str())
            }) {
                return Err(bad(format!(
                    "kafka:invoke sets the {k:?} header itself: remove it from Headers"
                )));
            }
            let replies = replies?;
            let producer = producer.get()?;
            let work = async {
                let _slot = limits.acquire(&record.topic).await;
                replies.ready().await?;
                let mut waiter = replies.waiter()?;
                let extra = [
                    (HEADER_CORRELATION_ID, waiter.id()),
                    (HEADER_REPLY_TOPIC, replies.topic()),
                ];
                record.send(&producer, &extra, limit).await?;
                waiter.reply().await
            };
            match tokio::time::timeout(limit, work).await {
                Ok(reply) => outcome(reply?, replies.topic()),
                Err(_) => Err(WorkflowError::new(
                    names::TIMEOUT,
                    format!(
                        "kafka:invoke: no reply on {:?} within {} seconds",
                        replies.topic(),
                        limit.as_secs_f64()
                    ),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn replies_become_results_or_named_errors() {
        assert_eq!(
            outcome(Reply::Value(br#"{"ok":1}"#.to_vec()), "r").unwrap(),
            json!({"ok": 1})
        );
        assert_eq!(outcome(Reply::Value(Vec::new()), "r").unwrap(), Value::Null);
        let e = outcome(Reply::Value(b"not json".to_vec()), "r").unwrap_err();
        assert_eq!(e.name(), names::TASK_FAILED);
        let e = outcome(
            Reply::Error {
                name: "Worker.OutOfStock".into(),
                cause: b"sku 9".to_vec(),
            },
            "r",
        )
        .unwrap_err();
        assert_eq!(
            (e.name(), e.cause.as_deref()),
            ("Worker.OutOfStock", Some("sku 9"))
        );
        let e = outcome(Reply::TooLarge(1 << 20), "r").unwrap_err();
        assert_eq!(e.name(), names::DATA_LIMIT_EXCEEDED);
    }
}
