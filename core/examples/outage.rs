//! Drives the core by hand through a scripted outage and prints the trace: connect, stream messages,
//! the server dies, the client backs off (the server refuses with 503 + Retry-After for a while),
//! messages queue up, the client reconnects, the preamble and the backlog go out in order, and then a
//! half-open link is detected by the heartbeat and replaced. Virtual time only: it runs in milliseconds.

use std::time::{Duration, Instant};

use tether_core::*;

struct Driver {
    s: Session,
    t0: Instant,
    now: Instant,
    transport: Option<TransportId>,
    last_handed: Option<MessageId>,
    /// Whether the server answers pings (a half-open link does not).
    answers_pings: bool,
    last_ping: Option<bytes::Bytes>,
    received_by_server: Vec<String>,
}

impl Driver {
    fn at(&self) -> String {
        format!("{:>8.3}s", (self.now - self.t0).as_secs_f64())
    }

    /// Drains events (printing them) and actions (playing the network and the server).
    fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(e) = self.s.poll_event() {
                progressed = true;
                match e {
                    Event::StateChanged { from, to, cause } => {
                        println!("{}  state {from:?} -> {to:?} ({cause})", self.at())
                    }
                    Event::RetryScheduled { attempt, delay, .. } => {
                        println!("{}  retry: attempt {attempt} in {} ms", self.at(), delay.as_millis())
                    }
                    Event::Disconnected { cause, .. } => println!("{}  disconnected: {cause}", self.at()),
                    Event::Connected { transport, attempt, .. } => {
                        println!("{}  connected on {transport} (attempt {attempt})", self.at())
                    }
                    Event::Outcome { .. } | Event::Message(_) => {}
                    other => println!("{}  event {other:?}", self.at()),
                }
            }
            while let Some(a) = self.s.poll_action() {
                progressed = true;
                match a {
                    Action::Open { transport, attempt } => {
                        println!("{}  -> open {transport} (attempt {attempt})", self.at());
                        self.transport = Some(transport);
                    }
                    Action::Send { id, message, .. } => {
                        self.last_handed = id.or(self.last_handed);
                        let text = message.as_text().unwrap_or("<binary>").to_owned();
                        println!("{}  -> send {text:?}", self.at());
                        self.received_by_server.push(text);
                    }
                    Action::Ping { payload, .. } => {
                        println!("{}  -> ping", self.at());
                        self.last_ping = Some(payload);
                    }
                    Action::Close { transport, code, reason } => {
                        println!("{}  -> close {transport} {code} {reason:?}", self.at())
                    }
                    Action::Abort { transport } => println!("{}  -> abort {transport}", self.at()),
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn flush(&mut self) {
        if let (Some(t), Some(id)) = (self.transport, self.last_handed) {
            self.s.handle_transport(self.now, t, TransportEvent::Flushed { through: id });
        }
    }

    /// Advances virtual time to `until`, handling every deadline on the way; the server answers opens
    /// with `open`, and pongs (20 ms later) while `answers_pings`.
    fn run_until(&mut self, until: Instant, open: &dyn Fn(&Driver) -> TransportEvent) {
        while let Some(d) = self.s.poll_timeout().filter(|d| *d <= until) {
            self.now = d;
            self.s.handle_timeout(d);
            self.drain();
            if let (State::Connecting, Some(t)) = (self.s.state(), self.transport) {
                self.s.handle_transport(self.now, t, open(self));
                self.drain();
                self.flush();
            }
            if let (true, Some(t), Some(p)) = (self.answers_pings, self.transport, self.last_ping.take()) {
                self.now += Duration::from_millis(20);
                self.s.handle_transport(self.now, t, TransportEvent::Received(Frame::Pong(p)));
                self.drain();
            }
        }
        self.now = until;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let cfg = Config::default()
        .seed(7)
        .backoff(BackoffConfig::default().base(Duration::from_millis(200)).stable_after(Duration::from_millis(500)))
        .heartbeat(Some(
            HeartbeatConfig::default().interval(Duration::from_secs(5)).pong_timeout(Duration::from_secs(2)),
        ));
    let mut d = Driver {
        s: Session::new(cfg, t0)?,
        t0,
        now: t0,
        transport: None,
        last_handed: None,
        answers_pings: true,
        last_ping: None,
        received_by_server: vec![],
    };
    d.s.set_preamble(vec![Message::text("AUTH token")]);

    println!("== connect");
    d.s.connect(d.now)?;
    d.drain();
    let t = d.transport.expect("open requested");
    d.s.handle_transport(d.now, t, TransportEvent::Opened(ConnectInfo::new(Duration::from_millis(4))));
    d.drain();
    for i in 1..=3 {
        d.s.send(d.now, Message::text(format!("msg {i}")))?;
    }
    d.drain();
    d.flush();
    d.drain();

    println!("== the server dies");
    d.now += Duration::from_secs(1);
    d.s.handle_transport(d.now, t, TransportEvent::Closed(Err(TransportError::Io("connection reset".into()))));
    d.drain();
    for i in 4..=6 {
        d.s.send(d.now, Message::text(format!("msg {i} (queued during the outage)")))?;
    }
    println!("{}  queued: {} messages", d.at(), d.s.queue_len());
    // For 3 s the server refuses connections, then answers 503 with Retry-After: 2, then accepts.
    let back_at = t0 + Duration::from_secs(6);
    let open = move |d: &Driver| -> TransportEvent {
        let up = d.now - d.t0;
        if up < Duration::from_secs(4) {
            TransportEvent::OpenFailed(OpenError::Tcp("connection refused".into()))
        } else if d.now < back_at {
            TransportEvent::OpenFailed(OpenError::Http { status: 503, retry_after: parse_retry_after("2") })
        } else {
            TransportEvent::Opened(ConnectInfo::new(Duration::from_millis(5)))
        }
    };
    d.run_until(t0 + Duration::from_secs(16), &open);

    println!("== the link goes half-open (no pongs, nothing received)");
    d.answers_pings = false;
    let healthy = |_: &Driver| TransportEvent::Opened(ConnectInfo::new(Duration::from_millis(3)));
    d.run_until(t0 + Duration::from_secs(24), &healthy);
    d.answers_pings = true;
    d.run_until(t0 + Duration::from_secs(40), &healthy);

    let s = d.s.stats(d.now);
    println!("== summary");
    println!("server received, in order: {:?}", d.received_by_server);
    println!(
        "attempts {} connects {} reconnects {} failed attempts {} heartbeat timeouts {} messages sent {} queue {}",
        s.attempts, s.connects, s.reconnects, s.failed_attempts, s.errors.heartbeat, s.messages_sent, s.queue_len
    );
    println!("rtt last {:?} ewma {:?}; state {:?}", s.rtt.last, s.rtt.ewma, d.s.state());
    Ok(())
}
