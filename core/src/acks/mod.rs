//! Acknowledged messages: delivery past the socket, at least once.
//!
//! A WebSocket has no receipt: [`Outcome::Sent`](crate::Outcome::Sent) means "flushed to the local
//! socket", and a message flushed into a connection whose server dies a moment later is `Sent` and
//! lost. Most application protocols have an acknowledgement of their own (JSON-RPC responses, order
//! ids, chat message ids with server acks); a *tracked* message uses it.
//!
//! # The rules
//!
//! * A tracked message is sent with a key ([`AckKey`], chosen by the application:
//!   [`Session::send_tracked`](crate::Session::send_tracked)). It goes through the queue like any other
//!   message (same order, same limits, same TTL), but its flush does not end it: it then waits for its
//!   acknowledgement, [`Session::ack`](crate::Session::ack) with its key, or a data message the driver's
//!   correlation function matched to its key ([`Frame::Correlated`](crate::Frame::Correlated)). That
//!   ends it with [`Outcome::Acked`](crate::Outcome::Acked). Untracked messages are unchanged.
//! * **An acknowledgement counts only for a message sent on some connection** (handed to a transport at
//!   least once): an ack for a key that is unknown, already acknowledged (a key is forgotten once its
//!   message ends), or whose message has never left the queue is ignored and counted in
//!   [`Stats::acks_unknown`](crate::Stats::acks_unknown). Never a panic, never an error.
//! * **A lost connection redelivers.** The tracked messages handed to it and not yet acknowledged
//!   (written, flushed or not) go back to the head of the queue and are sent again first on the next
//!   connection, after the preamble and before the backlog, in their original order (merged, by id,
//!   with messages requeued by [`InFlightPolicy::Requeue`](crate::InFlightPolicy::Requeue)). Each is
//!   reported with [`Event::Redelivered`](crate::Event::Redelivered): the server may see it twice, and
//!   the key lets it drop the duplicate. A message tracked with
//!   [`Tracking::redeliver(false)`](Tracking::redeliver) (a request that is not idempotent) ends
//!   [`Abandoned`](crate::Outcome::Abandoned) instead; not yet handed out, it stays queued like any other.
//! * **Nothing acknowledged is sent again**, and an acknowledgement that arrives while the message waits
//!   in the queue for its redelivery ends it there.
//! * **A window** ([`AckConfig::max_messages`], [`AckConfig::max_bytes`]) bounds the tracked messages
//!   accepted and not yet ended. When it is full, `send_tracked` refuses with
//!   [`SendError::Full`](crate::SendError::Full) exactly like a full queue, and
//!   [`Event::QueueUnblocked`](crate::Event::QueueUnblocked) says when there is room again. Untracked
//!   sends are not affected by the window. Flushed messages waiting for their acknowledgement also count
//!   against the queue's own limits ([`QueueConfig`](crate::QueueConfig)), so those limits bound
//!   everything the session holds, and a lost connection that puts them back in line never overfills
//!   the queue.
//! * **The ack timeout** ([`AckConfig::timeout`], off by default) runs from `send_tracked`: a tracked
//!   message not acknowledged within it ends [`Outcome::TimedOut`](crate::Outcome::TimedOut), wherever
//!   it is (queued, being written, waiting): it is never sent again, and the server may or may not have
//!   it. It bounds the whole journey, outages included, which is what a caller waiting for an answer
//!   wants (it is the per-request timeout of request/response). Resending on the same connection instead
//!   would only duplicate what TCP already retransmits; a new connection redelivers anyway.
//! * **Every tracked message ends with exactly one outcome**: `Acked`, or a failure that says where it
//!   got to: `TimedOut`, `Abandoned` (handed to a transport, not acknowledged: the session closed or
//!   failed, it was cancelled with [`Session::cancel`](crate::Session::cancel), or it was not to be
//!   redelivered), `Aborted` (never handed to a transport), `Dropped` or `Expired` (queue policies, as for
//!   any message).
//! * **Closing with [`CloseMode::Drain`](crate::CloseMode::Drain)** waits, within the close timeout, for
//!   the acknowledgements of tracked messages already handed out before it sends the close frame.
//!
//! # What `Acked` promises, and what it cannot
//!
//! `Acked` means the server (or whatever the application's acknowledgement stands for) said it has the
//! message. It is as strong as the server's acknowledgement and no stronger: a server that acknowledges
//! before it has persisted (or processed) the message can still lose it. Acknowledge after persisting.
//! Redelivery makes delivery at-least-once: a server that must not apply a message twice uses the key to
//! drop duplicates (they happen for messages it received but had not acknowledged when the connection
//! was lost).

mod key;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use key::AckKey;

use crate::timer::after;
use crate::{Message, MessageId};

/// Settings of tracked messages. See each field for its default; build from [`Default`] and the
/// chainable setters (`AckConfig::default().timeout(Some(d))`), or set fields on a default value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AckConfig {
    /// Most tracked messages accepted and not yet ended (the window). Default: 1024.
    pub max_messages: usize,
    /// Most payload bytes of those messages. Default: 1 MiB.
    pub max_bytes: usize,
    /// A tracked message not acknowledged within this time after `send_tracked` ends as
    /// [`Outcome::TimedOut`](crate::Outcome::TimedOut). Default: `None` (it waits until acknowledged, or
    /// until the session closes or fails).
    pub timeout: Option<Duration>,
}

impl Default for AckConfig {
    fn default() -> Self {
        Self { max_messages: 1024, max_bytes: 1 << 20, timeout: None }
    }
}

/// How a message is tracked: its key, and whether it may be sent again after a lost connection.
///
/// ```
/// use tether_core::Tracking;
/// let order = Tracking::new("order-17"); // redelivered after a lost connection
/// let payment = Tracking::new(18u64).redeliver(false); // ends Abandoned instead
/// assert!(order.redelivers() && !payment.redelivers());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tracking {
    /// The key its acknowledgement will carry.
    pub key: AckKey,
    /// Whether it is sent again on the next connection when the one it was handed to is lost before
    /// its acknowledgement. Default: `true` (at-least-once; the server drops duplicates by key). `false`
    /// for what must not be applied twice and cannot be deduplicated: it then ends
    /// [`Outcome::Abandoned`](crate::Outcome::Abandoned).
    pub redeliver: bool,
}

impl Tracking {
    /// Tracked under `key`, redelivered after a lost connection.
    pub fn new(key: impl Into<AckKey>) -> Self {
        Self { key: key.into(), redeliver: true }
    }

    /// Sets [`redeliver`](Self::redeliver).
    #[must_use = "a setter returns the changed value"]
    pub fn redeliver(mut self, redeliver: bool) -> Self {
        self.redeliver = redeliver;
        self
    }

    /// Whether it is redelivered after a lost connection.
    pub fn redelivers(&self) -> bool {
        self.redeliver
    }
}

impl<K: Into<AckKey>> From<K> for Tracking {
    fn from(key: K) -> Self {
        Tracking::new(key)
    }
}

/// Where a tracked message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// In the queue's pending line: never handed out (`sent: false`), or waiting for its redelivery.
    Queued { sent: bool },
    /// Handed to the current transport, its flush not yet reported.
    InFlight,
    /// Flushed, waiting for its acknowledgement (held here, counted by the queue as awaiting).
    Awaiting,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) key: AckKey,
    /// A copy for redelivery (a reference count, not a copy of the payload).
    pub(crate) message: Message,
    pub(crate) expires_at: Option<Instant>,
    deadline: Option<Instant>,
    pub(crate) stage: Stage,
    redeliver: bool,
}

/// What the queue does with an in-flight message whose transport was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Not tracked: the in-flight policy decides (requeue its kept copy, or abandon it).
    Untracked,
    /// Tracked and redelivered: the queue lets go of it, the ack table puts its copy back in line.
    Redeliver,
    /// Tracked, not to be redelivered: abandoned, even under `InFlightPolicy::Requeue`.
    Abandon,
}

/// A tracked message to put back in line after a lost connection.
#[derive(Debug)]
pub(crate) struct Redelivery {
    pub(crate) id: MessageId,
    pub(crate) message: Message,
    pub(crate) expires_at: Option<Instant>,
}

/// The tracked messages not yet ended, by id (so by acceptance time, so by ack deadline), and the keys
/// in use. Ordered maps: no hasher seeded from the OS, and iteration in id order, so the same inputs
/// give the same outputs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Acks {
    entries: BTreeMap<MessageId, Entry>,
    keys: BTreeMap<AckKey, MessageId>,
    bytes: usize,
    /// A tracked send was refused for lack of window and no `QueueUnblocked` has been emitted since: the
    /// size of the smallest message refused, which must fit before the window counts as unblocked (room
    /// for a smaller one would only wake a sender to be refused again).
    blocked: Option<usize>,
}

impl Acks {
    /// Tracked messages held (every stage).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Their payload bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn contains_key(&self, key: &AckKey) -> bool {
        self.keys.contains_key(key)
    }

    /// Whether `id` is tracked. Cheap when nothing is.
    #[inline]
    pub(crate) fn is_tracked(&self, id: MessageId) -> bool {
        !self.entries.is_empty() && self.entries.contains_key(&id)
    }

    /// Whether a tracked message of `len` bytes fits the window; if not, remembers the refusal.
    pub(crate) fn admit(&mut self, cfg: &AckConfig, len: usize) -> bool {
        let fits = self.fits(cfg, len);
        if !fits {
            self.blocked = Some(self.blocked.map_or(len, |b| b.min(len)));
        }
        fits
    }

    fn fits(&self, cfg: &AckConfig, len: usize) -> bool {
        self.entries.len() < cfg.max_messages && self.bytes.saturating_add(len) <= cfg.max_bytes
    }

    /// Starts tracking `message`, accepted at `now` under `id`; `expires_at` is its queue TTL.
    pub(crate) fn insert(
        &mut self,
        cfg: &AckConfig,
        now: Instant,
        id: MessageId,
        tracking: Tracking,
        message: Message,
        expires_at: Option<Instant>,
    ) {
        self.bytes += message.len();
        self.keys.insert(tracking.key.clone(), id);
        let deadline = cfg.timeout.map(|t| after(now, t));
        let stage = Stage::Queued { sent: false };
        self.entries.insert(
            id,
            Entry { key: tracking.key, message, expires_at, deadline, stage, redeliver: tracking.redeliver },
        );
    }

    /// The message was handed to a transport.
    #[inline]
    pub(crate) fn handed(&mut self, id: MessageId) {
        if self.entries.is_empty() {
            return;
        }
        if let Some(e) = self.entries.get_mut(&id) {
            e.stage = Stage::InFlight;
        }
    }

    /// The message was reported flushed: a tracked one now waits for its acknowledgement (true).
    #[inline]
    pub(crate) fn flushed(&mut self, id: MessageId) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        match self.entries.get_mut(&id) {
            Some(e) => {
                e.stage = Stage::Awaiting;
                true
            }
            None => false,
        }
    }

    /// The id of the message `key` acknowledges, if it is one that can be: tracked, and sent on some
    /// connection.
    pub(crate) fn ackable(&self, key: &AckKey) -> Option<MessageId> {
        let id = *self.keys.get(key)?;
        let sent = self.entries.get(&id).is_some_and(|e| e.stage != Stage::Queued { sent: false });
        sent.then_some(id)
    }

    /// Where tracked message `id` is.
    pub(crate) fn stage(&self, id: MessageId) -> Option<Stage> {
        self.entries.get(&id).map(|e| e.stage)
    }

    /// The id tracked under `key`, whatever its stage.
    pub(crate) fn id_of(&self, key: &AckKey) -> Option<MessageId> {
        self.keys.get(key).copied()
    }

    /// Stops tracking `id` (it ended); returns its entry.
    pub(crate) fn remove(&mut self, id: MessageId) -> Option<Entry> {
        if self.entries.is_empty() {
            return None;
        }
        let e = self.entries.remove(&id)?;
        self.keys.remove(&e.key);
        self.bytes -= e.message.len();
        Some(e)
    }

    /// The earliest ack deadline: the oldest message's (one timeout for all, and ids grow with time).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries.first_key_value().and_then(|(_, e)| e.deadline)
    }

    /// Removes and returns, oldest first, the messages whose ack deadline has passed at `now`.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<(MessageId, Entry)> {
        let mut due = Vec::new();
        while self.next_deadline().is_some_and(|d| d <= now) {
            let Some((id, e)) = self.entries.pop_first() else { break };
            self.keys.remove(&e.key);
            self.bytes -= e.message.len();
            due.push((id, e));
        }
        due
    }

    /// What becomes of in-flight message `id` when its transport is lost (asked by the queue).
    #[inline]
    pub(crate) fn fate(&self, id: MessageId) -> Fate {
        match self.entries.get(&id) {
            _ if self.entries.is_empty() => Fate::Untracked,
            None => Fate::Untracked,
            Some(e) if e.redeliver => Fate::Redeliver,
            Some(_) => Fate::Abandon,
        }
    }

    /// The connection was lost. The messages handed to it that are to be redelivered are returned,
    /// oldest first, their stage back to queued. Those not to be redelivered that had been flushed are
    /// removed and pushed onto `lost`; their in-flight fellows are abandoned by the queue (see
    /// [`Acks::fate`]). Returns too how many messages, and bytes, left the awaiting stage.
    pub(crate) fn take_redeliveries(&mut self, lost: &mut Vec<(MessageId, Entry)>) -> (Vec<Redelivery>, usize, usize) {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        let (mut left, mut left_bytes) = (0, 0);
        for (id, e) in &mut self.entries {
            if e.stage == Stage::Awaiting {
                left += 1;
                left_bytes += e.message.len();
            }
            match (e.stage, e.redeliver) {
                (Stage::Queued { .. }, _) => {}
                (_, true) => {
                    out.push(Redelivery { id: *id, message: e.message.clone(), expires_at: e.expires_at });
                    e.stage = Stage::Queued { sent: true };
                }
                (Stage::Awaiting, false) => gone.push(*id),
                (Stage::InFlight, false) => {}
            }
        }
        for id in gone {
            if let Some(e) = self.remove(id) {
                lost.push((id, e));
            }
        }
        (out, left, left_bytes)
    }

    /// Removes and returns, oldest first, the messages sent on some connection that are in line for
    /// their redelivery, and (`awaiting`) those waiting for their acknowledgement.
    pub(crate) fn take_sent(&mut self, awaiting: bool) -> Vec<(MessageId, Entry)> {
        let ids: Vec<MessageId> = self
            .entries
            .iter()
            .filter(|(_, e)| e.stage == Stage::Queued { sent: true } || (awaiting && e.stage == Stage::Awaiting))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter().filter_map(|id| self.remove(id).map(|e| (id, e))).collect()
    }

    /// Whether a message has been handed out and not acknowledged yet (in flight or awaiting).
    pub(crate) fn any_outstanding(&self) -> bool {
        self.entries.values().any(|e| matches!(e.stage, Stage::InFlight | Stage::Awaiting))
    }

    /// Edge trigger: true once after a refusal, when the window has room for the message refused
    /// (the smallest one, if several were).
    #[inline]
    pub(crate) fn take_unblocked(&mut self, cfg: &AckConfig) -> bool {
        match self.blocked {
            Some(len) if self.fits(cfg, len) => {
                self.blocked = None;
                true
            }
            _ => false,
        }
    }
}
