//! [`Map`]: a JSON object, insertion-ordered, shared by reference count, copied on write.

use std::collections::HashMap;
use std::fmt;

use super::node::{Node, NodeMut};
use super::push::write_entry;
use super::{Str, Value};

/// Objects with more keys than this get a hash index; smaller ones are scanned, which
/// beats hashing for the handful of keys state data objects usually have.
const INDEX_ABOVE: usize = 16;

/// A JSON object in insertion order. Cloning bumps a reference count; the first write to
/// a shared map copies its entries (not the values under them, which are shared too).
/// An empty map allocates nothing; any other is one allocation (see [`Node`]).
#[derive(Clone, Default)]
pub struct Map(Option<Node<Head, (Str, Value)>>);

/// What a map keeps beside its entries.
#[derive(Clone, Default)]
struct Head {
    // Key -> position in the entries, kept only above INDEX_ABOVE keys. Boxed: every
    // object's allocation starts with this header, and an index is rare (8 bytes, not 48).
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<Str, usize>>>,
    // Its JSON size and text while unchanged; every write forgets them, but an appended
    // entry keeps the text (see `insert_sized`).
    memo: super::Memo,
    // The `key_bit`s of every key the map holds (and of keys since removed): an insert of
    // a key whose bit is clear appends without scanning. Set by `insert_sized`,
    // `from_stack` and `finish_distinct`, the only ways an entry comes in (`push_distinct`
    // adds entries whose bits the `finish_distinct` that must follow it sets).
    keys: u64,
}

type Entries = Node<Head, (Str, Value)>;

#[inline]
fn find(node: &Entries, key: &str) -> Option<usize> {
    match &node.header().index {
        Some(ix) => ix.get(key).copied(),
        None => {
            let key = key.as_bytes();
            node.items()
                .iter()
                .position(|(k, _)| same_key(k.as_bytes(), key))
        }
    }
}

fn build_index(w: &mut NodeMut<'_, Head, (Str, Value)>) {
    let (head, entries) = w.parts();
    let mut ix = HashMap::with_capacity(entries.len() * 2);
    for (i, (k, _)) in entries.iter().enumerate() {
        ix.insert(k.clone(), i);
    }
    head.index = Some(Box::new(ix));
}

/// Appends an entry with each half written into its slot (no tuple built first: see
/// `push::write_entry`).
#[inline(always)]
fn push_entry(w: &mut NodeMut<'_, Head, (Str, Value)>, key: Str, value: Value) {
    w.reserve_one();
    // SAFETY: there is room, and `write_entry` writes both halves of the slot.
    unsafe { w.push_reserved(|slot| write_entry(slot, key, value)) }
}

/// A key handed to [`Map::insert_sized`]: owned, or borrowed and copied only where the
/// entry is stored.
pub(crate) trait NewKey {
    /// The key.
    fn str(&self) -> &Str;
    /// The key to store.
    fn into_str(self) -> Str;
}

impl NewKey for Str {
    #[inline(always)]
    fn str(&self) -> &Str {
        self
    }
    #[inline(always)]
    fn into_str(self) -> Str {
        self
    }
}

impl NewKey for &Str {
    #[inline(always)]
    fn str(&self) -> &Str {
        self
    }
    #[inline(always)]
    fn into_str(self) -> Str {
        self.clone()
    }
}

/// A bit chosen by a key's length and its first and last bytes: keys with different bits
/// differ, so a key whose bit a map (or an object being read) has not set is not in it.
#[inline]
pub(crate) const fn key_bit(key: &[u8]) -> u64 {
    let (first, last) = match key {
        [] => (0, 0),
        [first, .., last] => (*first as u32, *last as u32),
        [only] => (*only as u32, *only as u32),
    };
    // Wrapping: only the low bits matter, whatever the key's length.
    let h = (key.len() as u32)
        .wrapping_mul(31)
        .wrapping_add(first * 7)
        .wrapping_add(last);
    1 << (h & 63)
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
    #[inline]
    pub fn with_capacity(n: usize) -> Map {
        if n == 0 {
            return Map(None);
        }
        // Not measured: a map built here is often never measured whole, and an insert
        // into a measured map pays for its value's length (a float's is a formatting);
        // with it, callgrind counted order -0.6 % and retry-catch +1.3 %.
        Map(Some(Node::with_default(n)))
    }

    /// How many entries fit without reallocating.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.0.as_ref().map_or(0, Node::capacity)
    }

    /// A map of entries whose keys are known to be distinct, and whose JSON size may be
    /// known too (the parser builds these without a copy-on-write check per key).
    pub(crate) fn from_distinct(entries: Vec<(Str, Value)>, json_size: Option<usize>) -> Map {
        let mut m = Map::with_capacity(entries.len());
        let mut keys = 0;
        for (k, v) in entries {
            keys |= key_bit(k.as_bytes());
            m.push_distinct(k, v);
        }
        m.finish_distinct(json_size, keys);
        m
    }

    /// A map of `stack[base..]`, whose keys are known to be distinct and whose
    /// [`key_bit`]s are `keys` (or more), with room for `spare` more entries; leaves
    /// `stack[..base]`. For the reader, whose entries of open objects wait on one stack:
    /// one allocation and one copy.
    pub(crate) fn from_stack(
        stack: &mut Vec<(Str, Value)>,
        base: usize,
        spare: usize,
        json_size: Option<usize>,
        keys: u64,
    ) -> Map {
        let n = stack.len() - base;
        let mut m = Map::with_capacity(n + spare);
        if let Some(node) = m.0.as_mut() {
            let mut w = node.get_mut().expect("a new node has no other handle");
            // SAFETY: the `n` entries from `base` are valid and move into the node; the
            // stack's length then drops to `base`, so each is owned and dropped once.
            unsafe {
                w.append_moved(stack.as_ptr().add(base), n);
                stack.set_len(base);
            }
        }
        m.finish_distinct(json_size, keys);
        m
    }

    /// Appends an entry whose key is known to be new, to a map being built that no other
    /// handle shares yet (so nothing it remembers needs forgetting); its key's
    /// [`key_bit`] must then be among those [`Map::finish_distinct`] is given.
    #[inline(always)]
    pub(crate) fn push_distinct(&mut self, key: Str, value: Value) {
        match self.0.as_mut().and_then(Node::get_mut) {
            Some(mut w) => push_entry(&mut w, key, value),
            // Built without room (or shared after all): an insert does the same.
            None => {
                self.insert(key, value);
            }
        }
    }

    /// [`Map::push_distinct`] of copies of `key` and `value`, made in the new slot.
    ///
    /// Why in place: a copy made first and moved in went through the stack, and the move's
    /// wide loads waited on the copy's narrower writes (perf: over half of a template's
    /// own samples in the order workload, on those moves).
    #[inline(always)]
    pub(crate) fn push_distinct_cloned(&mut self, key: &Str, value: &Value) {
        match self.0.as_mut().and_then(Node::get_mut) {
            // SAFETY: both halves of the slot are written.
            Some(mut w) => unsafe {
                w.push_in_place(|slot| {
                    std::ptr::addr_of_mut!((*slot).0).write(key.clone());
                    std::ptr::addr_of_mut!((*slot).1).write(value.clone());
                })
            },
            None => {
                self.insert_cloned(key, value.clone());
            }
        }
    }

    /// The value of entry `i`, for writing (copies the map first if it is shared).
    #[inline]
    pub(crate) fn value_at_mut(&mut self, i: usize) -> Option<&mut Value> {
        self.0.as_ref()?;
        let (_, entries) = self.node_mut().into_parts();
        entries.get_mut(i).map(|(_, v)| v)
    }

    /// Ends building a map of distinct keys: its JSON size if known, the [`key_bit`]s of
    /// the keys pushed (or more: a template's are known when it is compiled), and an index
    /// if it is large.
    #[inline]
    pub(crate) fn finish_distinct(&mut self, json_size: Option<usize>, keys: u64) {
        let Some(node) = self.0.as_mut() else {
            return;
        };
        let mut w = node.make_mut();
        debug_assert!(w
            .node()
            .items()
            .iter()
            .all(|(k, _)| keys & key_bit(k.as_bytes()) != 0));
        let big = w.node().items().len() > INDEX_ABOVE;
        w.header().memo = super::Memo::sized(json_size);
        w.header().keys |= keys;
        if big {
            build_index(&mut w);
        }
    }

    /// Objects up to this many keys are built by [`Map::from_stack`] with a scan for
    /// duplicates; larger ones by [`Map::insert`], which keeps an index.
    pub(crate) const SCAN_KEYS: usize = INDEX_ABOVE;

    #[inline]
    fn entries(&self) -> &[(Str, Value)] {
        match &self.0 {
            Some(n) => n.items(),
            None => &[],
        }
    }

    /// Write access to the header and entries (a node made if there is none, copied if
    /// shared), with what the map remembers left to the caller.
    #[inline]
    fn writable(&mut self) -> NodeMut<'_, Head, (Str, Value)> {
        self.0
            .get_or_insert_with(|| Node::with_default(4))
            .make_mut()
    }

    /// Write access to the header and entries, after copying them if they are shared.
    #[inline]
    fn node_mut(&mut self) -> NodeMut<'_, Head, (Str, Value)> {
        let mut w = self.writable();
        // Whatever the caller changes, here or in a value under this map, the size
        // measured before and the text read no longer hold.
        w.header().memo.forget();
        w
    }

    /// The JSON text this map was read from, if it holds the whole map unchanged.
    #[cfg(test)]
    pub(crate) fn raw_text(&self) -> Option<&[u8]> {
        let node = self.0.as_ref()?;
        node.header().memo.raw(node.items().len())
    }

    /// The JSON text this map was read from and how many of its leading entries that text
    /// holds (entries appended since follow them), if those are unchanged since.
    #[inline]
    pub(crate) fn raw_prefix(&self) -> Option<(&[u8], usize)> {
        self.0.as_ref()?.header().memo.raw_prefix()
    }

    /// Keeps the text the map was read from (see [`super::RawText`]); for the reader, on a
    /// map no other handle shares yet.
    pub(crate) fn set_raw_text(&mut self, raw: super::RawText) {
        if let Some(mut w) = self.0.as_mut().and_then(Node::get_mut) {
            let n = w.node().items().len();
            w.header().memo.set_raw(raw, n);
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
        let node = self.0.as_ref()?;
        find(node, key).map(|i| &node.items()[i].1)
    }

    /// The entry at position `i` in insertion order.
    #[inline]
    pub(crate) fn entry_at(&self, i: usize) -> Option<(&Str, &Value)> {
        self.entries().get(i).map(|(k, v)| (k, v))
    }

    /// The position of `key` in insertion order.
    #[inline]
    pub(crate) fn position(&self, key: &str) -> Option<usize> {
        find(self.0.as_ref()?, key)
    }

    /// The entry under `key`, key included.
    pub fn get_key_value(&self, key: &str) -> Option<(&Str, &Value)> {
        let node = self.0.as_ref()?;
        find(node, key).map(|i| {
            let (k, v) = &node.items()[i];
            (k, v)
        })
    }

    /// The value under `key`, for writing (copies the map first if it is shared).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let i = find(self.0.as_ref()?, key)?;
        Some(&mut self.node_mut().into_parts().1[i].1)
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

    /// [`Map::insert`] of a copy of `key`, made only where the entry is stored.
    ///
    /// Why: a key handed over by value was spilled field by field through overlapping
    /// stack slots and read back as it was stored, a stall (perf: over a quarter of
    /// `Map::insert`'s samples in the order workload's merges).
    pub fn insert_cloned(&mut self, key: &Str, value: Value) -> Option<Value> {
        let len = self.size_known().and_then(|_| super::known_len(&value));
        self.insert_sized(key, value, len)
    }

    /// The map's JSON size if known (an empty map's always is).
    fn size_known(&self) -> Option<usize> {
        match &self.0 {
            None => Some(2),
            Some(n) => n.header().memo.size(),
        }
    }

    /// [`Map::insert`] of a value whose JSON length the caller knows (or `None`).
    pub(crate) fn insert_sized(
        &mut self,
        key: impl NewKey,
        value: Value,
        len: Option<usize>,
    ) -> Option<Value> {
        // A task result merged into its input, a ResultPath write: the size known before
        // plus what this entry adds is the size after, so the size check after the state
        // does not walk the whole object again.
        let before = self.size_known();
        let added = before.and(len);
        let mut w = self.writable();
        // The size is set again below where it can be. The text read stays for an entry
        // appended, or written past those it holds: the writer adds such entries after it.
        w.header().memo.forget_size();
        // A new key (a ResultPath write, a merge) is told apart by its bit, without a scan.
        let bit = key_bit(key.str().as_bytes());
        let maybe_there = w.header().keys & bit != 0;
        w.header().keys |= bit;
        if let Some(i) = maybe_there.then(|| find(w.node(), key.str())).flatten() {
            let (head, entries) = w.parts();
            if i < head.memo.covers() {
                head.memo.forget();
            }
            let old = std::mem::replace(&mut entries[i].1, value);
            if let (Some(b), Some(n), Some(o)) = (before, added, super::known_len(&old)) {
                head.memo.set_size(b - o + n);
            }
            return Some(old);
        }
        let at = w.node().items().len();
        let head = w.header();
        if let (Some(b), Some(n)) = (before, added) {
            head.memo
                .set_size(b + usize::from(at > 0) + key.str().json_len() + 1 + n);
        }
        match &mut head.index {
            Some(ix) => {
                ix.insert(key.str().clone(), at);
            }
            None if at >= INDEX_ABOVE => {
                push_entry(&mut w, key.into_str(), value);
                build_index(&mut w);
                return None;
            }
            None => {}
        }
        push_entry(&mut w, key.into_str(), value);
        None
    }

    /// Removes `key` by moving the last entry into its place, as serde_json's
    /// `preserve_order` `remove` does (`swap_remove`).
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.swap_remove(key)
    }

    /// Removes `key`, moving the last entry into its place.
    pub fn swap_remove(&mut self, key: &str) -> Option<Value> {
        let i = find(self.0.as_ref()?, key)?;
        let mut w = self.node_mut();
        let (k, v) = w.swap_remove(i);
        let (head, entries) = w.parts();
        if let Some(ix) = &mut head.index {
            ix.remove(k.as_str());
            if let Some((moved, _)) = entries.get(i) {
                ix.insert(moved.clone(), i);
            }
        }
        Some(v)
    }

    /// Removes `key`, keeping the order of the rest.
    pub fn shift_remove(&mut self, key: &str) -> Option<Value> {
        let i = find(self.0.as_ref()?, key)?;
        let mut w = self.node_mut();
        let (_, v) = w.remove(i);
        if w.header().index.is_some() {
            build_index(&mut w);
        }
        Some(v)
    }

    /// Keeps the entries `keep` says yes to, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&Str, &mut Value) -> bool) {
        if self.is_empty() {
            return;
        }
        let mut w = self.node_mut();
        w.retain(|(k, v)| keep(k, v));
        if w.header().index.is_some() {
            build_index(&mut w);
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
        IterMut(self.node_mut().into_parts().1.iter_mut())
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
            (Some(a), Some(b)) => a.ptr_eq(b),
            (None, None) => true,
            _ => false,
        }
    }

    /// Whether other handles share this map's entries.
    pub fn is_shared(&self) -> bool {
        self.0.as_ref().is_some_and(|n| n.count() > 1)
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
        let i = match self.map.0.as_ref().and_then(|n| find(n, &self.key)) {
            Some(i) => i,
            None => {
                self.map.insert(self.key, f());
                self.map.len() - 1
            }
        };
        &mut self.map.node_mut().into_parts().1[i].1
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
        let entries = self.0.map_or_else(Vec::new, Node::into_vec);
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
        self.0.as_ref().map(|n| &n.header().memo)
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
    fn an_insert_finds_every_key_however_the_map_was_built() {
        // A key found replaces its value in place; one missed would be a duplicate key.
        let replaced_all = |m: &mut Map, keys: &[String]| {
            let n = m.len();
            for k in keys {
                assert!(m.insert(k.as_str().into(), Value::Null).is_some(), "{k:?}");
            }
            assert_eq!(m.len(), n);
        };
        let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        // Read: below, at and past the scan limit (past it, the rest are inserted).
        for n in [1, 3, 16, 17, 40] {
            let text = keys[..n]
                .iter()
                .map(|k| format!("\"{k}\":1"))
                .collect::<Vec<_>>()
                .join(",");
            let mut v = crate::value::from_str(&format!("{{{text}}}")).expect("valid JSON");
            replaced_all(v.as_object_mut().expect("an object"), &keys[..n]);
        }
        // Read with escaped keys and a duplicate key.
        let mut v = crate::value::from_str(r#"{"a\u0062":1,"\"q":2,"a\u0062":3,"":4}"#)
            .expect("valid JSON");
        let read = v.as_object_mut().expect("an object");
        replaced_all(read, &["ab".into(), "\"q".into(), String::new()]);
        // Built by a template's pushes, and a copy of it written on.
        let mut built = Map::with_capacity(2);
        built.push_distinct("x".into(), Value::Null);
        built.push_distinct("y".into(), Value::Null);
        built.finish_distinct(None, key_bit(b"x") | key_bit(b"y"));
        let mut copy = built.clone();
        replaced_all(&mut copy, &["x".into(), "y".into()]);
        replaced_all(&mut built, &["x".into(), "y".into()]);
        // Built by inserts, then after a removal.
        let mut inserted = m(&["a", "b", "c"]);
        inserted.remove("b");
        replaced_all(&mut inserted, &["a".into(), "c".into()]);
        assert!(inserted.insert("b".into(), Value::Null).is_none());
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
