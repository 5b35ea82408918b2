//! The state data type: JSON whose arrays and objects are shared by reference count.
//!
//! [`Value`] mirrors `serde_json::Value`'s variants and methods so that code reads the
//! same, but a clone is a pointer bump (or a 24-byte copy for a short string), objects are
//! insertion-ordered vectors scanned linearly (hash-indexed only when large), and a write
//! into a shared array or object copies only that node's slots (copy on write), so a
//! ResultPath write copies the spine it changes and nothing under it. An object's header
//! and entries are one allocation ([`node`]).
//!
//! Parsing ([`from_slice`]) and writing ([`to_vec`]) are written by hand but keep
//! serde_json's behaviour exactly: the reader hands anything it does not finish to
//! serde_json (so accepted input and error messages are its), and the writer writes its
//! number formats and escapes. An array or object read from a request keeps its text
//! ([`RawText`]) while unchanged (an object also through entries appended to it), where
//! that text is byte for byte what the writer would write, so the parts of a request an
//! execution only passes through are written back as one copy. Definitions, config and
//! network task payloads stay `serde_json::Value` and convert at their edge ([`convert`]).

mod array;
pub mod convert;
mod index;
mod len;
mod map;
mod marks;
mod node;
mod parse;
mod push;
mod read;
mod str;
mod write;

pub use array::Array;
pub use index::Index;
pub(crate) use len::{known_len, number_len, string_len};
pub(crate) use map::key_bit;
pub(crate) use map::same_key;
pub use map::{Entry, Map};
pub(crate) use read::Reader;
pub use read::{from_slice, from_str};
pub use serde_json::Number;
pub use str::Str;
pub use write::{
    escape_str_into, to_string, to_string_pretty, to_vec, to_writer, to_writer_quoted,
};

/// An array's or object's JSON text as the reader found it, kept while the node is
/// unchanged so that writing it is one copy (no walk, no float formatting). The reader
/// attaches it only where those bytes are exactly what the writer would write: compact
/// text, strings without escapes, numbers in their shortest form, no duplicate keys. Any
/// write into the node drops it, except entries appended to an object (see [`Memo`]). It
/// keeps the whole request text alive as long as the node lives, so only nodes holding an
/// eighth of the text or more keep it (the memory a node keeps alive is then at most eight
/// times its own text).
#[derive(Clone)]
pub(crate) struct RawText {
    source: std::sync::Arc<str>,
    start: u32,
    end: u32,
}

impl RawText {
    /// `source[start..end]`, if both fit the offsets kept.
    pub(crate) fn new(source: std::sync::Arc<str>, start: usize, end: usize) -> Option<RawText> {
        Some(RawText {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
            source,
        })
    }

    /// The text's bytes.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.source.as_bytes()[self.start as usize..self.end as usize]
    }
}

/// What an array or object remembers of its JSON while it is unchanged: its size once
/// measured (limits are checked after every state, and a subtree shared by many states is
/// then measured once), the memory it was last counted to hold (a Map's outputs are
/// counted as each iteration finishes and again in a Parallel branch's output) and the
/// text it was read from ([`RawText`]). Every write path forgets them in one call
/// ([`Memo::forget`]) but `Map::insert_sized`, which keeps the JSON size up to date itself
/// and keeps the text for an appended entry (below). Relaxed atomics suffice for the
/// sizes: a shared node never changes, and a node being written is not shared.
///
/// The text stays through one kind of write: entries appended to an object (what
/// ResultPath does to a state's input), which the writer adds after the text's first
/// `covers` entries; a write to any of those forgets it.
#[derive(Default)]
pub(crate) struct Memo {
    // The JSON size, and `expr::size::mem_size`'s figure (4 bytes each keep the memo at 40).
    size: Count,
    mem: Count,
    // How many leading entries (or items) `raw` holds.
    covers: u32,
    raw: Option<RawText>,
}

/// A figure a node remembers. 0 means "not counted": no array or object is 0 bytes of
/// JSON or of memory. A figure past u32::MAX is not remembered.
#[derive(Default)]
struct Count(std::sync::atomic::AtomicU32);

impl Count {
    #[inline]
    fn new(n: Option<usize>) -> Count {
        Count(std::sync::atomic::AtomicU32::new(Count::stored(n)))
    }

    #[inline]
    fn stored(n: Option<usize>) -> u32 {
        n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
    }

    #[inline]
    fn get(&self) -> Option<usize> {
        match self.0.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            n => Some(n as usize),
        }
    }

    #[inline]
    fn set(&self, n: usize) {
        self.0
            .store(Count::stored(Some(n)), std::sync::atomic::Ordering::Relaxed)
    }

    #[inline]
    fn clear(&mut self) {
        *self.0.get_mut() = 0;
    }
}

impl Memo {
    /// A memo of a size known already, or of nothing.
    fn sized(n: Option<usize>) -> Memo {
        Memo {
            size: Count::new(n),
            mem: Count::default(),
            covers: 0,
            raw: None,
        }
    }

    #[inline]
    fn size(&self) -> Option<usize> {
        self.size.get()
    }

    #[inline]
    fn set_size(&self, n: usize) {
        self.size.set(n)
    }

    /// The text, when it holds the whole node (`len` entries or items).
    #[inline]
    fn raw(&self, len: usize) -> Option<&[u8]> {
        self.raw_prefix()
            .filter(|&(_, covers)| covers == len)
            .map(|(text, _)| text)
    }

    /// The text and how many leading entries it holds.
    #[inline]
    fn raw_prefix(&self) -> Option<(&[u8], usize)> {
        self.raw
            .as_ref()
            .map(|r| (r.as_bytes(), self.covers as usize))
    }

    /// Keeps `raw`, the text of the node's first `covers` entries or items (all of them).
    fn set_raw(&mut self, raw: RawText, covers: usize) {
        if let Ok(covers) = u32::try_from(covers) {
            self.covers = covers;
            self.raw = Some(raw);
        }
    }

    /// How many leading entries the text holds (0 without one).
    #[inline]
    fn covers(&self) -> usize {
        if self.raw.is_some() {
            self.covers as usize
        } else {
            0
        }
    }

    /// Forgets the sizes only: an entry is being appended.
    #[inline]
    fn forget_size(&mut self) {
        self.size.clear();
        self.mem.clear();
    }

    /// Forgets the sizes and the text: the node is being written.
    #[inline]
    fn forget(&mut self) {
        self.forget_size();
        self.raw = None;
    }
}

/// An array or object, read through its [`Memo`]: what it remembers of its sizes while
/// unchanged, in one place for both kinds of node.
pub(crate) trait Remembers {
    /// The node's memo (`None` for an empty node that has none).
    fn memo(&self) -> Option<&Memo>;

    /// The JSON size measured before, if nothing was written since.
    #[inline]
    fn cached_json_size(&self) -> Option<usize> {
        self.memo()?.size()
    }

    /// Remembers the JSON size (kept until the next write).
    #[inline]
    fn cache_json_size(&self, n: usize) {
        if let Some(m) = self.memo() {
            m.set_size(n);
        }
    }

    /// The memory counted before (`expr::size::mem_size`), if nothing was written since.
    #[inline]
    fn cached_mem_size(&self) -> Option<usize> {
        self.memo()?.mem.get()
    }

    /// Remembers the memory counted (kept until the next write).
    #[inline]
    fn cache_mem_size(&self, n: usize) {
        if let Some(m) = self.memo() {
            m.mem.set(n);
        }
    }
}

/// Only copy-on-write copies an array or object, and the copy is about to be written: it
/// remembers nothing.
impl Clone for Memo {
    fn clone(&self) -> Memo {
        Memo::default()
    }
}

/// A JSON value of state data.
#[derive(Default)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as serde_json holds it (u64, i64 or f64).
    Number(Number),
    /// A string.
    String(Str),
    /// An array.
    Array(Array),
    /// An object.
    Object(Map),
}

// A number owns nothing (serde_json's `arbitrary_precision`, which makes it a `String`,
// would fail this), so `Value::clone` may copy its bytes.
const _: () = assert!(!std::mem::needs_drop::<Number>());

impl Clone for Value {
    /// A copy of all 24 bytes at once, a shared part's count raised first. The derived
    /// clone rebuilt the value field by field, and whoever moved the clone on at once (a
    /// template placing a value it looked up) waited on those narrow writes.
    #[inline]
    fn clone(&self) -> Value {
        match self {
            Value::String(s) => std::mem::forget(s.clone()),
            Value::Array(a) => std::mem::forget(a.clone()),
            Value::Object(m) => std::mem::forget(m.clone()),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
        // SAFETY: the copy owns what the original owns: one count of a shared string,
        // array or object (taken above), or nothing (a scalar; see the assertion above).
        unsafe { copy_words(self) }
    }
}

/// A bitwise copy of a 24-byte value as three words. `ptr::read` of an enum let the
/// compiler split the copy by field (a byte, then 4, 2, 1 and 8 bytes), the very narrow
/// writes a wide copy after it waits on.
///
/// # Safety
/// As `ptr::read`: the caller owns what the copy owns.
#[inline(always)]
pub(crate) unsafe fn copy_words<T>(v: &T) -> T {
    use std::mem::MaybeUninit;
    const { assert!(std::mem::size_of::<T>() == 24 && std::mem::align_of::<T>() == 8) };
    // SAFETY: `T` is 24 bytes aligned to 8 (checked above), so it is readable as three
    // words; as `MaybeUninit` words its padding bytes are copied without being read as
    // integers, and the words copied from a `T` are that `T` (the caller owns the copy).
    unsafe {
        let words = std::ptr::read((v as *const T).cast::<MaybeUninit<[u64; 3]>>());
        std::mem::transmute_copy::<MaybeUninit<[u64; 3]>, T>(&words)
    }
}

/// Builds a [`Value`] with `serde_json::json!` syntax (through a serde_json value, so
/// for constants and tests, not hot paths).
#[macro_export]
macro_rules! json {
    ($($t:tt)+) => {
        $crate::value::Value::from(::serde_json::json!($($t)+))
    };
}

impl Value {
    /// The JSON type's name, as error messages name it (`object`, `number`, ...).
    pub fn json_type(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// `v[i]` or `v["key"]` without panicking: `None` when absent or of the wrong kind.
    #[inline]
    pub fn get<I: Index>(&self, index: I) -> Option<&Value> {
        index.index_into(self)
    }

    /// [`Value::get`] for writing.
    #[inline]
    pub fn get_mut<I: Index>(&mut self, index: I) -> Option<&mut Value> {
        index.index_into_mut(self)
    }

    /// The string, if this is one.
    #[inline]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The shared string, if this is one.
    pub fn as_str_value(&self) -> Option<&Str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The number as f64, if this is a number.
    #[inline]
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// The number as i64, if it is an integer in range.
    #[inline]
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The number as u64, if it is a non-negative integer in range.
    #[inline]
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// The object, if this is one.
    #[inline]
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The object for writing, if this is one.
    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The array's elements, if this is an array.
    #[inline]
    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The array's elements for writing (copied first if shared), if this is an array.
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Whether this is `null`.
    #[inline]
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether this is a boolean.
    pub fn is_boolean(&self) -> bool {
        matches!(self, Value::Bool(_))
    }

    /// Whether this is a number.
    pub fn is_number(&self) -> bool {
        matches!(self, Value::Number(_))
    }

    /// Whether this is a string.
    pub fn is_string(&self) -> bool {
        matches!(self, Value::String(_))
    }

    /// Whether this is an array.
    pub fn is_array(&self) -> bool {
        matches!(self, Value::Array(_))
    }

    /// Whether this is an object.
    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    /// Whether this is an integer that fits an i64.
    pub fn is_i64(&self) -> bool {
        matches!(self, Value::Number(n) if n.is_i64())
    }

    /// Whether this is an integer that fits a u64.
    pub fn is_u64(&self) -> bool {
        matches!(self, Value::Number(n) if n.is_u64())
    }

    /// Whether this is a number held as f64.
    pub fn is_f64(&self) -> bool {
        matches!(self, Value::Number(n) if n.is_f64())
    }

    /// Takes the value out, leaving `null`.
    pub fn take(&mut self) -> Value {
        std::mem::take(self)
    }

    /// A JSON Pointer (RFC 6901) lookup, as serde_json's `pointer`.
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        let mut v = self;
        for token in rest.split('/') {
            let token = token.replace("~1", "/").replace("~0", "~");
            v = match v {
                Value::Object(m) => m.get(&token)?,
                Value::Array(a) => a.get(parse_pointer_index(&token)?)?,
                _ => return None,
            };
        }
        Some(v)
    }

    /// Whether `self` and `other` are the same shared array or object (so surely equal).
    pub fn ptr_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Object(a), Value::Object(b)) => a.ptr_eq(b),
            (Value::Array(a), Value::Array(b)) => a.ptr_eq(b),
            _ => false,
        }
    }
}

fn parse_pointer_index(s: &str) -> Option<usize> {
    if s.starts_with('+') || (s.starts_with('0') && s.len() != 1) {
        return None;
    }
    s.parse().ok()
}

/// Structural equality with serde_json's semantics: numbers equal only as the same kind
/// (`1` is not `1.0`), objects equal whatever their key order.
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl PartialEq<str> for Value {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for Value {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl PartialEq<String> for Value {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == Some(other.as_str())
    }
}

impl PartialEq<bool> for Value {
    fn eq(&self, other: &bool) -> bool {
        self.as_bool() == Some(*other)
    }
}

macro_rules! eq_int {
    ($($t:ty => $as:ident as $w:ty),*) => {$(
        impl PartialEq<$t> for Value {
            fn eq(&self, other: &$t) -> bool {
                self.$as().is_some_and(|x| x == *other as $w)
            }
        }
    )*};
}
eq_int!(i64 => as_i64 as i64, i32 => as_i64 as i64, u64 => as_u64 as u64, u32 => as_u64 as u64, usize => as_u64 as u64);

impl PartialEq<f64> for Value {
    fn eq(&self, other: &f64) -> bool {
        self.as_f64() == Some(*other)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            #[inline]
            fn from(n: $t) -> Value {
                Value::Number(Number::from(n))
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

/// A non-finite float becomes `null`, as in serde_json.
impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

impl From<f32> for Value {
    fn from(f: f32) -> Value {
        Value::from(f as f64)
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Value {
        Value::Number(n)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(Str::from(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(Str::from(s))
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::String(Str::from(s.as_str()))
    }
}

impl From<Str> for Value {
    fn from(s: Str) -> Value {
        Value::String(s)
    }
}

impl From<std::borrow::Cow<'_, str>> for Value {
    fn from(s: std::borrow::Cow<'_, str>) -> Value {
        Value::String(Str::from(s))
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Value {
        Value::Object(m)
    }
}

impl From<Array> for Value {
    fn from(a: Array) -> Value {
        Value::Array(a)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Value {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

impl From<()> for Value {
    fn from(_: ()) -> Value {
        Value::Null
    }
}

impl<T: Into<Value>> FromIterator<T> for Value {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Value {
        Value::Array(iter.into_iter().map(Into::into).collect())
    }
}

impl<K: Into<Str>> FromIterator<(K, Value)> for Value {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Value {
        Value::Object(iter.into_iter().collect())
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Bool(b) => write!(f, "Bool({b})"),
            Value::Number(n) => write!(f, "Number({n})"),
            Value::String(s) => write!(f, "String({s:?})"),
            Value::Array(a) => {
                f.write_str("Array ")?;
                std::fmt::Debug::fmt(a, f)
            }
            Value::Object(m) => {
                f.write_str("Object ")?;
                std::fmt::Debug::fmt(m, f)
            }
        }
    }
}

#[cfg(test)]
mod tests;
