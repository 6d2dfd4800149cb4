//! The scripted server's side of the world: what it does with an attempt, how it ends a connection, and
//! what it checks about the data it receives (preamble first, FIFO, duplicates only after a reported
//! requeue or redelivery).

use std::time::Duration;

use tether_core::{ConnectInfo, Frame, Message, TransportError, TransportEvent, TransportId};

use super::{Ev, World};
use crate::sim::invariants::{Violation, ensure, names};
use crate::sim::server::{self, Behaviour, Ending};
use crate::sim::user;

impl World {
    pub(super) fn server_open(&mut self, t: TransportId) {
        let phase = self.sc.phases[self.phase];
        let b = server::draw(&mut self.rng, &phase);
        self.log(|| format!("server {t} {b:?}"));
        match b {
            Behaviour::Accept { ending, slow } => {
                if let Some(c) = self.conns.get_mut(&t) {
                    c.accepted = true;
                    c.slow = slow;
                }
                let handshake = self.rng.ms(1, 300);
                self.send_to_client(t, TransportEvent::Opened(ConnectInfo::new(handshake)));
                if let Some((after, ending)) = ending {
                    self.at(self.h.now + after, Ev::ServerEnd(t, ending));
                }
                let next = self.h.now + self.rng.ms(500, 15_000);
                self.at(next, Ev::Chatter(t));
            }
            Behaviour::Refuse(err) => self.send_to_client(t, TransportEvent::OpenFailed(err)),
            Behaviour::CloseDuringHandshake => {
                self.send_to_client(t, TransportEvent::Closed(Err(TransportError::Io("eof in handshake".into()))))
            }
            Behaviour::Hang => {}
        }
    }

    pub(super) fn server_end(&mut self, t: TransportId, ending: Ending) {
        let Some(c) = self.conns.get_mut(&t) else { return };
        if c.ending_cancelled || !c.passes() {
            return;
        }
        match ending {
            Ending::Close { frame, form } => {
                c.dead = true;
                if form != 1 {
                    self.send_to_client(t, TransportEvent::Received(Frame::Close(frame.clone())));
                }
                if form != 0 {
                    self.send_to_client(t, TransportEvent::Closed(Ok(frame)));
                }
            }
            Ending::Drop(err) => {
                // A reset ends the connection; after a violation it stays open until the close handshake.
                c.dead = matches!(err, TransportError::Io(_));
                self.send_to_client(t, TransportEvent::Closed(Err(err)));
            }
            Ending::Silent => self.go_silent(t),
        }
    }

    pub(super) fn go_silent(&mut self, t: TransportId) {
        let Some(c) = self.conns.get_mut(&t) else { return };
        if !c.passes() {
            return;
        }
        c.silent = true;
        self.log(|| format!("server {t} goes silent"));
        if let Some(hb) = &self.sc.cfg.heartbeat {
            // Make sure something runs right after the bound, so a missed detection is seen.
            let at = self.h.now + self.sc.link.max_one_way() + hb.detection_bound() + Duration::from_millis(1);
            self.at(at, Ev::DeadCheck);
        }
    }

    pub(super) fn server_data(&mut self, t: TransportId, m: Message) -> Result<(), Violation> {
        let Some(c) = self.conns.get_mut(&t) else { return Ok(()) };
        if !c.passes() {
            return Ok(());
        }
        let Some((tag, key)) = user::parse(&m) else {
            return Err(Violation { invariant: names::OUTCOME, detail: format!("server got a foreign payload {m:?}") });
        };
        if tag == user::PREAMBLE {
            let expected = c.preamble.get(c.preamble_got).copied();
            ensure!(
                c.last_data.is_none() && expected == Some(key),
                names::PREAMBLE,
                "{t}: preamble message {key:#x} after {} preamble messages and data {:?}; expected {expected:?}",
                c.preamble_got,
                c.last_data
            );
            c.preamble_got += 1;
            return Ok(());
        }
        let Some(id) = self.keys.get(&key).copied() else {
            return Err(Violation { invariant: names::OUTCOME, detail: "server got a message never accepted".into() });
        };
        ensure!(
            c.preamble_got == c.preamble.len(),
            names::PREAMBLE,
            "{t}: data {id} after {} of {} preamble messages",
            c.preamble_got,
            c.preamble.len()
        );
        ensure!(c.last_data.is_none_or(|l| id > l), names::FIFO, "{t}: server got {id} after {:?}", c.last_data);
        c.last_data = Some(id);
        let n = self.receipts.entry(id).or_insert(0);
        *n += 1;
        if *n == 1 {
            // Bytes already on the wire of a transport the client has left may still arrive after those of
            // the next one (two TCP connections are not ordered): that straggler is the network's doing.
            let straggler = self.max_first.is_some_and(|(on, _)| t < on);
            if !straggler {
                ensure!(
                    self.max_first.is_none_or(|(_, l)| id > l),
                    names::FIFO,
                    "server got {id} on {t} after {:?}",
                    self.max_first
                );
                self.max_first = Some((t, id));
            }
        } else {
            let requeues = self.h.chk.requeues(id);
            ensure!(*n <= 1 + requeues, names::DUPLICATE, "server got {id} {n} times; requeued {requeues} times");
            self.h.cov.duplicates += 1;
        }
        if self.rng.chance(0.1) {
            self.send_to_client(t, TransportEvent::Received(Frame::Message(Message::text("echo"))));
        }
        if tag == user::TRACKED {
            // Recorded above (persisted), then acknowledged.
            self.server_acks(t, key);
        }
        Ok(())
    }
}
