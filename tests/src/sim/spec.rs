//! The simulator's own statement of what the core must do, kept apart from the core's code so the
//! checks are not circular: the state diagram, the backoff bounds per jitter mode, and the lists of
//! states and outcomes the coverage counts. `State`, `Outcome` and `Jitter` are `#[non_exhaustive]` or
//! may grow: a kind the simulator does not know yet is reported (a violation, or a panic naming it),
//! never silently counted as something else.

use std::time::Duration;

use tether_core::{BackoffConfig, Jitter, Outcome, State};

/// Every state, in the order of [`state_index`].
pub const STATES: [State; 7] = [
    State::Idle,
    State::Connecting,
    State::Connected,
    State::Reconnecting,
    State::Closing,
    State::Closed,
    State::Failed,
];

/// Index of a state in [`STATES`] (exhaustive: a new state fails to compile here).
pub fn state_index(s: State) -> usize {
    match s {
        State::Idle => 0,
        State::Connecting => 1,
        State::Connected => 2,
        State::Reconnecting => 3,
        State::Closing => 4,
        State::Closed => 5,
        State::Failed => 6,
    }
}

/// Every outcome the simulator knows, in the order of [`outcome_index`].
pub const OUTCOMES: [Outcome; 7] = [
    Outcome::Sent,
    Outcome::Dropped,
    Outcome::Expired,
    Outcome::Abandoned,
    Outcome::Aborted,
    Outcome::Acked,
    Outcome::TimedOut,
];

/// Index of an outcome in [`OUTCOMES`]; `None` for an outcome added to the core since.
pub fn outcome_index(o: Outcome) -> Option<usize> {
    OUTCOMES.iter().position(|x| *x == o)
}

/// The edges of the state diagram documented on [`State`].
pub fn legal_transition(from: State, to: State) -> bool {
    use State::*;
    matches!(
        (from, to),
        (Idle, Connecting)
            | (Idle, Closed)
            | (Connecting, Connected)
            | (Connecting, Reconnecting)
            | (Connecting, Failed)
            | (Connecting, Closed)
            | (Connected, Reconnecting)
            | (Connected, Failed)
            | (Connected, Closing)
            | (Reconnecting, Connecting)
            | (Reconnecting, Closed)
            | (Closing, Closed)
            | (Closed, Connecting)
            | (Failed, Connecting)
    )
}

/// The range `[lo, hi]` a delay for the `failures`-th consecutive failure must lie in, per the jitter
/// documentation of [`Jitter`] (decorrelated: the bound over any history); `None` for a jitter mode
/// added to the core since.
pub fn backoff_bounds(b: &BackoffConfig, failures: u32) -> Option<(Duration, Duration)> {
    let exp = b.exponential(failures);
    Some(match b.jitter {
        Jitter::None => (exp, exp),
        Jitter::Full => (Duration::ZERO, exp),
        Jitter::Equal => (exp / 2, exp),
        Jitter::Decorrelated => (b.base.min(b.max_delay), b.max_delay),
        _ => return None,
    })
}
