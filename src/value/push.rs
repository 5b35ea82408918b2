//! Writing a new element straight into its memory: a vector's next slot, a new `Arc`.
//!
//! Why: `Vec::push` (or `Arc::new`) of a value built just before (a tuple assembled from
//! a key and a value, a string returned from a call, a map's `Inner`) compiled to narrow
//! writes of the value on the stack followed at once by wider reads of them for the copy,
//! and those reads waited for the writes to reach the cache (perf: a third of `Map::insert_sized`'s
//! samples, 80 % of the reader's `push_mut`). Written in place, nothing is read back.

use std::sync::Arc;

use super::{Str, Value};

/// Appends one element that `init` writes into the vector's next slot.
///
/// # Safety
/// `init` gets that slot (valid for writes, aligned, uninitialized) and must leave it fully
/// initialized; the vector counts it only after `init` returns.
#[inline(always)]
pub(super) unsafe fn push_in_place<T>(v: &mut Vec<T>, init: impl FnOnce(*mut T)) {
    if v.len() == v.capacity() {
        v.reserve(1);
    }
    // SAFETY: there is room for one more element after `reserve`; the caller's `init`
    // initializes it before the length counts it.
    unsafe {
        init(v.as_mut_ptr().add(v.len()));
        v.set_len(v.len() + 1);
    }
}

/// `v.push(x)`, inlined.
#[inline(always)]
pub(super) fn push<T>(v: &mut Vec<T>, x: T) {
    // SAFETY: the slot is written whole.
    unsafe { push_in_place(v, |slot| slot.write(x)) }
}

/// `entries.push((key, value))` with each half written into the slot (no tuple first).
#[inline(always)]
pub(crate) fn push_entry(entries: &mut Vec<(Str, Value)>, key: Str, value: Value) {
    // SAFETY: both halves of the slot are written.
    unsafe {
        push_in_place(entries, |slot| {
            std::ptr::addr_of_mut!((*slot).0).write(key);
            std::ptr::addr_of_mut!((*slot).1).write(value);
        })
    }
}

/// `Arc::new(value)` with the value written straight into the new allocation. `Arc::new`
/// of a struct built on the stack copied it twice with wide loads of narrow stores still
/// in flight (over half of `Map::from_distinct`'s samples); `Arc::get_mut` would check the
/// counts with an atomic compare-exchange first.
#[inline(always)]
pub(super) fn new_arc<T>(value: T) -> Arc<T> {
    let slot = Arc::<T>::new_uninit();
    // SAFETY: `slot` was just made and never cloned, so nothing else can read its value
    // while it is written; the pointer is to that value, valid and aligned for `T`.
    unsafe {
        Arc::as_ptr(&slot).cast_mut().cast::<T>().write(value);
        slot.assume_init()
    }
}
