//! A raw TCP server on plain threads, for what no well-behaved WebSocket server sends: an `HTTP/1.0`
//! rejection, invalid UTF-8 in a text message, a reserved opcode. Each connection runs the handler on
//! its own thread with blocking I/O (every read bounded by a timeout).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use async_tungstenite::tungstenite::{Message, WebSocket};

/// How long a handler waits for the client at most, per read.
const READ_LIMIT: Duration = Duration::from_secs(20);

/// The server. Dropping it stops accepting (handlers already running finish on their own).
pub struct RawServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl RawServer {
    /// Listens on `127.0.0.1:0`; runs `handler` for every connection.
    pub fn start(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("raw server cannot bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("no local address: {e}"));
        listener.set_nonblocking(true).unwrap_or_else(|e| panic!("cannot set non-blocking: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(handler);
        let (s, a) = (stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        a.fetch_add(1, Ordering::AcqRel);
                        let h = handler.clone();
                        std::thread::spawn(move || {
                            let _ = tcp.set_nonblocking(false);
                            let _ = tcp.set_nodelay(true);
                            let _ = tcp.set_read_timeout(Some(READ_LIMIT));
                            h(tcp);
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(2)),
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Self { addr, stop, accepted, thread: Some(thread) }
    }

    /// `ws://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Acquire)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads an HTTP request head (through the blank line).
pub fn read_head(tcp: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(head)
}

/// A handler that answers every upgrade request with `response`, byte for byte, then closes.
pub fn answer(response: &'static str) -> impl Fn(TcpStream) + Send + Sync + 'static {
    move |mut tcp| {
        if read_head(&mut tcp).is_ok() {
            let _ = tcp.write_all(response.as_bytes());
        }
    }
}

/// What the client answered to a bad frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A close frame with this code (and reason).
    Close(u16, String),
    /// A close frame without a code.
    CloseWithoutCode,
    /// The connection ended without a close frame (EOF or reset).
    Dropped(String),
}

/// Completes the WebSocket handshake, writes `frame` (raw bytes of one or more frames, unmasked as a
/// server's), then reads until the client's close frame or the end; returns what the client did.
pub fn send_raw_frame(tcp: TcpStream, frame: &[u8]) -> Answer {
    let mut ws: WebSocket<TcpStream> = match async_tungstenite::tungstenite::accept(tcp) {
        Ok(ws) => ws,
        Err(e) => return Answer::Dropped(format!("handshake failed: {e}")),
    };
    if let Err(e) = ws.get_mut().write_all(frame).and_then(|()| ws.get_mut().flush()) {
        return Answer::Dropped(format!("could not write the frame: {e}"));
    }
    loop {
        match ws.read() {
            Ok(Message::Close(Some(c))) => {
                // Complete the handshake as a server does: reply, then close TCP.
                let _ = ws.flush();
                return Answer::Close(u16::from(c.code), c.reason.to_string());
            }
            Ok(Message::Close(None)) => return Answer::CloseWithoutCode,
            Ok(_) => {}
            Err(e) => return Answer::Dropped(e.to_string()),
        }
    }
}

/// An unmasked server text frame holding `payload` (fewer than 126 bytes).
pub fn text_frame(payload: &[u8]) -> Vec<u8> {
    raw_frame(0x81, payload)
}

/// An unmasked server frame with first byte `b0` (FIN, RSV bits, opcode) and `payload` (any length).
pub fn raw_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![b0];
    match payload.len() {
        n @ 0..=125 => f.push(n as u8),
        n @ 126..=0xFFFF => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}
