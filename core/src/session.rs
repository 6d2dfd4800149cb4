//! The session: one logical connection to one server, kept alive across many transports.
//!
//! Its parts: [`state`] (the lifecycle state and the data valid only in it), [`inputs`] (what the driver
//! and the clock report, and the transitions they cause), [`output`] (actions, events and the next
//! deadline), [`report`] (events and counters, with the one place where outcomes are recorded),
//! [`tracked`] (the commands and transitions of acknowledged messages, over [`crate::acks`]).

use std::collections::VecDeque;
use std::time::Instant;

use crate::acks::{Acks, Tracking};
use crate::backoff::Backoff;
use crate::queue::{Queue, Refusal};
use crate::rng::Rng;
use crate::timer::{Timer, TimerTable, after};
use crate::transport::{TransportId, close_code_sendable};
use crate::{
    Action, Cause, CloseMode, CommandError, Config, ConfigError, Event, Message, MessageId, SendError, State, Stats,
};

mod inputs;
mod output;
mod report;
mod state;
mod tracked;

use report::Report;
use state::{CloseRequest, Outage, Stage};

/// The Tether state machine: one logical WebSocket connection, kept alive across transports.
///
/// It performs no I/O and reads no clock: the driver feeds it inputs with the current time and carries
/// out what it asks. Methods, by group:
///
/// * **Commands** from the application: [`connect`](Self::connect), [`send`](Self::send),
///   [`close`](Self::close), [`set_preamble`](Self::set_preamble); for acknowledged messages
///   [`send_tracked`](Self::send_tracked), [`ack`](Self::ack), [`cancel`](Self::cancel).
/// * **Inputs** from the driver: [`handle_transport`](Self::handle_transport),
///   [`handle_timeout`](Self::handle_timeout), [`handle_network`](Self::handle_network).
/// * **Outputs**, to drain after every input or command: [`poll_action`](Self::poll_action) (for the
///   driver), [`poll_event`](Self::poll_event) (for the application), and
///   [`poll_timeout`](Self::poll_timeout) (when to call `handle_timeout` next).
/// * **Getters**: [`state`](Self::state), [`stats`](Self::stats), [`queue_len`](Self::queue_len),
///   [`tracked_len`](Self::tracked_len).
///
/// # The driving loop
///
/// 1. Give an input (or a command) with the current time.
/// 2. Drain `poll_action` until `None`, carrying each action out; drain `poll_event` for the application.
///    The two may be drained in any order; actions are owned values.
/// 3. Sleep until `poll_timeout()` or the next input, whichever is first; at the deadline call
///    `handle_timeout(now)`. Early or repeated calls do nothing; a `now` earlier than one already seen is
///    treated as that one (time never goes back).
///
/// The crate documentation has a complete example.
#[derive(Debug, Clone)]
pub struct Session {
    cfg: Config,
    stage: Stage,
    rng: Rng,
    backoff: Backoff,
    /// Every deadline of the session, the heartbeat's and the queue's expiry included.
    timers: TimerTable,
    queue: Queue,
    /// Tracked messages not yet ended: their keys, stages and copies for redelivery.
    acks: Acks,
    preamble: Vec<Message>,
    next_transport: u64,
    next_message: u64,
    /// A transport the session let go of while it may still be open: its reports are expected (its final
    /// `Closed` is not stale) and ignored, and it is aborted if it has not ended by [`Timer::Release`].
    released: Option<TransportId>,
    outage: Outage,
    ever_connected: bool,
    /// The last ping sequence number used; each transport's heartbeat continues from it, so a pong from
    /// an old connection can never match a new probe.
    ping_seq: u64,
    offline: bool,
    actions: VecDeque<Action>,
    report: Report,
    last_now: Instant,
}

impl Session {
    /// Creates an idle session. Nothing happens until [`connect`](Self::connect); messages sent before
    /// are queued.
    pub fn new(config: Config, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            rng: Rng::new(config.seed),
            backoff: Backoff::new(&config.backoff),
            cfg: config,
            stage: Stage::Idle,
            timers: TimerTable::default(),
            queue: Queue::default(),
            acks: Acks::default(),
            preamble: Vec::new(),
            next_transport: 0,
            next_message: 0,
            released: None,
            outage: Outage::default(),
            ever_connected: false,
            ping_seq: 0,
            offline: false,
            actions: VecDeque::new(),
            report: Report::default(),
            last_now: now,
        })
    }

    // ----- getters -------------------------------------------------------------------------------

    /// The current state.
    pub fn state(&self) -> State {
        self.stage.public()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The transport in use (opening, open or closing), if any.
    pub fn transport(&self) -> Option<TransportId> {
        self.stage.transport()
    }

    /// Messages held: pending, in flight, and (tracked) flushed and awaiting their acknowledgement.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Payload bytes held (as counted by [`queue_len`](Self::queue_len)).
    pub fn queue_bytes(&self) -> usize {
        self.queue.bytes()
    }

    /// Tracked messages accepted and not yet ended, in every stage (the window in use).
    pub fn tracked_len(&self) -> usize {
        self.acks.len()
    }

    /// Messages handed to the current transport and not yet reported flushed.
    pub fn in_flight(&self) -> usize {
        self.queue.in_flight_len()
    }

    /// When the next connection attempt is due, while reconnecting.
    pub fn next_attempt_at(&self) -> Option<Instant> {
        self.timers.get(Timer::Backoff)
    }

    /// A snapshot of the counters; `now` gives the current uptime.
    pub fn stats(&self, now: Instant) -> Stats {
        let mut s = self.report.stats;
        let now = now.max(self.last_now);
        if let Some(open) = self.stage.open() {
            s.uptime = now.saturating_duration_since(open.since);
            s.total_connected = s.total_connected.saturating_add(s.uptime);
        }
        s.queue_len = self.queue.len();
        s.queue_bytes = self.queue.bytes();
        s.queue_in_flight = self.queue.in_flight_len();
        s.awaiting_ack = self.queue.awaiting_len();
        s.tracked = self.acks.len();
        s.tracked_bytes = self.acks.bytes();
        s.time_jumps += self.stage.heartbeat().map_or(0, |h| h.time_jumps);
        s
    }

    // ----- commands ------------------------------------------------------------------------------

    /// Starts connecting: from `Idle`, or again after `Closed` or `Failed` (with a fresh retry budget).
    pub fn connect(&mut self, now: Instant) -> Result<(), CommandError> {
        let now = self.clamp(now);
        let state = self.state();
        if !matches!(state, State::Idle | State::Closed | State::Failed) {
            return Err(CommandError::InvalidState { command: "connect", state });
        }
        if let Some(old) = self.released.take() {
            self.actions.push_back(Action::Abort { transport: old });
        }
        self.reset_backoff();
        self.outage.start = Some(now);
        self.start_attempt(now, Cause::ConnectRequested);
        self.settle();
        Ok(())
    }

    /// Accepts a message for sending and returns its id; its [`Outcome`](crate::Outcome) arrives later as
    /// an event.
    ///
    /// Accepted in every state but `Closing`, `Closed` and `Failed`: while not connected the message
    /// waits in the queue. Refused messages are handed back in the error.
    ///
    /// `now` matters only for expiry: without a [`QueueConfig::ttl`](crate::QueueConfig::ttl) a driver
    /// may pass any instant it already holds instead of reading the clock (an earlier `now` counts as the
    /// latest one seen), and the result is the same.
    pub fn send(&mut self, now: Instant, message: Message) -> Result<MessageId, SendError> {
        let now = self.clamp(now);
        self.accept(now, message, None)
    }

    /// `send`, and for a tracked message (checked by the caller) its entry in the ack table.
    fn accept(&mut self, now: Instant, message: Message, tracking: Option<Tracking>) -> Result<MessageId, SendError> {
        let state = self.state();
        if matches!(state, State::Closing | State::Closed | State::Failed) {
            self.report.stats.messages_refused += 1;
            return Err(SendError::Inactive { message, state });
        }
        let id = MessageId(self.next_message);
        self.queue.expire(now, &mut self.report.sink(&mut self.acks));
        // The ack table's copy: a reference count, not a copy of the payload.
        let copy = tracking.is_some().then(|| message.clone());
        let pushed = self.queue.push(&self.cfg.queue, now, id, message, &mut self.report.sink(&mut self.acks));
        if let (Ok(()), Some(tracking), Some(copy)) = (&pushed, tracking, copy) {
            let expires_at = self.cfg.queue.ttl.map(|ttl| after(now, ttl));
            self.acks.insert(&self.cfg.acks, now, id, tracking, copy, expires_at);
        }
        self.settle();
        match pushed {
            Ok(()) => {
                self.next_message += 1;
                self.report.stats.messages_accepted += 1;
                Ok(id)
            }
            Err((refusal, message)) => {
                self.report.stats.messages_refused += 1;
                Err(match refusal {
                    Refusal::Full => SendError::Full(message),
                    Refusal::TooLarge => SendError::TooLarge { message, max_bytes: self.cfg.queue.max_bytes },
                })
            }
        }
    }

    /// Registers messages (authentication, subscriptions) sent first on every new connection, before
    /// any queued message. Replaces the previous preamble; takes effect from the next connection.
    /// Preamble messages have no id and no outcome: if a connection dies, they are simply sent again on
    /// the next one.
    pub fn set_preamble(&mut self, messages: Vec<Message>) {
        self.preamble = messages;
        // The open transport already had the old preamble (or part of it): don't send the new one now.
        if let Some(open) = self.stage.open_mut() {
            open.preamble.handed = self.preamble.len();
        }
    }

    /// Closes the session with a close code and reason. No reconnection follows.
    ///
    /// With [`CloseMode::Drain`] queued messages are sent first on the open connection; with
    /// [`CloseMode::Abort`] (or without an open connection) they end as
    /// [`Outcome::Aborted`](crate::Outcome::Aborted).
    pub fn close(&mut self, now: Instant, code: u16, reason: &str, mode: CloseMode) -> Result<(), CommandError> {
        let now = self.clamp(now);
        if !close_code_sendable(code) {
            return Err(CommandError::InvalidCloseCode(code));
        }
        if reason.len() > 123 {
            return Err(CommandError::ReasonTooLong(reason.len()));
        }
        match std::mem::replace(&mut self.stage, Stage::Closed) {
            stage @ (Stage::Closing { .. } | Stage::Closed | Stage::Failed) => {
                let state = stage.public();
                self.stage = stage;
                return Err(CommandError::InvalidState { command: "close", state });
            }
            Stage::Connected { open, heartbeat } => {
                if let Some(hb) = heartbeat {
                    self.report.stats.time_jumps += hb.time_jumps;
                }
                self.timers.stop(Timer::Stable);
                self.timers.set(Timer::Close, after(now, self.cfg.close_timeout));
                let transport = open.transport;
                let close = CloseRequest { code, reason: reason.to_owned(), sent: mode == CloseMode::Abort };
                if mode == CloseMode::Abort {
                    self.abort_queued();
                    self.actions.push_back(Action::Close { transport, code, reason: reason.to_owned() });
                }
                self.enter(State::Connected, Stage::Closing { open, close }, Cause::CloseRequested);
            }
            stage @ (Stage::Idle | Stage::Connecting { .. } | Stage::Reconnecting) => {
                // Only an opening transport can be current here: nothing to close gracefully yet.
                if let Some(transport) = stage.transport() {
                    self.actions.push_back(Action::Abort { transport });
                }
                self.stage = stage;
                self.finish_close(now, Cause::CloseRequested);
            }
        }
        self.settle();
        Ok(())
    }

    // ----- shared by the parts -------------------------------------------------------------------

    fn clamp(&mut self, now: Instant) -> Instant {
        if now > self.last_now {
            self.last_now = now;
        }
        self.last_now
    }

    /// Enters `to`, coming from `from` (the state the session was in before its data was taken apart),
    /// and tells the application.
    fn enter(&mut self, from: State, to: Stage, cause: Cause) {
        let to_state = to.public();
        debug_assert!(from.can_transition_to(to_state), "illegal transition {from:?} -> {to_state:?}");
        self.stage = to;
        self.report.push(Event::StateChanged { from, to: to_state, cause });
    }

    /// After every input: the edge-triggered unblock of the queue and of the window of tracked messages
    /// (one event for both), and the deadlines kept elsewhere (the heartbeat's, the queue's next expiry,
    /// the oldest tracked message's ack deadline) copied into the timer table, so `poll_timeout` reads
    /// one place.
    fn settle(&mut self) {
        let queue = self.queue.take_unblocked(&self.cfg.queue);
        if self.acks.take_unblocked(&self.cfg.acks) | queue {
            self.report.push(Event::QueueUnblocked);
        }
        self.sync_deadlines();
    }

    fn sync_deadlines(&mut self) {
        let heartbeat = match (&self.stage, &self.cfg.heartbeat) {
            (Stage::Connected { heartbeat: Some(hb), .. }, Some(cfg)) => Some(hb.deadline(cfg)),
            _ => None,
        };
        self.timers.put(Timer::Heartbeat, heartbeat);
        self.timers.put(Timer::Expiry, self.queue.next_expiry());
        self.timers.put(Timer::Ack, self.acks.next_deadline());
    }
}
