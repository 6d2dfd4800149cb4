//! The session's own deadlines, as a fixed table (no allocation, deterministic order).
//!
//! The heartbeat and the queue's expiry keep their own deadlines; [`Session::poll_timeout`]
//! (crate::Session::poll_timeout) takes the minimum over all of them.

use std::time::{Duration, Instant};

/// `now + d`, saturating instead of panicking. Validated configurations bound every duration
/// ([`crate::config::MAX_DURATION`]), so with a real clock this never saturates; it exists so that no
/// input, however absurd (an `Instant` built far in the future by the caller), can panic the core.
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).or_else(|| now.checked_add(MAX_FALLBACK)).unwrap_or(now)
}

/// What `after` adds when the exact sum overflows: still "much later", if that fits.
const MAX_FALLBACK: Duration = Duration::from_secs(86_400);

/// The earlier of two optional deadlines.
pub(crate) fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A session-level deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The connect timeout of the transport being opened.
    Connect = 0,
    /// The close timeout of a user close.
    Close = 1,
    /// The connection has been up for `stable_after`: reset the backoff.
    Stable = 2,
    /// The backoff delay before the next attempt.
    Backoff = 3,
    /// The end of the wait for a released transport (one the session let go of while it was still open)
    /// to end by itself; then it is aborted.
    Release = 4,
}

impl Timer {
    /// Handling order when several are due together.
    pub(crate) const ALL: [Timer; 5] = [Timer::Connect, Timer::Close, Timer::Stable, Timer::Backoff, Timer::Release];
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    at: [Option<Instant>; 5],
}

impl TimerTable {
    pub(crate) fn set(&mut self, t: Timer, at: Instant) {
        self.at[t as usize] = Some(at);
    }

    pub(crate) fn stop(&mut self, t: Timer) {
        self.at[t as usize] = None;
    }

    pub(crate) fn get(&self, t: Timer) -> Option<Instant> {
        self.at[t as usize]
    }

    pub(crate) fn stop_all(&mut self) {
        self.at = [None; 5];
    }

    /// True (and stops it) if `t` is set and due at `now`.
    pub(crate) fn take_due(&mut self, t: Timer, now: Instant) -> bool {
        match self.at[t as usize] {
            Some(at) if at <= now => {
                self.at[t as usize] = None;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }
}
