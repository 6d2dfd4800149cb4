//! What the session reports: events for the application and the counters, with the one place where a
//! message's outcome is recorded.

use std::collections::VecDeque;

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
        }
        self.events.push_back(Event::Outcome { id, outcome });
    }

    /// The sink the queue reports outcomes through.
    #[inline]
    pub(super) fn sink(&mut self) -> impl FnMut(MessageId, Outcome) + '_ {
        move |id, outcome| self.outcome(id, outcome)
    }

    /// A message reported flushed: counted as sent with its payload length, and its outcome recorded.
    #[inline]
    pub(super) fn sent(&mut self, id: MessageId, len: usize) {
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += len as u64;
        self.outcome(id, Outcome::Sent);
    }

    pub(super) fn push(&mut self, event: Event) {
        self.events.push_back(event);
    }
}
