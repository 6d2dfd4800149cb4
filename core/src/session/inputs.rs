//! What the driver and the clock tell the session, and the transitions that follow: opening, losing and
//! releasing transports, the heartbeat, the retry decision.

use std::time::{Duration, Instant};

use super::Session;
use super::state::{Open, PreambleProgress, Stage};
use crate::heartbeat::{Heartbeat, Tick};
use crate::timer::{Timer, after};
use crate::transport::{CloseFrame, ConnectInfo, Frame, OpenError, TransportError, TransportEvent, TransportId};
use crate::{Action, Cause, Event, FailReason, NetworkHint, State, Verdict};

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

/// What a lost transport leaves behind for the retry decision.
struct Lost {
    /// It was open (else it was opening).
    was_connected: bool,
    /// It had been up for `stable_after`: the outage starts afresh.
    was_stable: bool,
}

impl Lost {
    /// The state the session was in when it lost the transport.
    fn from(&self) -> State {
        if self.was_connected { State::Connected } else { State::Connecting }
    }
}

impl Session {
    // ----- inputs --------------------------------------------------------------------------------

    /// Handles every deadline due at `now`. Calling it early, or twice, does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clamp(now);
        for timer in Timer::ALL {
            // A timer handled before this one may have moved the heartbeat's or the queue's deadline.
            self.sync_deadlines();
            if self.timers.take_due(timer, now) {
                self.on_timer(now, timer);
            }
        }
        self.settle();
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
        if self.stage.transport() != Some(id) {
            self.report.stats.stale_events += 1;
            return;
        }
        match (self.state(), event) {
            (State::Connecting, TransportEvent::Progress(p)) => {
                if let Stage::Connecting { phase, .. } = &mut self.stage {
                    *phase = Some(p);
                }
            }
            (State::Connecting, TransportEvent::Opened(info)) => self.on_opened(now, id, info),
            (State::Connecting, TransportEvent::OpenFailed(err)) => self.on_open_failed(now, err),
            (State::Connecting, TransportEvent::Closed(_)) => {
                self.on_open_failed(now, OpenError::Io("connection closed during the handshake".into()))
            }
            (State::Connected | State::Closing, TransportEvent::Received(frame)) => self.on_frame(now, frame),
            (State::Connected | State::Closing, TransportEvent::PreambleFlushed { count }) => {
                self.on_preamble_flushed(now, count)
            }
            (State::Connected | State::Closing, TransportEvent::Flushed { through }) => {
                let sent_before = self.report.stats.messages_sent;
                let (report, acks) = (&mut self.report, &mut self.acks);
                self.queue.flushed(through, &mut |id, len| report.flushed(acks, id, len));
                if self.report.stats.messages_sent != sent_before {
                    self.report.stats.last_message_at = Some(now);
                }
            }
            (State::Connected, TransportEvent::Closed(Ok(frame))) => self.on_remote_close(now, frame, Release::Ended),
            (State::Connected, TransportEvent::Closed(Err(err))) => self.on_transport_error(now, err),
            (State::Closing, TransportEvent::Closed(_)) => self.finish_close(now, Cause::CloseCompleted),
            // Anything else cannot come from a correct driver (a frame before the handshake, a second
            // `Opened`): it is ignored and counted, never a panic.
            _ => self.report.stats.stale_events += 1,
        }
        self.settle();
    }

    /// Handles a network hint from the platform.
    pub fn handle_network(&mut self, now: Instant, hint: NetworkHint) {
        let now = self.clamp(now);
        self.offline = hint == NetworkHint::Offline;
        match (self.state(), hint) {
            (State::Connected, _) => self.probe_now(now),
            (State::Reconnecting, NetworkHint::Online | NetworkHint::Resumed) => {
                self.timers.stop(Timer::Backoff);
                self.start_attempt(now, Cause::Network(hint));
            }
            _ => {}
        }
        self.settle();
    }

    // ----- timers --------------------------------------------------------------------------------

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match (timer, self.state()) {
            (Timer::Connect, State::Connecting) => {
                self.report.stats.errors.connect_timeout += 1;
                let cause = match &self.stage {
                    Stage::Connecting { since, phase, .. } => {
                        Cause::ConnectTimeout { phase: *phase, elapsed: now.saturating_duration_since(*since) }
                    }
                    _ => Cause::ConnectTimeout { phase: None, elapsed: self.cfg.connect_timeout },
                };
                self.lose(now, cause, Verdict::Retry, Release::Abort);
            }
            (Timer::Close, State::Closing) => {
                if let Some(transport) = self.stage.transport() {
                    // Tell the driver to let go of a transport whose close never completed.
                    self.actions.push_back(Action::Abort { transport });
                }
                self.finish_close(now, Cause::CloseTimeout);
            }
            (Timer::Stable, State::Connected) => {
                self.reset_backoff();
                self.outage.start = None;
            }
            // Offline, the attempt waits for `Online` (see `handle_network`).
            (Timer::Backoff, State::Reconnecting) if !self.offline => self.start_attempt(now, Cause::BackoffElapsed),
            (Timer::Release, _) => {
                if let Some(transport) = self.released.take() {
                    self.actions.push_back(Action::Abort { transport });
                }
            }
            (Timer::Heartbeat, State::Connected) => self.heartbeat_ticks(now),
            (Timer::Expiry, _) => self.queue.expire(now, &mut self.report.sink(&mut self.acks)),
            (Timer::Ack, _) => self.ack_timeouts(now),
            // A timer left over from another state has nothing to do.
            _ => {}
        }
    }

    // ----- opening -------------------------------------------------------------------------------

    pub(super) fn start_attempt(&mut self, now: Instant, cause: Cause) {
        let from = self.state();
        let transport = TransportId(self.next_transport);
        self.next_transport += 1;
        self.report.stats.attempts += 1;
        self.timers.set(Timer::Connect, after(now, self.cfg.connect_timeout));
        let attempt = self.outage.failures + 1;
        self.actions.push_back(Action::Open { transport, attempt });
        self.enter(from, Stage::Connecting { transport, since: now, phase: None }, cause);
    }

    fn on_opened(&mut self, now: Instant, transport: TransportId, info: ConnectInfo) {
        self.timers.stop(Timer::Connect);
        self.timers.set(Timer::Stable, after(now, self.cfg.backoff.stable_after));
        let stats = &mut self.report.stats;
        stats.connects += 1;
        let reconnect = self.ever_connected;
        if reconnect {
            stats.reconnects += 1;
        }
        self.ever_connected = true;
        stats.last_handshake = Some(info.handshake);
        stats.endpoint = Some(info.endpoint);
        let heartbeat = self.cfg.heartbeat.as_ref().map(|cfg| Heartbeat::start(cfg, now, self.ping_seq));
        let open = Open { transport, since: now, preamble: PreambleProgress::default() };
        self.enter(State::Connecting, Stage::Connected { open, heartbeat }, Cause::Opened);
        let attempt = self.outage.failures + 1;
        self.report.push(Event::Connected { transport, attempt, reconnect, info });
        if self.offline {
            // Connected while told the network is down: the hint is stale; check the link.
            self.probe_now(now);
        }
    }

    fn on_open_failed(&mut self, now: Instant, err: OpenError) {
        let e = &mut self.report.stats.errors;
        match &err {
            OpenError::Dns(_) => e.dns += 1,
            OpenError::Tcp(_) => e.tcp += 1,
            OpenError::Tls(_) | OpenError::TlsCertificate(_) => e.tls += 1,
            OpenError::Http { .. } => e.http += 1,
            OpenError::Protocol(_) | OpenError::Extension(_) => e.protocol += 1,
            OpenError::Io(_) => e.io += 1,
            OpenError::Proxy(_) => e.proxy += 1,
            OpenError::Timeout { .. } => e.connect_timeout += 1,
        }
        let verdict = self.cfg.retry.classify_open(&err);
        self.lose(now, Cause::OpenFailed(err), verdict, Release::Ended);
    }

    // ----- an open transport ---------------------------------------------------------------------

    fn on_frame(&mut self, now: Instant, frame: Frame) {
        let heartbeat = match &mut self.stage {
            Stage::Connected { heartbeat: Some(hb), .. } => {
                hb.on_inbound(now);
                Some(hb)
            }
            _ => None,
        };
        match frame {
            Frame::Message(m) => {
                let stats = &mut self.report.stats;
                stats.messages_received += 1;
                stats.bytes_received += m.len() as u64;
                stats.last_message_at = Some(now);
                self.report.push(Event::Message(m));
            }
            Frame::Correlated { key, message } => {
                let stats = &mut self.report.stats;
                stats.messages_received += 1;
                stats.bytes_received += message.len() as u64;
                stats.last_message_at = Some(now);
                self.on_correlated(key, message);
            }
            Frame::Ping => {}
            Frame::Pong(payload) => {
                if let Some(rtt) = heartbeat.and_then(|hb| hb.on_pong(now, &payload)) {
                    self.report.stats.rtt.record(rtt);
                }
            }
            Frame::Close(_) if self.state() == State::Closing => {
                // The close handshake is done; the transport's end (the server closes TCP) is expected.
                // An older transport still awaited is aborted: the session is over.
                if let Some(transport) = self.stage.transport() {
                    self.release(now, transport, Release::AwaitEnd);
                }
                self.finish_close(now, Cause::CloseCompleted)
            }
            Frame::Close(frame) => self.on_remote_close(now, frame, Release::AwaitEnd),
        }
    }

    fn on_preamble_flushed(&mut self, now: Instant, count: usize) {
        let Some(open) = self.stage.open_mut() else { return };
        let p = &mut open.preamble;
        // Never more than were handed out, whatever the driver says.
        while p.flushed < count
            && let Some(len) = p.unflushed.pop_front()
        {
            p.flushed += 1;
            let stats = &mut self.report.stats;
            stats.messages_sent += 1;
            stats.bytes_sent += len as u64;
            stats.last_message_at = Some(now);
        }
    }

    fn on_remote_close(&mut self, now: Instant, frame: Option<CloseFrame>, release: Release) {
        self.report.stats.errors.remote_close += 1;
        let verdict = self.cfg.retry.classify_close(frame.as_ref().map(|f| f.code));
        // The WebSocket library answers the close frame itself; nothing to send.
        self.lose(now, Cause::RemoteClosed(frame), verdict, release);
    }

    fn on_transport_error(&mut self, now: Instant, err: TransportError) {
        let release = match &err {
            TransportError::Io(_) => {
                self.report.stats.errors.io += 1;
                Release::Ended
            }
            TransportError::Violation { kind, .. } => {
                self.report.stats.errors.protocol += 1;
                Release::Close(kind.close_code(), kind.close_reason())
            }
        };
        let verdict = self.cfg.retry.classify_transport(&err);
        self.lose(now, Cause::TransportFailed(err), verdict, release);
    }

    /// A probe now, unless one is unanswered (network hints, a connection made while told offline).
    fn probe_now(&mut self, now: Instant) {
        let (Stage::Connected { open, heartbeat: Some(hb) }, Some(cfg)) = (&mut self.stage, &self.cfg.heartbeat) else {
            return;
        };
        if let Some(payload) = hb.probe_now(cfg, now) {
            // Continued by the next transport's heartbeat, so a late pong to this probe never matches there.
            self.ping_seq = hb.seq();
            self.actions.push_back(Action::Ping { transport: open.transport, payload });
        }
    }

    fn heartbeat_ticks(&mut self, now: Instant) {
        for _ in 0..MAX_HEARTBEAT_TICKS {
            let (Stage::Connected { open, heartbeat: Some(hb) }, Some(cfg)) = (&mut self.stage, &self.cfg.heartbeat)
            else {
                return;
            };
            match hb.on_timeout(cfg, now) {
                None => return,
                Some(Tick::Ping(payload)) => {
                    self.ping_seq = hb.seq();
                    self.actions.push_back(Action::Ping { transport: open.transport, payload });
                }
                Some(Tick::Dead(why)) => {
                    self.report.stats.errors.heartbeat += 1;
                    // A close frame would sit unsent behind the dead link and reach the server after the
                    // next connection's messages: reset instead.
                    self.lose(now, Cause::Heartbeat(why), Verdict::Retry, Release::Abort);
                    return;
                }
            }
        }
    }

    // ----- losing a transport --------------------------------------------------------------------

    /// The current transport (opening or open) failed or was lost: let go of it, settle its messages,
    /// then retry or give up.
    fn lose(&mut self, now: Instant, cause: Cause, verdict: Verdict, release: Release) {
        let lost = self.end_transport(now, release);
        self.settle_in_flight(now);
        if lost.was_stable {
            self.reset_backoff();
            self.outage.start = Some(now);
        } else {
            self.outage.failures = self.outage.failures.saturating_add(1);
            self.report.stats.failed_attempts += 1;
        }
        match self.give_up_reason(now, verdict, &cause) {
            Some(reason) => {
                if lost.was_connected {
                    self.report.push(Event::Disconnected { cause: cause.clone(), next_attempt_at: None });
                }
                self.fail(lost.from(), reason, cause);
            }
            None => self.schedule_retry(now, cause, verdict, &lost),
        }
    }

    /// Takes the transport out of the state (the state is then `Reconnecting` until the caller decides),
    /// releases it, and closes its books: timers, heartbeat, connected time.
    fn end_transport(&mut self, now: Instant, release: Release) -> Lost {
        let old = std::mem::replace(&mut self.stage, Stage::Reconnecting);
        self.timers.stop(Timer::Connect);
        self.timers.stop(Timer::Stable);
        let mut lost = Lost { was_connected: false, was_stable: false };
        match old {
            Stage::Connecting { transport, .. } => self.release(now, transport, release),
            Stage::Connected { open, heartbeat } => {
                self.release(now, open.transport, release);
                // Decided from the clock, not from whether the Stable timer has been handled yet: a
                // driver may report the loss before it gets to the timer.
                lost =
                    Lost { was_connected: true, was_stable: now >= after(open.since, self.cfg.backoff.stable_after) };
                if let Some(hb) = heartbeat {
                    self.report.stats.time_jumps += hb.time_jumps;
                }
                let stats = &mut self.report.stats;
                stats.total_connected = stats.total_connected.saturating_add(now.saturating_duration_since(open.since));
            }
            other => {
                // Only an opening or open transport can be lost; anything else is left as it was.
                debug_assert!(false, "lose from {:?}", other.public());
                self.stage = other;
            }
        }
        lost
    }

    /// Why the session must give up now, if it must: a fatal verdict, or a spent budget.
    fn give_up_reason(&mut self, now: Instant, verdict: Verdict, cause: &Cause) -> Option<FailReason> {
        let outage_start = *self.outage.start.get_or_insert(now);
        let b = &self.cfg.backoff;
        let failures = self.outage.failures;
        match verdict {
            Verdict::Fatal => Some(FailReason::Fatal(cause.clone())),
            _ if b.max_attempts.is_some_and(|max| failures >= max) => {
                Some(FailReason::RetriesExhausted { attempts: failures, last: cause.clone() })
            }
            _ => {
                let elapsed = now.saturating_duration_since(outage_start);
                b.give_up_after
                    .filter(|budget| elapsed >= *budget)
                    .map(|_| FailReason::BudgetExhausted { elapsed, last: cause.clone() })
            }
        }
    }

    /// Draws the next delay and waits it out in `Reconnecting` (or starts at once, for a zero delay).
    fn schedule_retry(&mut self, now: Instant, cause: Cause, verdict: Verdict, lost: &Lost) {
        // The immediate retry is free: if it fails, the backoff still starts from `base`.
        let mut delay = if lost.was_stable && self.cfg.backoff.immediate_first_retry {
            Duration::ZERO
        } else {
            self.outage.retries = self.outage.retries.saturating_add(1);
            self.backoff.next_delay(&self.cfg.backoff, self.outage.retries, &mut self.rng)
        };
        if let Verdict::RetryAfter(min) = verdict {
            delay = delay.max(min);
        }
        let at = after(now, delay);
        if lost.was_connected {
            self.report.push(Event::Disconnected { cause: cause.clone(), next_attempt_at: Some(at) });
        }
        self.enter(lost.from(), Stage::Reconnecting, cause);
        self.report.push(Event::RetryScheduled { attempt: self.outage.failures + 1, delay, at });
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

    // ----- the end -------------------------------------------------------------------------------

    pub(super) fn reset_backoff(&mut self) {
        self.outage.failures = 0;
        self.outage.retries = 0;
        self.backoff.reset(&self.cfg.backoff);
    }

    /// Gives up (from a lost transport, whose books `lose` has closed).
    fn fail(&mut self, from: State, reason: FailReason, cause: Cause) {
        self.timers.stop_all();
        self.abandon_sent();
        self.queue.abort_all(&mut self.report.sink(&mut self.acks));
        self.enter(from, Stage::Failed, cause);
        self.report.push(Event::Failed(reason));
    }

    /// Ends a user close (or a close without an open transport).
    pub(super) fn finish_close(&mut self, now: Instant, cause: Cause) {
        let from = self.state();
        match std::mem::replace(&mut self.stage, Stage::Closed) {
            Stage::Connected { open, heartbeat } => {
                if let Some(hb) = heartbeat {
                    self.report.stats.time_jumps += hb.time_jumps;
                }
                self.add_connected_time(now, &open);
            }
            Stage::Closing { open, .. } => self.add_connected_time(now, &open),
            _ => {}
        }
        self.timers.stop_all();
        self.abandon_sent();
        self.queue.abort_all(&mut self.report.sink(&mut self.acks));
        self.enter(from, Stage::Closed, cause.clone());
        self.report.push(Event::Closed { cause });
    }

    fn add_connected_time(&mut self, now: Instant, open: &Open) {
        let stats = &mut self.report.stats;
        stats.total_connected = stats.total_connected.saturating_add(now.saturating_duration_since(open.since));
    }
}
