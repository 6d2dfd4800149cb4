//! The session's deadlines, as a fixed table (no allocation, deterministic order).
//!
//! Every deadline is here, so [`Session::poll_timeout`](crate::Session::poll_timeout) reads one place.
//! The heartbeat and the queue compute theirs from their own state; the session copies them in after
//! every input.

use std::time::{Duration, Instant};

/// `now + d`, saturating instead of panicking. Validated configurations bound every duration
/// ([`crate::config::MAX_DURATION`]), so with a real clock this never saturates; it exists so that no
/// input, however absurd (an `Instant` built far in the future by the caller), can panic the core.
pub(crate) fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).or_else(|| now.checked_add(MAX_FALLBACK)).unwrap_or(now)
}

/// What `after` adds when the exact sum overflows: still "much later", if that fits.
const MAX_FALLBACK: Duration = Duration::from_secs(86_400);

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
    /// The heartbeat's next deadline (a ping, a pong deadline, the receive-idle limit), while connected.
    Heartbeat = 5,
    /// The expiry of the oldest pending message.
    Expiry = 6,
    /// The ack deadline of the oldest tracked message.
    Ack = 7,
}

impl Timer {
    /// Handling order when several are due together.
    pub(crate) const ALL: [Timer; 8] = [
        Timer::Connect,
        Timer::Close,
        Timer::Stable,
        Timer::Backoff,
        Timer::Release,
        Timer::Heartbeat,
        Timer::Expiry,
        Timer::Ack,
    ];
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    at: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    pub(crate) fn set(&mut self, t: Timer, at: Instant) {
        self.at[t as usize] = Some(at);
    }

    pub(crate) fn put(&mut self, t: Timer, at: Option<Instant>) {
        self.at[t as usize] = at;
    }

    pub(crate) fn stop(&mut self, t: Timer) {
        self.at[t as usize] = None;
    }

    pub(crate) fn get(&self, t: Timer) -> Option<Instant> {
        self.at[t as usize]
    }

    pub(crate) fn stop_all(&mut self) {
        self.at = [None; Timer::ALL.len()];
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
