//! Reading JSON into [`Value`] by hand: one pass over the bytes that builds the tree and
//! counts every node's JSON size on the way.
//!
//! The reader takes a strict subset of what serde_json takes. Whatever it does not finish
//! (malformed input, a number whose rounding needs serde_json's own algorithm, a lone
//! surrogate escape, nesting deeper than [`MAX_DEPTH`]) is read again by serde_json, and
//! that result, value or error, is the answer. Accepted documents, parsed numbers and error
//! messages therefore stay exactly serde_json's; the fast path only has to agree with it on
//! what it accepts (`tests::agrees_with_serde_json` checks that on generated documents).
//!
//! Why by hand: behind serde's visitor, reading the order workload's 1 KB request was
//! ~30 % of an execution (`Value::deserialize`, `parse_str`, `next_key`, `from_utf8` per
//! string, float formatting to count sizes). Here the whole input is checked as UTF-8
//! once, strings are found eight bytes at a time, children collect on one scratch stack
//! and move into an exactly sized vector, and a plain decimal's JSON size is its length.

use std::borrow::Cow;
use std::sync::Arc;

use super::map::key_bit;
use super::marks::{self, Marks};
use super::push::{push, push_entry, push_in_place};
use super::{Array, Map, Number, RawText, Remembers, Str, Value};

/// Nesting the fast path handles; deeper documents go to serde_json (whose own limit is
/// 128), so its recursion error stays the one reported.
const MAX_DEPTH: u32 = 100;

/// Parses JSON bytes into a [`Value`], with serde_json's acceptance and error messages.
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// Parses JSON text into a [`Value`], with serde_json's acceptance and error messages.
pub fn from_str(text: &str) -> Result<Value, serde_json::Error> {
    let mut r = Reader::new(text);
    match r.value().filter(|_| r.at_end()) {
        Some(v) => Ok(v),
        None => serde_json::from_str(text),
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        // Left-overs from a document the fast path gave up on are dropped here.
        self.entries.clear();
        self.items.clear();
        self.scratch.clear();
        if self
            .entries
            .capacity()
            .max(self.items.capacity())
            .max(self.scratch.capacity())
            <= KEEP_SLOTS
            && self.marks.capacity() <= marks::KEEP_WORDS
        {
            let stacks = (
                std::mem::take(&mut self.entries),
                std::mem::take(&mut self.items),
                std::mem::take(&mut self.scratch),
                std::mem::take(&mut self.marks),
            );
            // During thread exit the slot may be gone; the stacks are then just freed.
            let _ = SPARE.try_with(|s| s.set(Some(stacks)));
        }
    }
}

/// The fast reader's position in a document. Every method returns `None` where the
/// fast path gives up; the caller then reads the whole document with serde_json.
pub(crate) struct Reader<'a> {
    text: &'a str,
    i: usize,
    depth: u32,
    max_depth: u32,
    // Children of the objects and arrays being read, innermost last.
    entries: Vec<(Str, Value)>,
    items: Vec<Value>,
    // An escaped string being decoded.
    scratch: String,
    // Where each string's plain run ends.
    marks: Marks,
    // The text, shared by the arrays and objects that keep theirs (see `RawText`); made
    // on the first one.
    source: Option<Arc<str>>,
    // Strings with escapes and numbers not in their shortest form read so far: text
    // holding one is not what the writer writes, so its node keeps no `RawText`.
    rewritten: u32,
    // The JSON size of the object or array just read (`None`: not known).
    node_size: Option<usize>,
}

/// A reader's scratch stacks, kept per thread between documents so that reading one
/// allocates only the vectors and strings it returns.
type Stacks = (Vec<(Str, Value)>, Vec<Value>, String, Marks);

thread_local! {
    static SPARE: std::cell::Cell<Option<Stacks>> = const { std::cell::Cell::new(None) };
}

/// Documents shorter than this keep no text for their nodes: writing a few hundred bytes
/// walks fast enough, and sharing the text costs an allocation and a copy (article-choice's
/// 220-byte request was 2 % slower with it, order's 941 bytes 10 % faster).
const KEEP_TEXT_FROM: usize = 512;

/// A node keeps its text only when that text is at least this fraction (1/n) of the
/// document, because the text it keeps alive is the whole document's: a small part of a
/// large request held for long (a parked execution) then keeps at most n times its own
/// size alive, not the request.
const KEEP_SHARE: usize = 8;

/// Stacks grown past this many slots by a large document are freed, not kept.
const KEEP_SLOTS: usize = 1024;

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub(crate) fn new(text: &'a str) -> Reader<'a> {
        let (entries, items, scratch, mut marks) = SPARE
            .try_with(|s| s.take())
            .ok()
            .flatten()
            .unwrap_or_default();
        marks.mark(text.as_bytes());
        Reader {
            text,
            i: 0,
            depth: 0,
            max_depth: MAX_DEPTH,
            entries,
            items,
            scratch,
            marks,
            source: None,
            rewritten: 0,
            node_size: None,
        }
    }

    /// Gives up on nesting deeper than `n` arrays and objects (counted as
    /// `pipeline::request::max_depth` counts them), so a caller with a tighter limit than
    /// [`MAX_DEPTH`] learns from a finished read that the document is within it.
    pub(crate) fn nesting_at_most(mut self, n: usize) -> Reader<'a> {
        self.max_depth = u32::try_from(n).unwrap_or(u32::MAX).min(MAX_DEPTH);
        self
    }

    /// The first `"`, `\` or control byte at or after `from` (or the text's end).
    #[inline(always)]
    fn special(&self, from: usize) -> usize {
        let end = self.marks.next(from, self.text.len());
        // A wrong mark inside a multi-byte character would cut a `&str` there: every
        // debug build and test run checks the marks against the plain scan.
        debug_assert_eq!(
            end,
            super::len::special(self.bytes(), from),
            "marks at {from}"
        );
        end
    }

    #[inline]
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte after white space, not consumed.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        let b = self.bytes();
        while let Some(&c) = b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(c);
            }
            self.i += 1;
        }
        None
    }

    /// Consumes `c` (after white space), or gives up.
    #[inline(always)]
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// Where the next value starts (white space skipped), if anything is left.
    pub(crate) fn next_offset(&mut self) -> Option<usize> {
        self.peek().map(|_| self.i)
    }

    /// The byte offset read up to.
    pub(crate) fn offset(&self) -> usize {
        self.i
    }

    /// Whether only white space is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Reads one value.
    pub(crate) fn value(&mut self) -> Option<Value> {
        Some(self.sized_value()?.0)
    }

    /// Reads a value that is a string as borrowed text (owned when it had escapes); any
    /// other value as a [`Value`].
    pub(crate) fn str_or_value(&mut self) -> Option<Result<Cow<'a, str>, Value>> {
        if self.peek()? != b'"' {
            return self.value().map(Err);
        }
        self.i += 1;
        Some(Ok(match self.string_body()? {
            Text::Borrowed(s) => Cow::Borrowed(s),
            Text::Escaped { .. } => Cow::Owned(self.scratch.clone()),
        }))
    }

    /// Reads the members of an object one by one: `each` gets every key and must read its
    /// value with this reader.
    pub(crate) fn object(
        &mut self,
        mut each: impl FnMut(&str, &mut Reader<'a>) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        self.depth += 1;
        if self.depth > self.max_depth {
            return None;
        }
        if self.peek()? == b'}' {
            self.i += 1;
            self.depth -= 1;
            return Some(());
        }
        loop {
            self.expect(b'"')?;
            let key = match self.string_body()? {
                Text::Borrowed(s) => Cow::Borrowed(s),
                Text::Escaped { .. } => Cow::Owned(self.scratch.clone()),
            };
            self.expect(b':')?;
            each(&key, self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    self.depth -= 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A value and its JSON size (`None` when not known, e.g. after a duplicate key).
    fn sized_value(&mut self) -> Option<(Value, Option<usize>)> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                let (s, len) = self.str_sized()?;
                Some((Value::String(s), Some(len)))
            }
            b'{' => {
                let m = self.object_node()?;
                Some((Value::Object(m), self.node_size))
            }
            b'[' => {
                let a = self.array_node()?;
                Some((Value::Array(a), self.node_size))
            }
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// Reads a key (its opening quote consumed) onto the stack of entries, with an empty
    /// string for its value until [`Self::value_into`] reads the value into it; returns
    /// the key's JSON length.
    ///
    /// Why in place: a string returned from a call came back through memory and was
    /// copied on at once, and that copy waited on the callee's narrower writes of the same
    /// bytes (perf: ~45 % of reading order's request on such loads; reading it took
    /// 2,600 ns before, 1,800 ns after, best of 9 alternated runs).
    #[inline]
    fn push_key(&mut self) -> Option<usize> {
        let b = self.bytes();
        let start = self.i;
        let end = self.special(start);
        if b.get(end) != Some(&b'"') {
            let (key, len) = self.str_sized()?;
            push_entry(&mut self.entries, key, Value::String(Str::new()));
            return Some(len);
        }
        self.i = end + 1;
        let text = self.text;
        // SAFETY: both halves of the slot are written (`write_plain_within` writes a whole
        // `Str` to a valid, aligned slot).
        unsafe {
            push_in_place(&mut self.entries, |slot| {
                std::ptr::addr_of_mut!((*slot).1).write(Value::String(Str::new()));
                Str::write_plain_within(std::ptr::addr_of_mut!((*slot).0), text, start, end);
            })
        }
        Some(end - start + 2)
    }

    /// Reads the value of the entry at `slot` (pushed by [`Self::push_key`]) into it,
    /// a string in place; returns its JSON size as [`Self::sized_value`] does. (Elements
    /// of arrays read the same way were no faster: choice-heavy's request, best of 9
    /// alternated runs, 3,265 ns as they are, 3,553 ns in place.)
    #[inline]
    fn value_into(&mut self, slot: usize) -> Option<Option<usize>> {
        match self.peek()? {
            b'"' => {}
            // Numbers are parsed here, not returned from a call, for the reason strings
            // are: the copy of a returned value waited on the callee's narrower writes
            // (perf: a third of this function's samples on that one load in order).
            c @ (b'-' | b'0'..=b'9') => {
                let (n, len) = self.number_parts(c == b'-')?;
                self.place(slot, || Value::Number(n));
                return Some(Some(len));
            }
            // Objects and arrays come back in registers (their size beside, in
            // `node_size`) and are placed in the slot, for the same reason.
            b'{' => {
                let m = self.object_node()?;
                self.place(slot, || Value::Object(m));
                return Some(self.node_size);
            }
            b'[' => {
                let a = self.array_node()?;
                self.place(slot, || Value::Array(a));
                return Some(self.node_size);
            }
            _ => {
                let (v, len) = self.sized_value()?;
                self.entries[slot].1 = v;
                return Some(len);
            }
        }
        self.i += 1;
        let b = self.bytes();
        let start = self.i;
        let end = self.special(start);
        if b.get(end) != Some(&b'"') {
            let (s, len) = self.str_sized()?;
            self.entries[slot].1 = Value::String(s);
            return Some(Some(len));
        }
        self.i = end + 1;
        let text = self.text;
        match &mut self.entries[slot].1 {
            Value::String(s) => s.set_plain_within(text, start, end),
            v => *v = Value::String(Str::plain_within(text, start, end)),
        }
        Some(Some(end - start + 2))
    }

    /// Writes the value `make` builds into the entry at `slot`, which still holds the
    /// empty string [`Self::push_key`] put there.
    ///
    /// Why a closure: the slot's address is taken before the value is built, so it is
    /// built in place. A value passed in was built on the stack (the bounds check's panic
    /// path could have had to drop it) and copied over with wide loads of its narrow
    /// stores, a stall (perf: ~15 % of reading order's request, on the numbers).
    #[inline(always)]
    fn place(&mut self, slot: usize, make: impl FnOnce() -> Value) {
        debug_assert!(matches!(&self.entries[slot].1, Value::String(s) if s.is_empty()));
        // SAFETY: `slot` was pushed by `push_key` and nothing popped since, so the pointer
        // is valid and aligned; what it points at, an empty inline string, owns nothing,
        // so writing over it without a drop leaks nothing.
        unsafe {
            let dst = std::ptr::addr_of_mut!(self.entries.get_unchecked_mut(slot).1);
            dst.write(make());
        }
    }

    /// A string as a [`Str`] and its JSON length, the opening quote already consumed.
    /// Text read without escapes is plain (it needs none when written).
    fn str_sized(&mut self) -> Option<(Str, usize)> {
        let start = self.i;
        Some(match self.string_body()? {
            Text::Borrowed(_) => (
                Str::plain_within(self.text, start, self.i - 1),
                self.i - start + 1,
            ),
            // Escaped as the writer escapes: the text's length is the JSON length, and the
            // text is what the writer writes (a request carrying a JSON document in a
            // string keeps its text, and its escapes are not counted again).
            Text::Escaped { canonical: true } => {
                (Str::from(self.scratch.as_str()), self.i - start + 1)
            }
            Text::Escaped { canonical: false } => {
                self.rewritten += 1;
                let s = Str::from(self.scratch.as_str());
                let n = s.json_len();
                (s, n)
            }
        })
    }

    /// The text from `start` to here, when it is exactly what the writer writes for a node
    /// of JSON size `size`: no white space (the size is the length) and nothing rewritten
    /// since `rewritten` was read.
    fn raw_text(&mut self, start: usize, rewritten: u32, size: Option<usize>) -> Option<RawText> {
        let len = self.i - start;
        if self.text.len() < KEEP_TEXT_FROM
            || len.saturating_mul(KEEP_SHARE) < self.text.len()
            || size != Some(len)
            || self.rewritten != rewritten
        {
            return None;
        }
        let text = self.text;
        let source = self.source.get_or_insert_with(|| Arc::from(text));
        RawText::new(Arc::clone(source), start, self.i)
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Option<(Value, Option<usize>)> {
        let end = self.i + word.len();
        (self.bytes().get(self.i..end)? == word).then(|| {
            self.i = end;
            (v, Some(word.len()))
        })
    }

    /// Reads an object; its JSON size is left in `node_size`. (A map and a size returned
    /// together went back through memory; a map alone fits in registers.)
    fn object_node(&mut self) -> Option<Map> {
        let (start, rewritten) = (self.i, self.rewritten);
        self.i += 1;
        self.depth += 1;
        if self.depth > self.max_depth {
            return None;
        }
        let base = self.entries.len();
        let mut size = Some(1usize);
        // Past a few keys the map keeps a hash index, so duplicates are found by it
        // rather than by a scan per key.
        let mut big: Option<Map> = None;
        // One bit per key read so far (see `key_bit`): a key whose bit is clear is new, and
        // only a key whose bit is set is looked for among the others.
        let mut seen = 0u64;
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                self.expect(b'"')?;
                let slot = self.entries.len();
                let key_len = self.push_key()?;
                self.expect(b':')?;
                let len = self.value_into(slot)?;
                let key = self.entries[slot].0.as_bytes();
                let bit = key_bit(key);
                let earlier = (big.is_none() && seen & bit != 0)
                    .then(|| {
                        self.entries[base..slot]
                            .iter()
                            .position(|(k, _)| super::map::same_key(k.as_bytes(), key))
                    })
                    .flatten();
                if let Some(m) = big.as_mut() {
                    let (key, v) = self.entries.pop().expect("the entry just read");
                    size = match m.insert(key, v) {
                        None => add(size, len, key_len + 2),
                        Some(_) => None,
                    };
                } else if let Some(at) = earlier {
                    // A duplicate key: the later value in the first position, as serde_json.
                    let (_, v) = self.entries.pop().expect("the entry just read");
                    self.entries[base + at].1 = v;
                    size = None;
                } else {
                    size = add(size, len, key_len + 2);
                    seen |= bit;
                    if self.entries.len() - base == Map::SCAN_KEYS {
                        big = Some(Map::from_stack(&mut self.entries, base, 0, None, seen));
                    }
                }
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        let mut m = match big {
            Some(m) => {
                if let Some(n) = size {
                    m.cache_json_size(n);
                }
                m
            }
            None if self.entries.len() == base => {
                self.node_size = Some(2);
                return Some(Map::new());
            }
            // The document's own object gets room for a few more keys: ResultPath writes
            // its results there (`$.validation`, `$.charge`), and an exact fit was copied
            // into a new vector at the first of them.
            None if self.depth == 0 => {
                Map::from_stack(&mut self.entries, base, ROOT_SPARE_KEYS, size, seen)
            }
            None => Map::from_stack(&mut self.entries, base, 0, size, seen),
        };
        if let Some(raw) = self.raw_text(start, rewritten, size) {
            m.set_raw_text(raw);
        }
        self.node_size = size;
        Some(m)
    }

    /// Reads an array; its JSON size is left in `node_size` (as [`Self::object_node`]).
    fn array_node(&mut self) -> Option<Array> {
        let (start, rewritten) = (self.i, self.rewritten);
        self.i += 1;
        self.depth += 1;
        if self.depth > self.max_depth {
            return None;
        }
        let base = self.items.len();
        let mut size = Some(1usize);
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            loop {
                // Objects (the usual element of a long array) are placed as entries are.
                let len = if self.peek()? == b'{' {
                    let m = self.object_node()?;
                    push(&mut self.items, Value::Object(m));
                    self.node_size
                } else {
                    let (v, len) = self.sized_value()?;
                    push(&mut self.items, v);
                    len
                };
                size = add(size, len, 1);
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        if self.items.len() == base {
            self.node_size = Some(2);
            return Some(Array::new());
        }
        let mut a = Array::from_sized(take_from(&mut self.items, base, 0), size);
        if let Some(raw) = self.raw_text(start, rewritten, size) {
            a.set_raw_text(raw);
        }
        self.node_size = size;
        Some(a)
    }

    /// A string's text, the opening quote already consumed; the closing one is consumed
    /// too. Text with escapes is decoded into `scratch`.
    #[inline]
    fn string_body(&mut self) -> Option<Text<'a>> {
        let b = self.bytes();
        let start = self.i;
        let end = self.special(start);
        match b.get(end)? {
            b'"' => {
                self.i = end + 1;
                // Quotes are ASCII, so both ends are character boundaries of valid text.
                Some(Text::Borrowed(&self.text[start..end]))
            }
            b'\\' => {
                self.scratch.clear();
                self.scratch.push_str(&self.text[start..end]);
                self.i = end;
                let canonical = self.escaped()?;
                Some(Text::Escaped { canonical })
            }
            // A control character: serde_json refuses it with its own message.
            _ => None,
        }
    }

    /// The rest of a string with escapes, from a backslash at `self.i`, into `scratch`;
    /// whether every escape was the writer's own (serde_json's): `\"`, `\\`, the five
    /// short control escapes and `\u00xx` in lowercase for the other control characters.
    fn escaped(&mut self) -> Option<bool> {
        let b = self.bytes();
        let mut canonical = true;
        loop {
            match *b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(canonical);
                }
                b'\\' => {
                    let c = match *b.get(self.i + 1)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => {
                            canonical = false;
                            '/'
                        }
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let digits = b.get(self.i + 2..self.i + 6)?;
                            let hi = hex4(digits)?;
                            canonical &= hi < 0x20
                                && !matches!(hi, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d)
                                && !digits.iter().any(u8::is_ascii_uppercase);
                            self.i += 6;
                            let code = match hi {
                                0xD800..=0xDBFF => {
                                    if b.get(self.i..self.i + 2)? != b"\\u" {
                                        return None;
                                    }
                                    let lo = hex4(b.get(self.i + 2..self.i + 6)?)?;
                                    if !(0xDC00..=0xDFFF).contains(&lo) {
                                        return None;
                                    }
                                    self.i += 6;
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                }
                                // A lone trailing surrogate: serde_json's error.
                                0xDC00..=0xDFFF => return None,
                                c => c,
                            };
                            self.scratch.push(char::from_u32(code)?);
                            continue;
                        }
                        _ => return None,
                    };
                    self.scratch.push(c);
                    self.i += 2;
                }
                c if c < 0x20 => return None,
                _ => {
                    let end = self.special(self.i);
                    self.scratch.push_str(self.text.get(self.i..end)?);
                    self.i = end;
                }
            }
        }
    }

    /// A number, taken on the fast path only where the result is certainly serde_json's:
    /// integers of up to 18 digits, and decimals of up to 15 significant digits whose
    /// value `m * 10^e` is exact in both factors (|e| <= 22, m < 2^53), which serde_json
    /// and a correctly rounded parse both compute as one rounded operation.
    fn number(&mut self) -> Option<(Value, Option<usize>)> {
        let negative = self.bytes()[self.i] == b'-';
        let (n, len) = self.number_parts(negative)?;
        Some((Value::Number(n), Some(len)))
    }

    /// [`Self::number`]'s number and JSON size, `negative` when it starts with `-`;
    /// inlined so that its result reaches the caller in registers.
    #[inline(always)]
    fn number_parts(&mut self, negative: bool) -> Option<(Number, usize)> {
        let b = self.bytes();
        let start = self.i;
        let mut i = start;
        if negative {
            i += 1;
        }
        let int_start = i;
        let mut m: u64 = 0;
        while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
            m = m.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            i += 1;
        }
        let int_digits = i - int_start;
        if int_digits == 0 || int_digits > 18 || (int_digits > 1 && b[int_start] == b'0') {
            return None;
        }
        let mut frac_digits = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let frac_start = i;
            while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
                m = m.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                i += 1;
            }
            frac_digits = i - frac_start;
            if frac_digits == 0 || int_digits + frac_digits > 18 {
                return None;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            return None;
        }
        self.i = i;
        let len = i - start;
        if frac_digits == 0 {
            return Some(if !negative {
                (Number::from(m), len)
            } else if m == 0 {
                // serde_json reads `-0` as the float -0.0, written `-0.0`.
                self.rewritten += 1;
                (Number::from_f64(-0.0)?, 4)
            } else {
                (Number::from(-(m as i64)), len)
            });
        }
        if m >= 1 << 53 || frac_digits > 22 {
            return None;
        }
        let f = m as f64 / POW10[frac_digits];
        let f = if negative { -f } else { f };
        let n = Number::from_f64(f)?;
        let size = decimal_len(&b[int_start..i], len).unwrap_or_else(|| {
            self.rewritten += 1;
            super::number_len(&n)
        });
        Some((n, size))
    }
}

/// Entries of spare capacity in the document's own object (see `object_node`).
const ROOT_SPARE_KEYS: usize = 4;

/// Moves `stack[base..]` into a vector of that length and room for `spare` more, leaving
/// `stack[..base]`: one allocation and one copy, where `drain(base..).collect()` moved
/// element by element (10.8 % of reading the order request) and `split_off(0)` would
/// hand over the stack's whole buffer.
fn take_from<T>(stack: &mut Vec<T>, base: usize, spare: usize) -> Vec<T> {
    let n = stack.len() - base;
    let mut out = Vec::with_capacity(n + spare);
    // SAFETY: the `n` elements from `base` are valid and `out` has room for them; after
    // the bitwise copy `stack` forgets them (its length drops to `base`) and `out` owns
    // them (its length rises to `n`), so each is dropped exactly once.
    unsafe {
        std::ptr::copy_nonoverlapping(stack.as_ptr().add(base), out.as_mut_ptr(), n);
        stack.set_len(base);
        out.set_len(n);
    }
    out
}

/// The JSON length of a float read from the plain decimal `digits` (`I.F`, `len` bytes
/// with the sign) when it is certainly its own shortest form: up to 15 significant digits
/// (then no shorter decimal names the same double), no trailing zero in the fraction
/// except a lone `.0` (how serde_json writes a whole float), and a magnitude the writer
/// prints without an exponent.
fn decimal_len(digits: &[u8], len: usize) -> Option<usize> {
    let dot = digits.iter().position(|&c| c == b'.')?;
    let (int, frac) = (&digits[..dot], &digits[dot + 1..]);
    let significant = if int == b"0" {
        // 0.001 and above print plainly; keep to 0.1 and above to stay well clear.
        if frac.first() == Some(&b'0') {
            return None;
        }
        frac.len()
    } else {
        int.len() + frac.len()
    };
    let lone_zero = frac == b"0" && int != b"0";
    if significant > 15 || (frac.last() == Some(&b'0') && !lone_zero) {
        return None;
    }
    Some(len)
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

enum Text<'a> {
    Borrowed(&'a str),
    /// Decoded into the reader's scratch buffer; `canonical` when every escape was the one
    /// the writer writes for its character, so the text is exactly what it writes.
    Escaped {
        canonical: bool,
    },
}

#[inline]
fn add(size: Option<usize>, member: Option<usize>, extra: usize) -> Option<usize> {
    Some(size?.saturating_add(member?).saturating_add(extra))
}

fn hex4(h: &[u8]) -> Option<u32> {
    h.iter()
        .try_fold(0u32, |acc, &c| Some(acc * 16 + (c as char).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::super::known_len;
    use super::*;
    use crate::value::len::special;

    #[test]
    fn the_document_object_has_room_for_result_paths_and_nested_ones_fit_exactly() {
        let v = from_str(r#"{"a":1,"b":{"c":2,"d":3},"e":[{"f":4}]}"#).expect("JSON");
        let root = v.as_object().expect("an object");
        assert_eq!(root.capacity(), 3 + ROOT_SPARE_KEYS);
        assert_eq!(root["b"].as_object().expect("an object").capacity(), 2);
        assert_eq!(root["e"][0].as_object().expect("an object").capacity(), 1);
    }

    fn same(text: &str) {
        let ours = from_str(text);
        let theirs: Result<serde_json::Value, _> = serde_json::from_str(text);
        match (ours, theirs) {
            (Ok(a), Ok(b)) => {
                let a_json = super::super::to_string(&a);
                assert_eq!(a_json, serde_json::to_string(&b).unwrap(), "{text}");
                // Unknown after a duplicate key; otherwise what is written.
                if let Some(n) = known_len(&a) {
                    assert_eq!(n, a_json.len(), "{text}");
                }
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
            (a, b) => panic!("{text}: ours {:?}, serde_json {:?}", a.is_ok(), b.is_ok()),
        }
        // The fast path alone must never accept what serde_json refuses, and the size it
        // counts is the length written.
        let mut r = Reader::new(text);
        if let Some((v, size)) = r.sized_value() {
            if r.at_end() {
                assert!(
                    serde_json::from_str::<serde_json::Value>(text).is_ok(),
                    "{text}"
                );
                if let Some(n) = size {
                    assert_eq!(n, super::super::to_string(&v).len(), "{text}");
                }
            }
        }
    }

    #[test]
    fn agrees_with_serde_json_on_hand_picked_documents() {
        for text in [
            "null",
            "true",
            "false",
            " 0 ",
            "-0",
            "-0.0",
            "0.5",
            "1.0",
            "24.0",
            "18.50",
            "18.5",
            "134.74",
            "29.99",
            "-7.25",
            "0.1",
            "0.01",
            "0.001",
            "1e2",
            "1E-2",
            "-1.5e-300",
            "123456789012345678",
            "1234567890123456789",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "1.7976931348623157e308",
            "1e400",
            "9007199254740993.0",
            "0.30000000000000004",
            "123456789012345.6",
            "1234567890123456.7",
            "00",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "+1",
            "\"\"",
            "\"plain\"",
            "\"tab\\there\"",
            "\"q\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
            "\"\\u00e9\\u0001\"",
            "\"\\ud83c\\udf89\"",
            "\"\\ud83c\"",
            "\"\\udf89\"",
            "\"\\ud83cx\"",
            "\"\\x\"",
            "\"ctl\u{1}\"",
            "\"unterminated",
            "\"é日本\"",
            "[]",
            "[ ]",
            "{}",
            "{ }",
            "[1,2,3]",
            "[1,]",
            "[,1]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{\"a\":1,\"a\":2}",
            "{\"a\":\"x\",\"b\":2,\"a\":{\"c\":[\"y\"]},\"d\":\"z\"}",
            "{\"a\\n\":\"1\\t\",\"a\\n\":\"two\",\"b\":\"q\\\"\"}",
            // Past `Map::SCAN_KEYS` (16) keys, then a duplicate of the first.
            "{\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":\"x\",\"k11\":1,\"k12\":2,\"k13\":3,\"k14\":4,\"k15\":5,\"k16\":6,\"k17\":7,\"k1\":\"again\",\"k18\":\"y\"}",
            "{\"a string value longer than twenty-two bytes\":\"and a value as long as that too\"}",
            "[\"x\",{\"y\":\"z\"},\"\"]",
            "{\"a\":{\"b\":[1,{\"c\":null}]},\"d\":\"e\"}",
            "{\"k\\u0041\":1}",
            "[1] x",
            "",
            "   ",
            "{\"a\":tru}",
            "nul",
            "[\"a\"\"b\"]",
        ] {
            same(text);
        }
    }

    /// Whether `v` is written from the text it was read from.
    fn kept(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.raw_text().is_some(),
            Value::Array(a) => a.raw_text().is_some(),
            _ => false,
        }
    }

    #[test]
    fn an_object_appended_to_writes_its_text_then_the_new_entries() {
        let pad = "p".repeat(KEEP_TEXT_FROM);
        let text = format!(r#"{{"a":{{"b":1}},"pad":"{pad}","n":2.5}}"#);
        let theirs = |v: &Value| {
            let mut t: serde_json::Value = serde_json::from_str(&text).unwrap();
            let ours: serde_json::Value =
                serde_json::from_str(&super::super::to_string(v)).unwrap();
            (t.as_object_mut().unwrap().clone(), ours)
        };
        let read = || from_str(&text).unwrap();
        // Appended, then the appended entry replaced: the text still holds the first three.
        let mut v = read();
        let m = v.as_object_mut().unwrap();
        m.insert("r".into(), crate::json!({"x": [1, "y"]}));
        m.insert("s".into(), Value::from(3));
        m.insert("r".into(), Value::from("z"));
        assert!(m.raw_prefix().is_some_and(|(_, n)| n == 3));
        let written = super::super::to_string(&v);
        assert_eq!(
            written,
            format!(r#"{},"r":"z","s":3}}"#, &text[..text.len() - 1])
        );
        let (mut t, ours) = theirs(&v);
        t.insert("r".into(), "z".into());
        t.insert("s".into(), 3.into());
        assert_eq!(ours, serde_json::Value::Object(t));
        // A read entry replaced, or one changed in place: the text is not used.
        let mut v = read();
        let m = v.as_object_mut().unwrap();
        m.insert("r".into(), Value::from(1));
        m.insert("n".into(), Value::from(7));
        assert!(m.raw_prefix().is_none());
        assert_eq!(
            super::super::to_string(&v),
            format!(r#"{{"a":{{"b":1}},"pad":"{pad}","n":7,"r":1}}"#)
        );
        let mut v = read();
        let m = v.as_object_mut().unwrap();
        m.insert("r".into(), Value::from(1));
        *m.get_mut("a").unwrap() = Value::from(false);
        assert_eq!(
            super::super::to_string(&v),
            format!(r#"{{"a":false,"pad":"{pad}","n":2.5,"r":1}}"#)
        );
    }

    #[test]
    fn text_is_kept_only_where_the_writer_would_write_the_same_bytes() {
        let pad = "p".repeat(KEEP_TEXT_FROM / 2);
        // Escapes as the writer writes them are clean too: the text is its output.
        let clean = format!(
            r#"{{"a":[1,-2,0.5,24.0,"x",true,null,{{}},"{pad}"],"b":{{"c":"d","p":"{pad}"}},"small":[1],"e\"k":"{{\"q\":\"\\\n\t\b\f\r\u0001\u001f"}}"#
        );
        let v = from_str(&clean).unwrap();
        assert!(kept(&v) && kept(&v["a"]) && kept(&v["b"]));
        assert_eq!(known_len(&v), Some(clean.len()));
        assert!(
            !kept(&v["small"]),
            "a node under an eighth of the document keeps no text (it would keep it all alive)"
        );
        let short = from_str(r#"{"a":[1]}"#).unwrap();
        assert!(
            !kept(&short) && !kept(&short["a"]),
            "a short document keeps no text"
        );
        assert_eq!(super::super::to_string(&v), clean);
        // Each of these is written otherwise than read, so neither it nor what holds it
        // keeps its text; a clean sibling still does.
        for dirty in [
            r#"{"a": 1}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":"\/"}"#,
            r#"{"a":"\u001F"}"#,
            r#"{"a":"\u000a"}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"\/":1}"#,
            r#"{"a":1.50}"#,
            r#"{"a":-0}"#,
            r#"{"a":1e2}"#,
            r#"{"a":0.0001}"#,
            r#"{"a":1.2345678901234567}"#,
            r#"{"a":1,"a":2}"#,
            "{\"a\":[1,2\n]}",
        ] {
            let text = format!(r#"[{dirty},{{"clean":[1,"{pad}{pad}"]}}]"#);
            let v = from_str(&text).unwrap();
            assert!(!kept(&v) && !kept(&v[0]), "{dirty}");
            // Where the fast path gave up (exponents, long numbers) serde_json read it all.
            let fast = Reader::new(&text).value().is_some();
            assert_eq!(kept(&v[1]) && kept(&v[1]["clean"]), fast, "{dirty}");
            let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(super::super::to_string(&v), theirs.to_string(), "{dirty}");
        }
    }

    #[test]
    fn a_write_drops_the_kept_text_of_the_node_and_of_what_holds_it() {
        let pad = "p".repeat(KEEP_TEXT_FROM / 2);
        let text = format!(r#"{{"a":{{"b":1,"p":"{pad}"}},"c":[1,"{pad}"]}}"#);
        let original = from_str(&text).unwrap();
        let mut v = original.clone();
        v["a"]
            .as_object_mut()
            .unwrap()
            .insert(Str::from("n"), Value::Bool(true));
        v["c"].as_array_mut().unwrap().push(Value::Null);
        assert!(!kept(&v) && !kept(&v["a"]) && !kept(&v["c"]));
        assert_eq!(
            super::super::to_string(&v),
            format!(r#"{{"a":{{"b":1,"p":"{pad}","n":true}},"c":[1,"{pad}",null]}}"#)
        );
        // The copy-on-write left the original and its text alone.
        assert!(kept(&original) && kept(&original["a"]));
        assert_eq!(super::super::to_string(&original), text);
    }

    #[test]
    fn a_repeated_key_is_found_whatever_came_between() {
        // Up to 16 keys, so the object is built by the reader's scan (its one-bit-per-key
        // filter), not by the map's index; every key repeated at every distance.
        let keys: Vec<String> = (0..16)
            .map(|i| format!("k{}", "x".repeat(i % 5) + &i.to_string()))
            .collect();
        for n in 1..=keys.len() {
            for again in 0..n {
                let mut members: Vec<String> = keys[..n]
                    .iter()
                    .enumerate()
                    .map(|(i, k)| format!("\"{k}\":{i}"))
                    .collect();
                members.push(format!("\"{}\":\"again\"", keys[again]));
                same(&format!("{{{}}}", members.join(",")));
            }
        }
    }

    #[test]
    fn agrees_with_serde_json_on_nesting_and_large_objects() {
        same(&format!("{}{}", "[".repeat(99), "]".repeat(99)));
        same(&format!("{}{}", "[".repeat(127), "]".repeat(127)));
        same(&format!("{}{}", "[".repeat(129), "]".repeat(129)));
        let wide: Vec<String> = (0..40).map(|i| format!("\"k{}\":{i}", i % 30)).collect();
        same(&format!("{{{}}}", wide.join(",")));
    }

    #[test]
    fn agrees_with_serde_json_on_generated_numbers_and_strings() {
        let mut next = crate::value::tests::xorshift();
        let alphabet = b"0123456789.-eE+";
        for _ in 0..20_000 {
            let n = 1 + (next() % 12) as usize;
            let s: String = (0..n)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                .collect();
            same(&s);
            let digits = next() % 10_000_000;
            let scale = next() % 8;
            let text = format!(
                "{}.{:0width$}",
                digits / 10u64.pow(scale as u32),
                digits % 10u64.pow(scale as u32),
                width = scale as usize
            );
            same(&text);
        }
        // Escapes the writer writes as read (`\"`, `\\`, `\t`, `\u001f`) and others.
        let chars = [
            "a", "\"", "\\", "\\n", "\\u0041", "é", "\u{1}", "\\ud800", "/", " ", "\\\"", "\\\\",
            "\\t", "\\/", "\\u001f", "\\u001F", "\\u0000", "\\u000a",
        ];
        // Long enough that a clean document keeps its text and the writer copies it.
        let pad = "p".repeat(KEEP_TEXT_FROM);
        let mut kept_docs = 0;
        for _ in 0..5_000 {
            let n = (next() % 30) as usize;
            let body: String = (0..n)
                .map(|_| chars[(next() % chars.len() as u64) as usize])
                .collect();
            same(&format!("\"{body}\""));
            same(&format!("{{\"{body}\":[\"{body}\"]}}"));
            let long = format!("{{\"{body}\":[\"{body}\",\"{pad}\"],\"p\":\"{pad}\"}}");
            same(&long);
            kept_docs +=
                usize::from(from_str(&long).is_ok_and(|v| kept(&v)) && body.contains('\\'));
        }
        assert!(
            kept_docs > 100,
            "only {kept_docs} documents with escapes kept their text"
        );
    }

    #[test]
    fn the_workloads_read_the_same_as_through_serde_json() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/workloads");
        for entry in std::fs::read_dir(&dir).expect("benches/workloads exists") {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            same(&text);
        }
    }

    // The scratch stacks outlive a reader: what a given-up read left on them must not
    // reach the next document.
    #[test]
    fn a_read_given_up_midway_leaves_nothing_for_the_next() {
        for broken in [r#"[1,2,{"a":[3,"#, r#"{"a":{"b":1,"c":"#, r#"{"k":"\u"#] {
            assert!(from_str(broken).is_err());
            same(r#"{"x":[{"y":1},2],"z":"w"}"#);
            same("[[],{},[{}]]");
        }
        let big = format!("[{}]", vec!["{\"k\":1}"; 5000].join(","));
        same(&big);
        same(r#"{"after":"big"}"#);
    }

    #[test]
    fn a_special_byte_is_found_in_every_position() {
        for len in 0..40 {
            for at in 0..len {
                for c in [b'"', b'\\', 0x01, 0x1f] {
                    let mut b = vec![b'a'; len];
                    b[at] = c;
                    assert_eq!(special(&b, 0), at, "{len} {at} {c}");
                }
            }
            for plain in [b' ', 0x7f, 0x80, 0xC3, 0xff] {
                assert_eq!(special(&vec![plain; len], 0), len, "{len} {plain}");
            }
            // From every start, past a hit before it.
            if len == 0 {
                continue;
            }
            let mut b = vec![b'x'; len];
            b[len / 2] = b'"';
            for from in 0..=len {
                let want = if from <= len / 2 { len / 2 } else { len };
                assert_eq!(special(&b, from), want, "{len} from {from}");
            }
        }
    }
}
