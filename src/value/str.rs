//! [`Str`]: the string of state data and of object keys, cheap to clone.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use super::node::Node;

/// Strings up to this many bytes live inside the value itself: most keys and many
/// strings of a request (`orderId`, `USD`, an ISO date) then cost no allocation at all.
pub(crate) const INLINE: usize = 22;

/// An immutable UTF-8 string: short ones inline, longer ones shared by reference count,
/// so cloning never copies more than 24 bytes.
pub struct Str(Repr);

impl Clone for Str {
    /// A copy of all 24 bytes at once (a shared text's count raised first). The derived
    /// clone rebuilt the string field by field, and whoever moved the clone on at once
    /// (a template pushing a key) waited on those narrow writes: perf put ~23 % of
    /// `Template::eval_within`'s samples in map-parallel on that one copy.
    #[inline]
    fn clone(&self) -> Str {
        if let Repr::Heap { text, .. } = &self.0 {
            std::mem::forget(text.clone());
        }
        // SAFETY: the copy owns what the original owns: nothing for an inline string, one
        // count of the shared text (taken above) for a heap one.
        unsafe { super::copy_words(self) }
    }
}

/// `len`'s top bit, and `plain`: the text is known to need no JSON escape (the reader
/// saw it in a request without one), so writing and sizing it skip the scan. Unknown
/// (false) for strings made any other way.
const PLAIN: u8 = 0x80;

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap { text: Text, plain: bool },
}

/// A long string's text: counted like an `Arc<str>`, but its only handle frees it without
/// a locked instruction. (With `Arc`, the locked decrement of every long string dropped
/// was over 40 % of dropping an entry in the order workload.)
type Text = Node<(), u8>;

/// `s` in a new [`Text`].
#[inline]
fn text_of(s: &str) -> Text {
    let mut text = Text::with_capacity((), s.len());
    let mut w = text.get_mut().expect("a new node has no other handle");
    // SAFETY: `s`'s bytes are valid and outside the new node; bytes need no forgetting.
    unsafe { w.append_moved(s.as_ptr(), s.len()) };
    text
}

impl Str {
    /// The empty string.
    pub const fn new() -> Str {
        Str(Repr::Inline {
            len: 0,
            buf: [0; INLINE],
        })
    }

    /// The string's text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: `buf[..len]` was copied from a `&str` in `From<&str>` and never changed.
            Repr::Inline { len, buf } => unsafe {
                std::str::from_utf8_unchecked(buf.get_unchecked(..usize::from(*len & !PLAIN)))
            },
            // SAFETY: the bytes were copied from a `&str` in `text_of` and never changed.
            Repr::Heap { text, .. } => unsafe { std::str::from_utf8_unchecked(text.items()) },
        }
    }

    /// A string whose text the caller knows needs no JSON escape (no `"`, `\` or
    /// control byte).
    #[inline]
    pub(crate) fn plain(s: &str) -> Str {
        debug_assert_eq!(super::len::special(s.as_bytes(), 0), s.len());
        let mut x = Str::from(s);
        match &mut x.0 {
            Repr::Inline { len, .. } => *len |= PLAIN,
            Repr::Heap { plain, .. } => *plain = true,
        }
        x
    }

    /// `text[start..end]`, which the caller knows needs no JSON escape, read from a text
    /// that goes on past it (a document being parsed); see [`Str::set_plain_within`].
    #[inline(always)]
    pub(crate) fn plain_within(text: &str, start: usize, end: usize) -> Str {
        let mut s = Str::new();
        s.set_plain_within(text, start, end);
        s
    }

    /// Writes `text[start..end]` (as [`Str::plain_within`]) to `dst` without reading or
    /// dropping what is there, for a slot not yet initialized.
    ///
    /// # Safety
    /// `dst` must be valid for writes of a `Str` and properly aligned.
    #[inline(always)]
    pub(crate) unsafe fn write_plain_within(dst: *mut Str, text: &str, start: usize, end: usize) {
        // SAFETY: as the caller promised; the empty string written first is inline, so
        // `set_plain_within` drops nothing that was not there.
        unsafe {
            dst.write(Str::new());
            (*dst).set_plain_within(text, start, end);
        }
    }

    /// Makes this string `text[start..end]`, which the caller knows needs no JSON
    /// escape, read from a text that goes on past it (a document being parsed).
    ///
    /// Why this shape: a short string is written where it lives, as one fixed-size window
    /// of the text (`buf`'s bytes past `len`, the text that follows, are never read).
    /// Copying the exact length went through `memcpy`, and building the string elsewhere
    /// and moving it meant reading back narrow writes still in flight: perf put ~40 % of
    /// reading order's request on such loads.
    #[inline(always)]
    pub(crate) fn set_plain_within(&mut self, text: &str, start: usize, end: usize) {
        debug_assert_eq!(
            super::len::special(&text.as_bytes()[start..end], 0),
            end - start
        );
        let n = end - start;
        if let (Repr::Inline { len, buf }, Some(window)) =
            (&mut self.0, text.as_bytes().get(start..start + INLINE))
        {
            if n <= INLINE {
                *len = n as u8 | PLAIN;
                buf.copy_from_slice(window);
                return;
            }
            // SAFETY: an inline string owns nothing, so overwriting it without its drop
            // leaks nothing. Written in place for the reason above: `*self =` built the
            // string beside the slot, and its copy waited on those writes.
            unsafe { std::ptr::write(self, Str::heap_plain(&text[start..end])) };
            return;
        }
        *self = Str::plain(&text[start..end]);
    }

    /// A string of more than [`INLINE`] bytes that needs no JSON escape, built as its
    /// final representation (no flag set afterwards through memory).
    #[inline(always)]
    fn heap_plain(s: &str) -> Str {
        Str(Repr::Heap {
            text: text_of(s),
            plain: true,
        })
    }

    /// The bytes this string takes as JSON, quotes and escapes included.
    #[inline]
    pub(crate) fn json_len(&self) -> usize {
        if self.is_plain() {
            self.len() + 2
        } else {
            super::len::string_len(self)
        }
    }

    /// A string marked plain when its text needs no JSON escape (one scan now saves one
    /// per write): for text made once and written many times, such as a template's keys.
    pub(crate) fn scanned(s: &str) -> Str {
        if super::len::special(s.as_bytes(), 0) == s.len() {
            Str::plain(s)
        } else {
            Str::from(s)
        }
    }

    /// A short plain string's whole inline buffer and its length: a writer copies the
    /// fixed-size buffer (two moves, no `memcpy` call for a variable length) and keeps
    /// `len` bytes of it.
    #[inline(always)]
    pub(crate) fn plain_inline(&self) -> Option<(&[u8; INLINE], usize)> {
        match &self.0 {
            Repr::Inline { len, buf } if len & PLAIN != 0 => Some((buf, usize::from(len & !PLAIN))),
            _ => None,
        }
    }

    /// Whether the text is known to need no JSON escape (false: not known either way).
    #[inline]
    pub(crate) fn is_plain(&self) -> bool {
        match &self.0 {
            Repr::Inline { len, .. } => len & PLAIN != 0,
            Repr::Heap { plain, .. } => *plain,
        }
    }

    /// The text as an owned `String` (a copy).
    pub fn into_string(self) -> String {
        self.as_str().to_string()
    }

    /// Bytes of memory this string holds outside its own 24 bytes (shared or not).
    pub fn heap_bytes(&self) -> usize {
        match &self.0 {
            Repr::Inline { .. } => 0,
            Repr::Heap { text, .. } => text.items().len() + 24,
        }
    }
}

impl Default for Str {
    fn default() -> Str {
        Str::new()
    }
}

impl Deref for Str {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Str {
    #[inline]
    fn from(s: &str) -> Str {
        if s.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            Str(Repr::Inline {
                len: s.len() as u8,
                buf,
            })
        } else {
            Str(Repr::Heap {
                text: text_of(s),
                plain: false,
            })
        }
    }
}

impl From<String> for Str {
    fn from(s: String) -> Str {
        if s.len() <= INLINE {
            Str::from(s.as_str())
        } else {
            Str(Repr::Heap {
                text: text_of(&s),
                plain: false,
            })
        }
    }
}

impl From<&String> for Str {
    fn from(s: &String) -> Str {
        Str::from(s.as_str())
    }
}

impl From<Box<str>> for Str {
    fn from(s: Box<str>) -> Str {
        Str::from(String::from(s))
    }
}

impl From<std::borrow::Cow<'_, str>> for Str {
    fn from(s: std::borrow::Cow<'_, str>) -> Str {
        match s {
            std::borrow::Cow::Borrowed(s) => Str::from(s),
            std::borrow::Cow::Owned(s) => Str::from(s),
        }
    }
}

impl From<char> for Str {
    fn from(c: char) -> Str {
        Str::from(c.encode_utf8(&mut [0; 4]) as &str)
    }
}

impl From<Str> for String {
    fn from(s: Str) -> String {
        s.as_str().to_string()
    }
}

impl PartialEq for Str {
    #[inline]
    fn eq(&self, other: &Str) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Str {}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Str {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Str> for str {
    fn eq(&self, other: &Str) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Str> for &str {
    fn eq(&self, other: &Str) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Str> for String {
    fn eq(&self, other: &Str) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for Str {
    fn partial_cmp(&self, other: &Str) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Str {
    fn cmp(&self, other: &Str) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Str {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_are_inline_and_long_ones_shared() {
        let short = Str::from("orderId");
        assert_eq!(short.heap_bytes(), 0);
        assert_eq!(short, "orderId");
        let exact = Str::from("x".repeat(INLINE).as_str());
        assert_eq!(exact.heap_bytes(), 0);
        let long = Str::from("y".repeat(INLINE + 1));
        assert!(long.heap_bytes() > 0);
        let copy = long.clone();
        assert_eq!(copy.as_str().as_ptr(), long.as_str().as_ptr());
        assert_eq!(std::mem::size_of::<Str>(), 24);
    }

    #[test]
    fn multibyte_text_round_trips() {
        for s in [
            "",
            "é",
            "日本語のテキストです",
            "emoji 🎉 and more text than fits inline",
        ] {
            assert_eq!(Str::from(s).as_str(), s);
            assert_eq!(Str::from(s.to_string()).as_str(), s);
        }
    }

    #[test]
    fn a_string_read_within_a_longer_text_is_exactly_its_own_bytes() {
        // Text as a document's strings are, without escapes: every slice is one.
        let text = "k: 日本, id: ORD-2024-000123, x: , long: a string longer than inline";
        for (i, _) in text.char_indices() {
            for j in text[i..].char_indices().map(|(j, c)| i + j + c.len_utf8()) {
                let s = Str::plain_within(text, i, j);
                assert_eq!(s.as_str(), &text[i..j]);
                assert!(s.is_plain());
                assert_eq!(s, Str::from(&text[i..j]));
                assert_eq!(s.heap_bytes() == 0, j - i <= INLINE);
            }
        }
    }

    #[test]
    fn a_string_written_into_a_slot_is_the_text_and_keeps_value_small() {
        let text = "sku: SKU-1001, name: Stainless steel water bottle 750ml";
        for (start, end) in [(5, 13), (0, 3), (21, 55), (50, 55), (54, 55), (55, 55)] {
            let mut slot = std::mem::MaybeUninit::<Str>::uninit();
            // SAFETY: a local slot, valid and aligned for a `Str`.
            let s = unsafe {
                Str::write_plain_within(slot.as_mut_ptr(), text, start, end);
                slot.assume_init()
            };
            assert_eq!(s.as_str(), &text[start..end]);
            assert!(s.is_plain());
            let mut heap = Str::from("x".repeat(INLINE + 1));
            heap.set_plain_within(text, start, end);
            assert_eq!(heap, s);
        }
        // `Value` keeps its variants in `Str`'s spare tag values: 24 bytes, a `Str`'s size.
        assert_eq!(
            std::mem::size_of::<crate::value::Value>(),
            std::mem::size_of::<Str>()
        );
    }

    #[test]
    fn plainness_is_kept_apart_from_the_text() {
        for s in ["", "sku", &"x".repeat(INLINE), &"y".repeat(INLINE + 1)] {
            let p = Str::plain(s);
            assert!(p.is_plain());
            assert_eq!(p.as_str(), s);
            assert_eq!(p.len(), s.len());
            assert_eq!(p, Str::from(s));
            assert!(!Str::from(s).is_plain());
            assert!(p.clone().is_plain());
        }
    }
}
