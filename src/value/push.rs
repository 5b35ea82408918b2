//! Writing a new element straight into its memory: a vector's next slot, a new `Arc`.
//!
//! Why: `Vec::push` (or `Arc::new`) of a value built just before (a tuple assembled from
//! a key and a value, a string returned from a call, an array's node) compiled to narrow
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
pub(super) fn push_entry(entries: &mut Vec<(Str, Value)>, key: Str, value: Value) {
    // SAFETY: `write_entry` writes both halves of the slot.
    unsafe { push_in_place(entries, |slot| write_entry(slot, key, value)) }
}

/// Writes an entry's key and value straight into `slot`, half by half.
///
/// # Safety
/// `slot` must be valid for writes and aligned; what it held is overwritten, not dropped.
#[inline(always)]
pub(super) unsafe fn write_entry(slot: *mut (Str, Value), key: Str, value: Value) {
    // SAFETY: the caller's slot is valid for writes, and so are both its halves.
    unsafe {
        std::ptr::addr_of_mut!((*slot).0).write(key);
        std::ptr::addr_of_mut!((*slot).1).write(value);
    }
}

/// `Arc::new(value)` with the value written straight into the new allocation. `Arc::new`
/// of a struct built on the stack copied it twice with wide loads of narrow stores still
/// in flight (over half of building a map's node, when maps were `Arc`s); `Arc::get_mut` would check the
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

/// `Arc::make_mut` for arrays' and objects' nodes. No `Weak` of them is ever made (their
/// types are private to this module and nothing here downgrades), so one strong count
/// means the caller's handle is the only one: a plain load decides it, where
/// `Arc::make_mut` locks the count with an atomic compare-exchange (a full barrier, on
/// every ResultPath write and every task result merged into its input).
#[inline]
pub(super) fn make_mut<T: Clone>(arc: &mut Arc<T>) -> &mut T {
    if !is_unique(arc) {
        *arc = new_arc(T::clone(arc));
    }
    // SAFETY: the handle is the only one (checked, or just made), and it is borrowed
    // mutably for the reference's lifetime.
    unsafe { &mut *Arc::as_ptr(arc).cast_mut() }
}

/// `Arc::get_mut` for the same nodes, by the same reasoning as [`make_mut`].
#[inline]
pub(super) fn get_mut<T>(arc: &mut Arc<T>) -> Option<&mut T> {
    // SAFETY: as in `make_mut`, when the handle is the only one.
    is_unique(arc).then(|| unsafe { &mut *Arc::as_ptr(arc).cast_mut() })
}

#[inline]
fn is_unique<T>(arc: &Arc<T>) -> bool {
    debug_assert_eq!(
        Arc::weak_count(arc),
        0,
        "a node of state data was downgraded"
    );
    only_handle(Arc::strong_count(arc))
}

/// Whether a node whose count was just read as `count` has the caller's handle as its
/// only one, ready for the caller to write (for `Arc`ed arrays and `value::node`).
#[inline]
pub(super) fn only_handle(count: usize) -> bool {
    // Pairs with the release decrement of a handle dropped on another thread, so its
    // reads of the node happen before the caller's writes (as `Arc::get_mut`'s acquire).
    std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
    count == 1
}
