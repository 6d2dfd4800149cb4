//! The tasks waiting for room in the queue or for the end of the session, one slot per waiting future.
//!
//! A future takes a slot when it first has to wait, overwrites it when polled again and frees it when it
//! completes or is dropped, so a `select!` loop that drops a `finished()` or `send()` future on every
//! turn leaves nothing behind. Waking does not empty the slots: a woken future either completes (and
//! frees its slot) or waits again in the same one.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};

/// The registered wakers.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    inner: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Waiters {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        // Every critical section leaves the slots consistent: a panic elsewhere does not poison them.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers the task of `cx` in `slot` (taking a slot if it has none yet).
    pub(crate) fn register(&self, slot: &mut Option<usize>, cx: &Context<'_>) {
        let mut s = self.lock();
        match *slot {
            Some(i) => match &mut s.wakers[i] {
                Some(w) if w.will_wake(cx.waker()) => {}
                w => *w = Some(cx.waker().clone()),
            },
            None => {
                let w = Some(cx.waker().clone());
                let i = match s.free.pop() {
                    Some(i) => {
                        s.wakers[i] = w;
                        i
                    }
                    None => {
                        s.wakers.push(w);
                        s.wakers.len() - 1
                    }
                };
                *slot = Some(i);
            }
        }
    }

    /// Frees `slot`, if it holds one.
    #[inline]
    pub(crate) fn release(&self, slot: &mut Option<usize>) {
        // Most futures never wait: the common case is a check, not a call.
        if let Some(i) = slot.take() {
            self.free(i);
        }
    }

    #[cold]
    fn free(&self, i: usize) {
        let mut s = self.lock();
        s.wakers[i] = None;
        s.free.push(i);
    }

    /// Wakes every waiting task. Wakers only schedule their task: they are called under the lock.
    pub(crate) fn wake_all(&self) {
        for w in self.lock().wakers.iter().flatten() {
            w.wake_by_ref();
        }
    }

    /// Wakers registered now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let s = self.lock();
        s.wakers.len() - s.free.len()
    }
}

/// A slot held by one waiting future; freed when dropped.
pub(crate) struct Slot<'a> {
    waiters: &'a Waiters,
    slot: Option<usize>,
}

impl<'a> Slot<'a> {
    pub(crate) fn new(waiters: &'a Waiters) -> Self {
        Self { waiters, slot: None }
    }

    /// Registers the task of `cx` to be woken.
    pub(crate) fn register(&mut self, cx: &Context<'_>) {
        self.waiters.register(&mut self.slot, cx);
    }

    /// Frees the slot early (the future completed).
    #[inline]
    pub(crate) fn release(&mut self) {
        self.waiters.release(&mut self.slot);
    }
}

impl Drop for Slot<'_> {
    #[inline]
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn slots_are_freed_by_their_futures_and_kept_across_wakes() {
        let waiters = Waiters::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let cx = Context::from_waker(&waker);
        for _ in 0..10_000 {
            let mut slot = Slot::new(&waiters);
            slot.register(&cx);
            slot.register(&cx);
            assert_eq!(waiters.len(), 1);
        }
        assert_eq!(waiters.len(), 0);
        let mut a = Slot::new(&waiters);
        let mut b = Slot::new(&waiters);
        a.register(&cx);
        b.register(&cx);
        waiters.wake_all();
        waiters.wake_all();
        assert_eq!(count.0.load(Ordering::Relaxed), 4);
        // Woken, still registered until they complete.
        assert_eq!(waiters.len(), 2);
        a.release();
        drop(b);
        assert_eq!(waiters.len(), 0);
    }
}
