//! [`Map`]: a JSON object, insertion-ordered, shared by reference count, copied on write.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::push::{get_mut, make_mut, new_arc, push_entry};
use super::{Str, Value};

/// Objects with more keys than this get a hash index; smaller ones are scanned, which
/// beats hashing for the handful of keys state data objects usually have.
const INDEX_ABOVE: usize = 16;

/// A JSON object in insertion order. Cloning bumps a reference count; the first write to
/// a shared map copies its entries (not the values under them, which are shared too).
/// An empty map allocates nothing.
#[derive(Clone, Default)]
pub struct Map(Option<Arc<Inner>>);

#[derive(Clone, Default)]
struct Inner {
    entries: Vec<(Str, Value)>,
    // Key -> position in `entries`, kept only above INDEX_ABOVE keys.
    index: Option<HashMap<Str, usize>>,
    // Its JSON size and text while unchanged; every write forgets them, but an appended
    // entry keeps the text (see `insert_sized`).
    memo: super::Memo,
}

impl Inner {
    #[inline]
    fn find(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(ix) => ix.get(key).copied(),
            None => {
                let key = key.as_bytes();
                self.entries
                    .iter()
                    .position(|(k, _)| same_key(k.as_bytes(), key))
            }
        }
    }

    fn build_index(&mut self) {
        let mut ix = HashMap::with_capacity(self.entries.len() * 2);
        for (i, (k, _)) in self.entries.iter().enumerate() {
            ix.insert(k.clone(), i);
        }
        self.index = Some(ix);
    }
}

/// Key equality for the scan of a small map. Keys of one object often share a length
/// (`f01`, `f02`), and slice equality then calls `memcmp` for every one (5.6 % of the
/// choice-heavy workload, in path steps); the first byte rejects most of them, and a key
/// of up to 16 bytes is compared as two overlapping words (a byte loop was ~30
/// instructions for an 8-byte key).
#[inline]
pub(crate) fn same_key(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() || a.first() != b.first() {
        return false;
    }
    fn word<const W: usize>(s: &[u8], at: usize) -> [u8; W] {
        s[at..at + W].try_into().expect("W bytes")
    }
    match n {
        // The first byte is equal already; these cover the others.
        0..=3 => n == 0 || (a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]),
        4..=7 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        8..=16 => word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8),
        _ => a == b,
    }
}

impl Map {
    /// An empty map.
    #[inline]
    pub const fn new() -> Map {
        Map(None)
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Map {
        if n == 0 {
            return Map(None);
        }
        Map(Some(new_arc(Inner {
            entries: Vec::with_capacity(n),
            index: None,
            // Not measured: a map built here is often never measured whole, and an
            // insert into a measured map pays for its value's length (a float's is a
            // formatting); with it, callgrind counted order -0.6 % and retry-catch +1.3 %.
            memo: Default::default(),
        })))
    }

    /// How many entries fit without reallocating.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.0.as_deref().map_or(0, |i| i.entries.capacity())
    }

    /// A map of entries whose keys are known to be distinct, and whose JSON size may be
    /// known too (the parser builds these without a copy-on-write check per key).
    pub(crate) fn from_distinct(entries: Vec<(Str, Value)>, json_size: Option<usize>) -> Map {
        if entries.capacity() == 0 {
            return Map(None);
        }
        let big = entries.len() > INDEX_ABOVE;
        // The fields are written into the new allocation one by one (as `new_arc` writes
        // a whole value): built whole first, the node went through the stack, and the
        // copy into the allocation waited on the narrow writes that built it (perf: ~2/3
        // of this function's samples on two such loads).
        let slot = Arc::<Inner>::new_uninit();
        let p = Arc::as_ptr(&slot).cast_mut().cast::<Inner>();
        // SAFETY: `slot` was just made and never cloned, so nothing else can read it while
        // it is written; `p` is valid and aligned for an `Inner`; every field is written
        // before `assume_init`.
        let mut inner = unsafe {
            std::ptr::addr_of_mut!((*p).entries).write(entries);
            std::ptr::addr_of_mut!((*p).index).write(None);
            std::ptr::addr_of_mut!((*p).memo).write(super::Memo::sized(json_size));
            slot.assume_init()
        };
        if big {
            get_mut(&mut inner)
                .expect("a new Arc has no other handle")
                .build_index();
        }
        Map(Some(inner))
    }

    /// Objects up to this many keys are built by [`Map::from_distinct`] with a scan for
    /// duplicates; larger ones by [`Map::insert`], which keeps an index.
    pub(crate) const SCAN_KEYS: usize = INDEX_ABOVE;

    #[inline]
    fn entries(&self) -> &[(Str, Value)] {
        match &self.0 {
            Some(i) => &i.entries,
            None => &[],
        }
    }

    #[inline]
    fn inner_mut(&mut self) -> &mut Inner {
        let inner = make_mut(self.0.get_or_insert_with(Default::default));
        // Whatever the caller changes, here or in a value under this map, the size
        // measured before and the text read no longer hold.
        inner.memo.forget();
        inner
    }

    /// The JSON text this map was read from, if it holds the whole map unchanged.
    #[cfg(test)]
    pub(crate) fn raw_text(&self) -> Option<&[u8]> {
        let inner = self.0.as_deref()?;
        inner.memo.raw(inner.entries.len())
    }

    /// The JSON text this map was read from and how many of its leading entries that text
    /// holds (entries appended since follow them), if those are unchanged since.
    #[inline]
    pub(crate) fn raw_prefix(&self) -> Option<(&[u8], usize)> {
        self.0.as_deref()?.memo.raw_prefix()
    }

    /// Keeps the text the map was read from (see [`super::RawText`]); for the reader, on a
    /// map no other handle shares yet.
    pub(crate) fn set_raw_text(&mut self, raw: super::RawText) {
        if let Some(inner) = self.0.as_mut().and_then(get_mut) {
            let n = inner.entries.len();
            inner.memo.set_raw(raw, n);
        }
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether the map has no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// The value under `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value> {
        let inner = self.0.as_deref()?;
        inner.find(key).map(|i| &inner.entries[i].1)
    }

    /// The entry at position `i` in insertion order.
    #[inline]
    pub(crate) fn entry_at(&self, i: usize) -> Option<(&Str, &Value)> {
        self.entries().get(i).map(|(k, v)| (k, v))
    }

    /// The position of `key` in insertion order.
    #[inline]
    pub(crate) fn position(&self, key: &str) -> Option<usize> {
        self.0.as_deref()?.find(key)
    }

    /// The entry under `key`, key included.
    pub fn get_key_value(&self, key: &str) -> Option<(&Str, &Value)> {
        let inner = self.0.as_deref()?;
        inner.find(key).map(|i| {
            let (k, v) = &inner.entries[i];
            (k, v)
        })
    }

    /// The value under `key`, for writing (copies the map first if it is shared).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let i = self.0.as_deref()?.find(key)?;
        Some(&mut self.inner_mut().entries[i].1)
    }

    /// Whether `key` is present.
    #[inline]
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`. An existing key keeps its position and its old value is
    /// returned (serde_json's `preserve_order` semantics, so also what a JSON object with a
    /// duplicate key parses to: the later value in the first position).
    pub fn insert(&mut self, key: Str, value: Value) -> Option<Value> {
        // The value's length is only worth counting (a float's is a formatting) when the
        // map's own size is known.
        let len = self.size_known().and_then(|_| super::known_len(&value));
        self.insert_sized(key, value, len)
    }

    /// The map's JSON size if known (an empty map's always is).
    fn size_known(&self) -> Option<usize> {
        match &self.0 {
            None => Some(2),
            Some(i) => i.memo.size(),
        }
    }

    /// [`Map::insert`] of a value whose JSON length the caller knows (or `None`).
    pub(crate) fn insert_sized(
        &mut self,
        key: Str,
        value: Value,
        len: Option<usize>,
    ) -> Option<Value> {
        // A task result merged into its input, a ResultPath write: the size known before
        // plus what this entry adds is the size after, so the size check after the state
        // does not walk the whole object again.
        let before = self.size_known();
        let added = before.and(len);
        let inner = make_mut(self.0.get_or_insert_with(Default::default));
        // The size is set again below where it can be. The text read stays for an entry
        // appended, or written past those it holds: the writer adds such entries after it.
        inner.memo.forget_size();
        if let Some(i) = inner.find(&key) {
            if i < inner.memo.covers() {
                inner.memo.forget();
            }
            let old = std::mem::replace(&mut inner.entries[i].1, value);
            if let (Some(b), Some(n), Some(o)) = (before, added, super::known_len(&old)) {
                inner.memo.set_size(b - o + n);
            }
            return Some(old);
        }
        let at = inner.entries.len();
        if let (Some(b), Some(n)) = (before, added) {
            inner
                .memo
                .set_size(b + usize::from(at > 0) + key.json_len() + 1 + n);
        }
        match &mut inner.index {
            Some(ix) => {
                ix.insert(key.clone(), at);
            }
            None if at >= INDEX_ABOVE => {
                push_entry(&mut inner.entries, key, value);
                inner.build_index();
                return None;
            }
            None => {}
        }
        push_entry(&mut inner.entries, key, value);
        None
    }

    /// Removes `key` by moving the last entry into its place, as serde_json's
    /// `preserve_order` `remove` does (`swap_remove`).
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.swap_remove(key)
    }

    /// Removes `key`, moving the last entry into its place.
    pub fn swap_remove(&mut self, key: &str) -> Option<Value> {
        let i = self.0.as_deref()?.find(key)?;
        let inner = self.inner_mut();
        let (k, v) = inner.entries.swap_remove(i);
        if let Some(ix) = &mut inner.index {
            ix.remove(k.as_str());
            if let Some((moved, _)) = inner.entries.get(i) {
                ix.insert(moved.clone(), i);
            }
        }
        Some(v)
    }

    /// Removes `key`, keeping the order of the rest.
    pub fn shift_remove(&mut self, key: &str) -> Option<Value> {
        let i = self.0.as_deref()?.find(key)?;
        let inner = self.inner_mut();
        let (_, v) = inner.entries.remove(i);
        if inner.index.is_some() {
            inner.build_index();
        }
        Some(v)
    }

    /// Keeps the entries `keep` says yes to, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&Str, &mut Value) -> bool) {
        if self.is_empty() {
            return;
        }
        let inner = self.inner_mut();
        inner.entries.retain_mut(|(k, v)| keep(k, v));
        if inner.index.is_some() {
            inner.build_index();
        }
    }

    /// The entry for `key`, to read or fill in.
    pub fn entry(&mut self, key: impl Into<Str>) -> Entry<'_> {
        Entry {
            map: self,
            key: key.into(),
        }
    }

    /// Entries in order.
    #[inline]
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries().iter())
    }

    /// Entries in order, values writable (copies the map first if it is shared).
    pub fn iter_mut(&mut self) -> IterMut<'_> {
        if self.is_empty() {
            return IterMut([].iter_mut());
        }
        IterMut(self.inner_mut().entries.iter_mut())
    }

    /// Keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Str> + ExactSizeIterator {
        self.entries().iter().map(|(k, _)| k)
    }

    /// Values in order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator {
        self.entries().iter().map(|(_, v)| v)
    }

    /// Values in order, writable (copies the map first if it is shared).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Value> {
        self.iter_mut().map(|(_, v)| v)
    }

    /// Whether `self` and `other` are the same allocation (so surely equal).
    pub fn ptr_eq(&self, other: &Map) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    /// Whether other handles share this map's entries.
    pub fn is_shared(&self) -> bool {
        self.0.as_ref().is_some_and(|a| Arc::strong_count(a) > 1)
    }
}

/// A place in a [`Map`], from [`Map::entry`].
pub struct Entry<'a> {
    map: &'a mut Map,
    key: Str,
}

impl<'a> Entry<'a> {
    /// The value under the key, `default` put there first if there was none.
    pub fn or_insert(self, default: Value) -> &'a mut Value {
        self.or_insert_with(|| default)
    }

    /// The value under the key, `f()` put there first if there was none.
    pub fn or_insert_with(self, f: impl FnOnce() -> Value) -> &'a mut Value {
        let i = match self.map.0.as_deref().and_then(|i| i.find(&self.key)) {
            Some(i) => i,
            None => {
                self.map.insert(self.key, f());
                self.map.len() - 1
            }
        };
        &mut self.map.inner_mut().entries[i].1
    }
}

/// Iterator over a map's entries.
#[derive(Clone)]
pub struct Iter<'a>(std::slice::Iter<'a, (Str, Value)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Str, &'a Value);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Iterator over a map's entries with writable values.
pub struct IterMut<'a>(std::slice::IterMut<'a, (Str, Value)>);

impl<'a> Iterator for IterMut<'a> {
    type Item = (&'a Str, &'a mut Value);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (&*k, v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for IterMut<'_> {}

/// Owning iterator over a map's entries (moves them out when the map is not shared).
pub struct IntoIter(std::vec::IntoIter<(Str, Value)>);

impl Iterator for IntoIter {
    type Item = (Str, Value);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for IntoIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back()
    }
}

impl ExactSizeIterator for IntoIter {}

impl IntoIterator for Map {
    type Item = (Str, Value);
    type IntoIter = IntoIter;
    fn into_iter(self) -> IntoIter {
        let entries = match self.0 {
            None => Vec::new(),
            Some(a) => Arc::try_unwrap(a).map_or_else(|a| a.entries.clone(), |i| i.entries),
        };
        IntoIter(entries.into_iter())
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a Str, &'a Value);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Map {
    type Item = (&'a Str, &'a mut Value);
    type IntoIter = IterMut<'a>;
    fn into_iter(self) -> IterMut<'a> {
        self.iter_mut()
    }
}

impl<K: Into<Str>> FromIterator<(K, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Map {
        let mut m = Map::new();
        m.extend(iter);
        m
    }
}

impl<K: Into<Str>> Extend<(K, Value)> for Map {
    fn extend<I: IntoIterator<Item = (K, Value)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k.into(), v);
        }
    }
}

impl std::ops::Index<&str> for Map {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        self.get(key).expect("no entry found for key")
    }
}

impl std::ops::IndexMut<&str> for Map {
    fn index_mut(&mut self, key: &str) -> &mut Value {
        self.get_mut(key).expect("no entry found for key")
    }
}

/// Equal when both have the same keys with equal values, in any order (as serde_json's
/// `preserve_order` maps compare).
impl PartialEq for Map {
    fn eq(&self, other: &Map) -> bool {
        if self.ptr_eq(other) {
            return true;
        }
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for Map {}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl super::Remembers for Map {
    #[inline]
    fn memo(&self) -> Option<&super::Memo> {
        self.0.as_deref().map(|i| &i.memo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Remembers;

    fn m(keys: &[&str]) -> Map {
        keys.iter()
            .enumerate()
            .map(|(i, k)| (*k, Value::from(i as u64)))
            .collect()
    }

    #[test]
    fn same_key_tells_every_differing_byte_at_every_length() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i % 26).collect();
            assert!(same_key(&a, &a.clone()), "length {n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_key(&a, &b), "length {n}, byte {at}");
            }
            assert!(!same_key(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }

    #[test]
    fn insert_of_an_existing_key_keeps_its_position() {
        let mut a = m(&["a", "b", "c"]);
        assert_eq!(a.insert("a".into(), Value::from(9)), Some(Value::from(0)));
        let keys: Vec<&str> = a.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(a["a"], Value::from(9));
    }

    #[test]
    fn remove_moves_the_last_entry_into_the_gap_like_serde_json() {
        for n in [4, 40] {
            let names: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
            let mut ours = m(&refs);
            let mut theirs: serde_json::Map<String, serde_json::Value> = refs
                .iter()
                .enumerate()
                .map(|(i, k)| (k.to_string(), serde_json::Value::from(i as u64)))
                .collect();
            for k in ["k1", "k0", "k3"] {
                assert_eq!(
                    ours.remove(k).map(serde_json::Value::from),
                    theirs.remove(k)
                );
            }
            let ours_keys: Vec<&str> = ours.keys().map(|k| k.as_str()).collect();
            let theirs_keys: Vec<&str> = theirs.keys().map(|k| k.as_str()).collect();
            assert_eq!(ours_keys, theirs_keys);
            for k in &theirs_keys {
                assert!(ours.contains_key(k), "{k} lost from the index");
            }
        }
    }

    #[test]
    fn large_maps_find_every_key_through_the_index() {
        let names: Vec<String> = (0..100).map(|i| format!("key{i}")).collect();
        let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let mut a = m(&refs);
        for (i, k) in refs.iter().enumerate() {
            assert_eq!(a.get(k), Some(&Value::from(i as u64)));
        }
        a.shift_remove("key10");
        assert_eq!(a.get("key11"), Some(&Value::from(11u64)));
        assert_eq!(a.len(), 99);
        a.retain(|k, _| k.as_str() != "key50");
        assert_eq!(a.get("key99"), Some(&Value::from(99u64)));
        assert!(a.get("key50").is_none());
    }

    #[test]
    fn a_write_to_a_shared_map_leaves_the_other_handle_alone() {
        let a = m(&["a", "b"]);
        let mut b = a.clone();
        assert!(a.ptr_eq(&b));
        b.insert("c".into(), Value::Null);
        *b.get_mut("a").unwrap() = Value::Bool(true);
        assert_eq!(a.len(), 2);
        assert_eq!(a["a"], Value::from(0));
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn equality_ignores_order_like_serde_json() {
        assert_eq!(m(&["a", "b"]), {
            let mut x = Map::new();
            x.insert("b".into(), Value::from(1));
            x.insert("a".into(), Value::from(0));
            x
        });
        assert_ne!(m(&["a", "b"]), m(&["a"]));
    }

    #[test]
    fn insert_keeps_a_measured_size_equal_to_what_is_written() {
        let mut map = crate::value::from_str(r#"{"a":1,"b":{"c":[1.5,"x"]}}"#)
            .unwrap()
            .as_object()
            .unwrap()
            .clone();
        let shared = map.clone();
        let before = crate::expr::size::json_size(&Value::Object(map.clone()), usize::MAX);
        assert_eq!(map.cached_json_size(), Some(before));
        let steps: [(&str, Value); 6] = [
            ("d", Value::from("new \"quoted\"")),
            ("a", Value::from(123_456u64)),
            ("b", Value::Null),
            ("e", Value::Object(shared.clone())),
            ("f", Value::from(0.1)),
            ("e", Value::Bool(false)),
        ];
        for (k, v) in steps {
            map.insert(k.into(), v);
            let written = crate::value::to_vec(&Value::Object(map.clone())).len();
            assert_eq!(map.cached_json_size(), Some(written), "after setting {k}");
        }
        // The handle it was copied from keeps its own size.
        assert_eq!(shared.cached_json_size(), Some(before));
        // A value of unknown size leaves the map unmeasured rather than wrong.
        let mut unknown = Map::with_capacity(1);
        unknown.insert("x".into(), Value::Null);
        // A write through `get_mut` may change anything under the key: size forgotten.
        unknown.get_mut("x");
        assert_eq!(unknown.cached_json_size(), None);
        map.insert("g".into(), Value::Object(unknown));
        assert_eq!(map.cached_json_size(), None);
        let mut empty = Map::new();
        empty.insert("k".into(), Value::Null);
        assert_eq!(empty.cached_json_size(), Some(r#"{"k":null}"#.len()));
    }

    #[test]
    fn empty_maps_allocate_nothing() {
        assert!(Map::new().0.is_none());
        assert!(Map::with_capacity(0).0.is_none());
    }
}
