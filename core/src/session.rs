//! The session: one logical connection to one server, kept alive across many transports.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::heartbeat::{Heartbeat, Tick};
use crate::queue::{Queue, Refusal};
use crate::rng::Rng;
use crate::timer::{Timer, TimerTable, after};
use crate::transport::{
    CloseFrame, ConnectInfo, Frame, OpenError, TransportError, TransportEvent, TransportId, close_code_sendable,
};
use crate::{
    Action, Cause, CloseMode, CommandError, Config, ConfigError, Event, FailReason, Message, MessageId, NetworkHint,
    Outcome, SendError, State, Stats, Verdict,
};

mod output;

/// Bound on heartbeat ticks handled in one `handle_timeout`; each tick moves a deadline past `now`, so
/// the loop ends after at most three, and the bound only guards against a future mistake.
const MAX_HEARTBEAT_TICKS: usize = 8;

/// What becomes of a transport the session stops using.
#[derive(Debug, Clone, Copy)]
enum Release {
    /// It has already ended (the driver reported its end, or it never opened): nothing to do.
    Ended,
    /// Given up on: drop it at once, resetting the connection.
    Abort,
    /// Fail the connection: send this close frame and wait (bounded) for the server's reply and the end.
    Close(u16, &'static str),
    /// The server closed it with a close frame (the WebSocket library answers): wait (bounded) for the end.
    AwaitEnd,
}

#[derive(Debug, Clone)]
struct CloseRequest {
    code: u16,
    reason: String,
    /// The close action has been handed to the driver.
    sent: bool,
}

/// The Tether state machine: one logical WebSocket connection, kept alive across transports.
///
/// It performs no I/O and reads no clock: the driver feeds it inputs with the current time and carries
/// out what it asks. Methods, by group:
///
/// * **Commands** from the application: [`connect`](Self::connect), [`send`](Self::send),
///   [`close`](Self::close), [`set_preamble`](Self::set_preamble).
/// * **Inputs** from the driver: [`handle_transport`](Self::handle_transport),
///   [`handle_timeout`](Self::handle_timeout), [`handle_network`](Self::handle_network).
/// * **Outputs**, to drain after every input or command: [`poll_action`](Self::poll_action) (for the
///   driver), [`poll_event`](Self::poll_event) (for the application), and
///   [`poll_timeout`](Self::poll_timeout) (when to call `handle_timeout` next).
/// * **Getters**: [`state`](Self::state), [`stats`](Self::stats), [`queue_len`](Self::queue_len).
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
    state: State,
    rng: Rng,
    backoff: Backoff,
    timers: TimerTable,
    queue: Queue,
    preamble: Vec<Message>,
    /// Preamble messages already handed to the current transport.
    preamble_sent: usize,
    /// Payload lengths of the preamble messages handed to the current transport and not yet reported
    /// flushed, oldest first (so a preamble replaced meanwhile is still counted right).
    preamble_unflushed: VecDeque<usize>,
    /// Preamble messages of the current transport reported flushed.
    preamble_flushed: usize,
    next_transport: u64,
    next_message: u64,
    /// The transport in use (opening, open or closing), if any.
    transport: Option<TransportId>,
    /// A transport the session let go of while it may still be open: its reports are expected (its final
    /// `Closed` is not stale) and ignored, and it is aborted if it has not ended by [`Timer::Release`].
    released: Option<TransportId>,
    /// Consecutive failed attempts in the current outage.
    failures: u32,
    /// Retries scheduled in the current outage (drives the backoff exponent).
    retries: u32,
    /// When the current outage began; `None` while stable.
    outage_start: Option<Instant>,
    connected_at: Option<Instant>,
    ever_connected: bool,
    heartbeat: Option<Heartbeat>,
    ping_seq: u64,
    offline: bool,
    /// A retry was due while offline; it starts on `Online`.
    retry_waiting_for_network: bool,
    close: Option<CloseRequest>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    stats: Stats,
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
            state: State::Idle,
            timers: TimerTable::default(),
            queue: Queue::default(),
            preamble: Vec::new(),
            preamble_sent: 0,
            preamble_unflushed: VecDeque::new(),
            preamble_flushed: 0,
            next_transport: 0,
            next_message: 0,
            transport: None,
            released: None,
            failures: 0,
            retries: 0,
            outage_start: None,
            connected_at: None,
            ever_connected: false,
            heartbeat: None,
            ping_seq: 0,
            offline: false,
            retry_waiting_for_network: false,
            close: None,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            last_now: now,
        })
    }

    // ----- getters -------------------------------------------------------------------------------

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The latest `now` the session has been given (inputs are clamped to it, so time never runs
    /// backwards inside). Passing it again as `now` changes nothing about time.
    pub fn latest_now(&self) -> Instant {
        self.last_now
    }

    /// Whether [`send`](Self::send) reads its `now`: only for message expiry ([`QueueConfig::ttl`]).
    /// When false, a driver may pass [`latest_now`](Self::latest_now) instead of reading the clock on
    /// every send; the result is the same, and a clock read is a measurable share of a send's cost.
    ///
    /// [`QueueConfig::ttl`]: crate::QueueConfig::ttl
    pub fn send_uses_clock(&self) -> bool {
        self.cfg.queue.ttl.is_some()
    }

    /// The transport in use (opening, open or closing), if any.
    pub fn transport(&self) -> Option<TransportId> {
        self.transport
    }

    /// Messages held (pending and in flight).
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Payload bytes held (pending and in flight).
    pub fn queue_bytes(&self) -> usize {
        self.queue.bytes()
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
        let mut s = self.stats;
        let now = now.max(self.last_now);
        if let Some(at) = self.connected_at {
            s.uptime = now.saturating_duration_since(at);
            s.total_connected = s.total_connected.saturating_add(s.uptime);
        }
        s.queue_len = self.queue.len();
        s.queue_bytes = self.queue.bytes();
        s.queue_in_flight = self.queue.in_flight_len();
        s.time_jumps += self.heartbeat.as_ref().map_or(0, |h| h.time_jumps);
        s
    }

    // ----- commands ------------------------------------------------------------------------------

    /// Starts connecting: from `Idle`, or again after `Closed` or `Failed` (with a fresh retry budget).
    pub fn connect(&mut self, now: Instant) -> Result<(), CommandError> {
        let now = self.clamp(now);
        match self.state {
            State::Idle | State::Closed | State::Failed => {}
            state => return Err(CommandError::InvalidState { command: "connect", state }),
        }
        if let Some(old) = self.released.take() {
            self.actions.push_back(Action::Abort { transport: old });
        }
        self.reset_backoff();
        self.outage_start = Some(now);
        self.close = None;
        self.retry_waiting_for_network = false;
        self.start_attempt(now, Cause::ConnectRequested);
        Ok(())
    }

    /// Accepts a message for sending and returns its id; its [`Outcome`] arrives later as an event.
    ///
    /// Accepted in every state but `Closing`, `Closed` and `Failed`: while not connected the message
    /// waits in the queue. Refused messages are handed back in the error.
    pub fn send(&mut self, now: Instant, message: Message) -> Result<MessageId, SendError> {
        let now = self.clamp(now);
        if matches!(self.state, State::Closing | State::Closed | State::Failed) {
            self.stats.messages_refused += 1;
            return Err(SendError::Inactive { message, state: self.state });
        }
        let id = MessageId(self.next_message);
        let (events, stats) = (&mut self.events, &mut self.stats);
        let mut out = |id, outcome| record_outcome(events, stats, id, outcome);
        self.queue.expire(now, &mut out);
        let pushed = self.queue.push(&self.cfg.queue, now, id, message, &mut out);
        self.after_input();
        match pushed {
            Ok(()) => {
                self.next_message += 1;
                self.stats.messages_accepted += 1;
                Ok(id)
            }
            Err((refusal, message)) => {
                self.stats.messages_refused += 1;
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
        // The current transport already had the old preamble (or part of it): don't send the new one now.
        self.preamble_sent = self.preamble.len();
    }

    /// Closes the session with a close code and reason. No reconnection follows.
    ///
    /// With [`CloseMode::Drain`] queued messages are sent first on the open connection; with
    /// [`CloseMode::Abort`] (or without an open connection) they end as [`Outcome::Aborted`].
    pub fn close(&mut self, now: Instant, code: u16, reason: &str, mode: CloseMode) -> Result<(), CommandError> {
        let now = self.clamp(now);
        if !close_code_sendable(code) {
            return Err(CommandError::InvalidCloseCode(code));
        }
        if reason.len() > 123 {
            return Err(CommandError::ReasonTooLong(reason.len()));
        }
        match self.state {
            State::Closing | State::Closed | State::Failed => {
                return Err(CommandError::InvalidState { command: "close", state: self.state });
            }
            State::Connected => {
                let transport = self.transport.expect("Connected always has a transport");
                self.drop_heartbeat();
                self.timers.stop(Timer::Stable);
                self.timers.set(Timer::Close, after(now, self.cfg.close_timeout));
                self.close = Some(CloseRequest { code, reason: reason.to_owned(), sent: mode == CloseMode::Abort });
                if mode == CloseMode::Abort {
                    let (events, stats) = (&mut self.events, &mut self.stats);
                    self.queue.abort_pending(&mut |id, outcome| record_outcome(events, stats, id, outcome));
                    self.actions.push_back(Action::Close { transport, code, reason: reason.to_owned() });
                }
                self.transition(State::Closing, Cause::CloseRequested);
            }
            State::Idle | State::Connecting | State::Reconnecting => {
                // Only an opening transport can be current here: nothing to close gracefully yet.
                if let Some(transport) = self.transport.take() {
                    self.actions.push_back(Action::Abort { transport });
                }
                self.finish_close(now, Cause::CloseRequested);
            }
        }
        self.after_input();
        Ok(())
    }

    // ----- inputs --------------------------------------------------------------------------------

    /// Handles every deadline due at `now`. Calling it early, or twice, does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clamp(now);
        for timer in Timer::ALL {
            if self.timers.take_due(timer, now) {
                self.on_timer(now, timer);
            }
        }
        if self.state == State::Connected {
            self.heartbeat_ticks(now);
        }
        let (events, stats) = (&mut self.events, &mut self.stats);
        self.queue.expire(now, &mut |id, outcome| record_outcome(events, stats, id, outcome));
        self.after_input();
    }

    /// Handles a report about transport `id`. Reports about a transport the session has let go of while
    /// it was still open (after a close frame, or failing the connection) are expected and ignored; its
    /// end is awaited. Reports about any other transport but the current one are stale: ignored and
    /// counted.
    pub fn handle_transport(&mut self, now: Instant, id: TransportId, event: TransportEvent) {
        let now = self.clamp(now);
        if self.released == Some(id) {
            // After a close frame nothing it sends is processed (RFC 6455 1.4, 7.1.7); only its end matters.
            if matches!(event, TransportEvent::Closed(_)) {
                self.released = None;
                self.timers.stop(Timer::Release);
            }
            return;
        }
        if self.transport != Some(id) {
            self.stats.stale_events += 1;
            return;
        }
        match (self.state, event) {
            (State::Connecting, TransportEvent::Opened(info)) => self.on_opened(now, id, info),
            (State::Connecting, TransportEvent::OpenFailed(err)) => self.on_open_failed(now, err),
            (State::Connecting, TransportEvent::Closed(_)) => {
                self.on_open_failed(now, OpenError::Io("connection closed during the handshake".into()))
            }
            (State::Connected | State::Closing, TransportEvent::Received(frame)) => self.on_frame(now, frame),
            (State::Connected | State::Closing, TransportEvent::PreambleFlushed { count }) => {
                // Never more than were handed out, whatever the driver says.
                while self.preamble_flushed < count
                    && let Some(len) = self.preamble_unflushed.pop_front()
                {
                    self.preamble_flushed += 1;
                    self.stats.messages_sent += 1;
                    self.stats.bytes_sent += len as u64;
                    self.stats.last_message_at = Some(now);
                }
            }
            (State::Connected | State::Closing, TransportEvent::Flushed { through }) => {
                let (events, stats) = (&mut self.events, &mut self.stats);
                let sent_before = stats.messages_sent;
                self.queue.flushed(through, &mut |id, len| {
                    stats.messages_sent += 1;
                    stats.bytes_sent += len as u64;
                    record_outcome(events, stats, id, Outcome::Sent)
                });
                if self.stats.messages_sent != sent_before {
                    self.stats.last_message_at = Some(now);
                }
            }
            (State::Connected, TransportEvent::Closed(Ok(frame))) => self.on_remote_close(now, frame, Release::Ended),
            (State::Connected, TransportEvent::Closed(Err(err))) => {
                let release = match &err {
                    TransportError::Io(_) => {
                        self.stats.errors.io += 1;
                        Release::Ended
                    }
                    TransportError::Violation { kind, .. } => {
                        self.stats.errors.protocol += 1;
                        Release::Close(kind.close_code(), kind.close_reason())
                    }
                };
                let verdict = self.cfg.retry.classify_transport(&err);
                self.lose_transport(now, Cause::TransportFailed(err), verdict, release);
            }
            (State::Closing, TransportEvent::Closed(_)) => self.finish_close(now, Cause::CloseCompleted),
            // Anything else cannot come from a correct driver (a frame before the handshake, a second
            // `Opened`): it is ignored and counted, never a panic.
            _ => self.stats.stale_events += 1,
        }
        self.after_input();
    }

    /// Handles a network hint from the platform.
    pub fn handle_network(&mut self, now: Instant, hint: NetworkHint) {
        let now = self.clamp(now);
        match hint {
            NetworkHint::Offline => self.offline = true,
            NetworkHint::Online | NetworkHint::Resumed => self.offline = false,
        }
        match (self.state, hint) {
            (State::Connected, _) => self.probe_now(now),
            (State::Reconnecting, NetworkHint::Online | NetworkHint::Resumed) => {
                self.timers.stop(Timer::Backoff);
                self.retry_waiting_for_network = false;
                self.start_attempt(now, Cause::Network(hint));
            }
            _ => {}
        }
        self.after_input();
    }

    // ----- internals -----------------------------------------------------------------------------

    fn clamp(&mut self, now: Instant) -> Instant {
        if now > self.last_now {
            self.last_now = now;
        }
        self.last_now
    }

    fn transition(&mut self, to: State, cause: Cause) {
        let from = self.state;
        debug_assert!(from.can_transition_to(to), "illegal transition {from:?} -> {to:?}");
        self.state = to;
        self.events.push_back(Event::StateChanged { from, to, cause });
    }

    fn after_input(&mut self) {
        if self.queue.take_unblocked(&self.cfg.queue) {
            self.events.push_back(Event::QueueUnblocked);
        }
    }

    fn start_attempt(&mut self, now: Instant, cause: Cause) {
        let transport = TransportId(self.next_transport);
        self.next_transport += 1;
        self.transport = Some(transport);
        self.stats.attempts += 1;
        self.timers.set(Timer::Connect, after(now, self.cfg.connect_timeout));
        let attempt = self.failures + 1;
        self.actions.push_back(Action::Open { transport, attempt });
        self.transition(State::Connecting, cause);
    }

    fn on_opened(&mut self, now: Instant, transport: TransportId, info: ConnectInfo) {
        self.timers.stop(Timer::Connect);
        self.timers.set(Timer::Stable, after(now, self.cfg.backoff.stable_after));
        self.connected_at = Some(now);
        self.stats.connects += 1;
        let reconnect = self.ever_connected;
        if reconnect {
            self.stats.reconnects += 1;
        }
        self.ever_connected = true;
        self.stats.last_handshake = Some(info.handshake);
        self.preamble_sent = 0;
        self.preamble_unflushed.clear();
        self.preamble_flushed = 0;
        self.heartbeat = self.cfg.heartbeat.as_ref().map(|cfg| Heartbeat::start(cfg, now, self.ping_seq));
        self.transition(State::Connected, Cause::Opened);
        self.events.push_back(Event::Connected { transport, attempt: self.failures + 1, reconnect, info });
        if self.offline {
            // Connected while told the network is down: the hint is stale; check the link.
            self.probe_now(now);
        }
    }

    fn on_open_failed(&mut self, now: Instant, err: OpenError) {
        let e = &mut self.stats.errors;
        match &err {
            OpenError::Dns(_) => e.dns += 1,
            OpenError::Tcp(_) => e.tcp += 1,
            OpenError::Tls(_) | OpenError::TlsCertificate(_) => e.tls += 1,
            OpenError::Http { .. } => e.http += 1,
            OpenError::Protocol(_) | OpenError::Extension(_) => e.protocol += 1,
            OpenError::Io(_) => e.io += 1,
        }
        let verdict = self.cfg.retry.classify_open(&err);
        self.lose_transport(now, Cause::OpenFailed(err), verdict, Release::Ended);
    }

    fn on_frame(&mut self, now: Instant, frame: Frame) {
        if let Some(hb) = &mut self.heartbeat {
            hb.on_inbound(now);
        }
        match frame {
            Frame::Message(m) => {
                self.stats.messages_received += 1;
                self.stats.bytes_received += m.len() as u64;
                self.stats.last_message_at = Some(now);
                self.events.push_back(Event::Message(m));
            }
            Frame::Ping => {}
            Frame::Pong(payload) => {
                if let Some(rtt) = self.heartbeat.as_mut().and_then(|hb| hb.on_pong(now, &payload)) {
                    self.stats.rtt.record(rtt);
                }
            }
            Frame::Close(_) if self.state == State::Closing => {
                // The close handshake is done; the transport's end (the server closes TCP) is expected.
                self.released = self.transport;
                self.finish_close(now, Cause::CloseCompleted)
            }
            Frame::Close(frame) => self.on_remote_close(now, frame, Release::AwaitEnd),
        }
    }

    fn on_remote_close(&mut self, now: Instant, frame: Option<CloseFrame>, release: Release) {
        self.stats.errors.remote_close += 1;
        let verdict = self.cfg.retry.classify_close(frame.as_ref().map(|f| f.code));
        // The WebSocket library answers the close frame itself; nothing to send.
        self.lose_transport(now, Cause::RemoteClosed(frame), verdict, release);
    }

    fn probe_now(&mut self, now: Instant) {
        let (Some(hb), Some(cfg), Some(transport)) = (&mut self.heartbeat, &self.cfg.heartbeat, self.transport) else {
            return;
        };
        if let Some(payload) = hb.probe_now(cfg, now) {
            // Continued by the next transport's heartbeat, so a late pong to this probe never matches there.
            self.ping_seq = hb.seq();
            self.actions.push_back(Action::Ping { transport, payload });
        }
    }

    fn heartbeat_ticks(&mut self, now: Instant) {
        for _ in 0..MAX_HEARTBEAT_TICKS {
            let (Some(hb), Some(cfg), Some(transport)) = (&mut self.heartbeat, &self.cfg.heartbeat, self.transport)
            else {
                return;
            };
            match hb.on_timeout(cfg, now) {
                None => return,
                Some(Tick::Ping(payload)) => {
                    self.ping_seq = hb.seq();
                    self.actions.push_back(Action::Ping { transport, payload });
                }
                Some(Tick::Dead(why)) => {
                    self.stats.errors.heartbeat += 1;
                    // A close frame would sit unsent behind the dead link and reach the server after the
                    // next connection's messages: reset instead.
                    self.lose_transport(now, Cause::Heartbeat(why), Verdict::Retry, Release::Abort);
                    return;
                }
            }
        }
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match (timer, self.state) {
            (Timer::Connect, State::Connecting) => {
                self.stats.errors.connect_timeout += 1;
                self.lose_transport(now, Cause::ConnectTimeout, Verdict::Retry, Release::Abort);
            }
            (Timer::Close, State::Closing) => {
                if let Some(transport) = self.transport {
                    // Tell the driver to let go of a transport whose close never completed.
                    self.actions.push_back(Action::Abort { transport });
                }
                self.finish_close(now, Cause::CloseTimeout);
            }
            (Timer::Release, _) => {
                if let Some(transport) = self.released.take() {
                    self.actions.push_back(Action::Abort { transport });
                }
            }
            (Timer::Stable, State::Connected) => {
                self.reset_backoff();
                self.outage_start = None;
            }
            (Timer::Backoff, State::Reconnecting) => {
                if self.offline {
                    self.retry_waiting_for_network = true;
                } else {
                    self.start_attempt(now, Cause::BackoffElapsed);
                }
            }
            // A timer left over from another state has nothing to do.
            _ => {}
        }
    }

    /// The current transport failed or was lost: let go of it, settle its messages, then retry or give up.
    fn lose_transport(&mut self, now: Instant, cause: Cause, verdict: Verdict, release: Release) {
        let was_connected = self.state == State::Connected;
        if let Some(transport) = self.transport.take() {
            self.release(now, transport, release);
        }
        self.timers.stop(Timer::Connect);
        // Decided from the clock, not from whether the Stable timer has been handled yet: a driver may
        // report the loss before it gets to the timer.
        let stable_after = self.cfg.backoff.stable_after;
        let was_stable = was_connected && self.connected_at.is_some_and(|at| now >= after(at, stable_after));
        self.timers.stop(Timer::Stable);
        self.drop_heartbeat();
        if let Some(at) = self.connected_at.take() {
            self.stats.total_connected = self.stats.total_connected.saturating_add(now.saturating_duration_since(at));
        }
        let (events, stats) = (&mut self.events, &mut self.stats);
        let requeued = self.queue.transport_lost(&mut |id, outcome| record_outcome(events, stats, id, outcome));
        self.stats.messages_requeued += requeued as u64;
        self.events.extend(self.queue.pending_ids().take(requeued).map(|id| Event::Requeued { id }));
        // A requeued message whose TTL passed while it was in flight must not be sent again, and must not
        // leave a deadline in the past at the head of the queue.
        let (events, stats) = (&mut self.events, &mut self.stats);
        self.queue.expire(now, &mut |id, outcome| record_outcome(events, stats, id, outcome));

        if was_stable {
            self.reset_backoff();
            self.outage_start = Some(now);
        } else {
            self.failures = self.failures.saturating_add(1);
            self.stats.failed_attempts += 1;
        }
        let outage_start = *self.outage_start.get_or_insert(now);

        let give_up = match verdict {
            Verdict::Fatal => Some(FailReason::Fatal(cause.clone())),
            _ if self.cfg.backoff.max_attempts.is_some_and(|max| self.failures >= max) => {
                Some(FailReason::RetriesExhausted { attempts: self.failures, last: cause.clone() })
            }
            _ => {
                let elapsed = now.saturating_duration_since(outage_start);
                self.cfg
                    .backoff
                    .give_up_after
                    .filter(|budget| elapsed >= *budget)
                    .map(|_| FailReason::BudgetExhausted { elapsed, last: cause.clone() })
            }
        };
        if let Some(reason) = give_up {
            if was_connected {
                self.events.push_back(Event::Disconnected { cause: cause.clone(), next_attempt_at: None });
            }
            self.fail(reason, cause);
            return;
        }

        // The immediate retry is free: if it fails, the backoff still starts from `base`.
        let mut delay = if was_stable && self.cfg.backoff.immediate_first_retry {
            Duration::ZERO
        } else {
            self.retries = self.retries.saturating_add(1);
            self.backoff.next_delay(&self.cfg.backoff, self.retries, &mut self.rng)
        };
        if let Verdict::RetryAfter(min) = verdict {
            delay = delay.max(min);
        }
        let at = after(now, delay);
        if was_connected {
            self.events.push_back(Event::Disconnected { cause: cause.clone(), next_attempt_at: Some(at) });
        }
        self.transition(State::Reconnecting, cause);
        self.events.push_back(Event::RetryScheduled { attempt: self.failures + 1, delay, at });
        self.timers.set(Timer::Backoff, at);
        if delay.is_zero() && !self.offline {
            self.timers.stop(Timer::Backoff);
            self.start_attempt(now, Cause::BackoffElapsed);
        }
    }

    /// Lets go of `transport` as `how` says; a transport that may still be open is awaited until it ends
    /// or [`Timer::Release`] passes (at most one at a time: an older one is aborted).
    fn release(&mut self, now: Instant, transport: TransportId, how: Release) {
        match how {
            Release::Ended => return,
            Release::Abort => {
                self.actions.push_back(Action::Abort { transport });
                return;
            }
            Release::Close(code, reason) => {
                self.actions.push_back(Action::Close { transport, code, reason: reason.to_owned() })
            }
            Release::AwaitEnd => {}
        }
        if let Some(old) = self.released.replace(transport) {
            self.actions.push_back(Action::Abort { transport: old });
        }
        self.timers.set(Timer::Release, after(now, self.cfg.close_timeout));
    }

    fn reset_backoff(&mut self) {
        self.failures = 0;
        self.retries = 0;
        self.backoff.reset(&self.cfg.backoff);
    }

    fn drop_heartbeat(&mut self) {
        if let Some(hb) = self.heartbeat.take() {
            self.stats.time_jumps += hb.time_jumps;
        }
    }

    fn fail(&mut self, reason: FailReason, cause: Cause) {
        self.transport = None;
        self.drop_heartbeat();
        self.timers.stop_all();
        let (events, stats) = (&mut self.events, &mut self.stats);
        self.queue.abort_all(&mut |id, outcome| record_outcome(events, stats, id, outcome));
        self.transition(State::Failed, cause);
        self.events.push_back(Event::Failed(reason));
    }

    fn finish_close(&mut self, now: Instant, cause: Cause) {
        self.transport = None;
        self.drop_heartbeat();
        if let Some(at) = self.connected_at.take() {
            self.stats.total_connected = self.stats.total_connected.saturating_add(now.saturating_duration_since(at));
        }
        self.timers.stop_all();
        let (events, stats) = (&mut self.events, &mut self.stats);
        self.queue.abort_all(&mut |id, outcome| record_outcome(events, stats, id, outcome));
        self.transition(State::Closed, cause.clone());
        self.events.push_back(Event::Closed { cause });
    }
}

fn record_outcome(events: &mut VecDeque<Event>, stats: &mut Stats, id: MessageId, outcome: Outcome) {
    match outcome {
        Outcome::Sent => {}
        Outcome::Dropped => stats.messages_dropped += 1,
        Outcome::Expired => stats.messages_expired += 1,
        Outcome::Abandoned => stats.messages_abandoned += 1,
        Outcome::Aborted => stats.messages_aborted += 1,
    }
    events.push_back(Event::Outcome { id, outcome });
}
