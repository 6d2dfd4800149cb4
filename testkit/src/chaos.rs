//! Faults on a timer: [`ChaosServer`] and the [`Fault`]s it schedules.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::background::Background;
use crate::proxy::FaultProxy;
use crate::server::{Behavior, TestServer};

/// One fault, recurring or permanent. Parse one from the `tether serve --chaos` syntax with
/// [`str::parse`]: `restart=N[:DOWN]`, `close=N[:CODE]`, `blackhole=N[:HOLD]`,
/// `reject=STATUS[:RETRY_AFTER]` (durations as [`parse_duration`] reads them).
///
/// The rules, per fault:
/// - `Restart { every, down }`: every `every` the server crashes (connections dropped without a close
///   frame, new ones refused), stays down for `down`, then listens again on the same port.
/// - `Close { every, code }`: every `every` every open connection gets a close frame with `code`; the
///   server stays up.
/// - `Blackhole { every, hold }`: every `every` the link goes half-open for `hold` (sockets open,
///   nothing forwarded either way), then the held connections are cut. Needs the fault proxy, which
///   [`ChaosServer`] then puts in front of the server: its public address is the proxy's.
/// - `Reject { status, retry_after }`: every handshake is answered with `status` (and `Retry-After`).
///
/// Each timed fault runs on its own timer from the start: `restart=10` and `close=4` together crash
/// at 10 s, 20 s, ... and close at 4 s, 8 s, ... . Every fault is reported to the observer given to
/// [`ChaosBuilder::on_fault`] and logged through `tracing` (target `tether_chaos`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Crash every `every`; refuse connections for `down`, then listen again.
    Restart {
        /// Time between crashes (from the previous restart).
        every: Duration,
        /// How long the server stays down (default when parsed: 1 s).
        down: Duration,
    },
    /// Close every open connection with `code` every `every`.
    Close {
        /// Time between closes.
        every: Duration,
        /// The close code (default when parsed: 1012, service restart).
        code: u16,
    },
    /// A half-open link for `hold` every `every`, then the held connections are cut.
    Blackhole {
        /// Time between blackholes (from the end of the previous one).
        every: Duration,
        /// How long nothing is forwarded (default when parsed: 5 s).
        hold: Duration,
    },
    /// Answer every handshake with an HTTP status.
    Reject {
        /// The HTTP status (not 101).
        status: u16,
        /// The `Retry-After` header, in seconds.
        retry_after: Option<u64>,
    },
}

/// A fault specification that does not parse; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseFaultError(String);

/// Shortest period of a recurring fault: below it, a server would do nothing but fail.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// Reads a duration as seconds (`1.5`, `2s`) or milliseconds (`500ms`), between 0 and a year.
pub fn parse_duration(s: &str) -> Result<Duration, ParseFaultError> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| ParseFaultError(format!("expected seconds (e.g. 1.5, 2s, 500ms), got {s:?}")))?;
    let secs = v * scale;
    if !(0.0..=86_400.0 * 365.0).contains(&secs) {
        return Err(ParseFaultError(format!("duration out of range: {s:?}")));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn period(s: &str) -> Result<Duration, ParseFaultError> {
    let d = parse_duration(s)?;
    if d < MIN_PERIOD {
        return Err(ParseFaultError(format!("chaos period {s:?} is too short (at least 10ms)")));
    }
    Ok(d)
}

impl FromStr for Fault {
    type Err = ParseFaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, rest) =
            s.split_once('=').ok_or_else(|| ParseFaultError(format!("expected KIND=VALUE, got {s:?}")))?;
        let (a, b) = match rest.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (rest, None),
        };
        match kind {
            "restart" => Ok(Fault::Restart {
                every: period(a)?,
                down: b.map(period).transpose()?.unwrap_or(Duration::from_secs(1)),
            }),
            "close" => {
                let code = match b {
                    None => 1012,
                    Some(c) => c
                        .parse::<u16>()
                        .ok()
                        .filter(|c| matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999))
                        .ok_or_else(|| ParseFaultError(format!("invalid close code {c:?}")))?,
                };
                Ok(Fault::Close { every: period(a)?, code })
            }
            "blackhole" => Ok(Fault::Blackhole {
                every: period(a)?,
                hold: b.map(period).transpose()?.unwrap_or(Duration::from_secs(5)),
            }),
            "reject" => {
                let status = a
                    .parse::<u16>()
                    .ok()
                    .filter(|s| (100..=599).contains(s) && *s != 101)
                    .ok_or_else(|| ParseFaultError(format!("invalid HTTP status {a:?}")))?;
                let retry_after = b
                    .map(|r| {
                        r.parse::<u64>().map_err(|_| ParseFaultError(format!("invalid Retry-After {r:?} (seconds)")))
                    })
                    .transpose()?;
                Ok(Fault::Reject { status, retry_after })
            }
            other => Err(ParseFaultError(format!("unknown chaos {other:?}; use restart, close, blackhole or reject"))),
        }
    }
}

impl fmt::Display for Fault {
    /// The specification again, in the syntax [`str::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: &Duration| format!("{}ms", d.as_millis());
        match self {
            Fault::Restart { every, down } => write!(f, "restart={}:{}", ms(every), ms(down)),
            Fault::Close { every, code } => write!(f, "close={}:{code}", ms(every)),
            Fault::Blackhole { every, hold } => write!(f, "blackhole={}:{}", ms(every), ms(hold)),
            Fault::Reject { status, retry_after: None } => write!(f, "reject={status}"),
            Fault::Reject { status, retry_after: Some(r) } => write!(f, "reject={status}:{r}"),
        }
    }
}

/// A fault as it happens, for [`ChaosBuilder::on_fault`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChaosEvent {
    /// The server crashed: `dropped` connections dropped without a close frame; down for `down`.
    Crashed {
        /// Connections that were open.
        dropped: usize,
        /// How long it stays down.
        down: Duration,
    },
    /// The server listens again after a crash.
    Listening,
    /// The server could not bind its port again (another process took it); it tries again after the
    /// next `down` period.
    RestartFailed {
        /// The bind error.
        error: String,
    },
    /// Every open connection got a close frame.
    Closed {
        /// Connections that were open.
        connections: usize,
        /// The close code sent.
        code: u16,
    },
    /// The link went half-open for `hold`.
    BlackholeOn {
        /// How long nothing is forwarded.
        hold: Duration,
    },
    /// The blackhole ended; the connections it held were cut.
    BlackholeOff,
}

impl fmt::Display for ChaosEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChaosEvent::Crashed { dropped, down } => {
                write!(f, "crash: dropping {dropped} connections, refusing new ones for {down:?}")
            }
            ChaosEvent::Listening => f.write_str("listening again"),
            ChaosEvent::RestartFailed { error } => write!(f, "cannot listen again ({error}); retrying"),
            ChaosEvent::Closed { connections, code } => write!(f, "closing {connections} connections with {code}"),
            ChaosEvent::BlackholeOn { hold } => write!(f, "blackhole on: nothing is forwarded for {hold:?}"),
            ChaosEvent::BlackholeOff => f.write_str("blackhole off; the half-open connections are cut"),
        }
    }
}

type Observer = Arc<dyn Fn(&ChaosEvent) + Send + Sync>;

/// Settings of a [`ChaosServer`]; [`ChaosServer::builder`] makes one.
#[must_use = "a builder does nothing until `start`"]
pub struct ChaosBuilder {
    listen: SocketAddr,
    faults: Vec<Fault>,
    tls: Option<Arc<rustls::ServerConfig>>,
    observer: Option<Observer>,
}

impl fmt::Debug for ChaosBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosBuilder")
            .field("listen", &self.listen)
            .field("faults", &self.faults)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl ChaosBuilder {
    /// The public address (default `127.0.0.1:0`, a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Adds a fault (none by default: a plain echo server).
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// Adds faults.
    pub fn faults(mut self, faults: impl IntoIterator<Item = Fault>) -> Self {
        self.faults.extend(faults);
        self
    }

    /// Serves `wss://` with this configuration (a [`TestPki`](crate::pki::TestPki) makes one); default
    /// plain `ws://`.
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Calls `f` on the chaos thread for every fault as it happens (default: only `tracing` logs).
    pub fn on_fault(mut self, f: impl Fn(&ChaosEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(f));
        self
    }

    /// Binds and starts everything; the faults' timers start now. A bind failure (port taken, no
    /// permission) is the error.
    pub fn start(self) -> std::io::Result<ChaosServer> {
        let behavior = self
            .faults
            .iter()
            .find_map(|f| match f {
                Fault::Reject { status, retry_after } => {
                    Some(Behavior::Reject { status: *status, retry_after: retry_after.map(|r| r.to_string()) })
                }
                _ => None,
            })
            .unwrap_or(Behavior::Echo);
        let needs_proxy = self.faults.iter().any(|f| matches!(f, Fault::Blackhole { .. }));
        // With a blackhole the public port is the fault proxy's, and the server hides behind it.
        let (server, proxy) = if needs_proxy {
            let server = TestServer::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), behavior, self.tls.clone())?;
            let proxy = FaultProxy::start_at(self.listen, server.addr())?;
            (server, Some(proxy))
        } else {
            (TestServer::start_at(self.listen, behavior, self.tls.clone())?, None)
        };
        let chaos = ChaosServer {
            rt: Background::new("chaos"),
            tls: self.tls.is_some(),
            server: Arc::new(server),
            proxy: proxy.map(Arc::new),
            faults: self.faults,
        };
        let observer = self.observer;
        let report = move |e: ChaosEvent| {
            tracing::info!(target: "tether_chaos", "{e}");
            if let Some(f) = &observer {
                f(&e);
            }
        };
        for fault in chaos.faults.clone() {
            chaos.schedule(fault, report.clone());
        }
        Ok(chaos)
    }
}

/// An echo server with faults on a timer (see [`Fault`] for each fault's rules); `tether serve --chaos`
/// is this type behind a command line. The faults stop, and the server with them, when it is dropped.
///
/// ```
/// use std::time::Duration;
/// use tether_chaos::{ChaosServer, Fault};
///
/// // A server that closes every connection with 1012 every 200 ms, and says so.
/// let chaos = ChaosServer::builder()
///     .fault("close=200ms".parse()?)
///     .on_fault(|e| eprintln!("chaos: {e}"))
///     .start()?;
/// assert!(chaos.url().starts_with("ws://127.0.0.1:"));
/// assert_eq!(chaos.faults(), [Fault::Close { every: Duration::from_millis(200), code: 1012 }]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ChaosServer {
    /// Declared first: dropped first, so the schedules stop before the server and proxy they drive.
    rt: Background,
    tls: bool,
    server: Arc<TestServer>,
    proxy: Option<Arc<FaultProxy>>,
    faults: Vec<Fault>,
}

impl fmt::Debug for ChaosServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosServer").field("addr", &self.addr()).field("faults", &self.faults).finish_non_exhaustive()
    }
}

impl ChaosServer {
    /// A builder: plain `ws://` on `127.0.0.1:0`, no faults until added.
    pub fn builder() -> ChaosBuilder {
        ChaosBuilder { listen: SocketAddr::from(([127, 0, 0, 1], 0)), faults: Vec::new(), tls: None, observer: None }
    }

    /// The public address (the proxy's when a blackhole is scheduled).
    pub fn addr(&self) -> SocketAddr {
        self.proxy.as_ref().map_or(self.server.addr(), |p| p.addr())
    }

    /// `ws://127.0.0.1:PORT/`, or `wss://localhost:PORT/` with TLS (the test certificate names
    /// localhost).
    pub fn url(&self) -> String {
        match self.tls {
            false => format!("ws://{}/", self.addr()),
            true => format!("wss://localhost:{}/", self.addr().port()),
        }
    }

    /// The server, for what it recorded ([`TestServer::received`], [`TestServer::handshakes`], ...) and
    /// for faults on command on top of the schedule.
    pub fn server(&self) -> &TestServer {
        &self.server
    }

    /// The fault proxy in front of the server, when a blackhole is scheduled.
    pub fn proxy(&self) -> Option<&FaultProxy> {
        self.proxy.as_deref()
    }

    /// The scheduled faults.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    fn schedule(&self, fault: Fault, report: impl Fn(ChaosEvent) + Send + Sync + 'static) {
        let server = self.server.clone();
        let proxy = self.proxy.clone();
        match fault {
            // Permanent: set when the server started.
            Fault::Reject { .. } => {}
            Fault::Restart { every, down } => {
                self.rt.spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        report(ChaosEvent::Crashed { dropped: server.open_connections(), down });
                        server.stop();
                        loop {
                            tokio::time::sleep(down).await;
                            let s = server.clone();
                            // `try_restart` retries the bind for a moment: keep it off the async thread.
                            match tokio::task::spawn_blocking(move || s.try_restart()).await {
                                Ok(Ok(())) => break report(ChaosEvent::Listening),
                                Ok(Err(e)) => report(ChaosEvent::RestartFailed { error: e.to_string() }),
                                Err(e) => report(ChaosEvent::RestartFailed { error: e.to_string() }),
                            }
                        }
                    }
                });
            }
            Fault::Close { every, code } => {
                self.rt.spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        report(ChaosEvent::Closed { connections: server.open_connections(), code });
                        server.close_all(code, "chaos");
                    }
                });
            }
            Fault::Blackhole { every, hold } => {
                let Some(proxy) = proxy else { return };
                self.rt.spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        report(ChaosEvent::BlackholeOn { hold });
                        proxy.blackhole(true);
                        tokio::time::sleep(hold).await;
                        proxy.cut();
                        proxy.blackhole(false);
                        report(ChaosEvent::BlackholeOff);
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs() {
        let s = Duration::from_secs;
        let p = |x: &str| x.parse::<Fault>();
        assert_eq!(p("restart=10"), Ok(Fault::Restart { every: s(10), down: s(1) }));
        assert_eq!(p("restart=5:500ms"), Ok(Fault::Restart { every: s(5), down: Duration::from_millis(500) }));
        assert_eq!(p("close=3"), Ok(Fault::Close { every: s(3), code: 1012 }));
        assert_eq!(p("close=3:4000"), Ok(Fault::Close { every: s(3), code: 4000 }));
        assert_eq!(p("blackhole=8:2"), Ok(Fault::Blackhole { every: s(8), hold: s(2) }));
        assert_eq!(p("reject=503:2"), Ok(Fault::Reject { status: 503, retry_after: Some(2) }));
        for bad in ["restart", "restart=0", "close=1:1006", "reject=101", "reject=abc", "reject=503:x", "nope=1"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_parses_back() {
        for spec in ["restart=1500ms:200ms", "close=3s:4000", "blackhole=8:2", "reject=503:2", "reject=401"] {
            let f: Fault = spec.parse().expect("valid");
            assert_eq!(f.to_string().parse::<Fault>(), Ok(f));
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["-1", "NaN", "soon", "1e30"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    /// Every timed fault happens, on its timer, and is reported; a blackhole puts the proxy in front.
    #[test]
    fn schedules_fire_and_report() {
        let (tx, rx) = std::sync::mpsc::channel();
        let chaos = ChaosServer::builder()
            .faults(
                ["restart=150ms:50ms", "close=100ms:4000", "blackhole=120ms:40ms"].map(|f| f.parse().expect("valid")),
            )
            .on_fault(move |e| {
                let _ = tx.send(e.clone());
            })
            .start()
            .expect("binds on 127.0.0.1");
        let proxy = chaos.proxy().expect("a blackhole needs the proxy");
        assert_eq!(chaos.addr(), proxy.addr());
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let wanted = |seen: &[ChaosEvent]| {
            seen.contains(&ChaosEvent::Listening)
                && seen.contains(&ChaosEvent::BlackholeOff)
                && seen.iter().any(|e| matches!(e, ChaosEvent::Closed { code: 4000, .. }))
                && seen
                    .iter()
                    .any(|e| matches!(e, ChaosEvent::Crashed { down, .. } if *down == Duration::from_millis(50)))
        };
        while !wanted(&seen) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(e) => seen.push(e),
                Err(_) => panic!("not every fault happened within 30 s: {seen:?}"),
            }
        }
    }
}
