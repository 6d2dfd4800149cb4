//! What the session gives out: actions for the driver, events for the application, and when to call it
//! again; one at a time or in batches.

use std::collections::VecDeque;
use std::time::Instant;

use super::Session;
use super::state::Stage;
use crate::timer::Timer;
use crate::{Action, Event};

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
        let (open, draining) = match &mut self.stage {
            Stage::Connected { open, .. } => (open, false),
            Stage::Closing { open, close } if !close.sent => (open, true),
            _ => return None,
        };
        let transport = open.transport;
        if let Some(message) = self.preamble.get(open.preamble.handed) {
            open.preamble.handed += 1;
            // Counted as sent when the driver reports it flushed, like every other message.
            open.preamble.unflushed.push_back(message.len());
            return Some(Action::Send { transport, id: None, message: message.clone() });
        }
        let next = self.queue.pop_for_send(&self.cfg.queue, self.last_now, &mut self.report.sink(&mut self.acks));
        // Expired heads may have made room, and the head's expiry moved.
        self.settle();
        if let Some((id, message)) = next {
            self.acks.handed(id);
            return Some(Action::Send { transport, id: Some(id), message });
        }
        // A draining close also waits for the acknowledgements of tracked messages handed out.
        if draining
            && !self.awaiting_acks()
            && let Stage::Closing { close, .. } = &mut self.stage
        {
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
            let plain = match &self.stage {
                Stage::Connected { open, .. } if self.actions.is_empty() => {
                    (open.preamble.handed >= self.preamble.len()).then_some(open.transport)
                }
                _ => None,
            };
            if let Some(transport) = plain {
                // What `poll_action` does in this state, without re-deciding the state per message.
                let next =
                    self.queue.pop_for_send(&self.cfg.queue, self.last_now, &mut self.report.sink(&mut self.acks));
                let queue = self.queue.take_unblocked(&self.cfg.queue);
                if self.acks.take_unblocked(&self.cfg.acks) | queue {
                    self.report.push(Event::QueueUnblocked);
                }
                let Some((id, message)) = next else { break };
                self.acks.handed(id);
                into.push_back(Action::Send { transport, id: Some(id), message });
            } else {
                let Some(a) = self.poll_action() else { break };
                into.push_back(a);
            }
            n += 1;
        }
        self.timers.put(Timer::Expiry, self.queue.next_expiry());
        self.timers.put(Timer::Ack, self.acks.next_deadline());
        n
    }

    /// The next event for the application. Call until `None` after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.report.events.pop_front()
    }

    /// Moves up to `max` events, oldest first, to the back of `into`; returns whether none are left.
    ///
    /// The same as calling [`poll_event`](Self::poll_event) up to `max` times, for drivers that hand
    /// events over in batches: when `into` is empty and everything fits, the two buffers are swapped
    /// instead of moving each event.
    pub fn drain_events(&mut self, into: &mut VecDeque<Event>, max: usize) -> bool {
        let n = self.report.events.len().min(max);
        if n == self.report.events.len() && into.is_empty() {
            std::mem::swap(into, &mut self.report.events);
        } else {
            into.extend(self.report.events.drain(..n));
        }
        self.report.events.is_empty()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do; `None`: nothing is
    /// scheduled. Depends only on the state, not on what has been drained. Never earlier than the latest
    /// `now` handled unless `handle_timeout` has not yet been called for it.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }
}
