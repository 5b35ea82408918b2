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

/// Bytes a dead letter takes besides its `original`/`originalBase64` text: error, cause
/// (cut to fit), source, sizes, digest, field names and the few extra fields of a refused
/// output. `[output] dead_letter_max_original_bytes` plus this stays under the producer's limit.
pub const DEAD_LETTER_ENVELOPE_BYTES: usize = 4096;

/// Longest cause (and extra field) a dead letter carries, in bytes of JSON text.
const MAX_CAUSE_BYTES: usize = 1024;
/// Longest extra field value, in bytes of JSON text.
const MAX_EXTRA_BYTES: usize = 512;

/// The dead-letter record for a request that could not start. `original` is the request's
/// value; at most `max_original` bytes of it (as JSON text) are carried.
pub fn dead_letter(
    error: &str,
    cause: &str,
    source: &Source,
    original: Option<&[u8]>,
    max_original: usize,
) -> Vec<u8> {
    dead_letter_with(error, cause, source, original, max_original, &[])
}

/// [`dead_letter`] with extra string fields (each cut short), e.g. the topic and the Kafka
/// error of an output the broker refused.
///
/// The original appears once: as `original` text when it is valid UTF-8, else as
/// `originalBase64`; cut so that its JSON text takes at most `max_original` bytes
/// (`originalTruncated` says so), with `originalSize` and `originalSha256` of the whole.
pub fn dead_letter_with(
    error: &str,
    cause: &str,
    source: &Source,
    original: Option<&[u8]>,
    max_original: usize,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    use sha2::Digest as _;
    let bytes = original.unwrap_or_default();
    let mut m = serde_json::Map::new();
    m.insert(
        "error".into(),
        Value::from(json_prefix(error, MAX_EXTRA_BYTES)),
    );
    m.insert("cause".into(), Value::from(cut(cause, MAX_CAUSE_BYTES)));
    m.insert("source".into(), source.to_json());
    for (k, v) in extra {
        m.insert((*k).into(), Value::from(cut(v, MAX_EXTRA_BYTES)));
    }
    let truncated = match std::str::from_utf8(bytes) {
        Ok(text) => {
            let kept = json_prefix(text, max_original);
            m.insert("original".into(), Value::from(kept));
            kept.len() < text.len()
        }
        Err(_) => {
            // base64 turns 3 bytes into 4 characters (none of them escaped in JSON).
            let kept = &bytes[..bytes.len().min(max_original / 4 * 3)];
            m.insert(
                "originalBase64".into(),
                Value::from(base64::engine::general_purpose::STANDARD.encode(kept)),
            );
            kept.len() < bytes.len()
        }
    };
    m.insert("originalTruncated".into(), Value::from(truncated));
    m.insert("originalSize".into(), Value::from(bytes.len()));
    let digest = sha2::Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    m.insert("originalSha256".into(), Value::from(hex));
    serde_json::to_vec(&Value::Object(m)).expect("a JSON value always serializes")
}

/// `s` cut to `budget` bytes of JSON text, marked with `...` when cut.
fn cut(s: &str, budget: usize) -> String {
    let kept = json_prefix(s, budget.saturating_sub(3));
    if kept.len() == s.len() {
        s.to_string()
    } else {
        format!("{kept}...")
    }
}

/// The longest prefix of `s` whose escaped JSON string text (without the quotes) takes at
/// most `budget` bytes: a control character costs 6 bytes (`\u0001`), so counting raw
/// bytes would let 64 KiB of them become 384 KiB.
pub fn json_prefix(s: &str, budget: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        // The escapes serde_json writes.
        let n = match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if used + n > budget {
            return &s[..i];
        }
        used += n;
    }
    s
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

    fn src() -> Source {
        Source {
            topic: "in".into(),
            partition: 0,
            offset: 7,
        }
    }

    fn letter(original: &[u8], cap: usize) -> (Vec<u8>, Value) {
        let bytes = dead_letter("E", "C", &src(), Some(original), cap);
        let v = serde_json::from_slice(&bytes).unwrap();
        (bytes, v)
    }

    #[test]
    fn dead_letter_carries_invalid_utf8_once_as_base64() {
        let (_, r) = letter(&[0xff, 0x01], 1024);
        assert_eq!(r["originalBase64"], "/wE=");
        assert!(r.get("original").is_none());
        assert_eq!(r["originalTruncated"], false);
        assert_eq!(r["originalSize"], 2);
    }

    #[test]
    fn dead_letter_carries_text_once_as_text() {
        let (_, r) = letter(b"{\"a\":1}", 1024);
        assert_eq!(r["original"], "{\"a\":1}");
        assert!(r.get("originalBase64").is_none());
        assert_eq!(
            r["originalSha256"],
            "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
        );
    }

    #[test]
    fn dead_letter_original_is_cut_to_the_cap_with_size_and_digest_of_the_whole() {
        let big = vec![b'x'; 450 * 1024];
        let (bytes, r) = letter(&big, 64 * 1024);
        assert_eq!(r["original"].as_str().unwrap().len(), 64 * 1024);
        assert_eq!(r["originalTruncated"], true);
        assert_eq!(r["originalSize"], 450 * 1024);
        assert_eq!(r["originalSha256"].as_str().unwrap().len(), 64);
        assert!(bytes.len() <= 64 * 1024 + DEAD_LETTER_ENVELOPE_BYTES);
    }

    #[test]
    fn dead_letter_cap_counts_escaped_control_characters() {
        let controls = vec![0x01u8; 200 * 1024];
        let (bytes, r) = letter(&controls, 64 * 1024);
        assert_eq!(r["original"].as_str().unwrap().len(), 64 * 1024 / 6);
        assert!(bytes.len() <= 64 * 1024 + DEAD_LETTER_ENVELOPE_BYTES);
    }

    #[test]
    fn dead_letter_cap_counts_base64_expansion() {
        let bad = vec![0xffu8; 300 * 1024];
        let (bytes, r) = letter(&bad, 64 * 1024);
        assert_eq!(r["originalBase64"].as_str().unwrap().len(), 64 * 1024);
        assert_eq!(r["originalTruncated"], true);
        assert!(bytes.len() <= 64 * 1024 + DEAD_LETTER_ENVELOPE_BYTES);
    }

    #[test]
    fn dead_letter_text_is_never_cut_inside_a_character() {
        assert_eq!(json_prefix("ééé", 5), "éé");
        assert_eq!(json_prefix("a\"b", 2), "a");
    }

    #[test]
    fn dead_letter_cause_and_extras_are_cut() {
        let long = "c".repeat(100_000);
        let bytes = dead_letter_with("E", &long, &src(), None, 0, &[("x", &long)]);
        assert!(bytes.len() <= DEAD_LETTER_ENVELOPE_BYTES);
        let r: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(r["cause"].as_str().unwrap().ends_with("..."));
        assert_eq!(r["originalSize"], 0);
    }
}
