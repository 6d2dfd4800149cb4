//! The anchors: fastwebsockets and tokio-websockets, the other fast Rust WebSocket clients, on tokio,
//! with the same workloads as raw tokio-tungstenite (one-way per message and batched, echo, connect).
//! Each is written the fastest way its API allows: fastwebsockets masks a reused buffer in place (a
//! borrowed payload would be copied into a new `Vec` per frame) and, batched, writes through a 128 KiB
//! `BufWriter` flushed once; tokio-websockets sends `Bytes` payloads through its `Sink` (`send` per
//! message, `send_all` batched).

use std::time::{Duration, Instant};

use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket};
use futures::{SinkExt, StreamExt};
use tether_benches::END;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;

/// One of the anchors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Fast,
    TokioWs,
}

impl Anchor {
    pub const ALL: [Anchor; 2] = [Anchor::Fast, Anchor::TokioWs];

    pub fn name(self) -> &'static str {
        match self {
            Anchor::Fast => "fastwebsockets",
            Anchor::TokioWs => "tokio-websockets",
        }
    }

    /// One-way: `n` messages of `size` bytes, per message (each written out) or batched (one flush),
    /// then the end marker; the time runs until the server's count comes back.
    pub async fn oneway(self, url: &str, n: usize, size: usize, batched: bool) -> Duration {
        match (self, batched) {
            (Anchor::Fast, false) => fast_oneway(fast_connect(url, |s| s).await, n, size).await,
            (Anchor::Fast, true) => {
                fast_oneway(fast_connect(url, |s| BufWriter::with_capacity(128 << 10, s)).await, n, size).await
            }
            (Anchor::TokioWs, _) => tws_oneway(tws_connect(url).await, n, size, batched).await,
        }
    }

    /// Echo: `n` sequential 64 B round trips.
    pub async fn echo(self, url: &str, n: usize) -> Vec<Duration> {
        match self {
            Anchor::Fast => fast_echo(fast_connect(url, |s| s).await, n).await,
            Anchor::TokioWs => tws_echo(tws_connect(url).await, n).await,
        }
    }

    /// Connect: TCP + upgrade, `n` times (each connection closed before the next).
    pub async fn connects(self, url: &str, n: usize) -> Vec<Duration> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let t0 = Instant::now();
            match self {
                Anchor::Fast => {
                    let mut ws = fast_connect(url, |s| s).await;
                    out.push(t0.elapsed());
                    fast_close(&mut ws).await;
                }
                Anchor::TokioWs => {
                    let mut ws = tws_connect(url).await;
                    out.push(t0.elapsed());
                    let _ = ws.close().await;
                    while let Some(Ok(_)) = ws.next().await {}
                }
            }
        }
        out
    }
}

fn split(url: &str) -> (&str, &str) {
    let rest = url.strip_prefix("ws://").expect("ws:// URL");
    let i = rest.find('/').unwrap_or(rest.len());
    (&rest[..i], if i == rest.len() { "/" } else { &rest[i..] })
}

async fn tcp(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).await.expect("tcp connect");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// fastwebsockets' own client handshake needs hyper: the upgrade request is written by hand (the
/// server sends nothing before the client's first frame, so nothing is read past the response).
async fn fast_connect<S: AsyncRead + AsyncWrite + Unpin>(url: &str, wrap: impl FnOnce(TcpStream) -> S) -> WebSocket<S> {
    let (addr, path) = split(url);
    let mut s = tcp(addr).await;
    // A fixed key: the server does not care, and this is the benchmark's client, not Tether's.
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("upgrade request");
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut buf).await.expect("upgrade response");
        assert!(n > 0, "connection closed during the upgrade");
        head.extend_from_slice(&buf[..n]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "upgrade refused: {}", String::from_utf8_lossy(&head));
    WebSocket::after_handshake(wrap(s), Role::Client)
}

async fn fast_count<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocket<S>) -> usize {
    loop {
        let f = ws.read_frame().await.expect("read");
        if f.opcode == OpCode::Text {
            return std::str::from_utf8(&f.payload).expect("utf-8").parse().expect("count");
        }
    }
}

async fn fast_close<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocket<S>) {
    let _ = ws.write_frame(Frame::close(1000, b"")).await;
    let _ = ws.flush().await;
    while let Ok(f) = ws.read_frame().await {
        if f.opcode == OpCode::Close {
            break;
        }
    }
}

async fn fast_oneway<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocket<S>, n: usize, size: usize) -> Duration {
    let payload = vec![0x5a; size];
    let mut scratch = payload.clone();
    let t0 = Instant::now();
    for _ in 0..n {
        // Masked in place: the reused buffer gets the payload again first.
        scratch.copy_from_slice(&payload);
        ws.write_frame(Frame::binary(Payload::BorrowedMut(&mut scratch))).await.expect("write");
    }
    let mut end = END.as_bytes().to_vec();
    ws.write_frame(Frame::text(Payload::BorrowedMut(&mut end))).await.expect("write");
    ws.flush().await.expect("flush");
    let count = fast_count(&mut ws).await;
    let dt = t0.elapsed();
    assert_eq!(count, n, "the server counted {count} of {n} messages");
    fast_close(&mut ws).await;
    dt
}

async fn fast_echo(mut ws: WebSocket<TcpStream>, n: usize) -> Vec<Duration> {
    let payload = vec![0x5a; 64];
    let mut scratch = payload.clone();
    let mut rtts = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        scratch.copy_from_slice(&payload);
        ws.write_frame(Frame::binary(Payload::BorrowedMut(&mut scratch))).await.expect("write");
        loop {
            if ws.read_frame().await.expect("read").opcode == OpCode::Binary {
                break;
            }
        }
        rtts.push(t0.elapsed());
    }
    fast_close(&mut ws).await;
    rtts
}

type Tws = tokio_websockets::WebSocketStream<TcpStream>;

async fn tws_connect(url: &str) -> Tws {
    let (addr, _) = split(url);
    let builder = tokio_websockets::ClientBuilder::new().uri(url).expect("uri");
    let (ws, _) = builder.connect_on(tcp(addr).await).await.expect("tokio-websockets connect");
    ws
}

async fn tws_count(ws: &mut Tws) -> usize {
    loop {
        let m = ws.next().await.expect("a message").expect("read");
        if let Some(t) = m.as_text() {
            return t.parse().expect("count");
        }
    }
}

async fn tws_oneway(mut ws: Tws, n: usize, size: usize, batched: bool) -> Duration {
    let p = Bytes::from(vec![0x5a; size]);
    let msg = || tokio_websockets::Message::binary(p.clone());
    let t0 = Instant::now();
    if batched {
        let mut msgs = futures::stream::iter((0..n).map(|_| Ok(msg())));
        ws.send_all(&mut msgs).await.expect("send_all");
    } else {
        for _ in 0..n {
            ws.send(msg()).await.expect("send");
        }
    }
    ws.send(tokio_websockets::Message::text(END)).await.expect("send");
    let count = tws_count(&mut ws).await;
    let dt = t0.elapsed();
    assert_eq!(count, n, "the server counted {count} of {n} messages");
    let _ = ws.close().await;
    while let Some(Ok(_)) = ws.next().await {}
    dt
}

async fn tws_echo(mut ws: Tws, n: usize) -> Vec<Duration> {
    let p = Bytes::from(vec![0x5a; 64]);
    let mut rtts = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        ws.send(tokio_websockets::Message::binary(p.clone())).await.expect("send");
        loop {
            if ws.next().await.expect("a message").expect("read").is_binary() {
                break;
            }
        }
        rtts.push(t0.elapsed());
    }
    let _ = ws.close().await;
    while let Some(Ok(_)) = ws.next().await {}
    rtts
}
