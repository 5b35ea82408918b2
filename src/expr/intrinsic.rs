//! Intrinsic functions (`States.Format('Hello {}', $.name)` and the rest): parsed once
//! into a tree of calls, evaluated per state.
//!
//! A payload template value whose key ends in `.$` and that [`is_intrinsic`] accepts is
//! compiled with [`Intrinsic::parse`]. Everything that can be checked from the text alone
//! (function names, argument counts, a literal Format template against its values) fails
//! there; what depends on the data fails in [`Intrinsic::eval`] as `States.IntrinsicFailure`,
//! or as `States.Runtime` when a JSONPath argument is not there, as AWS does.
//!
//! Behaviours taken from executions recorded on AWS (see the conformance test below):
//! `States.Format` renders objects as `{key=value, ...}` and arrays as `[a, b]` (Java's
//! `toString`), `States.MathAdd` rounds its arguments half up (Java's `Math.round`),
//! `States.StringSplit` splits on any of the delimiter characters and drops empty parts,
//! `States.ArrayRange` includes its end, and `States.StringToJson` of a blank string is null.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hash, Hasher};

use crate::value::{Map, Str, Value};
use base64::Engine as _;

use super::path::Path;
use super::{kind_of, Env};
use crate::error::WorkflowError;

/// AWS allows up to 10 nested intrinsic functions in a field; deeper nesting is rejected,
/// which also keeps parsing and evaluation recursion bounded.
const MAX_NESTING: usize = 10;

/// AWS's limit on the array `States.ArrayRange` may produce.
const MAX_RANGE_ITEMS: i64 = 1000;

/// AWS's limit on the input of `States.Base64Encode`, `States.Base64Decode` and `States.Hash`.
const MAX_INPUT_CHARS: usize = 10_000;

/// A parsed intrinsic function call such as `States.Format('Hello {}', $.name)`.
#[derive(Debug, Clone)]
pub struct Intrinsic {
    root: Call,
}

impl Intrinsic {
    /// Parses once at compile time. Error string says what is wrong and where (offset).
    pub fn parse(text: &str) -> Result<Intrinsic, String> {
        let mut p = Parser { text, i: 0 };
        p.skip_ws();
        let root = p.call(1)?;
        p.skip_ws();
        if p.i < text.len() {
            return Err(format!(
                "unexpected {:?} after the closing ')' at offset {}",
                &text[p.i..],
                p.i
            ));
        }
        Ok(Intrinsic { root })
    }

    /// Evaluates against the state's data. Errors are ASL workflow errors.
    pub fn eval(&self, env: &Env) -> Result<Value, WorkflowError> {
        self.root.eval(env)
    }

    /// The outermost function's name, such as `States.Format`, for diagnostics.
    pub fn name(&self) -> &'static str {
        self.root.func.name()
    }
}

/// True if a string value in a payload template is an intrinsic call (starts with `States.` followed by a name and `(`).
pub fn is_intrinsic(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("States.") else {
        return false;
    };
    let name_len = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
    name_len > 0 && rest.as_bytes().get(name_len) == Some(&b'(')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

impl Func {
    const ALL: [Func; 18] = [
        Func::Format,
        Func::StringToJson,
        Func::JsonToString,
        Func::Array,
        Func::ArrayPartition,
        Func::ArrayContains,
        Func::ArrayRange,
        Func::ArrayGetItem,
        Func::ArrayLength,
        Func::ArrayUnique,
        Func::Base64Encode,
        Func::Base64Decode,
        Func::Hash,
        Func::JsonMerge,
        Func::MathRandom,
        Func::MathAdd,
        Func::StringSplit,
        Func::Uuid,
    ];

    fn name(self) -> &'static str {
        match self {
            Func::Format => "States.Format",
            Func::StringToJson => "States.StringToJson",
            Func::JsonToString => "States.JsonToString",
            Func::Array => "States.Array",
            Func::ArrayPartition => "States.ArrayPartition",
            Func::ArrayContains => "States.ArrayContains",
            Func::ArrayRange => "States.ArrayRange",
            Func::ArrayGetItem => "States.ArrayGetItem",
            Func::ArrayLength => "States.ArrayLength",
            Func::ArrayUnique => "States.ArrayUnique",
            Func::Base64Encode => "States.Base64Encode",
            Func::Base64Decode => "States.Base64Decode",
            Func::Hash => "States.Hash",
            Func::JsonMerge => "States.JsonMerge",
            Func::MathRandom => "States.MathRandom",
            Func::MathAdd => "States.MathAdd",
            Func::StringSplit => "States.StringSplit",
            Func::Uuid => "States.UUID",
        }
    }

    /// The fewest and the most arguments the function takes (`None`: no upper bound).
    fn arity(self) -> (usize, Option<usize>) {
        match self {
            Func::Format => (1, None),
            Func::Array => (0, None),
            Func::Uuid => (0, Some(0)),
            Func::StringToJson
            | Func::JsonToString
            | Func::ArrayLength
            | Func::ArrayUnique
            | Func::Base64Encode
            | Func::Base64Decode => (1, Some(1)),
            Func::ArrayPartition
            | Func::ArrayContains
            | Func::ArrayGetItem
            | Func::Hash
            | Func::MathAdd
            | Func::StringSplit => (2, Some(2)),
            Func::MathRandom => (2, Some(3)),
            Func::ArrayRange | Func::JsonMerge => (3, Some(3)),
        }
    }
}

#[derive(Debug, Clone)]
struct Call {
    func: Func,
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
enum Arg {
    /// A string, number, boolean or null written in the call.
    Literal(Value),
    /// A literal `States.Format` template, split at its unescaped `{}` placeholders.
    Template(Vec<String>),
    /// `$...`, `$$...` or `$name...`.
    Path(Path),
    Call(Box<Call>),
}

impl Arg {
    fn eval<'a>(&'a self, func: Func, env: &Env<'a>) -> Result<Cow<'a, Value>, WorkflowError> {
        match self {
            Arg::Literal(v) => Ok(Cow::Borrowed(v)),
            Arg::Template(pieces) => Ok(Cow::Owned(Value::from(pieces.join("{}")))),
            Arg::Path(p) => p.eval(env).ok_or_else(|| {
                WorkflowError::runtime(format!(
                    "The JSONPath '{}' given to {} could not be found in the input",
                    p.text(),
                    func.name()
                ))
            }),
            Arg::Call(c) => c.eval(env).map(Cow::Owned),
        }
    }
}

impl Call {
    // Inlined, with constants and values found by reference borrowed here: the `Cow` that
    // `Arg::eval` returns came back through memory and its first read stalled (perf:
    // about half of `int_arg`'s time in choice-heavy's `States.MathAdd`).
    #[inline(always)]
    fn arg<'a>(&'a self, n: usize, env: &Env<'a>) -> Result<Cow<'a, Value>, WorkflowError> {
        let direct = match &self.args[n] {
            Arg::Literal(v) => Some(v),
            Arg::Path(p) => p.get(env),
            _ => None,
        };
        match direct {
            Some(v) => Ok(Cow::Borrowed(v)),
            None => self.args[n].eval(self.func, env),
        }
    }

    fn fail(&self, cause: impl std::fmt::Display) -> WorkflowError {
        WorkflowError::intrinsic(format!("{}: {cause}", self.func.name()))
    }

    fn wrong_type(&self, n: usize, wanted: &str, got: &Value) -> WorkflowError {
        self.fail(format_args!(
            "argument {} must be {wanted}, not {}",
            n + 1,
            kind_of(got)
        ))
    }

    fn array_arg<'a>(&'a self, n: usize, env: &Env<'a>) -> Result<Cow<'a, [Value]>, WorkflowError> {
        match self.arg(n, env)? {
            Cow::Borrowed(Value::Array(a)) => Ok(Cow::Borrowed(a.as_slice())),
            Cow::Owned(Value::Array(a)) => Ok(Cow::Owned(a.into_vec())),
            other => Err(self.wrong_type(n, "an array", &other)),
        }
    }

    fn str_arg<'a>(&'a self, n: usize, env: &Env<'a>) -> Result<Cow<'a, str>, WorkflowError> {
        match self.arg(n, env)? {
            Cow::Borrowed(Value::String(s)) => Ok(Cow::Borrowed(s.as_str())),
            Cow::Owned(Value::String(s)) => Ok(Cow::Owned(s.into_string())),
            other => Err(self.wrong_type(n, "a string", &other)),
        }
    }

    fn object_arg<'a>(&'a self, n: usize, env: &Env<'a>) -> Result<Cow<'a, Map>, WorkflowError> {
        match self.arg(n, env)? {
            Cow::Borrowed(Value::Object(o)) => Ok(Cow::Borrowed(o)),
            Cow::Owned(Value::Object(o)) => Ok(Cow::Owned(o)),
            other => Err(self.wrong_type(n, "a JSON object", &other)),
        }
    }

    /// A number AWS requires to be an integer: a fraction is rounded half up, as Java's
    /// `Math.round` does (AWS rounds 2.5 to 3 and -2.5 to -2), and the result must fit
    /// the 32-bit integers the service computes with.
    fn int_arg(&self, n: usize, env: &Env) -> Result<i64, WorkflowError> {
        let v = self.arg(n, env)?;
        let Value::Number(num) = &*v else {
            return Err(self.wrong_type(n, "an integer", &v));
        };
        let int = match num.as_i64() {
            Some(i) => Some(i),
            None => num
                .as_f64()
                .map(java_round)
                .filter(|r| r.abs() < 1e18)
                .map(|r| r as i64),
        };
        match int {
            Some(i) if i32::try_from(i).is_ok() => Ok(i),
            _ => Err(self.fail(format_args!(
                "argument {} ({num}) is outside the integer range -2147483648..2147483647",
                n + 1
            ))),
        }
    }

    /// Evaluates the call. The functions whose result can be larger than their arguments
    /// (nested `States.Array(..)` of `$` grows tenfold per level) are measured against
    /// the Context's `max_value_bytes`, so no call builds more than that.
    fn eval(&self, env: &Env) -> Result<Value, WorkflowError> {
        let v = self.eval_unmeasured(env)?;
        if matches!(self.func, Func::Array | Func::JsonMerge | Func::Format) {
            let cap = env.context.max_value_bytes();
            if crate::expr::size::json_size(&v, cap) > cap {
                return Err(WorkflowError::new(
                    crate::error::names::DATA_LIMIT_EXCEEDED,
                    format!("{}: the result is over {cap} bytes", self.func.name()),
                ));
            }
        }
        Ok(v)
    }

    fn eval_unmeasured(&self, env: &Env) -> Result<Value, WorkflowError> {
        match self.func {
            Func::Format => self.format(env),
            Func::StringToJson => {
                let text = self.str_arg(0, env)?;
                string_to_json(&text).map_err(|e| self.fail(format_args!("invalid JSON: {e}")))
            }
            Func::JsonToString => {
                // The state data's own writer: sized up front from the value's remembered
                // length, kept request text copied whole (serde_json's walk was 1.4 % of
                // etl-intrinsics).
                Ok(Value::from(crate::value::to_string(&*self.arg(0, env)?)))
            }
            Func::Array => self
                .args
                .iter()
                .map(|a| a.eval(self.func, env).map(Cow::into_owned))
                .collect::<Result<Vec<_>, _>>()
                .map(|a| Value::Array(a.into())),
            Func::ArrayPartition => {
                let items = self.array_arg(0, env)?;
                let size = self.int_arg(1, env)?;
                if size <= 0 {
                    return Err(self.fail(format_args!(
                        "the chunk size must be a positive integer, not {size}"
                    )));
                }
                Ok(Value::Array(partition(items, size as usize).into()))
            }
            Func::ArrayContains => {
                let items = self.array_arg(0, env)?;
                let needle = self.arg(1, env)?;
                Ok(Value::Bool(items.contains(&*needle)))
            }
            Func::ArrayRange => self.array_range(env),
            Func::ArrayGetItem => self.array_get_item(env),
            Func::ArrayLength => Ok(Value::from(self.array_arg(0, env)?.len())),
            Func::ArrayUnique => Ok(Value::Array(unique(self.array_arg(0, env)?).into())),
            Func::Base64Encode => {
                let text = self.str_arg(0, env)?;
                self.check_input_len(&text)?;
                // Base64's alphabet needs no JSON escape: marked plain, the text is not
                // scanned again each time a state measures or writes it.
                let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
                Ok(Value::String(Str::plain(&encoded)))
            }
            Func::Base64Decode => {
                let text = self.str_arg(0, env)?;
                self.check_input_len(&text)?;
                let bytes = BASE64_DECODER
                    .decode(text.as_bytes())
                    .map_err(|e| self.fail(format_args!("invalid Base64 input: {e}")))?;
                String::from_utf8(bytes)
                    .map(Value::from)
                    .map_err(|_| self.fail("the decoded data is not UTF-8 text"))
            }
            Func::Hash => self.hash(env),
            Func::JsonMerge => self.json_merge(env),
            Func::MathRandom => self.math_random(env),
            Func::MathAdd => Ok(Value::from(self.int_arg(0, env)? + self.int_arg(1, env)?)),
            Func::StringSplit => {
                let text = self.str_arg(0, env)?;
                let delims = self.str_arg(1, env)?;
                // Each character of the second argument is a delimiter and empty parts are
                // dropped (AWS splits "a,,b" on "," into ["a", "b"]).
                let mut chars = delims.chars();
                let parts = match (chars.next(), chars.next()) {
                    // One delimiter, the usual call: a byte search, not a test per character
                    // (the split was 4.4 % of etl-intrinsics).
                    (Some(d), None) => split_into_values(text.split(d)),
                    _ => split_into_values(text.split(|c: char| delims.contains(c))),
                };
                Ok(Value::Array(parts))
            }
            Func::Uuid => Ok(Value::String(Str::plain(
                uuid::Uuid::new_v4()
                    .hyphenated()
                    .encode_lower(&mut uuid::Uuid::encode_buffer()),
            ))),
        }
    }

    fn format(&self, env: &Env) -> Result<Value, WorkflowError> {
        match &self.args[0] {
            Arg::Template(pieces) => {
                let text = pieces.iter().map(String::len).sum();
                self.fill(pieces.iter().map(String::as_str), pieces.len(), text, env)
            }
            _ => {
                // A template read from the data has no escapes: every `{}` is a placeholder.
                let template = self.str_arg(0, env)?;
                let pieces = template.matches("{}").count() + 1;
                self.fill(template.split("{}"), pieces, template.len(), env)
            }
        }
    }

    /// Joins the template's pieces (about `text` bytes in all, a room estimate) with the
    /// rendered values between them.
    fn fill<'p>(
        &self,
        pieces: impl Iterator<Item = &'p str>,
        count: usize,
        text: usize,
        env: &Env,
    ) -> Result<Value, WorkflowError> {
        let values = &self.args[1..];
        if count != values.len() + 1 {
            return Err(self.fail(format_args!(
                "the template has {} {{}} placeholders but {} values were given",
                count - 1,
                values.len()
            )));
        }
        // Room for the usual value (an id, a count) up front: growing from empty took three
        // or four reallocations per call.
        let mut out = String::with_capacity(text + 24 * values.len());
        for (i, piece) in pieces.enumerate() {
            out.push_str(piece);
            if let Some(arg) = values.get(i) {
                render(&mut out, &*arg.eval(self.func, env)?);
            }
        }
        // Scanned once here, so the states after this one measure and write it unscanned
        // when it needs no escape (string_len was 5.9 % of etl-intrinsics).
        Ok(Value::String(Str::scanned(&out)))
    }

    fn array_range(&self, env: &Env) -> Result<Value, WorkflowError> {
        let start = self.int_arg(0, env)?;
        let end = self.int_arg(1, env)?;
        let step = self.int_arg(2, env)?;
        if step == 0 {
            return Err(self.fail("the step (argument 3) must not be 0"));
        }
        // The end is included, as on AWS: ArrayRange(0, 3, 1) is [0, 1, 2, 3]. The
        // arguments are 32-bit, so this arithmetic cannot overflow an i64.
        let count = if (step > 0 && start > end) || (step < 0 && start < end) {
            0
        } else {
            (end - start) / step + 1
        };
        if count > MAX_RANGE_ITEMS {
            return Err(self.fail(format_args!(
                "the range would have {count} items; at most {MAX_RANGE_ITEMS} are allowed"
            )));
        }
        Ok(Value::Array(
            (0..count).map(|i| Value::from(start + i * step)).collect(),
        ))
    }

    fn array_get_item(&self, env: &Env) -> Result<Value, WorkflowError> {
        let items = self.array_arg(0, env)?;
        let index = self.arg(1, env)?;
        let at = match &*index {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            }),
            _ => return Err(self.wrong_type(1, "an integer index", &index)),
        };
        let at = at
            .and_then(|i| usize::try_from(i).ok())
            .filter(|i| *i < items.len())
            .ok_or_else(|| {
                self.fail(format_args!(
                    "index {index} is not a valid index into an array of {} items",
                    items.len()
                ))
            })?;
        Ok(match items {
            Cow::Borrowed(a) => a[at].clone(),
            Cow::Owned(mut a) => a.swap_remove(at),
        })
    }

    fn check_input_len(&self, text: &str) -> Result<(), WorkflowError> {
        // A string of at most MAX_INPUT_CHARS bytes has at most that many characters, so
        // the count is only needed for longer ones.
        if text.len() > MAX_INPUT_CHARS && text.chars().count() > MAX_INPUT_CHARS {
            return Err(self.fail(format_args!(
                "the input has more than {MAX_INPUT_CHARS} characters"
            )));
        }
        Ok(())
    }

    fn hash(&self, env: &Env) -> Result<Value, WorkflowError> {
        let data = self.str_arg(0, env)?;
        let algorithm = self.str_arg(1, env)?;
        self.check_input_len(&data)?;
        match hex_digest(&algorithm, data.as_bytes()) {
            Some(digest) => Ok(Value::String(Str::plain(digest.as_str()))),
            None => Err(self.fail(format_args!(
                "unknown hash algorithm {algorithm:?}; use MD5, SHA-1, SHA-256, SHA-384 or SHA-512"
            ))),
        }
    }

    fn json_merge(&self, env: &Env) -> Result<Value, WorkflowError> {
        let first = self.object_arg(0, env)?;
        let second = self.object_arg(1, env)?;
        match &*self.arg(2, env)? {
            Value::Bool(false) => {}
            Value::Bool(true) => {
                return Err(self
                    .fail("only shallow merging is supported; the third argument must be false"))
            }
            other => return Err(self.wrong_type(2, "the boolean false", other)),
        }
        // Shallow: a key of the second object replaces the first's value whole.
        let mut merged = first.into_owned();
        match second {
            Cow::Borrowed(o) => merged.extend(o.iter().map(|(k, v)| (k.clone(), v.clone()))),
            Cow::Owned(o) => merged.extend(o),
        }
        Ok(Value::Object(merged))
    }

    fn math_random(&self, env: &Env) -> Result<Value, WorkflowError> {
        let start = self.int_arg(0, env)?;
        let end = self.int_arg(1, env)?;
        if end <= start {
            return Err(self.fail(format_args!(
                "the end ({end}) must be greater than the start ({start})"
            )));
        }
        // The end is exclusive; both are 32-bit, so the span fits a u64.
        let span = (end - start) as u64;
        let offset = if self.args.len() == 3 {
            let seed = self.int_arg(2, env)?;
            // A fixed generator keeps a seeded call's result the same across releases
            // of the `rand` crate, whose seeded generators may change between versions.
            let r = splitmix64(seed as u64);
            ((u128::from(r) * u128::from(span)) >> 64) as u64
        } else {
            use rand::Rng as _;
            rand::thread_rng().gen_range(0..span)
        };
        Ok(Value::from(start + offset as i64))
    }
}

/// Java's `Math.round`: the nearest integer, halves towards positive infinity.
fn java_round(x: f64) -> f64 {
    let floor = x.floor();
    if x - floor >= 0.5 {
        floor + 1.0
    } else {
        floor
    }
}

/// The non-empty parts of a split, as strings.
fn split_into_values<'s>(parts: impl Iterator<Item = &'s str>) -> crate::value::Array {
    parts.filter(|p| !p.is_empty()).map(Value::from).collect()
}

/// Writes a `States.Format` value as AWS does: strings raw, objects as `{k=v, k2=v2}`,
/// arrays as `[a, b]`, other values as JSON.
fn render(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                render(out, item);
            }
            out.push('}');
        }
    }
}

fn string_to_json(text: &str) -> Result<Value, serde_json::Error> {
    // AWS returns null for an empty or blank string rather than failing.
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    // The request reader: serde_json's acceptance and error messages, without its visitor.
    let mut v = crate::value::from_str(text)?;
    // serde_json reads the integer `-0` as the float -0.0; AWS returns the integer 0.
    // Looked for without writing first: a write forgets the parsed tree's request text and
    // size, and "-0" is in many an identifier (`ORD-2025-004211`).
    if may_hold_negative_zero(text) && holds_negative_zero(&v) {
        integer_zero(&mut v);
    }
    Ok(v)
}

/// Whether `text` may hold a number `-0...`: a `-0` after the start, white space or one
/// of `[`, `:`, `,` (a number's only places). Inside strings this may say yes wrongly,
/// never no wrongly.
fn may_hold_negative_zero(text: &str) -> bool {
    // memchr's vector search: a window per byte, or std's substring search, took ~2 %
    // of etl-intrinsics.
    memchr::memmem::find_iter(text.as_bytes(), b"-0").any(|i| {
        text.as_bytes()[..i]
            .iter()
            .rev()
            .find(|c| !c.is_ascii_whitespace())
            .is_none_or(|c| matches!(c, b'[' | b':' | b','))
    })
}

fn is_negative_zero(n: &crate::value::Number) -> bool {
    n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative())
}

fn holds_negative_zero(v: &Value) -> bool {
    match v {
        Value::Number(n) => is_negative_zero(n),
        Value::Array(items) => items.iter().any(holds_negative_zero),
        Value::Object(map) => map.values().any(holds_negative_zero),
        _ => false,
    }
}

fn integer_zero(v: &mut Value) {
    match v {
        Value::Number(n) if is_negative_zero(n) => {
            *v = Value::from(0);
        }
        Value::Array(items) => items.iter_mut().for_each(integer_zero),
        Value::Object(map) => map.values_mut().for_each(integer_zero),
        _ => {}
    }
}

fn partition(items: Cow<'_, [Value]>, size: usize) -> Vec<Value> {
    match items {
        Cow::Borrowed(a) => a
            .chunks(size)
            .map(|c| Value::Array(c.to_vec().into()))
            .collect(),
        Cow::Owned(a) => {
            let mut out = Vec::with_capacity(a.len().div_ceil(size));
            let mut rest = a.into_iter().peekable();
            while rest.peek().is_some() {
                out.push(Value::Array(rest.by_ref().take(size).collect()));
            }
            out
        }
    }
}

/// The items without repeats (deep equality), first occurrences kept in order. Values are
/// bucketed by a structural hash so a large array does not cost a comparison per pair.
fn unique(items: Cow<'_, [Value]>) -> Vec<Value> {
    // A short array is compared pair by pair: at most 120 comparisons, where the hash map
    // cost an allocation per distinct item and a seed (ArrayUnique was 4.8 % of
    // etl-intrinsics, on 7 and 5 items).
    if items.len() <= SCAN_UNIQUE {
        let mut keep = [false; SCAN_UNIQUE];
        for (i, item) in items.iter().enumerate() {
            keep[i] = !items[..i].contains(item);
        }
        return keep_marked(items, &keep);
    }
    // foldhash, seeded at random per process: SipHash's cost without its use here, and no
    // fixed seed for which a request could line up colliding items.
    let seed = foldhash::fast::RandomState::default();
    let mut buckets: HashMap<u64, Vec<usize>, _> =
        HashMap::with_capacity_and_hasher(items.len(), seed.clone());
    let mut keep = vec![false; items.len()];
    for (i, item) in items.iter().enumerate() {
        let mut h = seed.build_hasher();
        hash_value(item, &mut h);
        let bucket = buckets.entry(h.finish()).or_default();
        if !bucket.iter().any(|&j| items[j] == *item) {
            bucket.push(i);
            keep[i] = true;
        }
    }
    keep_marked(items, &keep)
}

/// Arrays up to this long are made unique by comparing each item with those before it.
const SCAN_UNIQUE: usize = 16;

/// The items whose `keep` is set, in order.
fn keep_marked(items: Cow<'_, [Value]>, keep: &[bool]) -> Vec<Value> {
    match items {
        Cow::Borrowed(a) => a
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(v, _)| v.clone())
            .collect(),
        Cow::Owned(a) => a
            .into_iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(v, _)| v)
            .collect(),
    }
}

/// A hash consistent with `Value`'s equality: objects compare without regard to key order,
/// so their entries are combined with an order-independent sum.
fn hash_value<H: Hasher>(v: &Value, h: &mut H) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => {
            h.write_u8(1);
            h.write_u8(u8::from(*b));
        }
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                h.write_u8(2);
                h.write_u64(u);
            } else if let Some(i) = n.as_i64() {
                h.write_u8(3);
                h.write_i64(i);
            } else {
                // 0.0 and -0.0 are equal, so they must hash alike.
                let f = n.as_f64().unwrap_or(0.0);
                h.write_u8(4);
                h.write_u64(if f == 0.0 { 0 } else { f.to_bits() });
            }
        }
        Value::String(s) => {
            h.write_u8(5);
            s.hash(h);
        }
        Value::Array(items) => {
            h.write_u8(6);
            h.write_usize(items.len());
            for item in items {
                hash_value(item, h);
            }
        }
        Value::Object(map) => {
            h.write_u8(7);
            h.write_usize(map.len());
            let mut sum = 0u64;
            for (k, item) in map {
                let mut eh = std::collections::hash_map::DefaultHasher::new();
                k.hash(&mut eh);
                hash_value(item, &mut eh);
                sum = sum.wrapping_add(eh.finish());
            }
            h.write_u64(sum);
        }
    }
}

/// The hex digest of `bytes` with one of the algorithms AWS offers (`States.Hash` and
/// JSONata's `$hash` share it); `None` for any other algorithm name.
pub(crate) fn hex_digest(algorithm: &str, bytes: &[u8]) -> Option<Hex> {
    use sha2::Digest as _;
    Some(match algorithm {
        "MD5" => hex(&md5::Md5::digest(bytes)),
        "SHA-1" => hex(&sha1::Sha1::digest(bytes)),
        "SHA-256" => hex(&sha2::Sha256::digest(bytes)),
        "SHA-384" => hex(&sha2::Sha384::digest(bytes)),
        "SHA-512" => hex(&sha2::Sha512::digest(bytes)),
        _ => return None,
    })
}

/// A digest's hex text, on the stack: the caller copies it once into the string it keeps
/// (a `String` here was one allocation more per call).
pub(crate) struct Hex {
    buf: [u8; 128],
    len: usize,
}

impl Hex {
    /// The hex digits.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).expect("hex digits are ASCII")
    }
}

/// `bytes` (at most 64, SHA-512's digest) as lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> Hex {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    assert!(bytes.len() <= 64, "a digest of at most 64 bytes");
    let mut out = Hex {
        buf: [0; 128],
        len: bytes.len() * 2,
    };
    for (pair, b) in out.buf.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
    out
}

/// SplitMix64: one well-mixed 64-bit value from a seed.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Standard Base64 that accepts input with or without `=` padding, like Java's decoder.
const BASE64_DECODER: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

struct Parser<'t> {
    text: &'t str,
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.i).copied()
    }

    fn rest(&self) -> &str {
        &self.text[self.i..]
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn describe_here(&self) -> String {
        match self.rest().chars().next() {
            Some(c) => format!("{c:?} at offset {}", self.i),
            None => format!("the end of the text at offset {}", self.i),
        }
    }

    fn call(&mut self, depth: usize) -> Result<Call, String> {
        let start = self.i;
        if depth > MAX_NESTING {
            return Err(format!(
                "intrinsic functions are nested more than {MAX_NESTING} deep at offset {start}"
            ));
        }
        let Some(rest) = self.rest().strip_prefix("States.") else {
            return Err(format!(
                "expected an intrinsic function such as States.Format, found {}",
                self.describe_here()
            ));
        };
        let name_len = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
        let name = &self.text[start..start + "States.".len() + name_len];
        let func = Func::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| format!("unknown intrinsic function {name:?} at offset {start}"))?;
        self.i = start + name.len();
        if self.peek() != Some(b'(') {
            return Err(format!(
                "expected '(' after {name}, found {}",
                self.describe_here()
            ));
        }
        self.i += 1;
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b')') {
            self.i += 1;
        } else {
            loop {
                self.skip_ws();
                args.push(self.arg(depth, func == Func::Format && args.is_empty())?);
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.i += 1,
                    Some(b')') => {
                        self.i += 1;
                        break;
                    }
                    _ => {
                        return Err(format!(
                            "expected ',' or ')' in the arguments of {name}, found {}",
                            self.describe_here()
                        ))
                    }
                }
            }
        }
        check_args(func, &args).map_err(|e| format!("{e} (call at offset {start})"))?;
        Ok(Call { func, args })
    }

    fn arg(&mut self, depth: usize, is_template: bool) -> Result<Arg, String> {
        let start = self.i;
        match self.peek() {
            Some(b'\'') => {
                let (s, holes) = self.string_literal()?;
                Ok(if is_template {
                    Arg::Template(split_at_holes(&s, &holes))
                } else {
                    Arg::Literal(Value::from(s))
                })
            }
            Some(b'$') => {
                let end = self.path_end();
                let text = &self.text[start..end];
                self.i = end;
                Path::parse(text)
                    .map(Arg::Path)
                    .map_err(|e| format!("{e} (argument at offset {start})"))
            }
            Some(b'-' | b'0'..=b'9') => {
                let len = self
                    .rest()
                    .bytes()
                    .take_while(|c| {
                        c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E')
                    })
                    .count();
                let text = &self.text[start..start + len];
                self.i += len;
                match serde_json::from_str::<Value>(text) {
                    Ok(n @ Value::Number(_)) => Ok(Arg::Literal(n)),
                    _ => Err(format!("invalid number {text:?} at offset {start}")),
                }
            }
            _ if self.rest().starts_with("States.") => {
                self.call(depth + 1).map(|c| Arg::Call(Box::new(c)))
            }
            _ => {
                let word_len = self
                    .rest()
                    .bytes()
                    .take_while(u8::is_ascii_alphanumeric)
                    .count();
                let value = match &self.text[start..start + word_len] {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    _ => {
                        return Err(format!(
                            "expected an argument ('string', number, true, false, null, a path \
                             or an intrinsic function), found {}",
                            self.describe_here()
                        ))
                    }
                };
                self.i += word_len;
                Ok(Arg::Literal(value))
            }
        }
    }

    /// Reads a single-quoted literal. `\'`, `\{`, `\}` and `\\` are escapes; `\"` is
    /// refused, as AWS refuses the definition (LocalStack's recordings of
    /// `test_illegal_escapes`); any other backslash is kept as written. Also returns where unescaped `{}` pairs start in the
    /// result, which are placeholders when the literal is a Format template.
    fn string_literal(&mut self) -> Result<(String, Vec<usize>), String> {
        let start = self.i;
        let bytes = self.text.as_bytes();
        let mut out = String::new();
        let mut holes = Vec::new();
        let mut i = start + 1;
        let mut run = i;
        loop {
            match bytes.get(i) {
                None => {
                    return Err(format!(
                        "unterminated string literal starting at offset {start}"
                    ))
                }
                Some(b'\'') => {
                    out.push_str(&self.text[run..i]);
                    self.i = i + 1;
                    return Ok((out, holes));
                }
                Some(b'\\') => match bytes.get(i + 1) {
                    Some(c @ (b'\'' | b'{' | b'}' | b'\\')) => {
                        out.push_str(&self.text[run..i]);
                        out.push(char::from(*c));
                        i += 2;
                        run = i;
                    }
                    Some(b'"') => {
                        return Err(format!(
                            "\\\" at offset {i} is not an escape an intrinsic function's string literal may hold (AWS: the value must be a valid JSONPath or a valid intrinsic function call)"
                        ))
                    }
                    _ => i += 1,
                },
                Some(b'{') if bytes.get(i + 1) == Some(&b'}') => {
                    out.push_str(&self.text[run..i]);
                    holes.push(out.len());
                    out.push_str("{}");
                    i += 2;
                    run = i;
                }
                Some(_) => i += 1,
            }
        }
    }

    /// Where a path argument ends: at a `,`, `)` or space outside brackets, quotes and
    /// parentheses (a filter or `.length()` may contain all three).
    fn path_end(&self) -> usize {
        let bytes = self.text.as_bytes();
        let mut depth = 0usize;
        let mut quote: Option<u8> = None;
        let mut i = self.i;
        while let Some(&c) = bytes.get(i) {
            if let Some(q) = quote {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            } else {
                match c {
                    b'\'' | b'"' if depth > 0 => quote = Some(c),
                    b'[' | b'(' => depth += 1,
                    b']' | b')' if depth > 0 => depth -= 1,
                    b',' | b')' => break,
                    c if c.is_ascii_whitespace() && depth == 0 => break,
                    _ => {}
                }
            }
            i += 1;
        }
        i.min(bytes.len())
    }
}

fn split_at_holes(s: &str, holes: &[usize]) -> Vec<String> {
    let mut pieces = Vec::with_capacity(holes.len() + 1);
    let mut from = 0;
    for &h in holes {
        pieces.push(s[from..h].to_string());
        from = h + 2;
    }
    pieces.push(s[from..].to_string());
    pieces
}

/// The checks that need only the text: argument counts and a literal Format template.
fn check_args(func: Func, args: &[Arg]) -> Result<(), String> {
    let (min, max) = func.arity();
    let n = args.len();
    if n < min || max.is_some_and(|m| n > m) {
        let wanted = match max {
            Some(m) if m == min => format!("{min}"),
            Some(m) => format!("{min} to {m}"),
            None => format!("at least {min}"),
        };
        let plural = if max == Some(1) { "" } else { "s" };
        return Err(format!(
            "{} takes {wanted} argument{plural}, but {n} were given",
            func.name()
        ));
    }
    if func == Func::Format {
        match &args[0] {
            Arg::Template(pieces) if pieces.len() != n => {
                return Err(format!(
                    "States.Format has {} {{}} placeholders but {} values were given",
                    pieces.len() - 1,
                    n - 1
                ));
            }
            Arg::Literal(v) => {
                return Err(format!(
                    "the first argument of States.Format must be a string, not {}",
                    kind_of(v)
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::names;
    use crate::expr::vars::Vars;
    use crate::json;

    fn run(text: &str, input: &Value, vars: &Vars) -> Result<Value, WorkflowError> {
        let context = json!({"Execution": {"Name": "exec-1", "Input": input},
                             "StateMachine": {"Name": "orders-v2"}});
        let env = Env {
            input,
            context: &crate::expr::context::Context::from_value(context.clone()),
            vars,
        };
        Intrinsic::parse(text)
            .unwrap_or_else(|e| panic!("{text} should parse: {e}"))
            .eval(&env)
    }

    fn eval(text: &str, input: Value) -> Value {
        run(text, &input, &Vars::default()).unwrap_or_else(|e| panic!("{text} failed: {e}"))
    }

    fn error(text: &str, input: Value) -> WorkflowError {
        match run(text, &input, &Vars::default()) {
            Ok(v) => panic!("{text} should fail but gave {v}"),
            Err(e) => e,
        }
    }

    fn assert_intrinsic_failure(text: &str, input: Value) {
        let e = error(text, input);
        assert_eq!(e.name(), names::INTRINSIC_FAILURE, "{text}: {e}");
    }

    fn parse_error(text: &str) -> String {
        match Intrinsic::parse(text) {
            Ok(i) => panic!("{text} should not parse but gave {i:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn intrinsic_is_send_sync_clone_debug() {
        fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
        check::<Intrinsic>();
    }

    #[test]
    fn is_intrinsic_recognises_calls_only() {
        assert!(is_intrinsic("States.Format('{}', $.a)"));
        assert!(is_intrinsic("States.UUID()"));
        assert!(is_intrinsic("States.NoSuchThing(1)"));
        assert!(!is_intrinsic("States.Format"));
        assert!(!is_intrinsic("States.(1)"));
        assert!(!is_intrinsic("$.States.Format('x')"));
        assert!(!is_intrinsic(" States.Format('x')"));
        assert!(!is_intrinsic("States.Format ('x')"));
    }

    #[test]
    fn format_renders_strings_raw_and_other_values_as_aws_does() {
        let input = json!({"s": "Hi", "n": 1, "f": 1.1, "b": true, "z": null,
                           "o": {"Arg1": 1, "Arg2": [], "s": "x"}, "a": [1, "two", {"k": null}]});
        assert_eq!(
            eval(
                "States.Format('{} {} {} {} {}', $.s, $.n, $.f, $.b, $.z)",
                input.clone()
            ),
            json!("Hi 1 1.1 true null")
        );
        assert_eq!(
            eval("States.Format('o={} a={}', $.o, $.a)", input),
            json!("o={Arg1=1, Arg2=[], s=x} a=[1, two, {k=null}]")
        );
    }

    #[test]
    fn format_escapes_braces_quotes_and_backslashes() {
        assert_eq!(
            eval(
                r"States.Format('\{\} is literal, {} is not; it\'s \\ ok', 'this')",
                json!({})
            ),
            json!(r"{} is literal, this is not; it's \ ok")
        );
        // A backslash before any other character is kept as written, but before a double
        // quote it is refused, as AWS refuses the definition.
        assert_eq!(
            eval(r#"States.Format('a\nb{}', 1)"#, json!({})),
            json!(r#"a\nb1"#)
        );
        let e = parse_error(r#"States.Format('He said, \"Hello, {}!\"', 'x')"#);
        assert!(e.contains(r#"\" at offset 24 is not an escape"#), "{e}");
        // Lone braces are text, not placeholders.
        assert_eq!(eval("States.Format('{ x }')", json!({})), json!("{ x }"));
    }

    #[test]
    fn format_placeholder_count_must_match_values() {
        let e = parse_error("States.Format('{} and {}', $.a)");
        assert!(e.contains("2 {} placeholders but 1 values"), "{e}");
        assert!(Intrinsic::parse(r"States.Format('\{\}', $.a)").is_err());
        assert!(Intrinsic::parse("States.Format(1, $.a)").is_err());
        // A template read from the data is checked when it is used.
        let input = json!({"t": "Hello {} and {}", "a": "x"});
        assert_intrinsic_failure("States.Format($.t, $.a)", input.clone());
        assert_eq!(
            eval("States.Format($.t, $.a, 2)", input),
            json!("Hello x and 2")
        );
    }

    #[test]
    fn nested_calls_are_evaluated_inside_out() {
        let input = json!({"a": [1, 2, 3]});
        assert_eq!(
            eval(
                "States.Format('{}', States.ArrayLength($.a))",
                input.clone()
            ),
            json!("3")
        );
        // The recorded AWS example: the last part of the state machine's name.
        assert_eq!(
            eval(
                "States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), \
                 States.MathAdd(States.ArrayLength(States.StringSplit($$.StateMachine.Name, '-')), -1))",
                input
            ),
            json!("v2")
        );
    }

    #[test]
    fn nesting_deeper_than_ten_is_rejected() {
        let nest = |n: usize| {
            let mut s = "$.a".to_string();
            for _ in 0..n {
                s = format!("States.Array({s})");
            }
            s
        };
        assert_eq!(
            eval(&nest(10), json!({"a": 1})),
            json!([[[[[[[[[[1]]]]]]]]]])
        );
        assert!(parse_error(&nest(11)).contains("nested more than 10"));
    }

    #[test]
    fn paths_read_input_context_and_variables() {
        let mut vars = Vars::default();
        vars.set("order".into(), json!({"id": 7, "items": ["a", "b"]}));
        let input = json!({"x": "in"});
        assert_eq!(
            run(
                "States.Array($.x, $$.Execution.Name, $order.id, $order.items[1], $order.items.length())",
                &input,
                &vars
            ),
            Ok(json!(["in", "exec-1", 7, "b", 2]))
        );
        assert_eq!(
            run("States.JsonToString($)", &input, &vars),
            Ok(json!(r#"{"x":"in"}"#))
        );
    }

    #[test]
    fn path_arguments_may_contain_quotes_commas_and_filters() {
        let input = json!({"a, b": 1, "it's": 2, "xs": [{"v": 1}, {"v": 2}]});
        assert_eq!(
            eval(
                r"States.Array($['a, b'], $['it\'s'], $.xs[?(@.v == 2)].v)",
                input
            ),
            json!([1, 2, [2]])
        );
    }

    #[test]
    fn a_missing_path_is_a_runtime_error_naming_the_path() {
        let e = error("States.Format('{}', $.nope.deeper)", json!({}));
        assert_eq!(e.name(), names::RUNTIME);
        assert!(e.cause.unwrap_or_default().contains("$.nope.deeper"));
        let e = error("States.ArrayLength($noSuchVar)", json!({}));
        assert_eq!(e.name(), names::RUNTIME);
    }

    #[test]
    fn unknown_function_and_bad_syntax_are_parse_errors_with_offsets() {
        let e = parse_error("States.Array(States.Nope(1))");
        assert!(
            e.contains("\"States.Nope\"") && e.contains("offset 13"),
            "{e}"
        );
        assert!(parse_error("States.Format('abc").contains("unterminated"));
        assert!(parse_error("States.Array(1 2)").contains("offset 15"));
        assert!(parse_error("States.Array(1) x").contains("after the closing"));
        assert!(parse_error("States.Array(nul)").contains("expected an argument"));
        assert!(parse_error("States.Array($.a[)").contains("JSONPath"));
        assert!(parse_error("States.Array(1.2.3)").contains("invalid number"));
    }

    #[test]
    fn wrong_argument_count_is_a_parse_error() {
        for text in [
            "States.UUID(1)",
            "States.Format()",
            "States.StringToJson()",
            "States.ArrayLength($.a, $.b)",
            "States.ArrayRange(1, 2)",
            "States.MathRandom(1)",
            "States.MathRandom(1, 2, 3, 4)",
            "States.JsonMerge($.a, $.b)",
            "States.Hash('x')",
        ] {
            assert!(parse_error(text).contains("takes"), "{text}");
        }
    }

    #[test]
    fn literals_keep_their_json_types() {
        assert_eq!(
            eval(
                "States.Array('s', -3, 2.5, 1e2, true, false, null)",
                json!({})
            ),
            json!(["s", -3, 2.5, 100.0, true, false, null])
        );
        assert!(eval("States.Array(7)", json!({}))[0].is_u64());
        assert!(eval("States.Array(-7)", json!({}))[0].is_i64());
        assert_eq!(eval("States.Array()", json!({})), json!([]));
    }

    #[test]
    fn array_range_includes_its_end_and_counts_down() {
        assert_eq!(
            eval("States.ArrayRange(1, 9, 2)", json!({})),
            json!([1, 3, 5, 7, 9])
        );
        assert_eq!(
            eval("States.ArrayRange(0, 10, 3)", json!({})),
            json!([0, 3, 6, 9])
        );
        assert_eq!(
            eval("States.ArrayRange(5, 1, -2)", json!({})),
            json!([5, 3, 1])
        );
        assert_eq!(eval("States.ArrayRange(5, 1, 1)", json!({})), json!([]));
        assert_eq!(
            eval("States.ArrayRange(0.5, 2.4, 1)", json!({})),
            json!([1, 2])
        );
        assert!(eval("States.ArrayRange(0, 1, 1)", json!({}))[1].is_u64());
    }

    #[test]
    fn array_range_over_1000_items_is_an_intrinsic_failure() {
        assert_eq!(
            eval("States.ArrayRange(1, 1000, 1)", json!({}))
                .as_array()
                .map(Vec::len),
            Some(1000)
        );
        assert_intrinsic_failure("States.ArrayRange(0, 1000, 1)", json!({}));
        assert_intrinsic_failure("States.ArrayRange(-2147483648, 2147483647, 1)", json!({}));
    }

    #[test]
    fn array_range_step_zero_or_bad_arguments_are_intrinsic_failures() {
        assert_intrinsic_failure("States.ArrayRange(0, 10, 0)", json!({}));
        assert_intrinsic_failure("States.ArrayRange(0, 10, 0.4)", json!({}));
        assert_intrinsic_failure("States.ArrayRange('0', 10, 1)", json!({}));
        assert_intrinsic_failure("States.ArrayRange(0, 3000000000, 1)", json!({}));
    }

    #[test]
    fn math_add_rounds_half_up_like_java() {
        for (a, b, sum) in [
            (1.49, 1.5, 3),
            (-1.5, 0.0, -1),
            (-2.5, 0.0, -2),
            (2.5, 0.0, 3),
            (-0.5, 0.5, 1),
            (0.49999999999999994, 0.0, 0),
        ] {
            let input = json!({"a": a, "b": b});
            assert_eq!(
                eval("States.MathAdd($.a, $.b)", input),
                json!(sum),
                "{a} + {b}"
            );
        }
        let r = eval("States.MathAdd(2147483647, 1)", json!({}));
        assert_eq!(r, json!(2147483648_i64));
        assert!(r.is_u64());
    }

    #[test]
    fn math_add_rejects_non_numbers_and_values_outside_int32() {
        assert_intrinsic_failure("States.MathAdd('1', 2)", json!({}));
        assert_intrinsic_failure("States.MathAdd(2147483648, 0)", json!({}));
        assert_intrinsic_failure("States.MathAdd($.a, 0)", json!({"a": 1e300}));
        assert_intrinsic_failure("States.MathAdd($.a, 0)", json!({"a": u64::MAX}));
    }

    #[test]
    fn array_partition_chunks_and_requires_a_positive_size() {
        let input = json!({"a": [1, 2, 3, 4, 5]});
        assert_eq!(
            eval("States.ArrayPartition($.a, 2)", input.clone()),
            json!([[1, 2], [3, 4], [5]])
        );
        assert_eq!(
            eval(
                "States.ArrayPartition(States.ArrayRange(1, 3, 1), 2)",
                json!({})
            ),
            json!([[1, 2], [3]])
        );
        assert_eq!(
            eval("States.ArrayPartition($.a, 1.5)", input.clone()),
            json!([[1, 2], [3, 4], [5]])
        );
        assert_intrinsic_failure("States.ArrayPartition($.a, 0)", input.clone());
        assert_intrinsic_failure("States.ArrayPartition($.a, -1)", input.clone());
        assert_intrinsic_failure("States.ArrayPartition('abc', 1)", input);
    }

    #[test]
    fn array_get_item_returns_the_item_or_fails_out_of_bounds() {
        let input = json!({"a": [1, {"x": 2}, 3]});
        assert_eq!(
            eval("States.ArrayGetItem($.a, 1)", input.clone()),
            json!({"x": 2})
        );
        assert_eq!(
            eval("States.ArrayGetItem(States.Array('p', 'q'), 1)", json!({})),
            json!("q")
        );
        assert_intrinsic_failure("States.ArrayGetItem($.a, 3)", input.clone());
        assert_intrinsic_failure("States.ArrayGetItem($.a, -1)", input.clone());
        assert_intrinsic_failure("States.ArrayGetItem($.a, 0.5)", input.clone());
        assert_intrinsic_failure("States.ArrayGetItem($.a, '0')", input.clone());
        assert_intrinsic_failure("States.ArrayGetItem($.a[1], 0)", input);
    }

    #[test]
    fn array_contains_and_unique_use_deep_equality() {
        let input = json!({"a": [[1, 2, 3], {"k": 1, "j": [null]}, 2, 1.5]});
        assert_eq!(
            eval("States.ArrayContains($.a, $.a[0])", input.clone()),
            json!(true)
        );
        let obj = json!({"a": input["a"].clone(), "o": {"j": [null], "k": 1}});
        assert_eq!(eval("States.ArrayContains($.a, $.o)", obj), json!(true));
        assert_eq!(
            eval("States.ArrayContains($.a, 3)", input.clone()),
            json!(false)
        );
        assert_eq!(eval("States.ArrayContains($.a, 1.5)", input), json!(true));
        assert_intrinsic_failure("States.ArrayContains('abc', 'a')", json!({}));

        let dupes = json!({"a": [null, null, true, 1, 1, 1.1, "s", "s", [], [],
                                 {"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": 1, "b": 1}, 0.0, -0.0]});
        assert_eq!(
            eval("States.ArrayUnique($.a)", dupes),
            json!([null, true, 1, 1.1, "s", [], {"a": 1, "b": 2}, {"a": 1, "b": 1}, 0.0])
        );
        assert_eq!(
            eval("States.ArrayUnique(States.Array(2, 1, 2))", json!({})),
            json!([2, 1])
        );
        assert_eq!(eval("States.ArrayLength($.a)", json!({"a": []})), json!(0));
    }

    /// Short arrays (compared pair by pair) and long ones (bucketed by hash) keep the same
    /// items: the first of each group of deeply equal ones.
    #[test]
    fn unique_keeps_first_occurrences_at_every_length() {
        let pool = [
            json!(null),
            json!(1),
            json!(1.0),
            json!("s"),
            json!([1, {"a": 1}]),
            json!({"a": 1, "b": [2]}),
            json!({"b": [2], "a": 1}),
            json!(-0.0),
            json!(0),
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..40 {
            let items: Vec<Value> = (0..len)
                .map(|_| {
                    state = splitmix64(state);
                    pool[(state % pool.len() as u64) as usize].clone()
                })
                .collect();
            let mut want: Vec<Value> = vec![];
            for item in &items {
                if !want.contains(item) {
                    want.push(item.clone());
                }
            }
            assert_eq!(unique(Cow::Borrowed(&items)), want, "{len}");
            assert_eq!(unique(Cow::Owned(items)), want, "{len}");
        }
    }

    /// Strings an intrinsic marks as needing no escape (hex digests, Base64, UUIDs, Format
    /// text without a quote or control byte) are measured and written as the scan would.
    #[test]
    fn strings_marked_plain_are_written_as_scanned() {
        let input = json!({"q": "say \"hi\"\n", "p": "plain"});
        for text in [
            "States.Hash($.q, 'SHA-512')",
            "States.Hash($.q, 'MD5')",
            "States.Base64Encode($.q)",
            "States.UUID()",
            "States.Format('{} and {}', $.p, $.p)",
            "States.Format('{} and a much longer tail than inline text', $.q)",
            "States.Format('{} \\{\\}', $.q)",
        ] {
            let v = eval(text, input.clone());
            let Value::String(s) = &v else {
                panic!("{text} gave {v}")
            };
            let written = serde_json::to_string(s.as_str()).expect("writable");
            assert_eq!(s.json_len(), written.len(), "{text}");
            assert_eq!(crate::value::to_string(&v), written, "{text}");
        }
    }

    #[test]
    fn base64_encodes_and_decodes_text() {
        assert_eq!(
            eval("States.Base64Encode('Data to encode')", json!({})),
            json!("RGF0YSB0byBlbmNvZGU=")
        );
        assert_eq!(
            eval("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", json!({})),
            json!("Data to encode")
        );
        assert_eq!(
            eval("States.Base64Decode('RGF0YSB0byBlbmNvZGU')", json!({})),
            json!("Data to encode")
        );
        assert_eq!(eval("States.Base64Encode('')", json!({})), json!(""));
        assert_eq!(
            eval(
                "States.Base64Decode(States.Base64Encode('héllo ✓'))",
                json!({})
            ),
            json!("héllo ✓")
        );
        assert_intrinsic_failure("States.Base64Decode('not base64!')", json!({}));
        assert_intrinsic_failure("States.Base64Decode('/w==')", json!({}));
        assert_intrinsic_failure("States.Base64Encode(1)", json!({}));
    }

    #[test]
    fn base64_and_hash_inputs_over_10000_characters_are_intrinsic_failures() {
        let at_limit = json!({"s": "é".repeat(10_000)});
        assert!(run("States.Base64Encode($.s)", &at_limit, &Vars::default()).is_ok());
        let over = json!({"s": "a".repeat(10_001)});
        assert_intrinsic_failure("States.Base64Encode($.s)", over.clone());
        assert_intrinsic_failure("States.Base64Decode($.s)", over.clone());
        assert_intrinsic_failure("States.Hash($.s, 'MD5')", over);
    }

    #[test]
    fn hash_supports_the_five_aws_algorithms() {
        for (alg, want) in [
            ("MD5", "812f45842bc6d66ee14572ce20db8e86"),
            ("SHA-1", "aaff4a450a104cd177d28d18d74485e8cae074b7"),
            (
                "SHA-256",
                "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3",
            ),
        ] {
            assert_eq!(
                eval(&format!("States.Hash('input data', '{alg}')"), json!({})),
                json!(want)
            );
        }
        assert_eq!(
            eval("States.Hash('x', 'SHA-384')", json!({}))
                .as_str()
                .map(str::len),
            Some(96)
        );
        assert_eq!(
            eval("States.Hash('x', 'SHA-512')", json!({}))
                .as_str()
                .map(str::len),
            Some(128)
        );
        assert_intrinsic_failure("States.Hash('x', 'SHA256')", json!({}));
        assert_intrinsic_failure("States.Hash(1, 'MD5')", json!({}));
    }

    #[test]
    fn json_merge_is_shallow_and_rejects_deep_merging() {
        let input =
            json!({"a": {"a": {"a1": 1}, "b": 2, "d": 3}, "b": {"a": {"a3": 1}, "c": 3, "d": 4}});
        assert_eq!(
            eval("States.JsonMerge($.a, $.b, false)", input.clone()),
            json!({"a": {"a3": 1}, "b": 2, "d": 4, "c": 3})
        );
        assert_eq!(
            eval(
                r#"States.JsonMerge(States.StringToJson('{"x": "false"}'), $.a, false)"#,
                input.clone()
            ),
            json!({"x": "false", "a": {"a1": 1}, "b": 2, "d": 3})
        );
        assert_intrinsic_failure("States.JsonMerge($.a, $.b, true)", input.clone());
        assert_intrinsic_failure("States.JsonMerge($.a, $.b, 'false')", input.clone());
        assert_intrinsic_failure("States.JsonMerge($.a, $.b.c, false)", input);
    }

    #[test]
    fn string_to_json_parses_and_blank_is_null() {
        assert_eq!(eval("States.StringToJson('')", json!({})), json!(null));
        assert_eq!(eval("States.StringToJson(' ')", json!({})), json!(null));
        assert_eq!(
            eval(
                r#"States.StringToJson('{"a": [1, 2.5, "x"], "b": -0}')"#,
                json!({})
            ),
            json!({"a": [1, 2.5, "x"], "b": 0})
        );
        assert!(eval("States.StringToJson('-0')", json!({})).is_u64());
        // Every place a number may stand, and a "-0" inside strings that is no number.
        assert_eq!(
            eval(
                r#"States.StringToJson('{"id": "ORD-0", "n":-0, "a": [ -0,1,-0.0], "m": {"x":  -0e3}}')"#,
                json!({})
            ),
            json!({"id": "ORD-0", "n": 0, "a": [0, 1, 0], "m": {"x": 0}})
        );
        let text = r#"{"id":"ORD-2025-004211","lines":[{"qty":-1}],"p":"x"}"#;
        assert!(!may_hold_negative_zero(text));
        let v = string_to_json(text).expect("valid JSON");
        assert_eq!(
            crate::value::known_len(&v),
            Some(text.len()),
            "the text and size are kept"
        );
        assert_intrinsic_failure("States.StringToJson('{not json')", json!({}));
        assert_intrinsic_failure("States.StringToJson(1)", json!({}));
    }

    #[test]
    fn json_to_string_is_compact_and_keeps_key_order() {
        let input = json!({"v": {"z": 1, "a": [1, 2.5, "x"], "m": null}});
        assert_eq!(
            eval("States.JsonToString($.v)", input),
            json!(r#"{"z":1,"a":[1,2.5,"x"],"m":null}"#)
        );
        assert_eq!(eval("States.JsonToString('x')", json!({})), json!(r#""x""#));
    }

    /// Written by the state data's writer, the text is serde_json's, whether the value was
    /// read from a request (and keeps its text) or built.
    #[test]
    fn json_to_string_writes_what_serde_json_writes() {
        let text = r#"{"v": {"s": "tab\tquote\"slash\\ \u00e9 \u2028 ctl\u0001", "f": [0.1, 1e300, -2.5e-7, 24.0, 18.5],
            "long": {"k": "abcdefghijklmnopqrstuvwxyz0123456789 abcdefghijklmnopqrstuvwxyz0123456789",
            "n": [1, -1, 18446744073709551615, -9223372036854775808], "e": {}, "a": []}}}"#;
        let spaced: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
        // Compact and over 512 bytes, the reader keeps the request's text for `v`.
        let mut padded = spaced.clone();
        padded["pad"] = "p".repeat(600).into();
        let compact = serde_json::to_string(&padded).expect("writable");
        for text in [text, compact.as_str()] {
            let theirs: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
            let want = serde_json::to_string(&theirs["v"]).expect("writable");
            let read = crate::value::from_str(text).expect("valid JSON");
            assert_eq!(eval("States.JsonToString($.v)", read), Value::from(want));
        }
    }

    #[test]
    fn string_split_uses_every_delimiter_character_and_drops_empty_parts() {
        assert_eq!(
            eval(
                "States.StringSplit('This.is+a,test=string', '.+,=')",
                json!({})
            ),
            json!(["This", "is", "a", "test", "string"])
        );
        assert_eq!(
            eval("States.StringSplit(',,,,', ',')", json!({})),
            json!([])
        );
        assert_eq!(
            eval("States.StringSplit(', , ,', ',')", json!({})),
            json!([" ", " "])
        );
        assert_eq!(
            eval("States.StringSplit('abc', '')", json!({})),
            json!(["abc"])
        );
        assert_intrinsic_failure("States.StringSplit(1, ',')", json!({}));
    }

    #[test]
    fn math_random_stays_in_range_and_a_seed_makes_it_repeatable() {
        for _ in 0..200 {
            let v = eval("States.MathRandom(-3, 2)", json!({}));
            let n = v.as_i64().unwrap_or(i64::MAX);
            assert!((-3..2).contains(&n), "{v}");
        }
        let a = eval("States.MathRandom(0, 999, 3)", json!({}));
        assert_eq!(a, eval("States.MathRandom(0, 999, 3)", json!({})));
        assert!(a.as_u64().is_some_and(|n| n < 999));
        assert_eq!(eval("States.MathRandom(1.4, 1.6)", json!({})), json!(1));
        assert_intrinsic_failure("States.MathRandom(5, 5)", json!({}));
        assert_intrinsic_failure("States.MathRandom('1', 5)", json!({}));
    }

    #[test]
    fn uuid_is_a_random_version_4_uuid() {
        let a = eval("States.UUID()", json!({}));
        let parsed = a.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok());
        assert_eq!(parsed.map(|u| u.get_version_num()), Some(4));
        assert_ne!(a, eval("States.UUID()", json!({})));
    }

    #[test]
    fn type_errors_name_the_function_and_argument() {
        let e = error("States.ArrayLength('x')", json!({}));
        assert_eq!(e.name(), names::INTRINSIC_FAILURE);
        assert_eq!(
            e.cause.as_deref(),
            Some("States.ArrayLength: argument 1 must be an array, not a string")
        );
    }

    /// The recorded `BASE_REFERENCE_IN_INTRINSIC_FUNCTION` execution: every function fed
    /// from variables.
    #[test]
    fn functions_read_variables_like_the_recorded_aws_execution() {
        let mut vars = Vars::default();
        for (k, v) in [
            ("rawString", json!("Hello World")),
            ("encodedString", json!("SGVsbG8gV29ybGQ=")),
            ("inputString", json!("Hash this string")),
            ("json1", json!({"a": 1, "b": 2})),
            ("json2", json!({"c": 3, "d": 4})),
            ("jsonString", json!("{\"key\":\"value\"}")),
            ("jsonObject", json!({"test": "object"})),
            ("value1", json!(5)),
            ("value2", json!(3)),
            ("csvString", json!("a,b,c,d,e")),
            ("name", json!("John")),
            ("place", json!("LocalStack")),
        ] {
            vars.set(k.into(), v);
        }
        let input = json!({});
        let cases = [
            ("States.Base64Encode($rawString)", json!("SGVsbG8gV29ybGQ=")),
            ("States.Base64Decode($encodedString)", json!("Hello World")),
            (
                "States.Hash($inputString, 'SHA-256')",
                json!("1cac63f39fd68d8c531f27b807610fb3d50f0fc3f186995767fb6316e7200a3e"),
            ),
            (
                "States.JsonMerge($json1, $json2, false)",
                json!({"a": 1, "b": 2, "c": 3, "d": 4}),
            ),
            ("States.StringToJson($jsonString)", json!({"key": "value"})),
            (
                "States.JsonToString($jsonObject)",
                json!("{\"test\":\"object\"}"),
            ),
            ("States.MathAdd($value1, $value2)", json!(8)),
            (
                "States.StringSplit($csvString, ',')",
                json!(["a", "b", "c", "d", "e"]),
            ),
            (
                "States.Format('Hello {}, welcome to {}!', $name, $place)",
                json!("Hello John, welcome to LocalStack!"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(run(text, &input, &vars), Ok(want), "{text}");
        }
    }

    /// Cases recorded on AWS that pass now; the count may only go up.
    const CONFORMANCE_PASS_FLOOR: usize = 107;

    /// Runs every recorded AWS execution whose machine is one Pass state with a single
    /// `Parameters` entry that is an intrinsic call.
    #[test]
    fn conformance_cases_recorded_on_aws() {
        let dir = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/conformance/cases"
        ));
        let Ok(entries) = std::fs::read_dir(dir) else {
            eprintln!("skipping: no conformance cases at {}", dir.display());
            return;
        };
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let (mut total, mut passed) = (0, 0);
        for path in paths {
            let text = std::fs::read_to_string(&path).expect("a readable case file");
            let case: Value = serde_json::from_str(&text).expect("a case file is JSON");
            let Some((state, key, call)) = single_intrinsic_pass(&case) else {
                continue;
            };
            total += 1;
            match check_case(&case, state, key, call) {
                Ok(()) => passed += 1,
                Err(why) => eprintln!("FAIL {}: {why}", case["name"]),
            }
        }
        eprintln!("intrinsic conformance: {passed} of {total} cases pass");
        assert!(total > 0, "no intrinsic cases found in {}", dir.display());
        assert!(
            passed >= CONFORMANCE_PASS_FLOOR,
            "regression: {passed} cases pass, {CONFORMANCE_PASS_FLOOR} did before"
        );
    }

    /// The state name, output key and intrinsic text of a one-Pass-state machine whose
    /// `Parameters` is a single `"key.$": "States...."` entry.
    fn single_intrinsic_pass(case: &Value) -> Option<(&str, &str, &str)> {
        let states = case["definition"]["States"].as_object()?;
        let (name, state) = states.iter().next().filter(|_| states.len() == 1)?;
        if state["Type"] != "Pass" {
            return None;
        }
        let params = state["Parameters"].as_object()?;
        let (key, value) = params.iter().next().filter(|_| params.len() == 1)?;
        let key = key.strip_suffix(".$")?;
        let call = value.as_str().filter(|s| is_intrinsic(s))?;
        Some((name, key, call))
    }

    fn check_case(case: &Value, state: &str, key: &str, call: &str) -> Result<(), String> {
        let input = &case["input"];
        let context = json!({
            "Execution": {"Id": "arn:aws:states:us-east-1:111111111111:execution:sm:exec",
                          "Input": input, "Name": "exec", "StartTime": "2024-01-01T00:00:00Z"},
            "State": {"Name": state, "EnteredTime": "2024-01-01T00:00:00Z"},
            "StateMachine": {"Id": "arn:aws:states:us-east-1:111111111111:stateMachine:sm",
                             "Name": "sm"},
        });
        let vars = Vars::default();
        let env = Env {
            input,
            context: &crate::expr::context::Context::from_value(context.clone()),
            vars: &vars,
        };
        let result = Intrinsic::parse(call)
            .map_err(|e| format!("parse error: {e}"))?
            .eval(&env);
        let expected = &case["expected"];
        match (expected["status"].as_str(), result) {
            (Some("SUCCEEDED"), Ok(v)) => {
                let output = json!({ key: v });
                if matches_expected(&expected["output"], &output) {
                    Ok(())
                } else {
                    Err(format!("expected {}, got {output}", expected["output"]))
                }
            }
            (Some("FAILED"), Err(e)) if expected["error"] == e.name() => Ok(()),
            (status, got) => Err(format!(
                "expected {} {}, got {got:?}",
                status.unwrap_or("?"),
                expected["error"]
            )),
        }
    }

    /// Equality where a recorded placeholder string such as `"<generated-uuid>"` matches
    /// any value.
    fn matches_expected(expected: &Value, actual: &Value) -> bool {
        match (expected, actual) {
            (Value::String(s), _) if s.starts_with('<') && s.ends_with('>') => true,
            (Value::Array(e), Value::Array(a)) => {
                e.len() == a.len() && e.iter().zip(a).all(|(e, a)| matches_expected(e, a))
            }
            (Value::Object(e), Value::Object(a)) => {
                e.len() == a.len()
                    && e.iter()
                        .all(|(k, e)| a.get(k).is_some_and(|a| matches_expected(e, a)))
            }
            _ => expected == actual,
        }
    }
}
