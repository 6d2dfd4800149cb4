//! A server that acknowledges what it received, after persisting it: the peer tracked messages
//! ([`tether_core::acks`](https://docs.rs/tether-core)) are written for.
//!
//! Each data message's *key* is its text up to the first space (all of it if there is none). For every
//! message, in order, the server first appends `KEY\n` to its log (a file, when it has one, and memory),
//! then answers `ack KEY`. So a key is acknowledged only once it is persisted: a server that dies loses
//! only what it had not acknowledged, and the client redelivers exactly that. A message received twice
//! (redelivered after a lost connection whose acknowledgement never arrived) is logged twice: the log
//! shows the duplicates, and a real server would drop them by key.
//!
//! The log file is written with plain `write` calls, so it survives the server *process* being killed
//! (the data is in the kernel once `write` returns), which is what a test that kills the process needs;
//! surviving the machine would need an `fsync` per acknowledgement.
//!
//! With an acknowledgement delay ([`AckServer::start_with_delay`]) the acknowledgement leaves that long
//! after the key was persisted (as from a server that replicates before it confirms): a crash then
//! finds messages in every state, received but unpersisted, persisted but unacknowledged, and
//! acknowledged.
//!
//! [`AckServer::start_at`] runs it in-process on its own thread (like every server here);
//! `tether-ack-server PORT LOG [ACK_DELAY_MS]` (in `tether-tests`) runs it as a process a test can
//! kill.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::Message as WsMessage;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The key of a message: its bytes up to the first space.
pub fn key_of(data: &[u8]) -> &[u8] {
    data.split(|b| *b == b' ').next().unwrap_or(data)
}

/// The acknowledgement the server sends for `key`: `ack KEY`.
pub fn ack_for(key: &[u8]) -> String {
    format!("ack {}", String::from_utf8_lossy(key))
}

/// The key an acknowledgement carries, if `text` is one (`ack KEY`).
pub fn acked_key(text: &str) -> Option<&str> {
    text.strip_prefix("ack ")
}

struct State {
    log: Option<File>,
    ack_delay: Duration,
    keys: Vec<Vec<u8>>,
    listener: Option<JoinHandle<()>>,
    conns: Vec<JoinHandle<()>>,
}

/// The persisting, acknowledging server. Dropping it stops it.
pub struct AckServer {
    rt: crate::background::Background,
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl AckServer {
    /// Starts on `addr` (port 0: any), appending to the file at `log` if given (created if missing).
    pub fn start_at(addr: SocketAddr, log: Option<&Path>) -> std::io::Result<Self> {
        Self::start_with_delay(addr, log, Duration::ZERO)
    }

    /// [`start_at`](Self::start_at), each acknowledgement sent `ack_delay` after its key was persisted.
    pub fn start_with_delay(addr: SocketAddr, log: Option<&Path>, ack_delay: Duration) -> std::io::Result<Self> {
        let log = match log {
            Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
            None => None,
        };
        let listener = crate::background::bind_std(addr)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State { log, ack_delay, keys: Vec::new(), listener: None, conns: Vec::new() }));
        let server = Self { rt: crate::background::Background::new("ack-server"), addr, state };
        server.spawn_listener(listener);
        Ok(server)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn_listener(&self, listener: std::net::TcpListener) {
        let state = self.state.clone();
        let task = self.rt.spawn(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => panic!("ack server cannot listen: {e}"),
            };
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let _ = tcp.set_nodelay(true);
                let st = state.clone();
                let conn = tokio::spawn(serve(TokioAdapter::new(tcp), st));
                let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                s.conns.retain(|c| !c.is_finished());
                s.conns.push(conn);
            }
        });
        self.lock().listener = Some(task);
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Every key logged so far, in order, duplicates included.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        self.lock().keys.clone()
    }

    /// Stops listening and drops every connection, like a crash (without losing the log).
    pub fn stop(&self) {
        let mut s = self.lock();
        if let Some(l) = s.listener.take() {
            l.abort();
        }
        for c in s.conns.drain(..) {
            c.abort();
        }
    }
}

impl Drop for AckServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve<S>(stream: S, state: Arc<Mutex<State>>)
where
    S: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin,
{
    let Ok(ws) = async_tungstenite::accept_async(stream).await else { return };
    let (mut sink, mut stream) = ws.split();
    let delay = state.lock().unwrap_or_else(|e| e.into_inner()).ack_delay;
    // The acknowledgements leave in order, each `delay` after its key was persisted. Reader and writer
    // are one task, so that a stop (a crash) ends both.
    let (acks, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((at, key)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if sink.send(WsMessage::text(ack_for(&key))).await.is_err() {
                return;
            }
        }
    };
    let reader = async move {
        while let Some(Ok(msg)) = stream.next().await {
            let data = match msg {
                WsMessage::Text(t) => bytes::Bytes::from(t),
                WsMessage::Binary(b) => b,
                _ => continue,
            };
            let key = key_of(&data).to_vec();
            {
                let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                // Persisted first: a key is acknowledged only once it is in the log.
                if let Some(log) = &mut s.log {
                    let mut line = key.clone();
                    line.push(b'\n');
                    if log.write_all(&line).is_err() {
                        // Not persisted: not acknowledged (the client will send it again).
                        return;
                    }
                }
                s.keys.push(key.clone());
            }
            if acks.send((Instant::now() + delay, key)).is_err() {
                return;
            }
        }
    };
    futures::future::join(reader, writer).await;
}
