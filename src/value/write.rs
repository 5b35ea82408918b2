//! Writing [`Value`] as JSON.
//!
//! Compact output ([`to_writer`], [`to_vec`], [`to_string`], `Display`) is written by hand
//! straight into the buffer: the same bytes serde_json writes (its shortest floats such as
//! `61.5` and `1e21` through the same `zmij`, integers through `itoa`, its escapes), but
//! without a serializer call per node and with strings copied in runs between the rare
//! bytes that need an escape. The `Serialize` impls below serve everything else (pretty
//! output, other formats).

use std::fmt;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::str::INLINE;
use super::{Array, Map, Str, Value};

impl Serialize for Value {
    #[inline]
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => n.serialize(s),
            Value::String(x) => s.serialize_str(x),
            Value::Array(a) => a.serialize(s),
            Value::Object(m) => m.serialize(s),
        }
    }
}

impl Serialize for Array {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for x in self.iter() {
            seq.serialize_element(x)?;
        }
        seq.end()
    }
}

impl Serialize for Map {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            m.serialize_entry(k.as_str(), v)?;
        }
        m.end()
    }
}

impl Serialize for Str {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

/// Compact JSON bytes.
pub fn to_vec(v: &Value) -> Vec<u8> {
    // State data usually knows its size (the payload check after each state counted it),
    // so the buffer is allocated once instead of doubling its way up.
    // The slack: a short string is copied at its buffer's full size (`write_short`), and
    // one ending the text would otherwise grow an exactly sized buffer.
    let mut out = Vec::with_capacity(super::len::known_len(v).unwrap_or(128) + INLINE + 3);
    to_writer(&mut out, v);
    out
}

/// Appends compact JSON to `out`.
pub fn to_writer(out: &mut Vec<u8>, v: &Value) {
    write_value::<false>(out, v);
}

/// Appends the compact JSON text of `v` as one JSON string, quotes included: the bytes
/// of `serde_json::to_vec(&to_string(v))`, written in one pass (AWS answers carry an
/// execution's output this way). Strings known to need no escape are copied as they are,
/// so only the structural quotes change.
pub fn to_writer_quoted(out: &mut Vec<u8>, v: &Value) {
    out.push(b'"');
    write_value::<true>(out, v);
    out.push(b'"');
}

/// The writer behind both: `QUOTED` writes every quote of the text as `\"`, and the
/// inside of a string needing escapes escaped twice.
fn write_value<const QUOTED: bool>(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str::<QUOTED>(out, s),
        Value::Array(a) => {
            if let Some(raw) = a.raw_text().filter(|_| !QUOTED) {
                out.extend_from_slice(raw);
                return;
            }
            out.push(b'[');
            let mut items = a.iter();
            if let Some(first) = items.next() {
                write_value::<QUOTED>(out, first);
                for x in items {
                    out.push(b',');
                    write_value::<QUOTED>(out, x);
                }
            }
            out.push(b']');
        }
        Value::Object(m) => {
            if let Some((raw, covers)) = m.raw_prefix().filter(|&(_, n)| !QUOTED && n > 0) {
                if covers == m.len() {
                    out.extend_from_slice(raw);
                    return;
                }
                // Entries appended since it was read (ResultPath's results) follow the
                // text, which ends with the object's closing brace.
                out.extend_from_slice(&raw[..raw.len() - 1]);
                for (k, x) in m.iter().skip(covers) {
                    out.push(b',');
                    write_key::<QUOTED>(out, k);
                    write_value::<QUOTED>(out, x);
                }
                out.push(b'}');
                return;
            }
            out.push(b'{');
            let mut entries = m.iter();
            if let Some((k, x)) = entries.next() {
                write_key::<QUOTED>(out, k);
                write_value::<QUOTED>(out, x);
                for (k, x) in entries {
                    out.push(b',');
                    write_key::<QUOTED>(out, k);
                    write_value::<QUOTED>(out, x);
                }
            }
            out.push(b'}');
        }
    }
}

fn write_number(out: &mut Vec<u8>, n: &super::Number) {
    if let Some(u) = n.as_u64() {
        out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
    } else if let Some(i) = n.as_i64() {
        out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
    } else {
        let f = n
            .as_f64()
            .expect("a Number is an integer or a finite float");
        match super::len::short_decimal(f) {
            Some((n, d)) => write_decimal(out, f < 0.0, n, d),
            None => out.extend_from_slice(zmij::Buffer::new().format_finite(f).as_bytes()),
        }
    }
}

/// A float that is `n / 10^d` (see `short_decimal`) as its shortest form: `n`'s digits
/// with a point `d` from the end ("0." and zeros first below one, ".0" after an integer).
fn write_decimal(out: &mut Vec<u8>, negative: bool, n: u64, d: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n).as_bytes();
    if negative {
        out.push(b'-');
    }
    if d == 0 {
        out.extend_from_slice(digits);
        out.extend_from_slice(b".0");
    } else if digits.len() > d {
        let (whole, frac) = digits.split_at(digits.len() - d);
        out.extend_from_slice(whole);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + d - digits.len(), b'0');
        out.extend_from_slice(digits);
    }
}

/// An object's key and its colon.
#[inline(always)]
fn write_key<const QUOTED: bool>(out: &mut Vec<u8>, k: &Str) {
    if let (false, Some((buf, n))) = (QUOTED, k.plain_inline()) {
        write_short(out, buf, n, b':');
        return;
    }
    write_str::<QUOTED>(out, k);
    out.push(b':');
}

/// A short plain string in quotes, then `tail` unless it is 0: the whole inline buffer is
/// copied at a fixed size and the length set after, which beat three variable-length
/// copies.
#[inline(always)]
fn write_short(out: &mut Vec<u8>, buf: &[u8; INLINE], n: usize, tail: u8) {
    out.reserve(INLINE + 3);
    let len = out.len();
    // SAFETY: `reserve` left room for INLINE + 3 bytes past `len`; `n <= INLINE`, so the
    // bytes kept (quote, n bytes of text, quote, tail) are all written, and `buf` is
    // initialized memory of INLINE bytes.
    unsafe {
        let dst = out.as_mut_ptr().add(len);
        dst.write(b'"');
        std::ptr::copy_nonoverlapping(buf.as_ptr(), dst.add(1), INLINE);
        dst.add(1 + n).write(b'"');
        dst.add(2 + n).write(tail);
        out.set_len(len + n + 2 + usize::from(tail != 0));
    }
}

/// A JSON string with serde_json's escapes: `\"`, `\\`, the five short control
/// escapes, `\u00xx` (lowercase hex) for the other control bytes, everything else as is.
fn write_str<const QUOTED: bool>(out: &mut Vec<u8>, s: &Str) {
    if let (false, Some((buf, n))) = (QUOTED, s.plain_inline()) {
        write_short(out, buf, n, 0);
        return;
    }
    let quote: &[u8] = if QUOTED { b"\\\"" } else { b"\"" };
    out.reserve(s.len() + 2 * quote.len());
    out.extend_from_slice(quote);
    if s.is_plain() {
        out.extend_from_slice(s.as_bytes());
    } else if QUOTED {
        // Rare: escaped once as the text has it, then again as part of a string.
        let mut once = Vec::with_capacity(s.len() + 8);
        escape_str_into(&mut once, s);
        let once = std::str::from_utf8(&once).expect("escaping keeps UTF-8");
        escape_str_into(out, once);
    } else {
        escape_str_into(out, s);
    }
    out.extend_from_slice(quote);
}

/// Appends `s` escaped as the inside of a JSON string, with serde_json's exact escapes.
pub fn escape_str_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Most strings need no escape: runs between escapes are found eight bytes at a
    // time and copied whole.
    let mut run = 0;
    loop {
        let i = super::len::special(bytes, run);
        if i == bytes.len() {
            break;
        }
        let b = bytes[i];
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            _ => 0,
        };
        if short != 0 {
            out.extend_from_slice(&[b'\\', short]);
        } else {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

/// Compact JSON text.
pub fn to_string(v: &Value) -> String {
    String::from_utf8(to_vec(v)).expect("serde_json writes UTF-8")
}

/// Indented JSON text (serde_json's pretty form).
pub fn to_string_pretty(v: &Value) -> String {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::pretty(&mut out);
    v.serialize(&mut ser)
        .expect("writing a Value into a Vec cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Compact JSON (`{:#}`: indented), as serde_json's `Value` displays.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = if f.alternate() {
            to_string_pretty(self)
        } else {
            to_string(self)
        };
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn compact_output_is_byte_for_byte_serde_jsons() {
        let mut every_byte = String::new();
        for c in 0u8..0x80 {
            every_byte.push(char::from(c));
        }
        every_byte.push_str("é€😀");
        for v in [
            json!({"a": [1, -20, "x\"y\n", null, true, false], "bb": {}, "c": [], "d": {"e": [[]]}}),
            json!([
                0.5,
                -0.25,
                1e300,
                -1.5e-300,
                123456.789,
                1e21,
                1e-7,
                3.0,
                f64::MAX
            ]),
            json!([0, u64::MAX, i64::MIN, -1, 10]),
            json!(every_byte),
            json!(""),
            json!(null),
        ] {
            let ours = to_vec(&v);
            let theirs = serde_json::to_vec(&v).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
            let mut quoted = Vec::new();
            to_writer_quoted(&mut quoted, &v);
            let text = serde_json::to_string(&v).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&quoted),
                serde_json::to_string(&text).unwrap()
            );
        }
    }
}
