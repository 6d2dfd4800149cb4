//! The write side of a connection: Tether's own encoder for the frames it sends, and the one output
//! buffer those frames share with what tungstenite writes.
//!
//! tungstenite stays in charge of reading, of the handshake, and of the frames it owes the protocol (the
//! Pong answering a Ping, the close handshake). Data messages and Pings are encoded here instead,
//! straight into [`Out`]'s buffer: a header, a mask, and the payload copied and masked in one pass. That
//! is a third of the instructions of tungstenite's path for a small message (its `Frame` per message, a
//! mask drawn from the thread's generator per frame, a masking pass of its own), see BENCHMARKS.md.
//!
//! [`Out`] sits right under tungstenite: every write tungstenite makes is taken whole into the same
//! buffer (or straight to the socket when nothing is waiting), never partly, so frames from the two
//! sources are never interleaved, and a close frame tungstenite writes after data frames encoded here
//! goes out after them. The buffer is written out when tungstenite flushes (the driver flushes once per
//! batch), when it holds more than the write buffer size (backpressure: see [`Out::poll_drain`]), and
//! before a read (a peer that waits for us must get what we wrote).
//!
//! Masks (RFC 6455, 5.3 and 10.3: a fresh unpredictable key per frame, from a strong source of
//! entropy) come from the thread's cryptographically secure generator (`rand`'s ChaCha12, the one
//! tungstenite draws from), taken [`MASKS`] at a time so that a frame costs a copy of four bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};
use rand::Rng;

/// Masks drawn from the generator at once (4 bytes each, kept with the connection).
const MASKS: usize = 32;

/// The largest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// A frame's opcode (RFC 6455, 5.2), for the frames Tether encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpCode {
    Text = 0x1,
    Binary = 0x2,
    Ping = 0x9,
}

/// A stream with an output buffer that Tether's encoder and tungstenite both write into.
pub(crate) struct Out<S> {
    io: S,
    buf: Vec<u8>,
    /// How much of `buf` is already written to `io`.
    written: usize,
    masks: [u8; 4 * MASKS],
    /// Masks of `masks` already used.
    used: usize,
}

impl<S> Out<S> {
    pub(crate) fn new(io: S) -> Self {
        // Every mask counts as used: the first frame draws a fresh set.
        Self { io, buf: Vec::new(), written: 0, masks: [0; 4 * MASKS], used: MASKS }
    }

    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// Bytes encoded or taken from tungstenite and not yet written to the stream.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len() - self.written
    }

    fn mask(&mut self) -> [u8; 4] {
        if self.used == MASKS {
            rand::rng().fill_bytes(&mut self.masks);
            self.used = 0;
        }
        let i = 4 * self.used;
        self.used += 1;
        [self.masks[i], self.masks[i + 1], self.masks[i + 2], self.masks[i + 3]]
    }

    /// Appends one masked client frame (RFC 6455, 5.2): `fin`, `rsv1` (a compressed message's first
    /// frame, RFC 7692), `op`, and `payload` copied and masked.
    pub(crate) fn encode(&mut self, fin: bool, rsv1: bool, op: OpCode, payload: &[u8]) {
        let [m0, m1, m2, m3] = self.mask();
        let len = payload.len();
        let b0 = (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | op as u8;
        self.buf.reserve(MAX_HEADER + len);
        // Fixed-size copies: no call per header.
        if len < 126 {
            self.buf.extend_from_slice(&[b0, 0x80 | len as u8, m0, m1, m2, m3]);
        } else if let Ok(short) = u16::try_from(len) {
            let [l0, l1] = short.to_be_bytes();
            self.buf.extend_from_slice(&[b0, 0x80 | 126, l0, l1, m0, m1, m2, m3]);
        } else {
            let [l0, l1, l2, l3, l4, l5, l6, l7] = (len as u64).to_be_bytes();
            self.buf.extend_from_slice(&[b0, 0x80 | 127, l0, l1, l2, l3, l4, l5, l6, l7, m0, m1, m2, m3]);
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(payload);
        apply_mask(&mut self.buf[start..], [m0, m1, m2, m3]);
    }
}

/// XORs `buf` with the repeated 4-byte `mask`, 16 bytes at a time (one vector operation once the
/// compiler has unrolled the inner loop).
fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let mut chunks = buf.chunks_exact_mut(16);
    for c in &mut chunks {
        for (i, b) in c.iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
    }
    // The tail starts at a multiple of 16, so at mask byte 0.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

impl<S: AsyncWrite + Unpin> Out<S> {
    /// Writes the buffer to the stream (without flushing the stream); `Ready(Ok)` once all is written.
    pub(crate) fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.buf[self.written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    // Keep the written prefix out of the way once it is most of the buffer.
                    if self.written > self.buf.len() / 2 {
                        self.buf.drain(..self.written);
                        self.written = 0;
                    }
                    return Poll::Pending;
                }
            }
        }
        self.buf.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Out<S> {
    #[inline]
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // A peer may wait for what is buffered before it sends what this read waits for. A write error
        // shows up on the next flush.
        if this.buffered() > 0 {
            let _ = this.poll_drain(cx);
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Out<S> {
    /// Takes all of `data`: straight to the stream when nothing is buffered, the rest (or all of it)
    /// into the buffer, behind what is there.
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut taken = 0;
        if this.buffered() == 0 {
            match Pin::new(&mut this.io).poll_write(cx, data) {
                Poll::Ready(Ok(n)) => taken = n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        this.buf.extend_from_slice(&data[taken..]);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.io).poll_flush(cx),
            other => other,
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.io).poll_close(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use async_tungstenite::tungstenite::protocol::frame::FrameHeader;
    use futures::executor::block_on;
    use futures::io::{AsyncReadExt, AsyncWriteExt};

    /// Decodes the frames of `bytes` with tungstenite's own parser and unmasks them.
    fn decode(mut bytes: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let mut cur = std::io::Cursor::new(bytes);
            let (mut header, len) = FrameHeader::parse(&mut cur).unwrap().expect("a whole header");
            let start = cur.position() as usize;
            let mut payload = bytes[start..start + len as usize].to_vec();
            let mask = header.mask.take().expect("client frames are masked");
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
            out.push((header, payload));
            bytes = &bytes[start + len as usize..];
        }
        out
    }

    #[test]
    fn frames_decode_with_tungstenite_at_every_length_class() {
        let mut out = Out::new(futures::io::Cursor::new(Vec::<u8>::new()));
        let sizes = [0usize, 1, 7, 8, 9, 125, 126, 127, 65_535, 65_536, 70_001];
        for (i, &n) in sizes.iter().enumerate() {
            let payload: Vec<u8> = (0..n).map(|j| (i * 31 + j * 7) as u8).collect();
            let op = if i % 2 == 0 { OpCode::Binary } else { OpCode::Text };
            out.encode(true, i == 3, op, &payload);
        }
        out.encode(false, false, OpCode::Binary, b"tail");
        out.encode(true, false, OpCode::Ping, b"p");
        let frames = decode(&out.buf);
        assert_eq!(frames.len(), sizes.len() + 2);
        for (i, &n) in sizes.iter().enumerate() {
            let (h, p) = &frames[i];
            assert!(h.is_final);
            assert_eq!(h.rsv1, i == 3);
            assert!(!h.rsv2 && !h.rsv3);
            let expected: Vec<u8> = (0..n).map(|j| (i * 31 + j * 7) as u8).collect();
            assert_eq!(p, &expected, "payload of {n} bytes");
        }
        assert!(!frames[sizes.len()].0.is_final);
        assert_eq!(frames[sizes.len()].1, b"tail");
        assert_eq!(frames[sizes.len() + 1].1, b"p");
    }

    #[test]
    fn masks_are_fresh_per_frame_and_refilled() {
        let mut out = Out::new(futures::io::Cursor::new(Vec::<u8>::new()));
        let masks: Vec<[u8; 4]> = (0..3 * MASKS).map(|_| out.mask()).collect();
        let distinct: std::collections::BTreeSet<_> = masks.iter().collect();
        // 96 random 32-bit keys: a repeat has a chance of about one in a million.
        assert!(distinct.len() >= masks.len() - 1, "{} distinct of {}", distinct.len(), masks.len());
    }

    #[test]
    fn writes_are_taken_whole_and_kept_in_order() {
        let mut out = Out::new(futures::io::Cursor::new(Vec::<u8>::new()));
        block_on(async {
            // Nothing buffered: straight through.
            out.write_all(b"first").await.unwrap();
            assert_eq!(out.buffered(), 0);
            // Behind an encoded frame: buffered after it, written out by the flush.
            out.encode(true, false, OpCode::Binary, b"frame");
            out.write_all(b"second").await.unwrap();
            assert!(out.buffered() > 0);
            out.flush().await.unwrap();
            assert_eq!(out.buffered(), 0);
        });
        let written = out.get_mut().get_ref().clone();
        assert_eq!(&written[..5], b"first");
        let frame_len = 2 + 4 + 5;
        assert_eq!(decode(&written[5..5 + frame_len])[0].1, b"frame");
        assert_eq!(&written[5 + frame_len..], b"second");
        // Reads pass through.
        let mut out = Out::new(futures::io::Cursor::new(b"abc".to_vec()));
        let mut buf = [0u8; 3];
        block_on(out.read_exact(&mut buf)).unwrap();
        assert_eq!(&buf, b"abc");
    }
}
