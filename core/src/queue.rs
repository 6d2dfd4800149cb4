//! The outgoing message queue: bounded, FIFO across reconnects, with explicit overflow and expiry.
//!
//! A message is *pending* until it is handed to a transport, then *in flight* until the transport reports
//! it flushed. Both count against the limits, since both hold memory. Every message that enters leaves
//! with exactly one [`Outcome`], reported through the `out` callback of the method that ends it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::timer::after;
use crate::{Message, MessageId, Outcome};

/// What [`Session::send`](crate::Session::send) does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Refuse the new message and hand it back in the error; the caller decides (backpressure). When room
    /// appears again, [`Event::QueueUnblocked`](crate::Event::QueueUnblocked) is emitted once. The default.
    #[default]
    Reject,
    /// Accept the new message and drop the oldest pending ones to make room, each reported as
    /// [`Outcome::Dropped`]. For feeds where only recent data matters.
    DropOldest,
}

/// What happens to messages handed to a transport that died before confirming they were flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum InFlightPolicy {
    /// Report them as [`Outcome::Abandoned`]: at-most-once delivery. The default, because resending a
    /// message the server may already have (an order, a payment) must be the caller's choice.
    #[default]
    Abandon,
    /// Put them back at the head of the queue and send them first on the next connection (after the
    /// preamble): at-least-once delivery. Each is reported with [`Event::Requeued`](crate::Event::Requeued).
    Requeue,
}

/// Queue settings. See each field for its default; build from [`Default`] and the chainable setters
/// (`QueueConfig::default().max_messages(n)`), or set fields on a default value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Most messages held (pending and in flight). Default: 4096.
    pub max_messages: usize,
    /// Most payload bytes held (pending and in flight). Default: 4 MiB.
    pub max_bytes: usize,
    /// What to do when full. Default: [`Overflow::Reject`].
    pub overflow: Overflow,
    /// Messages not handed to a transport within this time after `send` are dropped as
    /// [`Outcome::Expired`] and never sent. Default: `None` (no expiry).
    pub ttl: Option<Duration>,
    /// Fate of unconfirmed in-flight messages when a transport dies. Default: [`InFlightPolicy::Abandon`].
    pub in_flight: InFlightPolicy,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_messages: 4096,
            max_bytes: 4 << 20,
            overflow: Overflow::Reject,
            ttl: None,
            in_flight: InFlightPolicy::Abandon,
        }
    }
}

/// Why the queue refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    TooLarge,
}

#[derive(Debug, Clone)]
struct Pending {
    id: MessageId,
    msg: Message,
    expires_at: Option<Instant>,
}

/// A message handed to the transport: 16 bytes, since every message passes through here.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    id: MessageId,
    len: usize,
}

/// The copy of an in-flight message kept under [`InFlightPolicy::Requeue`], to send again. Under
/// Abandon nothing is kept: the payload goes to the transport without a clone.
#[derive(Debug, Clone)]
struct Kept {
    id: MessageId,
    msg: Message,
    expires_at: Option<Instant>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Queue {
    pending: VecDeque<Pending>,
    in_flight: VecDeque<InFlight>,
    /// Copies of in-flight messages to requeue, in the same order (a subsequence of `in_flight`).
    kept: VecDeque<Kept>,
    pending_bytes: usize,
    in_flight_bytes: usize,
    /// A send was refused for lack of room and no `QueueUnblocked` has been emitted since.
    blocked: bool,
}

impl Queue {
    pub(crate) fn len(&self) -> usize {
        self.pending.len() + self.in_flight.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.pending_bytes + self.in_flight_bytes
    }

    pub(crate) fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// The earliest pending expiry. TTL is the same for all messages and ids grow with time, so the head
    /// expires first.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.pending.front().and_then(|p| p.expires_at)
    }

    fn fits(&self, cfg: &QueueConfig, count: usize, bytes: usize, len: usize) -> bool {
        count < cfg.max_messages && bytes.saturating_add(len) <= cfg.max_bytes
    }

    /// Accepts `msg` under `id`, or refuses it (handing it back). Evictions are reported through `out`.
    #[inline]
    pub(crate) fn push(
        &mut self,
        cfg: &QueueConfig,
        now: Instant,
        id: MessageId,
        msg: Message,
        out: &mut impl FnMut(MessageId, Outcome),
    ) -> Result<(), (Refusal, Message)> {
        let len = msg.len();
        if len > cfg.max_bytes {
            return Err((Refusal::TooLarge, msg));
        }
        if !self.fits(cfg, self.len(), self.bytes(), len) {
            // Evicting every pending message must make room, or nothing is evicted at all.
            let could_fit =
                cfg.overflow == Overflow::DropOldest && self.fits(cfg, self.in_flight.len(), self.in_flight_bytes, len);
            if !could_fit {
                self.blocked = true;
                return Err((Refusal::Full, msg));
            }
            while !self.fits(cfg, self.len(), self.bytes(), len) {
                let Some(old) = self.pending.pop_front() else { break };
                self.pending_bytes -= old.msg.len();
                out(old.id, Outcome::Dropped);
            }
        }
        let expires_at = cfg.ttl.map(|ttl| after(now, ttl));
        self.pending_bytes += len;
        self.pending.push_back(Pending { id, msg, expires_at });
        Ok(())
    }

    /// Takes the head for sending on a transport; it becomes in flight. Expired heads are reported.
    #[inline]
    pub(crate) fn pop_for_send(
        &mut self,
        cfg: &QueueConfig,
        now: Instant,
        out: &mut impl FnMut(MessageId, Outcome),
    ) -> Option<(MessageId, Message)> {
        self.expire(now, out);
        let p = self.pending.pop_front()?;
        let len = p.msg.len();
        self.pending_bytes -= len;
        self.in_flight_bytes += len;
        if cfg.in_flight == InFlightPolicy::Requeue {
            self.kept.push_back(Kept { id: p.id, msg: p.msg.clone(), expires_at: p.expires_at });
        }
        self.in_flight.push_back(InFlight { id: p.id, len });
        Some((p.id, p.msg))
    }

    /// Reports every in-flight message up to `through` as sent, with its length.
    #[inline]
    pub(crate) fn flushed(&mut self, through: MessageId, out: &mut impl FnMut(MessageId, usize)) {
        while let Some(f) = self.in_flight.front() {
            if f.id > through {
                break;
            }
            let f = self.in_flight.pop_front().expect("front exists");
            self.in_flight_bytes -= f.len;
            if self.kept.front().is_some_and(|k| k.id == f.id) {
                self.kept.pop_front();
            }
            out(f.id, f.len);
        }
    }

    /// The transport died: in-flight messages are requeued at the head (in order) or abandoned.
    /// Returns how many were requeued: they are now the first ones of [`Queue::pending_ids`].
    pub(crate) fn transport_lost(&mut self, out: &mut impl FnMut(MessageId, Outcome)) -> usize {
        // Those without a kept copy are abandoned, reported oldest first.
        let mut next_kept = 0;
        for f in self.in_flight.drain(..) {
            if self.kept.get(next_kept).is_some_and(|k| k.id == f.id) {
                next_kept += 1;
            } else {
                out(f.id, Outcome::Abandoned);
            }
        }
        self.in_flight_bytes = 0;
        // The kept ones go back onto the front newest first, so the original order is restored.
        let count = self.kept.len();
        while let Some(k) = self.kept.pop_back() {
            self.pending_bytes += k.msg.len();
            self.pending.push_front(Pending { id: k.id, msg: k.msg, expires_at: k.expires_at });
        }
        count
    }

    /// Ids of the pending messages, head first.
    pub(crate) fn pending_ids(&self) -> impl Iterator<Item = MessageId> + '_ {
        self.pending.iter().map(|p| p.id)
    }

    /// Reports and removes pending messages whose TTL has passed.
    #[inline]
    pub(crate) fn expire(&mut self, now: Instant, out: &mut impl FnMut(MessageId, Outcome)) {
        // Inlined check, out-of-line loop: every send and every hand-off asks, and without a TTL the
        // answer is always no.
        if self.next_expiry().is_some_and(|e| now >= e) {
            self.expire_due(now, out);
        }
    }

    fn expire_due(&mut self, now: Instant, out: &mut impl FnMut(MessageId, Outcome)) {
        while let Some(p) = self.pending.front() {
            if p.expires_at.is_none_or(|e| now < e) {
                break;
            }
            let p = self.pending.pop_front().expect("front exists");
            self.pending_bytes -= p.msg.len();
            out(p.id, Outcome::Expired);
        }
    }

    /// Ends every pending message as `Aborted`; in-flight ones keep waiting for their flush.
    pub(crate) fn abort_pending(&mut self, out: &mut impl FnMut(MessageId, Outcome)) {
        for p in self.pending.drain(..) {
            out(p.id, Outcome::Aborted);
        }
        self.pending_bytes = 0;
    }

    /// Ends every message: pending ones as `Aborted`, unconfirmed in-flight ones as `Abandoned`.
    pub(crate) fn abort_all(&mut self, out: &mut impl FnMut(MessageId, Outcome)) {
        // In-flight ids are all older than pending ones: report in id order.
        for f in self.in_flight.drain(..) {
            out(f.id, Outcome::Abandoned);
        }
        self.kept.clear();
        for p in self.pending.drain(..) {
            out(p.id, Outcome::Aborted);
        }
        self.in_flight_bytes = 0;
        self.pending_bytes = 0;
    }

    /// Edge trigger: true once after a refusal, when there is room for at least one small message again.
    pub(crate) fn take_unblocked(&mut self, cfg: &QueueConfig) -> bool {
        if self.blocked && self.fits(cfg, self.len(), self.bytes(), 0) {
            self.blocked = false;
            return true;
        }
        false
    }
}
