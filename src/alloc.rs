//! The binary's global allocator, wrapped so that one thread can bound how much memory a
//! stretch of code adds and stop it through a cancel flag.
//!
//! The JSONata engine checks a cancel flag at every node it evaluates but knows nothing of
//! memory: `($f := function($s){ $f($s & $s) }; $f("x"))` doubles a string until its time
//! limit, gigabytes later. [`watch`] arms a budget for the current thread; every allocation
//! on that thread counts against it (frees give it back), and once the live total passes the
//! budget the flag is raised, so the evaluation stops at its next node with the memory it
//! holds then, a small multiple of the budget at worst.
//!
//! Outside a watch an allocation pays one thread-local read and a branch. Without this
//! allocator installed (library tests, programs embedding stepstream with their own), a
//! watch never trips and the engine's time limit is the only bound.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a watch raises when its budget is exceeded; `trip` runs inside the allocator, so it
/// must neither allocate nor panic (an atomic store).
pub trait Trip {
    /// Asks the watched code to stop.
    fn trip(&self);
}

impl Trip for AtomicBool {
    fn trip(&self) {
        self.store(true, Ordering::Relaxed);
    }
}

unsafe fn trip_as<T: Trip>(target: *const ()) {
    (*target.cast::<T>()).trip();
}

/// mimalloc as the global allocator, called without an alignment where none is needed.
///
/// Why not `mimalloc::MiMalloc`: it passes every allocation to `mi_malloc_aligned`, whose
/// fast path needs the size class's page to have a free block at hand; when the page's
/// list is empty (its freed blocks wait on a second list until the plain path collects
/// them) it falls back to an over-allocation in a larger class, ~130 instructions, and
/// the first class's page stays empty. Under callgrind a third of map-parallel's
/// allocations took that path. mimalloc's blocks are all word-aligned, so a layout asking
/// for no more than that goes to `mi_malloc`, whose slow path collects the page.
pub struct Mimalloc;

/// The alignment every mimalloc block has (its size classes are multiples of a word).
const WORD: usize = std::mem::size_of::<usize>();

// SAFETY: `mi_malloc`, `mi_zalloc` and `mi_realloc` return word-aligned blocks (or null),
// so they serve layouts aligned to a word or less; larger alignments go to the aligned
// calls. `mi_free` frees blocks from either.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            libmimalloc_sys::mi_malloc(layout.size()).cast()
        } else {
            libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            libmimalloc_sys::mi_zalloc(layout.size()).cast()
        } else {
            libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        libmimalloc_sys::mi_free(ptr.cast());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= WORD {
            libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast()
        } else {
            libmimalloc_sys::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
        }
    }
}

/// Wraps an allocator `A` (mimalloc in the binary) with per-thread watches.
pub struct Watched<A>(pub A);

#[derive(Clone, Copy)]
struct Budget {
    /// Bytes allocated and not yet freed since the watch began (may go negative).
    live: isize,
    /// Past this, `flag` is raised.
    limit: isize,
    /// What to raise, type-erased; valid while the watch is armed (null once raised).
    target: *const (),
    trip: unsafe fn(*const ()),
}

thread_local! {
    static BUDGET: Cell<Option<Budget>> = const { Cell::new(None) };
    static TRIPPED: Cell<bool> = const { Cell::new(false) };
}

fn note(delta: isize) {
    // `try_with`: an allocation during thread teardown must not panic inside the allocator.
    let _ = BUDGET.try_with(|b| {
        if let Some(mut budget) = b.get() {
            budget.live += delta;
            if budget.live > budget.limit && !budget.target.is_null() {
                // SAFETY: the watch that armed this budget borrows the target until it
                // disarms the budget (see `Watch::drop`).
                unsafe { (budget.trip)(budget.target) };
                budget.target = std::ptr::null();
                let _ = TRIPPED.try_with(|t| t.set(true));
            }
            b.set(Some(budget));
        }
    });
}

// SAFETY: every call is forwarded to `A` unchanged; the bookkeeping neither allocates nor
// unwinds.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Watched<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc(layout);
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(layout);
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.dealloc(ptr, layout);
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.0.realloc(ptr, layout, new_size);
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// An armed budget on this thread; disarmed when dropped.
pub struct Watch<'a> {
    _target: std::marker::PhantomData<&'a ()>,
}

/// Arms a budget of `limit` bytes on this thread: once allocations past it are live,
/// `target` is tripped. Watches do not nest; arming one replaces the previous.
pub fn watch<T: Trip>(limit: usize, target: &T) -> Watch<'_> {
    let _ = TRIPPED.try_with(|t| t.set(false));
    let _ = BUDGET.try_with(|b| {
        b.set(Some(Budget {
            live: 0,
            limit: isize::try_from(limit).unwrap_or(isize::MAX),
            target: (target as *const T).cast(),
            trip: trip_as::<T>,
        }))
    });
    Watch {
        _target: std::marker::PhantomData,
    }
}

impl Watch<'_> {
    /// Whether the budget was exceeded since the watch was armed.
    pub fn tripped(&self) -> bool {
        TRIPPED.try_with(Cell::get).unwrap_or(false)
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        let _ = BUDGET.try_with(|b| b.set(None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block honours its layout's alignment, whichever call served it, and a
    /// reallocation keeps the bytes it moves.
    #[test]
    fn mimalloc_blocks_are_aligned_as_asked_and_keep_their_bytes() {
        let a = Mimalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 3, 8, 24, 40, 48, 100, 1000, 1025, 5000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero sizes; every block is freed with its own layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(
                        !p.is_null() && (p as usize).is_multiple_of(align),
                        "{size}/{align}"
                    );
                    std::ptr::write_bytes(p, 0xA5, size);
                    let q = a.realloc(p, layout, size * 3);
                    assert!(
                        !q.is_null() && (q as usize).is_multiple_of(align),
                        "{size}/{align}"
                    );
                    assert!((0..size).all(|i| *q.add(i) == 0xA5), "{size}/{align}");
                    a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                    let z = a.alloc_zeroed(layout);
                    assert!(
                        !z.is_null() && (z as usize).is_multiple_of(align),
                        "{size}/{align}"
                    );
                    assert!((0..size).all(|i| *z.add(i) == 0), "{size}/{align}");
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
