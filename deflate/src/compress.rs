//! Outgoing messages: one message in, its compressed payload out (RFC 7692 section 7.2.1).
//!
//! The payload is deflated with a sync flush, which ends it with an empty stored block
//! (`0x00 0x00 0xff 0xff`); those four bytes are removed, and the peer appends them again before
//! inflating. The result goes out as one frame with RSV1 set.
//!
//! The compressor (zlib-rs through flate2; a few hundred KiB, see the README) is allocated when the
//! first message at or above the threshold is compressed, never before. With
//! `client_no_context_takeover` it is reset after every message. When the server limits the client to
//! an 8-bit window, which raw-deflate zlib cannot produce, every message goes uncompressed: that is
//! always allowed, compression being per message.

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress};
use tether_core::DeflateParams;

use crate::config::DeflateConfig;

/// The empty stored block a sync flush ends with.
pub(crate) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Compresses the client's outgoing messages on one connection.
pub struct Compressor {
    level: u8,
    window_bits: u8,
    reset_each_message: bool,
    threshold: Option<usize>,
    deflate: Option<Box<Compress>>,
    /// Reused between messages: the frozen payload of the previous message is split off it, and its
    /// allocation is taken back when that payload has been written and dropped.
    out: BytesMut,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("level", &self.level)
            .field("window_bits", &self.window_bits)
            .field("reset_each_message", &self.reset_each_message)
            .field("threshold", &self.threshold)
            .field("allocated", &self.deflate.is_some())
            .finish()
    }
}

impl Compressor {
    /// The compressor for a connection on which `params` were agreed; `cfg` gives the level, the
    /// threshold and the largest window the client wants to use.
    pub fn new(cfg: &DeflateConfig, params: &DeflateParams) -> Self {
        let window_bits = params.client_max_window_bits.min(cfg.client_max_window_bits);
        // zlib (and flate2) cannot produce raw deflate with a 256-byte window: send uncompressed.
        let threshold = if window_bits < 9 { None } else { cfg.threshold };
        Self {
            level: cfg.level.min(9),
            window_bits: window_bits.max(9),
            reset_each_message: params.client_no_context_takeover,
            threshold,
            deflate: None,
            out: BytesMut::new(),
        }
    }

    /// Whether a message of `len` bytes would be compressed.
    pub fn wants(&self, len: usize) -> bool {
        self.threshold.is_some_and(|t| len >= t)
    }

    /// Whether the compressor's state has been allocated (a message has been compressed).
    pub fn is_allocated(&self) -> bool {
        self.deflate.is_some()
    }

    /// The compressed payload of the message `payload`, to send in a frame with RSV1 set; `None` when
    /// the message goes uncompressed (below the threshold, compression disabled, or, after an internal
    /// zlib error, from then on: the peer never sees a half-compressed message, so uncompressed
    /// messages remain valid).
    pub fn compress(&mut self, payload: &[u8]) -> Option<Bytes> {
        if !self.wants(payload.len()) {
            return None;
        }
        if payload.is_empty() {
            // An empty stored block's header bits (RFC 7692 7.2.3.6). zlib would write nothing here
            // after an earlier flush, and an empty payload is not a valid compressed message.
            return Some(Bytes::from_static(&[0x00]));
        }
        let (level, bits) = (self.level, self.window_bits);
        let deflate = self.deflate.get_or_insert_with(|| {
            Box::new(Compress::new_with_window_bits(Compression::new(level.into()), false, bits))
        });
        // Room for the whole output up front in the common case: deflate expands incompressible
        // input by a few bytes per 16 KiB block, and the flush adds at most a dozen.
        let mut room = payload.len() + payload.len() / 64 + 64;
        self.out.clear();
        self.out.resize(room, 0);
        let (in0, out0) = (deflate.total_in(), deflate.total_out());
        let (mut read, mut written) = (0, 0);
        loop {
            let status = deflate.compress(&payload[read..], &mut self.out[written..], FlushCompress::Sync);
            let (was_read, was_written) = (read, written);
            read = (deflate.total_in() - in0) as usize;
            written = (deflate.total_out() - out0) as usize;
            match status {
                // All input taken and room left over: the flush is complete.
                Ok(_) if read == payload.len() && written < room => break,
                // The output filled up: make room and go on.
                Ok(_) if written > was_written || read > was_read => {
                    room += room / 2 + 64;
                    self.out.resize(room, 0);
                }
                // An error, or no progress with room to spare (which zlib never does): stop compressing.
                _ => {
                    self.threshold = None;
                    self.deflate = None;
                    return None;
                }
            }
        }
        self.out.truncate(written);
        if !self.out.ends_with(&TAIL) {
            // Cannot happen after a sync flush of non-empty input; if it did, the message cannot be
            // sent as RFC 7692 says, and the compressor's window would hold data the peer never saw.
            self.threshold = None;
            self.deflate = None;
            return None;
        }
        self.out.truncate(self.out.len() - TAIL.len());
        if self.reset_each_message {
            deflate.reset();
        }
        Some(self.out.split().freeze())
    }
}
