//! The functions AWS adds to JSONata in Step Functions, and the ones it takes away.
//!
//! `$partition`, `$range`, `$hash`, `$random` (with an optional seed, matching
//! java.util.Random), `$uuid` and `$parse` are AWS's; `$eval` is not available; `$pad` is
//! replaced by one that refuses widths past the result size cap, since the engine would
//! otherwise allocate whatever width it is asked for.

use std::rc::Rc;

use jsonata_core::evaluator::{Evaluator, EvaluatorError};
use jsonata_core::value::JValue;

use super::jsonata::{to_jvalue, Functions, Limits};

/// AWS's cap on `$range`'s length (as for `States.ArrayRange`).
const MAX_RANGE_ITEMS: usize = 1000;

fn err(msg: impl Into<String>) -> EvaluatorError {
    EvaluatorError::EvaluationError(msg.into())
}

/// The functions [`register`] adds or replaces, in the order of [`Mentions`].
const NAMES: [&str; 8] = [
    "$pad",
    "$partition",
    "$range",
    "$hash",
    "$uuid",
    "$parse",
    "$random",
    "$eval",
];

/// Which of [`NAMES`] an expression's text mentions. A function is only reachable by
/// its `$name` (variables hold JSON, never functions), so the rest need no registering.
pub(crate) type Mentions = [bool; 8];

/// The functions of [`NAMES`] that `text` mentions.
pub(crate) fn mentions(text: &str) -> Mentions {
    NAMES.map(|n| text.contains(n))
}

/// Caps `$pad`; for AWS's library, also registers AWS's functions and removes `$eval`;
/// only those `used` says the expression mentions.
pub(crate) fn register(ev: &mut Evaluator, limits: &Limits, used: &Mentions) {
    let max_bytes = limits.max_result_bytes;
    let mut results = vec![];
    if used[0] {
        results.push(ev.register_fn_override("pad", move |args: &[JValue]| pad(args, max_bytes)));
    }
    if limits.functions == Functions::StepFunctions {
        if used[1] {
            results.push(ev.register_fn("partition", partition));
        }
        if used[2] {
            results.push(ev.register_fn("range", range));
        }
        if used[3] {
            results.push(ev.register_fn("hash", hash));
        }
        if used[4] {
            results.push(ev.register_fn("uuid", |_: &[JValue]| {
                Ok(JValue::from(uuid::Uuid::new_v4().to_string()))
            }));
        }
        if used[5] {
            results.push(ev.register_fn("parse", move |args: &[JValue]| parse(args, max_bytes)));
        }
        if used[6] {
            results.push(ev.register_fn_override("random", random));
        }
        if used[7] {
            results.push(ev.register_fn_override("eval", |_: &[JValue]| {
                Err(err("T1006: $eval is not available in AWS Step Functions"))
            }));
        }
    }
    for r in results {
        // Only a name clash with a built-in fails, which the names above never have.
        debug_assert!(r.is_ok(), "{r:?}");
    }
}

fn whole(v: Option<&JValue>, f: &str, what: &str) -> Result<i64, EvaluatorError> {
    match v.and_then(JValue::as_f64) {
        Some(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Ok(n as i64),
        _ => Err(err(format!(
            "D3050: The {what} argument of ${f} must be an integer"
        ))),
    }
}

/// `$partition(array, size)`: the array cut into chunks of `size` items.
fn partition(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let items: Vec<JValue> = match args.first() {
        Some(JValue::Array(a)) => a.iter().cloned().collect(),
        Some(JValue::Undefined) | None => return Ok(JValue::Undefined),
        Some(other) => vec![other.clone()],
    };
    let size = whole(args.get(1), "partition", "second")?;
    if size < 1 {
        return Err(err(
            "D3050: The size argument of $partition must be positive",
        ));
    }
    let chunks = items
        .chunks(size as usize)
        .map(|c| JValue::array(c.to_vec()))
        .collect();
    Ok(JValue::array(chunks))
}

/// `$range(start, end, step)`: start, start+step, ... up to and including end.
fn range(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let start = whole(args.first(), "range", "first")?;
    let end = whole(args.get(1), "range", "second")?;
    let step = whole(args.get(2), "range", "third")?;
    if step == 0 {
        return Err(err("D3050: The step argument of $range must not be 0"));
    }
    let count = (end - start) / step + 1;
    if count <= 0 {
        return Ok(JValue::array(vec![]));
    }
    if count as u64 > MAX_RANGE_ITEMS as u64 {
        return Err(err(format!(
            "D3050: $range would return {count} items; at most {MAX_RANGE_ITEMS} are allowed"
        )));
    }
    let items = (0..count).map(|i| JValue::from(start + i * step)).collect();
    // A sequence: one item is returned as itself, as AWS does.
    Ok(JValue::sequence(items))
}

/// `$hash(value, algorithm)`: hex digest with MD5, SHA-1, SHA-256, SHA-384 or SHA-512.
fn hash(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    let Some(text) = args.first().and_then(JValue::as_str) else {
        return Err(err("T0410: Argument 1 of function $hash must be a string"));
    };
    let algorithm = args.get(1).and_then(JValue::as_str).unwrap_or("SHA-256");
    match super::intrinsic::hex_digest(algorithm, text.as_bytes()) {
        Some(out) => Ok(JValue::from(out.as_str())),
        None => Err(err(format!(
            "D3050: {algorithm:?} is not a hash algorithm (MD5, SHA-1, SHA-256, SHA-384, SHA-512)"
        ))),
    }
}

/// `$random()` or `$random(seed)`: a seeded value is java.util.Random's first nextDouble.
fn random(args: &[JValue]) -> Result<JValue, EvaluatorError> {
    match args.first() {
        None | Some(JValue::Undefined) => Ok(JValue::Number(rand::random::<f64>())),
        Some(v) => Ok(JValue::Number(
            JavaRandom::new(whole(Some(v), "random", "seed")?).next_double(),
        )),
    }
}

/// java.util.Random's linear congruential generator.
struct JavaRandom(u64);

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> JavaRandom {
        JavaRandom((seed as u64 ^ Self::MULTIPLIER) & Self::MASK)
    }

    fn next(&mut self, bits: u32) -> u64 {
        self.0 = (self.0.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        self.0 >> (48 - bits)
    }

    fn next_double(&mut self) -> f64 {
        let hi = self.next(26) << 27;
        let lo = self.next(27);
        (hi + lo) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// `$parse(text)`: JSON text to a value.
fn parse(args: &[JValue], max_bytes: usize) -> Result<JValue, EvaluatorError> {
    let Some(text) = args.first().and_then(JValue::as_str) else {
        return Err(err("T0410: Argument 1 of function $parse must be a string"));
    };
    if text.len() > max_bytes {
        return Err(err(format!(
            "D3050: $parse was given more than {max_bytes} bytes"
        )));
    }
    // serde_json stops at 128 levels of nesting.
    let v: crate::value::Value = serde_json::from_str(text).map_err(|e| {
        err(format!(
            "D3050: $parse was given text that is not JSON: {e}"
        ))
    })?;
    Ok(to_jvalue(&v))
}

/// `$pad(text, width, chars?)`, refusing widths whose result would pass the size cap.
fn pad(args: &[JValue], max_bytes: usize) -> Result<JValue, EvaluatorError> {
    let text: Rc<str> = match args.first() {
        Some(JValue::String(s)) => s.clone(),
        Some(JValue::Null) => return Ok(JValue::Null),
        Some(JValue::Undefined) | None => return Ok(JValue::Undefined),
        _ => {
            return Err(EvaluatorError::TypeError(
                "T0410: Argument 1 of function \"pad\" does not match function signature"
                    .to_string(),
            ))
        }
    };
    let width = match args.get(1) {
        Some(JValue::Number(n)) => n.trunc(),
        Some(JValue::Undefined) | None => return Ok(JValue::String(text)),
        _ => {
            return Err(EvaluatorError::TypeError(
                "T0410: Argument 2 of function \"pad\" does not match function signature"
                    .to_string(),
            ))
        }
    };
    if width.abs() > max_bytes as f64 {
        return Err(err(format!(
            "D3050: $pad was asked for {width} characters; results are capped at {max_bytes} bytes"
        )));
    }
    let fill: Vec<char> = match args.get(2) {
        Some(JValue::String(s)) if !s.is_empty() => s.chars().collect(),
        _ => vec![' '],
    };
    let want = width.abs() as usize;
    let have = text.chars().count();
    if have >= want {
        return Ok(JValue::String(text));
    }
    let padding: String = (0..want - have).map(|i| fill[i % fill.len()]).collect();
    Ok(JValue::from(if width < 0.0 {
        format!("{padding}{text}")
    } else {
        format!("{text}{padding}")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::jsonata::to_json;

    #[test]
    fn a_seeded_random_matches_java_util_random() {
        assert_eq!(JavaRandom::new(42).next_double(), 0.7275636800328681);
        assert_eq!(JavaRandom::new(0).next_double(), 0.730967787376657);
    }

    #[test]
    fn range_is_inclusive_and_capped() {
        let r = range(&[JValue::from(0i64), JValue::from(9i64), JValue::from(3i64)]).unwrap();
        assert_eq!(to_json(&r, 1000).unwrap(), Some(crate::json!([0, 3, 6, 9])));
        assert!(range(&[
            JValue::from(0i64),
            JValue::from(1_000_000_000i64),
            JValue::from(1i64)
        ])
        .is_err());
    }
}
