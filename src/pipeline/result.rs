//! The records stepstream writes: one result per execution, one dead letter per bad request.

use std::sync::Arc;

use crate::json;
use crate::value::Value;
use base64::Engine as _;
use chrono::{DateTime, Utc};

use crate::exec::Outcome;
use crate::expr::context::timestamp;

/// Where a request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Input topic (shared: the poller keeps one per topic, not one per record).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

impl Source {
    fn to_json(&self) -> Value {
        json!({"topic": &*self.topic, "partition": self.partition, "offset": self.offset})
    }
}

pub use crate::express::{execution_arn, state_machine_arn, Execution, ARN_PREFIX};

/// A fresh random (version 4) UUID from the thread's generator: a ChaCha stream seeded
/// from the OS once per thread, where `Uuid::new_v4` asks the OS for every id (a syscall).
pub fn new_uuid() -> uuid::Uuid {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The result record, modelled on `StartSyncExecution`'s response, written into `out`
/// (cleared first).
///
/// Written by hand from borrowed parts, in serde_json's format: the output goes straight
/// from the value into `out`, the ARNs and dates never exist as Strings of their own, and
/// `out` is the shard's reused buffer, so a record allocates nothing once the buffer has grown.
pub fn write_result_record(
    out: &mut Vec<u8>,
    execution: &Execution<'_>,
    outcome: &Outcome,
    start: DateTime<Utc>,
    stop: DateTime<Utc>,
    source: &Source,
) {
    let ms = (stop - start).num_milliseconds().max(0) as u64;
    // Express executions are billed in 100 ms steps, 100 ms at least.
    let billed = ms.div_ceil(100).max(1) * 100;
    out.clear();
    out.extend_from_slice(b"{\"executionArn\":\"");
    out.extend_from_slice(ARN_PREFIX.as_bytes());
    out.extend_from_slice(b"express:");
    crate::value::escape_str_into(out, execution.machine);
    out.push(b':');
    crate::value::escape_str_into(out, execution.name);
    out.push(b':');
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.extend_from_slice(execution.id.hyphenated().encode_lower(&mut id).as_bytes());
    out.extend_from_slice(b"\",\"stateMachineArn\":\"");
    out.extend_from_slice(ARN_PREFIX.as_bytes());
    out.extend_from_slice(b"stateMachine:");
    crate::value::escape_str_into(out, execution.machine);
    out.extend_from_slice(b"\",\"name\":\"");
    crate::value::escape_str_into(out, execution.name);
    out.extend_from_slice(b"\",\"status\":\"");
    out.extend_from_slice(outcome.status.as_str().as_bytes());
    out.extend_from_slice(b"\",\"startDate\":\"");
    write_timestamp(out, start);
    out.extend_from_slice(b"\",\"stopDate\":\"");
    write_timestamp(out, stop);
    out.extend_from_slice(b"\",\"output\":");
    // The value's own writer (same bytes as serde_json's, written straight into `out`).
    match &outcome.output {
        Some(v) => {
            // One allocation for the output when its size is known (it usually is: the
            // payload check counted it), and room for the fields after it.
            if let Some(n) = crate::value::known_len(v) {
                out.reserve(n + 256);
            }
            crate::value::to_writer(out, v)
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"error\":");
    write_json(out, &outcome.error);
    out.extend_from_slice(b",\"cause\":");
    write_json(out, &outcome.cause);
    out.extend_from_slice(b",\"billingDetails\":{\"billedDurationInMilliseconds\":");
    write_json(out, &billed);
    out.extend_from_slice(b",\"billedMemoryUsedInMB\":64},\"source\":{\"topic\":");
    write_json(out, &*source.topic);
    out.extend_from_slice(b",\"partition\":");
    write_json(out, &source.partition);
    out.extend_from_slice(b",\"offset\":");
    write_json(out, &source.offset);
    out.extend_from_slice(b"}}");
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    serde_json::to_writer(out, v).expect("a JSON value always serializes into memory");
}

/// Appends `t` as RFC 3339 with milliseconds and a `Z` (`2026-11-21T10:00:00.123Z`), the
/// same text as [`timestamp`] without building a String.
pub fn write_timestamp(out: &mut Vec<u8>, t: DateTime<Utc>) {
    use chrono::{Datelike as _, Timelike as _};
    let year = t.year();
    // Years chrono writes with a sign, and leap seconds, are left to chrono.
    if !(0..=9999).contains(&year) || t.nanosecond() >= 1_000_000_000 {
        out.extend_from_slice(timestamp(t).as_bytes());
        return;
    }
    let mut text = *b"0000-00-00T00:00:00.000Z";
    let mut digits = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            text[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    digits(0, 4, year as u32);
    digits(5, 2, t.month());
    digits(8, 2, t.day());
    digits(11, 2, t.hour());
    digits(14, 2, t.minute());
    digits(17, 2, t.second());
    digits(20, 3, t.nanosecond() / 1_000_000);
    out.extend_from_slice(&text);
}

pub use crate::config::DEAD_LETTER_ENVELOPE_BYTES;

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
    let mut m = crate::value::Map::new();
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

    fn record(
        e: &Execution<'_>,
        o: &Outcome,
        start: DateTime<Utc>,
        stop: DateTime<Utc>,
    ) -> Vec<u8> {
        let mut out = b"left over from the previous record".to_vec();
        write_result_record(&mut out, e, o, start, stop, &src());
        out
    }

    #[test]
    fn result_has_the_start_sync_execution_shape() {
        let o = Outcome {
            status: Status::Succeeded,
            output: Some(json!({"ok": true})),
            error: None,
            cause: None,
        };
        let t = Utc::now();
        let id = new_uuid();
        let e = Execution {
            machine: "m",
            name: "n",
            id: &id,
        };
        let r: Value = serde_json::from_slice(&record(&e, &o, t, t)).unwrap();
        assert_eq!(r["executionArn"], e.arn());
        assert_eq!(r["stateMachineArn"], state_machine_arn("m"));
        assert_eq!(r["status"], "SUCCEEDED");
        assert_eq!(r["output"], json!({"ok": true}));
        assert_eq!(r["error"], Value::Null);
        assert_eq!(r["billingDetails"]["billedDurationInMilliseconds"], 100);
        assert_eq!(
            r["source"],
            json!({"topic": "in", "partition": 0, "offset": 7})
        );
    }

    /// The record as serde_json writes it from a struct of its fields (what the hand
    /// writer replaced): the two must agree byte for byte.
    fn serde_record(
        e: &Execution<'_>,
        o: &Outcome,
        start: DateTime<Utc>,
        stop: DateTime<Utc>,
    ) -> Vec<u8> {
        let ms = (stop - start).num_milliseconds().max(0) as u64;
        serde_json::to_vec(&json!({
            "executionArn": e.arn(),
            "stateMachineArn": state_machine_arn(e.machine),
            "name": e.name,
            "status": o.status.as_str(),
            "startDate": timestamp(start),
            "stopDate": timestamp(stop),
            "output": o.output,
            "error": o.error,
            "cause": o.cause,
            "billingDetails": {
                "billedDurationInMilliseconds": ms.div_ceil(100).max(1) * 100,
                "billedMemoryUsedInMB": 64,
            },
            "source": src().to_json(),
        }))
        .unwrap()
    }

    #[test]
    fn result_bytes_are_what_serde_json_writes() {
        let id = new_uuid();
        let start = Utc::now();
        let outcomes = [
            Outcome {
                status: Status::Succeeded,
                output: Some(json!({"z": [1, 2.5, "\u{1}\"\\ é"], "a": null})),
                error: None,
                cause: None,
            },
            Outcome {
                status: Status::Failed,
                output: None,
                error: Some("States.TaskFailed".into()),
                cause: Some("line\nbreak \"quoted\" \u{7f} \u{1f}".into()),
            },
        ];
        let names = [
            "order-12345",
            "quo\"te\\back\u{0}\u{8}\u{c}\n\r\t\u{1b}",
            "ünï-ç😀",
        ];
        for (i, o) in outcomes.iter().enumerate() {
            for name in names {
                let e = Execution {
                    machine: name,
                    name,
                    id: &id,
                };
                let stop = start + chrono::Duration::milliseconds(250 * i as i64 + 1);
                assert_eq!(
                    String::from_utf8(record(&e, o, start, stop)).unwrap(),
                    String::from_utf8(serde_record(&e, o, start, stop)).unwrap()
                );
            }
        }
    }

    #[test]
    fn escaping_matches_serde_json_for_every_ascii_character() {
        for c in (0u8..128).map(char::from).chain(['é', '\u{2028}', '😀']) {
            let s = format!("a{c}b");
            let mut ours = vec![b'"'];
            crate::value::escape_str_into(&mut ours, &s);
            ours.push(b'"');
            assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "{c:?}");
        }
    }

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut cases: Vec<i64> = vec![0, 999, 1_000, -1, 253_402_300_799_999, -62_167_219_200_000];
        for _ in 0..10_000 {
            // xorshift: spread over the years 0 to 9999 and beyond, both signs.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            cases.push((seed % 600_000_000_000_000) as i64 - 200_000_000_000_000);
        }
        for ms in cases {
            let Some(t) = DateTime::<Utc>::from_timestamp_millis(ms) else {
                continue;
            };
            // Sub-millisecond parts are cut, not rounded, by both.
            let t = t + chrono::Duration::nanoseconds(999_999);
            let mut out = Vec::new();
            write_timestamp(&mut out, t);
            assert_eq!(String::from_utf8(out).unwrap(), timestamp(t), "{ms}");
        }
    }

    #[test]
    fn uuids_are_random_version_4() {
        let a = new_uuid();
        let b = new_uuid();
        assert_ne!(a, b);
        for u in [a, b] {
            assert_eq!(u.get_version(), Some(uuid::Version::Random));
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        }
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
