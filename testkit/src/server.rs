//! A real WebSocket server for tests, on its own tokio thread: echo, record, reject the handshake with a
//! status, accept-then-close, be stopped and restarted on the same port, and speak TLS.
//!
//! Everything it does is on command ([`TestServer::stop`], [`TestServer::close_all`],
//! [`TestServer::set_behavior`], ...), so a test decides exactly when the fault happens; for faults on a
//! timer, see [`ChaosServer`](crate::ChaosServer).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::error::ProtocolError;
use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::http::StatusCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use bytes::Bytes;
use futures::StreamExt;
use futures::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the server does with a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// Accept, record every data message and echo it back.
    Echo,
    /// Accept and record, never answer (pings are still answered by the WebSocket library).
    Sink,
    /// Answer the upgrade with this HTTP status and an optional `Retry-After` value.
    Reject {
        /// HTTP status.
        status: u16,
        /// `Retry-After` header value.
        retry_after: Option<String>,
    },
    /// Accept the upgrade, then close at once with this code.
    AcceptThenClose {
        /// The close code.
        code: u16,
    },
}

/// A data message the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Connection number (1-based, in accept order over the server's life).
    pub conn: u64,
    /// Whether it was text.
    pub text: bool,
    /// The payload.
    pub data: Bytes,
}

/// An upgrade request the server saw.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// When the TCP connection was accepted.
    pub at: Instant,
    /// Path and query.
    pub uri: String,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
}

enum Command {
    Close(u16, String),
    Send(WsMessage),
}

#[derive(Default)]
struct State {
    behavior: Option<Behavior>,
    received: Vec<Received>,
    requests: Vec<SeenRequest>,
    handshakes: u64,
    listener: Option<JoinHandle<()>>,
    conns: HashMap<u64, (JoinHandle<()>, mpsc::UnboundedSender<Command>)>,
}

/// The test server. Dropping it stops it.
pub struct TestServer {
    rt: crate::background::Background,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Arc<Mutex<State>>,
    next_conn: Arc<AtomicU64>,
}

impl TestServer {
    /// Starts a plain (`ws://`) server on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no port on 127.0.0.1 can be bound, or no thread started: a test cannot go on. Use
    /// [`start_at`](Self::start_at) to get the error instead.
    pub fn start(behavior: Behavior) -> Self {
        Self::start_with(behavior, None)
    }

    /// Starts a TLS (`wss://`) server on `127.0.0.1:0` (a [`TestPki`](crate::pki::TestPki) makes `tls`).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_tls(behavior: Behavior, tls: Arc<rustls::ServerConfig>) -> Self {
        Self::start_with(behavior, Some(tls))
    }

    /// Starts a server on `addr` (`ws://`, or `wss://` with `tls`); unlike [`start`](Self::start) a bind
    /// failure (port taken, no permission) is returned, not a panic.
    pub fn start_at(
        addr: SocketAddr,
        behavior: Behavior,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Self> {
        let listener = crate::background::bind_std(addr)?;
        Self::start_on(listener, behavior, tls)
    }

    fn start_with(behavior: Behavior, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = crate::background::bind_std("127.0.0.1:0".parse().expect("literal address"))
            .unwrap_or_else(|e| panic!("test server cannot bind: {e}"));
        Self::start_on(listener, behavior, tls).unwrap_or_else(|e| panic!("no local address: {e}"))
    }

    fn start_on(
        listener: std::net::TcpListener,
        behavior: Behavior,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<Self> {
        let rt = crate::background::Background::new("test-server");
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State { behavior: Some(behavior), ..State::default() }));
        let server = Self { rt, addr, tls, state, next_conn: Arc::new(AtomicU64::new(0)) };
        server.spawn_listener(listener);
        Ok(server)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn_listener(&self, listener: std::net::TcpListener) {
        let (state, tls, next) = (self.state.clone(), self.tls.clone(), self.next_conn.clone());
        let task = self.rt.spawn(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => panic!("test server cannot listen: {e}"),
            };
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let _ = tcp.set_nodelay(true);
                let conn = next.fetch_add(1, Ordering::SeqCst) + 1;
                let (tx, rx) = mpsc::unbounded_channel();
                let (st, tls) = (state.clone(), tls.clone());
                let at = Instant::now();
                let task = tokio::spawn(async move {
                    let tcp = TokioAdapter::new(tcp);
                    match tls {
                        None => serve(tcp, conn, at, st, rx).await,
                        Some(cfg) => {
                            if let Ok(s) = futures_rustls::TlsAcceptor::from(cfg).accept(tcp).await {
                                serve(s, conn, at, st, rx).await;
                            }
                        }
                    }
                });
                state.lock().unwrap_or_else(|e| e.into_inner()).conns.insert(conn, (task, tx));
            }
        });
        self.lock().listener = Some(task);
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT/` (or `wss://localhost:PORT/` with TLS).
    pub fn url(&self) -> String {
        match self.tls {
            None => format!("ws://{}/", self.addr),
            Some(_) => format!("wss://localhost:{}/", self.addr.port()),
        }
    }

    /// Changes what the server does with new connections.
    pub fn set_behavior(&self, behavior: Behavior) {
        self.lock().behavior = Some(behavior);
    }

    /// Stops listening and drops every connection (like a crash: no close frames).
    pub fn stop(&self) {
        let mut s = self.lock();
        if let Some(l) = s.listener.take() {
            l.abort();
        }
        for (_, (task, _)) in s.conns.drain() {
            task.abort();
        }
    }

    /// Stops accepting new connections (they are refused) and keeps the open ones: the first step of a
    /// graceful restart (then [`close_all`](Self::close_all), wait for
    /// [`open_connections`](Self::open_connections) to reach zero, [`restart`](Self::restart)).
    pub fn stop_listening(&self) {
        if let Some(l) = self.lock().listener.take() {
            l.abort();
        }
    }

    /// Listens again on the same port (after [`stop`](Self::stop) or [`stop_listening`](Self::stop_listening)).
    /// Blocks the calling thread for as long as the bind takes (usually a few milliseconds; call it from
    /// `spawn_blocking` inside an async runtime if that matters).
    ///
    /// # Panics
    /// If the port cannot be bound again within 5 s (another process took it): a test cannot go on.
    /// [`try_restart`](Self::try_restart) returns that error instead.
    pub fn restart(&self) {
        if let Err(e) = self.try_restart() {
            panic!("test server cannot rebind {}: {e}", self.addr);
        }
    }

    /// [`restart`](Self::restart) that returns the bind error (after retrying for 5 s) instead of
    /// panicking.
    pub fn try_restart(&self) -> std::io::Result<()> {
        let addr = self.addr;
        let deadline = Instant::now() + Duration::from_secs(5);
        // The aborted listener is dropped by its runtime a moment after `stop`: retry the bind.
        let listener = loop {
            match crate::background::bind_std(addr) {
                Ok(l) => break l,
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        self.spawn_listener(listener);
        Ok(())
    }

    /// Every data message received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Takes the record of received messages, leaving it empty (for long-running servers, which would
    /// otherwise keep every message).
    pub fn take_received(&self) -> Vec<Received> {
        std::mem::take(&mut self.lock().received)
    }

    /// Clears the record of received messages.
    pub fn clear_received(&self) {
        self.lock().received.clear();
    }

    /// Every upgrade request seen (accepted or not).
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.lock().requests.clone()
    }

    /// Completed WebSocket handshakes.
    pub fn handshakes(&self) -> u64 {
        self.lock().handshakes
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        let mut s = self.lock();
        s.conns.retain(|_, (task, _)| !task.is_finished());
        s.conns.len()
    }

    /// Sends a close frame with `code` on every open connection.
    pub fn close_all(&self, code: u16, reason: &str) {
        for (_, tx) in self.lock().conns.values() {
            let _ = tx.send(Command::Close(code, reason.to_owned()));
        }
    }

    /// Sends a message on every open connection.
    pub fn send_all(&self, msg: WsMessage) {
        for (_, tx) in self.lock().conns.values() {
            let _ = tx.send(Command::Send(msg.clone()));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

// The handshake callback's error type is tungstenite's, large or not.
#[allow(clippy::result_large_err)]
async fn serve<S>(
    stream: S,
    conn: u64,
    at: Instant,
    state: Arc<Mutex<State>>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    let behavior = lock().behavior.clone().unwrap_or(Behavior::Echo);
    let st = state.clone();
    let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let headers =
            req.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
        st.lock().unwrap_or_else(|e| e.into_inner()).requests.push(SeenRequest {
            at,
            uri: req.uri().to_string(),
            headers,
        });
        match &behavior {
            Behavior::Reject { status, retry_after } => {
                let mut r = ErrorResponse::new(None);
                *r.status_mut() = StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                if let Some(v) = retry_after
                    && let Ok(v) = v.parse()
                {
                    r.headers_mut().insert("retry-after", v);
                }
                Err(r)
            }
            _ => {
                // Like most servers that speak subprotocols: the client's first choice.
                let mut resp = resp;
                let first = req.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
                if let Some(p) = first.and_then(|v| v.split(',').next()).and_then(|p| p.trim().parse().ok()) {
                    resp.headers_mut().insert("sec-websocket-protocol", p);
                }
                Ok(resp)
            }
        }
    };
    let Ok(mut ws) = async_tungstenite::accept_hdr_async(stream, callback).await else { return };
    lock().handshakes += 1;
    let behavior = lock().behavior.clone().unwrap_or(Behavior::Echo);
    if let Behavior::AcceptThenClose { code } = behavior {
        let _ = ws.close(Some(CloseFrame { code: CloseCode::from(code), reason: "go away".into() })).await;
        while let Some(Ok(_)) = ws.next().await {}
        return;
    }
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(m @ (WsMessage::Text(_) | WsMessage::Binary(_)))) => {
                    let (text, data) = match &m {
                        WsMessage::Text(t) => (true, Bytes::from(t.clone())),
                        WsMessage::Binary(b) => (false, b.clone()),
                        _ => unreachable!("matched text or binary"),
                    };
                    lock().received.push(Received { conn, text, data });
                    // After our close frame the peer may still send until it reads it: keep reading
                    // (and recording) until its close reply ends the stream, so nothing it flushed
                    // before then goes unrecorded.
                    if behavior == Behavior::Echo
                        && let Err(e) = ws.send(m).await
                        && !matches!(e, WsError::Protocol(ProtocolError::SendAfterClosing))
                    {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            cmd = commands.recv() => match cmd {
                Some(Command::Close(code, reason)) => {
                    let _ = ws.close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() })).await;
                }
                Some(Command::Send(m)) => {
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
        }
    }
}
