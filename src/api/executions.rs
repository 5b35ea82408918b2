//! StartSyncExecution (on a shard, answered with the outcome) and StartExecution (a request
//! on the requests topic; the result lands on the results topic).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::fields::{self, Fields};
use super::registry::epoch_seconds;
use super::Api;
use crate::exec::Status;
use crate::pipeline::result::{execution_arn, new_uuid, state_machine_arn, Source};
use crate::shard::{Job, SyncCall};

/// Largest execution input, in bytes (AWS: 256 KiB).
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// What starting an execution needs, read and checked.
struct Start {
    machine: String,
    name: String,
    input_text: String,
    input: Value,
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
    let input_text = f.optional_string("input")?.unwrap_or_else(|| "{}".into());
    if input_text.len() > MAX_INPUT_BYTES {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at 'input' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_INPUT_BYTES}"
        )));
    }
    let depth = crate::pipeline::request::max_depth(input_text.as_bytes());
    if depth > api.max_input_depth {
        return Err(ApiError::invalid_input(format!(
            "Invalid State Machine Execution Input: it nests {depth} levels deep, over the \
             limit of {}",
            api.max_input_depth
        )));
    }
    let input: Value = serde_json::from_str(&input_text).map_err(|e| {
        ApiError::invalid_input(format!("Invalid State Machine Execution Input: '{e}'"))
    })?;
    Ok(Start {
        machine,
        name,
        input_text,
        input,
    })
}

/// StartSyncExecution: runs on the least busy shard and answers AWS's response shape,
/// 200 whatever the status.
pub async fn start_sync(api: &Api, f: Fields) -> Result<Value, ApiError> {
    let s = read_start(api, &f)?;
    let include_data = f.optional_string("includedData")?.as_deref() != Some("METADATA_ONLY");
    let id = new_uuid();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = Job {
        source: Source {
            topic: Arc::clone(&api.sync_source),
            partition: -1,
            offset: -1,
        },
        key: None,
        value: None,
        bound: None,
        header_machine: None,
        header_name: None,
        header_nesting: None,
        sync: Some(Box::new(SyncCall {
            machine: s.machine.clone(),
            name: s.name.clone(),
            id,
            input: s.input,
            reply: tx,
        })),
    };
    api.submit(job)?;
    let done = match rx.await {
        Err(_) => {
            return Err(ApiError::unavailable(
                "the execution was abandoned: stepstream is shutting down",
            ))
        }
        Ok(Err(why)) => {
            return Err(ApiError {
                message: why,
                ..ApiError::no_machine(&state_machine_arn(&s.machine))
            })
        }
        Ok(Ok(done)) => done,
    };
    let ms = (done.stop - done.start).num_milliseconds().max(0) as u64;
    let mut out = Map::new();
    out.insert(
        "executionArn".into(),
        json!(execution_arn(&s.machine, &s.name, &id)),
    );
    out.insert(
        "stateMachineArn".into(),
        json!(state_machine_arn(&s.machine)),
    );
    out.insert("name".into(), json!(s.name));
    out.insert("startDate".into(), json!(epoch_seconds(done.start)));
    out.insert("stopDate".into(), json!(epoch_seconds(done.stop)));
    out.insert("status".into(), json!(done.outcome.status.as_str()));
    if done.outcome.status != Status::Succeeded {
        if let Some(e) = &done.outcome.error {
            out.insert("error".into(), json!(e));
        }
        if let Some(c) = &done.outcome.cause {
            out.insert("cause".into(), json!(c));
        }
    }
    if include_data {
        out.insert("input".into(), json!(s.input_text));
    }
    out.insert("inputDetails".into(), json!({"included": include_data}));
    if let Some(output) = &done.outcome.output {
        if include_data {
            out.insert("output".into(), json!(output.to_string()));
        }
        out.insert("outputDetails".into(), json!({"included": include_data}));
    }
    out.insert(
        "billingDetails".into(),
        // Express executions are billed in 100 ms steps, 100 ms at least.
        json!({"billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": ms.div_ceil(100).max(1) * 100}),
    );
    Ok(Value::Object(out))
}

/// StartExecution: the request goes onto the requests topic (DESIGN.md's envelope, keyed by
/// the execution name, its id in `stepstream-execution-id`), so the result record carries
/// the ARN answered here.
pub async fn start(api: &Api, f: Fields) -> Result<Value, ApiError> {
    let s = read_start(api, &f)?;
    let Some(topic) = &api.requests_topic else {
        return Err(ApiError::unavailable(
            "StartExecution needs an envelope input topic ([[inputs]] without state_machine)",
        ));
    };
    let id = new_uuid();
    let arn = execution_arn(&s.machine, &s.name, &id);
    let envelope = json!({"stateMachine": s.machine, "name": s.name, "input": s.input}).to_string();
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
