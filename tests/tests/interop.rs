//! Interop: Tether against WebSocket servers it did not write, run on 127.0.0.1 as child processes:
//! Node's `ws` (tests/interop/ws_server.js) and Python's `websockets` (tests/interop/websockets_server.py).
//! Every scenario runs against both peers on tokio, smol and async-std.
//!
//! The peers are installed on first use when missing (`npm ci` in tests/interop, `websockets` into
//! tests/interop/.venv), as `.ci/run` also does. A peer that cannot be installed fails the test with the
//! command to run; set `TETHER_SKIP_INTEROP=1` to skip these tests explicitly instead.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tether::{BackoffConfig, Cause, ClientBuilder, Event, Events, FailReason, Message, State};

mod common;
use common::runtimes::{AsyncStd, Rt, Smol, Tokio, within};

// ----- runtimes (as in scenarios.rs) ----------------------------------------------------------------

// ----- the peers --------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Node `ws`.
    Node,
    /// Python `websockets`.
    Python,
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

const INSTALL: &str = "the interop peers are installed by `bash .ci/run` (or by hand: `npm ci --prefix tests/interop` and \
                       `python3 -m venv tests/interop/.venv && tests/interop/.venv/bin/pip install -r \
                       tests/interop/requirements.txt`); set TETHER_SKIP_INTEROP=1 to skip these tests instead";

/// Installs the peer `kind` into tests/interop if it is missing, once per test process, so that the
/// README's test command works on a fresh machine (it needs `node`/`npm` and `python3`, which the
/// machine image has, and the npm and PyPI registries). `.ci/run` does the same before the tests.
fn ensure_installed(kind: Kind) -> Result<(), String> {
    static NODE: OnceLock<Result<(), String>> = OnceLock::new();
    static PYTHON: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = interop_dir();
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
        }
    };
    match kind {
        Kind::Node => NODE
            .get_or_init(|| {
                if dir.join("node_modules/ws/package.json").exists() {
                    return Ok(());
                }
                eprintln!("installing Node `ws` into {} (npm ci)", dir.display());
                run(Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
                    .arg(&dir))
            })
            .clone(),
        Kind::Python => PYTHON
            .get_or_init(|| {
                let venv = dir.join(".venv");
                let pip = venv.join("bin/pip");
                let have = Command::new(venv.join("bin/python"))
                    .args(["-c", "import websockets"])
                    .output()
                    .is_ok_and(|o| o.status.success());
                if have {
                    return Ok(());
                }
                eprintln!("installing Python `websockets` into {}", venv.display());
                if !pip.exists() {
                    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
                }
                run(Command::new(&pip)
                    .args(["install", "-q", "--disable-pip-version-check", "-r"])
                    .arg(dir.join("requirements.txt")))
            })
            .clone(),
    }
}

/// The command that starts `kind`, or why it cannot start.
fn command(kind: Kind) -> Result<Command, String> {
    let dir = interop_dir();
    ensure_installed(kind)?;
    match kind {
        Kind::Node => {
            if !dir.join("node_modules/ws/package.json").exists() {
                return Err(format!("Node `ws` is not installed in {}", dir.join("node_modules").display()));
            }
            let mut c = Command::new("node");
            c.arg(dir.join("ws_server.js"));
            Ok(c)
        }
        Kind::Python => {
            let python = dir.join(".venv/bin/python");
            if !python.exists() {
                return Err(format!("Python `websockets` is not installed ({} is missing)", python.display()));
            }
            let mut c = Command::new(python);
            c.arg(dir.join("websockets_server.py"));
            Ok(c)
        }
    }
}

/// Whether to run: false (with the reason printed) only when skipping was asked for explicitly.
fn enabled(kind: Kind) -> bool {
    match command(kind) {
        Ok(_) => true,
        Err(why) if std::env::var("TETHER_SKIP_INTEROP").is_ok_and(|v| v == "1") => {
            eprintln!("SKIPPED (TETHER_SKIP_INTEROP=1): {why}");
            false
        }
        Err(why) => panic!("{why}: {INSTALL}"),
    }
}

/// A peer server process; killed when dropped.
struct Peer {
    kind: Kind,
    mode: String,
    port: u16,
    child: Option<Child>,
}

impl Peer {
    fn start(kind: Kind, mode: &str) -> Self {
        let mut p = Self { kind, mode: mode.to_owned(), port: 0, child: None };
        p.spawn();
        p
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// Starts the process on `self.port` (0: any) and waits, bounded, for the port it prints.
    fn spawn(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut cmd = command(self.kind).unwrap_or_else(|why| panic!("{why}: {INSTALL}"));
            let mut child = cmd
                .arg(self.port.to_string())
                .arg(&self.mode)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start the {:?} peer: {e}; {INSTALL}", self.kind));
            let stdout = child.stdout.take().expect("piped");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let _ = tx.send(lines.next());
                for _ in lines {} // drain, so the peer never blocks on a full pipe
            });
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Some(Ok(line))) => {
                    self.port = line.trim().parse().unwrap_or_else(|_| panic!("{:?} peer printed {line:?}", self.kind));
                    self.child = Some(child);
                    return;
                }
                other => {
                    let _ = child.kill();
                    let status = child.wait();
                    // A restart may race the old socket's release: retry until the deadline.
                    assert!(
                        Instant::now() < deadline && self.port != 0,
                        "the {:?} peer ({}) did not report its port: {other:?}, exit {status:?}",
                        self.kind,
                        self.mode
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

// ----- helpers ------------------------------------------------------------------------------------------

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Waits (at most `d`) for an event matching `pred`, keeping every event in `seen`.
async fn until<R: Rt>(
    events: &mut Events,
    seen: &mut Vec<Event>,
    d: Duration,
    what: &str,
    mut pred: impl FnMut(&Event) -> bool,
) -> Event {
    within::<R, _>(d, what, async {
        while let Some(e) = events.next().await {
            seen.push(e.clone());
            if pred(&e) {
                return e;
            }
        }
        panic!("{what}: the event stream ended; saw {seen:?}");
    })
    .await
}

fn fast(url: &str) -> ClientBuilder {
    ClientBuilder::new(url)
        .backoff(BackoffConfig::default().base(ms(20)).max_delay(ms(200)).stable_after(ms(300)))
        .connect_timeout(secs(3))
        .close_timeout(secs(2))
}

fn is_text(e: &Event, text: &str) -> bool {
    matches!(e, Event::Message(m) if m.as_text() == Some(text))
}

fn connected(e: &Event) -> bool {
    matches!(e, Event::Connected { .. })
}

fn remote_close(cause: &Cause, code: u16) -> bool {
    matches!(cause, Cause::RemoteClosed(Some(f)) if f.code == code)
}

// ----- scenarios ------------------------------------------------------------------------------------------

/// Text, binary (every byte value), a 1 MiB message and a burst, all echoed exactly and in order.
async fn echo<R: Rt>(kind: Kind) {
    let peer = Peer::start(kind, "echo");
    let (client, mut events) = R::connect(fast(&peer.url()).build().unwrap());
    let mut seen = vec![];
    until::<R>(&mut events, &mut seen, secs(10), "connected", connected).await;
    let binary: Vec<u8> = (0..=255).collect();
    let big = "x".repeat(1 << 20);
    client.send("hello").await.unwrap();
    client.send(Message::binary(binary.clone())).await.unwrap();
    client.send(big.clone()).await.unwrap();
    for i in 0..200 {
        client.send(format!("burst {i}")).await.unwrap();
    }
    let mut got = vec![];
    within::<R, _>(secs(15), "203 echoes", async {
        while got.len() < 203 {
            match events.next().await {
                Some(Event::Message(m)) => got.push(m),
                Some(_) => {}
                None => panic!("event stream ended after {} echoes", got.len()),
            }
        }
    })
    .await;
    assert_eq!(got[0].as_text(), Some("hello"));
    assert!(got[1].as_text().is_none(), "binary came back as binary");
    assert_eq!(&got[1].payload()[..], &binary[..]);
    assert_eq!(got[2].as_text(), Some(big.as_str()));
    for (i, m) in got[3..].iter().enumerate() {
        assert_eq!(m.as_text(), Some(format!("burst {i}").as_str()), "burst out of order");
    }
    assert_eq!(client.state(), State::Connected);
}

/// The server pings every 50 ms; an otherwise idle client answers every ping, promptly.
async fn server_pings<R: Rt>(kind: Kind) {
    let peer = Peer::start(kind, "ping:50");
    // Tether's own heartbeat off: the only pongs are answers to the server.
    let (client, mut events) = R::connect(fast(&peer.url()).heartbeat(None).build().unwrap());
    let mut seen = vec![];
    until::<R>(&mut events, &mut seen, secs(10), "connected", connected).await;
    R::sleep(ms(1_000)).await;
    client.send("stats?").await.unwrap();
    let e = until::<R>(
        &mut events,
        &mut seen,
        secs(5),
        "stats",
        |e| matches!(e, Event::Message(m) if m.as_text().is_some_and(|t| t.starts_with("stats "))),
    )
    .await;
    let Event::Message(m) = e else { unreachable!() };
    let text = m.as_text().unwrap_or_default().to_owned();
    let field = |name: &str| -> u64 {
        text.split(' ')
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text:?}"))
    };
    let (pings, pongs, max_ms) = (field("pings"), field("pongs"), field("max_pong_ms"));
    eprintln!("{kind:?} peer: {text}");
    assert!(pings >= 5, "the server pinged only {pings} times in 1 s: {text}");
    assert!(pongs + 1 >= pings, "unanswered pings (an unflushed pong?): {text}");
    assert!(max_ms <= 500, "a pong took {max_ms} ms: {text}");
}

/// The server closes with 1001 (going away): the client reconnects and carries on.
async fn close_1001_reconnects<R: Rt>(kind: Kind) {
    let peer = Peer::start(kind, "close:1001:2");
    let (client, mut events) = R::connect(fast(&peer.url()).build().unwrap());
    let mut seen = vec![];
    until::<R>(&mut events, &mut seen, secs(10), "connected", connected).await;
    client.send("a").await.unwrap();
    client.send("b").await.unwrap();
    let e =
        until::<R>(&mut events, &mut seen, secs(5), "disconnected", |e| matches!(e, Event::Disconnected { .. })).await;
    let Event::Disconnected { cause, next_attempt_at, .. } = &e else { unreachable!() };
    assert!(remote_close(cause, 1001), "{e:?}");
    assert!(next_attempt_at.is_some(), "1001 is retried: {e:?}");
    let e = until::<R>(&mut events, &mut seen, secs(10), "reconnected", connected).await;
    assert!(matches!(e, Event::Connected { reconnect: true, .. }), "{e:?}");
    client.send("c").await.unwrap();
    until::<R>(&mut events, &mut seen, secs(5), "echo after reconnect", |e| is_text(e, "c")).await;
    assert!(seen.iter().any(|e| is_text(e, "b")), "the message before the close was echoed");
    assert_eq!(client.stats().reconnects, 1);
}

/// The server closes with 1008 (policy violation): fatal, the client gives up without retrying.
async fn close_1008_fatal<R: Rt>(kind: Kind) {
    let peer = Peer::start(kind, "close:1008:1");
    let (client, mut events) = R::connect(fast(&peer.url()).build().unwrap());
    let mut seen = vec![];
    until::<R>(&mut events, &mut seen, secs(10), "connected", connected).await;
    client.send("a").await.unwrap();
    let e = until::<R>(&mut events, &mut seen, secs(5), "failed", |e| matches!(e, Event::Failed(_))).await;
    assert!(matches!(&e, Event::Failed(FailReason::Fatal(c)) if remote_close(c, 1008)), "{e:?}");
    R::sleep(ms(300)).await;
    assert_eq!(client.state(), State::Failed);
    assert_eq!(client.stats().connects, 1, "no reconnection after 1008");
}

/// The server process restarts: the client reconnects and flushes what was queued meanwhile, in order.
async fn server_restart<R: Rt>(kind: Kind) {
    let mut peer = Peer::start(kind, "echo");
    let (client, mut events) = R::connect(fast(&peer.url()).build().unwrap());
    let mut seen = vec![];
    until::<R>(&mut events, &mut seen, secs(10), "connected", connected).await;
    client.send("before").await.unwrap();
    until::<R>(&mut events, &mut seen, secs(5), "echo before", |e| is_text(e, "before")).await;

    peer.stop();
    until::<R>(&mut events, &mut seen, secs(5), "disconnected", |e| matches!(e, Event::Disconnected { .. })).await;
    for i in 0..50 {
        client.send(format!("queued {i}")).await.unwrap();
    }
    R::sleep(ms(300)).await; // a few refused attempts
    peer.restart();
    until::<R>(&mut events, &mut seen, secs(10), "reconnected", connected).await;
    let mut got = vec![];
    within::<R, _>(secs(10), "50 echoes after the restart", async {
        while got.len() < 50 {
            match events.next().await {
                Some(Event::Message(m)) => got.push(m.as_text().unwrap_or_default().to_owned()),
                Some(_) => {}
                None => panic!("event stream ended after {} echoes", got.len()),
            }
        }
    })
    .await;
    let want: Vec<String> = (0..50).map(|i| format!("queued {i}")).collect();
    assert_eq!(got, want, "queued messages flushed in order, once");
    assert!(client.stats().reconnects >= 1);
}

macro_rules! peer_suite {
    ($module:ident, $rt:ty, $kind:expr) => {
        mod $module {
            use super::*;
            #[test]
            fn echo() {
                if enabled($kind) {
                    <$rt>::block_on(super::echo::<$rt>($kind))
                }
            }
            #[test]
            fn server_pings() {
                if enabled($kind) {
                    <$rt>::block_on(super::server_pings::<$rt>($kind))
                }
            }
            #[test]
            fn close_1001_reconnects() {
                if enabled($kind) {
                    <$rt>::block_on(super::close_1001_reconnects::<$rt>($kind))
                }
            }
            #[test]
            fn close_1008_fatal() {
                if enabled($kind) {
                    <$rt>::block_on(super::close_1008_fatal::<$rt>($kind))
                }
            }
            #[test]
            fn server_restart() {
                if enabled($kind) {
                    <$rt>::block_on(super::server_restart::<$rt>($kind))
                }
            }
        }
    };
}

peer_suite!(node_ws_on_tokio, Tokio, Kind::Node);
peer_suite!(node_ws_on_smol, Smol, Kind::Node);
peer_suite!(node_ws_on_async_std, AsyncStd, Kind::Node);
peer_suite!(python_websockets_on_tokio, Tokio, Kind::Python);
peer_suite!(python_websockets_on_smol, Smol, Kind::Python);
peer_suite!(python_websockets_on_async_std, AsyncStd, Kind::Python);
