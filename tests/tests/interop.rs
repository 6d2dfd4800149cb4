//! Interop: Tether against WebSocket servers it did not write, run on 127.0.0.1 as child processes:
//! Node's `ws` (tests/interop/ws_server.js) and Python's `websockets` (tests/interop/websockets_server.py).
//! Every scenario runs against both peers on tokio, smol and async-std.
//!
//! The peers are installed on first use when missing (`npm ci` in tests/interop, `websockets` into
//! tests/interop/.venv), as `.ci/run` also does. A peer that cannot be installed fails the test with the
//! command to run; set `TETHER_SKIP_INTEROP=1` to skip these tests explicitly instead.

use std::time::Duration;

use futures::StreamExt;
use tether::{
    BackoffConfig, Cause, ClientBuilder, DeflateConfig, DeflateParams, Event, Events, FailReason, Message, State,
};

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

/// The server pings every 50 ms; an otherwise idle client answers every ping, promptly. The server's
/// timer is its own: on a loaded machine it fires less often, so the client waits (bounded) until the
/// server has pinged at least 5 times rather than a fixed second; a pong must follow each ping within
/// 2 s (an unflushed pong on an idle client would never be sent).
async fn server_pings<R: Rt>(kind: Kind) {
    let peer = Peer::start(kind, "ping:50");
    // Tether's own heartbeat off: the only pongs are answers to the server.
    let (client, mut events) = R::connect(fast(&peer.url()).heartbeat(None).build().unwrap());
    let mut seen = vec![];
    until::<R>(&mut events, &mut seen, secs(10), "connected", connected).await;
    let mut text = String::new();
    for _ in 0..20 {
        R::sleep(ms(1_000)).await;
        text = peer_stats::<R>(&client, &mut events, &mut seen).await;
        if stat(&text, "pings") >= 5 {
            break;
        }
    }
    let (pings, pongs, max_ms) = (stat(&text, "pings"), stat(&text, "pongs"), stat(&text, "max_pong_ms"));
    eprintln!("{kind:?} peer: {text}");
    assert!(pings >= 5, "the server pinged only {pings} times in 20 s: {text}");
    assert!(pongs + 1 >= pings, "unanswered pings (an unflushed pong?): {text}");
    assert!(max_ms <= 2_000, "a pong took {max_ms} ms: {text}");
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

/// The `stats?` answer of a peer, as numbers.
async fn peer_stats<R: Rt>(client: &tether::Client, events: &mut Events, seen: &mut Vec<Event>) -> String {
    client.send("stats?").await.unwrap();
    let e = until::<R>(
        events,
        seen,
        secs(5),
        "stats",
        |e| matches!(e, Event::Message(m) if m.as_text().is_some_and(|t| t.starts_with("stats "))),
    )
    .await;
    let Event::Message(m) = e else { unreachable!() };
    m.as_text().unwrap_or_default().to_owned()
}

fn stat(text: &str, name: &str) -> u64 {
    text.split(' ')
        .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text:?}"))
}

/// Waits for `n` messages and returns them.
async fn messages<R: Rt>(events: &mut Events, n: usize, what: &str) -> Vec<Message> {
    let mut got = Vec::with_capacity(n);
    within::<R, _>(secs(20), what, async {
        while got.len() < n {
            match events.next().await {
                Some(Event::Message(m)) => got.push(m),
                Some(_) => {}
                None => panic!("{what}: event stream ended after {} messages", got.len()),
            }
        }
    })
    .await;
    got
}

/// A market-data tick, ~150-200 bytes of JSON.
fn tick(i: u64) -> String {
    let p = 64_000 + (i * 7919) % 1000;
    format!(
        r#"{{"type":"ticker","product_id":"BTC-USD","sequence":{},"price":"{}.{:02}","best_bid":"{}.00","best_ask":"{}.50","volume_24h":"{}.{:04}","side":"{}","time":"2025-11-29T21:{:02}:{:02}.{:06}Z"}}"#,
        9_000_000 + i,
        p,
        i % 100,
        p - 1,
        p,
        12_000 + i % 500,
        i % 10_000,
        if i.is_multiple_of(3) { "buy" } else { "sell" },
        (i / 60) % 60,
        i % 60,
        i * 137 % 1_000_000
    )
}

/// permessage-deflate against a peer that compresses: the agreed parameters are checked by `check`,
/// a feed of ticks and a large repetitive text come back exactly, and the peer's own byte counts show
/// that both directions were compressed; then incompressible and empty messages come back too.
async fn deflate_echo<R: Rt>(kind: Kind, compression: &str, client_cfg: DeflateConfig, check: fn(&DeflateParams)) {
    let peer = Peer::start_with(kind, "echo", compression);
    let (client, mut events) = R::connect(fast(&peer.url()).compression(Some(client_cfg)).build().unwrap());
    let mut seen = vec![];
    let e = until::<R>(&mut events, &mut seen, secs(10), "connected", connected).await;
    let Event::Connected { info, .. } = &e else { unreachable!() };
    let params = info.compression.unwrap_or_else(|| panic!("{kind:?} ({compression}) did not negotiate: {info:?}"));
    check(&params);
    let ticks: Vec<String> = (0..300).map(tick).collect();
    let big = ticks.join("\n").repeat(4);
    let mut sent = 0;
    for t in &ticks {
        client.send(t.as_str()).await.unwrap();
        sent += t.len();
    }
    client.send(big.as_str()).await.unwrap();
    sent += big.len();
    let got = messages::<R>(&mut events, ticks.len() + 1, "the ticks echoed").await;
    for (i, t) in ticks.iter().enumerate() {
        assert_eq!(got[i].as_text(), Some(t.as_str()), "tick {i}");
    }
    assert_eq!(got[ticks.len()].as_text(), Some(big.as_str()));
    let text = peer_stats::<R>(&client, &mut events, &mut seen).await;
    eprintln!("{kind:?} ({compression}, {params}): {sent} bytes of payload each way; {text}");
    assert_eq!(stat(&text, "deflate"), 1, "{text}");
    // Both directions compressed: each way, the wire carried a fraction of the payload.
    assert!(stat(&text, "wire_in") < sent as u64 / 3, "the client's messages were not compressed: {text}");
    assert!(stat(&text, "wire_out") < sent as u64 / 3, "the server's messages were not compressed: {text}");
    // Incompressible, empty and non-ASCII messages.
    let noise = tether_tests::noise(0x2545_f491_4f6c_dd1d, 65_536);
    client.send(Message::binary(noise.clone())).await.unwrap();
    client.send("").await.unwrap();
    client.send(Message::binary(Vec::new())).await.unwrap();
    client.send("héllo wörld ✓".repeat(300)).await.unwrap();
    let got = messages::<R>(&mut events, 4, "the rest echoed").await;
    assert_eq!(&got[0].payload()[..], &noise[..]);
    assert_eq!((got[1].as_text(), got[2].as_text(), got[2].payload().len()), (Some(""), None, 0));
    assert_eq!(got[3].as_text(), Some("héllo wörld ✓".repeat(300).as_str()));
    assert_eq!(client.state(), State::Connected);
}

/// Every outgoing message at or above 64 bytes compressed, to see the ticks shrink too.
fn eager() -> DeflateConfig {
    DeflateConfig::default().threshold(Some(64))
}

/// With context takeover (each side's window carries over from message to message).
async fn deflate_context_takeover<R: Rt>(kind: Kind) {
    let compression = if kind == Kind::Node { "deflate" } else { "default" };
    deflate_echo::<R>(kind, compression, eager(), |p| {
        assert!(!p.server_no_context_takeover && !p.client_no_context_takeover, "{p}");
    })
    .await;
}

/// Without context takeover: asked by the client (with a 1 KiB server window and a 2 KiB client one)
/// and imposed by the server.
async fn deflate_no_context_takeover<R: Rt>(kind: Kind) {
    let cfg = eager()
        .server_no_context_takeover(true)
        .client_no_context_takeover(true)
        .server_max_window_bits(Some(10))
        .client_max_window_bits(11);
    deflate_echo::<R>(kind, "nct", cfg, |p| {
        assert!(p.server_no_context_takeover && p.client_no_context_takeover, "{p}");
        assert!(p.server_max_window_bits <= 10 && p.client_max_window_bits <= 11, "{p}");
    })
    .await;
}

/// A peer that declines: no compression agreed, messages flow uncompressed.
async fn deflate_declined<R: Rt>(kind: Kind) {
    let peer = Peer::start_with(kind, "echo", "plain");
    let (client, mut events) = R::connect(fast(&peer.url()).compression(Some(eager())).build().unwrap());
    let mut seen = vec![];
    let e = until::<R>(&mut events, &mut seen, secs(10), "connected", connected).await;
    assert!(matches!(&e, Event::Connected { info, .. } if info.compression.is_none()), "{e:?}");
    let big = tick(1).repeat(1000);
    client.send(big.as_str()).await.unwrap();
    until::<R>(&mut events, &mut seen, secs(5), "echo", |e| is_text(e, &big)).await;
    let text = peer_stats::<R>(&client, &mut events, &mut seen).await;
    assert_eq!(stat(&text, "deflate"), 0, "{text}");
    assert!(stat(&text, "wire_in") > big.len() as u64, "sent uncompressed: {text}");
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
            #[test]
            fn deflate_context_takeover() {
                if enabled($kind) {
                    <$rt>::block_on(super::deflate_context_takeover::<$rt>($kind))
                }
            }
            #[test]
            fn deflate_no_context_takeover() {
                if enabled($kind) {
                    <$rt>::block_on(super::deflate_no_context_takeover::<$rt>($kind))
                }
            }
            #[test]
            fn deflate_declined() {
                if enabled($kind) {
                    <$rt>::block_on(super::deflate_declined::<$rt>($kind))
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
