//! The length of a value as compact JSON, counted without writing it: what the 256 KiB
//! payload limit counts, kept equal to what [`super::to_vec`] writes.

use super::{Number, Remembers, Value};

/// The bytes `s` takes as a JSON string, quotes and escapes included.
#[inline]
pub(crate) fn string_len(s: &str) -> usize {
    let b = s.as_bytes();
    // Most strings need no escape: the test runs eight bytes at a time.
    let first = special(b, 0);
    if first == b.len() {
        return b.len() + 2;
    }
    escaped_len(b, first)
}

/// [`string_len`] of text with an escape at `first`: from there the escapes are counted
/// eight bytes at a time too. (Byte by byte, a request's JSON body carried in a string,
/// 346 bytes with 64 `\"`, took ~3 % of etl-intrinsics to count.)
#[inline(never)]
fn escaped_len(b: &[u8], first: usize) -> usize {
    // One more byte for each `"`, `\` and control byte (`\n`), four more for the
    // controls written `\u00xx`.
    fn long(c: u8) -> usize {
        match c {
            b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 0,
            0..=0x1f => 4,
            _ => 0,
        }
    }
    let mut n = b.len() + 2;
    let mut i = first;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let ctrl = zero_bytes(w & (ONES * 0xe0));
        let hits = zero_bytes(w ^ (ONES * u64::from(b'"')))
            | zero_bytes(w ^ (ONES * u64::from(b'\\')))
            | ctrl;
        n += hits.count_ones() as usize;
        if ctrl != 0 {
            n += chunk.iter().map(|&c| long(c)).sum::<usize>();
        }
        i += 8;
    }
    n + b[i..]
        .iter()
        .map(|&c| match c {
            b'"' | b'\\' => 1,
            c => usize::from(c < 0x20) + long(c),
        })
        .sum::<usize>()
}

const ONES: u64 = 0x0101_0101_0101_0101;

/// The high bit of each zero byte of `x`, exactly (no borrow from a neighbour).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((x & LOW) + LOW) | x | LOW)
}

/// The position of the first `"`, `\` or control byte at or after `from` (or the end),
/// eight bytes at a time.
#[inline]
pub(crate) fn special(b: &[u8], from: usize) -> usize {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let quote = w ^ (ONES * u64::from(b'"'));
        let slash = w ^ (ONES * u64::from(b'\\'));
        // A byte is flagged when zero (quote, slash) or below 0x20 (control); bytes at
        // or above 0x80 clear the test through `!w`, so UTF-8 text is never flagged.
        let hit = (quote.wrapping_sub(ONES) & !quote
            | slash.wrapping_sub(ONES) & !slash
            | w.wrapping_sub(ONES * 0x20) & !w)
            & HIGH;
        if hit != 0 {
            // Borrows can flag a byte above a real hit, never one below it.
            return i + (hit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

/// The bytes `n` takes as JSON.
#[inline]
pub(crate) fn number_len(n: &Number) -> usize {
    if let Some(u) = n.as_u64() {
        u.checked_ilog10().map_or(1, |d| d as usize + 1)
    } else if let Some(i) = n.as_i64() {
        // Negative here: u64 took every non-negative integer.
        i.unsigned_abs()
            .checked_ilog10()
            .map_or(1, |d| d as usize + 2)
    } else {
        let f = n
            .as_f64()
            .expect("a Number is an integer or a finite float");
        float_len(f)
    }
}

/// The length of the shortest form serde_json and our writer both write for `f`.
#[inline]
fn float_len(f: f64) -> usize {
    match short_decimal(f) {
        Some((n, d)) => {
            // The integer part's digits ("0" below one), the point, and at least one
            // decimal ("24.0").
            let whole = n / 10u64.pow(d as u32);
            let digits = whole.checked_ilog10().map_or(1, |l| l as usize + 1);
            usize::from(f < 0.0) + digits + 1 + d.max(1)
        }
        None => zmij::Buffer::new().format_finite(f).len(),
    }
}

/// `|f|` as `n / 10^d` with the fewest decimals `d`, for the floats whose shortest form is
/// a short decimal without an exponent (`n` then has that form's digits); `None` for others.
///
/// Formatting a float was ~170 instructions, done to count every float a template copies
/// and again to write it. Most floats in data are short decimals (prices, weights): for
/// those, `round(|f| * 10^d) / 10^d == |f|` holds exactly when the decimal with `d`
/// decimals reads back as `f` (the integer and the power of ten are exact, and the division
/// rounds the quotient as reading the decimal rounds it), so the first `d` that holds gives
/// the shortest form. Magnitudes in [1e-4, 1e15) are written without an exponent.
#[inline]
pub(crate) fn short_decimal(f: f64) -> Option<(u64, usize)> {
    const POW10: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
    // 2^52: below it, adding one half is exact and truncating rounds to the nearest
    // integer (`f64::round` is a libm call without SSE4.1, 1.3 % of map-parallel).
    const HALF_EXACT: f64 = 4_503_599_627_370_496.0;
    let a = f.abs();
    if !(1e-4..1e15).contains(&a) {
        return None;
    }
    for (d, &p) in POW10.iter().enumerate() {
        let x = a * p;
        if x >= HALF_EXACT {
            return None;
        }
        // SAFETY: 0 <= x + 0.5 <= 2^52 (`a` is positive, `x` below 2^52): finite, and
        // within i64. Unchecked and signed, the conversions are one instruction each; `as
        // u64` both ways compiled to ~12 (saturation and the unsigned fix-ups).
        let n = unsafe { (x + 0.5).to_int_unchecked::<i64>() };
        if n as f64 / p == a {
            return Some((n as u64, d));
        }
    }
    None
}

/// The JSON length of a scalar, or of an array or object whose length is remembered;
/// `None` for one that would have to be walked. Always inlined: called, it read back
/// through memory a value its caller had just written (perf: 6 % of etl-intrinsics).
#[inline(always)]
pub(crate) fn known_len(v: &Value) -> Option<usize> {
    Some(match v {
        Value::Null => 4,
        Value::Bool(b) => {
            if *b {
                4
            } else {
                5
            }
        }
        Value::Number(n) => number_len(n),
        Value::String(s) => s.json_len(),
        Value::Array(a) if a.is_empty() => 2,
        Value::Array(a) => return a.cached_json_size(),
        Value::Object(o) if o.is_empty() => 2,
        Value::Object(o) => return o.cached_json_size(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    /// A string's counted length is serde_json's written one, whatever its escapes and
    /// wherever they fall.
    #[test]
    fn string_lengths_match_the_written_form() {
        let pieces = [
            "a", "\"", "\\", "\n", "\u{1}", "\u{1f}", "é", "€", "𝄞", "/", " ", "\t", "\u{7f}",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..200 {
            for _ in 0..8 {
                let s: String = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly plain text, as real strings are.
                        let k = (seed % 40) as usize;
                        pieces.get(k).copied().unwrap_or("x")
                    })
                    .collect();
                let written = serde_json::to_string(&s).expect("a string serializes");
                assert_eq!(string_len(&s), written.len(), "{written}");
            }
        }
    }

    /// A float's counted length and written form are the formatted ones: short decimals,
    /// floats on either side of the range handled without formatting, random bit patterns.
    #[test]
    fn float_lengths_match_the_written_form() {
        let mut floats = vec![
            0.0,
            -0.0,
            1e-4,
            9.99e-5,
            1e-5,
            1e15,
            999_999_999_999_999.9,
            1e16,
            0.1,
            0.2,
            0.3,
            1.0 / 3.0,
            2.0f64.powi(53),
            9_007_199_254_740_993.0,
            123_456.789_012_345_6,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            0.000_123_456_789,
            1e14 + 0.5,
        ];
        // Short decimals of every magnitude and decimal count the fast path tries.
        let mut next = crate::value::tests::xorshift();
        for _ in 0..200_000 {
            let d = (next() % 12) as i32;
            let digits = next() % 10u64.pow((next() % 17) as u32 + 1);
            floats.push(digits as f64 / 10f64.powi(d));
            floats.push(-(digits as f64) / 10f64.powi(d));
            floats.push(f64::from_bits(next()));
        }
        for f in floats.into_iter().filter(|f| f.is_finite()) {
            let formatted = zmij::Buffer::new().format_finite(f).as_bytes().to_vec();
            assert_eq!(float_len(f), formatted.len(), "{f:?}");
            let v = Value::Number(Number::from_f64(f).expect("finite"));
            assert_eq!(crate::value::to_vec(&v), formatted, "{f:?}");
        }
    }

    #[test]
    fn lengths_match_what_serde_json_writes() {
        for v in [
            json!(0),
            json!(9),
            json!(10),
            json!(-1),
            json!(-10),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(0.5),
            json!(-1.5e-300),
            json!(1e21),
            json!(3.0),
            json!(""),
            json!("plain"),
            json!("tab\there \"q\" \\ \u{1} é \u{7f}"),
            json!(null),
            json!(true),
            json!(false),
            json!([]),
            json!({}),
        ] {
            let written = serde_json::to_string(&serde_json::Value::from(&v)).unwrap();
            assert_eq!(known_len(&v), Some(written.len()), "{written}");
        }
    }
}
