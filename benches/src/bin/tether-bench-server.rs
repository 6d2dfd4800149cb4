//! The benchmark server: raw tokio-tungstenite on a single-threaded tokio runtime, in its own process.
//!
//! `tether-bench-server [--port P]` listens on 127.0.0.1:P (0, the default, picks a free port) and prints
//! `ready <port>` once it listens. Endpoints by path: `/sink` (and any other path) counts data messages and answers the text
//! `END` with the count; `/echo` sends every data message back; `/ack` answers every binary message with
//! its first 8 bytes (an acknowledgement of its key); `/blackhole` completes the handshake and then goes
//! silent; `/feed?n=N` writes N JSON ticks, compressed when the client offers permessage-deflate, then
//! drops what it reads. It exits when its standard input closes (so it never outlives the harness), or when
//! killed (the harness kills and restarts it to measure reconnection).

use std::io::{Read, Write};

use futures::{FutureExt, SinkExt, StreamExt};
use tether_benches::{ACK, BLACKHOLE, ECHO, END, FEED, READY, feed};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

fn main() {
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).expect("--port takes a number"),
            other => panic!("unknown argument {other:?}; usage: tether-bench-server [--port P]"),
        }
    }
    // Exit with the harness: it holds our stdin.
    std::thread::spawn(|| {
        let mut buf = [0u8; 64];
        while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let mut out = std::io::stdout();
        writeln!(out, "{READY} {port}").and_then(|_| out.flush()).expect("stdout");
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(serve(tcp));
        }
    });
}

/// Feeds made so far, by length and compression: thousands of connections get the same one.
type Feeds = std::collections::HashMap<(usize, bool), std::sync::Arc<[u8]>>;

thread_local! {
    static FEEDS: std::cell::RefCell<Feeds> = Default::default();
}

async fn serve(tcp: TcpStream) {
    let mut path = String::new();
    let mut n = 0usize;
    let mut deflate = false;
    // tungstenite's callback type fixes the (large) error type.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| {
        path = req.uri().path().to_owned();
        if path == FEED {
            n = req.uri().query().and_then(|q| q.strip_prefix("n=")).and_then(|v| v.parse().ok()).unwrap_or(0);
            deflate = req
                .headers()
                .get_all("sec-websocket-extensions")
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| v.contains("permessage-deflate")));
            if deflate {
                resp.headers_mut().insert("sec-websocket-extensions", "permessage-deflate".parse().expect("valid"));
            }
        }
        Ok(resp)
    };
    // tungstenite's defaults, as a real server runs (a 128 KiB read buffer: a smaller one slows the
    // clients' batched writes, raw ones more than Tether's).
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, None).await else {
        return;
    };
    match path.as_str() {
        BLACKHOLE => {
            // Hold the socket, read nothing, answer nothing, until the client goes away (it cannot
            // tell: the kernel still acknowledges). Exits with the process.
            std::future::pending::<()>().await;
        }
        ACK => {
            // Acknowledgements are written as messages arrive and flushed once nothing more is ready
            // to read (one write for a burst, as a server that batches its acks).
            while let Some(Ok(msg)) = ws.next().await {
                let mut next = Some(msg);
                while let Some(msg) = next.take() {
                    if let Message::Binary(b) = msg
                        && ws.feed(Message::Binary(b.slice(..b.len().min(8)))).await.is_err()
                    {
                        return;
                    }
                    next = match ws.next().now_or_never() {
                        Some(Some(Ok(m))) => Some(m),
                        Some(_) => return,
                        None => None,
                    };
                }
                if ws.flush().await.is_err() {
                    return;
                }
            }
        }
        FEED => {
            // Past tungstenite: the frames are written as made, and what the client sends (maybe
            // compressed, which tungstenite would refuse) is read and dropped.
            let blob =
                FEEDS.with_borrow_mut(|f| f.entry((n, deflate)).or_insert_with(|| feed(n, deflate).into()).clone());
            let tcp = ws.get_mut();
            if tcp.write_all(&blob).await.is_err() {
                return;
            }
            let mut buf = vec![0u8; 4096];
            while tcp.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        }
        ECHO => {
            while let Some(Ok(msg)) = ws.next().await {
                if (msg.is_binary() || msg.is_text()) && ws.send(msg).await.is_err() {
                    return;
                }
            }
        }
        // SINK, and any other path.
        _ => {
            let mut count: u64 = 0;
            while let Some(Ok(msg)) = ws.next().await {
                match msg {
                    Message::Binary(_) => count += 1,
                    Message::Text(t) if t.as_str() == END => {
                        let reply = Utf8Bytes::from(count.to_string());
                        count = 0;
                        if ws.send(Message::Text(reply)).await.is_err() {
                            return;
                        }
                    }
                    Message::Text(_) => count += 1,
                    _ => {}
                }
            }
        }
    }
}
