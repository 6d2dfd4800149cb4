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
//! - `Inflate`: negotiated. Reads fill a buffer of the stream's own (4 KiB, allocated when the first
//!   bytes arrive, so an idle connection has none) that the [`Rewriter`] turns into plain frames in
//!   tungstenite's buffer.
//!
//! Writes always go straight through: outgoing messages are compressed before they are encoded
//! ([`DeflateStream::compress`], called by the connection for each message, whose frame Tether's own
//! encoder writes, see `writer`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::writer::Out;
use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::handshake::client::Response;
use async_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_EXTENSIONS;
use bytes::Bytes;
use futures::io::{AsyncRead, AsyncWrite};
use tether_core::{DeflateParams, OpenError};
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

    /// The stream underneath.
    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The compressed form of a message's `payload`, when it is to go compressed (the extension is in
    /// use and the message reaches the threshold): the payload of its one frame, sent with RSV1 set.
    #[inline]
    pub(crate) fn compress(&mut self, payload: &[u8]) -> Option<Bytes> {
        self.compressor.as_mut()?.compress(payload)
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
    ws: &mut WebSocketStream<Out<DeflateStream<S>>>,
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
    let stream = ws.get_mut().get_mut();
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
                // The rewriter needs more input.
                if this.buf.is_empty() {
                    // No buffer yet: an idle connection never gets one. The first bytes are read into
                    // the reader's buffer, then moved to a buffer of the stream's own.
                    let n = std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
                    if n == 0 {
                        return Poll::Ready(Ok(0));
                    }
                    let mut buf = vec![0; READ_CHUNK.max(n)];
                    buf[..n].copy_from_slice(&out[..n]);
                    (this.buf, this.at, this.end) = (buf, 0, n);
                    continue;
                }
                if this.buf.len() < READ_CHUNK {
                    // What was held back during the handshake: grow it to a full buffer.
                    this.buf.resize(READ_CHUNK, 0);
                }
                // Keep what the rewriter has not used at the front, read after it.
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use futures::task::noop_waker;

    use super::*;

    /// A transport that hands out the given chunks, one per read, then says Pending.
    struct Chunks(VecDeque<Vec<u8>>);

    impl AsyncRead for Chunks {
        fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
            let Some(chunk) = self.0.front_mut() else { return Poll::Pending };
            let n = chunk.len().min(out.len());
            out[..n].copy_from_slice(&chunk[..n]);
            chunk.drain(..n);
            if chunk.is_empty() {
                self.0.pop_front();
            }
            Poll::Ready(Ok(n))
        }
    }

    /// Reads with `room`-byte buffers until the stream says Pending; returns everything read.
    fn read_until_pending(s: &mut DeflateStream<Chunks>, room: usize) -> Vec<u8> {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut out = Vec::new();
        let mut buf = vec![0u8; room];
        loop {
            match Pin::new(&mut *s).poll_read(&mut cx, &mut buf) {
                Poll::Ready(Ok(0)) => panic!("end of stream"),
                Poll::Ready(Ok(n)) => out.extend_from_slice(&buf[..n]),
                Poll::Ready(Err(e)) => panic!("{e}"),
                Poll::Pending => return out,
            }
        }
    }

    /// The payloads of unmasked, unfragmented-or-fragmented plain data messages in `bytes`.
    fn messages(mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let (mut out, mut cur) = (Vec::new(), Vec::new());
        while bytes.len() >= 2 {
            assert_eq!(bytes[0] & 0x70, 0, "no reserved bit reaches tungstenite");
            let (len, hl) = match bytes[1] {
                126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
                n => (usize::from(n), 2),
            };
            cur.extend_from_slice(&bytes[hl..hl + len]);
            if bytes[0] & 0x80 != 0 && bytes[0] & 0x08 == 0 {
                out.push(std::mem::take(&mut cur));
            }
            bytes = &bytes[hl + len..];
        }
        out
    }

    const HELLO: [u8; 9] = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    /// RFC 7692 7.2.3.2's second "Hello" (a back-reference to the first), in two fragments.
    const HELLO_AGAIN_FRAGMENTED: [u8; 9] = [0x41, 0x03, 0xf2, 0x00, 0x11, 0x80, 0x02, 0x00, 0x00];

    fn inflating(chunks: Vec<Vec<u8>>) -> DeflateStream<Chunks> {
        let mut s = DeflateStream::new(Chunks(chunks.into()), false);
        let cfg = Inbound { window_bits: 15, reset_each_message: false, max_message: None, max_frame: None };
        s.start(Some(Rewriter::new(cfg)), None);
        s
    }

    #[test]
    fn everything_that_arrived_is_read_before_pending() {
        // The last message of what arrived must come out without waiting for more input, whatever
        // the reader's buffer and however the bytes were cut.
        // Then a message that inflates to more than the reader's buffer: its end must come out too.
        let big: Vec<u8> = (0..20_000u32).flat_map(|i| (i % 251).to_string().into_bytes()).collect();
        let params = DeflateParams::new(15, 15, true, true);
        let cfg = DeflateConfig::default().threshold(Some(0));
        let compressed = Compressor::new(&cfg, &params).compress(&big).expect("compressed");
        let mut all = HELLO.to_vec();
        all.extend_from_slice(&HELLO_AGAIN_FRAGMENTED);
        all.extend_from_slice(&[0xc2, 126]);
        all.extend_from_slice(&(compressed.len() as u16).to_be_bytes());
        all.extend_from_slice(&compressed);
        let want = vec![b"Hello".to_vec(), b"Hello".to_vec(), big.clone()];
        for room in [1, 2, 7, 131, 132, 4096] {
            for cut in [1, 3, 1000, all.len()] {
                let chunks = all.chunks(cut).map(<[u8]>::to_vec).collect();
                let got = read_until_pending(&mut inflating(chunks), room);
                assert!(messages(&got) == want, "room {room}, cut {cut}: {} bytes read", got.len());
            }
        }
    }

    #[test]
    fn the_handshake_stops_at_the_end_of_the_response() {
        let response = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
        let mut first = response.to_vec();
        first.extend_from_slice(&HELLO);
        let mut s = DeflateStream::new(Chunks(vec![first].into()), true);
        assert_eq!(read_until_pending(&mut s, 4096), response.to_vec(), "only the response, then wait");
        assert!(matches!(s.mode, Mode::Held(_)));
        let cfg = Inbound { window_bits: 15, reset_each_message: false, max_message: None, max_frame: None };
        s.start(Some(Rewriter::new(cfg)), None);
        assert_eq!(messages(&read_until_pending(&mut s, 4096)), vec![b"Hello".to_vec()], "held frames rewritten");
        // A frame cut by the end of the response's read is completed by the next read.
        let mut first = response.to_vec();
        first.extend_from_slice(&HELLO[..3]);
        let mut s = DeflateStream::new(Chunks(vec![first, HELLO[3..].to_vec()].into()), true);
        assert_eq!(read_until_pending(&mut s, 4096), response.to_vec());
        let cfg = Inbound { window_bits: 15, reset_each_message: false, max_message: None, max_frame: None };
        s.start(Some(Rewriter::new(cfg)), None);
        assert_eq!(messages(&read_until_pending(&mut s, 4096)), vec![b"Hello".to_vec()], "completed");
        // An idle connection allocates no buffer.
        let mut s = inflating(Vec::new());
        assert!(read_until_pending(&mut s, 4096).is_empty());
        assert_eq!(s.buf.capacity(), 0, "nothing arrived, nothing allocated");
        // Declined: the held bytes come out unchanged, then reads go straight through.
        let mut first = response.to_vec();
        first.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
        let mut s = DeflateStream::new(Chunks(vec![first, vec![0x81, 0x00]].into()), true);
        assert_eq!(read_until_pending(&mut s, 4096), response.to_vec());
        s.start(None, None);
        assert_eq!(read_until_pending(&mut s, 3), vec![0x81, 0x02, b'h', b'i', 0x81, 0x00]);
        assert!(s.buf.capacity() == 0, "the held buffer is released");
    }
}
