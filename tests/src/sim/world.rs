//! The world around one session: the scripted server, the link, the user and the driver, all on
//! virtual time. Shaped like quinn's test `Pair` and str0m's `progress()`: one epoch `Instant` that is
//! only ever added to, and [`World::step`] jumps to the earliest wake-up of the core (`poll_timeout`),
//! the link (deliveries) or the script (server, user), handles it, and checks every invariant.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tether_core::{
    Action, CloseFrame, CloseMode, Event, Frame, Message, MessageId, NetworkHint, State, TransportError,
    TransportEvent, TransportId,
};

mod serving;
mod tracked;

use super::harness::Harness;
use super::invariants::{Violation, ensure, names};
use super::rng::SimRng;
use super::scenario::{PhaseKind, Scenario, liveness_bound};
use super::server::{Conn, Ending};
use super::user::{self, UserAction};

/// Most steps one run may take; more is a livelock.
pub const MAX_STEPS: u64 = 2_000_000;
/// Most steps at one instant; more is a busy loop.
const MAX_SAME_INSTANT: u64 = 100_000;

#[derive(Debug)]
enum Ev {
    User,
    Phase(usize),
    End,
    SrvOpen(TransportId),
    SrvData(TransportId, Message),
    SrvPing(TransportId, Bytes),
    SrvClose(TransportId, u16),
    Cli(TransportId, TransportEvent),
    Written(TransportId, Option<MessageId>, Message),
    WrittenClose(TransportId, u16),
    FlushReport(TransportId, MessageId),
    PreambleReport(TransportId, usize),
    ServerEnd(TransportId, Ending),
    /// The server acknowledges tracked message `key`.
    SrvAck(TransportId, u64),
    Chatter(TransportId),
    DeadCheck,
    Liveness(u64),
}

#[derive(Debug)]
struct Item {
    at: Instant,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    // Reversed: the heap pops the earliest, and among equals the first scheduled.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Debug, Clone, Copy)]
struct Live {
    generation: u64,
    deadline: Instant,
    done: bool,
}

/// One simulated run.
#[derive(Debug)]
pub struct World {
    /// The scenario.
    pub sc: Scenario,
    /// The session, its checker, coverage and trace.
    pub h: Harness,
    rng: SimRng,
    /// Tracked messages: their own generator, and the acknowledgements the application holds.
    trk: tracked::Tracked,
    queue: BinaryHeap<Item>,
    seq: u64,
    // Ordered: the simulator iterates it, and its runs must not depend on a hasher's seed.
    conns: BTreeMap<TransportId, Conn>,
    keys: HashMap<u64, MessageId>,
    next_key: u64,
    receipts: HashMap<MessageId, u32>,
    /// The highest id received for the first time, and on which transport.
    max_first: Option<(TransportId, MessageId)>,
    /// The transport the session used after the last input.
    current: Option<TransportId>,
    preamble: Vec<u64>,
    preamble_gen: u64,
    offline: bool,
    phase: usize,
    jumps_left: u32,
    last_wake: Option<Instant>,
    live: Option<Live>,
    live_gen: u64,
    ending: bool,
    end_deadline: Option<Instant>,
    /// Steps taken.
    pub steps: u64,
    same_instant: u64,
}

impl World {
    /// The world of `seed`, starting at `epoch`.
    pub fn new(seed: u64, epoch: Instant, trace: bool, known_bugs: bool) -> Self {
        let sc = Scenario::generate(seed, known_bugs);
        let mut h = Harness::new(sc.cfg.clone(), epoch, trace).expect("the simulator generates valid configs");
        h.cov.runs = 1;
        h.cov.tracked_runs = u64::from(sc.tracking.is_some());
        // Half the seeds drive the session in batches, the way the adapter's driver does.
        h.batched = seed % 2 == 1;
        let mut w = Self {
            rng: SimRng::new(seed ^ 0x005E_ED0F_7E7E),
            trk: tracked::Tracked::new(seed),
            h,
            queue: BinaryHeap::new(),
            seq: 0,
            conns: BTreeMap::new(),
            keys: HashMap::new(),
            next_key: 0,
            receipts: HashMap::new(),
            max_first: None,
            current: None,
            preamble: Vec::new(),
            preamble_gen: 0,
            offline: false,
            phase: 0,
            jumps_left: 2,
            last_wake: None,
            live: None,
            live_gen: 0,
            ending: false,
            end_deadline: None,
            steps: 0,
            same_instant: 0,
            sc,
        };
        for i in 1..w.sc.phases.len() {
            w.at(epoch + w.sc.phases[i].start, Ev::Phase(i));
        }
        w.at(epoch + w.sc.end, Ev::End);
        w.at(epoch, Ev::User);
        if w.h.trace.on() {
            let (sc, cfg) = (&w.sc, &w.sc.cfg);
            w.h.trace.line(Duration::ZERO, || format!("scenario seed {} link {:?}", sc.seed, sc.link));
            w.h.trace.line(Duration::ZERO, || format!("config {cfg:?}"));
            for p in &sc.phases {
                w.h.trace.line(p.start, || format!("phase {p:?}"));
            }
        }
        w
    }

    fn at(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.push(Item { at, seq: self.seq, ev });
    }

    fn log(&mut self, f: impl FnOnce() -> String) {
        let at = self.h.elapsed();
        self.h.trace.line(at, f);
    }

    fn phase_kind(&self) -> PhaseKind {
        self.sc.phases[self.phase].kind
    }

    /// Whether the run is over: the final close completed (or the session had failed).
    pub fn done(&self) -> bool {
        self.ending && matches!(self.h.s.state(), State::Closed | State::Failed)
    }

    /// Runs to the end, or to the first violation.
    pub fn run(&mut self) -> Result<(), Violation> {
        while !self.done() {
            if !self.step()? {
                break;
            }
        }
        ensure!(self.done(), names::BOUNDED, "ran out of things to do in state {:?}", self.h.s.state());
        self.h.chk.finish(&self.h.s)?;
        self.h.cov.steps = self.steps;
        self.h.cov.ended_failed = u64::from(self.h.s.state() == State::Failed);
        Ok(())
    }

    /// Jumps to the earliest wake-up and handles it. `false` when nothing is left to do.
    pub fn step(&mut self) -> Result<bool, Violation> {
        self.steps += 1;
        ensure!(self.steps < MAX_STEPS, names::BOUNDED, "{} steps", self.steps);
        let core = self.h.s.poll_timeout();
        let world = self.queue.peek().map(|i| i.at);
        let Some(next) = [core, world].into_iter().flatten().min() else { return Ok(false) };
        if next > self.h.now {
            self.h.advance_to(next);
            self.same_instant = 0;
        } else {
            self.same_instant += 1;
            ensure!(self.same_instant < MAX_SAME_INSTANT, names::BOUNDED, "busy loop at {:?}", self.h.elapsed());
        }
        if core.is_some_and(|t| t <= self.h.now) {
            let actions = self.h.timeout()?;
            self.after_call(actions)?;
        } else {
            let item = self.queue.pop().expect("peeked");
            self.handle(item.ev)?;
        }
        self.check_world()?;
        Ok(true)
    }

    /// Carries out the actions and looks at the events of the last input.
    fn after_call(&mut self, actions: Vec<Action>) -> Result<(), Violation> {
        let now = self.h.now;
        let state = self.h.s.state();
        let mut connected = false;
        let events = std::mem::take(&mut self.h.events);
        self.on_tracked_events(&events)?;
        for e in events {
            match e {
                Event::Connected { transport, .. } => {
                    connected = true;
                    if let Some(c) = self.conns.get_mut(&transport) {
                        c.connected = true;
                        c.preamble = self.preamble.clone();
                    }
                }
                Event::StateChanged { to: State::Connected, .. } => connected = true,
                _ => {}
            }
        }
        if let Some(l) = &mut self.live {
            if connected {
                l.done = true;
            }
            if matches!(state, State::Closed | State::Failed | State::Closing) {
                self.live = None;
            }
        }
        for a in actions {
            self.perform(now, a);
        }
        self.current = self.h.s.transport();
        self.give_acks()
    }

    fn perform(&mut self, now: Instant, a: Action) {
        let lat = self.sc.link;
        let loss = self.sc.phases[self.phase].loss;
        match a {
            Action::Open { transport, .. } => {
                let mut c = Conn::new(now);
                let arrive = lat.arrival(&mut self.rng, now, loss, &mut c.c2s_last);
                self.conns.insert(transport, c);
                self.at(arrive, Ev::SrvOpen(transport));
            }
            Action::Send { transport, id, message } => {
                let slow_cost = self.rng.ms(20, 400);
                let fast_cost = self.rng.ms(0, 2);
                let Some(c) = self.conns.get_mut(&transport) else { return };
                let cost = if c.slow { slow_cost } else { fast_cost };
                c.write_free_at = c.write_free_at.max(now) + cost;
                let at = c.write_free_at;
                self.at(at, Ev::Written(transport, id, message));
            }
            Action::Ping { transport, payload } => {
                let Some(c) = self.conns.get_mut(&transport) else { return };
                if c.passes() && !c.client_closed {
                    let arrive = lat.arrival(&mut self.rng, now, loss, &mut c.c2s_last);
                    self.at(arrive, Ev::SrvPing(transport, payload));
                }
            }
            Action::Close { transport, code, .. } => {
                // Graceful: the close frame goes out after what was written before it, and the driver
                // keeps reading until the transport ends (or the session aborts it).
                let Some(c) = self.conns.get_mut(&transport).filter(|c| !c.client_closed) else { return };
                let at = c.write_free_at.max(now);
                self.at(at, Ev::WrittenClose(transport, code));
            }
            Action::Abort { transport } => {
                if let Some(c) = self.conns.get_mut(&transport) {
                    c.client_closed = true;
                }
            }
        }
    }

    /// Sends `ev` from the server to the client on `t`, over the link.
    fn send_to_client(&mut self, t: TransportId, ev: TransportEvent) {
        let (lat, loss, now) = (self.sc.link, self.sc.phases[self.phase].loss, self.h.now);
        if let Some(c) = self.conns.get_mut(&t) {
            let at = lat.arrival(&mut self.rng, now, loss, &mut c.s2c_last);
            self.at(at, Ev::Cli(t, ev));
        }
    }

    fn send_to_server(&mut self, t: TransportId, ev: Ev) {
        let (lat, loss, now) = (self.sc.link, self.sc.phases[self.phase].loss, self.h.now);
        if let Some(c) = self.conns.get_mut(&t) {
            let at = lat.arrival(&mut self.rng, now, loss, &mut c.c2s_last);
            self.at(at, ev);
        }
    }

    fn handle(&mut self, ev: Ev) -> Result<(), Violation> {
        let now = self.h.now;
        match ev {
            Ev::User => self.user_tick()?,
            Ev::Phase(i) => self.phase_start(i)?,
            Ev::End => self.end()?,
            Ev::SrvOpen(t) => self.server_open(t),
            Ev::SrvData(t, m) => self.server_data(t, m)?,
            Ev::SrvPing(t, payload) => {
                if self.conns.get(&t).is_some_and(|c| c.passes()) {
                    self.send_to_client(t, TransportEvent::Received(Frame::Pong(payload)));
                }
            }
            Ev::SrvClose(t, code) => {
                if let Some(c) = self.conns.get_mut(&t).filter(|c| c.passes()) {
                    c.dead = true;
                    let frame = Some(CloseFrame { code, reason: String::new() });
                    match self.rng.range(0, 2) {
                        0 => self.send_to_client(t, TransportEvent::Received(Frame::Close(frame))),
                        1 => self.send_to_client(t, TransportEvent::Closed(Ok(frame))),
                        _ => {
                            self.send_to_client(t, TransportEvent::Received(Frame::Close(frame.clone())));
                            self.send_to_client(t, TransportEvent::Closed(Ok(frame)));
                        }
                    }
                }
            }
            Ev::Cli(t, ev) => {
                let Some(c) = self.conns.get_mut(&t) else { return Ok(()) };
                // A driver that let go of a transport reports nothing more about it, but one that races
                // its own teardown may: deliver some of those, which the core must ignore.
                if c.client_closed && !self.rng.chance(0.2) {
                    return Ok(());
                }
                if matches!(ev, TransportEvent::Opened { .. } | TransportEvent::Received(_)) {
                    c.last_inbound = Some(now);
                }
                // A driver that reports a transport's end (or a failed open) lets go of it; after a
                // protocol violation it keeps it, to send the close frame the session asks for.
                let ended = match &ev {
                    TransportEvent::Closed(Err(TransportError::Violation { .. })) => false,
                    TransportEvent::Closed(_) | TransportEvent::OpenFailed(_) => true,
                    _ => false,
                };
                if ended {
                    c.client_closed = true;
                }
                let ev = self.correlate(ev);
                let actions = self.h.transport(t, ev)?;
                self.after_call(actions)?;
            }
            Ev::Written(t, id, m) => {
                let Some(c) = self.conns.get(&t) else { return Ok(()) };
                if c.client_closed {
                    return Ok(());
                }
                let (passes, dead) = (c.passes(), c.dead);
                if passes {
                    self.send_to_server(t, Ev::SrvData(t, m));
                }
                if let (None, false) = (id, dead) {
                    let count = match self.conns.get_mut(&t) {
                        Some(c) => {
                            c.preamble_written += 1;
                            c.preamble_written
                        }
                        None => 0,
                    };
                    let lag = self.rng.ms(0, 20);
                    self.at(now + lag, Ev::PreambleReport(t, count));
                }
                if let (Some(id), false) = (id, dead) {
                    // The report of a flush can lag behind the bytes (a driver batching its reports): a
                    // connection lost meanwhile leaves a message the server has but the core must requeue.
                    let lag = if self.rng.chance(0.2) { self.rng.ms(0, 800) } else { self.rng.ms(0, 20) };
                    self.at(now + lag, Ev::FlushReport(t, id));
                }
            }
            Ev::WrittenClose(t, code) => {
                if self.conns.get(&t).is_some_and(|c| c.passes() && !c.client_closed) {
                    self.send_to_server(t, Ev::SrvClose(t, code));
                }
            }
            Ev::FlushReport(t, id) => {
                if self.conns.get(&t).is_some_and(|c| !c.client_closed) {
                    let actions = self.h.transport(t, TransportEvent::Flushed { through: id })?;
                    self.after_call(actions)?;
                }
            }
            Ev::PreambleReport(t, count) => {
                if self.conns.get(&t).is_some_and(|c| !c.client_closed) {
                    let actions = self.h.transport(t, TransportEvent::PreambleFlushed { count })?;
                    self.after_call(actions)?;
                }
            }
            Ev::ServerEnd(t, ending) => self.server_end(t, ending),
            Ev::SrvAck(t, k) => self.server_ack_out(t, k),
            Ev::Chatter(t) => {
                let live = self.conns.get(&t).is_some_and(|c| c.passes() && !c.client_closed);
                if live && self.h.s.transport() == Some(t) {
                    let frame = if self.rng.chance(0.7) { Frame::Message(Message::text("tick")) } else { Frame::Ping };
                    self.send_to_client(t, TransportEvent::Received(frame));
                    let next = now + self.rng.ms(500, 15_000);
                    self.at(next, Ev::Chatter(t));
                }
            }
            Ev::DeadCheck => {}
            Ev::Liveness(g) => {
                if let Some(l) = self.live.filter(|l| l.generation == g) {
                    ensure!(
                        l.done,
                        names::LIVENESS,
                        "server healthy for {:?} and the client is still {:?}",
                        liveness_bound(&self.sc.cfg, &self.sc.link, self.sc.max_retry_delay),
                        self.h.s.state()
                    );
                    self.live = None;
                }
            }
        }
        Ok(())
    }

    fn phase_start(&mut self, i: usize) -> Result<(), Violation> {
        self.phase = i;
        let kind = self.phase_kind();
        // A window is only owed while the server stays healthy (a time jump can cut a phase short).
        self.live = None;
        self.log(|| format!("phase {i} {kind:?}"));
        match kind {
            PhaseKind::LinkDown => {
                let ids: Vec<_> = self.conns.keys().copied().collect();
                for t in ids {
                    self.go_silent(t);
                }
                if self.rng.chance(0.5) {
                    self.hint(NetworkHint::Offline)?;
                }
            }
            PhaseKind::Healthy => {
                for c in self.conns.values_mut() {
                    c.ending_cancelled = true;
                }
                if self.offline {
                    self.hint(NetworkHint::Online)?;
                }
                self.start_liveness();
            }
            _ => {
                if self.offline && self.rng.chance(0.5) {
                    self.hint(NetworkHint::Online)?;
                }
            }
        }
        Ok(())
    }

    fn start_liveness(&mut self) {
        let state = self.h.s.state();
        if self.ending || matches!(state, State::Idle | State::Closed | State::Failed | State::Closing) {
            self.live = None;
            return;
        }
        let current = self.h.s.transport().and_then(|t| self.conns.get(&t));
        let healthy_now = state == State::Connected && current.is_some_and(|c| c.passes());
        if state == State::Connected && !healthy_now && self.sc.cfg.heartbeat.is_none() {
            // Without a heartbeat a half-open link is never detected: nothing to promise.
            self.live = None;
            return;
        }
        self.live_gen += 1;
        let deadline = self.h.now + liveness_bound(&self.sc.cfg, &self.sc.link, self.sc.max_retry_delay);
        self.live = Some(Live { generation: self.live_gen, deadline, done: healthy_now });
        self.h.cov.liveness_checks += 1;
        self.at(deadline, Ev::Liveness(self.live_gen));
    }

    fn hint(&mut self, hint: NetworkHint) -> Result<(), Violation> {
        self.offline = hint == NetworkHint::Offline;
        let actions = self.h.network(hint)?;
        self.after_call(actions)
    }

    fn end(&mut self) -> Result<(), Violation> {
        self.ending = true;
        self.live = None;
        let deadline = self.h.now + self.sc.cfg.close_timeout + self.sc.link.max_one_way() * 2;
        self.end_deadline = Some(deadline);
        self.at(deadline + Duration::from_millis(1), Ev::DeadCheck);
        if matches!(self.h.s.state(), State::Closed | State::Failed | State::Closing) {
            return Ok(());
        }
        let mode = if self.rng.chance(0.5) { CloseMode::Drain } else { CloseMode::Abort };
        let (r, actions) = self.h.close(1000, "done", mode)?;
        ensure!(r.is_ok(), names::TRANSITION, "close refused in {:?}: {r:?}", self.h.s.state());
        self.after_call(actions)
    }

    fn user_tick(&mut self) -> Result<(), Violation> {
        if self.ending {
            return Ok(());
        }
        self.user_tracking()?;
        let first = self.h.now == self.h.epoch;
        let (mut action, pause) = user::next(&mut self.rng, self.sc.cfg.queue.max_bytes, &mut self.jumps_left);
        if first {
            action = if self.rng.chance(0.05) {
                UserAction::Close { code: 1000, mode: CloseMode::Drain }
            } else {
                UserAction::Connect
            };
        }
        let healthy = self.sc.phases[self.phase].healthy();
        match action {
            UserAction::Send { count, max_len } => {
                for _ in 0..count {
                    let key = self.next_key;
                    self.next_key += 1;
                    let len = self.rng.range(user::MIN_LEN as u64, max_len as u64) as usize;
                    self.send_data(key, len)?;
                }
            }
            UserAction::Preamble(n) => {
                self.preamble_gen += 1;
                self.preamble = (0..n).map(|i| (self.preamble_gen << 8) | i).collect();
                let msgs = self.preamble.iter().map(|k| user::payload(user::PREAMBLE, *k, user::MIN_LEN + 3)).collect();
                let actions = self.h.set_preamble(msgs)?;
                self.after_call(actions)?;
            }
            UserAction::Close { code, mode } => {
                let (_, actions) = self.h.close(code, "bye", mode)?;
                self.after_call(actions)?;
            }
            UserAction::Connect => {
                let stopped = matches!(self.h.s.state(), State::Idle | State::Closed | State::Failed);
                if stopped || self.rng.chance(0.05) {
                    let (r, actions) = self.h.connect()?;
                    ensure!(r.is_ok() == stopped, names::TRANSITION, "connect in {:?}: {r:?}", self.h.s.state());
                    self.after_call(actions)?;
                    if stopped && healthy {
                        self.start_liveness();
                    }
                }
            }
            UserAction::Hint(hint) => {
                // While the server is healthy the network is up: no Offline hint then.
                if !(healthy && hint == NetworkHint::Offline) {
                    self.hint(hint)?;
                }
            }
            UserAction::TimeJump(d) => self.time_jump(d)?,
            UserAction::SpuriousWake => self.h.early_timeout()?,
        }
        self.at(self.h.now + pause, Ev::User);
        Ok(())
    }

    fn time_jump(&mut self, d: Duration) -> Result<(), Violation> {
        self.log(|| format!("host   sleeps {d:?}"));
        self.h.advance_to(self.h.now + d);
        self.last_wake = Some(self.h.now);
        self.h.cov.time_jumps += 1;
        for c in self.conns.values_mut() {
            c.jumped = true;
        }
        if let Some(l) = &mut self.live {
            self.live_gen += 1;
            l.generation = self.live_gen;
            l.deadline += d;
            let (g, at) = (l.generation, l.deadline);
            self.at(at, Ev::Liveness(g));
        }
        if self.rng.chance(0.5) {
            self.hint(NetworkHint::Resumed)?;
        }
        Ok(())
    }

    /// The invariants that need the world: dead links detected in time, live links never declared
    /// dead, the final close in bounded time.
    fn check_world(&mut self) -> Result<(), Violation> {
        let now = self.h.now;
        for t in std::mem::take(&mut self.h.chk.heartbeat_deaths) {
            if let Some(c) = self.conns.get(&t) {
                self.h.cov.dead_link_checks += u64::from(c.silent);
                ensure!(
                    c.silent || c.jumped,
                    names::FALSE_DEAD,
                    "{t} declared dead, but every ping on it is answered within {:?}",
                    self.sc.link.max_one_way() * 2
                );
            }
        }
        let silent = match (self.h.s.state(), self.h.s.transport(), &self.sc.cfg.heartbeat) {
            (State::Connected, Some(t), Some(hb)) => self.conns.get(&t).filter(|c| c.silent).map(|c| (t, c, hb)),
            _ => None,
        };
        if let Some((t, c, hb)) = silent {
            let epoch = self.h.epoch;
            let since = c.last_inbound.unwrap_or(epoch).max(self.last_wake.unwrap_or(epoch));
            let bound = hb.detection_bound();
            ensure!(
                now <= since + bound,
                names::DEAD_LINK,
                "{t} silent, last sign of life {:?} ago, bound {bound:?}, still Connected",
                now - since
            );
        }
        if let Some(d) = self.end_deadline {
            ensure!(now <= d || self.done(), names::BOUNDED, "the final close did not complete by {d:?}");
        }
        Ok(())
    }
}
