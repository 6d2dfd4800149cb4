//! The workloads, each once, for Tether and for the raw baseline. Timing never includes connection
//! setup (except in the connect runs).

use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tether::{BackoffConfig, ClientBuilder, ClientConfig, Event, Events, Jitter, Message, State};
use tether_benches::END;

use crate::rt::{Rt, WsIo, with_raw};
use crate::server::Server;

pub fn config(url: &str) -> ClientConfig {
    ClientBuilder::new(url).build().expect("valid config")
}

async fn wait_connected(events: &mut Events) -> Instant {
    while let Some(e) = events.next().await {
        match e {
            Event::Connected { .. } => return Instant::now(),
            Event::Failed(f) => panic!("client failed: {f:?}"),
            _ => {}
        }
    }
    panic!("events ended before Connected")
}

fn payload(size: usize) -> Bytes {
    Bytes::from(vec![0x5a; size])
}

/// One-way: `n` messages of `size` bytes with `client.send(m).await` per message, then the end marker;
/// the time runs until the server's count comes back. The events stream is consumed by a separate
/// task (it must be: the count arrives on it; the per-message `Outcome` events go through it too).
pub async fn tether_oneway(rt: Rt, url: String, n: usize, size: usize) -> Duration {
    let (client, mut events) = rt.tether(config(&url));
    wait_connected(&mut events).await;
    let reader = rt.spawn(async move {
        while let Some(e) = events.next().await {
            if let Event::Message(m) = e {
                return m.as_text().and_then(|t| t.parse::<usize>().ok()).expect("count");
            }
        }
        panic!("events ended before the count")
    });
    let p = payload(size);
    let t0 = Instant::now();
    for _ in 0..n {
        client.send(Message::binary(p.clone())).await.expect("send");
    }
    client.send(Message::text(END)).await.expect("send");
    let count = reader.await;
    let dt = t0.elapsed();
    assert_eq!(count, n, "the server counted {count} of {n} messages");
    client.close(1000, "done").await.expect("close");
    dt
}

/// One-way on the raw socket: `send` per message (each flushes), or batched (`send_all`: feed, flush
/// once); the same end marker and end condition as Tether's.
pub async fn raw_oneway<W: WsIo>(mut ws: W, n: usize, size: usize, batched: bool) -> Duration {
    let p = payload(size);
    let t0 = Instant::now();
    if batched {
        let mut msgs = futures::stream::iter((0..n).map(|_| Ok(WsMessage::Binary(p.clone()))));
        ws.send_all(&mut msgs).await.expect("send_all");
    } else {
        for _ in 0..n {
            ws.send(WsMessage::Binary(p.clone())).await.expect("send");
        }
    }
    ws.send(WsMessage::Text(Utf8Bytes::from_static(END))).await.expect("send");
    let count = loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => break t.parse::<usize>().expect("count"),
            Some(Ok(_)) => {}
            other => panic!("no count from the server: {other:?}"),
        }
    };
    let dt = t0.elapsed();
    assert_eq!(count, n, "the server counted {count} of {n} messages");
    close_raw(ws).await;
    dt
}

async fn close_raw<W: WsIo>(mut ws: W) {
    let _ = SinkExt::close(&mut ws).await;
    while let Some(Ok(_)) = ws.next().await {}
}

/// Echo: `n` sequential round trips of 64 B (`send().await`, then the next `Message` event).
pub async fn tether_echo(rt: Rt, url: String, n: usize) -> Vec<Duration> {
    let (client, mut events) = rt.tether(config(&url));
    wait_connected(&mut events).await;
    let p = payload(64);
    let mut rtts = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        client.send(Message::binary(p.clone())).await.expect("send");
        loop {
            match events.next().await.expect("event") {
                Event::Message(_) => break,
                Event::Failed(f) => panic!("client failed: {f:?}"),
                _ => {}
            }
        }
        rtts.push(t0.elapsed());
    }
    drop(events);
    client.close(1000, "done").await.expect("close");
    rtts
}

pub async fn raw_echo<W: WsIo>(mut ws: W, n: usize) -> Vec<Duration> {
    let p = payload(64);
    let mut rtts = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        ws.send(WsMessage::Binary(p.clone())).await.expect("send");
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Binary(_))) => break,
                Some(Ok(_)) => {}
                other => panic!("no echo: {other:?}"),
            }
        }
        rtts.push(t0.elapsed());
    }
    close_raw(ws).await;
    rtts
}

/// Connect: from `connect` to the `Connected` event (TCP + WebSocket handshake + driver start).
pub async fn tether_connects(rt: Rt, url: String, n: usize) -> Vec<Duration> {
    let cfg = config(&url);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let (client, mut events) = rt.tether(cfg.clone());
        let t = wait_connected(&mut events).await;
        out.push(t - t0);
        drop(events);
        client.close(1000, "done").await.expect("close");
    }
    out
}

/// Connect: raw `connect_async` (tokio) / TCP connect + `client_async` (async-tungstenite).
pub async fn raw_connects(rt: Rt, url: String, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        with_raw!(rt, url, |ws| {
            out.push(t0.elapsed());
            close_raw(ws).await;
        });
    }
    out
}

/// One reconnect sample.
pub struct Reconnect {
    /// From max(server accepting again, the attempt the core scheduled) to `Connected`.
    pub overhead: Duration,
    /// The backoff delay the core scheduled.
    pub delay: Duration,
}

/// Reconnect: the server is killed (SIGKILL) and restarted at once on the same port; the client
/// (backoff 200 ms, no jitter, stable after 50 ms) reconnects. Returns the samples and the server.
pub async fn tether_reconnects(rt: Rt, mut server: Server, cpu: Option<usize>, n: usize) -> (Vec<Reconnect>, Server) {
    let backoff = BackoffConfig::default()
        .base(Duration::from_millis(200))
        .jitter(Jitter::None)
        .stable_after(Duration::from_millis(50));
    let cfg = ClientBuilder::new(server.url(tether_benches::SINK)).backoff(backoff).build().expect("valid config");
    let (client, mut events) = rt.tether(cfg);
    wait_connected(&mut events).await;
    let mut out = Vec::with_capacity(n);
    let port = server.port;
    for _ in 0..n {
        // Let the connection become stable, so the backoff starts from `base`.
        rt.sleep(Duration::from_millis(100)).await;
        server.kill();
        drop(server);
        // Restart from another thread: the executor keeps running the client meanwhile.
        let restart = std::thread::spawn(move || Server::start(port, cpu));
        let mut at = None;
        let mut delay = Duration::ZERO;
        let connected = loop {
            match events.next().await.expect("event") {
                Event::RetryScheduled { delay: d, at: a, .. } => {
                    at = Some(a);
                    delay = d;
                }
                Event::Connected { info, .. } => {
                    let now = Instant::now();
                    if std::env::var_os("TETHER_BENCH_RECONNECT_PARTS").is_some() {
                        // Where the time goes: the attempt's start after the scheduled instant, and the
                        // attempt itself by phase (TETHER_BENCH_RECONNECT_PARTS=1 in the environment).
                        let start = now - info.handshake;
                        eprintln!(
                            "reconnect: at->start {:?} handshake {:?} phases {:?}",
                            at.map(|a| start.saturating_duration_since(a)),
                            info.handshake,
                            info.phases
                        );
                    }
                    break now;
                }
                Event::Failed(f) => panic!("client failed: {f:?}"),
                _ => {}
            }
        };
        server = restart.join().expect("server restart");
        let from = at.map_or(server.ready_at, |a| a.max(server.ready_at));
        out.push(Reconnect { overhead: connected.saturating_duration_since(from), delay });
    }
    drop(events);
    client.close(1000, "done").await.expect("close");
    (out, server)
}

/// Half-open: the server goes silent right after the handshake. Returns the time from `Connected` to
/// `Disconnected` (heartbeat), and the configured bound.
pub async fn tether_half_open(rt: Rt, url: String, interval: Duration, pong: Duration) -> (Duration, Duration) {
    let cfg = ClientBuilder::new(url).ping_interval(interval).pong_timeout(pong).build().expect("valid config");
    let bound = cfg.core().heartbeat.as_ref().expect("heartbeat on").detection_bound();
    let (client, mut events) = rt.tether(cfg);
    let t0 = wait_connected(&mut events).await;
    let detected = loop {
        match events.next().await.expect("event") {
            Event::Disconnected { cause: tether::Cause::Heartbeat(_), .. } => break t0.elapsed(),
            Event::Disconnected { cause, .. } => panic!("disconnected for another reason: {cause}"),
            _ => {}
        }
    };
    drop(events);
    client.close_with(1000, "done", tether::CloseMode::Abort).await.expect("close");
    debug_assert!(client.state() == State::Closed);
    (detected, bound)
}

/// The JSON feed: `n` ticks the server pushes right after the handshake, compressed when the client
/// offers permessage-deflate (`compression`) and plain when it does not; the time from `Connected`
/// to the n-th message.
pub async fn tether_feed(rt: Rt, url: String, n: usize, compression: bool) -> Duration {
    let b = ClientBuilder::new(format!("{url}{}?n={n}", tether_benches::FEED));
    let cfg = if compression { b } else { b.compression(None) }.build().expect("valid config");
    let (client, mut events) = rt.tether(cfg);
    let t0 = loop {
        match events.next().await.expect("event") {
            Event::Connected { info, .. } => {
                assert_eq!(info.compression.is_some(), compression, "compression negotiated as asked");
                break Instant::now();
            }
            Event::Failed(f) => panic!("client failed: {f:?}"),
            _ => {}
        }
    };
    let mut got = 0;
    while got < n {
        match events.next().await.expect("event") {
            Event::Message(_) => got += 1,
            Event::Failed(f) => panic!("client failed: {f:?}"),
            _ => {}
        }
    }
    let dt = t0.elapsed();
    drop(events);
    drop(client);
    dt
}
