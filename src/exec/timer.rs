//! Wait and Retry delays on a thread that runs many executions (a shard): one heap entry
//! per sleeping execution, fired by one driver task, in place of one tokio timer each.
//!
//! Why: a tokio `Sleep` registers with the runtime's timer driver under its lock, is fired
//! by the driver's wheel, and wakes through the runtime; perf put ~55 % of a Wait loop's
//! time and ~30 % of retry-catch's in that machinery and its clock reads. Here a sleep is
//! a push onto this thread's heap, and the driver wakes once for everything due together.
//! Where no timers are installed (`stepstream exec`, tests, the TestState API) a delay
//! falls back to tokio's timer, whose paused clock gives the virtual time those use.

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

thread_local! {
    static CURRENT: RefCell<Option<Rc<Timers>>> = const { RefCell::new(None) };
}

/// The delays of every execution on one thread, earliest first.
#[derive(Default)]
pub struct Timers {
    heap: RefCell<BinaryHeap<Entry>>,
    next_seq: Cell<u64>,
    /// The deadline the driver waits for now (`None`: it waits for a first entry).
    armed: Cell<Option<Instant>>,
    /// Set when an entry due before `armed` arrived, so the driver re-arms.
    changed: Cell<bool>,
    driver: RefCell<Option<Waker>>,
}

/// One sleeping execution: its deadline, and the slot its [`Sleep`] watches.
struct Entry {
    due: Instant,
    /// Ties keep the order the sleeps began in.
    seq: u64,
    slot: Rc<Slot>,
}

/// What a sleeping execution and the heap share: whether its time came, and whom to wake.
#[derive(Default)]
pub(crate) struct Slot {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: `BinaryHeap` pops its greatest, and the earliest must come first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// Installs timers on this thread (once; later calls return the same ones). Delays of
/// executions on this thread then go to them, so whoever installs them must fire them:
/// [`drive`] as a local task, or [`Timers::fire_next`] by hand.
pub fn install() -> Rc<Timers> {
    CURRENT.with(|c| Rc::clone(c.borrow_mut().get_or_insert_with(Rc::default)))
}

/// Installs timers on this thread and spawns their driver on the current `LocalSet`.
pub fn start() {
    let timers = install();
    tokio::task::spawn_local(drive(timers));
}

/// Fires what is due on this thread's timers, if it has any, so that the executions it
/// wakes run in the `LocalSet`'s next pass (a loop that starts many jobs calls this
/// between batches).
pub fn fire_due_now() {
    if let Some(t) = CURRENT.with(|c| c.borrow().clone()) {
        t.fire_due(Instant::now());
    }
}

/// Polls `fut` in place with a waker that is never woken, firing this thread's timers in
/// order each time it waits on them (a virtual clock: delays pass at once); `Pending` once
/// it waits on anything else. For benches and tests that run an execution as a shard
/// would, without a driver task.
pub fn poll_virtual<F: Future + ?Sized>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    let timers = install();
    loop {
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => return Poll::Ready(v),
            Poll::Pending if timers.fire_next() => {}
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Sleeps until `due` (on tokio's clock): on this thread's timers when it has them, else
/// on tokio's.
pub(crate) fn sleep_until(due: Instant) -> Sleep {
    match CURRENT.with(|c| c.borrow().clone()) {
        Some(t) => Sleep::Heap(t.add(due)),
        // Boxed: the tokio timer is large, and an execution's future is sized by its
        // largest state; most executions run where the heap is.
        None => Sleep::Tokio(Box::pin(tokio::time::sleep_until(due))),
    }
}

/// A delay in progress (see [`sleep`]). Dropping a heap sleep leaves its entry to be
/// skipped when its time comes.
pub(crate) enum Sleep {
    Heap(Rc<Slot>),
    Tokio(Pin<Box<tokio::time::Sleep>>),
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut *self {
            Sleep::Tokio(s) => s.as_mut().poll(cx),
            Sleep::Heap(slot) => {
                if slot.fired.get() {
                    return Poll::Ready(());
                }
                let mut w = slot.waker.borrow_mut();
                match &*w {
                    Some(old) if old.will_wake(cx.waker()) => {}
                    _ => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

impl Timers {
    fn add(&self, due: Instant) -> Rc<Slot> {
        let slot = Rc::new(Slot::default());
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        self.heap.borrow_mut().push(Entry {
            due,
            seq,
            slot: Rc::clone(&slot),
        });
        if self.armed.get().is_none_or(|a| due < a) {
            self.armed.set(Some(due));
            self.changed.set(true);
            if let Some(w) = self.driver.borrow().as_ref() {
                w.wake_by_ref();
            }
        }
        slot
    }

    /// Fires every entry due at `now`; returns when the next one is due.
    pub fn fire_due(&self, now: Instant) -> Option<Instant> {
        loop {
            let entry = {
                let mut heap = self.heap.borrow_mut();
                match heap.peek() {
                    Some(e) if e.due <= now => heap.pop(),
                    Some(e) => return Some(e.due),
                    None => return None,
                }
            };
            if let Some(e) = entry {
                fire(&e.slot);
            }
        }
    }

    /// Fires the earliest entry whatever the time (a virtual clock: delays pass at once, in
    /// order); `false` when none is left.
    pub fn fire_next(&self) -> bool {
        let entry = self.heap.borrow_mut().pop();
        entry.is_some_and(|e| {
            fire(&e.slot);
            true
        })
    }

    /// Entries not fired yet (cancelled ones included until their time comes).
    pub fn pending(&self) -> usize {
        self.heap.borrow().len()
    }
}

fn fire(slot: &Rc<Slot>) {
    // Only the heap holds a slot whose sleep was dropped (its execution ended early).
    if Rc::strong_count(slot) == 1 {
        return;
    }
    slot.fired.set(true);
    if let Some(w) = slot.waker.borrow_mut().take() {
        w.wake();
    }
}

/// Fires `timers` as their entries come due, on one tokio timer re-armed for the earliest.
pub async fn drive(timers: Rc<Timers>) {
    // Far enough to mean "nothing to wait for", near enough to stay a valid deadline.
    const IDLE: Duration = Duration::from_secs(3600);
    let sleep = tokio::time::sleep(IDLE);
    tokio::pin!(sleep);
    loop {
        let now = Instant::now();
        let next = timers.fire_due(now);
        timers.armed.set(next);
        timers.changed.set(false);
        sleep.as_mut().reset(next.unwrap_or(now + IDLE));
        std::future::poll_fn(|cx| {
            if timers.changed.get() {
                return Poll::Ready(());
            }
            let mut driver = timers.driver.borrow_mut();
            if !driver.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *driver = Some(cx.waker().clone());
            }
            sleep.as_mut().poll(cx)
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &Timers, base: Instant, ms: u64) -> Sleep {
        Sleep::Heap(t.add(base + Duration::from_millis(ms)))
    }

    fn ready(s: &mut Sleep) -> bool {
        Pin::new(s)
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    }

    #[test]
    fn entries_fire_in_due_order_and_ties_in_start_order() {
        let t = Timers::default();
        let base = Instant::now();
        let mut s = [
            at(&t, base, 30),
            at(&t, base, 10),
            at(&t, base, 10),
            at(&t, base, 20),
        ];
        assert!(!s.iter_mut().any(ready));
        let mut order = Vec::new();
        while t.fire_next() {
            order.push(s.iter_mut().map(ready).collect::<Vec<_>>());
        }
        assert_eq!(
            order,
            [
                [false, true, false, false],
                [false, true, true, false],
                [false, true, true, true],
                [true, true, true, true],
            ]
        );
    }

    #[test]
    fn fire_due_fires_only_what_is_due_and_names_the_next() {
        let t = Timers::default();
        let base = Instant::now();
        let mut early = at(&t, base, 5);
        let mut late = at(&t, base, 50);
        assert_eq!(
            t.fire_due(base + Duration::from_millis(10)),
            Some(base + Duration::from_millis(50))
        );
        assert!(ready(&mut early) && !ready(&mut late));
        assert_eq!(t.fire_due(base + Duration::from_millis(50)), None);
        assert!(ready(&mut late));
    }

    #[test]
    fn a_dropped_sleep_is_skipped_and_its_entry_freed() {
        let t = Timers::default();
        let base = Instant::now();
        let gone = at(&t, base, 1);
        drop(gone);
        let mut kept = at(&t, base, 2);
        assert_eq!(t.pending(), 2);
        assert!(t.fire_next() && t.fire_next() && !t.fire_next());
        assert!(ready(&mut kept));
        assert_eq!(t.pending(), 0);
    }

    /// The driver, on a real runtime: sleeps started in any order end at their own time,
    /// and one started while the driver waits for a later one is not held behind it.
    #[test]
    fn the_driver_wakes_each_sleep_at_its_time() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime");
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            start();
            let t0 = Instant::now();
            let ends = Rc::new(RefCell::new(Vec::new()));
            let spawn = |ms: u64| {
                let ends = Rc::clone(&ends);
                tokio::task::spawn_local(async move {
                    sleep_until(Instant::now() + Duration::from_millis(ms)).await;
                    ends.borrow_mut().push((ms, Instant::now() - t0));
                })
            };
            let long = spawn(500);
            tokio::time::sleep(Duration::from_millis(10)).await;
            let short = spawn(20);
            let (a, b) = (long.await, short.await);
            a.and(b).expect("both sleeps end");
            let ends = ends.borrow();
            assert_eq!(
                ends[0].0, 20,
                "the later, shorter sleep ends first: {ends:?}"
            );
            assert_eq!(ends[0].1, Duration::from_millis(30));
            assert_eq!(ends[1].1, Duration::from_millis(500));
        });
        CURRENT.with(|c| c.borrow_mut().take());
    }
}
