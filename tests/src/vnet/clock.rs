//! The manual clock and its timers: time is an epoch plus an offset that moves only when the test
//! says, and a timer completes when the clock reaches its deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct State {
    now: Instant,
    /// Pending deadlines, earliest first, with the waker of the timer that set each.
    timers: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
}

/// A clock that moves only when told; cloning shares it.
#[derive(Debug, Clone)]
pub struct Clock {
    epoch: Instant,
    state: Arc<Mutex<State>>,
}

impl Clock {
    /// A clock at `epoch`.
    pub fn new(epoch: Instant) -> Self {
        Self { epoch, state: Arc::new(Mutex::new(State { now: epoch, timers: BTreeMap::new(), next_id: 0 })) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The instant the clock started at.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.lock().now
    }

    /// Virtual time since the epoch.
    pub fn elapsed(&self) -> Duration {
        self.now() - self.epoch
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.lock().timers.keys().next().map(|k| k.0)
    }

    /// Moves the clock to `t` (never backwards) and wakes every timer due by then; returns how many.
    pub fn set(&self, t: Instant) -> usize {
        let mut s = self.lock();
        s.now = s.now.max(t);
        let now = s.now;
        let mut woken = 0;
        while let Some(entry) = s.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            entry.remove().wake();
            woken += 1;
        }
        woken
    }

    /// A timer that completes at `deadline`.
    pub fn timer(&self, deadline: Instant) -> Timer {
        Timer { clock: self.clone(), deadline, key: None }
    }
}

/// A timer of a [`Clock`]; re-armable, withdrawn when dropped.
#[derive(Debug)]
pub struct Timer {
    clock: Clock,
    deadline: Instant,
    key: Option<(Instant, u64)>,
}

impl Timer {
    /// Moves the deadline.
    pub fn reset(&mut self, deadline: Instant) {
        if let Some(k) = self.key.take() {
            self.clock.lock().timers.remove(&k);
        }
        self.deadline = deadline;
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut s = this.clock.lock();
        if s.now >= this.deadline {
            if let Some(k) = this.key.take() {
                s.timers.remove(&k);
            }
            return Poll::Ready(());
        }
        let key = match this.key {
            Some(k) => k,
            None => {
                let k = (this.deadline, s.next_id);
                s.next_id += 1;
                this.key = Some(k);
                k
            }
        };
        s.timers.insert(key, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.clock.lock().timers.remove(&k);
        }
    }
}
