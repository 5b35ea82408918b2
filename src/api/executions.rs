//! StartSyncExecution (on a shard, answered with the outcome) and StartExecution (a request
//! on the requests topic; the result lands on the results topic).

use std::sync::atomic::{AtomicUsize, Ordering};
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
use crate::shard::{run_one, ShardView};

/// StartSyncExecution's limit (AWS's, for Express workflows).
const SYNC_MAX_DURATION: Duration = Duration::from_secs(300);

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

/// Parses the input and runs the execution on this shard.
async fn run_sync(
    shard: &ShardView,
    machine: &str,
    name: &str,
    id: &uuid::Uuid,
    input: String,
    max_depth: usize,
) -> Result<SyncDone, SyncRefused> {
    // An input the fast reader finishes within the depth limit needs no depth pre-scan;
    // anything else is measured first, then read with serde_json's acceptance and errors.
    let fast = {
        let mut r = crate::value::Reader::new(&input).nesting_at_most(max_depth);
        r.value().filter(|_| r.at_end())
    };
    let value = match fast {
        Some(v) => v,
        None => {
            let depth = crate::pipeline::request::max_depth(input.as_bytes());
            if depth > max_depth {
                return Err(SyncRefused::BadInput(format!(
                    "it nests {depth} levels deep, over the limit of {max_depth}"
                )));
            }
            crate::value::from_str(&input).map_err(|e| SyncRefused::BadInput(e.to_string()))?
        }
    };
    // Read now, not when the connection started: a keep-alive connection may create a
    // machine and run it next.
    let machines = shard.ctx.machines.snapshot();
    let m = machines.get(machine).ok_or(SyncRefused::MachineGone)?;
    let execution = crate::express::Execution { machine, name, id };
    // AWS ends a synchronous Express execution after 5 minutes, whatever the config.
    let cap = shard.ctx.max_duration.min(SYNC_MAX_DURATION);
    let (outcome, start, stop) = run_one(
        shard,
        m,
        &execution,
        value,
        0,
        cap,
        crate::exec::WorkflowType::ExpressSync,
    )
    .await;
    Ok(SyncDone {
        outcome,
        start,
        stop,
        input,
    })
}

/// Holds one of the shard's in-flight slots; released when dropped, so an execution
/// abandoned with its connection releases it too.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
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

fn read_start(api: &Api, f: &mut Fields) -> Result<Start, ApiError> {
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
    // Moved out, not copied: it may be 256 KiB.
    let input = f
        .take_optional_string("input")?
        .unwrap_or_else(|| "{}".into());
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

/// StartSyncExecution: runs on the shard that serves the connection and answers AWS's
/// response shape, 200 whatever the status. The request is read, run and answered on one
/// thread, with no hand-over.
pub async fn start_sync(api: &Api, mut f: Fields, shard: &ShardView) -> Result<Bytes, ApiError> {
    let s = read_start(api, &mut f)?;
    let include_data = f.optional_string("includedData")?.as_deref() != Some("METADATA_ONLY");
    // Handed back as the body wrote it: the same string, without escaping it again.
    let input_text = f.input_text().cloned();
    if shard.in_flight.load(Ordering::Relaxed) >= api.max_in_flight {
        return Err(ApiError::throttled(
            "Rate exceeded: this shard holds its most executions; retry later",
        ));
    }
    shard.in_flight.fetch_add(1, Ordering::Relaxed);
    let _slot = Slot(&shard.in_flight);
    let id = new_uuid();
    match run_sync(
        shard,
        &s.machine,
        &s.name,
        &id,
        s.input,
        api.max_input_depth,
    )
    .await
    {
        Err(SyncRefused::MachineGone) => Err(ApiError::no_machine(&state_machine_arn(&s.machine))),
        Err(SyncRefused::BadInput(why)) => Err(ApiError::invalid_input(format!(
            "Invalid State Machine Execution Input: '{why}'"
        ))),
        Ok(done) => Ok(Bytes::from(sync_answer(
            &s.machine,
            &s.name,
            &id,
            include_data,
            input_text.as_deref(),
            &done,
        ))),
    }
}

/// Writes `s` as a JSON string, with serde_json's escapes.
fn string_into(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    crate::value::escape_str_into(out, s);
    out.push(b'"');
}

fn number_into(out: &mut Vec<u8>, n: f64) {
    serde_json::to_writer(out, &n).expect("a number always serializes into memory");
}

/// StartSyncExecution's answer, written straight into bytes.
fn sync_answer(
    machine: &str,
    name: &str,
    id: &uuid::Uuid,
    include_data: bool,
    input_text: Option<&[u8]>,
    done: &SyncDone,
) -> Vec<u8> {
    // Both texts grow by their escapes: about one in ten bytes of JSON text is a quote.
    let output_len = done.outcome.output.as_ref().map_or(0, |v| {
        crate::value::known_len(v).unwrap_or(done.input.len())
    });
    let mut out = Vec::with_capacity((done.input.len() + output_len) * 5 / 4 + 512);
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
        match input_text {
            Some(text) => {
                out.push(b'"');
                out.extend_from_slice(text);
                out.push(b'"');
            }
            None => string_into(&mut out, &done.input),
        }
    }
    out.extend_from_slice(b",\"inputDetails\":{\"included\":");
    out.extend_from_slice(if include_data { b"true}" } else { b"false}" });
    if let Some(output) = &done.outcome.output {
        if include_data {
            out.extend_from_slice(b",\"output\":");
            crate::value::to_writer_quoted(&mut out, output);
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
pub async fn start(api: &Api, mut f: Fields) -> Result<Value, ApiError> {
    let s = read_start(api, &mut f)?;
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
        crate::value::to_writer_quoted(&mut out, &crate::value::Value::from(&v));
        let expected = serde_json::to_string(&v.to_string()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for s in [
            "",
            "plain",
            "{\"a\": \"b\\\\c\"}",
            "\"\"\\\\",
            "pretty\n{\n\t\"a\": 1\n}",
            "é\u{2028}\u{7f}\u{1}",
        ] {
            let mut out = Vec::new();
            string_into(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }
}
