//! Interop: Tether against WebSocket servers it did not write, run on 127.0.0.1 as child processes:
//! Node's `ws` (tests/interop/ws_server.js) and Python's `websockets` (tests/interop/websockets_server.py).
//! Every scenario runs against both peers on tokio, smol and async-std.
//!
//! The peers are installed on first use when missing (`npm ci` in tests/interop, `websockets` into
//! tests/interop/.venv), as `.ci/run` also does. A peer that cannot be installed fails the test with the
//! command to run; set `TETHER_SKIP_INTEROP=1` to skip these tests explicitly instead.

use std::time::Duration;

use futures::StreamExt;
use tether::{BackoffConfig, Cause, ClientBuilder, Event, Events, FailReason, Message, State};

mod common;
use common::peers::{Kind, Peer, enabled};
use common::runtimes::{AsyncStd, Rt, Smol, Tokio, within};

// ----- runtimes (as in scenarios.rs) ----------------------------------------------------------------

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
