//! Tracked messages in the world, in the scenarios whose [`TrackingPlan`] says so: the user sends some
//! data messages tracked (key = the message's own key), the server acknowledges what it received
//! (sometimes never, sometimes twice), and the client takes each acknowledgement either through its
//! driver's correlation function ([`Frame::Correlated`]) or by hand ([`Session::ack`], at once or at
//! its next action, when the message may already wait in line for its redelivery); the user also
//! cancels some. Checked here: the server holds every message the client saw acknowledged.
//!
//! Every decision comes from the plan's own generator, never the world's: a scenario without tracked
//! messages draws exactly what it drew before they existed.
//!
//! [`Session::ack`]: tether_core::Session::ack

use tether_core::{AckKey, Event, Frame, Outcome, Tracking, TransportEvent, TransportId};

use super::{Ev, World};
use crate::sim::invariants::{Violation, ensure, names};
use crate::sim::rng::SimRng;
use crate::sim::scenario::{TrackingPlan, tracking_rng};
use crate::sim::user;

/// Most recent tracked keys the user may cancel.
const CANCEL_CHOICES: usize = 8;

/// The client's and server's state about tracked messages.
#[derive(Debug)]
pub(super) struct Tracked {
    rng: SimRng,
    /// Acknowledgements the application gives by hand right after the current input.
    now: Vec<u64>,
    /// And those it gives at its next action.
    later: Vec<u64>,
    /// Keys of the tracked messages sent, most recent last (bounded).
    recent: Vec<u64>,
}

impl Tracked {
    pub(super) fn new(seed: u64) -> Self {
        Self { rng: tracking_rng(seed ^ 0x5EED), now: Vec::new(), later: Vec::new(), recent: Vec::new() }
    }
}

fn key(k: u64) -> AckKey {
    AckKey::from(k)
}

impl World {
    fn plan(&self) -> Option<TrackingPlan> {
        self.sc.tracking
    }

    /// Sends data message `key` of `len` bytes, tracked if the plan draws it so.
    pub(super) fn send_data(&mut self, k: u64, len: usize) -> Result<(), Violation> {
        let tracked = match self.plan() {
            Some(p) if self.trk.rng.chance(p.share) => Some(self.trk.rng.chance(p.redeliver)),
            _ => None,
        };
        let (r, actions) = match tracked {
            Some(redeliver) => {
                let tracking = Tracking::new(k).redeliver(redeliver);
                self.h.send_tracked(user::payload(user::TRACKED, k, len), tracking)?
            }
            None => self.h.send(user::payload(user::DATA, k, len))?,
        };
        if let Ok(id) = r {
            self.keys.insert(k, id);
            if tracked.is_some() {
                self.trk.recent.push(k);
                if self.trk.recent.len() > CANCEL_CHOICES {
                    self.trk.recent.remove(0);
                }
            }
        }
        self.after_call(actions)
    }

    /// The server recorded tracked message `key` received on `t`: it acknowledges it, after a moment
    /// (or never, or twice).
    pub(super) fn server_acks(&mut self, t: TransportId, k: u64) {
        let Some(p) = self.plan() else { return };
        if self.trk.rng.chance(p.forget) {
            return;
        }
        let times = if self.trk.rng.chance(p.twice) { 2 } else { 1 };
        for _ in 0..times {
            let at = self.h.now + self.trk.rng.ms(0, 300);
            self.at(at, Ev::SrvAck(t, k));
        }
    }

    /// The acknowledgement leaves the server.
    pub(super) fn server_ack_out(&mut self, t: TransportId, k: u64) {
        if self.conns.get(&t).is_some_and(|c| c.passes()) {
            let ack = user::payload(user::ACK, k, user::MIN_LEN);
            self.send_to_client(t, TransportEvent::Received(Frame::Message(ack)));
        }
    }

    /// A report on its way into the session: an acknowledgement may be correlated by the driver.
    pub(super) fn correlate(&mut self, ev: TransportEvent) -> TransportEvent {
        let Some(p) = self.plan() else { return ev };
        match ev {
            TransportEvent::Received(Frame::Message(m)) => match user::parse(&m) {
                Some((user::ACK, k)) if self.trk.rng.chance(p.correlated) => {
                    TransportEvent::Received(Frame::Correlated { key: key(k), message: m })
                }
                _ => TransportEvent::Received(Frame::Message(m)),
            },
            ev => ev,
        }
    }

    /// What the client saw after an input: acknowledgements for the application to give by hand, and
    /// acknowledged messages, which the server must hold.
    pub(super) fn on_tracked_events(&mut self, events: &[Event]) -> Result<(), Violation> {
        let Some(p) = self.plan() else { return Ok(()) };
        for e in events {
            match e {
                Event::Message(m) => {
                    if let Some((user::ACK, k)) = user::parse(m) {
                        let later = self.trk.rng.chance(p.delayed);
                        if later { self.trk.later.push(k) } else { self.trk.now.push(k) }
                    }
                }
                Event::Outcome { id, outcome: Outcome::Acked } => {
                    let held = self.receipts.get(id).copied().unwrap_or(0);
                    ensure!(held > 0, names::SERVER_HOLDS, "{id} Acked, but the server never received it");
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Gives the acknowledgements due now by hand.
    pub(super) fn give_acks(&mut self) -> Result<(), Violation> {
        while let Some(k) = self.trk.now.pop() {
            self.ack_by_hand(k)?;
        }
        Ok(())
    }

    fn ack_by_hand(&mut self, k: u64) -> Result<(), Violation> {
        let requeued = self.keys.get(&k).is_some_and(|id| self.h.chk.in_line_again(*id));
        let (r, actions) = self.h.ack(&key(k))?;
        self.h.cov.app_acks += 1;
        self.h.cov.unknown_acks += u64::from(r.is_none());
        self.h.cov.acks_while_requeued += u64::from(r.is_some() && requeued);
        self.after_call(actions)
    }

    /// At the user's action: the acknowledgements it put off, and maybe a cancel.
    pub(super) fn user_tracking(&mut self) -> Result<(), Violation> {
        let Some(p) = self.plan() else { return Ok(()) };
        for k in std::mem::take(&mut self.trk.later) {
            self.ack_by_hand(k)?;
        }
        if !self.trk.recent.is_empty() && self.trk.rng.chance(p.cancel) {
            let i = self.trk.rng.range(0, self.trk.recent.len() as u64 - 1) as usize;
            let k = self.trk.recent[i];
            let (r, actions) = self.h.cancel(&key(k))?;
            self.h.cov.cancels += u64::from(r.is_some());
            self.after_call(actions)?;
        }
        Ok(())
    }
}
