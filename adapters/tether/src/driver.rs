//! The driver: one future per client, the same on every runtime. It carries the core's decisions to
//! the socket and the socket's news to the core.
//!
//! Each round has two phases. **I/O, without the session lock**: poll the transport being opened, read
//! inbound frames (only when the read side's own waker has fired, and only while the application's
//! event buffer has room), write the batch of actions taken from the core with `poll_ready`/`start_send`
//! (feed; an `Open` starts an attempt, polled at once), and flush once when the batch is written (so a
//! burst of sends becomes few syscalls). **Core, under the lock**: report what the I/O phase saw, handle
//! due timers, take the next batch of actions (up to `ACTION_BATCH`, in one `drain_actions` call) and
//! hand the events to the application (a buffer swap when it has taken everything). The timer is
//! re-armed only when `poll_timeout` changes, and `now >= deadline` is checked before polling it. Work
//! per wake-up is bounded; when the bound is hit the task yields instead of starving its neighbours.
//! When a transport opens, the driver yields once so the application sees `Connected` first.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use async_tungstenite::tungstenite::error::ProtocolError;
use async_tungstenite::tungstenite::protocol::CloseFrame as WsCloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message as WsMessage, Utf8Bytes};
use futures::task::AtomicWaker;
use futures::{Sink, Stream};
use tether_core::{
    Action, CloseFrame, ConnectInfo, Event, Frame, Message, MessageId, MessageKind, OpenError, State, TransportError,
    TransportEvent, TransportId, Violation,
};
use tracing::Instrument;

use crate::builder::Inner;
use crate::client::Shared;
use crate::connect::failover::Failover;
use crate::connect::{self, Ws, phases};
use crate::runtime::Runtime;

/// Rounds per wake-up before yielding.
const MAX_ROUNDS: usize = 32;
/// Frames read per round.
const READ_BUDGET: usize = 64;
/// Actions taken from the core per round: 512 × 64 B messages is one ~36 KiB write. 256 was measured
/// 5 % slower on 64 B one-way (more, smaller writes); 1024 no faster, with a batch twice the size.
pub(crate) const ACTION_BATCH: usize = 512;

/// The waker handed to the socket's read side: it records that the read side has news, then wakes the
/// driver. Rounds woken for other reasons (a send, a timer) skip the read attempt, which on some
/// runtimes costs a syscall even when nothing has arrived (async-io tries the read before it checks
/// readiness) and always costs tungstenite a buffer fill.
struct ReadWake {
    ready: AtomicBool,
    task: AtomicWaker,
}

impl Wake for ReadWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        self.task.wake();
    }
}

type OpeningFuture<R> = Pin<Box<dyn Future<Output = Result<(Ws<R>, ConnectInfo), OpenError>> + Send>>;

/// A transport being opened.
struct Opening<R: Runtime> {
    id: TransportId,
    fut: OpeningFuture<R>,
    /// The phase the attempt is in (see `connect::phases`), and the last one reported to the core.
    phase: Arc<AtomicU8>,
    reported: u8,
}

struct Conn<R: Runtime> {
    id: TransportId,
    ws: Ws<R>,
    /// Last message id written.
    fed: Option<MessageId>,
    /// Last message id reported flushed.
    reported: Option<MessageId>,
    /// Preamble messages (sends without an id) written, and reported flushed.
    preamble_fed: usize,
    preamble_reported: usize,
    need_flush: bool,
}

pub(crate) struct Driver<R: Runtime> {
    rt: R,
    cfg: Arc<Inner>,
    shared: Arc<Shared>,
    timer: Option<R::Timer>,
    armed: Option<Instant>,
    opening: Option<Opening<R>>,
    conn: Option<Conn<R>>,
    /// Which endpoint each attempt goes to.
    failover: Failover,
    /// Actions taken from the core and not yet carried out, in order.
    batch: VecDeque<Action>,
    /// The Close action for this transport ends a user close: wait for the handshake.
    graceful_close: Option<TransportId>,
    /// Reports for the core gathered during the I/O phase.
    reports: Vec<(TransportId, TransportEvent)>,
    /// Outcomes to hand to receipts, gathered under the session lock.
    outcomes: Vec<(MessageId, tether_core::Outcome)>,
    read_wake: Arc<ReadWake>,
    read_waker: Waker,
}

impl<R: Runtime> Driver<R> {
    pub(crate) fn new(rt: R, cfg: Arc<Inner>, shared: Arc<Shared>) -> Self {
        let read_wake = Arc::new(ReadWake { ready: AtomicBool::new(false), task: AtomicWaker::new() });
        Self {
            rt,
            failover: Failover::new(cfg.endpoints.len()),
            cfg,
            shared,
            timer: None,
            armed: None,
            opening: None,
            conn: None,
            // Grown on first use: an idle connection should not pay for a burst's buffers.
            batch: VecDeque::new(),
            graceful_close: None,
            reports: Vec::new(),
            outcomes: Vec::new(),
            read_waker: Waker::from(read_wake.clone()),
            read_wake,
        }
    }

    fn lose_conn(&mut self, id: TransportId, event: TransportEvent) {
        self.reports.push((id, event));
        self.conn = None;
    }

    fn poll_opening(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(opening) = &mut self.opening else { return false };
        let id = opening.id;
        match opening.fut.as_mut().poll(cx) {
            Poll::Pending => {
                // A new phase: the core names it if the connect timeout fires.
                let phase = opening.phase.load(Ordering::Acquire);
                if phase != opening.reported {
                    opening.reported = phase;
                    if let Some(p) = phases::decode(phase) {
                        self.reports.push((id, TransportEvent::Progress(p)));
                        return true;
                    }
                }
                false
            }
            Poll::Ready(result) => {
                self.opening = None;
                match result {
                    Ok((ws, info)) => {
                        tracing::info!(
                            transport = %id,
                            endpoint = info.endpoint,
                            handshake_ms = info.handshake.as_millis() as u64,
                            "connected"
                        );
                        self.failover.served(info.endpoint);
                        self.conn = Some(Conn {
                            id,
                            ws,
                            fed: None,
                            reported: None,
                            preamble_fed: 0,
                            preamble_reported: 0,
                            need_flush: false,
                        });
                        // Frames may have arrived with the handshake response.
                        self.read_wake.ready.store(true, Ordering::Release);
                        self.reports.push((id, TransportEvent::Opened(info)));
                    }
                    Err(e) => {
                        tracing::info!(transport = %id, error = %e, "connect failed");
                        self.reports.push((id, TransportEvent::OpenFailed(e)));
                    }
                }
                true
            }
        }
    }

    /// Reads inbound frames while the application has room for the events they cause.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(conn) = &mut self.conn else { return false };
        // Only when the read side has been woken since it last said Pending (or is new).
        if !self.read_wake.ready.load(Ordering::Acquire) || self.shared.events.room(cx) == 0 {
            return false;
        }
        // Cleared before the attempt: a wake-up during it sets it again.
        self.read_wake.ready.store(false, Ordering::Release);
        let mut read_cx = Context::from_waker(&self.read_waker);
        let id = conn.id;
        let mut progress = false;
        for _ in 0..READ_BUDGET {
            match Pin::new(&mut conn.ws).poll_next(&mut read_cx) {
                Poll::Pending => return progress,
                Poll::Ready(Some(Ok(msg))) => {
                    progress = true;
                    let frame = match msg {
                        WsMessage::Text(t) => match Message::text_from_bytes(t.into()) {
                            Ok(m) => Frame::Message(m),
                            Err(_) => unreachable!("tungstenite validated the UTF-8"),
                        },
                        WsMessage::Binary(b) => Frame::Message(Message::binary(b)),
                        WsMessage::Ping(_) => {
                            // tungstenite queued the Pong: flush it promptly, or idle clients get dropped.
                            conn.need_flush = true;
                            Frame::Ping
                        }
                        WsMessage::Pong(p) => Frame::Pong(p),
                        WsMessage::Close(f) => {
                            // tungstenite queued the close reply: flush it, then read until the end.
                            conn.need_flush = true;
                            Frame::Close(f.map(|f| CloseFrame { code: f.code.into(), reason: f.reason.to_string() }))
                        }
                        WsMessage::Frame(_) => continue,
                    };
                    self.reports.push((id, TransportEvent::Received(frame)));
                }
                Poll::Ready(None) => {
                    self.lose_conn(id, TransportEvent::Closed(Ok(None)));
                    return true;
                }
                Poll::Ready(Some(Err(e))) => {
                    self.lose_conn(id, TransportEvent::Closed(classify_read_error(e)));
                    return true;
                }
            }
        }
        // Budget spent without a Pending: more may be waiting, and no wake-up will say so.
        self.read_wake.ready.store(true, Ordering::Release);
        progress
    }

    /// Carries out the batch in order; stops at the first write the socket cannot take yet.
    fn write_batch(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while let Some(action) = self.batch.front() {
            match action {
                Action::Open { transport, attempt } => {
                    let (id, attempt) = (*transport, *attempt);
                    self.batch.pop_front();
                    self.conn = None;
                    let endpoint = self.failover.choose(attempt);
                    let span = tracing::info_span!("attempt", transport = %id, attempt, endpoint);
                    let phase = Arc::new(AtomicU8::new(0));
                    let fut = connect::open(self.rt.clone(), self.cfg.clone(), attempt, endpoint, phase.clone())
                        .instrument(span);
                    self.opening = Some(Opening { id, fut: Box::pin(fut), phase, reported: 0 });
                    progress = true;
                }
                Action::Send { transport, .. } | Action::Ping { transport, .. } => {
                    let transport = *transport;
                    let Some(conn) = self.conn.as_mut().filter(|c| c.id == transport) else {
                        // For a transport that is gone: the core has already settled its messages.
                        self.batch.pop_front();
                        continue;
                    };
                    match Pin::new(&mut conn.ws).poll_ready(cx) {
                        Poll::Pending => return progress,
                        Poll::Ready(Err(e)) => {
                            self.lose_conn(transport, TransportEvent::Closed(Err(classify_write_error(e))));
                            progress = true;
                            continue;
                        }
                        Poll::Ready(Ok(())) => {}
                    }
                    let (msg, id, preamble) = match self.batch.pop_front() {
                        Some(Action::Send { id, message, .. }) => {
                            let msg = conn.ws.get_mut().compress(&message).unwrap_or_else(|| to_ws(message));
                            (msg, id, id.is_none())
                        }
                        Some(Action::Ping { payload, .. }) => (WsMessage::Ping(payload), None, false),
                        _ => unreachable!("the front was a Send or a Ping"),
                    };
                    progress = true;
                    if let Err(e) = Pin::new(&mut conn.ws).start_send(msg) {
                        self.lose_conn(transport, TransportEvent::Closed(Err(classify_write_error(e))));
                        continue;
                    }
                    conn.need_flush = true;
                    if id.is_some() {
                        conn.fed = id;
                    } else if preamble {
                        conn.preamble_fed += 1;
                    }
                }
                Action::Abort { transport } => {
                    let transport = *transport;
                    self.batch.pop_front();
                    progress = true;
                    if self.opening.as_ref().is_some_and(|o| o.id == transport) {
                        self.opening = None;
                    }
                    if self.conn.as_ref().is_some_and(|c| c.id == transport) {
                        self.conn = None;
                    }
                }
                Action::Close { transport, code, reason } => {
                    let (transport, code, reason) = (*transport, *code, reason.clone());
                    self.batch.pop_front();
                    progress = true;
                    if self.opening.as_ref().is_some_and(|o| o.id == transport) {
                        self.opening = None;
                    }
                    let graceful = self.graceful_close == Some(transport);
                    let Some(conn) = self.conn.as_mut().filter(|c| c.id == transport) else { continue };
                    let frame = WsCloseFrame { code: CloseCode::from(code), reason: Utf8Bytes::from(reason) };
                    let queued = Pin::new(&mut conn.ws).start_send(WsMessage::Close(Some(frame))).is_ok();
                    if graceful && queued {
                        // Keep reading until the peer's close frame ends the handshake.
                        conn.need_flush = true;
                    } else {
                        // The core has moved on (dead link, timeout): one non-blocking attempt to get
                        // the close frame out, then let go.
                        let _ = Pin::new(&mut conn.ws).poll_flush(cx);
                        self.conn = None;
                    }
                }
            }
        }
        progress
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(conn) = self.conn.as_mut().filter(|c| c.need_flush) else { return false };
        match Pin::new(&mut conn.ws).poll_flush(cx) {
            Poll::Pending => false,
            Poll::Ready(Ok(())) => {
                conn.need_flush = false;
                if conn.preamble_fed > conn.preamble_reported {
                    conn.preamble_reported = conn.preamble_fed;
                    self.reports.push((conn.id, TransportEvent::PreambleFlushed { count: conn.preamble_fed }));
                }
                if conn.fed > conn.reported
                    && let Some(through) = conn.fed
                {
                    conn.reported = conn.fed;
                    self.reports.push((conn.id, TransportEvent::Flushed { through }));
                }
                true
            }
            Poll::Ready(Err(e)) => {
                let id = conn.id;
                self.lose_conn(id, TransportEvent::Closed(Err(classify_write_error(e))));
                true
            }
        }
    }

    /// The core phase. Returns (actions taken, next deadline, whether the session is over, the time
    /// it ran at).
    fn run_core(&mut self, cx: &Context<'_>) -> (bool, Option<Instant>, bool, Instant) {
        let now = Instant::now();
        let room = self.shared.events.room(cx) > 0;
        let mut s = self.shared.session();
        for (id, ev) in self.reports.drain(..) {
            s.handle_transport(now, id, ev);
        }
        // With the application's buffer full, timers wait: a stalled consumer must not turn into a
        // false heartbeat timeout. When it resumes, late deadlines are handled as a time jump (a
        // fresh probe decides), see `tether_core::heartbeat`.
        if room && s.poll_timeout().is_some_and(|d| d <= now) {
            s.handle_timeout(now);
        }
        let mut took = false;
        if room {
            let before = self.batch.len();
            took = s.drain_actions(&mut self.batch, ACTION_BATCH.saturating_sub(before)) > 0;
            // Taking actions never changes the state: a Close taken while closing ends a user close.
            if took && s.state() == State::Closing {
                for a in self.batch.range(before..) {
                    if let Action::Close { transport, .. } = a {
                        self.graceful_close = Some(*transport);
                    }
                }
            }
        }
        let wants_receipts = self.shared.wants_receipts();
        let mut unblocked = false;
        let outcomes = &mut self.outcomes;
        let dry = self.shared.events.push_from(&mut s, |e| match e {
            Event::Outcome { id, outcome } if wants_receipts => outcomes.push((*id, *outcome)),
            Event::QueueUnblocked => unblocked = true,
            _ => {}
        });
        let deadline = s.poll_timeout();
        let over = dry && matches!(s.state(), State::Closed | State::Failed);
        drop(s);
        for (id, outcome) in self.outcomes.drain(..) {
            self.shared.deliver_receipt(id, outcome);
        }
        if unblocked {
            self.shared.wake_waiters();
        }
        (took, if room { deadline } else { None }, over, now)
    }

    /// Arms the timer for `deadline` (or keeps an earlier one armed); true if it is already due at `now`
    /// (the core phase's time: one clock read per round; a deadline passed since then fires the
    /// runtime's timer at once).
    fn poll_timer(&mut self, cx: &mut Context<'_>, deadline: Option<Instant>, now: Instant) -> bool {
        let Some(d) = deadline else {
            self.armed = None;
            return false;
        };
        if d <= now {
            return true;
        }
        // A deadline that moved later keeps the armed, earlier timer: it fires early, nothing is due,
        // and that round arms the new deadline. Moving a timer costs async-io a reactor notification (a
        // syscall, and a wake-up of its thread) and tokio a wheel update, and deadlines that move later
        // with traffic (`receive_idle`) or at every step of a connection's life would pay it each time.
        let keep_earlier = self.armed.is_some_and(|a| now < a && a < d);
        if self.armed != Some(d) && !keep_earlier {
            match &mut self.timer {
                Some(t) => R::reset_timer(t, d),
                None => self.timer = Some(self.rt.timer(d)),
            }
            self.armed = Some(d);
        }
        match &mut self.timer {
            Some(t) => Pin::new(t).poll(cx).is_ready(),
            None => false,
        }
    }
}

impl<R: Runtime> Future for Driver<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // The task's waker does not change within a poll: the read side's copy is registered once.
        this.read_wake.task.register(cx.waker());
        for _ in 0..MAX_ROUNDS {
            this.shared.register_driver(cx.waker());
            let mut progress = this.poll_opening(cx);
            // A transport that opened this round: `Connected` goes to the application first (below);
            // the read side, marked ready, is tried when the driver comes back.
            let opened = progress && this.conn.is_some();
            // Reads come before writes: tungstenite writes out what it has buffered when it reads, so a
            // read between a write and its flush could carry frames out, then see the connection end,
            // and their flush would never be reported.
            if !opened {
                progress |= this.poll_read(cx);
            }
            let was_opening = this.opening.is_some();
            progress |= this.write_batch(cx);
            if !was_opening && this.opening.is_some() {
                // An `Open` in the batch: the attempt starts in this round.
                progress |= this.poll_opening(cx);
            }
            progress |= this.poll_flush(cx);
            let (took, deadline, over, now) = this.run_core(cx);
            progress |= took;
            if over {
                // Closed or failed, and every event handed over: release the transport and stop.
                if let Some(conn) = this.conn.as_mut() {
                    let _ = Pin::new(&mut conn.ws).poll_flush(cx);
                }
                this.conn = None;
                this.opening = None;
                this.shared.finish();
                tracing::debug!("driver finished");
                return Poll::Ready(());
            }
            if opened {
                // Applications wait for `Connected` to subscribe or to send what they held back: let
                // them run before this task reads the new socket (usually empty) and carries on.
                R::yield_now(cx);
                return Poll::Pending;
            }
            progress |= this.poll_timer(cx, deadline, now);
            if !progress {
                return Poll::Pending;
            }
        }
        // Bounded work per wake-up: yield to the other tasks, and come back.
        R::yield_now(cx);
        Poll::Pending
    }
}

impl<R: Runtime> Drop for Driver<R> {
    /// A driver dropped before it finished (its runtime shut down): end the event stream and wake every
    /// waiter, so nobody waits forever on a client that can no longer make progress.
    fn drop(&mut self) {
        self.shared.finish();
    }
}

fn to_ws(message: Message) -> WsMessage {
    let (kind, payload) = message.into_parts();
    match kind {
        MessageKind::Binary => WsMessage::Binary(payload),
        // The core only builds text messages from valid UTF-8; the check is tungstenite's price.
        MessageKind::Text => match Utf8Bytes::try_from(payload) {
            Ok(t) => WsMessage::Text(t),
            Err(_) => unreachable!("text messages hold valid UTF-8"),
        },
    }
}

fn classify_read_error(e: WsError) -> Result<Option<CloseFrame>, TransportError> {
    let violation = |kind, detail: String| Err(TransportError::Violation { kind, detail });
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => Ok(None),
        // The peer vanished (a crash, a reset): a lost connection, not a breach of the protocol.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            Err(TransportError::Io("connection reset without a closing handshake".into()))
        }
        // The details without tungstenite's "WebSocket protocol error: " prefix: `TransportError`'s
        // message already says what kind of error it is.
        WsError::Protocol(p) => violation(Violation::Protocol, p.to_string()),
        e @ WsError::Utf8(_) => violation(Violation::InvalidUtf8, e.to_string()),
        WsError::Capacity(c) => violation(Violation::TooBig, c.to_string()),
        // The server's compressed data broke a limit (1009) or the format (1002).
        WsError::Io(io) if crate::deflate::inflate_error(&io).is_some() => {
            let inflate = crate::deflate::inflate_error(&io).map(|i| (i.is_too_big(), i.to_string()));
            let (too_big, detail) = inflate.unwrap_or_default();
            violation(if too_big { Violation::TooBig } else { Violation::Protocol }, detail)
        }
        other => Err(classify_write_error(other)),
    }
}

fn classify_write_error(e: WsError) -> TransportError {
    match e {
        WsError::Io(e) => TransportError::Io(e.to_string()),
        WsError::ConnectionClosed | WsError::AlreadyClosed => TransportError::Io("connection closed".into()),
        other => TransportError::Io(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_errors_say_what_happened_once() {
        let reset = classify_read_error(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake));
        let Err(e) = reset else { panic!("a reset is an error") };
        assert_eq!(e, TransportError::Io("connection reset without a closing handshake".into()));
        assert_eq!(e.to_string(), "connection I/O error: connection reset without a closing handshake");

        let Err(e) = classify_read_error(WsError::Protocol(ProtocolError::NonZeroReservedBits)) else {
            panic!("a protocol error is an error")
        };
        let text = e.to_string();
        assert!(matches!(e, TransportError::Violation { kind: Violation::Protocol, .. }), "{e:?}");
        assert_eq!(text.matches("protocol").count(), 2, "{text}"); // "broke the WebSocket protocol (protocol error)"
        assert!(!text.contains("WebSocket protocol error"), "{text}");
        assert_eq!(classify_read_error(WsError::ConnectionClosed), Ok(None));
    }
}
