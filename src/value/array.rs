//! [`Array`]: a JSON array, shared by reference count, copied on write.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::push::{get_mut, make_mut, new_arc};
use super::Value;

static EMPTY: Vec<Value> = Vec::new();

#[derive(Clone, Default)]
struct Inner {
    items: Vec<Value>,
    // Its JSON size and text while unchanged; every write forgets them.
    memo: super::Memo,
}

/// A JSON array. Reading goes through `Deref<Target = Vec<Value>>`; writing through
/// `DerefMut`, which first copies the element slots if another handle shares them (the
/// elements themselves stay shared). Cloning bumps a reference count; an empty array
/// allocates nothing.
#[derive(Clone, Default)]
pub struct Array(Option<Arc<Inner>>);

impl Array {
    /// An empty array.
    pub const fn new() -> Array {
        Array(None)
    }

    /// An empty array with room for `n` elements.
    pub fn with_capacity(n: usize) -> Array {
        if n == 0 {
            return Array(None);
        }
        Array(Some(new_arc(Inner {
            items: Vec::with_capacity(n),
            memo: Default::default(),
        })))
    }

    /// The elements as a vector of their own (moved out when not shared, else cloned).
    pub fn into_vec(self) -> Vec<Value> {
        match self.0 {
            None => Vec::new(),
            Some(a) => Arc::try_unwrap(a).map_or_else(|a| a.items.clone(), |i| i.items),
        }
    }

    /// The JSON text this array was read from, if it is unchanged since.
    #[inline]
    pub(crate) fn raw_text(&self) -> Option<&[u8]> {
        let inner = self.0.as_deref()?;
        inner.memo.raw(inner.items.len())
    }

    /// Keeps the text the array was read from (see [`super::RawText`]); for the reader, on
    /// an array no other handle shares yet.
    pub(crate) fn set_raw_text(&mut self, raw: super::RawText) {
        if let Some(inner) = self.0.as_mut().and_then(get_mut) {
            let n = inner.items.len();
            inner.memo.set_raw(raw, n);
        }
    }

    /// Whether `self` and `other` are the same allocation.
    pub fn ptr_eq(&self, other: &Array) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Array {
    /// An array of `items` whose JSON size is already known (the parser counts it).
    pub(crate) fn from_sized(items: Vec<Value>, json_size: Option<usize>) -> Array {
        if items.capacity() == 0 {
            return Array(None);
        }
        Array(Some(new_arc(Inner {
            items,
            memo: super::Memo::sized(json_size),
        })))
    }
}

impl Deref for Array {
    type Target = Vec<Value>;
    #[inline]
    fn deref(&self) -> &Vec<Value> {
        match &self.0 {
            Some(v) => &v.items,
            None => &EMPTY,
        }
    }
}

impl DerefMut for Array {
    #[inline]
    fn deref_mut(&mut self) -> &mut Vec<Value> {
        let inner = make_mut(self.0.get_or_insert_with(Default::default));
        // Whatever the caller changes, here or in a value under this array, the size
        // measured before and the text read no longer hold.
        inner.memo.forget();
        &mut inner.items
    }
}

impl From<Vec<Value>> for Array {
    #[inline]
    fn from(v: Vec<Value>) -> Array {
        if v.capacity() == 0 {
            return Array(None);
        }
        Array(Some(new_arc(Inner {
            items: v,
            memo: Default::default(),
        })))
    }
}

impl From<Array> for Vec<Value> {
    fn from(a: Array) -> Vec<Value> {
        a.into_vec()
    }
}

impl FromIterator<Value> for Array {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Array {
        Array::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl IntoIterator for Array {
    type Item = Value;
    type IntoIter = std::vec::IntoIter<Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a Array {
    type Item = &'a Value;
    type IntoIter = std::slice::Iter<'a, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Array {
    type Item = &'a mut Value;
    type IntoIter = std::slice::IterMut<'a, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

impl PartialEq for Array {
    fn eq(&self, other: &Array) -> bool {
        self.ptr_eq(other) || **self == **other
    }
}

impl PartialEq<Vec<Value>> for Array {
    fn eq(&self, other: &Vec<Value>) -> bool {
        **self == *other
    }
}

impl fmt::Debug for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl super::Remembers for Array {
    #[inline]
    fn memo(&self) -> Option<&super::Memo> {
        self.0.as_deref().map(|i| &i.memo)
    }
}
