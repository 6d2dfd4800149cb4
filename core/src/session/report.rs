//! What the session reports: events for the application and the counters, with the one place where a
//! message's outcome is recorded.

use std::collections::VecDeque;

use crate::acks::Acks;
use crate::{Event, MessageId, Outcome, Stats};

#[derive(Debug, Clone, Default)]
pub(super) struct Report {
    pub(super) events: VecDeque<Event>,
    pub(super) stats: Stats,
}

impl Report {
    /// Records how a message ended: counted by kind, and told to the application.
    #[inline]
    pub(super) fn outcome(&mut self, id: MessageId, outcome: Outcome) {
        let s = &mut self.stats;
        match outcome {
            Outcome::Sent => {}
            Outcome::Dropped => s.messages_dropped += 1,
            Outcome::Expired => s.messages_expired += 1,
            Outcome::Abandoned => s.messages_abandoned += 1,
            Outcome::Aborted => s.messages_aborted += 1,
            Outcome::Acked => s.messages_acked += 1,
            Outcome::TimedOut => s.messages_timed_out += 1,
        }
        self.events.push_back(Event::Outcome { id, outcome });
    }

    /// The sink the queue reports outcomes through; a tracked message that ends there is forgotten by
    /// the ack table too.
    #[inline]
    pub(super) fn sink<'a>(&'a mut self, acks: &'a mut Acks) -> impl FnMut(MessageId, Outcome) + 'a {
        move |id, outcome| {
            acks.remove(id);
            self.outcome(id, outcome)
        }
    }

    /// A message reported flushed: counted as sent with its payload length. An untracked one ends
    /// `Sent`; a tracked one now waits for its acknowledgement (true).
    #[inline]
    pub(super) fn flushed(&mut self, acks: &mut Acks, id: MessageId, len: usize) -> bool {
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += len as u64;
        if acks.flushed(id) {
            return true;
        }
        self.outcome(id, Outcome::Sent);
        false
    }

    pub(super) fn push(&mut self, event: Event) {
        self.events.push_back(event);
    }
}
