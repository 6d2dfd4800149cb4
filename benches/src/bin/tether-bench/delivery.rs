//! Issue 12's rows: delivery past the socket. Tracked 64 B messages acknowledged by the server against
//! untracked Tether, and request/response round trips (`Client::request`) against the same done by hand
//! on raw tokio-tungstenite (a reader task and a `HashMap` of pending ids, the usual hand-written
//! client). In its own module so that other rows' edits to `main.rs` do not collide with these.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message as WsMessage;
use bytes::Bytes;
use futures::channel::oneshot;
use futures::{SinkExt, StreamExt};
use tether::{AckKey, ClientBuilder, ClientConfig, Event, Message, Outcome};
use tether_benches::{ACK, ECHO, END, SINK, median, percentile};

use crate::rt::Rt;
use crate::server::Server;
use crate::{Row, latency_rows, rate, verdict};

/// How many messages and round trips each run takes.
pub struct Sizes {
    pub reps: usize,
    /// Messages per throughput run (tracked, and untracked).
    pub messages: usize,
    /// Round trips per request/response run.
    pub requests: usize,
}

/// A 64 B payload whose first 8 bytes are `key` (little endian): what the `/ack` endpoint acknowledges
/// and the `/echo` endpoint sends back, so the key is found in the answer.
fn keyed(key: u64) -> Bytes {
    let mut b = [0x5au8; 64];
    b[..8].copy_from_slice(&key.to_le_bytes());
    Bytes::copy_from_slice(&b)
}

/// The key of an answer: its first 8 bytes.
fn key_of(payload: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(payload.get(..8)?.try_into().ok()?))
}

/// The correlation both Tether runs install.
fn correlated(url: &str) -> ClientConfig {
    ClientBuilder::new(url)
        .correlate(|m: &Message| key_of(m.payload()).map(AckKey::from))
        .build()
        .expect("valid config")
}

async fn wait_connected(events: &mut tether::Events) {
    while let Some(e) = events.next().await {
        match e {
            Event::Connected { .. } => return,
            Event::Failed(f) => panic!("client failed: {f:?}"),
            _ => {}
        }
    }
    panic!("events ended before Connected")
}

/// Tracked: `n` messages with `send_tracked(m, key).await`, each acknowledged by the server (`/ack`);
/// the time runs until the last `Acked` outcome.
async fn tracked(rt: Rt, url: String, n: usize) -> Duration {
    let (client, mut events) = rt.tether(correlated(&url));
    wait_connected(&mut events).await;
    let reader = rt.spawn(async move {
        let mut acked = 0;
        while let Some(e) = events.next().await {
            match e {
                Event::Outcome { outcome: Outcome::Acked, .. } => {
                    acked += 1;
                    if acked == n {
                        return;
                    }
                }
                Event::Outcome { outcome, .. } => panic!("a tracked message ended {outcome:?}"),
                _ => {}
            }
        }
        panic!("events ended after {acked} of {n} acknowledgements")
    });
    let t0 = Instant::now();
    for i in 0..n as u64 {
        client.send_tracked(Message::binary(keyed(i)), i).await.expect("send_tracked");
    }
    reader.await;
    let dt = t0.elapsed();
    client.close(1000, "done").await.expect("close");
    dt
}

/// Untracked, the same payloads: `n` messages with `send().await`, then the end marker; the time runs
/// until the server's count comes back (`/sink`).
async fn untracked(rt: Rt, url: String, n: usize) -> Duration {
    let (client, mut events) = rt.tether(correlated(&url));
    wait_connected(&mut events).await;
    let reader = rt.spawn(async move {
        while let Some(e) = events.next().await {
            if let Event::Message(m) = e {
                return m.as_text().and_then(|t| t.parse::<usize>().ok()).expect("count");
            }
        }
        panic!("events ended before the count")
    });
    let t0 = Instant::now();
    for i in 0..n as u64 {
        client.send(Message::binary(keyed(i))).await.expect("send");
    }
    client.send(Message::text(END)).await.expect("send");
    let count = reader.await;
    let dt = t0.elapsed();
    assert_eq!(count, n, "the server counted {count} of {n} messages");
    client.close(1000, "done").await.expect("close");
    dt
}

/// Request/response: `n` sequential `client.request(m, key).await` against `/echo` (the echo is the
/// response: same key).
async fn tether_requests(rt: Rt, url: String, n: usize) -> Vec<Duration> {
    let (client, mut events) = rt.tether(correlated(&url));
    wait_connected(&mut events).await;
    // Outcomes (Acked, one per request) are drained, as an application would.
    let drain = rt.spawn(async move { while events.next().await.is_some() {} });
    let mut rtts = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let t0 = Instant::now();
        let r = client.request(Message::binary(keyed(i)), i).await.expect("response");
        debug_assert_eq!(key_of(r.payload()), Some(i));
        rtts.push(t0.elapsed());
    }
    client.close(1000, "done").await.expect("close");
    drain.await;
    rtts
}

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Bytes>>>>;

/// The same by hand on raw tokio-tungstenite: the socket split, a reader task that completes the
/// pending request whose id the answer carries, and per request: register the id, `send`, await.
async fn raw_requests(url: String, n: usize) -> Vec<Duration> {
    let ws = crate::rt::raw_tokio(&url, None).await;
    let (mut tx, mut rx) = ws.split();
    let waiting: Waiting = Arc::default();
    let reader = {
        let waiting = waiting.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = rx.next().await {
                if let WsMessage::Binary(b) = m
                    && let Some(key) = key_of(&b)
                    && let Some(done) = waiting.lock().expect("not poisoned").remove(&key)
                {
                    let _ = done.send(b);
                }
            }
        })
    };
    let mut rtts = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let t0 = Instant::now();
        let (done, answer) = oneshot::channel();
        waiting.lock().expect("not poisoned").insert(i, done);
        tx.send(WsMessage::Binary(keyed(i))).await.expect("send");
        let b = answer.await.expect("response");
        debug_assert_eq!(key_of(&b), Some(i));
        rtts.push(t0.elapsed());
    }
    let _ = tx.send(WsMessage::Close(None)).await;
    let _ = reader.await;
    rtts
}

/// The rows: tracked vs untracked throughput on `rt`; request/response vs raw on tokio only (the raw
/// baseline the issue names).
pub fn rows(rt: Rt, s: &Sizes, server: &Server, rows: &mut Vec<Row>) {
    let (ack, sink, echo) = (server.url(ACK), server.url(SINK), server.url(ECHO));
    // Warm-up, not reported.
    rt.block_on(tracked(rt, ack.clone(), 2_000));

    let (mut t, mut u) = (Vec::new(), Vec::new());
    for _ in 0..s.reps {
        t.push(s.messages as f64 / rt.block_on(tracked(rt, ack.clone(), s.messages)).as_secs_f64());
        u.push(s.messages as f64 / rt.block_on(untracked(rt, sink.clone(), s.messages)).as_secs_f64());
    }
    let (t, u) = (median(&mut t), median(&mut u));
    rows.push(Row {
        what: "tracked 64 B, each acknowledged by the server: `send_tracked().await` until every `Acked` vs untracked Tether `send().await` (same payloads)".into(),
        rt: rt.name(),
        tether: rate(t, 64),
        raw: format!("Tether untracked: {}", rate(u, 64)),
        ratio: format!("{:.2}×", t / u),
        target: "≥ 0.50×",
        verdict: verdict(Some(t / u >= 0.5)),
    });

    if rt != Rt::Tokio {
        return;
    }
    let (mut t50, mut t99, mut r50, mut r99) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..s.reps {
        let mut v = rt.block_on(tether_requests(rt, echo.clone(), s.requests));
        t50.push(percentile(&mut v, 50).as_secs_f64());
        t99.push(percentile(&mut v, 99).as_secs_f64());
        let (u, n) = (echo.clone(), s.requests);
        let mut v = rt.block_on(raw_requests(u, n));
        r50.push(percentile(&mut v, 50).as_secs_f64());
        r99.push(percentile(&mut v, 99).as_secs_f64());
    }
    latency_rows(
        rows,
        "request/response 64 B round trip: `client.request().await` vs by hand (`HashMap` of pending ids, reader task)",
        rt.name(),
        rt.raw_name(),
        [t50, t99, r50, r99],
        Some(("≤ 1.10×", 1.10)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_the_payload() {
        assert_eq!(key_of(&keyed(0x0102_0304_0506_0708)), Some(0x0102_0304_0506_0708));
        assert_eq!(keyed(1).len(), 64);
        assert_eq!(key_of(b"short"), None);
    }
}
