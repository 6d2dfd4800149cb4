//! Support for the permessage-deflate tests: a server-side encoder (frames, compressed messages as a
//! server sends them), a checked reader of the plain frames the [`Rewriter`] writes, a harness that
//! feeds the rewriter in arbitrary pieces, and the body of the `deflate` cargo-fuzz target (so stable
//! `cargo test` replays its corpus through the same code).

use arbitrary::{Arbitrary, Unstructured};
use flate2::{Compress, Compression, FlushCompress};
use tether_deflate::{Inbound, InflateError, Rewriter};

// ----- the server side ---------------------------------------------------------------------------------

/// How a compressed message ends its deflate data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Sync flush, `00 00 ff ff` removed (RFC 7692 7.2.1: what every implementation does).
    Stripped,
    /// Sync flush, the tail kept: not a valid message by itself (the receiver's appended tail would
    /// not parse), but pieces made so can be joined into one message whose last tail is removed.
    Kept,
    /// A final block (BFINAL, RFC 7692 7.2.3.4); the compressor starts a new stream afterwards.
    Final,
}

/// A server's compressor: deflates messages with the given window and context rules.
pub struct ServerDeflater {
    c: Compress,
    reset_each_message: bool,
}

impl ServerDeflater {
    /// A compressor with `level` (0 to 9) and a `window_bits` window (9 to 15).
    pub fn new(level: u8, window_bits: u8, reset_each_message: bool) -> Self {
        let c =
            Compress::new_with_window_bits(Compression::new(u32::from(level.min(9))), false, window_bits.clamp(9, 15));
        Self { c, reset_each_message }
    }

    /// The compressed payload of one message.
    pub fn message(&mut self, payload: &[u8], ending: Ending) -> Vec<u8> {
        if payload.is_empty() && ending != Ending::Final {
            // zlib writes nothing for an empty sync flush right after another one.
            return if ending == Ending::Stripped { vec![0x00] } else { vec![0x00, 0x00, 0x00, 0xff, 0xff] };
        }
        let flush = if ending == Ending::Final { FlushCompress::Finish } else { FlushCompress::Sync };
        let mut out = Vec::with_capacity(payload.len() + 64);
        let in0 = self.c.total_in();
        loop {
            let read = (self.c.total_in() - in0) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(64));
            }
            let before = out.len();
            let status = self.c.compress_vec(&payload[read..], &mut out, flush).expect("deflate works");
            let done_reading = (self.c.total_in() - in0) as usize == payload.len();
            let full = out.len() == out.capacity();
            if (done_reading && !full) || status == flate2::Status::StreamEnd {
                break;
            }
            assert!(out.len() > before || !done_reading || full, "deflate makes progress");
        }
        if ending == Ending::Stripped {
            assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "a sync flush ends with an empty stored block");
            out.truncate(out.len() - 4);
        }
        if ending == Ending::Final || self.reset_each_message {
            self.c.reset();
        }
        out
    }
}

/// Appends one frame as a server sends it (unmasked unless `mask` is given).
pub fn frame(out: &mut Vec<u8>, fin: bool, rsv1: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    out.push(u8::from(fin) << 7 | u8::from(rsv1) << 6 | opcode);
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=65535 => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
}

/// Appends `payload` as a message in fragments of the given sizes (the last fragment takes the rest);
/// RSV1 on the first frame when `compressed`; a ping after every fragment but the last when `pings`.
pub fn fragmented(out: &mut Vec<u8>, text: bool, compressed: bool, payload: &[u8], sizes: &[usize], pings: bool) {
    let mut at = 0;
    let mut first = true;
    for (k, &size) in sizes.iter().enumerate() {
        let end = (at + size).min(payload.len());
        let last = k + 1 == sizes.len();
        let end = if last { payload.len() } else { end };
        let opcode = if first { if text { 1 } else { 2 } } else { 0 };
        frame(out, last, first && compressed, opcode, &payload[at..end], None);
        if pings && !last {
            frame(out, true, false, 9, format!("p{k}").as_bytes(), None);
        }
        first = false;
        at = end;
    }
    if sizes.is_empty() {
        frame(out, true, compressed, if text { 1 } else { 2 }, payload, None);
    }
}

/// A message of about 1 MiB on the wire that inflates to 1 GiB of zeros: the compressed form of 1 MiB
/// of zeros repeats exactly once the window is full of zeros, so one such piece is compressed and
/// repeated (a sync flush byte-aligns every piece).
pub fn bomb() -> Vec<u8> {
    let mut server = ServerDeflater::new(9, 15, false);
    let zeros = vec![0u8; 1 << 20];
    let first = server.message(&zeros, Ending::Kept);
    let piece = server.message(&zeros, Ending::Kept);
    assert_eq!(server.message(&zeros, Ending::Kept), piece, "the steady-state piece repeats");
    let mut out = first;
    for _ in 1..1024 {
        out.extend_from_slice(&piece);
    }
    out.truncate(out.len() - 4); // the last flush's empty block, as RFC 7692 7.2.1 removes it
    out
}

// ----- reading what the rewriter wrote ---------------------------------------------------------------

/// What the plain output holds, in order: complete data messages and control frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A data message, reassembled.
    Message {
        /// Text (opcode 1) or binary.
        text: bool,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// A control frame.
    Control {
        /// Its opcode.
        opcode: u8,
        /// Its payload.
        payload: Vec<u8>,
    },
}

/// Parses plain frames and reassembles messages, checking what a plain reader needs: no reserved
/// bits, no mask, continuation only inside a message, frame payloads within `max_frame`. Returns the
/// items, the bytes of an incomplete trailing frame or message (in bytes of payload) and the first
/// problem found.
pub fn read_plain(mut bytes: &[u8], max_frame: usize) -> (Vec<Item>, Result<(), String>) {
    let mut items = Vec::new();
    let mut partial: Option<(bool, Vec<u8>)> = None;
    while bytes.len() >= 2 {
        let (b0, b1) = (bytes[0], bytes[1]);
        if b0 & 0x70 != 0 || b1 & 0x80 != 0 {
            return (items, Err(format!("reserved bits or mask in a written frame: {b0:#x} {b1:#x}")));
        }
        let (len, hl) = match b1 & 0x7f {
            126 if bytes.len() >= 4 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 if bytes.len() >= 10 => {
                let n = u64::from_be_bytes([
                    bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9],
                ]);
                (usize::try_from(n).unwrap_or(usize::MAX), 10)
            }
            126 | 127 => break,
            n => (usize::from(n), 2),
        };
        if bytes.len() - hl < len {
            break;
        }
        if len > max_frame {
            return (items, Err(format!("a written frame of {len} bytes over the limit {max_frame}")));
        }
        let payload = &bytes[hl..hl + len];
        let fin = b0 & 0x80 != 0;
        match b0 & 0x0f {
            op @ (1 | 2) => {
                if partial.is_some() {
                    return (items, Err("a new message inside a fragmented one".into()));
                }
                if fin {
                    items.push(Item::Message { text: op == 1, payload: payload.to_vec() });
                } else {
                    partial = Some((op == 1, payload.to_vec()));
                }
            }
            0 => match partial.as_mut() {
                None => return (items, Err("a continuation outside a message".into())),
                Some((text, data)) => {
                    data.extend_from_slice(payload);
                    if fin {
                        items.push(Item::Message { text: *text, payload: std::mem::take(data) });
                        partial = None;
                    }
                }
            },
            op => items.push(Item::Control { opcode: op, payload: payload.to_vec() }),
        }
        bytes = &bytes[hl + len..];
    }
    (items, Ok(()))
}

/// What feeding a rewriter produced.
#[derive(Debug)]
pub struct Rewritten {
    /// Everything it wrote.
    pub output: Vec<u8>,
    /// The error it reported, with how much it had written by then.
    pub error: Option<(InflateError, usize)>,
    /// Calls made.
    pub calls: usize,
}

/// Feeds `input` to `rw` in pieces of the sizes in `in_sizes` (cycled; 0 counts as 1), offering output
/// room of the sizes in `out_sizes` (cycled; 0 counts as 1), the way the driver's stream does: a call
/// is made only with unused input or when [`Rewriter::has_output`] says one may produce something;
/// otherwise the next piece of input is given (and at the end of the input, it stops). So a rewriter
/// that keeps output back until more input comes fails the caller's expectations. Panics if the
/// rewriter reports a second error.
pub fn feed(rw: &mut Rewriter, input: &[u8], in_sizes: &[usize], out_sizes: &[usize]) -> Rewritten {
    let size =
        |sizes: &[usize], k: usize, dflt: usize| sizes.get(k % sizes.len().max(1)).copied().unwrap_or(dflt).max(1);
    let (mut given, mut used) = (0, 0);
    let mut out = Vec::new();
    let mut error = None;
    let mut calls = 0;
    let mut pieces = 0;
    let mut room = vec![0u8; 1];
    loop {
        if used == given && !rw.has_output() {
            if given == input.len() {
                break;
            }
            given = (given + size(in_sizes, pieces, 4096)).min(input.len());
            pieces += 1;
        }
        let want = size(out_sizes, calls, 4096);
        if room.len() < want {
            room.resize(want, 0);
        }
        calls += 1;
        match rw.transform(&input[used..given], &mut room[..want]) {
            Ok(p) => {
                assert!(p.consumed <= given - used && p.produced <= want, "progress out of bounds: {p:?}");
                out.extend_from_slice(&room[..p.produced]);
                used += p.consumed;
                if p.consumed == 0 && p.produced == 0 {
                    // Needs more input: the next piece on top of what is left, if any.
                    if given == input.len() {
                        break;
                    }
                    given = (given + size(in_sizes, pieces, 4096)).min(input.len());
                    pieces += 1;
                }
            }
            Err(e) => {
                assert!(error.is_none(), "a second error after {:?}: {e:?}", error);
                error = Some((e, out.len()));
            }
        }
    }
    Rewritten { output: out, error, calls }
}

// ----- the fuzz target -----------------------------------------------------------------------------------

/// A message body the fuzzer chooses.
#[derive(Debug, Arbitrary)]
pub enum Body {
    /// These bytes.
    Bytes(Vec<u8>),
    /// One byte repeated (highly compressible).
    Repeat(u8, u16),
    /// A text, for text messages.
    Text(String),
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Bytes(b) => b.clone(),
            Body::Repeat(b, n) => vec![*b; usize::from(*n)],
            Body::Text(t) => t.clone().into_bytes(),
        }
    }
}

/// One thing the fuzzed server sends.
#[derive(Debug, Arbitrary)]
pub enum StreamOp {
    /// A compressed message, in fragments, pings between them if asked.
    Compressed {
        /// Text (the body is made UTF-8) or binary.
        text: bool,
        /// Its content.
        body: Body,
        /// Fragment sizes of the compressed payload.
        fragments: Vec<u16>,
        /// A ping between every two fragments.
        pings: bool,
        /// Even: tail stripped; odd: final block.
        ending: u8,
    },
    /// An uncompressed message, in fragments.
    Plain {
        /// Text or binary.
        text: bool,
        /// Its content.
        body: Body,
        /// Fragment sizes.
        fragments: Vec<u16>,
    },
    /// A ping with this payload (at most 125 bytes).
    Ping(Vec<u8>),
    /// Arbitrary bytes: from here on the stream is not checked, only survived.
    Raw(Vec<u8>),
}

/// The fuzz target's input: the agreed parameters, limits, how the bytes are cut, what is sent.
#[derive(Debug, Arbitrary)]
pub struct DeflateInput {
    window_bits: u8,
    reset_each_message: bool,
    level: u8,
    max_message: Option<u16>,
    max_frame: Option<u16>,
    in_sizes: Vec<u16>,
    out_sizes: Vec<u16>,
    ops: Vec<StreamOp>,
}

/// Body of the `deflate` fuzz target: a server stream built from the input goes through a
/// [`Rewriter`] in arbitrary pieces. Checked: no panic and no stall; every written frame is plain and
/// within the frame limit; up to the first raw bytes, the messages and pings come out exactly as sent,
/// in order, until the first message that breaks a limit, which (and only which) is refused with a
/// limit error; after an error, only control frames come out.
pub fn rewriter(data: &[u8]) {
    let Ok(input) = DeflateInput::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let bits = 9 + input.window_bits % 7;
    let max_message = input.max_message.map(|m| u64::from(m).max(1));
    let max_frame = input.max_frame.map(|m| u64::from(m).max(1));
    let mut server = ServerDeflater::new(input.level % 10, bits, input.reset_each_message);
    let mut stream = Vec::new();
    // What must come out, in order, while the stream is checked.
    let mut expected = Vec::new();
    // Index in `expected` of the first message that breaks a limit.
    let mut first_violation = None;
    let mut checked = true;
    // Frames that pass unchanged may be longer than the frame limit (the reader judges them).
    let mut longest_passed = 0;
    for op in &input.ops {
        if !checked {
            break;
        }
        match op {
            StreamOp::Compressed { text, body, fragments, pings, ending } => {
                let mut payload = body.bytes();
                if *text {
                    payload = String::from_utf8_lossy(&payload).into_owned().into_bytes();
                }
                let ending = if ending.is_multiple_of(2) { Ending::Stripped } else { Ending::Final };
                let compressed = server.message(&payload, ending);
                let sizes: Vec<usize> = fragments.iter().take(64).map(|&s| usize::from(s)).collect();
                let before = stream.len();
                fragmented(&mut stream, *text, true, &compressed, &sizes, *pings);
                let longest = frame_lengths(&stream[before..]).into_iter().max().unwrap_or(0);
                let breaks = max_message.is_some_and(|m| payload.len() as u64 > m)
                    || max_frame.is_some_and(|m| longest as u64 > m);
                if *pings {
                    for k in 0..sizes.len().saturating_sub(1) {
                        expected.push(Item::Control { opcode: 9, payload: format!("p{k}").into_bytes() });
                    }
                }
                if breaks && first_violation.is_none() {
                    first_violation = Some(expected.len());
                }
                expected.push(Item::Message { text: *text, payload });
            }
            StreamOp::Plain { text, body, fragments } => {
                let mut payload = body.bytes();
                if *text {
                    payload = String::from_utf8_lossy(&payload).into_owned().into_bytes();
                }
                let sizes: Vec<usize> = fragments.iter().take(64).map(|&s| usize::from(s)).collect();
                let before = stream.len();
                fragmented(&mut stream, *text, false, &payload, &sizes, false);
                longest_passed = frame_lengths(&stream[before..]).into_iter().fold(longest_passed, usize::max);
                expected.push(Item::Message { text: *text, payload });
            }
            StreamOp::Ping(p) => {
                let p = &p[..p.len().min(125)];
                frame(&mut stream, true, false, 9, p, None);
                longest_passed = longest_passed.max(p.len());
                expected.push(Item::Control { opcode: 9, payload: p.to_vec() });
            }
            StreamOp::Raw(bytes) => {
                stream.extend_from_slice(bytes);
                checked = false;
            }
        }
    }
    let cfg = Inbound { window_bits: bits, reset_each_message: input.reset_each_message, max_message, max_frame };
    let mut rw = Rewriter::new(cfg);
    let in_sizes: Vec<usize> = input.in_sizes.iter().map(|&s| usize::from(s)).collect();
    let out_sizes: Vec<usize> = input.out_sizes.iter().map(|&s| usize::from(s)).collect();
    let got = feed(&mut rw, &stream, &in_sizes, &out_sizes);
    let frame_cap = max_frame.map_or(65_535, |m| m.min(65_535) as usize).max(longest_passed).max(125);
    let (items, plain) = read_plain(&got.output, frame_cap);
    if checked && let Err(why) = plain {
        panic!("written frames are not plain: {why}");
    }
    let mut after_error = Vec::new();
    let items_before_error = match &got.error {
        Some((_, at)) => {
            let (before, _) = read_plain(&got.output[..*at], frame_cap);
            let (all, _) = read_plain(&got.output, frame_cap);
            // Items that completed after the error, by position in the full list.
            after_error.extend(all.into_iter().skip(before.len()));
            before.len()
        }
        None => items.len(),
    };
    for item in &after_error {
        assert!(matches!(item, Item::Control { .. }), "a data message after the error: {item:?}");
    }
    if !checked {
        return;
    }
    match (first_violation, &got.error) {
        (None, None) => assert_eq!(items, expected, "the messages come out as sent"),
        (None, Some((e, _))) => panic!("refused a stream that breaks no limit: {e}"),
        (Some(k), None) => panic!("item {k} breaks a limit and was not refused: {:?}", expected[k]),
        (Some(k), Some((e, _))) => {
            assert!(e.is_too_big(), "a limit violation reported as {e:?}");
            assert_eq!(&items[..items_before_error.min(k)], &expected[..items_before_error.min(k)]);
            assert!(items_before_error <= k, "the message breaking a limit was delivered");
        }
    }
}

/// The payload lengths of the frames in `bytes` (well-formed, unmasked).
fn frame_lengths(mut bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let (len, hl) = match bytes[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => (u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")) as usize, 10),
            n => (usize::from(n), 2),
        };
        if bytes[0] & 0x08 == 0 {
            out.push(len);
        }
        bytes = &bytes[hl + len..];
    }
    out
}

// ----- a raw server that negotiates the extension ----------------------------------------------------

/// A frame the client sent to a [`RawServer`], unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    /// FIN.
    pub fin: bool,
    /// RSV1 (compressed).
    pub rsv1: bool,
    /// The opcode.
    pub opcode: u8,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

/// A one-connection WebSocket server written by hand, on std threads: it answers the upgrade with
/// the given `Sec-WebSocket-Extensions` (or none), sends the given bytes in the same write as the
/// response, and meanwhile records the client's frames until its close frame (answered), the end of
/// the connection, or 20 s.
pub struct RawServer {
    /// `ws://127.0.0.1:PORT/`.
    pub url: String,
    frames: std::sync::mpsc::Receiver<Vec<ClientFrame>>,
}

impl RawServer {
    /// Starts the server; `extensions`: the answer header's value; `after`: bytes sent right after the
    /// response (frames that arrive with it).
    pub fn start(extensions: Option<&str>, after: Vec<u8>) -> Self {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("ws://{}/", listener.local_addr().expect("address"));
        let extensions = extensions.map(str::to_owned);
        let (tx, frames) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else { return };
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(20)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if s.read(&mut byte).unwrap_or(0) == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let key = head
                .lines()
                .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-key")))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default();
            let accept = async_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            let mut out = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
            );
            if let Some(e) = &extensions {
                out.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
            }
            out.push_str("\r\n");
            let mut bytes = out.into_bytes();
            bytes.extend_from_slice(&after);
            // Written on a thread of its own, while this one reads: a client that stops reading (a
            // bomb refused) must still have its frames read, before a reset can discard them.
            let Ok(mut writer) = s.try_clone() else { return };
            std::thread::spawn(move || {
                let _ = writer.write_all(&bytes);
            });
            let mut got = Vec::new();
            while let Some(h) = read_exact(&mut s, 2) {
                let mut len = u64::from(h[1] & 0x7f);
                if len == 126 {
                    let Some(b) = read_exact(&mut s, 2) else { break };
                    len = u64::from(u16::from_be_bytes([b[0], b[1]]));
                } else if len == 127 {
                    let Some(b) = read_exact(&mut s, 8) else { break };
                    len = u64::from_be_bytes(b.try_into().unwrap_or_default());
                }
                let mask = if h[1] & 0x80 != 0 { read_exact(&mut s, 4) } else { Some(vec![0; 4]) };
                let Some(mask) = mask else { break };
                let Some(mut payload) = read_exact(&mut s, len as usize) else { break };
                payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= mask[i % 4]);
                let f = ClientFrame { fin: h[0] & 0x80 != 0, rsv1: h[0] & 0x40 != 0, opcode: h[0] & 0x0f, payload };
                let close = f.opcode == 8;
                if close {
                    let mut reply = Vec::new();
                    frame(&mut reply, true, false, 8, &f.payload, None);
                    let _ = s.write_all(&reply);
                }
                got.push(f);
                if close {
                    break;
                }
            }
            let _ = tx.send(got);
        });
        Self { url, frames }
    }

    /// The client's frames, once its close frame arrived or the connection ended (at most `limit`).
    pub fn frames(&self, limit: std::time::Duration) -> Option<Vec<ClientFrame>> {
        self.frames.recv_timeout(limit).ok()
    }
}

fn read_exact(s: &mut std::net::TcpStream, n: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut b = vec![0u8; n];
    s.read_exact(&mut b).ok().map(|()| b)
}
