//! The outgoing message queue: bounded, FIFO across reconnects, with explicit overflow and expiry.
//!
//! A message is *pending* until it is handed to a transport, then *in flight* until the transport reports
//! it flushed. A tracked message (see [`crate::acks`]) is then *awaiting* its acknowledgement: its copy
//! lives in the ack table, but it is counted here. All three count against the limits, since all three
//! hold memory. Every message that enters leaves with exactly one [`Outcome`], reported through the
//! `out` callback of the method that ends it, or (for tracked messages the session ends itself) by the
//! session.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::acks::{Fate, Redelivery};
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
    /// Flushed tracked messages waiting for their acknowledgement, and their bytes.
    awaiting: usize,
    awaiting_bytes: usize,
    /// A send was refused for lack of room and no `QueueUnblocked` has been emitted since.
    blocked: bool,
}

impl Queue {
    pub(crate) fn len(&self) -> usize {
        self.pending.len() + self.in_flight.len() + self.awaiting
    }

    pub(crate) fn bytes(&self) -> usize {
        self.pending_bytes + self.in_flight_bytes + self.awaiting_bytes
    }

    /// Flushed tracked messages waiting for their acknowledgement.
    pub(crate) fn awaiting_len(&self) -> usize {
        self.awaiting
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
            let could_fit = cfg.overflow == Overflow::DropOldest
                && self.fits(
                    cfg,
                    self.in_flight.len() + self.awaiting,
                    self.in_flight_bytes + self.awaiting_bytes,
                    len,
                );
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

    /// Reports every in-flight message up to `through` as flushed, with its length; `out` returns true
    /// for a tracked one, which then stays counted as awaiting its acknowledgement.
    #[inline]
    pub(crate) fn flushed(&mut self, through: MessageId, out: &mut impl FnMut(MessageId, usize) -> bool) {
        while let Some(f) = self.in_flight.front() {
            if f.id > through {
                break;
            }
            let f = self.in_flight.pop_front().expect("front exists");
            self.in_flight_bytes -= f.len;
            if self.kept.front().is_some_and(|k| k.id == f.id) {
                self.kept.pop_front();
            }
            if out(f.id, f.len) {
                self.awaiting += 1;
                self.awaiting_bytes += f.len;
            }
        }
    }

    /// `count` awaiting messages of `bytes` in all left that stage (acknowledged, timed out, or put back
    /// in line by [`Queue::transport_lost`], which counts them again as pending).
    pub(crate) fn release_awaiting(&mut self, count: usize, bytes: usize) {
        self.awaiting = self.awaiting.saturating_sub(count);
        self.awaiting_bytes = self.awaiting_bytes.saturating_sub(bytes);
    }

    /// Removes pending message `id` (a tracked one acknowledged, timed out or cancelled while it waited
    /// in line); false if it is not pending. Pending ids are in increasing order.
    pub(crate) fn remove_pending(&mut self, id: MessageId) -> bool {
        let Ok(i) = self.pending.binary_search_by_key(&id, |p| p.id) else { return false };
        if let Some(p) = self.pending.remove(i) {
            self.pending_bytes -= p.msg.len();
        }
        true
    }

    /// Forgets in-flight message `id` (a tracked one ended before its flush was reported): its flush,
    /// when reported, is then nobody's; false if it is not in flight.
    pub(crate) fn forget_in_flight(&mut self, id: MessageId) -> bool {
        let Ok(i) = self.in_flight.binary_search_by_key(&id, |f| f.id) else { return false };
        if let Some(f) = self.in_flight.remove(i) {
            self.in_flight_bytes -= f.len;
        }
        if let Ok(k) = self.kept.binary_search_by_key(&id, |k| k.id) {
            self.kept.remove(k);
        }
        true
    }

    /// The transport died. Each in-flight message meets its [`Fate`]: an untracked one is requeued at
    /// the head if a copy was kept ([`InFlightPolicy::Requeue`]), else abandoned; a tracked one is left
    /// to the ack table (whose copies come back in `redeliver`, oldest first) or abandoned. The
    /// abandoned ones are pushed onto `abandoned`, oldest first, for the caller to report. The requeued and redelivered messages
    /// go back onto the head together, in id order (they are all older than the other pending ones:
    /// everything handed out came from the head). Returns how many: they are now the first ones of
    /// [`Queue::pending_ids`].
    pub(crate) fn transport_lost(
        &mut self,
        fate: impl Fn(MessageId) -> Fate,
        redeliver: Vec<Redelivery>,
        abandoned: &mut Vec<MessageId>,
    ) -> usize {
        let mut back: Vec<Pending> = Vec::new();
        let mut redeliver = redeliver.into_iter().peekable();
        for f in self.in_flight.drain(..) {
            // The kept copies are a subsequence of the in-flight messages, in the same order.
            let kept = if self.kept.front().is_some_and(|k| k.id == f.id) { self.kept.pop_front() } else { None };
            match (fate(f.id), kept) {
                (Fate::Untracked, Some(k)) => {
                    // Older redelivered messages go first.
                    while let Some(r) = redeliver.next_if(|r| r.id < k.id) {
                        back.push(Pending { id: r.id, msg: r.message, expires_at: r.expires_at });
                    }
                    back.push(Pending { id: k.id, msg: k.msg, expires_at: k.expires_at });
                }
                (Fate::Untracked | Fate::Abandon, _) => abandoned.push(f.id),
                (Fate::Redeliver, _) => {}
            }
        }
        back.extend(redeliver.map(|r| Pending { id: r.id, msg: r.message, expires_at: r.expires_at }));
        self.kept.clear();
        self.in_flight_bytes = 0;
        // Back onto the front newest first, so the original order is restored.
        let count = back.len();
        while let Some(p) = back.pop() {
            self.pending_bytes += p.msg.len();
            self.pending.push_front(p);
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
        // The session ends the awaiting ones (their copies are in the ack table) before this.
        self.awaiting = 0;
        self.awaiting_bytes = 0;
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
