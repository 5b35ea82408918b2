//! Decoding one input record into an execution request, or the reason it cannot start.

use std::borrow::Cow;
use std::fmt;

use crate::value::Value;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

pub use crate::express::{check_name, NameRule, MAX_NAME_CHARS};

/// Limits a request must respect before it is parsed.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Largest value in bytes.
    pub max_bytes: usize,
    /// Deepest JSON nesting.
    pub max_depth: usize,
}

/// A request ready to run; its names are borrowed from the record where they can be.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<'a> {
    /// The state machine to run.
    pub state_machine: Cow<'a, str>,
    /// The execution name, if the request gave one.
    pub name: Option<Cow<'a, str>>,
    /// The execution input.
    pub input: Value,
}

/// Why a record cannot start an execution: it goes to the errors topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The error name (`stepstream.InvalidRequest`, `States.DataLimitExceeded`, ...).
    pub error: &'static str,
    /// What is wrong, for a person.
    pub cause: String,
}

/// Error names of dead letters.
pub mod errors {
    pub const INVALID_REQUEST: &str = "stepstream.InvalidRequest";
    pub const UNKNOWN_STATE_MACHINE: &str = "stepstream.UnknownStateMachine";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    pub const INVALID_ENCODING: &str = "stepstream.InvalidEncoding";
    pub const NESTING_TOO_DEEP: &str = "stepstream.NestingTooDeep";
}

fn reject(error: &'static str, cause: impl Into<String>) -> Rejection {
    Rejection {
        error,
        cause: cause.into(),
    }
}

/// Header names that override the envelope.
pub const HEADER_STATE_MACHINE: &str = "stepstream-state-machine";
/// Header carrying the execution name.
pub const HEADER_EXECUTION_NAME: &str = "stepstream-execution-name";

/// Decodes a record value. `bound` is the state machine of a topic bound to one machine
/// (the whole value is then the input); `header_machine`/`header_name` are the raw header
/// values (a header present with a null value is an empty one), checked like names.
pub fn decode<'a>(
    value: Option<&'a [u8]>,
    bound: Option<&'a str>,
    header_machine: Option<&'a [u8]>,
    header_name: Option<&'a [u8]>,
    limits: RequestLimits,
) -> Result<Request<'a>, Rejection> {
    // Headers are checked before the value is parsed: they are cheap, and a bad one is
    // reason enough to reject the record.
    let header_name = header_name
        .map(|h| header_text(h, HEADER_EXECUTION_NAME, "execution name"))
        .transpose()?;
    // A bound topic ignores the machine header, so its value is not read at all.
    let header_machine = match bound {
        Some(_) => None,
        None => header_machine
            .map(|h| header_text(h, HEADER_STATE_MACHINE, "state machine name"))
            .transpose()?,
    };
    let bytes = value.unwrap_or_default();
    if bytes.is_empty() {
        return Err(reject(errors::INVALID_REQUEST, "the record has no value"));
    }
    if bytes.len() > limits.max_bytes {
        return Err(reject(
            errors::DATA_LIMIT_EXCEEDED,
            format!(
                "the request is {} bytes, over the {}-byte limit",
                bytes.len(),
                limits.max_bytes
            ),
        ));
    }
    // The hand reader first, bounded by the depth limit: a request it finishes is within
    // every limit, so the depth pre-scan below is paid only by what it gives up on.
    let fast = simdutf8::basic::from_utf8(bytes)
        .ok()
        .and_then(|text| match bound {
            Some(_) => {
                let mut r = crate::value::Reader::new(text).nesting_at_most(limits.max_depth);
                let input = r.value().filter(|_| r.at_end())?;
                Some(Envelope::input_only(input))
            }
            None => fast_envelope(text, limits.max_depth),
        });
    let mut envelope = match fast {
        Some(e) => e,
        None => slow_envelope(bytes, bound, limits)?,
    };
    if let (Some(machine), Envelope::Object { input, .. }) = (bound, &mut envelope) {
        return Ok(Request {
            state_machine: Cow::Borrowed(machine),
            name: header_name.map(Cow::Borrowed),
            input: input.take().unwrap_or_default(),
        });
    }
    let Envelope::Object {
        state_machine,
        name,
        input,
    } = envelope
    else {
        return Err(reject(
            errors::INVALID_REQUEST,
            "the request must be a JSON object {\"stateMachine\", \"name\", \"input\"}",
        ));
    };
    finish(header_machine, header_name, state_machine, name, input)
}

/// The path for what the hand reader gave up on: the depth pre-scan, then serde_json,
/// whose messages the rejection carries. For a bound topic the envelope holds only the
/// input.
fn slow_envelope<'a>(
    bytes: &'a [u8],
    bound: Option<&'a str>,
    limits: RequestLimits,
) -> Result<Envelope<'a>, Rejection> {
    let depth = max_depth(bytes);
    if depth > limits.max_depth {
        return Err(reject(
            errors::NESTING_TOO_DEEP,
            format!(
                "the request nests {depth} levels deep, over the limit of {}",
                limits.max_depth
            ),
        ));
    }
    // serde_json here, for its messages; neither it nor simd-json is the fast path (on the
    // 1 KB order request, benches/micro.rs `decode/`: serde_json into a Value 5.3 us,
    // simd-json 6.0 us with the copy it needs, the hand reader 3.7 us).
    let parse_error = |e: serde_json::Error| match std::str::from_utf8(bytes) {
        // A parsed document is valid UTF-8, so the encoding is only checked on failure.
        Err(bad) => reject(
            errors::INVALID_ENCODING,
            format!(
                "the request is not valid UTF-8 (invalid byte at offset {})",
                bad.valid_up_to()
            ),
        ),
        Ok(_) => reject(
            errors::INVALID_REQUEST,
            format!("the request is not valid JSON: {e}"),
        ),
    };

    if bound.is_some() {
        return Ok(Envelope::input_only(
            serde_json::from_slice(bytes).map_err(parse_error)?,
        ));
    }
    serde_json::from_slice(bytes).map_err(parse_error)
}

/// Checks the envelope's names (a header wins over the field) and builds the request.
fn finish<'a>(
    header_machine: Option<&'a str>,
    header_name: Option<&'a str>,
    state_machine: Option<Field<'a>>,
    name: Option<Field<'a>>,
    input: Option<Value>,
) -> Result<Request<'a>, Rejection> {
    let state_machine = match (header_machine, state_machine) {
        (Some(h), _) => Cow::Borrowed(h),
        (None, Some(Field::Str(s))) => {
            check_name(&s).map_err(|broken| {
                name_rejection(
                    &s,
                    s.len(),
                    "\"stateMachine\"",
                    "state machine name",
                    broken,
                )
            })?;
            s
        }
        (None, Some(_)) => {
            return Err(reject(
                errors::INVALID_REQUEST,
                "\"stateMachine\" must be a string",
            ))
        }
        (None, None) => {
            return Err(reject(
                errors::INVALID_REQUEST,
                "the request has no \"stateMachine\"",
            ))
        }
    };
    let name = match (header_name, name) {
        (Some(h), _) => Some(Cow::Borrowed(h)),
        (None, None | Some(Field::Null)) => None,
        (None, Some(Field::Str(s))) => {
            check_name(&s).map_err(|broken| {
                name_rejection(&s, s.len(), "\"name\"", "execution name", broken)
            })?;
            Some(s)
        }
        (None, Some(Field::Other)) => {
            return Err(reject(
                errors::INVALID_REQUEST,
                "\"name\" must be a string of 1 to 80 characters",
            ))
        }
    };
    Ok(Request {
        state_machine,
        name,
        input: input.unwrap_or_else(|| Value::Object(Default::default())),
    })
}

/// The envelope read by the hand reader (`value::Reader`), which also reads `input` with
/// its sizes; `None` for anything it does not finish.
fn fast_envelope(text: &str, max_depth: usize) -> Option<Envelope<'_>> {
    let mut r = crate::value::Reader::new(text).nesting_at_most(max_depth);
    let (mut state_machine, mut name, mut input) = (None, None, None);
    fn field<'a>(r: &mut crate::value::Reader<'a>) -> Option<Field<'a>> {
        Some(match r.str_or_value()? {
            Ok(s) => Field::Str(s),
            Err(Value::Null) => Field::Null,
            Err(_) => Field::Other,
        })
    }
    r.object(|key, r| {
        match key {
            "stateMachine" => state_machine = Some(field(r)?),
            "name" => name = Some(field(r)?),
            "input" => input = Some(r.value()?),
            _ => drop(r.value()?),
        }
        Some(())
    })?;
    r.at_end().then_some(Envelope::Object {
        state_machine,
        name,
        input,
    })
}

/// The request envelope as read: only `input` becomes a [`Value`]; the names are borrowed
/// from the request's bytes and every other field is skipped, so no map of the envelope
/// is built. A repeated field keeps its last value, as a parsed object would.
enum Envelope<'a> {
    Object {
        state_machine: Option<Field<'a>>,
        name: Option<Field<'a>>,
        input: Option<Value>,
    },
    /// Valid JSON, but not an object.
    NotObject,
}

impl Envelope<'_> {
    /// A bound topic's request: the whole value is the input.
    fn input_only(input: Value) -> Self {
        Envelope::Object {
            state_machine: None,
            name: None,
            input: Some(input),
        }
    }
}

/// An envelope name field: a string, null, or something else (refused by the caller).
enum Field<'a> {
    Str(Cow<'a, str>),
    Null,
    Other,
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a request envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut state_machine, mut name, mut input) = (None, None, None);
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::StateMachine => state_machine = Some(map.next_value()?),
                Key::Name => name = Some(map.next_value()?),
                Key::Input => input = Some(map.next_value()?),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope::Object {
            state_machine,
            name,
            input,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| Envelope::NotObject)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Envelope::NotObject)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Envelope::NotObject)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Envelope::NotObject)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Envelope::NotObject)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Envelope::NotObject)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Envelope::NotObject)
    }
}

/// The envelope's field names.
enum Key {
    StateMachine,
    Name,
    Input,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "stateMachine" => Key::StateMachine,
                    "name" => Key::Name,
                    "input" => Key::Input,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Field<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| Field::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_map(map).map(|_| Field::Other)
    }
}

/// Where a child execution (started by `states:startExecution`) sits: its nesting depth
/// and the execution id its parent chose (so the ARN the parent returned is the child's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nesting {
    /// 0 for a top-level execution.
    pub depth: u32,
    /// The id the execution ARN ends with; `None`: a fresh one.
    pub execution_id: Option<uuid::Uuid>,
}

/// Reads the raw `stepstream-depth` and `stepstream-execution-id` headers.
pub fn nesting(depth: Option<&[u8]>, execution_id: Option<&[u8]>) -> Result<Nesting, Rejection> {
    use crate::tasks::nested::{HEADER_DEPTH, HEADER_EXECUTION_ID};
    let depth = match depth {
        None => 0,
        Some(raw) => std::str::from_utf8(raw)
            .ok()
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| {
                reject(
                    errors::INVALID_REQUEST,
                    format!("the {HEADER_DEPTH} header is not a whole number"),
                )
            })?,
    };
    let execution_id = match execution_id {
        None => None,
        Some(raw) => Some(
            std::str::from_utf8(raw)
                .ok()
                .and_then(|t| uuid::Uuid::parse_str(t).ok())
                .ok_or_else(|| {
                    reject(
                        errors::INVALID_REQUEST,
                        format!("the {HEADER_EXECUTION_ID} header is not a UUID"),
                    )
                })?,
        ),
    };
    Ok(Nesting {
        depth,
        execution_id,
    })
}

/// How many characters of a bad name a cause quotes: enough to recognise it, never its bulk.
const QUOTED_NAME_CHARS: usize = 32;

/// The start of a bad name, quoted and escaped, for a cause; `bytes` is the whole name's size.
fn quoted_prefix(s: &str, bytes: usize) -> String {
    let prefix: String = s.chars().take(QUOTED_NAME_CHARS).collect();
    if prefix.len() < bytes {
        format!("{prefix:?}... ({bytes} bytes)")
    } else {
        format!("{prefix:?}")
    }
}

fn name_rejection(s: &str, bytes: usize, field: &str, what: &str, broken: NameRule) -> Rejection {
    reject(
        errors::INVALID_REQUEST,
        format!("the {what} in {field} {} {broken}", quoted_prefix(s, bytes)),
    )
}

/// A header value as a valid name, or the rejection saying which rule it breaks.
fn header_text<'a>(raw: &'a [u8], header: &str, what: &str) -> Result<&'a str, Rejection> {
    let field = format!("the {header} header");
    // 80 characters take at most 320 bytes of UTF-8: a longer value is refused without
    // decoding it (it may be as large as the record).
    if raw.len() > MAX_NAME_CHARS * 4 {
        let head = String::from_utf8_lossy(&raw[..QUOTED_NAME_CHARS * 4]);
        return Err(name_rejection(
            &head,
            raw.len(),
            &field,
            what,
            NameRule::TooLong,
        ));
    }
    let text = std::str::from_utf8(raw).map_err(|bad| {
        reject(
            errors::INVALID_REQUEST,
            format!(
                "the {what} in the {header} header is not valid UTF-8 (invalid byte at offset {}, {} bytes)",
                bad.valid_up_to(),
                raw.len()
            ),
        )
    })?;
    check_name(text).map_err(|broken| name_rejection(text, text.len(), &field, what, broken))?;
    Ok(text)
}

/// Deepest nesting of arrays and objects, found by a byte scan that skips strings.
///
/// Every request pays this pass before it is parsed, so it jumps with `memchr` instead of
/// stepping byte by byte: outside strings to the next quote or opening bracket (the
/// closing brackets skipped on the way lower the depth; they cannot raise the maximum),
/// inside strings to the next quote or backslash.
pub fn max_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while let Some(off) = memchr::memchr3(b'"', b'[', b'{', &bytes[i..]) {
        let closes = bytes[i..i + off]
            .iter()
            .filter(|&&b| b == b']' || b == b'}')
            .count();
        depth = depth.saturating_sub(closes);
        let at = i + off;
        i = at + 1;
        if bytes[at] != b'"' {
            depth += 1;
            max = max.max(depth);
            continue;
        }
        // Inside a string: nothing counts until its closing quote.
        loop {
            let Some(o) = bytes
                .get(i..)
                .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
            else {
                // An unterminated string: the rest cannot nest deeper.
                return max;
            };
            let esc = bytes[i + o] == b'\\';
            i += o + if esc { 2 } else { 1 };
            if !esc {
                break;
            }
        }
        if i >= bytes.len() {
            break;
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    const LIMITS: RequestLimits = RequestLimits {
        max_bytes: 1024,
        max_depth: 8,
    };

    fn err(v: &[u8]) -> &'static str {
        decode(Some(v), None, None, None, LIMITS).unwrap_err().error
    }

    #[test]
    fn envelope_is_decoded() {
        let r = decode(
            Some(br#"{"stateMachine":"m","name":"n","input":{"a":1}}"#),
            None,
            None,
            None,
            LIMITS,
        )
        .unwrap();
        assert_eq!(
            r,
            Request {
                state_machine: "m".into(),
                name: Some("n".into()),
                input: json!({"a": 1})
            }
        );
    }

    #[test]
    fn bound_topic_takes_the_whole_value_as_input() {
        let r = decode(Some(b"[1,2]"), Some("m"), None, None, LIMITS).unwrap();
        assert_eq!((&*r.state_machine, r.input), ("m", json!([1, 2])));
    }

    #[test]
    fn headers_override_the_envelope() {
        let r = decode(
            Some(br#"{"stateMachine":"m","input":1}"#),
            None,
            Some(b"h"),
            Some(b"x"),
            LIMITS,
        )
        .unwrap();
        assert_eq!((&*r.state_machine, r.name.as_deref()), ("h", Some("x")));
    }

    #[test]
    fn every_class_of_bad_input_is_named() {
        assert_eq!(err(b""), errors::INVALID_REQUEST);
        assert_eq!(err(b"{nope"), errors::INVALID_REQUEST);
        assert_eq!(err(b"[1]"), errors::INVALID_REQUEST);
        assert_eq!(err(br#"{"input":{}}"#), errors::INVALID_REQUEST);
        assert_eq!(err(&[b'"', 0xff, b'"']), errors::INVALID_ENCODING);
        assert_eq!(err(&[b' '; 2048]), errors::DATA_LIMIT_EXCEEDED);
        assert_eq!(err(b"[[[[[[[[[[]]]]]]]]]]"), errors::NESTING_TOO_DEEP);
    }

    // The hand reader finishing a request stands in for the depth pre-scan, so it must
    // stop at the same limit, counted the same way (the envelope is a level).
    #[test]
    fn the_depth_limit_holds_on_the_fast_path() {
        let nest = |levels: usize| "[".repeat(levels) + &"]".repeat(levels);
        for levels in [7, 8, 9, 40] {
            let envelope = format!(r#"{{"stateMachine":"m","input":{}}}"#, nest(levels - 1));
            let bound = nest(levels);
            assert_eq!(max_depth(envelope.as_bytes()), levels);
            for got in [
                decode(Some(envelope.as_bytes()), None, None, None, LIMITS),
                decode(Some(bound.as_bytes()), Some("m"), None, None, LIMITS),
            ] {
                match got {
                    Ok(_) => assert!(levels <= LIMITS.max_depth, "{levels} levels passed"),
                    Err(e) => {
                        assert!(levels > LIMITS.max_depth, "{levels} levels refused");
                        assert_eq!(e.error, errors::NESTING_TOO_DEEP);
                    }
                }
            }
        }
    }

    // The envelope is read field by field, not as a map: it must read what a parsed object
    // says, and refuse what it refuses, with the same causes.
    #[test]
    fn the_envelope_reads_like_a_parsed_object() {
        fn ok(v: &[u8]) -> Request<'_> {
            decode(Some(v), None, None, None, LIMITS).unwrap()
        }
        let r = ok(br#"{"x":[{"stateMachine":1}],"stateMachine":"a","name":null,"stateMachine":"b","input":[1,{"y":2}]}"#);
        assert_eq!(
            (&*r.state_machine, r.name, r.input),
            ("b", None, json!([1, {"y": 2}]))
        );
        let r = ok(br#"{"stateMachine":"m\u00e9","name":"n\u0041","input":null}"#);
        assert_eq!(
            (&*r.state_machine, r.name.as_deref(), r.input),
            ("mé", Some("nA"), Value::Null)
        );
        assert!(matches!(r.state_machine, Cow::Owned(_)));
        let r = ok(br#"{"stateMachine":"m"}"#);
        assert!(matches!(r.state_machine, Cow::Borrowed("m")));
        assert_eq!(r.input, json!({}));
        let cause = |v: &[u8]| rejected(v, None, None).cause;
        for not_object in [&b"[]"[..], b"\"s\"", b"1", b"-1.5", b"true", b"null"] {
            assert!(cause(not_object).contains("must be a JSON object"));
        }
        assert_eq!(
            cause(br#"{"stateMachine":null}"#),
            "\"stateMachine\" must be a string"
        );
        assert_eq!(
            cause(br#"{"stateMachine":"m","name":{"a":1}}"#),
            "\"name\" must be a string of 1 to 80 characters"
        );
        assert!(cause(br#"{"stateMachine":"m","other":[1,}"#)
            .starts_with("the request is not valid JSON"));
        assert!(cause(br#"{"stateMachine":"m"} x"#).starts_with("the request is not valid JSON"));
    }

    #[test]
    fn brackets_inside_strings_do_not_count_as_nesting() {
        assert_eq!(max_depth(br#"{"a":"[[[[{{{{\"[[["}"#), 1);
        assert_eq!(max_depth(br#"[[]]]]]]{"#), 2);
        assert_eq!(max_depth(br#"["a\\"], [[["#), 3);
        assert_eq!(max_depth(br#"["unterminated [[[ \"#), 1);
        assert_eq!(max_depth(b""), 0);
    }

    /// The byte-at-a-time scan the fast one replaced, as the reference.
    fn max_depth_by_byte(bytes: &[u8]) -> usize {
        let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
        for &b in bytes {
            if in_str {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'[' | b'{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        max
    }

    #[test]
    fn the_fast_depth_scan_agrees_with_the_byte_scan() {
        // Random strings over the bytes that matter (and a filler), so escapes, quotes and
        // brackets meet in every order, including at the very end.
        let alphabet = br#"[]{}"\a, "#;
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..200 {
            for _ in 0..200 {
                let text: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        alphabet[(seed % alphabet.len() as u64) as usize]
                    })
                    .collect();
                assert_eq!(
                    max_depth(&text),
                    max_depth_by_byte(&text),
                    "{:?}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
    }

    fn rejected(value: &[u8], machine: Option<&[u8]>, name: Option<&[u8]>) -> Rejection {
        decode(Some(value), None, machine, name, LIMITS).unwrap_err()
    }

    fn envelope_name(name: &str) -> Rejection {
        let v = json!({"stateMachine": "m", "name": name, "input": {}}).to_string();
        decode(
            Some(v.as_bytes()),
            None,
            None,
            None,
            RequestLimits {
                max_bytes: 1 << 20,
                max_depth: 8,
            },
        )
        .unwrap_err()
    }

    #[test]
    fn envelope_names_breaking_a_rule_are_refused_with_the_rule() {
        let r = envelope_name("has space");
        assert_eq!(r.error, errors::INVALID_REQUEST);
        assert!(r.cause.contains("whitespace"), "{}", r.cause);
        assert!(r.cause.contains("\"has space\""), "{}", r.cause);
        let r = envelope_name("star*");
        assert!(r.cause.contains("'*'"), "{}", r.cause);
        let r = envelope_name("");
        assert!(r.cause.contains("empty"), "{}", r.cause);
        let r = envelope_name("bell\u{7}");
        assert!(r.cause.contains("U+0007"), "{}", r.cause);
    }

    #[test]
    fn a_cause_quotes_only_the_start_of_a_long_name() {
        let r = envelope_name(&"x".repeat(10_000));
        assert!(
            r.cause
                .contains(&format!("{:?}... (10000 bytes)", "x".repeat(32))),
            "{}",
            r.cause
        );
        assert!(r.cause.contains("longer than 80"), "{}", r.cause);
        assert!(r.cause.len() < 300, "{}", r.cause);
    }

    #[test]
    fn envelope_state_machine_names_follow_the_same_rules() {
        let r = rejected(br#"{"stateMachine":"a/b","input":{}}"#, None, None);
        assert_eq!(r.error, errors::INVALID_REQUEST);
        assert!(r.cause.contains("state machine name"), "{}", r.cause);
        let r = rejected(br#"{"stateMachine":"","input":{}}"#, None, None);
        assert!(r.cause.contains("empty"), "{}", r.cause);
        let r = rejected(br#"{"stateMachine":7,"input":{}}"#, None, None);
        assert!(r.cause.contains("must be a string"), "{}", r.cause);
    }

    #[test]
    fn nesting_headers_are_a_depth_and_a_uuid_or_the_request_is_refused() {
        assert_eq!(nesting(None, None), Ok(Nesting::default()));
        let id = "6f1c2e0a-1b2c-4d5e-8f90-123456789abc";
        let n = nesting(Some(b"3"), Some(id.as_bytes())).unwrap();
        assert_eq!(
            (n.depth, n.execution_id.unwrap().to_string()),
            (3, id.to_string())
        );
        for (d, i) in [
            (Some(&b"-1"[..]), None),
            (Some(b"x"), None),
            (None, Some(&b"nope"[..])),
        ] {
            let r = nesting(d, i).unwrap_err();
            assert_eq!(r.error, errors::INVALID_REQUEST, "{}", r.cause);
        }
    }

    #[test]
    fn header_names_are_checked_like_envelope_names() {
        let ok = br#"{"stateMachine":"m","input":{}}"#;
        let long = vec![b'n'; 10_000];
        let r = rejected(ok, None, Some(&long));
        assert!(r.cause.contains(HEADER_EXECUTION_NAME), "{}", r.cause);
        assert!(
            r.cause.contains("longer than 80") && r.cause.contains("10000 bytes"),
            "{}",
            r.cause
        );
        assert!(r.cause.len() < 400, "{}", r.cause);
        assert!(rejected(ok, None, Some(b"")).cause.contains("empty"));
        assert!(rejected(ok, None, Some(b"a\0b")).cause.contains("U+0000"));
        assert!(rejected(ok, None, Some(b"a\x1bb"))
            .cause
            .contains("control"));
        assert!(rejected(ok, None, Some(b"a b"))
            .cause
            .contains("whitespace"));
        let r = rejected(ok, None, Some(&[b'a', 0xff]));
        assert!(r.cause.contains("not valid UTF-8"), "{}", r.cause);
        let r = rejected(ok, Some(b"m m"), None);
        assert!(r.cause.contains(HEADER_STATE_MACHINE), "{}", r.cause);
        let r = rejected(ok, Some(&[0xc3]), None);
        assert!(r.cause.contains("not valid UTF-8"), "{}", r.cause);
    }

    #[test]
    fn a_bound_topic_checks_the_name_header_and_ignores_the_machine_header() {
        let r = decode(
            Some(b"{}"),
            Some("m"),
            Some(b"any thing*"),
            Some(b"fine"),
            LIMITS,
        )
        .unwrap();
        assert_eq!((&*r.state_machine, r.name.as_deref()), ("m", Some("fine")));
        let e = decode(Some(b"{}"), Some("m"), None, Some(b"not fine"), LIMITS).unwrap_err();
        assert_eq!(e.error, errors::INVALID_REQUEST);
    }
}
