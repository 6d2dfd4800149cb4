//! The bodies of the cargo-fuzz targets in `fuzz/`. They live here, in code that stable `cargo test`
//! compiles, so the corpus replay test (`tests/tests/simulation.rs`) runs exactly what the fuzzer runs.
//! Each body panics on a broken invariant; it never panics on input it merely rejects.

use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use tether_core::{
    Action, BackoffConfig, CloseFrame, CloseMode, Config, ConnectInfo, Frame, HeartbeatConfig, InFlightPolicy, Jitter,
    MAX_DURATION, Message, MessageId, MessageKind, NetworkHint, OpenError, Overflow, QueueConfig, RetryPolicy, Session,
    State, TransportError, TransportEvent, TransportId, Verdict, Violation as ProtocolViolation, parse_retry_after,
};

use super::harness::Harness;
use super::invariants::Violation;
use super::spec::backoff_bounds;

/// Most actions drained after one input; the `Drain` op drains more.
const DRAIN_CAP: usize = 16;

/// Small configuration values, mapped onto valid ranges (zero becomes one, so most inputs give a
/// session to drive; `config` is the target for invalid values).
#[derive(Debug, Arbitrary)]
pub struct Params {
    connect_timeout_ms: u16,
    close_timeout_ms: u16,
    base_ms: u16,
    factor_quarters: u8,
    extra_max_delay_ms: u16,
    jitter: u8,
    max_attempts: Option<u8>,
    give_up_after_ms: Option<u16>,
    stable_after_ms: u16,
    immediate_first_retry: bool,
    heartbeat: Option<(u16, u16, u8, Option<u16>, u16)>,
    max_messages: u8,
    max_bytes: u16,
    drop_oldest: bool,
    ttl_ms: Option<u16>,
    requeue: bool,
    try_again_later_ms: u16,
    max_server_delay_ms: u16,
    seed: u64,
    /// The session starts at the earliest instant the platform represents, so that `Jump`s can span the
    /// whole range.
    far_past: bool,
}

fn ms(n: u16) -> Duration {
    Duration::from_millis(u64::from(n).max(1))
}

impl Params {
    /// The configuration these values give.
    pub fn config(&self) -> Config {
        let base = ms(self.base_ms);
        let mut retry = RetryPolicy::default();
        retry.try_again_later = ms(self.try_again_later_ms);
        retry.max_server_delay = ms(self.max_server_delay_ms);
        Config::default()
            .connect_timeout(ms(self.connect_timeout_ms))
            .close_timeout(ms(self.close_timeout_ms))
            .backoff(
                BackoffConfig::default()
                    .base(base)
                    .factor(1.0 + f64::from(self.factor_quarters % 16) / 4.0)
                    .max_delay(base + Duration::from_millis(u64::from(self.extra_max_delay_ms)))
                    .jitter(
                        [Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated][usize::from(self.jitter % 4)],
                    )
                    .max_attempts(self.max_attempts.map(|n| u32::from(n).max(1)))
                    .give_up_after(self.give_up_after_ms.map(ms))
                    .stable_after(ms(self.stable_after_ms))
                    .immediate_first_retry(self.immediate_first_retry),
            )
            .heartbeat(self.heartbeat.map(|(interval, pong, misses, idle, late)| {
                HeartbeatConfig::default()
                    .interval(ms(interval))
                    .pong_timeout(ms(pong))
                    .tolerated_misses(u32::from(misses % 4))
                    .receive_idle(idle.map(ms))
                    .late_tolerance(Duration::from_millis(u64::from(late)))
            }))
            .queue(
                QueueConfig::default()
                    .max_messages(usize::from(self.max_messages).max(1))
                    .max_bytes(usize::from(self.max_bytes).max(1))
                    .overflow(if self.drop_oldest { Overflow::DropOldest } else { Overflow::Reject })
                    .ttl(self.ttl_ms.map(ms))
                    .in_flight(if self.requeue { InFlightPolicy::Requeue } else { InFlightPolicy::Abandon }),
            )
            .retry(retry)
            .seed(self.seed)
    }
}

/// Which transport a report is about.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Which {
    /// The session's current one (or the last one it opened).
    Current,
    /// One it opened before.
    Previous(u8),
    /// One it never opened.
    Unknown,
}

/// A frame from the server.
#[derive(Debug, Clone, Arbitrary)]
pub enum FrameOp {
    /// A data message of this length.
    Message(u8, bool),
    /// A ping.
    Ping,
    /// A pong answering the last ping.
    PongLast,
    /// A pong with another payload.
    PongOther(Vec<u8>),
    /// A close frame.
    Close(Option<u16>),
}

/// One input to the session: every command, every transport report, timers, hints, and time.
#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    /// `connect`.
    Connect,
    /// `send` of a message of this length (text or binary).
    Send(u16, bool),
    /// `set_preamble` with this many messages.
    SetPreamble(u8),
    /// `close` with a code (any `u16`), a reason of this length, and the mode.
    Close(u16, u8, bool),
    /// `Opened`.
    Opened(Which, u16),
    /// `OpenFailed`: kind, HTTP status, `Retry-After` seconds.
    OpenFailed(Which, u8, u16, Option<u16>),
    /// `Received`.
    Received(Which, FrameOp),
    /// `Flushed` through the `n`-th most recent message handed to that transport.
    Flushed(Which, u8),
    /// `Flushed` through an arbitrary id.
    FlushedAny(Which, u64),
    /// `Closed`: `Ok` with a close code, or an error.
    Closed(Which, Option<Option<u16>>),
    /// `handle_timeout(now)`.
    Timeout,
    /// `handle_timeout` at the deadline, after moving the clock there.
    TimeoutAtDeadline,
    /// `handle_network`.
    Network(u8),
    /// Moves the clock forward this many milliseconds (time is monotonic).
    Advance(u16),
    /// Moves the clock forward this many seconds (a suspended host).
    Sleep(u16),
    /// Drains up to this many more actions.
    Drain(u8),
    /// Moves the clock forward by 2^n seconds (n mod 64), as far as `Instant` allows: absurd clocks.
    Jump(u8),
    /// `PreambleFlushed` with this count.
    PreambleFlushed(Which, u8),
    /// `Closed` with a protocol violation (kind mod 3).
    Violation(Which, u8),
}

/// The input of `core_ops`.
#[derive(Debug, Arbitrary)]
pub struct OpsInput {
    /// The configuration.
    pub params: Params,
    /// The inputs, in order.
    pub ops: Vec<Op>,
}

struct Driver {
    h: Harness,
    opened: Vec<TransportId>,
    handed: Vec<(TransportId, MessageId)>,
    last_ping: Option<Bytes>,
}

impl Driver {
    fn which(&self, w: Which) -> TransportId {
        match w {
            Which::Current => self.h.s.transport().or(self.opened.last().copied()).unwrap_or(TransportId(0)),
            Which::Previous(n) => {
                let len = self.opened.len();
                if len == 0 { TransportId(0) } else { self.opened[len - 1 - usize::from(n) % len] }
            }
            Which::Unknown => TransportId(1 << 40),
        }
    }

    fn take(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Open { transport, .. } => self.opened.push(transport),
                Action::Send { transport, id: Some(id), .. } => self.handed.push((transport, id)),
                Action::Ping { payload, .. } => self.last_ping = Some(payload),
                _ => {}
            }
        }
    }

    fn transport(&mut self, w: Which, ev: TransportEvent) -> Result<(), Violation> {
        let t = self.which(w);
        let actions = self.h.transport(t, ev)?;
        self.take(actions);
        Ok(())
    }

    fn op(&mut self, op: Op) -> Result<(), Violation> {
        match op {
            Op::Connect => {
                let (_, a) = self.h.connect()?;
                self.take(a);
            }
            Op::Send(len, binary) => {
                let payload = vec![b'x'; usize::from(len)];
                let m =
                    if binary { Message::binary(payload) } else { Message::text(String::from_utf8_lossy(&payload)) };
                let (_, a) = self.h.send(m)?;
                self.take(a);
            }
            Op::SetPreamble(n) => {
                let msgs = (0..n % 4).map(|i| Message::text(format!("pre{i}"))).collect();
                let a = self.h.set_preamble(msgs)?;
                self.take(a);
            }
            Op::Close(code, reason_len, abort) => {
                let reason = "r".repeat(usize::from(reason_len));
                let mode = if abort { CloseMode::Abort } else { CloseMode::Drain };
                let (_, a) = self.h.close(code, &reason, mode)?;
                self.take(a);
            }
            Op::Opened(w, hs) => {
                self.transport(w, TransportEvent::Opened(ConnectInfo::new(Duration::from_millis(u64::from(hs)))))?
            }
            Op::OpenFailed(w, kind, status, retry_after) => {
                let err = match kind % 7 {
                    0 => OpenError::Dns("x".into()),
                    1 => OpenError::Tcp("x".into()),
                    2 => OpenError::Tls("x".into()),
                    3 => OpenError::TlsCertificate("x".into()),
                    4 => OpenError::Protocol("x".into()),
                    5 => OpenError::Io("x".into()),
                    _ => OpenError::Http { status, retry_after: retry_after.map(|s| Duration::from_secs(s.into())) },
                };
                self.transport(w, TransportEvent::OpenFailed(err))?
            }
            Op::Received(w, f) => {
                let frame = match f {
                    FrameOp::Message(len, binary) => {
                        let p = vec![b'y'; usize::from(len)];
                        Frame::Message(if binary { Message::binary(p) } else { Message::text("y".repeat(p.len())) })
                    }
                    FrameOp::Ping => Frame::Ping,
                    FrameOp::PongLast => Frame::Pong(self.last_ping.clone().unwrap_or_default()),
                    FrameOp::PongOther(p) => Frame::Pong(Bytes::from(p)),
                    FrameOp::Close(code) => Frame::Close(code.map(|code| CloseFrame { code, reason: String::new() })),
                };
                self.transport(w, TransportEvent::Received(frame))?
            }
            Op::Flushed(w, back) => {
                let t = self.which(w);
                let on: Vec<_> = self.handed.iter().filter(|(x, _)| *x == t).map(|(_, id)| *id).collect();
                if let Some(id) = on.len().checked_sub(1 + usize::from(back) % on.len().max(1)).map(|i| on[i]) {
                    self.transport(w, TransportEvent::Flushed { through: id })?
                }
            }
            Op::FlushedAny(w, id) => self.transport(w, TransportEvent::Flushed { through: MessageId(id) })?,
            Op::Closed(w, how) => {
                let r = match how {
                    Some(code) => Ok(code.map(|code| CloseFrame { code, reason: String::new() })),
                    None => Err(TransportError::Io("reset".into())),
                };
                self.transport(w, TransportEvent::Closed(r))?
            }
            Op::Timeout => {
                let a = self.h.timeout()?;
                self.take(a);
            }
            Op::TimeoutAtDeadline => {
                if let Some(t) = self.h.s.poll_timeout() {
                    self.h.advance_to(t);
                }
                let a = self.h.timeout()?;
                self.take(a);
            }
            Op::Network(n) => {
                let hint = [NetworkHint::Offline, NetworkHint::Online, NetworkHint::Resumed][usize::from(n % 3)];
                let a = self.h.network(hint)?;
                self.take(a);
            }
            Op::Advance(n) => self.h.advance_to(later(self.h.now, Duration::from_millis(n.into()))),
            Op::Sleep(n) => self.h.advance_to(later(self.h.now, Duration::from_secs(n.into()))),
            Op::Jump(n) => self.h.advance_to(later(self.h.now, Duration::from_secs(1 << (n % 64)))),
            Op::PreambleFlushed(w, n) => {
                self.transport(w, TransportEvent::PreambleFlushed { count: usize::from(n) })?
            }
            Op::Violation(w, k) => {
                let kind = [ProtocolViolation::Protocol, ProtocolViolation::InvalidUtf8, ProtocolViolation::TooBig]
                    [usize::from(k % 3)];
                let err = TransportError::Violation { kind, detail: "bad frame".into() };
                self.transport(w, TransportEvent::Closed(Err(err)))?
            }
            Op::Drain(n) => {
                self.h.action_cap = usize::from(n);
                let a = self.h.drain_more()?;
                self.h.action_cap = DRAIN_CAP;
                self.take(a);
            }
        }
        Ok(())
    }

    /// Ends the session and checks that every message ended.
    fn finish(&mut self) -> Result<(), Violation> {
        self.h.action_cap = usize::MAX;
        let (_, a) = self.h.close(1000, "", CloseMode::Abort)?;
        self.take(a);
        for _ in 0..4 {
            if matches!(self.h.s.state(), State::Closed | State::Failed) {
                break;
            }
            if let Some(t) = self.h.s.poll_timeout() {
                self.h.advance_to(t);
            }
            let a = self.h.timeout()?;
            self.take(a);
        }
        self.h.chk.finish(&self.h.s)
    }
}

/// Runs `ops` against a session configured by `params`, checking every invariant after every input.
pub fn run_ops(input: OpsInput) -> Result<(), Violation> {
    run(input, false).0
}

/// [`run_ops`] with the trace of what happened, to study a crash.
pub fn run_ops_traced(input: OpsInput) -> (Result<(), Violation>, Vec<String>) {
    run(input, true)
}

/// `t + d`, unless that would leave too little of the `Instant` range for the session's own deadlines
/// (every configured duration is at most `MAX_DURATION`): then `t`.
fn later(t: Instant, d: Duration) -> Instant {
    match t.checked_add(d) {
        Some(l) if l.checked_add(MAX_DURATION * 2).is_some() => l,
        _ => t,
    }
}

/// The earliest instant the platform represents (within a second).
fn earliest_instant() -> Instant {
    let mut t = Instant::now();
    for shift in (0..64).rev() {
        while let Some(earlier) = t.checked_sub(Duration::from_secs(1 << shift)) {
            t = earlier;
        }
    }
    t
}

fn run(input: OpsInput, trace: bool) -> (Result<(), Violation>, Vec<String>) {
    let cfg = input.params.config();
    let epoch = if input.params.far_past { earliest_instant() } else { Instant::now() };
    let Ok(mut h) = Harness::new(cfg, epoch, trace) else { return (Ok(()), Vec::new()) };
    h.action_cap = DRAIN_CAP;
    let mut d = Driver { h, opened: Vec::new(), handed: Vec::new(), last_ping: None };
    let r = input.ops.into_iter().try_for_each(|op| d.op(op)).and_then(|()| d.finish());
    (r, d.h.trace.lines().to_vec())
}

/// Target `core_ops`: arbitrary configuration and inputs; panics on a broken invariant.
pub fn core_ops(data: &[u8]) {
    let Ok(input) = OpsInput::arbitrary_take_rest(Unstructured::new(data)) else { return };
    if let Err(v) = run_ops(input) {
        panic!("invariant broken: {v}");
    }
}

/// Any configuration value, as a user could write it.
#[derive(Debug, Arbitrary)]
pub struct RawConfig {
    durations: [(u64, u32); 11],
    factor: f64,
    jitter: u8,
    max_attempts: Option<u32>,
    options: [bool; 5],
    misses: u32,
    max_messages: usize,
    max_bytes: usize,
    flags: [bool; 3],
    seed: u64,
}

impl RawConfig {
    /// The configuration, unchecked.
    pub fn config(&self) -> Config {
        let d: Vec<Duration> = self.durations.iter().map(|(s, n)| Duration::new(*s, n % 1_000_000_000)).collect();
        let mut retry = RetryPolicy::default();
        retry.try_again_later = d[9];
        retry.max_server_delay = d[10];
        Config::default()
            .connect_timeout(d[0])
            .close_timeout(d[1])
            .backoff(
                BackoffConfig::default()
                    .base(d[2])
                    .factor(self.factor)
                    .max_delay(d[3])
                    .jitter(
                        [Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated][usize::from(self.jitter % 4)],
                    )
                    .max_attempts(self.max_attempts)
                    .give_up_after(self.options[0].then_some(d[4]))
                    .stable_after(d[5])
                    .immediate_first_retry(self.options[1]),
            )
            .heartbeat(self.options[2].then(|| {
                HeartbeatConfig::default()
                    .interval(d[6])
                    .pong_timeout(d[7])
                    .tolerated_misses(self.misses)
                    .receive_idle(self.options[3].then_some(d[8]))
                    .late_tolerance(d[4])
            }))
            .queue(
                QueueConfig::default()
                    .max_messages(self.max_messages)
                    .max_bytes(self.max_bytes)
                    .overflow(if self.flags[0] { Overflow::DropOldest } else { Overflow::Reject })
                    .ttl(self.options[4].then_some(d[8]))
                    .in_flight(if self.flags[1] { InFlightPolicy::Requeue } else { InFlightPolicy::Abandon }),
            )
            .retry(retry)
            .seed(self.seed)
    }
}

/// Target `config`: arbitrary configuration values; building a session never panics, and a valid one
/// survives a short drive through every timer (connect timeout, backoff, heartbeat, close).
pub fn config(data: &[u8]) {
    let Ok(raw) = RawConfig::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let cfg = raw.config();
    let valid = cfg.validate().is_ok();
    let b = &cfg.backoff;
    if valid {
        for n in [1, 2, 3, 10, 64, u32::MAX] {
            let (lo, hi) = backoff_bounds(b, n).expect("every jitter mode the fuzzer draws is in spec");
            assert!(lo <= hi, "bounds({n}) = [{lo:?}, {hi:?}]");
            assert!(b.exponential(n) <= b.max_delay, "exponential({n}) above max_delay");
        }
        if let Some(hb) = &cfg.heartbeat {
            let _ = hb.detection_bound();
        }
    }
    let t0 = Instant::now();
    let Ok(mut s) = Session::new(cfg, t0) else {
        assert!(!valid, "a valid config was refused");
        return;
    };
    assert!(valid, "an invalid config was accepted");
    let mut now = t0;
    let _ = s.send(now, Message::text("queued"));
    let _ = s.connect(now);
    for round in 0..12 {
        while let Some(a) = s.poll_action() {
            if let Action::Open { transport, .. } = a {
                let ev = match round % 3 {
                    0 => TransportEvent::OpenFailed(OpenError::Http { status: 503, retry_after: None }),
                    1 => TransportEvent::Opened(ConnectInfo::new(Duration::from_millis(1))),
                    _ => TransportEvent::Closed(Err(TransportError::Io("reset".into()))),
                };
                s.handle_transport(now, transport, ev);
            }
        }
        while s.poll_event().is_some() {}
        if round == 9 {
            let _ = s.close(now, 1000, "", CloseMode::Drain);
        }
        match s.poll_timeout() {
            Some(t) => {
                assert!(t >= now, "poll_timeout in the past");
                now = t;
                s.handle_timeout(now);
            }
            None => break,
        }
    }
}

/// Target `parsers`: the parsers of untrusted input a driver uses (`Retry-After` values, text frame
/// payloads) and the classification of what a server sends (HTTP statuses, close codes).
pub fn parsers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(d) = parse_retry_after(&text) {
        let v = text.trim();
        assert!(!v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()), "accepted {text:?}");
        assert_eq!(v.parse::<u64>().ok(), Some(d.as_secs()), "wrong value for {text:?}");
    }
    match Message::text_from_bytes(Bytes::copy_from_slice(data)) {
        Ok(m) => {
            assert!(std::str::from_utf8(data).is_ok(), "accepted invalid UTF-8");
            assert_eq!(m.kind(), MessageKind::Text);
            assert_eq!(m.as_text().map(str::as_bytes), Some(data));
        }
        Err(e) => {
            let err = std::str::from_utf8(data).expect_err("refused valid UTF-8");
            assert_eq!(e.valid_up_to, err.valid_up_to());
            assert_eq!(&e.payload[..], data);
        }
    }
    let mut u = Unstructured::new(data);
    let (Ok(status), Ok(code), Ok(secs)) = (u.arbitrary::<u16>(), u.arbitrary::<u16>(), u.arbitrary::<u64>()) else {
        return;
    };
    let p = RetryPolicy::default();
    let retry_after = Some(Duration::from_secs(secs));
    match p.classify_http(status, retry_after) {
        Verdict::RetryAfter(d) => {
            assert!(d <= p.max_server_delay, "server delay not capped");
            assert!(matches!(status, 408 | 429 | 500..=599), "HTTP {status} retried");
        }
        Verdict::Retry => panic!("HTTP {status} with Retry-After ignored it"),
        Verdict::Fatal => assert!(!matches!(status, 408 | 429 | 500..=599), "HTTP {status} fatal"),
        other => panic!("HTTP {status}: verdict {other:?} unknown to this target"),
    }
    match p.classify_close(Some(code)) {
        Verdict::RetryAfter(d) => assert!(code == 1013 && d <= p.max_server_delay),
        Verdict::Fatal => assert!(matches!(code, 1002 | 1003 | 1007..=1010 | 1015), "close {code} fatal"),
        Verdict::Retry => assert!(!matches!(code, 1002 | 1003 | 1007..=1010 | 1013 | 1015), "close {code} retried"),
        other => panic!("close {code}: verdict {other:?} unknown to this target"),
    }
}

/// The proxy handshakes (`tether::proxy::{HttpConnect, Socks5}`), proxy URLs and `no_proxy` on
/// untrusted bytes. The first byte picks the handshake and its settings, the second the chunk size;
/// the rest is the proxy's answer. Invariants: no panic; the verdict does not depend on the chunking;
/// SOCKS5 never asks for more than a message can hold, and says nothing more once it has failed; a
/// parsed proxy URL never shows its password.
pub fn proxy_handshakes(data: &[u8]) {
    use tether::proxy::{Credentials, HttpConnect, ProxyEnv, ProxyUrl, Socks5, SocksTarget};
    let [mode, chunk, rest @ ..] = data else { return };
    let chunk = usize::from(*chunk).max(1);
    let creds = (mode & 1 == 1).then(|| Credentials::new("user", "fuzz-s3cret"));
    if mode & 2 == 0 {
        let whole = HttpConnect::new("h.example", 443, creds.as_ref()).handle_input(rest);
        let mut c = HttpConnect::new("h.example", 443, creds.as_ref());
        let mut chunked = Ok(None);
        let mut fed = 0;
        for part in rest.chunks(chunk) {
            chunked = c.handle_input(part);
            fed += part.len();
            match &chunked {
                Ok(None) => {}
                Ok(Some(extra)) => {
                    chunked = Ok(Some(extra + rest.len() - fed));
                    break;
                }
                Err(_) => break,
            }
        }
        assert_eq!(whole.is_ok(), chunked.is_ok(), "HTTP verdict depends on chunking: {whole:?} vs {chunked:?}");
        if let (Ok(a), Ok(b)) = (&whole, &chunked) {
            assert_eq!(a, b, "extra bytes depend on chunking");
        }
    } else {
        let target = if mode & 4 == 0 {
            SocksTarget::Addr(std::net::SocketAddr::from(([127, 0, 0, 1], 8080)))
        } else {
            SocksTarget::Domain("h.example".into(), 443)
        };
        let Ok(mut whole) = Socks5::new(target.clone(), creds.clone()) else { panic!("valid SOCKS5 settings refused") };
        let a = whole.handle_input(rest);
        let Ok(mut s) = Socks5::new(target, creds) else { panic!("valid SOCKS5 settings refused") };
        let mut b = Ok(false);
        for part in rest.chunks(chunk) {
            assert!(s.wants() <= 257, "SOCKS5 wants {} bytes", s.wants());
            let _ = s.take_output();
            b = s.handle_input(part);
            if b.is_err() {
                assert_eq!(s.wants(), 0, "a failed handshake asks for more");
                assert!(s.take_output().is_empty(), "a failed handshake has more to say");
                break;
            }
        }
        assert_eq!(a.is_ok(), b.is_ok(), "SOCKS5 verdict depends on chunking: {a:?} vs {b:?}");
    }
    let text = String::from_utf8_lossy(rest);
    if let Ok(p) = ProxyUrl::parse(&text) {
        let shown = format!("{p} {p:?}");
        assert!(!shown.contains('@'), "a proxy URL shows its user-info: {shown}");
    }
    let np = text.clone().into_owned();
    let env = ProxyEnv::with_lookup(move |k| match k {
        "http_proxy" => Some("http://proxy.example:3128".into()),
        "no_proxy" => Some(np.clone()),
        _ => None,
    });
    let _ = env.proxy_for(mode & 8 == 0, "h.example", 80);
    let _ = env.proxy_for(false, "10.1.2.3", u16::from(data[1]));
}
