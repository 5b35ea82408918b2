//! StartSyncExecution (on a shard, answered with the outcome) and StartExecution (a request
//! on the requests topic; the result lands on the results topic).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::body::Bytes;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::fields::{self, Fields};
use super::Api;
use crate::exec::Status;
use crate::pipeline::definitions::epoch_seconds;
use crate::pipeline::result::{execution_arn, new_uuid, state_machine_arn};
use crate::shard::{run_one, Job, ShardView, Work};

/// StartSyncExecution's limit (AWS's, for Express workflows).
const SYNC_MAX_DURATION: Duration = Duration::from_secs(300);

/// One StartSyncExecution: an execution whose outcome is answered, not produced.
pub struct SyncCall {
    /// The state machine.
    pub machine: String,
    /// The execution's name.
    pub name: String,
    /// The id its ARN ends with (the caller built the ARN already).
    pub id: uuid::Uuid,
    /// The execution input as JSON text, size-checked by the caller; parsed (and its
    /// nesting checked) on the shard, so the caller's thread does not.
    pub input: String,
    /// The deepest nesting the input may have.
    pub max_depth: usize,
    /// Called on the shard with how it ended, so the answer is built on the shard too.
    pub reply: Box<dyn FnOnce(Result<SyncDone, SyncRefused>) + Send>,
}

/// Why a StartSyncExecution did not run.
#[derive(Debug)]
pub enum SyncRefused {
    /// The state machine was deleted before the execution started.
    MachineGone,
    /// The input is not JSON, or nested too deep.
    BadInput(String),
}

/// How a StartSyncExecution ended.
#[derive(Debug)]
pub struct SyncDone {
    /// The outcome.
    pub outcome: crate::exec::Outcome,
    /// When it started.
    pub start: chrono::DateTime<chrono::Utc>,
    /// When it stopped.
    pub stop: chrono::DateTime<chrono::Utc>,
    /// The input text, handed back.
    pub input: String,
}

impl Work for SyncCall {
    fn run(self: Box<Self>, shard: ShardView) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(self.handle(shard))
    }
}

impl SyncCall {
    /// Parses the input, runs the execution and replies; the slot is free once replied.
    async fn handle(self: Box<Self>, shard: ShardView) {
        let SyncCall {
            machine,
            name,
            id,
            input,
            max_depth,
            reply,
        } = *self;
        let depth = crate::pipeline::request::max_depth(input.as_bytes());
        let parsed = if depth > max_depth {
            Err(SyncRefused::BadInput(format!(
                "it nests {depth} levels deep, over the limit of {max_depth}"
            )))
        } else {
            serde_json::from_str::<crate::value::Value>(&input)
                .map_err(|e| SyncRefused::BadInput(e.to_string()))
        };
        let done = match (shard.machines.get(&machine), parsed) {
            (None, _) => Err(SyncRefused::MachineGone),
            (_, Err(e)) => Err(e),
            (Some(m), Ok(value)) => {
                let execution = crate::express::Execution {
                    machine: &machine,
                    name: &name,
                    id: &id,
                };
                // AWS ends a synchronous Express execution after 5 minutes, whatever the config.
                let cap = shard.ctx.max_duration.min(SYNC_MAX_DURATION);
                let (outcome, start, stop) = run_one(&shard, m, &execution, value, 0, cap).await;
                Ok(SyncDone {
                    outcome,
                    start,
                    stop,
                    input,
                })
            }
        };
        reply(done);
        shard.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Largest execution input, in bytes (AWS: 256 KiB).
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// What starting an execution needs, read and checked.
struct Start {
    machine: String,
    name: String,
    /// Within the size limit; its syntax and depth are checked where it is parsed (the
    /// shard for StartSyncExecution, [`checked_input`] for StartExecution).
    input: String,
}

/// The input is JSON within the depth limit.
fn checked_input(api: &Api, input: &str) -> Result<(), ApiError> {
    let depth = crate::pipeline::request::max_depth(input.as_bytes());
    if depth > api.max_input_depth {
        return Err(ApiError::invalid_input(format!(
            "Invalid State Machine Execution Input: it nests {depth} levels deep, over the \
             limit of {}",
            api.max_input_depth
        )));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(input).map_err(|e| {
        ApiError::invalid_input(format!("Invalid State Machine Execution Input: '{e}'"))
    })?;
    Ok(())
}

fn read_start(api: &Api, f: &Fields) -> Result<Start, ApiError> {
    let arn = f.string("stateMachineArn")?;
    let machine = fields::machine_name(&arn)?.to_string();
    if !api.registry.contains(&machine) {
        return Err(ApiError::no_machine(&arn));
    }
    let name = match f.optional_string("name")? {
        Some(n) => {
            crate::pipeline::request::check_name(&n)
                .map_err(|e| ApiError::invalid_name(format!("Invalid Name: '{n}' ({e})")))?;
            n
        }
        None => new_uuid().to_string(),
    };
    let input = f.optional_string("input")?.unwrap_or_else(|| "{}".into());
    if input.len() > MAX_INPUT_BYTES {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at 'input' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_INPUT_BYTES}"
        )));
    }
    Ok(Start {
        machine,
        name,
        input,
    })
}

/// StartSyncExecution: runs on the least busy shard and answers AWS's response shape,
/// 200 whatever the status. The shard parses the input and writes the answer, so the API
/// thread only reads requests and sends answers.
pub async fn start_sync(api: &Api, f: Fields) -> Result<Bytes, ApiError> {
    let s = read_start(api, &f)?;
    let include_data = f.optional_string("includedData")?.as_deref() != Some("METADATA_ONLY");
    let id = new_uuid();
    let (tx, rx) = tokio::sync::oneshot::channel::<Result<Bytes, SyncRefused>>();
    let (machine, name) = (s.machine.clone(), s.name.clone());
    let reply = move |done: Result<SyncDone, SyncRefused>| {
        let answer = done.map(|d| Bytes::from(sync_answer(&machine, &name, &id, include_data, &d)));
        // The caller may have gone (a closed connection); nothing waits for the answer then.
        let _ = tx.send(answer);
    };
    let job: Job = Box::new(SyncCall {
        machine: s.machine.clone(),
        name: s.name,
        id,
        input: s.input,
        max_depth: api.max_input_depth,
        reply: Box::new(reply),
    });
    api.submit(job)?;
    match rx.await {
        Err(_) => Err(ApiError::unavailable(
            "the execution was abandoned: stepstream is shutting down",
        )),
        Ok(Err(SyncRefused::MachineGone)) => {
            Err(ApiError::no_machine(&state_machine_arn(&s.machine)))
        }
        Ok(Err(SyncRefused::BadInput(why))) => Err(ApiError::invalid_input(format!(
            "Invalid State Machine Execution Input: '{why}'"
        ))),
        Ok(Ok(body)) => Ok(body),
    }
}

fn string_into(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("a string always serializes into memory");
}

fn number_into(out: &mut Vec<u8>, n: f64) {
    serde_json::to_writer(out, &n).expect("a number always serializes into memory");
}

/// Writes `v` as a JSON string holding its JSON text, in one pass: serde_json's output
/// has no raw control characters, so only quotes and backslashes need a second escape.
fn output_into(out: &mut Vec<u8>, v: &crate::value::Value) {
    struct Escaping<'a>(&'a mut Vec<u8>);
    impl std::io::Write for Escaping<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut plain = 0;
            for (i, &b) in buf.iter().enumerate() {
                if b == b'"' || b == b'\\' {
                    self.0.extend_from_slice(&buf[plain..i]);
                    self.0.push(b'\\');
                    self.0.push(b);
                    plain = i + 1;
                }
            }
            self.0.extend_from_slice(&buf[plain..]);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    out.push(b'"');
    serde_json::to_writer(Escaping(out), v).expect("a JSON value always serializes into memory");
    out.push(b'"');
}

/// StartSyncExecution's answer, written straight into bytes.
fn sync_answer(
    machine: &str,
    name: &str,
    id: &uuid::Uuid,
    include_data: bool,
    done: &SyncDone,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(done.input.len() * 2 + 512);
    out.extend_from_slice(b"{\"executionArn\":");
    string_into(&mut out, &execution_arn(machine, name, id));
    out.extend_from_slice(b",\"stateMachineArn\":");
    string_into(&mut out, &state_machine_arn(machine));
    out.extend_from_slice(b",\"name\":");
    string_into(&mut out, name);
    out.extend_from_slice(b",\"startDate\":");
    number_into(&mut out, epoch_seconds(done.start));
    out.extend_from_slice(b",\"stopDate\":");
    number_into(&mut out, epoch_seconds(done.stop));
    out.extend_from_slice(b",\"status\":");
    string_into(&mut out, done.outcome.status.as_str());
    if done.outcome.status != Status::Succeeded {
        if let Some(e) = &done.outcome.error {
            out.extend_from_slice(b",\"error\":");
            string_into(&mut out, e);
        }
        if let Some(c) = &done.outcome.cause {
            out.extend_from_slice(b",\"cause\":");
            string_into(&mut out, c);
        }
    }
    if include_data {
        out.extend_from_slice(b",\"input\":");
        string_into(&mut out, &done.input);
    }
    out.extend_from_slice(b",\"inputDetails\":{\"included\":");
    out.extend_from_slice(if include_data { b"true}" } else { b"false}" });
    if let Some(output) = &done.outcome.output {
        if include_data {
            out.extend_from_slice(b",\"output\":");
            output_into(&mut out, output);
        }
        out.extend_from_slice(b",\"outputDetails\":{\"included\":");
        out.extend_from_slice(if include_data { b"true}" } else { b"false}" });
    }
    let ms = (done.stop - done.start).num_milliseconds().max(0) as u64;
    // Express executions are billed in 100 ms steps, 100 ms at least.
    let billed = ms.div_ceil(100).max(1) * 100;
    out.extend_from_slice(
        format!(
            ",\"billingDetails\":{{\"billedMemoryUsedInMB\":64,\"billedDurationInMilliseconds\":{billed}}}}}"
        )
        .as_bytes(),
    );
    out
}

/// StartExecution: the request goes onto the requests topic (DESIGN.md's envelope, keyed by
/// the execution name, its id in `stepstream-execution-id`), so the result record carries
/// the ARN answered here.
pub async fn start(api: &Api, f: Fields) -> Result<Value, ApiError> {
    let s = read_start(api, &f)?;
    checked_input(api, &s.input)?;
    let Some(topic) = &api.requests_topic else {
        return Err(ApiError::unavailable(
            "StartExecution needs an envelope input topic ([[inputs]] without state_machine)",
        ));
    };
    let id = new_uuid();
    let arn = execution_arn(&s.machine, &s.name, &id);
    // The input is checked JSON, so it goes into the envelope as it is.
    let mut envelope = json!({"stateMachine": s.machine, "name": s.name}).to_string();
    envelope.pop();
    envelope.push_str(",\"input\":");
    envelope.push_str(&s.input);
    envelope.push('}');
    let id_text = id.to_string();
    let record = FutureRecord::to(topic)
        .key(&s.name)
        .payload(&envelope)
        .headers(OwnedHeaders::new().insert(Header {
            key: crate::tasks::nested::HEADER_EXECUTION_ID,
            value: Some(&id_text),
        }));
    let start = chrono::Utc::now();
    api.producer
        .send(record, Timeout::After(Duration::from_secs(10)))
        .await
        .map_err(|(e, _)| {
            ApiError::unavailable(format!(
                "the requests topic {topic} refused the request: {e}"
            ))
        })?;
    Ok(json!({"executionArn": arn, "startDate": epoch_seconds(start)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_written_as_the_json_string_of_its_text() {
        let v =
            json!({"q": "say \"hi\"\n", "path": "C:\\tmp", "n": [1, 2.5, null], "u": "é\u{2028}"});
        let mut out = Vec::new();
        output_into(&mut out, &crate::value::Value::from(&v));
        let expected = serde_json::to_string(&v.to_string()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
