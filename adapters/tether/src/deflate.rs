//! permessage-deflate on a connection: the byte stream under async-tungstenite that holds the
//! extension's state. The design card (why a rewriter under tungstenite, what each part costs) is the
//! crate doc of `tether-deflate`; this module is its I/O side.
//!
//! [`DeflateStream`] wraps the transport (TCP or TLS) and goes through four modes:
//! - `Off`: compression not offered, or declined. Reads and writes go straight through (after handing
//!   out what was held back during the handshake, if anything): one branch per read.
//! - `Handshake`: compression offered, upgrade in progress. Reads go through up to the end of the HTTP
//!   response ([`ResponseEnd`]); what follows it in the same read is held back, so that tungstenite's
//!   handshake reader cannot keep frames that must be rewritten.
//! - `Held`: the response has been read; reads wait for [`accept`] to check the server's answer.
//! - `Inflate`: negotiated. Reads fill a buffer of the stream's own (4 KiB, allocated on the first read)
//!   that the [`Rewriter`] turns into plain frames in tungstenite's buffer.
//!
//! Writes always go straight through: outgoing frames are compressed before tungstenite sees them
//! ([`DeflateStream::compress`], called by the driver for each message).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Message as WsMessage;
use async_tungstenite::tungstenite::handshake::client::Response;
use async_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_EXTENSIONS;
use async_tungstenite::tungstenite::protocol::frame::Frame;
use async_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use futures::io::{AsyncRead, AsyncWrite};
use tether_core::{DeflateParams, Message, MessageKind, OpenError};
use tether_deflate::{Compressor, DeflateConfig, Inbound, InflateError, ResponseEnd, Rewriter};

/// Bytes read from the transport at a time while the extension is in use.
const READ_CHUNK: usize = 4 << 10;

enum Mode {
    Off,
    Handshake(ResponseEnd),
    Held(Option<Waker>),
    Inflate(Box<Rewriter>),
}

/// The transport, with the state of the permessage-deflate extension. See the module doc.
pub(crate) struct DeflateStream<S> {
    inner: S,
    mode: Mode,
    /// Bytes read from `inner` not yet handed on: `buf[at..end]`. Empty (unallocated) unless the
    /// extension is in use or bytes were held back during the handshake.
    buf: Vec<u8>,
    at: usize,
    end: usize,
    compressor: Option<Box<Compressor>>,
}

impl<S> DeflateStream<S> {
    /// Wraps `inner`; `offered`: the upgrade request offers permessage-deflate.
    pub(crate) fn new(inner: S, offered: bool) -> Self {
        let mode = if offered { Mode::Handshake(ResponseEnd::new()) } else { Mode::Off };
        Self { inner, mode, buf: Vec::new(), at: 0, end: 0, compressor: None }
    }

    /// The compressed form of `message`, as the frame to send, when it is to go compressed.
    pub(crate) fn compress(&mut self, message: &Message) -> Option<WsMessage> {
        let payload = self.compressor.as_mut()?.compress(message.payload())?;
        let data = match message.kind() {
            MessageKind::Text => Data::Text,
            MessageKind::Binary => Data::Binary,
        };
        let mut frame = Frame::message(payload, OpCode::Data(data), true);
        frame.header_mut().rsv1 = true;
        Some(WsMessage::Frame(frame))
    }

    /// Ends the handshake: from now on reads are rewritten by `rewriter` (`None`: not negotiated).
    fn start(&mut self, rewriter: Option<Rewriter>, compressor: Option<Compressor>) {
        let waker = match &mut self.mode {
            Mode::Held(w) => w.take(),
            _ => None,
        };
        self.mode = match rewriter {
            Some(r) => Mode::Inflate(Box::new(r)),
            None => Mode::Off,
        };
        self.compressor = compressor.map(Box::new);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Hands out held-back bytes; releases the buffer once they are all out.
    fn unhold(&mut self, out: &mut [u8]) -> usize {
        let n = (self.end - self.at).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        if self.at == self.end {
            self.buf = Vec::new();
            (self.at, self.end) = (0, 0);
        }
        n
    }
}

/// The inflate error inside an I/O error from the stream, if that is what it is: the driver reports it
/// as a violation by the server (1009 for a limit, 1002 otherwise).
pub(crate) fn inflate_error(e: &io::Error) -> Option<&InflateError> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<InflateError>())
}

/// Checks the server's answer in `response` to the offer made from `cfg` and sets the stream up
/// accordingly. `Ok(None)`: not offered, or declined.
pub(crate) fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<DeflateStream<S>>,
    cfg: Option<&DeflateConfig>,
    response: &Response,
) -> Result<Option<DeflateParams>, OpenError> {
    let answer = response.headers().get_all(SEC_WEBSOCKET_EXTENSIONS);
    let Some(cfg) = cfg else {
        // Nothing offered: any extension in the answer is one we did not offer (RFC 6455 4.1).
        if let Some(v) = answer.iter().next() {
            return Err(OpenError::Extension(format!(
                "the server enabled {:?}, but no extension was offered",
                String::from_utf8_lossy(v.as_bytes())
            )));
        }
        return Ok(None);
    };
    let lines: Vec<&str> = answer
        .iter()
        .map(|v| v.to_str().map_err(|_| OpenError::Extension("Sec-WebSocket-Extensions is not visible ASCII".into())))
        .collect::<Result<_, _>>()?;
    let params = tether_deflate::negotiate(cfg, lines).map_err(|e| OpenError::Extension(e.to_string()))?;
    let ws_cfg = *ws.get_config();
    let stream = ws.get_mut();
    match params {
        None => stream.start(None, None),
        Some(p) => {
            let inbound = Inbound {
                window_bits: p.server_max_window_bits,
                reset_each_message: p.server_no_context_takeover,
                max_message: ws_cfg.max_message_size.map(|n| n as u64),
                max_frame: ws_cfg.max_frame_size.map(|n| n as u64),
            };
            stream.start(Some(Rewriter::new(inbound)), Some(Compressor::new(cfg, &p)));
        }
    }
    Ok(params)
}

impl<S: AsyncRead + Unpin> AsyncRead for DeflateStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match &mut this.mode {
            Mode::Off => {
                if this.at < this.end {
                    return Poll::Ready(Ok(this.unhold(out)));
                }
                Pin::new(&mut this.inner).poll_read(cx, out)
            }
            Mode::Handshake(scan) => {
                let n = std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
                match scan.scan(&out[..n]) {
                    None => Poll::Ready(Ok(n)),
                    Some(head) => {
                        // Hold back what came after the response: frames, for the mode to come.
                        this.buf = out[head..n].to_vec();
                        (this.at, this.end) = (0, n - head);
                        this.mode = Mode::Held(None);
                        Poll::Ready(Ok(head))
                    }
                }
            }
            Mode::Held(waker) => {
                *waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Mode::Inflate(rw) => loop {
                if this.at < this.end || rw.has_output() {
                    let p = rw
                        .transform(&this.buf[this.at..this.end], out)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    this.at += p.consumed;
                    if p.produced > 0 {
                        return Poll::Ready(Ok(p.produced));
                    }
                    if p.consumed > 0 {
                        continue;
                    }
                }
                // The rewriter needs more input: keep what it has not used at the front, read after it.
                if this.buf.len() < READ_CHUNK {
                    this.buf.resize(READ_CHUNK, 0);
                }
                if this.at > 0 {
                    this.buf.copy_within(this.at..this.end, 0);
                    (this.at, this.end) = (0, this.end - this.at);
                }
                if this.end == this.buf.len() {
                    // Cannot happen: the rewriter uses any input it is given (a frame header is at
                    // most 14 bytes, kept inside it). Fail the connection rather than spin.
                    return Poll::Ready(Err(io::Error::other("permessage-deflate: the frame rewriter stalled")));
                }
                let n = std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut this.buf[this.end..]))?;
                if n == 0 {
                    return Poll::Ready(Ok(0));
                }
                this.end += n;
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DeflateStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}
