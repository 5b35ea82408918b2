//! The records stepstream writes: one result per execution, one dead letter per bad request.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::exec::{context::timestamp, Outcome};

/// Where a request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Input topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

impl Source {
    fn to_json(&self) -> Value {
        json!({"topic": self.topic, "partition": self.partition, "offset": self.offset})
    }
}

/// ARN of a state machine, in the shape AWS uses.
pub fn state_machine_arn(machine: &str) -> String {
    format!("arn:aws:states:local:000000000000:stateMachine:{machine}")
}

/// ARN of an Express execution, in the shape AWS uses.
pub fn execution_arn(machine: &str, name: &str, id: &uuid::Uuid) -> String {
    format!("arn:aws:states:local:000000000000:express:{machine}:{name}:{id}")
}

/// The result record, modelled on `StartSyncExecution`'s response.
pub fn result_record(
    machine: &str,
    name: &str,
    execution_arn: &str,
    outcome: &Outcome,
    start: DateTime<Utc>,
    stop: DateTime<Utc>,
    source: &Source,
) -> Vec<u8> {
    let ms = (stop - start).num_milliseconds().max(0) as u64;
    // Express executions are billed in 100 ms steps, 100 ms at least.
    let billed = ms.div_ceil(100).max(1) * 100;
    // Serialized from borrowed fields: building a `json!` value would copy the whole output.
    let record = ResultRecord {
        execution_arn,
        state_machine_arn: &state_machine_arn(machine),
        name,
        status: outcome.status.as_str(),
        start_date: &timestamp(start),
        stop_date: &timestamp(stop),
        output: &outcome.output,
        error: &outcome.error,
        cause: &outcome.cause,
        billing_details: Billing {
            billed_duration_in_milliseconds: billed,
            billed_memory_used_in_mb: 64,
        },
        source: SourceRef {
            topic: &source.topic,
            partition: source.partition,
            offset: source.offset,
        },
    };
    let mut out = Vec::with_capacity(512);
    serde_json::to_writer(&mut out, &record).expect("a result record always serializes");
    out
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultRecord<'a> {
    execution_arn: &'a str,
    state_machine_arn: &'a str,
    name: &'a str,
    status: &'a str,
    start_date: &'a str,
    stop_date: &'a str,
    output: &'a Option<serde_json::Value>,
    error: &'a Option<String>,
    cause: &'a Option<String>,
    billing_details: Billing,
    source: SourceRef<'a>,
}

#[derive(serde::Serialize)]
struct Billing {
    #[serde(rename = "billedDurationInMilliseconds")]
    billed_duration_in_milliseconds: u64,
    #[serde(rename = "billedMemoryUsedInMB")]
    billed_memory_used_in_mb: u32,
}

#[derive(serde::Serialize)]
struct SourceRef<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
}

/// The dead-letter record for a request that could not start.
pub fn dead_letter(error: &str, cause: &str, source: &Source, original: Option<&[u8]>) -> Vec<u8> {
    let bytes = original.unwrap_or_default();
    let v = json!({
        "error": error,
        "cause": cause,
        "source": source.to_json(),
        "original": std::str::from_utf8(bytes).ok(),
        "originalBase64": base64::engine::general_purpose::STANDARD.encode(bytes),
    });
    serde_json::to_vec(&v).expect("a JSON value always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Status;

    #[test]
    fn result_has_the_start_sync_execution_shape() {
        let o = Outcome {
            status: Status::Succeeded,
            output: Some(json!({"ok": true})),
            error: None,
            cause: None,
        };
        let t = Utc::now();
        let src = Source {
            topic: "in".into(),
            partition: 3,
            offset: 1042,
        };
        let r: Value =
            serde_json::from_slice(&result_record("m", "n", "arn:x", &o, t, t, &src)).unwrap();
        assert_eq!(r["status"], "SUCCEEDED");
        assert_eq!(r["output"], json!({"ok": true}));
        assert_eq!(r["billingDetails"]["billedDurationInMilliseconds"], 100);
        assert_eq!(
            r["source"],
            json!({"topic": "in", "partition": 3, "offset": 1042})
        );
    }

    #[test]
    fn dead_letter_keeps_the_original_bytes() {
        let src = Source {
            topic: "in".into(),
            partition: 0,
            offset: 7,
        };
        let r: Value =
            serde_json::from_slice(&dead_letter("E", "C", &src, Some(&[0xff, 0x01]))).unwrap();
        assert_eq!(r["original"], Value::Null);
        assert_eq!(r["originalBase64"], "/wE=");
    }
}
