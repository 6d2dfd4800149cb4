//! The invariants of the core, checked from outside: only its public API (events, actions, stats,
//! getters, [`spec::legal_transition`](super::spec::legal_transition), [`spec::backoff_bounds`](super::spec::backoff_bounds), the [`Config`]) is
//! used, never its internals. The simulator and the fuzz targets share this checker.
//!
//! The checker keeps its own model of what the documentation promises: which messages were accepted
//! (tracked or not), handed to which transport, flushed by the driver, requeued or redelivered; how many consecutive failures the
//! current outage has had and how many backoff delays were drawn in it (both reset by `connect` and
//! once a connection has stayed up for `stable_after` while the driver called `handle_timeout`).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use tether_core::{
    Action, Cause, Config, Event, FailReason, InFlightPolicy, Message, MessageId, OpenError, Outcome, Overflow,
    Session, State, TransportEvent, TransportId,
};

use super::spec::{backoff_bounds, legal_transition, outcome_index};

/// A broken invariant: which one, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The invariant, named as in the simulator's documentation.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

impl std::error::Error for Violation {}

/// Returns a [`Violation`] unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $inv:expr, $($arg:tt)*) => {
        if !$cond {
            return Err($crate::sim::invariants::Violation { invariant: $inv, detail: format!($($arg)*) });
        }
    };
}
pub(crate) use ensure;

/// Invariant names.
pub mod names {
    /// Every accepted message ends with exactly one outcome, consistent with what happened to it.
    pub const OUTCOME: &str = "exactly-one-outcome";
    /// Messages leave (and reach the server) in the order they were accepted.
    pub const FIFO: &str = "fifo";
    /// No message reaches the server twice unless it was reported requeued.
    pub const DUPLICATE: &str = "no-duplicates";
    /// Every state change is an edge of the state machine and follows the previous one.
    pub const TRANSITION: &str = "legal-transition";
    /// `poll_timeout` never returns a deadline in the past.
    pub const TIMEOUT: &str = "poll-timeout-not-in-past";
    /// The queue stays within its limits and its accounting matches the outcomes.
    pub const QUEUE: &str = "queue-within-limits";
    /// Every backoff delay is within the policy's bounds, server minimums included.
    pub const BACKOFF: &str = "backoff-within-bounds";
    /// The session gives up exactly when the policy says so, and never retries a fatal failure.
    pub const GIVE_UP: &str = "gives-up-per-policy";
    /// A dead link is detected within the heartbeat's detection bound.
    pub const DEAD_LINK: &str = "dead-link-detected";
    /// A link that answers in time is never declared dead.
    pub const FALSE_DEAD: &str = "no-false-dead-link";
    /// Once the server is healthy, the client reconnects unless its retry budget is spent.
    pub const LIVENESS: &str = "liveness";
    /// The preamble goes first on every new connection.
    pub const PREAMBLE: &str = "preamble-first";
    /// Counters agree with what was observed.
    pub const STATS: &str = "stats-consistent";
    /// An early `handle_timeout` does nothing.
    pub const SPURIOUS: &str = "early-timeout-is-noop";
    /// The run ends in bounded steps.
    pub const BOUNDED: &str = "bounded-drive";
    /// A transport is aborted at most once, and no action names it after its abort.
    pub const RELEASE: &str = "released-once";
    /// Every tracked message ends `Acked` or with a failure outcome (never `Sent`), consistent with
    /// where it got to.
    pub const TRACKED: &str = "tracked-ends-acked-or-failed";
    /// A tracked message is never `Acked` before it was handed to a transport.
    pub const ACK_AFTER_SEND: &str = "acked-only-after-sent";
    /// Nothing acknowledged is handed to a transport again.
    pub const NO_RESEND: &str = "acked-never-resent";
    /// Redelivered messages go first on the next connection, in their original order.
    pub const REDELIVERY: &str = "redelivery-keeps-order";
    /// The server holds every message the client saw acknowledged.
    pub const SERVER_HOLDS: &str = "server-holds-acked";
}
use names::*;

#[derive(Debug, Clone)]
struct Msg {
    message: Message,
    accepted_at: Instant,
    outcome: Option<Outcome>,
    /// The transport it is in flight on; `None` while pending.
    handed_on: Option<TransportId>,
    /// The driver reported it flushed on `handed_on`.
    flushed: bool,
    /// Times put back in line (requeued or redelivered).
    requeues: u32,
    /// Sent with `send_tracked`; then whether it is redelivered after a lost connection.
    tracked: Option<bool>,
    /// Handed to some transport at least once.
    handed_ever: bool,
}

/// What the retry policy says about a failure, derived independently from the documented table.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Fatal,
    Retry,
    RetryAfter(Duration),
}

/// A loss whose `RetryScheduled` or `Failed` is still to come in the same drain.
#[derive(Debug, Clone)]
struct Loss {
    was_stable: bool,
    expect: Expect,
    cause: Cause,
    failed: bool,
}

/// Tracks what the core did and checks every invariant that does not need the world around it.
#[derive(Debug, Clone)]
pub struct Checker {
    cfg: Config,
    now: Instant,
    state: State,
    msgs: HashMap<MessageId, Msg>,
    /// Ids in flight (handed, no outcome, not requeued).
    in_flight: Vec<MessageId>,
    last_id: Option<MessageId>,
    last_handed: Option<MessageId>,
    last_on_transport: Option<(TransportId, MessageId)>,
    open_count: usize,
    open_bytes: usize,
    open_tracked: usize,
    open_tracked_bytes: usize,
    accepted: u64,
    requeued: u64,
    redelivered: u64,
    /// Tracked messages reported flushed (counted as sent, without an outcome).
    tracked_flushed: u64,
    /// A `Response` was reported for this id: its `Acked` outcome must come next.
    response_for: Option<MessageId>,
    outcomes: [u64; 7],
    // The backoff model.
    failures: u32,
    draws: u32,
    outage_start: Option<Instant>,
    connected_since: Option<Instant>,
    stable: bool,
    loss: Option<Loss>,
    // Per input.
    timeout_before: Option<Instant>,
    input_is_timeout: bool,
    /// `at` of the last `RetryScheduled`.
    pub last_retry_at: Option<Instant>,
    /// Transports on which the heartbeat declared the link dead.
    pub heartbeat_deaths: Vec<TransportId>,
    transport_before: Option<TransportId>,
    /// Transports the session aborted.
    aborted: HashSet<TransportId>,
    /// Preamble messages handed to each transport, and reported flushed on it while it was current.
    preamble: HashMap<TransportId, (usize, usize)>,
    /// Preamble messages the session should count as sent.
    preamble_flushed: u64,
}

impl Checker {
    /// A checker for a session created with `cfg` at `now`.
    pub fn new(cfg: &Config, now: Instant) -> Self {
        Self {
            cfg: cfg.clone(),
            now,
            state: State::Idle,
            msgs: HashMap::new(),
            in_flight: Vec::new(),
            last_id: None,
            last_handed: None,
            last_on_transport: None,
            open_count: 0,
            open_bytes: 0,
            open_tracked: 0,
            open_tracked_bytes: 0,
            accepted: 0,
            requeued: 0,
            redelivered: 0,
            tracked_flushed: 0,
            response_for: None,
            outcomes: [0; 7],
            failures: 0,
            draws: 0,
            outage_start: None,
            connected_since: None,
            stable: false,
            loss: None,
            timeout_before: None,
            input_is_timeout: false,
            last_retry_at: None,
            heartbeat_deaths: Vec::new(),
            transport_before: None,
            aborted: HashSet::new(),
            preamble: HashMap::new(),
            preamble_flushed: 0,
        }
    }

    /// The state as last reported by the events.
    pub fn state(&self) -> State {
        self.state
    }

    /// How many times `id` was reported requeued.
    pub fn requeues(&self, id: MessageId) -> u32 {
        self.msgs.get(&id).map_or(0, |m| m.requeues)
    }

    /// The outcome of `id`, if it has one.
    pub fn outcome(&self, id: MessageId) -> Option<Outcome> {
        self.msgs.get(&id).and_then(|m| m.outcome)
    }

    /// Call before every input given to the session at `now`.
    pub fn before_input(&mut self, s: &Session, now: Instant, is_timeout: bool) {
        self.now = now;
        self.timeout_before = s.poll_timeout();
        self.input_is_timeout = is_timeout;
        self.transport_before = s.transport();
        if is_timeout
            && self.state == State::Connected
            && !self.stable
            && self.connected_since.is_some_and(|at| now >= at + self.cfg.backoff.stable_after)
        {
            // The Stable deadline is due in this call: the outage is over.
            self.stable = true;
            self.failures = 0;
            self.draws = 0;
            self.outage_start = None;
        }
    }

    /// Records the result of `connect`.
    pub fn on_connect(&mut self, ok: bool) {
        if ok {
            self.failures = 0;
            self.draws = 0;
            self.outage_start = Some(self.now);
        }
    }

    /// Whether `id` was sent tracked.
    pub fn is_tracked(&self, id: MessageId) -> bool {
        self.msgs.get(&id).is_some_and(|m| m.tracked.is_some())
    }

    /// Whether `id` waits in line for its redelivery (tracked, sent before, now pending).
    pub fn in_line_again(&self, id: MessageId) -> bool {
        self.msgs.get(&id).is_some_and(|m| m.tracked.is_some() && m.handed_ever && m.handed_on.is_none())
    }

    /// Records the result of `send` (`tracked`: sent with `send_tracked`, and whether it redelivers).
    pub fn on_send(
        &mut self,
        message: &Message,
        result: Option<MessageId>,
        tracked: Option<bool>,
    ) -> Result<(), Violation> {
        let Some(id) = result else { return Ok(()) };
        ensure!(self.last_id.is_none_or(|l| id > l), FIFO, "send returned {id} after {:?}", self.last_id);
        self.last_id = Some(id);
        self.accepted += 1;
        self.open_count += 1;
        self.open_bytes += message.len();
        if tracked.is_some() {
            self.open_tracked += 1;
            self.open_tracked_bytes += message.len();
        }
        let msg = Msg {
            message: message.clone(),
            accepted_at: self.now,
            outcome: None,
            handed_on: None,
            flushed: false,
            requeues: 0,
            tracked,
            handed_ever: false,
        };
        self.msgs.insert(id, msg);
        Ok(())
    }

    /// Records a transport report given to the session (call before `handle_transport`).
    pub fn on_transport_input(&mut self, id: TransportId, ev: &TransportEvent) {
        let current = self.transport_before == Some(id) && matches!(self.state, State::Connected | State::Closing);
        if let (TransportEvent::PreambleFlushed { count }, true) = (ev, current) {
            let (handed, flushed) = self.preamble.entry(id).or_default();
            let now_flushed = (*count).min(*handed);
            if now_flushed > *flushed {
                self.preamble_flushed += (now_flushed - *flushed) as u64;
                *flushed = now_flushed;
            }
        }
        if let (TransportEvent::Flushed { through }, true) = (ev, self.transport_before == Some(id)) {
            for m in self.in_flight.iter().filter(|m| **m <= *through) {
                let msg = self.msgs.get_mut(m).expect("in-flight ids are known");
                if msg.handed_on == Some(id) {
                    if !msg.flushed && msg.tracked.is_some() {
                        self.tracked_flushed += 1;
                    }
                    msg.flushed = true;
                }
            }
        }
    }

    /// Checks one action, drained when the session's transport was `current`.
    pub fn on_action(&mut self, a: &Action, current: Option<TransportId>) -> Result<(), Violation> {
        let named = match a {
            Action::Open { transport, .. }
            | Action::Send { transport, .. }
            | Action::Ping { transport, .. }
            | Action::Close { transport, .. }
            | Action::Abort { transport } => *transport,
        };
        ensure!(!self.aborted.contains(&named), RELEASE, "{a:?} names {named}, aborted before");
        match a {
            Action::Open { transport, attempt } => {
                ensure!(
                    *attempt == self.failures + 1,
                    GIVE_UP,
                    "Open {transport} says attempt {attempt}, but {} attempts failed in this outage",
                    self.failures
                );
            }
            Action::Send { transport, id: Some(id), message } => {
                ensure!(current == Some(*transport), FIFO, "Send {id} on {transport}, current is {current:?}");
                let Some(m) = self.msgs.get_mut(id) else {
                    return Err(Violation { invariant: OUTCOME, detail: format!("Send of unknown id {id}") });
                };
                ensure!(m.outcome != Some(Outcome::Acked), NO_RESEND, "Send of {id} after it was acknowledged");
                ensure!(m.outcome.is_none(), OUTCOME, "Send of {id} which already ended {:?}", m.outcome);
                ensure!(m.handed_on.is_none(), DUPLICATE, "{id} handed to {transport} while in flight");
                ensure!(m.message == *message, OUTCOME, "Send of {id} carries another payload");
                let again = m.requeues > 0;
                ensure!(
                    self.last_handed.is_none_or(|l| *id > l) || again,
                    FIFO,
                    "{id} handed after {:?} and was never requeued",
                    self.last_handed
                );
                if let Some((t, last)) = self.last_on_transport {
                    // A redelivered message that comes after a newer one on the same transport was not
                    // sent first, in order.
                    let name = if again && m.tracked.is_some() { REDELIVERY } else { FIFO };
                    ensure!(t != *transport || *id > last, name, "{id} handed after {last} on {transport}");
                }
                m.handed_on = Some(*transport);
                m.handed_ever = true;
                m.flushed = false;
                self.last_handed = Some(self.last_handed.map_or(*id, |l| l.max(*id)));
                self.last_on_transport = Some((*transport, *id));
                self.in_flight.push(*id);
            }
            Action::Send { transport, id: None, .. } => {
                ensure!(current == Some(*transport), PREAMBLE, "preamble Send on {transport}, current is {current:?}");
                self.preamble.entry(*transport).or_default().0 += 1;
            }
            Action::Abort { transport } => {
                self.aborted.insert(*transport);
            }
            Action::Ping { .. } | Action::Close { .. } => {}
        }
        Ok(())
    }

    fn expect_for(&self, cause: &Cause) -> Expect {
        let p = &self.cfg.retry;
        let cap = |d: Duration| Expect::RetryAfter(d.min(p.max_server_delay));
        match cause {
            Cause::OpenFailed(OpenError::Http { status, retry_after }) => match (status, retry_after) {
                (408 | 429 | 500..=599, Some(d)) => cap(*d),
                (408 | 429 | 500..=599, None) => Expect::Retry,
                _ => Expect::Fatal,
            },
            Cause::OpenFailed(OpenError::TlsCertificate(_) | OpenError::Extension(_)) => Expect::Fatal,
            Cause::RemoteClosed(frame) => match frame.as_ref().map(|f| f.code) {
                Some(1013) => cap(p.try_again_later),
                Some(1002 | 1003 | 1007 | 1008 | 1009 | 1010 | 1015) => Expect::Fatal,
                _ => Expect::Retry,
            },
            _ => Expect::Retry,
        }
    }

    fn on_loss(&mut self, from: State, to: State, cause: &Cause) -> Result<(), Violation> {
        // Stable means up for `stable_after`, by the clock, whether or not the driver has called
        // `handle_timeout` since: the failure count and backoff start over.
        let up_long_enough = self.connected_since.is_some_and(|at| self.now >= at + self.cfg.backoff.stable_after);
        let was_stable = from == State::Connected && (self.stable || up_long_enough);
        if was_stable {
            self.failures = 0;
            self.draws = 0;
            self.outage_start = Some(self.now);
        } else {
            self.failures = self.failures.saturating_add(1);
        }
        let outage_start = *self.outage_start.get_or_insert(self.now);
        let expect = self.expect_for(cause);
        let b = &self.cfg.backoff;
        let exhausted = b.max_attempts.is_some_and(|m| self.failures >= m);
        let budget = b.give_up_after.is_some_and(|g| self.now.saturating_duration_since(outage_start) >= g);
        let must_fail = expect == Expect::Fatal || exhausted || budget;
        ensure!(
            must_fail == (to == State::Failed),
            GIVE_UP,
            "{from:?} -> {to:?} after {cause}: policy says {expect:?}, {} failures (max {:?}), outage {:?} (budget {:?})",
            self.failures,
            b.max_attempts,
            self.now.saturating_duration_since(outage_start),
            b.give_up_after
        );
        self.loss = Some(Loss { was_stable, expect, cause: cause.clone(), failed: to == State::Failed });
        Ok(())
    }

    fn on_retry_scheduled(&mut self, attempt: u32, delay: Duration, at: Instant) -> Result<(), Violation> {
        let Some(loss) = self.loss.take() else {
            return Err(Violation { invariant: BACKOFF, detail: "RetryScheduled without a loss before it".into() });
        };
        ensure!(!loss.failed, BACKOFF, "RetryScheduled after Failed");
        ensure!(at == self.now + delay, BACKOFF, "RetryScheduled at {at:?} is not now + {delay:?}");
        ensure!(attempt == self.failures + 1, GIVE_UP, "RetryScheduled attempt {attempt}, model {}", self.failures + 1);
        let b = &self.cfg.backoff;
        let (lo, hi) = if loss.was_stable && b.immediate_first_retry {
            (Duration::ZERO, Duration::ZERO)
        } else {
            self.draws = self.draws.saturating_add(1);
            let Some(bounds) = backoff_bounds(b, self.draws) else {
                return Err(Violation {
                    invariant: BACKOFF,
                    detail: format!("jitter {:?} has no bounds in spec", b.jitter),
                });
            };
            bounds
        };
        let (lo, hi) = match loss.expect {
            Expect::RetryAfter(min) => (lo.max(min), hi.max(min)),
            _ => (lo, hi),
        };
        ensure!(
            lo <= delay && delay <= hi,
            BACKOFF,
            "delay {delay:?} after {} not in [{lo:?}, {hi:?}] (draw {}, stable loss {}, {:?}, jitter {:?})",
            loss.cause,
            self.draws,
            loss.was_stable,
            loss.expect,
            b.jitter
        );
        self.last_retry_at = Some(at);
        Ok(())
    }

    fn on_failed(&mut self, reason: &FailReason) -> Result<(), Violation> {
        let Some(loss) = self.loss.take().filter(|l| l.failed) else {
            return Err(Violation { invariant: GIVE_UP, detail: format!("Failed({reason}) without a loss to Failed") });
        };
        let b = &self.cfg.backoff;
        match reason {
            FailReason::Fatal(c) => {
                ensure!(loss.expect == Expect::Fatal, GIVE_UP, "Failed as fatal, policy says {:?}", loss.expect);
                ensure!(*c == loss.cause, GIVE_UP, "Failed(Fatal({c})) but the state changed for {}", loss.cause);
            }
            FailReason::RetriesExhausted { attempts, last } => {
                ensure!(loss.expect != Expect::Fatal, GIVE_UP, "fatal failure reported as RetriesExhausted");
                ensure!(
                    *attempts == self.failures && b.max_attempts.is_some_and(|m| *attempts >= m),
                    GIVE_UP,
                    "RetriesExhausted after {attempts} attempts; model {} (max {:?})",
                    self.failures,
                    b.max_attempts
                );
                ensure!(*last == loss.cause, GIVE_UP, "RetriesExhausted last {last}, loss {}", loss.cause);
            }
            FailReason::BudgetExhausted { elapsed, last } => {
                let start = self.outage_start.unwrap_or(self.now);
                ensure!(
                    loss.expect != Expect::Fatal && b.max_attempts.is_none_or(|m| self.failures < m),
                    GIVE_UP,
                    "BudgetExhausted reported for a fatal failure or a spent attempt count"
                );
                ensure!(
                    *elapsed == self.now.saturating_duration_since(start)
                        && b.give_up_after.is_some_and(|g| *elapsed >= g),
                    GIVE_UP,
                    "BudgetExhausted after {elapsed:?}; outage began {:?} ago, budget {:?}",
                    self.now.saturating_duration_since(start),
                    b.give_up_after
                );
                ensure!(*last == loss.cause, GIVE_UP, "BudgetExhausted last {last}, loss {}", loss.cause);
            }
            other => return Err(Violation { invariant: GIVE_UP, detail: format!("Failed({other}) not in spec") }),
        }
        Ok(())
    }

    fn on_outcome(&mut self, id: MessageId, outcome: Outcome) -> Result<(), Violation> {
        let Some(m) = self.msgs.get_mut(&id) else {
            return Err(Violation { invariant: OUTCOME, detail: format!("outcome {outcome:?} for unknown id {id}") });
        };
        ensure!(m.outcome.is_none(), OUTCOME, "{id} ended {outcome:?} after {:?}", m.outcome);
        ensure!(
            self.response_for.is_none_or(|r| r == id && outcome == Outcome::Acked),
            OUTCOME,
            "{id} ended {outcome:?} right after the Response of {:?}",
            self.response_for
        );
        self.response_for = None;
        let tracked = m.tracked.is_some();
        match outcome {
            Outcome::Sent => {
                ensure!(!tracked, TRACKED, "tracked {id} ended Sent");
                ensure!(m.handed_on.is_some() && m.flushed, OUTCOME, "{id} Sent but the driver never flushed it")
            }
            Outcome::Acked => {
                ensure!(tracked, TRACKED, "untracked {id} ended Acked");
                ensure!(m.handed_ever, ACK_AFTER_SEND, "{id} Acked but never handed to a transport");
            }
            Outcome::TimedOut => {
                let timeout = self.cfg.acks.timeout;
                ensure!(tracked, TRACKED, "untracked {id} ended TimedOut");
                ensure!(
                    timeout.is_some_and(|t| self.now >= m.accepted_at + t),
                    TRACKED,
                    "{id} TimedOut {:?} after acceptance, ack timeout {timeout:?}",
                    self.now - m.accepted_at
                );
            }
            Outcome::Abandoned if tracked => {
                ensure!(m.handed_ever, TRACKED, "tracked {id} Abandoned but never handed to a transport")
            }
            Outcome::Abandoned => ensure!(m.handed_on.is_some(), OUTCOME, "{id} Abandoned but was not in flight"),
            Outcome::Expired => {
                ensure!(m.handed_on.is_none(), OUTCOME, "{id} Expired while in flight");
                let ttl = self.cfg.queue.ttl;
                ensure!(
                    ttl.is_some_and(|t| self.now >= m.accepted_at + t),
                    OUTCOME,
                    "{id} Expired {:?} after acceptance, ttl {ttl:?}",
                    self.now - m.accepted_at
                );
            }
            Outcome::Dropped => {
                ensure!(m.handed_on.is_none(), OUTCOME, "{id} Dropped while in flight");
                ensure!(self.cfg.queue.overflow == Overflow::DropOldest, OUTCOME, "{id} Dropped under Reject");
            }
            Outcome::Aborted => {
                ensure!(m.handed_on.is_none(), OUTCOME, "{id} Aborted while in flight");
                ensure!(!(tracked && m.handed_ever), TRACKED, "tracked {id} Aborted, but it was sent before");
            }
            other => {
                return Err(Violation { invariant: OUTCOME, detail: format!("{id}: outcome {other:?} not in spec") });
            }
        }
        m.outcome = Some(outcome);
        self.open_count -= 1;
        self.open_bytes -= m.message.len();
        if tracked {
            self.open_tracked -= 1;
            self.open_tracked_bytes -= m.message.len();
        }
        let Some(i) = outcome_index(outcome) else {
            return Err(Violation { invariant: OUTCOME, detail: format!("{outcome:?} is not in spec::OUTCOMES") });
        };
        self.outcomes[i] += 1;
        self.in_flight.retain(|x| *x != id);
        Ok(())
    }

    /// Checks one event.
    pub fn on_event(&mut self, e: &Event) -> Result<(), Violation> {
        match e {
            Event::StateChanged { from, to, cause } => {
                ensure!(*from == self.state, TRANSITION, "{from:?} -> {to:?} but the state was {:?}", self.state);
                ensure!(legal_transition(*from, *to), TRANSITION, "illegal {from:?} -> {to:?} ({cause})");
                ensure!(self.loss.is_none(), BACKOFF, "a loss got neither RetryScheduled nor Failed");
                if matches!(from, State::Connecting | State::Connected)
                    && matches!(to, State::Reconnecting | State::Failed)
                {
                    self.on_loss(*from, *to, cause)?;
                }
                if *to == State::Connected {
                    self.connected_since = Some(self.now);
                    self.stable = false;
                } else {
                    self.connected_since = None;
                }
                if let (Cause::Heartbeat(_), Some(t)) = (cause, self.transport_before) {
                    self.heartbeat_deaths.push(t);
                }
                self.state = *to;
            }
            Event::RetryScheduled { attempt, delay, at, .. } => self.on_retry_scheduled(*attempt, *delay, *at)?,
            Event::Failed(reason) => self.on_failed(reason)?,
            Event::Outcome { id, outcome } => self.on_outcome(*id, *outcome)?,
            Event::Requeued { id } => {
                ensure!(self.cfg.queue.in_flight == InFlightPolicy::Requeue, OUTCOME, "{id} requeued under Abandon");
                let Some(m) = self.msgs.get_mut(id) else {
                    return Err(Violation { invariant: OUTCOME, detail: format!("Requeued unknown id {id}") });
                };
                ensure!(m.tracked.is_none(), TRACKED, "tracked {id} reported Requeued, not Redelivered");
                ensure!(m.outcome.is_none() && m.handed_on.is_some(), OUTCOME, "{id} requeued but not in flight");
                m.handed_on = None;
                m.flushed = false;
                m.requeues += 1;
                self.requeued += 1;
                self.in_flight.retain(|x| x != id);
            }
            Event::Redelivered { id } => {
                let Some(m) = self.msgs.get_mut(id) else {
                    return Err(Violation { invariant: TRACKED, detail: format!("Redelivered unknown id {id}") });
                };
                ensure!(m.tracked == Some(true), TRACKED, "{id} redelivered, tracked {:?}", m.tracked);
                ensure!(m.outcome.is_none() && m.handed_on.is_some(), TRACKED, "{id} redelivered but not sent");
                m.handed_on = None;
                m.flushed = false;
                m.requeues += 1;
                self.redelivered += 1;
                self.in_flight.retain(|x| x != id);
            }
            Event::Response { id, .. } => {
                let m = self.msgs.get(id);
                ensure!(
                    m.is_some_and(|m| m.tracked.is_some() && m.outcome.is_none() && m.handed_ever),
                    ACK_AFTER_SEND,
                    "Response for {id}, which is not a sent tracked message waiting for its acknowledgement"
                );
                self.response_for = Some(*id);
            }
            Event::Connected { attempt, .. } => {
                ensure!(
                    *attempt == self.failures + 1,
                    GIVE_UP,
                    "Connected attempt {attempt}, model {}",
                    self.failures + 1
                )
            }
            Event::Disconnected { .. } | Event::Message(_) | Event::QueueUnblocked | Event::Closed { .. } => {}
            other => return Err(Violation { invariant: TRANSITION, detail: format!("event {other:?} not in spec") }),
        }
        Ok(())
    }

    /// Checks the session after an input and the drain that followed it.
    pub fn after_input(&mut self, s: &Session) -> Result<(), Violation> {
        let now = self.now;
        ensure!(self.loss.is_none(), BACKOFF, "a loss got neither RetryScheduled nor Failed");
        ensure!(self.response_for.is_none(), OUTCOME, "a Response without its Acked outcome");
        ensure!(s.state() == self.state, TRANSITION, "state() is {:?}, events say {:?}", s.state(), self.state);
        let timeout = s.poll_timeout();
        if self.input_is_timeout {
            ensure!(
                timeout.is_none_or(|t| t >= now),
                TIMEOUT,
                "after handle_timeout(now) poll_timeout is {:?} in the past",
                timeout.map(|t| now - t)
            );
        } else if self.timeout_before.is_none_or(|t| t >= now) {
            ensure!(
                timeout.is_none_or(|t| t >= now),
                TIMEOUT,
                "poll_timeout {:?} in the past",
                timeout.map(|t| now - t)
            );
        }
        let q = &self.cfg.queue;
        ensure!(s.queue_len() <= q.max_messages, QUEUE, "{} messages held, max {}", s.queue_len(), q.max_messages);
        ensure!(s.queue_bytes() <= q.max_bytes, QUEUE, "{} bytes held, max {}", s.queue_bytes(), q.max_bytes);
        // Every accepted message is either still held or has ended: none vanishes without an outcome.
        ensure!(
            s.queue_len() == self.open_count && s.queue_bytes() == self.open_bytes,
            OUTCOME,
            "queue holds {} messages / {} bytes; accepted without outcome: {} / {}",
            s.queue_len(),
            s.queue_bytes(),
            self.open_count,
            self.open_bytes
        );
        ensure!(s.in_flight() <= s.queue_len(), QUEUE, "in_flight {} > queue_len {}", s.in_flight(), s.queue_len());
        let st = s.stats(now);
        let o = &self.outcomes;
        ensure!(
            st.messages_sent == o[0] + self.preamble_flushed + self.tracked_flushed,
            STATS,
            "messages_sent {} but {} messages ended Sent, {} preamble and {} tracked messages were reported flushed",
            st.messages_sent,
            o[0],
            self.preamble_flushed,
            self.tracked_flushed
        );
        let a = &self.cfg.acks;
        ensure!(
            st.tracked == self.open_tracked && st.tracked_bytes == self.open_tracked_bytes,
            TRACKED,
            "{} tracked messages ({} bytes) held; {} ({} bytes) accepted without outcome",
            st.tracked,
            st.tracked_bytes,
            self.open_tracked,
            self.open_tracked_bytes
        );
        ensure!(
            st.tracked <= a.max_messages && st.tracked_bytes <= a.max_bytes,
            QUEUE,
            "window: {} tracked messages, {} bytes; limits {} / {}",
            st.tracked,
            st.tracked_bytes,
            a.max_messages,
            a.max_bytes
        );
        ensure!(
            st.messages_accepted == self.accepted
                && st.messages_requeued == self.requeued
                && st.messages_dropped == o[1]
                && st.messages_expired == o[2]
                && st.messages_abandoned == o[3]
                && st.messages_aborted == o[4]
                && st.messages_acked == o[5]
                && st.messages_timed_out == o[6]
                && st.messages_redelivered == self.redelivered,
            STATS,
            "stats {st:?} vs accepted {} requeued {} redelivered {} outcomes {o:?}",
            self.accepted,
            self.requeued,
            self.redelivered
        );
        Ok(())
    }

    /// At the end of a run, once the session is closed or failed: every accepted message has ended.
    pub fn finish(&self, s: &Session) -> Result<(), Violation> {
        if matches!(s.state(), State::Closed | State::Failed) {
            let open: Vec<_> = self.msgs.iter().filter(|(_, m)| m.outcome.is_none()).map(|(id, _)| *id).collect();
            ensure!(
                open.is_empty(),
                OUTCOME,
                "session {:?} but {} messages never ended: {open:?}",
                s.state(),
                open.len()
            );
        }
        Ok(())
    }
}
