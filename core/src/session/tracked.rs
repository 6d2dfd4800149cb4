//! Acknowledged messages in the session: the commands ([`Session::send_tracked`], [`Session::ack`],
//! [`Session::cancel`]) and the transitions they go through when an acknowledgement arrives, a deadline
//! passes, a connection is lost or the session ends. The rules are in [`crate::acks`].

use std::time::Instant;

use super::Session;
use crate::acks::{AckKey, Entry, Stage, Tracking};
use crate::{Event, Message, MessageId, Outcome, SendError, State};

impl Session {
    /// Accepts a message that is done only when acknowledged: it is sent like any other, then waits for
    /// [`ack`](Self::ack) with its key (or a [`Frame::Correlated`](crate::Frame::Correlated) carrying it)
    /// and ends [`Outcome::Acked`]; a lost connection sends it again first on the next one (unless
    /// `tracking` says not to). See [`crate::acks`] for the rules.
    ///
    /// `tracking` is a key (`"order-17"`, `17u64`, anything [`Into<AckKey>`]) or a [`Tracking`].
    /// Refused, with the message handed back: a key already waiting for its acknowledgement
    /// ([`SendError::DuplicateKey`]), a full window or queue ([`SendError::Full`]), and whatever
    /// [`send`](Self::send) refuses.
    ///
    /// Unlike for `send`, `now` matters whenever an ack timeout is configured: the deadline runs from it.
    pub fn send_tracked(
        &mut self,
        now: Instant,
        message: Message,
        tracking: impl Into<Tracking>,
    ) -> Result<MessageId, SendError> {
        let now = self.clamp(now);
        let tracking = tracking.into();
        let state = self.state();
        let refusal = if matches!(state, State::Closing | State::Closed | State::Failed) {
            Some(SendError::Inactive { message, state })
        } else if self.acks.contains_key(&tracking.key) {
            Some(SendError::DuplicateKey { message, key: tracking.key.clone() })
        } else if message.len() > self.cfg.acks.max_bytes {
            Some(SendError::TooLarge { message, max_bytes: self.cfg.acks.max_bytes })
        } else if !self.acks.admit(&self.cfg.acks, message.len()) {
            Some(SendError::Full(message))
        } else {
            return self.accept(now, message, Some(tracking));
        };
        self.report.stats.messages_refused += 1;
        refusal.map_or_else(|| unreachable!("a refusal was chosen"), Err)
    }

    /// Acknowledges the tracked message sent with `key`: it ends [`Outcome::Acked`], wherever it is (an
    /// acknowledgement can overtake the report of the flush, or arrive while the message waits to be
    /// redelivered). Returns its id.
    ///
    /// `None`, counted in [`Stats::acks_unknown`](crate::Stats::acks_unknown) and otherwise ignored, if
    /// no tracked message with this key has been sent on a connection: the key is unknown, its message
    /// has already ended (a duplicate acknowledgement), or it has not left the queue yet (so this
    /// cannot be its acknowledgement).
    pub fn ack(&mut self, now: Instant, key: &AckKey) -> Option<MessageId> {
        self.clamp(now);
        let id = self.acknowledge(key);
        self.settle();
        id
    }

    /// Gives up on the tracked message sent with `key` (its caller no longer waits: a dropped request):
    /// it ends now, [`Outcome::Aborted`] if it had never been handed to a transport (it will not be),
    /// else [`Outcome::Abandoned`] (the server may have it). Returns its id; `None` if no tracked message
    /// has this key.
    pub fn cancel(&mut self, now: Instant, key: &AckKey) -> Option<MessageId> {
        self.clamp(now);
        let id = self.acks.id_of(key)?;
        let outcome = match self.acks.stage(id) {
            Some(Stage::Queued { sent: false }) => Outcome::Aborted,
            _ => Outcome::Abandoned,
        };
        self.end_tracked(id, outcome);
        self.settle();
        Some(id)
    }

    // ----- transitions ---------------------------------------------------------------------------

    /// Ends the message `key` acknowledges, if it can; else counts the acknowledgement as unknown.
    pub(super) fn acknowledge(&mut self, key: &AckKey) -> Option<MessageId> {
        let Some(id) = self.acks.ackable(key) else {
            self.report.stats.acks_unknown += 1;
            return None;
        };
        self.end_tracked(id, Outcome::Acked);
        Some(id)
    }

    /// A data message in which the driver found `key`: the response of the tracked message it
    /// acknowledges (reported just before its outcome), or an ordinary message.
    pub(super) fn on_correlated(&mut self, key: AckKey, message: Message) {
        match self.acks.ackable(&key) {
            Some(id) => {
                self.report.push(Event::Response { id, message });
                self.end_tracked(id, Outcome::Acked);
            }
            None => {
                self.report.stats.acks_unknown += 1;
                self.report.push(Event::Message(message));
            }
        }
    }

    /// Ends tracked message `id` with `outcome`, taking it out of wherever it is.
    fn end_tracked(&mut self, id: MessageId, outcome: Outcome) {
        if let Some(e) = self.acks.remove(id) {
            self.release_tracked(id, &e);
            self.report.outcome(id, outcome);
        }
    }

    /// Takes a tracked message the ack table no longer holds out of the queue's books.
    fn release_tracked(&mut self, id: MessageId, e: &Entry) {
        match e.stage {
            Stage::Queued { .. } => {
                self.queue.remove_pending(id);
            }
            Stage::InFlight => {
                self.queue.forget_in_flight(id);
            }
            Stage::Awaiting => self.queue.release_awaiting(1, e.message.len()),
        }
    }

    /// The ack deadlines due at `now`: those messages end `TimedOut`, oldest first.
    pub(super) fn ack_timeouts(&mut self, now: Instant) {
        for (id, e) in self.acks.take_due(now) {
            self.release_tracked(id, &e);
            self.report.outcome(id, Outcome::TimedOut);
        }
    }

    /// The current transport was lost: its in-flight messages meet their fate (requeued, redelivered or
    /// abandoned, see `Queue::transport_lost`), and the flushed tracked messages still waiting for their
    /// acknowledgement go back in line with them (or, not to be redelivered, end `Abandoned`).
    pub(super) fn settle_in_flight(&mut self, now: Instant) {
        let mut lost = Vec::new();
        let (redeliver, left, left_bytes) = self.acks.take_redeliveries(&mut lost);
        self.queue.release_awaiting(left, left_bytes);
        for (id, _) in lost {
            self.report.outcome(id, Outcome::Abandoned);
        }
        let mut abandoned = Vec::new();
        let acks = &self.acks;
        let back = self.queue.transport_lost(|id| acks.fate(id), redeliver, &mut abandoned);
        for id in abandoned {
            self.acks.remove(id);
            self.report.outcome(id, Outcome::Abandoned);
        }
        for id in self.queue.pending_ids().take(back) {
            if self.acks.is_tracked(id) {
                self.report.stats.messages_redelivered += 1;
                self.report.events.push_back(Event::Redelivered { id });
            } else {
                self.report.stats.messages_requeued += 1;
                self.report.events.push_back(Event::Requeued { id });
            }
        }
        // A requeued message whose TTL passed while it was in flight must not be sent again, and must not
        // leave a deadline in the past at the head of the queue.
        self.queue.expire(now, &mut self.report.sink(&mut self.acks));
    }

    /// The session closes or fails: tracked messages sent on some connection and not acknowledged
    /// (waiting for their acknowledgement, or in line for their redelivery) end `Abandoned`, before the
    /// queue ends the rest (in flight: `Abandoned`; never sent: `Aborted`).
    pub(super) fn abandon_sent(&mut self) {
        self.abandon_sent_where(true);
    }

    /// A close with `CloseMode::Abort`: what waits in line is aborted, except tracked messages sent
    /// before (in line for their redelivery), which end `Abandoned`: the server may have them. Those
    /// waiting for their acknowledgement keep waiting while the close handshake runs.
    pub(super) fn abort_queued(&mut self) {
        self.abandon_sent_where(false);
        self.queue.abort_pending(&mut self.report.sink(&mut self.acks));
    }

    fn abandon_sent_where(&mut self, awaiting: bool) {
        for (id, e) in self.acks.take_sent(awaiting) {
            self.release_tracked(id, &e);
            self.report.outcome(id, Outcome::Abandoned);
        }
    }

    /// Whether a close that drains must still wait: tracked messages handed out and not acknowledged.
    pub(super) fn awaiting_acks(&self) -> bool {
        self.acks.any_outstanding()
    }
}
