//! Property tests: arbitrary input sequences against the session's guarantees.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{backoff_bounds, legal_transition};
use proptest::prelude::*;
use tether_core::*;

#[derive(Debug, Clone)]
enum Op {
    Advance(u16),
    Timeout,
    Connect,
    Send(u16),
    Close(bool),
    Opened,
    OpenFailed(u8),
    Flushed,
    FlushSome,
    Pong(bool),
    PingFrame,
    Recv(u8),
    RemoteClose(u8),
    TransportErr,
    Net(u8),
    Stale,
    Preamble(u8),
    PreambleFlushed(u8),
    Violation(u8),
    /// Time leaps forward by 2^n seconds (a corrupted or absurd clock), as far as `Instant` allows.
    Jump(u8),
    /// A tracked message of this length, with key `k % 8` (so keys collide), redelivered or not.
    SendTracked(u16, u8, bool),
    /// The application acknowledges key `k % 8`.
    Ack(u8),
    /// A message the driver correlated to key `k % 8`.
    Correlated(u8),
    /// The application gives up on key `k % 8`.
    Cancel(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u16..3_000).prop_map(Op::Advance),
        3 => Just(Op::Timeout),
        1 => Just(Op::Connect),
        4 => (0u16..400).prop_map(Op::Send),
        1 => any::<bool>().prop_map(Op::Close),
        3 => Just(Op::Opened),
        1 => any::<u8>().prop_map(Op::OpenFailed),
        3 => Just(Op::Flushed),
        1 => Just(Op::FlushSome),
        1 => any::<bool>().prop_map(Op::Pong),
        1 => Just(Op::PingFrame),
        1 => any::<u8>().prop_map(Op::Recv),
        1 => any::<u8>().prop_map(Op::RemoteClose),
        1 => Just(Op::TransportErr),
        1 => any::<u8>().prop_map(Op::Net),
        1 => Just(Op::Stale),
        1 => any::<u8>().prop_map(Op::Preamble),
        1 => any::<u8>().prop_map(Op::PreambleFlushed),
        1 => any::<u8>().prop_map(Op::Violation),
        2 => (40u8..63).prop_map(Op::Jump),
        3 => (0u16..400, any::<u8>(), proptest::bool::weighted(0.8)).prop_map(|(l, k, r)| Op::SendTracked(l, k, r)),
        2 => any::<u8>().prop_map(Op::Ack),
        1 => any::<u8>().prop_map(Op::Correlated),
        1 => any::<u8>().prop_map(Op::Cancel),
    ]
}

#[derive(Debug, Clone)]
struct Params {
    seed: u64,
    jitter: Jitter,
    max_messages: usize,
    max_bytes: usize,
    overflow: Overflow,
    in_flight: InFlightPolicy,
    ttl: Option<u16>,
    max_attempts: Option<u32>,
    /// The window of tracked messages (count, bytes) and their ack timeout.
    window: (usize, usize),
    ack_timeout: Option<u16>,
    /// Start at the earliest instant the platform represents, so later instants span the whole range.
    far_past: bool,
}

fn params() -> impl Strategy<Value = Params> {
    (
        any::<u64>(),
        prop_oneof![Just(Jitter::None), Just(Jitter::Full), Just(Jitter::Equal), Just(Jitter::Decorrelated)],
        1usize..20,
        1usize..3_000,
        prop_oneof![Just(Overflow::Reject), Just(Overflow::DropOldest)],
        prop_oneof![Just(InFlightPolicy::Abandon), Just(InFlightPolicy::Requeue)],
        proptest::option::of(1u16..5_000),
        proptest::option::of(1u32..6),
        proptest::bool::weighted(0.2),
        ((1usize..10, 1usize..3_000), proptest::option::of(1u16..8_000)),
    )
        .prop_map(
            |(
                seed,
                jitter,
                max_messages,
                max_bytes,
                overflow,
                in_flight,
                ttl,
                max_attempts,
                far_past,
                (window, ack_timeout),
            )| {
                Params {
                    seed,
                    jitter,
                    max_messages,
                    max_bytes,
                    overflow,
                    in_flight,
                    ttl,
                    max_attempts,
                    window,
                    ack_timeout,
                    far_past,
                }
            },
        )
}

/// The session's epoch: now, or the earliest instant the platform represents (within a second).
fn epoch(p: &Params) -> Instant {
    let mut t = Instant::now();
    if p.far_past {
        for shift in (0..64).rev() {
            while let Some(earlier) = t.checked_sub(Duration::from_secs(1 << shift)) {
                t = earlier;
            }
        }
    }
    t
}

/// `t + d`, unless that would leave too little of the `Instant` range for the session's own deadlines
/// (configured durations are at most `MAX_DURATION`): then `t`.
fn later(t: Instant, d: Duration) -> Instant {
    match t.checked_add(d) {
        Some(l) if l.checked_add(MAX_DURATION * 2).is_some() => l,
        _ => t,
    }
}

fn config(p: &Params) -> Config {
    let mut c = Config::default().seed(p.seed);
    c.backoff.jitter = p.jitter;
    c.backoff.base = Duration::from_millis(100);
    c.backoff.max_delay = Duration::from_secs(3);
    c.backoff.stable_after = Duration::from_secs(2);
    c.backoff.max_attempts = p.max_attempts;
    c.connect_timeout = Duration::from_secs(2);
    c.close_timeout = Duration::from_secs(1);
    c.heartbeat = Some(
        HeartbeatConfig::default()
            .interval(Duration::from_secs(1))
            .pong_timeout(Duration::from_millis(700))
            .tolerated_misses(0)
            .receive_idle(Some(Duration::from_secs(4)))
            .late_tolerance(Duration::from_millis(500)),
    );
    c.queue.max_messages = p.max_messages;
    c.queue.max_bytes = p.max_bytes;
    c.queue.overflow = p.overflow;
    c.queue.in_flight = p.in_flight;
    c.queue.ttl = p.ttl.map(|ms| Duration::from_millis(ms as u64));
    c.acks = AckConfig::default()
        .max_messages(p.window.0)
        .max_bytes(p.window.1)
        .timeout(p.ack_timeout.map(|ms| Duration::from_millis(ms as u64)));
    c
}

/// Plays the driver: applies `ops`, drains everything, records a trace and checks invariants as it
/// goes. Returns the trace.
struct Run {
    s: Session,
    now: Instant,
    transport: Option<TransportId>,
    open: bool,
    last_ping: Option<Bytes>,
    handed: Vec<MessageId>,
    trace: Vec<String>,
    accepted: BTreeSet<MessageId>,
    outcomes: BTreeMap<MessageId, Outcome>,
    sent_order: Vec<MessageId>,
    requeued: BTreeSet<MessageId>,
    /// Put back in line (requeued or redelivered), and how many times.
    put_back: BTreeMap<MessageId, usize>,
    /// Times each message was handed to a transport.
    handed_count: BTreeMap<MessageId, usize>,
    tracked: BTreeSet<MessageId>,
    keys: BTreeMap<MessageId, u8>,
    retry_delays: Vec<Duration>,
    /// Send with the session's creation time instead of the current time when no TTL is set, as the
    /// `tether` driver does (it then reads no clock per send).
    clockless_sends: bool,
    t0: Instant,
    /// Take events with `drain_events(_, max)` instead of `poll_event`.
    event_batch: Option<usize>,
    /// Take actions with `drain_actions(_, max)` instead of `poll_action`.
    action_batch: Option<usize>,
}

impl Run {
    fn new(cfg: Config, t0: Instant) -> Self {
        Self {
            s: Session::new(cfg, t0).unwrap(),
            now: t0,
            t0,
            transport: None,
            open: false,
            last_ping: None,
            handed: vec![],
            trace: vec![],
            accepted: BTreeSet::new(),
            outcomes: BTreeMap::new(),
            sent_order: vec![],
            requeued: BTreeSet::new(),
            put_back: BTreeMap::new(),
            handed_count: BTreeMap::new(),
            tracked: BTreeSet::new(),
            keys: BTreeMap::new(),
            retry_delays: vec![],
            clockless_sends: false,
            event_batch: None,
            action_batch: None,
        }
    }

    fn drain(&mut self) {
        let actions: Vec<Action> = match self.action_batch {
            None => std::iter::from_fn(|| self.s.poll_action()).collect(),
            Some(max) => {
                let mut buf = VecDeque::new();
                while self.s.drain_actions(&mut buf, max) > 0 {}
                buf.into()
            }
        };
        for a in actions {
            self.trace.push(format!("{a:?}"));
            match a {
                Action::Open { transport, .. } => {
                    self.transport = Some(transport);
                    self.open = false;
                    self.handed.clear();
                }
                Action::Send { id: Some(id), .. } => {
                    assert!(
                        self.outcomes.get(&id) != Some(&Outcome::Acked),
                        "{id} handed to a transport after it was acknowledged"
                    );
                    let n = self.handed_count.entry(id).or_default();
                    *n += 1;
                    assert!(
                        *n <= 1 + self.put_back.get(&id).copied().unwrap_or(0),
                        "{id} handed out {n} times, put back {:?} times",
                        self.put_back.get(&id)
                    );
                    self.handed.push(id);
                    self.sent_order.push(id);
                }
                Action::Ping { payload, .. } => self.last_ping = Some(payload),
                _ => {}
            }
        }
        let events: Vec<Event> = match self.event_batch {
            None => std::iter::from_fn(|| self.s.poll_event()).collect(),
            Some(max) => {
                let mut buf = VecDeque::new();
                while !self.s.drain_events(&mut buf, max) {}
                buf.into()
            }
        };
        for e in events {
            self.trace.push(format!("{e:?}"));
            match e {
                Event::Outcome { id, outcome } => {
                    assert!(self.accepted.contains(&id), "outcome for unknown id {id}");
                    assert!(self.outcomes.insert(id, outcome).is_none(), "second outcome for {id}");
                    let tracked = self.tracked.contains(&id);
                    match outcome {
                        Outcome::Acked | Outcome::TimedOut => assert!(tracked, "{outcome:?} for untracked {id}"),
                        Outcome::Sent => assert!(!tracked, "tracked {id} ended Sent"),
                        _ => {}
                    }
                    if outcome == Outcome::Acked {
                        assert!(self.handed_count.contains_key(&id), "{id} acknowledged before it was ever sent");
                    }
                }
                Event::Requeued { id } => {
                    assert!(!self.tracked.contains(&id), "tracked {id} reported Requeued");
                    self.requeued.insert(id);
                    *self.put_back.entry(id).or_default() += 1;
                }
                Event::Redelivered { id } => {
                    assert!(self.tracked.contains(&id), "untracked {id} reported Redelivered");
                    assert!(self.handed_count.contains_key(&id), "{id} redelivered but never sent");
                    *self.put_back.entry(id).or_default() += 1;
                }
                Event::Response { id, .. } => {
                    assert!(self.tracked.contains(&id) && !self.outcomes.contains_key(&id), "response for {id}");
                }
                Event::StateChanged { from, to, .. } => assert!(legal_transition(from, to), "{from:?} -> {to:?}"),
                Event::RetryScheduled { delay, .. } => self.retry_delays.push(delay),
                _ => {}
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        let t = self.transport.unwrap_or(TransportId(0));
        match op {
            Op::Advance(ms) => self.now = later(self.now, Duration::from_millis(*ms as u64)),
            Op::Jump(n) => self.now = later(self.now, Duration::from_secs(1 << n)),
            Op::Timeout => {
                if let Some(d) = self.s.poll_timeout() {
                    self.now = self.now.max(d);
                }
                self.s.handle_timeout(self.now);
            }
            Op::Connect => {
                let _ = self.s.connect(now);
            }
            Op::Send(len) => {
                let now = if self.clockless_sends && self.s.config().queue.ttl.is_none() { self.t0 } else { now };
                if let Ok(id) = self.s.send(now, Message::binary(vec![0u8; *len as usize])) {
                    assert!(self.accepted.insert(id));
                }
            }
            Op::Close(abort) => {
                let mode = if *abort { CloseMode::Abort } else { CloseMode::Drain };
                let _ = self.s.close(now, 1000, "bye", mode);
            }
            Op::Opened => {
                self.open = true;
                self.s.handle_transport(now, t, TransportEvent::Opened(ConnectInfo::new(Duration::from_millis(3))))
            }
            Op::OpenFailed(k) => {
                let e = match k % 4 {
                    0 => OpenError::Tcp("refused".into()),
                    1 => OpenError::Http { status: 503, retry_after: None },
                    2 => OpenError::Dns("nx".into()),
                    _ => OpenError::Http { status: 500 + (*k as u16 % 100), retry_after: None },
                };
                self.s.handle_transport(now, t, TransportEvent::OpenFailed(e))
            }
            Op::Flushed => {
                if let Some(last) = self.handed.last().copied() {
                    self.handed.clear();
                    self.s.handle_transport(now, t, TransportEvent::Flushed { through: last });
                }
            }
            Op::FlushSome => {
                if let Some(first) = self.handed.first().copied() {
                    self.handed.remove(0);
                    self.s.handle_transport(now, t, TransportEvent::Flushed { through: first });
                }
            }
            Op::Pong(matching) => {
                let payload = match (&self.last_ping, matching) {
                    (Some(p), true) => p.clone(),
                    _ => Bytes::from_static(b"junk"),
                };
                self.s.handle_transport(now, t, TransportEvent::Received(Frame::Pong(payload)))
            }
            Op::PingFrame => self.s.handle_transport(now, t, TransportEvent::Received(Frame::Ping)),
            Op::Recv(n) => self.s.handle_transport(
                now,
                t,
                TransportEvent::Received(Frame::Message(Message::binary(vec![*n; *n as usize]))),
            ),
            Op::RemoteClose(c) => {
                // Codes whose verdict is a plain Retry or Fatal, so delays stay within the jitter bounds.
                let code = [1000, 1001, 1006, 1011, 1012, 1008, 4000][*c as usize % 7];
                let frame = CloseFrame { code, reason: String::new() };
                self.s.handle_transport(now, t, TransportEvent::Received(Frame::Close(Some(frame))))
            }
            Op::TransportErr => {
                self.s.handle_transport(now, t, TransportEvent::Closed(Err(TransportError::Io("reset".into()))))
            }
            Op::Net(h) => {
                let hint = [NetworkHint::Online, NetworkHint::Offline, NetworkHint::Resumed][*h as usize % 3];
                self.s.handle_network(now, hint)
            }
            Op::Stale => self.s.handle_transport(now, TransportId(u64::MAX), TransportEvent::Closed(Ok(None))),
            Op::Preamble(n) => self.s.set_preamble((0..*n % 3).map(|i| Message::binary(vec![i; 2])).collect()),
            Op::PreambleFlushed(n) => {
                self.s.handle_transport(now, t, TransportEvent::PreambleFlushed { count: usize::from(*n % 4) })
            }
            Op::SendTracked(len, k, redeliver) => {
                let tracking = Tracking::new(u64::from(*k % 8)).redeliver(*redeliver);
                if let Ok(id) = self.s.send_tracked(now, Message::binary(vec![1u8; *len as usize]), tracking) {
                    assert!(self.accepted.insert(id));
                    self.tracked.insert(id);
                    self.keys.insert(id, *k % 8);
                }
            }
            Op::Ack(k) => {
                let _ = self.s.ack(now, &AckKey::from(u64::from(*k % 8)));
            }
            Op::Correlated(k) => {
                let key = AckKey::from(u64::from(*k % 8));
                let message = Message::binary(vec![*k; 3]);
                self.s.handle_transport(now, t, TransportEvent::Received(Frame::Correlated { key, message }))
            }
            Op::Cancel(k) => {
                let _ = self.s.cancel(now, &AckKey::from(u64::from(*k % 8)));
            }
            Op::Violation(k) => {
                let kind = [Violation::Protocol, Violation::InvalidUtf8, Violation::TooBig][usize::from(*k % 3)];
                let err = TransportError::Violation { kind, detail: "bad frame".into() };
                self.s.handle_transport(now, t, TransportEvent::Closed(Err(err)))
            }
        }
        self.drain();
    }
}

fn check_limits(r: &Run, p: &Params) {
    assert!(r.s.queue_len() <= p.max_messages, "queue_len {} > {}", r.s.queue_len(), p.max_messages);
    assert!(r.s.queue_bytes() <= p.max_bytes, "queue_bytes {} > {}", r.s.queue_bytes(), p.max_bytes);
    let st = r.s.stats(r.now);
    assert!(st.tracked <= p.window.0 && st.tracked_bytes <= p.window.1, "window {:?}: {st:?}", p.window);
    // Every message accepted and not ended is held, and only those.
    let open = r.accepted.len() - r.outcomes.len();
    assert_eq!(r.s.queue_len(), open, "queue_len vs messages without an outcome");
    let open_tracked = r.tracked.iter().filter(|id| !r.outcomes.contains_key(id)).count();
    assert_eq!(st.tracked, open_tracked, "tracked vs tracked messages without an outcome");
}

/// Closes and runs time forward until the session is terminal, so every message must have ended.
fn finish(r: &mut Run) {
    let _ = r.s.close(r.now, 1000, "", CloseMode::Abort);
    r.drain();
    for _ in 0..10 {
        if let Some(d) = r.s.poll_timeout() {
            r.now = r.now.max(d);
            r.s.handle_timeout(r.now);
            r.drain();
        }
    }
}

/// The same operations on two sessions of one configuration, the second one set up by `setup`.
fn twins(p: &Params, ops: &[Op], setup: impl FnOnce(&mut Run)) -> (Run, Run) {
    let t0 = epoch(p);
    let mut a = Run::new(config(p), t0);
    let mut b = Run::new(config(p), t0);
    setup(&mut b);
    for op in ops {
        a.apply(op);
        b.apply(op);
    }
    (a, b)
}

proptest! {
    // 256 cases by default; set PROPTEST_CASES for a longer run.

    #[test]
    fn no_panic_and_invariants_hold(p in params(), ops in prop::collection::vec(op(), 0..200)) {
        let t0 = epoch(&p);
        let mut r = Run::new(config(&p), t0);
        for op in &ops {
            r.apply(op);
            check_limits(&r, &p);
        }
        finish(&mut r);
        prop_assert!(matches!(r.s.state(), State::Closed | State::Failed | State::Idle), "{:?}", r.s.state());
        // Every accepted message ended exactly once (double outcomes are caught as they happen).
        let ended: BTreeSet<_> = r.outcomes.keys().copied().collect();
        prop_assert_eq!(&ended, &r.accepted);
        // Messages were handed to transports in FIFO order; only requeued (or redelivered) ones may go twice.
        let mut seen = BTreeSet::new();
        let mut highest: Option<MessageId> = None;
        for id in &r.sent_order {
            if !seen.insert(*id) {
                prop_assert!(r.put_back.contains_key(id), "{} sent twice without a Requeued or Redelivered report", id);
                continue;
            }
            prop_assert!(highest.is_none_or(|h| *id > h), "{} handed out after {:?}", id, highest);
            highest = Some(*id);
        }
        if p.in_flight == InFlightPolicy::Abandon {
            prop_assert!(r.requeued.is_empty());
        }
        // Backoff delays lie within the jitter mode's bounds for some exponent, and under the cap.
        let cfg = config(&p).backoff;
        let lowest = backoff_bounds(&cfg, 1).expect("the jitter modes drawn here are in the spec").0;
        for d in &r.retry_delays {
            prop_assert!(*d <= cfg.max_delay, "delay {:?} over the cap", d);
            prop_assert!(*d >= lowest, "delay {:?} under the lowest bound {:?}", d, lowest);
        }
    }

    #[test]
    fn same_seed_same_trace(p in params(), ops in prop::collection::vec(op(), 0..150)) {
        let (a, b) = twins(&p, &ops, |_| {});
        prop_assert_eq!(a.trace, b.trace);
        prop_assert_eq!(a.s.stats(a.now), b.s.stats(b.now));
    }

    /// Without a TTL a driver may pass an old instant to `send` instead of reading the clock (the
    /// session's documented contract, which the `tether` driver relies on): that must change nothing.
    #[test]
    fn clockless_sends_change_nothing(p in params(), ops in prop::collection::vec(op(), 0..150)) {
        let (a, b) = twins(&p, &ops, |b| b.clockless_sends = true);
        prop_assert_eq!(a.trace, b.trace);
        prop_assert_eq!(a.s.stats(a.now), b.s.stats(b.now));
    }

    /// Taking events and actions in batches (any batch size) gives the same ones in the same order.
    #[test]
    fn drained_events_and_actions_match_polled_ones(p in params(), ops in prop::collection::vec(op(), 0..150), max in 1usize..5) {
        let (a, b) = twins(&p, &ops, |b| {
            b.event_batch = Some(if max == 4 { usize::MAX } else { max });
            b.action_batch = Some(if max == 1 { usize::MAX } else { max });
        });
        prop_assert_eq!(a.trace, b.trace);
    }

    #[test]
    fn poll_timeout_announces_every_timeout_that_acts(
        p in params(),
        ops in prop::collection::vec(op(), 0..150),
        probes in prop::collection::vec(0u32..10_000, 1..8),
    ) {
        let t0 = epoch(&p);
        let mut r = Run::new(config(&p), t0);
        for op in &ops {
            r.apply(op);
            let deadline = r.s.poll_timeout();
            for ms in &probes {
                let t = later(r.now, Duration::from_millis(*ms as u64));
                let mut probe = r.s.clone();
                let before = probe.state();
                probe.handle_timeout(t);
                let acted = probe.poll_action().is_some() || probe.poll_event().is_some() || probe.state() != before;
                if acted {
                    prop_assert!(deadline.is_some_and(|d| d <= t), "acted at {:?} but poll_timeout said {:?}", t - t0, deadline.map(|d| d - t0));
                }
            }
        }
    }

    #[test]
    fn handled_timeouts_leave_no_past_deadline(p in params(), ops in prop::collection::vec(op(), 0..150)) {
        let t0 = epoch(&p);
        let mut r = Run::new(config(&p), t0);
        for op in &ops {
            r.apply(op);
            if matches!(op, Op::Timeout) {
                prop_assert!(r.s.poll_timeout().is_none_or(|d| d > r.now), "deadline not after now after handle_timeout");
            }
        }
    }
}

proptest! {
    /// Pongs that come back after any delay the clock can represent (centuries, eons) give RTT samples
    /// and connected time without a panic; the average stays between the smallest and largest sample.
    #[test]
    fn extreme_round_trips_never_panic(far_past in any::<bool>(), delays in prop::collection::vec(any::<u64>(), 1..6)) {
        let p = Params {
            seed: 1, jitter: Jitter::None, max_messages: 4, max_bytes: 64, overflow: Overflow::Reject,
            in_flight: InFlightPolicy::Abandon, ttl: None, max_attempts: None, window: (1, 1), ack_timeout: None,
            far_past,
        };
        let mut r = Run::new(config(&p), epoch(&p));
        r.apply(&Op::Connect);
        r.apply(&Op::Opened);
        for secs in delays {
            let Some(ping_at) = r.s.poll_timeout() else { break };
            r.now = r.now.max(ping_at);
            r.s.handle_timeout(r.now);
            r.last_ping = None;
            r.drain();
            if r.last_ping.is_none() {
                break;
            }
            r.now = later(r.now, Duration::from_secs(secs));
            r.apply(&Op::Pong(true));
        }
        let rtt = r.s.stats(r.now).rtt;
        if let (Some(avg), Some(min), Some(max)) = (rtt.ewma, rtt.min, rtt.max) {
            prop_assert!(min <= avg && avg <= max, "{:?}", rtt);
        }
    }
}
