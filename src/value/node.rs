//! [`Node`]: a reference count, a header and a growable run of items in one allocation.
//!
//! Why: an object was an `Arc` of a header holding a `Vec` of its entries, two allocations
//! (and two frees, and two dependent loads before the first key) per object. Every object
//! of a request, of a Parameters template and of a task's result paid them.

use std::alloc::{self, Layout};
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ptr::{self, NonNull};
use std::sync::atomic::{self, AtomicUsize, Ordering};

/// What the allocation starts with; the items follow at [`Node::ITEMS_AT`].
#[repr(C)]
struct Head<H> {
    count: AtomicUsize,
    len: usize,
    cap: usize,
    header: H,
}

/// A shared, copy-on-write header and run of items, like `Arc<(H, Vec<T>)>` in one
/// allocation. No weak handle exists, so one count means one owner.
pub(super) struct Node<H, T> {
    ptr: NonNull<Head<H>>,
    _owns: PhantomData<(H, T)>,
}

// SAFETY: as `Arc<(H, Vec<T>)>`: the header and items are reached from several threads
// only through shared references, and written only through the one handle left.
unsafe impl<H: Send + Sync, T: Send + Sync> Send for Node<H, T> {}
// SAFETY: as above.
unsafe impl<H: Send + Sync, T: Send + Sync> Sync for Node<H, T> {}

impl<H, T> Node<H, T> {
    const ITEMS_AT: usize = {
        assert!(size_of::<T>() > 0, "a node's items take room");
        size_of::<Head<H>>().next_multiple_of(align_of::<T>())
    };

    fn layout(cap: usize) -> Layout {
        let align = align_of::<Head<H>>().max(align_of::<T>());
        cap.checked_mul(size_of::<T>())
            .and_then(|n| n.checked_add(Self::ITEMS_AT))
            .and_then(|n| Layout::from_size_align(n, align).ok())
            .expect("a node's capacity overflows memory")
    }

    /// A node owned by this handle alone, with room for `cap` items.
    #[inline]
    pub(super) fn with_capacity(header: H, cap: usize) -> Node<H, T> {
        Self::with_header(cap, || header)
    }

    /// [`Self::with_capacity`] with a default header, built where it lives: one passed in
    /// was built on the stack and copied over with wide loads, a stall (perf: ~10 % of
    /// `Template::eval_within`'s time in order, on the new maps of its objects).
    #[inline]
    pub(super) fn with_default(cap: usize) -> Node<H, T>
    where
        H: Default,
    {
        Self::with_header(cap, H::default)
    }

    #[inline(always)]
    fn with_header(cap: usize, header: impl FnOnce() -> H) -> Node<H, T> {
        let layout = Self::layout(cap);
        // SAFETY: the layout is never zero-sized (the head has a count).
        let raw = unsafe { alloc::alloc(layout) }.cast::<Head<H>>();
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        // SAFETY: `raw` is valid for writes of a head. Field by field, as `push::new_arc`
        // writes: a head built on the stack first was copied with wide loads of its narrow
        // writes still in flight.
        unsafe {
            ptr::addr_of_mut!((*raw).count).write(AtomicUsize::new(1));
            ptr::addr_of_mut!((*raw).len).write(0);
            ptr::addr_of_mut!((*raw).cap).write(cap);
            ptr::addr_of_mut!((*raw).header).write(header());
        }
        Node {
            ptr,
            _owns: PhantomData,
        }
    }

    #[inline]
    fn head(&self) -> &Head<H> {
        // SAFETY: the head lives as long as any handle.
        unsafe { self.ptr.as_ref() }
    }

    #[inline]
    fn items_ptr(&self) -> *mut T {
        // SAFETY: the items start inside the same allocation.
        unsafe {
            self.ptr
                .as_ptr()
                .cast::<u8>()
                .add(Self::ITEMS_AT)
                .cast::<T>()
        }
    }

    /// The header.
    #[inline]
    pub(super) fn header(&self) -> &H {
        &self.head().header
    }

    /// The items.
    #[inline]
    pub(super) fn items(&self) -> &[T] {
        // SAFETY: the first `len` items are initialized and only written through a unique
        // handle, which `&self` rules out for the slice's lifetime.
        unsafe { std::slice::from_raw_parts(self.items_ptr(), self.head().len) }
    }

    /// How many items fit without growing.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.head().cap
    }

    /// How many handles share the node.
    #[inline]
    pub(super) fn count(&self) -> usize {
        self.head().count.load(Ordering::Relaxed)
    }

    /// Whether both handles are to the same node.
    #[inline]
    pub(super) fn ptr_eq(&self, other: &Node<H, T>) -> bool {
        self.ptr == other.ptr
    }

    #[inline]
    fn is_unique(&self) -> bool {
        super::push::only_handle(self.head().count.load(Ordering::Relaxed))
    }

    /// Write access, if no other handle shares the node.
    #[inline]
    pub(super) fn get_mut(&mut self) -> Option<NodeMut<'_, H, T>> {
        self.is_unique().then_some(NodeMut(self))
    }

    /// Write access, after copying the header and items (not what they point to) if
    /// another handle shares them. The copy has room for one more item, the write that
    /// usually follows (a ResultPath entry).
    #[inline]
    pub(super) fn make_mut(&mut self) -> NodeMut<'_, H, T>
    where
        H: Clone,
        T: Clone,
    {
        if !self.is_unique() {
            *self = self.copy(self.items().len() + 1);
        }
        NodeMut(self)
    }

    #[cold]
    fn copy(&self, cap: usize) -> Node<H, T>
    where
        H: Clone,
        T: Clone,
    {
        let mut new = Node::with_capacity(self.header().clone(), cap);
        let mut w = NodeMut(&mut new);
        for x in self.items() {
            w.push(x.clone());
        }
        new
    }

    /// The items, moved out if this was the only handle (else cloned).
    pub(super) fn into_vec(mut self) -> Vec<T>
    where
        T: Clone,
    {
        let Some(_) = self.get_mut() else {
            return self.items().to_vec();
        };
        let n = self.head().len;
        let mut out = Vec::with_capacity(n);
        // SAFETY: the node is not shared; its `n` items are copied bitwise into `out`,
        // which then owns them, and the node's length drops to 0 so it drops only its
        // header.
        unsafe {
            ptr::copy_nonoverlapping(self.items_ptr(), out.as_mut_ptr(), n);
            (*self.ptr.as_ptr()).len = 0;
            out.set_len(n);
        }
        out
    }

    #[inline(never)]
    fn drop_slow(&mut self) {
        let cap = self.head().cap;
        // SAFETY: this was the last handle (the count fell to 0 after the acquire fence):
        // nothing else reads the node, whose `len` items and header are initialized and
        // dropped once, and whose memory was allocated with `layout(cap)`.
        unsafe {
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(
                self.items_ptr(),
                self.head().len,
            ));
            ptr::drop_in_place(ptr::addr_of_mut!((*self.ptr.as_ptr()).header));
            alloc::dealloc(self.ptr.as_ptr().cast(), Self::layout(cap));
        }
    }
}

impl<H, T> Clone for Node<H, T> {
    /// Another handle: a count raised.
    #[inline]
    fn clone(&self) -> Node<H, T> {
        let old = self.head().count.fetch_add(1, Ordering::Relaxed);
        // As `Arc`: a count this high means handles are being leaked in a loop.
        if old > isize::MAX as usize {
            std::process::abort();
        }
        Node {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<H, T> Drop for Node<H, T> {
    #[inline]
    fn drop(&mut self) {
        // The only handle sees a count of 1 that nothing can raise (a clone needs a handle,
        // and there are no weak ones), so it frees without a locked instruction.
        if self.is_unique() {
            self.drop_slow();
            return;
        }
        if self.head().count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        atomic::fence(Ordering::Acquire);
        self.drop_slow();
    }
}

/// Write access to a node no other handle shares.
pub(super) struct NodeMut<'a, H, T>(&'a mut Node<H, T>);

impl<'a, H, T> NodeMut<'a, H, T> {
    #[inline]
    fn head_mut(&mut self) -> &mut Head<H> {
        // SAFETY: the handle is the only one and is borrowed mutably.
        unsafe { self.0.ptr.as_mut() }
    }

    /// The header and the items, writable together.
    #[inline]
    pub(super) fn parts(&mut self) -> (&mut H, &mut [T]) {
        NodeMut(&mut *self.0).into_parts()
    }

    /// The header and the items, writable together for as long as the node is borrowed.
    #[inline]
    pub(super) fn into_parts(self) -> (&'a mut H, &'a mut [T]) {
        let items = self.0.items_ptr();
        // SAFETY: the handle is the only one and is borrowed mutably for 'a.
        let head = unsafe { &mut *self.0.ptr.as_ptr() };
        let len = head.len;
        // SAFETY: the first `len` items are initialized; the node is not shared, and the
        // items do not overlap the header.
        (&mut head.header, unsafe {
            std::slice::from_raw_parts_mut(items, len)
        })
    }

    /// Appends the `n` items at `from`, moved bitwise.
    ///
    /// # Safety
    /// The `n` items at `from` must be valid and outside this node, and the caller must
    /// forget them afterwards (the node owns them now).
    #[inline]
    pub(super) unsafe fn append_moved(&mut self, from: *const T, n: usize) {
        let (len, cap) = (self.0.head().len, self.0.head().cap);
        if cap - len < n {
            self.grow(len + n);
        }
        // SAFETY: there is room for `n` more items after `grow`; the caller's items are
        // valid and do not overlap the node.
        unsafe { ptr::copy_nonoverlapping(from, self.0.items_ptr().add(len), n) };
        self.head_mut().len = len + n;
    }

    /// The header.
    #[inline]
    pub(super) fn header(&mut self) -> &mut H {
        &mut self.head_mut().header
    }

    /// Reborrowed for reading.
    #[inline]
    pub(super) fn node(&self) -> &Node<H, T> {
        self.0
    }

    /// Appends one item that `init` writes into the next slot.
    ///
    /// # Safety
    /// `init` gets that slot (valid for writes, aligned, uninitialized) and must leave it
    /// fully initialized; the node counts it only after `init` returns.
    #[inline(always)]
    pub(super) unsafe fn push_in_place(&mut self, init: impl FnOnce(*mut T)) {
        let (len, cap) = (self.0.head().len, self.0.head().cap);
        if len == cap {
            self.grow(len + 1);
        }
        // SAFETY: there is room for one more item after `grow`; the caller initializes it
        // before the length counts it.
        unsafe {
            init(self.0.items_ptr().add(len));
        }
        self.head_mut().len = len + 1;
    }

    /// Makes room for one more item.
    #[inline(always)]
    pub(super) fn reserve_one(&mut self) {
        let (len, cap) = (self.0.head().len, self.0.head().cap);
        if len == cap {
            self.grow(len + 1);
        }
    }

    /// [`NodeMut::push_in_place`] where [`NodeMut::reserve_one`] has made room.
    ///
    /// Why apart: an item captured before a possible reallocation's call was spilled to
    /// the stack around it and read back wider than it was written, a stall (perf: over a
    /// third of `Map::insert`'s samples in the order workload, on that one load).
    ///
    /// # Safety
    /// As [`NodeMut::push_in_place`], and there must be room for one more item.
    #[inline(always)]
    pub(super) unsafe fn push_reserved(&mut self, init: impl FnOnce(*mut T)) {
        let len = self.0.head().len;
        debug_assert!(len < self.0.head().cap);
        // SAFETY: there is room (the caller's promise); the caller's `init` initializes
        // the slot before the length counts it.
        unsafe {
            init(self.0.items_ptr().add(len));
        }
        self.head_mut().len = len + 1;
    }

    /// Appends `x`.
    #[inline]
    pub(super) fn push(&mut self, x: T) {
        // SAFETY: the slot is written whole.
        unsafe { self.push_in_place(|slot| slot.write(x)) }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, need: usize) {
        let cap = self.0.head().cap;
        let new_cap = need.max(cap.saturating_mul(2)).max(4);
        let (old, new) = (Node::<H, T>::layout(cap), Node::<H, T>::layout(new_cap));
        // SAFETY: the memory was allocated with `old` (same alignment as `new`); the node
        // is not shared, so nothing points into it while it moves; its contents are moved
        // bitwise, which every Rust value allows.
        let raw = unsafe { alloc::realloc(self.0.ptr.as_ptr().cast(), old, new.size()) };
        let Some(ptr) = NonNull::new(raw.cast::<Head<H>>()) else {
            alloc::handle_alloc_error(new)
        };
        self.0.ptr = ptr;
        self.head_mut().cap = new_cap;
    }

    /// Removes and returns item `i`, moving the last item into its place.
    pub(super) fn swap_remove(&mut self, i: usize) -> T {
        self.take(i, false)
    }

    /// Removes and returns item `i`, shifting the later ones down.
    pub(super) fn remove(&mut self, i: usize) -> T {
        self.take(i, true)
    }

    fn take(&mut self, i: usize, in_order: bool) -> T {
        let len = self.0.head().len;
        assert!(i < len, "index {i} out of {len} items");
        let p = self.0.items_ptr();
        // SAFETY: item `i` is read out; then either the `len - i - 1` after it move down
        // one slot, or the last moves into slot `i`; the length then forgets the last slot.
        unsafe {
            let x = p.add(i).read();
            if in_order {
                ptr::copy(p.add(i + 1), p.add(i), len - i - 1);
            } else if i != len - 1 {
                ptr::copy_nonoverlapping(p.add(len - 1), p.add(i), 1);
            }
            self.head_mut().len = len - 1;
            x
        }
    }

    /// Keeps the items `keep` says yes to, in order.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&mut T) -> bool) {
        let len = self.0.head().len;
        let p = self.0.items_ptr();
        // A panic in `keep` leaks the items rather than dropping any twice.
        self.head_mut().len = 0;
        let mut kept = 0;
        for i in 0..len {
            // SAFETY: item `i` is initialized and not yet moved or dropped; a kept item
            // moves to slot `kept <= i`, whose item was moved or dropped already.
            unsafe {
                let x = p.add(i);
                if keep(&mut *x) {
                    if i != kept {
                        ptr::copy_nonoverlapping(x, p.add(kept), 1);
                    }
                    kept += 1;
                } else {
                    ptr::drop_in_place(x);
                }
            }
        }
        self.head_mut().len = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    type N = Node<Arc<str>, (String, Arc<u32>)>;

    fn node(n: u32) -> (N, Arc<u32>) {
        let shared = Arc::new(7);
        let mut x = N::with_capacity(Arc::from("head"), 1);
        let mut w = x.get_mut().unwrap();
        for i in 0..n {
            w.push((i.to_string(), Arc::clone(&shared)));
        }
        (x, shared)
    }

    fn keys(x: &N) -> Vec<&str> {
        x.items().iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn items_grow_and_every_one_is_dropped_once() {
        let (x, shared) = node(100);
        assert_eq!(x.items().len(), 100);
        assert!(x.capacity() >= 100);
        assert_eq!(x.items()[57].0, "57");
        assert_eq!(Arc::strong_count(&shared), 101);
        let y = x.clone();
        assert_eq!(x.count(), 2);
        drop(x);
        assert_eq!(Arc::strong_count(&shared), 101);
        drop(y);
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    #[test]
    fn a_write_to_a_shared_node_copies_it_first() {
        let (mut x, shared) = node(3);
        let y = x.clone();
        assert!(x.get_mut().is_none());
        x.make_mut().push(("new".into(), Arc::clone(&shared)));
        assert!(!x.ptr_eq(&y));
        assert_eq!(keys(&x), ["0", "1", "2", "new"]);
        assert_eq!(keys(&y), ["0", "1", "2"]);
        assert_eq!(&**y.header(), "head");
        assert_eq!(Arc::strong_count(&shared), 8);
        assert_eq!(y.into_vec().len(), 3);
        assert_eq!(Arc::strong_count(&shared), 5);
        let owned = x.into_vec();
        assert_eq!(owned.len(), 4);
        assert_eq!(Arc::strong_count(&shared), 5);
        drop(owned);
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    #[test]
    fn removals_keep_every_other_item() {
        let (mut x, shared) = node(6);
        let mut w = x.get_mut().unwrap();
        assert_eq!(w.swap_remove(1).0, "1");
        assert_eq!(keys(w.node()), ["0", "5", "2", "3", "4"]);
        assert_eq!(w.remove(0).0, "0");
        assert_eq!(keys(w.node()), ["5", "2", "3", "4"]);
        w.retain(|(k, _)| k != "2" && k != "4");
        assert_eq!(keys(w.node()), ["5", "3"]);
        assert_eq!(w.swap_remove(1).0, "3");
        assert_eq!(keys(&x), ["5"]);
        assert_eq!(Arc::strong_count(&shared), 2);
        drop(x);
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    #[test]
    fn items_moved_in_from_a_stack_are_owned_once() {
        let (mut x, shared) = node(2);
        let mut stack: Vec<(String, Arc<u32>)> = (0..9)
            .map(|i| (format!("s{i}"), Arc::clone(&shared)))
            .collect();
        let mut w = x.get_mut().unwrap();
        // SAFETY: the last 7 items are valid and forgotten by the stack right after.
        unsafe {
            w.append_moved(stack.as_ptr().add(2), 7);
            stack.set_len(2);
        }
        let (head, items) = w.into_parts();
        assert_eq!(&**head, "head");
        items[0].0.push('!');
        assert_eq!(keys(&x)[..3], ["0!", "1", "s2"]);
        assert_eq!(x.items().len(), 9);
        assert_eq!(Arc::strong_count(&shared), 12);
        drop((x, stack));
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    #[test]
    fn handles_on_other_threads_share_one_node() {
        let (x, shared) = node(10);
        std::thread::scope(|s| {
            for _ in 0..4 {
                let y = x.clone();
                s.spawn(move || {
                    for _ in 0..1000 {
                        let z = y.clone();
                        assert_eq!(z.items().len(), 10);
                    }
                });
            }
        });
        assert_eq!(x.count(), 1);
        drop(x);
        assert_eq!(Arc::strong_count(&shared), 1);
    }
}
