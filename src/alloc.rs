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
