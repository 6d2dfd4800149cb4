//! Incoming messages: a sans-IO rewriter from the server's frames to plain frames.
//!
//! [`Rewriter::transform`] takes the bytes the server sent and writes the frames a WebSocket library
//! without the extension can read:
//! - a frame that is not part of a compressed message (control frames, frames of uncompressed
//!   messages, and anything malformed, for the library to judge) is copied unchanged;
//! - a compressed message (its first frame has RSV1 set) is inflated as it arrives, fragments and all,
//!   and its content is written as a fragmented plain message: a first frame with the message's opcode,
//!   continuation frames, the last one with FIN. Frames are cut to the room the reader offers (at most
//!   64 KiB, and at most the frame limit), so nothing is buffered beyond a few header bytes; control
//!   frames between the fragments stay where they were.
//!
//! Per RFC 7692 section 7.2.2 the four bytes `0x00 0x00 0xff 0xff` are appended to the message before
//! it is inflated; a message that ends its deflate stream (a block with BFINAL set) is accepted, and
//! the decompressor starts a new stream for the next one. The decompressor (a 2^bits window, at least
//! 512 B, plus zlib-rs state) is allocated on the first compressed message; with
//! `server_no_context_takeover` it is reset after each message.
//!
//! Limits are checked while inflating: the inflated size of a message counts against the message
//! limit as each piece is produced, and a compressed frame's own length against the frame limit. A
//! violation is an [`InflateError`]; from then on data frames are dropped unread while control
//! frames still pass, so the close handshake can complete. Output per call is bounded by the room
//! given, whatever the input: a decompression bomb costs the limit, not its inflated size.

use flate2::{Decompress, FlushDecompress, Status};

use crate::compress::TAIL;

/// Why an incoming compressed message was refused. After one, the rewriter drops data frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The message inflates past the message size limit.
    #[error("compressed message inflates past the {limit}-byte message limit")]
    MessageTooBig {
        /// The limit.
        limit: u64,
    },
    /// A compressed frame is longer than the frame size limit.
    #[error("compressed frame of {len} bytes is over the {limit}-byte frame limit")]
    FrameTooBig {
        /// The frame's payload length.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// The compressed data is not valid deflate data.
    #[error("invalid compressed data: {0}")]
    Corrupt(String),
    /// The frames of a compressed message break RFC 6455 or 7692.
    #[error("invalid frame in a compressed message: {0}")]
    Frame(&'static str),
}

impl InflateError {
    /// Whether this is a size limit (close code 1009) rather than a protocol error (1002).
    pub fn is_too_big(&self) -> bool {
        matches!(self, InflateError::MessageTooBig { .. } | InflateError::FrameTooBig { .. })
    }
}

/// What one inflating step did.
struct Step {
    /// Payload bytes used.
    used: usize,
    /// Tail bytes used.
    tail_used: usize,
    /// Output bytes written (0 when the frame went to the staging buffer).
    wrote: usize,
    /// Without a tail: the decompressor has nothing more for the payload so far. With one: the
    /// message is complete and its last frame written.
    done: bool,
}

/// What a [`Rewriter::transform`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes used; the caller passes the rest again next time.
    pub consumed: usize,
    /// Output bytes written.
    pub produced: usize,
}

/// Settings of a [`Rewriter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inbound {
    /// The server's window (`server_max_window_bits`, 8 to 15).
    pub window_bits: u8,
    /// Reset the decompressor after every message (`server_no_context_takeover`).
    pub reset_each_message: bool,
    /// Largest inflated message, in bytes; `None`: no limit.
    pub max_message: Option<u64>,
    /// Largest frame: a compressed frame's length, and the frames written out; `None`: no limit.
    pub max_frame: Option<u64>,
}

/// Largest payload of a frame written out.
const MAX_OUT_FRAME: usize = 65_535;
/// Below this much room, a frame is built in the rewriter's own small buffer and copied out.
const SMALL_ROOM: usize = 132;
/// Payload of a frame built in the small buffer.
const SMALL_FRAME: usize = 125;

/// The server-to-client half of the extension, as a byte-stream transformation. See the module doc.
pub struct Rewriter {
    cfg: Inbound,
    inflate: Option<Box<Decompress>>,
    state: State,
    msg: Msg,
    /// Output not yet handed out: a copied frame header, or a small inflated frame.
    staged: [u8; 2 + SMALL_FRAME],
    staged_at: u8,
    staged_len: u8,
    /// After an error: data frames are dropped, control frames pass.
    failed: bool,
    /// An error found after some progress in the same call, reported by the next call.
    pending: Option<InflateError>,
    stats: Stats,
}

/// Counters of a [`Rewriter`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Compressed messages inflated to the end.
    pub messages: u64,
    /// Compressed payload bytes read (as sent by the server).
    pub compressed_bytes: u64,
    /// Bytes those inflated to.
    pub inflated_bytes: u64,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Reading a frame header.
    Header { buf: [u8; 14], have: u8 },
    /// Copying a payload unchanged.
    Pass { left: u64 },
    /// Dropping a payload.
    Skip { left: u64 },
    /// Inflating a compressed frame's payload.
    Inflate { left: u64, fin: bool },
    /// Inflating the appended tail of a compressed message: `fed` of its 4 bytes so far.
    Tail { fed: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    None,
    /// An uncompressed fragmented message: its continuations pass unchanged.
    Plain,
    Compressed {
        text: bool,
        /// A frame of it has been written out (later ones are continuations).
        started: bool,
        /// Inflated bytes so far.
        size: u64,
        /// Its deflate stream ended (BFINAL).
        ended: bool,
    },
}

impl std::fmt::Debug for Rewriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rewriter")
            .field("cfg", &self.cfg)
            .field("state", &self.state)
            .field("msg", &self.msg)
            .field("failed", &self.failed)
            .field("allocated", &self.inflate.is_some())
            .finish_non_exhaustive()
    }
}

const EMPTY_HEADER: State = State::Header { buf: [0; 14], have: 0 };

impl Rewriter {
    /// A rewriter for a connection with these settings. Allocates nothing.
    pub fn new(cfg: Inbound) -> Self {
        Self {
            cfg,
            inflate: None,
            state: EMPTY_HEADER,
            msg: Msg::None,
            staged: [0; 2 + SMALL_FRAME],
            staged_at: 0,
            staged_len: 0,
            failed: false,
            pending: None,
            stats: Stats::default(),
        }
    }

    /// Whether the decompressor's state has been allocated (a compressed message has arrived).
    pub fn is_allocated(&self) -> bool {
        self.inflate.is_some()
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether a call with no new input may produce something: staged output, an error to report, or
    /// a compressed message whose inflating is under way (the decompressor may hold output that did
    /// not fit last time, and the end of a message needs no more input). When this is false, a call
    /// needs more input to make progress; a caller must not wait for input while it is true.
    pub fn has_output(&self) -> bool {
        self.is_staged() || self.pending.is_some() || matches!(self.state, State::Inflate { .. } | State::Tail { .. })
    }

    /// Rewrites `input` (the server's bytes, in order) into `output`. Returns how much of each was
    /// used; call again with the unused input and more room. Makes progress whenever `output` is not
    /// empty and there is input or staged output: a call that uses no input and writes nothing needs
    /// more input. An error is reported once; the rewriter then drops data frames (see the module doc).
    /// A call that returns an error has used no input and written nothing: progress made before an
    /// error is returned first, and the error by the next call.
    pub fn transform(&mut self, input: &[u8], output: &mut [u8]) -> Result<Progress, InflateError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        let (mut i, mut o) = (0, 0);
        if let Err(e) = self.run(input, output, &mut i, &mut o) {
            self.fail();
            if i > 0 || o > 0 {
                // Report the progress made before the error now, the error on the next call.
                self.pending = Some(e);
            } else {
                return Err(e);
            }
        }
        Ok(Progress { consumed: i, produced: o })
    }

    fn run(&mut self, input: &[u8], output: &mut [u8], i: &mut usize, o: &mut usize) -> Result<(), InflateError> {
        loop {
            *o += self.unstage(&mut output[*o..]);
            if self.is_staged() || *o == output.len() {
                return Ok(());
            }
            match self.state {
                State::Header { mut buf, mut have } => {
                    let need = header_len(&buf, have);
                    let take = (need - usize::from(have)).min(input.len() - *i);
                    buf[usize::from(have)..usize::from(have) + take].copy_from_slice(&input[*i..*i + take]);
                    *i += take;
                    have += take as u8;
                    // The first two bytes tell the full length.
                    let need = header_len(&buf, have);
                    if usize::from(have) < need {
                        self.state = State::Header { buf, have };
                        if *i == input.len() {
                            return Ok(());
                        }
                        continue;
                    }
                    self.start_frame(&buf[..need])?;
                }
                State::Pass { left } => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len() - *i).min(output.len() - *o);
                    if n == 0 && left > 0 {
                        return Ok(());
                    }
                    output[*o..*o + n].copy_from_slice(&input[*i..*i + n]);
                    (*i, *o) = (*i + n, *o + n);
                    self.state = if left == n as u64 { EMPTY_HEADER } else { State::Pass { left: left - n as u64 } };
                }
                State::Skip { left } => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len() - *i);
                    if n == 0 && left > 0 {
                        return Ok(());
                    }
                    *i += n;
                    self.state = if left == n as u64 { EMPTY_HEADER } else { State::Skip { left: left - n as u64 } };
                }
                State::Inflate { left, fin } => {
                    let avail = usize::try_from(left).unwrap_or(usize::MAX).min(input.len() - *i);
                    // The rest of the message's last frame is here: the tail goes in the same call, so
                    // that a short message comes out as one frame with FIN.
                    let ends = fin && avail as u64 == left;
                    let tail: &[u8] = if ends { &TAIL } else { &[] };
                    let step = self.inflate_into(&input[*i..*i + avail], tail, &mut output[*o..])?;
                    (*i, *o) = (*i + step.used, *o + step.wrote);
                    self.stats.compressed_bytes += step.used as u64;
                    let left = left - step.used as u64;
                    if ends && step.done {
                        self.end_message();
                    } else if left == 0 && step.tail_used > 0 {
                        self.state = State::Tail { fed: step.tail_used as u8 };
                    } else if left == 0 && !fin && step.done {
                        self.state = EMPTY_HEADER;
                    } else {
                        self.state = State::Inflate { left, fin };
                        if step.used == 0 && step.wrote == 0 && !self.is_staged() {
                            return Ok(()); // needs input
                        }
                    }
                }
                State::Tail { fed } => {
                    let step = self.inflate_into(&[], &TAIL[usize::from(fed)..], &mut output[*o..])?;
                    *o += step.wrote;
                    if step.done {
                        self.end_message();
                    } else if step.tail_used == 0 && step.wrote == 0 && !self.is_staged() {
                        return Err(InflateError::Corrupt("the deflate stream does not end with the message".into()));
                    } else {
                        self.state = State::Tail { fed: fed + step.tail_used as u8 };
                    }
                }
            }
        }
    }

    /// Decides what to do with the frame whose header is `h`.
    fn start_frame(&mut self, h: &[u8]) -> Result<(), InflateError> {
        let (b0, b1) = (h[0], h[1]);
        let fin = b0 & 0x80 != 0;
        let rsv1 = b0 & 0x40 != 0;
        let rsv23 = b0 & 0x30 != 0;
        let opcode = b0 & 0x0f;
        let masked = b1 & 0x80 != 0;
        let len = match b1 & 0x7f {
            126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
            n => u64::from(n),
        };
        let control = opcode & 0x08 != 0;
        if self.failed {
            self.state = if control {
                self.stage(h);
                State::Pass { left: len }
            } else {
                State::Skip { left: len }
            };
            return Ok(());
        }
        // Ours only when well-formed: anything else goes to the library unchanged, to be refused there.
        let ours = !control && !rsv23 && !masked && len >> 63 == 0;
        match (opcode, self.msg) {
            (1 | 2, Msg::None) if ours && rsv1 => {
                self.state = State::Skip { left: len };
                self.check_frame(len)?;
                self.msg = Msg::Compressed { text: opcode == 1, started: false, size: 0, ended: false };
                self.state = State::Inflate { left: len, fin };
                return Ok(());
            }
            (0, Msg::Compressed { .. }) => {
                self.state = State::Skip { left: len };
                if !ours || rsv1 {
                    return Err(InflateError::Frame("a continuation with RSV bits set, masked or over-long"));
                }
                self.check_frame(len)?;
                self.state = State::Inflate { left: len, fin };
                return Ok(());
            }
            (1 | 2, Msg::Compressed { .. }) => {
                self.state = State::Skip { left: len };
                return Err(InflateError::Frame("a new message before the compressed one ended"));
            }
            (1 | 2, Msg::None) if !fin && !rsv1 => self.msg = Msg::Plain,
            (0, Msg::Plain) if fin => self.msg = Msg::None,
            _ => {}
        }
        self.stage(h);
        self.state = State::Pass { left: len };
        Ok(())
    }

    fn check_frame(&self, len: u64) -> Result<(), InflateError> {
        match self.cfg.max_frame {
            Some(limit) if len > limit => Err(InflateError::FrameTooBig { len, limit }),
            _ => Ok(()),
        }
    }

    /// Inflates `payload` (compressed bytes of the message), then `tail` (what is left of the appended
    /// `00 00 ff ff`, when the payload is the end of the message; else empty), into one frame written to
    /// `output` (directly, or through the small buffer when `output` is short).
    fn inflate_into(&mut self, payload: &[u8], tail: &[u8], output: &mut [u8]) -> Result<Step, InflateError> {
        let Msg::Compressed { text, started, size, ended } = self.msg else {
            unreachable!("inflating only inside a compressed message")
        };
        let bits = self.cfg.window_bits.clamp(9, 15);
        let inflate = self.inflate.get_or_insert_with(|| Box::new(Decompress::new_with_window_bits(false, bits)));
        let frame_cap = usize::try_from(self.cfg.max_frame.unwrap_or(u64::MAX)).unwrap_or(usize::MAX).max(1);
        let small = output.len() < SMALL_ROOM;
        let mut tmp = [0u8; SMALL_FRAME];
        let (room, header): (&mut [u8], usize) = if small {
            (&mut tmp[..SMALL_FRAME.min(frame_cap)], 0)
        } else {
            let cap = (output.len() - 4).min(MAX_OUT_FRAME).min(frame_cap);
            (&mut output[4..4 + cap], 4)
        };
        let cap = room.len();
        let (mut used, mut tail_used, mut wrote, mut now_ended) = (0, 0, 0, ended);
        for (part, is_tail) in [(payload, false), (tail, true)] {
            if now_ended {
                // After a final block: RFC 7692 7.2.3.4 has the sender add a byte there (and the
                // receiver appends the tail), so what follows the end of the stream is read and
                // ignored, as zlib-based peers do.
                if is_tail {
                    tail_used = part.len()
                } else {
                    used = part.len()
                }
                continue;
            }
            if wrote == cap || (is_tail && used < payload.len()) {
                break;
            }
            let (in0, out0) = (inflate.total_in(), inflate.total_out());
            let status = inflate
                .decompress(part, &mut room[wrote..], FlushDecompress::None)
                .map_err(|e| InflateError::Corrupt(e.message().unwrap_or("zlib error").to_owned()))?;
            let took = (inflate.total_in() - in0) as usize;
            wrote += (inflate.total_out() - out0) as usize;
            now_ended = status == Status::StreamEnd;
            if is_tail {
                tail_used = took
            } else {
                used = took
            }
            if now_ended && !is_tail {
                used = part.len();
            }
        }
        // The decompressor has nothing more for the input so far: it stopped short of the room.
        let drained = wrote < cap;
        let last = !tail.is_empty() && drained && tail_used == tail.len();
        if now_ended && !ended {
            self.msg = Msg::Compressed { text, started, size, ended: true };
        }
        let step = |wrote| Step { used, tail_used, wrote, done: if tail.is_empty() { drained } else { last } };
        if wrote == 0 && !last {
            return Ok(step(0));
        }
        let size = size.saturating_add(wrote as u64);
        if let Some(limit) = self.cfg.max_message
            && size > limit
        {
            return Err(InflateError::MessageTooBig { limit });
        }
        self.msg = Msg::Compressed { text, started: true, size, ended: now_ended };
        self.stats.inflated_bytes += wrote as u64;
        let opcode = match (started, text) {
            (true, _) => 0,
            (false, true) => 1,
            (false, false) => 2,
        };
        let b0 = if last { 0x80 } else { 0 } | opcode;
        let written = if small {
            // Header and payload into the staging buffer; the caller copies them out.
            self.staged[0] = b0;
            self.staged[1] = wrote as u8;
            self.staged[2..2 + wrote].copy_from_slice(&tmp[..wrote]);
            self.staged_at = 0;
            self.staged_len = (2 + wrote) as u8;
            0
        } else if wrote <= 125 {
            output.copy_within(header..header + wrote, 2);
            output[0] = b0;
            output[1] = wrote as u8;
            2 + wrote
        } else {
            output[0] = b0;
            output[1] = 126;
            output[2..4].copy_from_slice(&(wrote as u16).to_be_bytes());
            4 + wrote
        };
        Ok(step(written))
    }

    /// A compressed message has been inflated to its end.
    fn end_message(&mut self) {
        if let Msg::Compressed { ended, .. } = self.msg
            && let Some(inflate) = &mut self.inflate
            && (ended || self.cfg.reset_each_message)
        {
            inflate.reset(false);
        }
        self.stats.messages += 1;
        self.msg = Msg::None;
        self.state = EMPTY_HEADER;
    }

    /// After an error: drop the rest of this frame's payload (if it was ours) and every later data frame.
    fn fail(&mut self) {
        self.failed = true;
        self.state = match self.state {
            State::Inflate { left, .. } if left > 0 => State::Skip { left },
            State::Inflate { .. } | State::Tail { .. } => EMPTY_HEADER,
            other => other,
        };
        self.msg = Msg::None;
    }

    fn is_staged(&self) -> bool {
        self.staged_at < self.staged_len
    }

    fn stage(&mut self, bytes: &[u8]) {
        self.staged[..bytes.len()].copy_from_slice(bytes);
        self.staged_at = 0;
        self.staged_len = bytes.len() as u8;
    }

    fn unstage(&mut self, output: &mut [u8]) -> usize {
        let (at, len) = (usize::from(self.staged_at), usize::from(self.staged_len));
        let n = (len - at).min(output.len());
        output[..n].copy_from_slice(&self.staged[at..at + n]);
        self.staged_at += n as u8;
        n
    }
}

/// Bytes in a frame header whose first `have` bytes are in `buf`: 2 until the second byte is known.
fn header_len(buf: &[u8; 14], have: u8) -> usize {
    if have < 2 {
        return 2;
    }
    let mask = if buf[1] & 0x80 != 0 { 4 } else { 0 };
    2 + mask
        + match buf[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        }
}
