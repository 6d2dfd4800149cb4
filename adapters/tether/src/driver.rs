//! The driver: one future per client, the same on every runtime. It carries the core's decisions to
//! the socket and the socket's news to the core.
//!
//! Each round has two phases. **I/O, without the session lock**: poll the transport being opened, read
//! inbound frames (only when the read side's own waker has fired, and only while the application's
//! event buffer has room), write the batch of actions taken from the core with `poll_ready` and Tether's own frame encoder
//! (feed; an `Open` starts an attempt, polled at once), and flush once when the batch is written (so a
//! burst of sends becomes few syscalls). **Core, under the lock**: report what the I/O phase saw, handle
//! due timers, take the next batch of actions (up to `ACTION_BATCH`, in one `drain_actions` call) and
//! hand the events to the application (a buffer swap when it has taken everything). The timer is
//! re-armed only when `poll_timeout` changes, and `now >= deadline` is checked before polling it. Work
//! per wake-up is bounded; when the bound is hit the task yields instead of starving its neighbours.
//! When a transport opens, the driver yields once so the application sees `Connected` first.
//!
//! The core releases transports explicitly: `Close` is graceful (the close frame is written and the
//! connection read to its end, beside a new connection if one opens meanwhile, see `conn`), `Abort`
//! drops at once with a reset. Every clock read goes through the runtime (`Runtime::now`, once per round).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use futures::channel::oneshot;
use futures::task::AtomicWaker;
use tether_core::{
    Action, ConnectInfo, Event, Message, MessageId, OpenError, Outcome, State, TransportEvent, TransportId,
};
use tracing::Instrument;

use crate::builder::Inner;
use crate::client::Shared;
use crate::conn::{Conn, Read, Reports};
use crate::connect::failover::Failover;
use crate::connect::{self, Ws, phases};
use crate::request::{Answer, Pending, RequestError};
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

pub(crate) struct Driver<R: Runtime> {
    rt: R,
    cfg: Arc<Inner>,
    shared: Arc<Shared>,
    timer: Option<R::Timer>,
    armed: Option<Instant>,
    opening: Option<Opening<R>>,
    /// The connection the core sends on.
    conn: Option<Conn<R>>,
    /// Connections let go of while still open, read until they end (usually none, at most two: the
    /// core keeps one, and aborts it when it lets go of the next).
    closing: Vec<Conn<R>>,
    /// Which endpoint each attempt goes to.
    failover: Failover,
    /// Actions taken from the core and not yet carried out, in order.
    batch: VecDeque<Action>,
    /// Reports for the core gathered during the I/O phase.
    reports: Reports,
    /// Outcomes to hand to receipts, gathered under the session lock.
    outcomes: Vec<(MessageId, tether_core::Outcome)>,
    /// Requests that ended, with their response or their outcome, gathered under the session lock; then
    /// where their answers go.
    answers: Vec<(MessageId, Result<Message, Outcome>)>,
    answered: Vec<(oneshot::Sender<Answer>, Answer)>,
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
            closing: Vec::new(),
            // Grown on first use: an idle connection should not pay for a burst's buffers.
            batch: VecDeque::new(),
            reports: Vec::new(),
            outcomes: Vec::new(),
            answers: Vec::new(),
            answered: Vec::new(),
            read_waker: Waker::from(read_wake.clone()),
            read_wake,
        }
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
                        self.conn = Some(Conn::new(id, ws));
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

    /// Reads inbound frames while the application has room for the events they cause: the current
    /// connection's, and those of the connections still closing.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> bool {
        if self.conn.is_none() && self.closing.is_empty() {
            return false;
        }
        // Only when the read side has been woken since it last said Pending (or is new).
        if !self.read_wake.ready.load(Ordering::Acquire) || self.shared.events.room(cx) == 0 {
            return false;
        }
        // Cleared before the attempt: a wake-up during it sets it again.
        self.read_wake.ready.store(false, Ordering::Release);
        let mut read_cx = Context::from_waker(&self.read_waker);
        let mut progress = false;
        let mut more = false;
        let correlation = self.cfg.correlation.as_ref();
        let mut read = |conn: &mut Conn<R>, reports: &mut Reports| match conn.read(
            &mut read_cx,
            READ_BUDGET,
            correlation,
            reports,
        ) {
            Read::Pending(p) => {
                progress |= p;
                true
            }
            Read::Budget => {
                progress = true;
                more = true;
                true
            }
            Read::Ended => {
                progress = true;
                false
            }
        };
        if let Some(conn) = &mut self.conn
            && !read(conn, &mut self.reports)
        {
            self.conn = None;
        }
        self.closing.retain_mut(|conn| read(conn, &mut self.reports));
        if more {
            // Budget spent without a Pending: more may be waiting, and no wake-up will say so.
            self.read_wake.ready.store(true, Ordering::Release);
        }
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
                    // A connection still here was let go of by the core while open (the server closed
                    // it): read it to its end beside the new one.
                    if let Some(old) = self.conn.take() {
                        self.closing.push(old);
                    }
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
                    match conn.poll_ready(cx) {
                        Poll::Pending => return progress,
                        Poll::Ready(Err(e)) => {
                            self.reports.push((transport, TransportEvent::Closed(Err(e))));
                            self.conn = None;
                            progress = true;
                            continue;
                        }
                        Poll::Ready(Ok(())) => {}
                    }
                    let sent = match self.batch.pop_front() {
                        Some(Action::Send { id, message, .. }) => conn.send(&message, id),
                        Some(Action::Ping { payload, .. }) => conn.ping(&payload),
                        _ => unreachable!("the front was a Send or a Ping"),
                    };
                    progress = true;
                    if let Err(e) = sent {
                        self.reports.push((transport, TransportEvent::Closed(Err(e))));
                        self.conn = None;
                    }
                }
                Action::Close { transport, code, reason } => {
                    let (transport, code, reason) = (*transport, *code, reason.clone());
                    self.batch.pop_front();
                    progress = true;
                    if self.opening.as_ref().is_some_and(|o| o.id == transport) {
                        // Nothing to close gracefully yet: let go of it, and say it ended.
                        self.opening = None;
                        self.reports.push((transport, TransportEvent::Closed(Ok(None))));
                        continue;
                    }
                    // Written with the next flush; read until the server answers and closes.
                    if let Some(conn) = self.conn.take_if(|c| c.id == transport) {
                        self.closing.push(conn);
                    }
                    if let Some(conn) = self.closing.iter_mut().find(|c| c.id == transport) {
                        conn.close(code, reason);
                    }
                }
                Action::Abort { transport } => {
                    let transport = *transport;
                    self.batch.pop_front();
                    progress = true;
                    // Dropping an opening attempt resets its socket (armed until the handshake ends).
                    if self.opening.as_ref().is_some_and(|o| o.id == transport) {
                        self.opening = None;
                    }
                    if let Some(conn) = self.conn.take_if(|c| c.id == transport) {
                        conn.abort();
                    }
                    if let Some(i) = self.closing.iter().position(|c| c.id == transport) {
                        self.closing.swap_remove(i).abort();
                    }
                }
            }
        }
        progress
    }

    /// Flushes every connection that has written something since its last flush.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        let mut flush = |conn: &mut Conn<R>, reports: &mut Reports| {
            if !conn.needs_flush() {
                return true;
            }
            match conn.poll_flush(cx, reports) {
                Poll::Pending => true,
                Poll::Ready(Ok(())) => {
                    progress = true;
                    true
                }
                Poll::Ready(Err(e)) => {
                    progress = true;
                    // A closing connection's write error only ends it.
                    let end = if conn.is_closing() { Ok(None) } else { Err(e) };
                    reports.push((conn.id, TransportEvent::Closed(end)));
                    false
                }
            }
        };
        if let Some(conn) = &mut self.conn
            && !flush(conn, &mut self.reports)
        {
            self.conn = None;
        }
        if !self.closing.is_empty() {
            self.closing.retain_mut(|conn| flush(conn, &mut self.reports));
        }
        progress
    }

    /// The core phase. Returns (actions taken, next deadline, whether the session is over, the time
    /// it ran at).
    fn run_core(&mut self, cx: &Context<'_>) -> (bool, Option<Instant>, bool, Instant) {
        // The round's one clock read.
        let now = self.rt.now();
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
        }
        let wants_receipts = self.shared.wants_receipts();
        let mut unblocked = false;
        let outcomes = &mut self.outcomes;
        let mut inspect = |e: &Event| match e {
            Event::Outcome { id, outcome } if wants_receipts => outcomes.push((*id, *outcome)),
            Event::QueueUnblocked => unblocked = true,
            _ => {}
        };
        let dry = if self.shared.wants_requests() {
            // Responses go to their requests, not to the event stream (see `request`).
            let mut requests = self.shared.requests();
            let answers = &mut self.answers;
            let dry = self.shared.events.push_routed(&mut s, |e| route(&mut requests, answers, e), &mut inspect);
            let state = s.state();
            for (id, answer) in self.answers.drain(..) {
                let answer = answer.map_err(|outcome| RequestError::from_outcome(outcome, state));
                if let Some(tx) = self.shared.take_request(&mut requests, id) {
                    self.answered.push((tx, answer));
                }
            }
            dry
        } else {
            self.shared.events.push_from(&mut s, inspect)
        };
        let deadline = s.poll_timeout();
        let over = dry && matches!(s.state(), State::Closed | State::Failed);
        drop(s);
        for (tx, answer) in self.answered.drain(..) {
            let _ = tx.send(answer);
        }
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
                // Closed or failed, and every event handed over: carry out what the core asked last
                // (a close frame that fails the connection, say), try one flush, release the
                // connections (closed, not reset: a close frame may still be on its way) and stop.
                this.write_batch(cx);
                this.poll_flush(cx);
                this.conn = None;
                this.closing.clear();
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

/// Routes one event while requests are pending: a response to a pending request is taken off the
/// stream (and noted in `answers`), and so is noted the outcome of a request that ended without one
/// (its event stays on the stream, as every message's outcome does). Everything else passes.
fn route(requests: &mut Pending, answers: &mut Vec<(MessageId, Result<Message, Outcome>)>, e: Event) -> Option<Event> {
    match e {
        Event::Response { id, message } if requests.contains_key(&id) => {
            answers.push((id, Ok(message)));
            None
        }
        Event::Outcome { id, outcome } if requests.contains_key(&id) => {
            // An `Acked` right after the response it answers (the core reports them together) is no news.
            if answers.last().is_none_or(|(a, _)| *a != id) {
                answers.push((id, Err(outcome)));
            }
            Some(e)
        }
        e => Some(e),
    }
}

impl<R: Runtime> Drop for Driver<R> {
    /// A driver dropped before it finished (its runtime shut down): end the event stream and wake every
    /// waiter, so nobody waits forever on a client that can no longer make progress.
    fn drop(&mut self) {
        self.shared.finish();
    }
}
