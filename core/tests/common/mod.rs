//! A tiny hand-driven harness for scenario tests: virtual time, and helpers that play the driver.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use tether_core::*;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A config with exact (unjittered) delays, so tests can name instants.
pub fn exact() -> Config {
    Config::default()
        .backoff(BackoffConfig::default().jitter(Jitter::None).base(ms(100)).max_delay(secs(2)).stable_after(secs(1)))
        .connect_timeout(secs(1))
        .close_timeout(secs(1))
        .heartbeat(Some(
            HeartbeatConfig::default()
                .interval(secs(2))
                .pong_timeout(secs(1))
                .tolerated_misses(0)
                .receive_idle(None)
                .late_tolerance(ms(500)),
        ))
}

pub struct H {
    pub s: Session,
    pub t0: Instant,
    pub now: Instant,
    pub actions: Vec<Action>,
    pub events: Vec<Event>,
}

impl H {
    pub fn new(cfg: Config) -> Self {
        let t0 = Instant::now();
        Self { s: Session::new(cfg, t0).expect("valid config"), t0, now: t0, actions: vec![], events: vec![] }
    }

    /// Moves time to `t0 + at`.
    pub fn at(&mut self, at: Duration) -> &mut Self {
        self.now = self.t0 + at;
        self
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Drains actions and events into the logs; returns the new actions.
    pub fn drain(&mut self) -> Vec<Action> {
        let mut new = vec![];
        while let Some(a) = self.s.poll_action() {
            new.push(a);
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
        self.actions.extend(new.iter().cloned());
        new
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        self.drain();
        std::mem::take(&mut self.events)
    }

    /// Connects and expects an Open; returns its transport id.
    pub fn connect(&mut self) -> TransportId {
        self.s.connect(self.now).expect("connect");
        self.expect_open()
    }

    pub fn expect_open(&mut self) -> TransportId {
        let acts = self.drain();
        match acts.as_slice() {
            [Action::Open { transport, .. }] => *transport,
            other => panic!("expected exactly one Open, got {other:?}"),
        }
    }

    pub fn open(&mut self, t: TransportId) {
        self.s.handle_transport(self.now, t, TransportEvent::Opened(ConnectInfo::new(ms(5))));
    }

    /// Connect + open; returns the transport id.
    pub fn connected(&mut self) -> TransportId {
        let t = self.connect();
        self.open(t);
        assert_eq!(self.s.state(), State::Connected);
        t
    }

    pub fn ev(&mut self, t: TransportId, e: TransportEvent) {
        self.s.handle_transport(self.now, t, e);
    }

    pub fn fail_open(&mut self, t: TransportId, e: OpenError) {
        self.ev(t, TransportEvent::OpenFailed(e));
    }

    pub fn drop_conn(&mut self, t: TransportId) {
        self.ev(t, TransportEvent::Closed(Err(TransportError::Io("connection reset".into()))));
    }

    /// The server closes: its close frame, then (the library having answered it) the end of the stream,
    /// as a driver reports them.
    pub fn remote_close(&mut self, t: TransportId, code: u16) {
        self.remote_close_frame(t, code);
        self.ev(t, TransportEvent::Closed(Ok(None)));
    }

    /// Only the server's close frame; the transport has not ended yet.
    pub fn remote_close_frame(&mut self, t: TransportId, code: u16) {
        self.ev(t, TransportEvent::Received(Frame::Close(Some(CloseFrame { code, reason: "bye".into() }))));
    }

    pub fn tick(&mut self) {
        self.s.handle_timeout(self.now);
    }

    /// Jumps to the next deadline and handles it; returns it.
    pub fn step(&mut self) -> Instant {
        let d = self.s.poll_timeout().expect("a deadline is scheduled");
        assert!(d >= self.now, "deadline {d:?} is in the past");
        self.now = d;
        self.s.handle_timeout(d);
        d
    }

    pub fn send(&mut self, text: &str) -> MessageId {
        self.s.send(self.now, Message::text(text.to_owned())).expect("accepted")
    }

    /// Sends the data actions of `acts` as flushed; returns their ids.
    pub fn flush_all(&mut self, t: TransportId, acts: &[Action]) -> Vec<MessageId> {
        let ids: Vec<MessageId> = acts
            .iter()
            .filter_map(|a| if let Action::Send { id: Some(id), .. } = a { Some(*id) } else { None })
            .collect();
        if let Some(last) = ids.last() {
            self.ev(t, TransportEvent::Flushed { through: *last });
        }
        ids
    }

    pub fn outcomes(&mut self) -> Vec<(MessageId, Outcome)> {
        self.drain();
        self.events
            .iter()
            .filter_map(|e| if let Event::Outcome { id, outcome } = e { Some((*id, *outcome)) } else { None })
            .collect()
    }

    pub fn states(&mut self) -> Vec<State> {
        self.drain();
        self.events
            .iter()
            .filter_map(|e| if let Event::StateChanged { to, .. } = e { Some(*to) } else { None })
            .collect()
    }

    pub fn retry_delays(&mut self) -> Vec<Duration> {
        self.drain();
        self.events
            .iter()
            .filter_map(|e| if let Event::RetryScheduled { delay, .. } = e { Some(*delay) } else { None })
            .collect()
    }
}

pub fn sent_texts(acts: &[Action]) -> Vec<String> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Send { message, .. } => message.as_text().map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// The edges of the state diagram documented on [`State`]: the specification the tests hold the
/// session to (the core's own table is private).
pub fn legal_transition(from: State, to: State) -> bool {
    use State::*;
    matches!(
        (from, to),
        (Idle, Connecting)
            | (Idle, Closed)
            | (Connecting, Connected)
            | (Connecting, Reconnecting)
            | (Connecting, Failed)
            | (Connecting, Closed)
            | (Connected, Reconnecting)
            | (Connected, Failed)
            | (Connected, Closing)
            | (Reconnecting, Connecting)
            | (Reconnecting, Closed)
            | (Closing, Closed)
            | (Closed, Connecting)
            | (Failed, Connecting)
    )
}

/// The range a delay for the `failures`-th consecutive failure must lie in, per [`Jitter`]'s
/// documentation (decorrelated: over any history); `None` for a jitter mode added since.
pub fn backoff_bounds(b: &BackoffConfig, failures: u32) -> Option<(Duration, Duration)> {
    let exp = b.exponential(failures);
    Some(match b.jitter {
        Jitter::None => (exp, exp),
        Jitter::Full => (Duration::ZERO, exp),
        Jitter::Equal => (exp / 2, exp),
        Jitter::Decorrelated => (b.base.min(b.max_delay), b.max_delay),
        _ => return None,
    })
}
