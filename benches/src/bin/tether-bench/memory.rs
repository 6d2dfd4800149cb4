//! Memory per connection, each kind measured in a fresh child process (freed memory does not always go
//! back to the OS, so kinds must not share a process): RSS (`VmRSS`) and live heap (the counting
//! allocator) before and after opening N connections, on a current-thread tokio runtime.

use std::collections::VecDeque;
use std::process::Command;
use std::time::Duration;

use async_tungstenite::tungstenite::Message as WsMessage;
use bytes::Bytes;
use futures::StreamExt;
use tether::{Event, Message};
use tether_benches::{heap_live, rss_kib};

use crate::runs::config;

/// Queued messages per connection in the `*-queued` kinds.
pub const QUEUED: usize = 1000;

#[derive(Debug, Clone, Copy)]
pub struct Mem {
    /// RSS per connection, KiB.
    pub rss_kib: f64,
    /// Live heap per connection, KiB.
    pub heap_kib: f64,
}

pub const KINDS: [&str; 8] = [
    "tether-idle",
    "raw-idle",
    "tether-queued",
    "raw-queued",
    "tether-plain-received",
    "tether-deflate-idle",
    "tether-deflate-received",
    "tether-deflate-both",
];

/// Ticks each connection of the `tether-deflate-received` and `-both` kinds receives.
pub const FEED_TICKS: usize = 1000;

/// Runs one kind in a child process (pinned like this one) and returns its per-connection figures.
pub fn measure(kind: &str, n: usize, port: u16, dead_port: u16) -> Mem {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .args(["--mem-child", kind, &n.to_string(), &port.to_string(), &dead_port.to_string()])
        .output()
        .expect("run the memory child");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("MEM "))
        .unwrap_or_else(|| panic!("memory child {kind} failed: {}\n{}", text, String::from_utf8_lossy(&out.stderr)));
    let v: Vec<f64> = line.split_whitespace().map(|x| x.parse().expect("number")).collect();
    Mem { rss_kib: (v[1] - v[0]) / n as f64, heap_kib: (v[3] - v[2]) / 1024.0 / n as f64 }
}

/// The child: opens `n` connections of `kind`, holds them, prints `MEM rss0 rss1 heap0 heap1`.
pub fn child(kind: &str, n: usize, port: u16, dead_port: u16) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let kind = kind.to_owned();
    rt.block_on(async move {
        let url = format!("ws://127.0.0.1:{port}{}", tether_benches::SINK);
        let dead = format!("ws://127.0.0.1:{dead_port}{}", tether_benches::SINK);
        // Warm up the runtime, the allocator and the first connection's lazies; then measure.
        let warm = crate::rt::raw_tokio(&url, None).await;
        let (c, mut e) = tether_tokio::connect(config(&url)).expect("runtime");
        while let Some(ev) = e.next().await {
            if matches!(ev, Event::Connected { .. }) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (rss0, heap0) = (rss_kib(), heap_live());
        let mut tether_held = Vec::new();
        let mut raw_held = Vec::new();
        let mut queues: Vec<VecDeque<WsMessage>> = Vec::new();
        for _ in 0..n {
            match kind.as_str() {
                "tether-idle" => {
                    let (client, mut events) = tether_tokio::connect(config(&url)).expect("runtime");
                    while let Some(ev) = events.next().await {
                        if matches!(ev, Event::Connected { .. }) {
                            break;
                        }
                    }
                    tether_held.push((client, events));
                }
                "raw-idle" => raw_held.push(tokio_tungstenite::connect_async(url.as_str()).await.expect("connect").0),
                "tether-queued" => {
                    // During an outage (nothing listens on `dead`): the messages wait in the queue.
                    let (client, events) = tether_tokio::connect(config(&dead)).expect("runtime");
                    for i in 0..QUEUED {
                        let p = Bytes::from(vec![i as u8; 64]);
                        client.try_send(Message::binary(p)).expect("queue has room");
                    }
                    tether_held.push((client, events));
                }
                "tether-plain-received" | "tether-deflate-idle" | "tether-deflate-received" | "tether-deflate-both" => {
                    // The feed endpoint negotiates permessage-deflate (unless the client does not offer
                    // it) and pushes the ticks at once.
                    let ticks = if kind == "tether-deflate-idle" { 0 } else { FEED_TICKS };
                    let deflate = kind != "tether-plain-received";
                    let feed = format!("ws://127.0.0.1:{port}{}?n={ticks}", tether_benches::FEED);
                    let b = tether::ClientBuilder::new(feed);
                    let cfg = if deflate { b } else { b.compression(None) }.build().expect("valid config");
                    let (client, mut events) = tether_tokio::connect(cfg).expect("runtime");
                    let mut got = 0;
                    while let Some(ev) = events.next().await {
                        match ev {
                            Event::Connected { info, .. } => assert_eq!(info.compression.is_some(), deflate),
                            Event::Message(_) => got += 1,
                            _ => {}
                        }
                        if got == ticks && client.stats().connects == 1 {
                            break;
                        }
                    }
                    if kind == "tether-deflate-both" {
                        // Above the 1 KiB threshold: compressed, so the compressor is allocated.
                        client.send(tether_benches::tick(0).repeat(10)).await.expect("send");
                    }
                    tether_held.push((client, events));
                }
                "raw-queued" => {
                    // What a raw client must hold itself during an outage: the messages, in its own queue.
                    let q = (0..QUEUED).map(|i| WsMessage::Binary(Bytes::from(vec![i as u8; 64]))).collect();
                    queues.push(q);
                }
                other => panic!("unknown memory kind {other}"),
            }
        }
        // Let the drivers settle (connect attempts to the dead port, events delivered).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (rss1, heap1) = (rss_kib(), heap_live());
        println!("MEM {rss0} {rss1} {heap0} {heap1}");
        drop((warm, c, e, tether_held, raw_held, queues));
    });
}
