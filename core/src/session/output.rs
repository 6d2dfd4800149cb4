//! What the session gives out: actions for the driver, events for the application, and when to call it
//! again; one at a time or in batches.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Session, record_outcome};
use crate::timer::min_opt;
use crate::{Action, Event, State};

impl Session {
    /// The next thing for the driver to do. Call until `None` after every input.
    ///
    /// Data messages are handed out lazily, one per call, in FIFO order (the preamble first on every new
    /// transport), so the driver's write buffer applies backpressure simply by not calling this.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(a) = self.actions.pop_front() {
            return Some(a);
        }
        let transport = self.transport?;
        let draining = match (&self.state, &self.close) {
            (State::Connected, _) => false,
            (State::Closing, Some(c)) if !c.sent => true,
            _ => return None,
        };
        if let Some(message) = self.preamble.get(self.preamble_sent) {
            self.preamble_sent += 1;
            // Counted as sent when the driver reports it flushed, like every other message.
            self.preamble_unflushed.push_back(message.len());
            return Some(Action::Send { transport, id: None, message: message.clone() });
        }
        let (events, stats) = (&mut self.events, &mut self.stats);
        let next = self.queue.pop_for_send(&self.cfg.queue, self.last_now, &mut |id, outcome| {
            record_outcome(events, stats, id, outcome)
        });
        // Expired heads may have made room.
        self.after_input();
        if let Some((id, message)) = next {
            return Some(Action::Send { transport, id: Some(id), message });
        }
        if draining {
            let close = self.close.as_mut()?;
            close.sent = true;
            return Some(Action::Close { transport, code: close.code, reason: close.reason.clone() });
        }
        None
    }

    /// Moves up to `max` actions to the back of `into`, exactly those that as many calls of
    /// [`poll_action`](Self::poll_action) would return, in the same order; returns how many.
    ///
    /// For drivers that write in batches: while connected, queued messages are handed out in a tight
    /// loop instead of one call each.
    pub fn drain_actions(&mut self, into: &mut VecDeque<Action>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let plain =
                self.actions.is_empty() && self.state == State::Connected && self.preamble_sent >= self.preamble.len();
            if let (true, Some(transport)) = (plain, self.transport) {
                // What `poll_action` does in this state, without re-deciding the state per message.
                let (events, stats) = (&mut self.events, &mut self.stats);
                let next = self.queue.pop_for_send(&self.cfg.queue, self.last_now, &mut |id, outcome| {
                    record_outcome(events, stats, id, outcome)
                });
                self.after_input();
                let Some((id, message)) = next else { break };
                into.push_back(Action::Send { transport, id: Some(id), message });
            } else {
                let Some(a) = self.poll_action() else { break };
                into.push_back(a);
            }
            n += 1;
        }
        n
    }

    /// The next event for the application. Call until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Moves up to `max` events, oldest first, to the back of `into`; returns whether none are left.
    ///
    /// The same as calling [`poll_event`](Self::poll_event) up to `max` times, for drivers that hand
    /// events over in batches: when `into` is empty and everything fits, the two buffers are swapped
    /// instead of moving each event.
    pub fn drain_events(&mut self, into: &mut VecDeque<Event>, max: usize) -> bool {
        let n = self.events.len().min(max);
        if n == self.events.len() && into.is_empty() {
            std::mem::swap(into, &mut self.events);
        } else {
            into.extend(self.events.drain(..n));
        }
        self.events.is_empty()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do; `None`: nothing is
    /// scheduled. Depends only on the state, not on what has been drained. Never earlier than the latest
    /// `now` handled unless `handle_timeout` has not yet been called for it.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.timers.next();
        if let (Some(hb), Some(cfg), State::Connected) = (&self.heartbeat, &self.cfg.heartbeat, self.state) {
            next = min_opt(next, Some(hb.deadline(cfg)));
        }
        min_opt(next, self.queue.next_expiry())
    }
}
