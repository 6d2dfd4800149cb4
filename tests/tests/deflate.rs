//! permessage-deflate, the sans-IO half: the rewriter (server frames → plain frames) and the
//! compressor, on RFC 7692's own examples, on round trips under every parameter and every way of
//! cutting the bytes, on decompression bombs, on broken input; and the `deflate` fuzz corpus replayed.

use std::path::Path;

use tether_deflate::{Compressor, DeflateConfig, DeflateParams, Inbound, InflateError, Rewriter};
use tether_tests::deflate::{Ending, Item, ServerDeflater, bomb, feed, fragmented, frame, read_plain};

/// No frame limit when reading the output (frames that pass unchanged may be of any size).
const ANY: usize = usize::MAX;

fn inbound(bits: u8, reset: bool) -> Inbound {
    Inbound { window_bits: bits, reset_each_message: reset, max_message: Some(64 << 20), max_frame: Some(16 << 20) }
}

fn text(s: &str) -> Item {
    Item::Message { text: true, payload: s.as_bytes().to_vec() }
}

/// Runs `input` through a fresh rewriter whole, and in pieces of 1, 2, 3, 7 and 4096 bytes with output
/// room of 1, 5, 131, 132, 133 and 4096 bytes; every way must give the same items, which are returned.
fn rewrite_every_way(cfg: Inbound, input: &[u8]) -> Vec<Item> {
    let mut first: Option<Vec<Item>> = None;
    for ins in [&[usize::MAX][..], &[1], &[2, 3], &[7], &[4096]] {
        for outs in [&[4096][..], &[1], &[5, 131], &[132, 133], &[65_536 + 9]] {
            let got = feed(&mut Rewriter::new(cfg), input, ins, outs);
            assert!(got.error.is_none(), "in {ins:?} out {outs:?}: {:?}", got.error);
            let (items, ok) = read_plain(&got.output, ANY);
            ok.unwrap_or_else(|e| panic!("in {ins:?} out {outs:?}: {e}"));
            match &first {
                None => first = Some(items),
                Some(f) => assert_eq!(&items, f, "in {ins:?} out {outs:?}"),
            }
        }
    }
    first.unwrap_or_default()
}

// ----- RFC 7692 section 7.2.3, byte for byte ------------------------------------------------------------

#[test]
fn rfc7692_examples() {
    let cfg = inbound(15, false);
    // 7.2.3.1: "Hello" in one compressed frame, and in two fragments.
    let one = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    assert_eq!(rewrite_every_way(cfg, &one), vec![text("Hello")]);
    let two = [0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00];
    assert_eq!(rewrite_every_way(cfg, &two), vec![text("Hello")]);
    // 7.2.3.2: the second "Hello" refers to the first (context takeover).
    let mut takeover = one.to_vec();
    takeover.extend_from_slice(&[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
    assert_eq!(rewrite_every_way(cfg, &takeover), vec![text("Hello"), text("Hello")]);
    // 7.2.3.3: a stored (uncompressed) deflate block.
    let stored = [0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00];
    assert_eq!(rewrite_every_way(cfg, &stored), vec![text("Hello")]);
    // 7.2.3.4: a block with BFINAL set; the next message starts a new stream.
    let mut bfinal = vec![0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    bfinal.extend_from_slice(&one);
    assert_eq!(rewrite_every_way(cfg, &bfinal), vec![text("Hello"), text("Hello")]);
    // Whatever follows a final block in the same message is ignored, as zlib-based peers do.
    let after = [0xc1, 0x0a, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x12, 0x34];
    assert_eq!(rewrite_every_way(cfg, &after), vec![text("Hello")]);
    // 7.2.3.5: two deflate blocks in one message.
    let blocks = [0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00];
    assert_eq!(rewrite_every_way(cfg, &blocks), vec![text("Hello")]);
    // 7.2.3.6: an empty message is one 0x00 byte.
    assert_eq!(rewrite_every_way(cfg, &[0xc2, 0x01, 0x00]), vec![Item::Message { text: false, payload: vec![] }]);
}

#[test]
fn compressor_matches_rfc7692_and_strips_the_tail() {
    let params = DeflateParams::new(15, 15, false, false);
    let cfg = DeflateConfig::default().threshold(Some(0));
    let mut c = Compressor::new(&cfg, &params);
    assert!(!c.is_allocated(), "nothing allocated before the first message");
    assert_eq!(&c.compress(b"Hello").unwrap()[..], &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    assert!(c.is_allocated());
    // With context takeover the second "Hello" is a back-reference: shorter.
    let second = c.compress(b"Hello").unwrap();
    assert!(second.len() < 7, "{second:x?}");
    assert_eq!(&c.compress(b"").unwrap()[..], &[0x00], "an empty message is one 0x00 byte");
    // Without it, every message compresses alike.
    let nct = DeflateParams::new(15, 15, false, true);
    let mut c = Compressor::new(&cfg, &nct);
    assert_eq!(c.compress(b"Hello"), c.compress(b"Hello"));
    // The threshold, and `None`.
    let mut c = Compressor::new(&cfg.threshold(Some(6)), &params);
    assert_eq!(c.compress(b"Hello"), None);
    assert!(!c.is_allocated(), "a message under the threshold allocates nothing");
    assert!(c.compress(b"Hello!").is_some());
    let mut c = Compressor::new(&cfg.threshold(None), &params);
    assert_eq!(c.compress(&[b'a'; 10_000]), None);
    // The server may hold the client to an 8-bit window, which zlib cannot make: uncompressed.
    let mut c = Compressor::new(&cfg, &DeflateParams::new(15, 8, false, false));
    assert_eq!(c.compress(&[b'a'; 10_000]), None);
}

// ----- round trips --------------------------------------------------------------------------------------

/// Messages a feed would carry: JSON ticks (similar, compressible), random bytes (incompressible), long
/// repeats, empty ones, large ones.
fn corpus() -> Vec<(bool, Vec<u8>)> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = vec![(true, Vec::new()), (false, Vec::new())];
    for i in 0..40 {
        out.push((
            true,
            format!(
                r#"{{"type":"tick","symbol":"BTC-USD","seq":{i},"bid":{},"ask":{},"size":{}}}"#,
                rand() % 100_000,
                rand() % 100_000,
                rand() % 1000
            )
            .into_bytes(),
        ));
    }
    out.push((false, (0..70_000).map(|_| rand() as u8).collect()));
    out.push((false, vec![7; 300_000]));
    out.push((true, "héllo wörld ✓ ".repeat(5_000).into_bytes()));
    out
}

/// Every message of the corpus compressed by a server with `bits`/`reset`/`ending`, fragmented as
/// `sizes` says (pings between the fragments), and every other message uncompressed.
fn server_stream(bits: u8, reset: bool, ending: Ending, sizes: &[usize]) -> (Vec<u8>, Vec<Item>) {
    let mut server = ServerDeflater::new(6, bits, reset);
    let (mut stream, mut expected) = (Vec::new(), Vec::new());
    for (k, (is_text, payload)) in corpus().into_iter().enumerate() {
        if k % 5 == 4 {
            fragmented(&mut stream, is_text, false, &payload, sizes, false);
        } else {
            let compressed = server.message(&payload, ending);
            fragmented(&mut stream, is_text, true, &compressed, sizes, true);
            for p in 0..sizes.len().saturating_sub(1) {
                expected.push(Item::Control { opcode: 9, payload: format!("p{p}").into_bytes() });
            }
        }
        expected.push(Item::Message { text: is_text, payload });
    }
    (stream, expected)
}

#[test]
fn round_trip_every_window_with_and_without_context_takeover() {
    for bits in 9..=15 {
        for reset in [false, true] {
            for ending in [Ending::Stripped, Ending::Final] {
                for sizes in [&[][..], &[1, 0, 2, 1000]] {
                    let (stream, expected) = server_stream(bits, reset, ending, sizes);
                    let got = feed(&mut Rewriter::new(inbound(bits, reset)), &stream, &[4096], &[4096]);
                    assert!(got.error.is_none(), "bits {bits} reset {reset} {ending:?}: {:?}", got.error);
                    let (items, ok) = read_plain(&got.output, ANY);
                    ok.unwrap();
                    assert_eq!(items, expected, "bits {bits} reset {reset} {ending:?} {sizes:?}");
                }
            }
        }
    }
}

/// Inflates one message the client compressed, as a streaming server with a `bits` window does (RFC
/// 7692 7.2.2: the tail appended), 64 bytes of output per call, so that only the window holds the
/// history: zlib refuses a back-reference farther than that ("invalid distance too far back").
fn server_inflate(d: &mut flate2::Decompress, payload: &[u8]) -> Result<Vec<u8>, String> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    let (mut out, mut chunk, mut used) = (Vec::new(), [0u8; 64], 0);
    loop {
        let (in0, out0) = (d.total_in(), d.total_out());
        d.decompress(&input[used..], &mut chunk, flate2::FlushDecompress::Sync).map_err(|e| e.to_string())?;
        used += (d.total_in() - in0) as usize;
        let wrote = (d.total_out() - out0) as usize;
        out.extend_from_slice(&chunk[..wrote]);
        if used == input.len() && wrote < chunk.len() {
            return Ok(out);
        }
        if wrote == 0 && d.total_in() == in0 {
            return Err(format!("stuck after {used} of {} bytes", input.len()));
        }
    }
}

#[test]
fn compressor_honours_the_agreed_window_and_context_takeover() {
    // The server may answer a smaller `client_max_window_bits` than offered: the client must then
    // compress within it, or the server's inflater (sized to it) fails. Without context takeover, each
    // message must inflate on its own. Besides the corpus, a message that repeats a 20 000-byte random
    // block: a compressor with a larger window than agreed refers 20 000 bytes back.
    let block = tether_tests::noise(0x2545_f491_4f6c_dd1d, 20_000);
    let mut messages: Vec<Vec<u8>> = corpus().into_iter().map(|(_, p)| p).collect();
    messages.push(block.repeat(2));
    messages.push(block.clone()); // with context takeover, a reference to the previous message
    let offered = DeflateConfig::default().threshold(Some(0));
    for bits in 9..=15 {
        for nct in [false, true] {
            let mut c = Compressor::new(&offered, &DeflateParams::new(15, bits, false, nct));
            let mut server = flate2::Decompress::new_with_window_bits(false, bits);
            let mut wire = 0;
            for (k, payload) in messages.iter().enumerate() {
                let compressed = c.compress(payload).expect("threshold 0: compressed");
                wire += compressed.len();
                if nct {
                    // A fresh inflater per message: nothing may refer to an earlier message.
                    server = flate2::Decompress::new_with_window_bits(false, bits);
                }
                let got = server_inflate(&mut server, &compressed)
                    .unwrap_or_else(|e| panic!("bits {bits} nct {nct} message {k}: {e}"));
                assert!(got == *payload, "bits {bits} nct {nct} message {k}: inflated differently");
            }
            // Not a vacuous pass: the messages did shrink.
            let total: usize = messages.iter().map(Vec::len).sum();
            assert!(wire < total / 2, "bits {bits} nct {nct}: {wire} of {total} bytes");
        }
    }
    // The config's own smaller window wins over a larger answer.
    let mut c = Compressor::new(&offered.client_max_window_bits(9), &DeflateParams::new(15, 15, false, false));
    let mut server = flate2::Decompress::new_with_window_bits(false, 9);
    for (k, payload) in messages.iter().enumerate() {
        let got = server_inflate(&mut server, &c.compress(payload).expect("compressed"));
        assert!(got.as_deref() == Ok(&payload[..]), "message {k}: {:?}", got.err());
    }
}

#[test]
fn round_trip_whatever_the_cuts() {
    let (stream, expected) = server_stream(15, false, Ending::Stripped, &[3, 100, 1]);
    assert_eq!(rewrite_every_way(inbound(15, false), &stream), expected);
}

#[test]
fn server_window_of_8_inflates_with_9() {
    // zlib cannot inflate raw deflate with an 8-bit window either; a 9-bit window accepts everything an
    // 8-bit compressor can produce.
    let (stream, expected) = server_stream(9, false, Ending::Stripped, &[]);
    let got = feed(&mut Rewriter::new(inbound(8, false)), &stream, &[4096], &[4096]);
    assert!(got.error.is_none());
    assert_eq!(read_plain(&got.output, ANY).0, expected);
}

#[test]
fn uncompressed_and_malformed_frames_pass_unchanged() {
    // Plain messages (fragmented too), control frames, and frames only the reader may judge: masked,
    // RSV2, RSV1 on a control frame, a continuation out of place.
    let mut s = Vec::new();
    frame(&mut s, true, false, 1, b"plain", None);
    fragmented(&mut s, false, false, &[1, 2, 3, 4, 5], &[2, 2], false);
    frame(&mut s, true, false, 10, b"pong", None);
    frame(&mut s, true, false, 1, b"masked", Some([1, 2, 3, 4]));
    s.extend_from_slice(&[0xa1, 0x00]); // RSV2
    s.extend_from_slice(&[0xc9, 0x00]); // RSV1 on a ping
    frame(&mut s, true, false, 0, b"stray", None);
    frame(&mut s, true, false, 8, &[0x03, 0xe8], None);
    let got = feed(&mut Rewriter::new(inbound(15, false)), &s, &[3], &[7]);
    assert!(got.error.is_none());
    assert_eq!(got.output, s, "copied byte for byte");
}

// ----- limits -----------------------------------------------------------------------------------------------

#[test]
fn a_decompression_bomb_stops_at_the_message_limit() {
    let bomb = bomb();
    eprintln!("bomb: {} KiB on the wire for 1 GiB inflated", bomb.len() >> 10);
    assert!(bomb.len() < 2 << 20, "about 1 MiB on the wire: {}", bomb.len());
    let limit = 4u64 << 20;
    let cfg = Inbound { max_message: Some(limit), ..inbound(15, false) };
    for (what, sizes) in [("one frame", vec![]), ("1 KiB fragments", vec![1024; bomb.len() / 1024 + 1])] {
        let mut stream = Vec::new();
        fragmented(&mut stream, false, true, &bomb, &sizes, false);
        frame(&mut stream, true, false, 8, &[0x03, 0xe8], None); // the server's close, after the bomb
        let mut rw = Rewriter::new(cfg);
        let got = feed(&mut rw, &stream, &[16 << 10], &[4096]);
        let (e, at) = got.error.expect("refused");
        assert_eq!(e, InflateError::MessageTooBig { limit }, "{what}");
        // It stopped at the limit: inflated output, and the compressed input read, are bounded by it.
        let stats = rw.stats();
        assert!(at as u64 <= limit + limit / 100, "{what}: {at} bytes written before the refusal");
        assert!(stats.inflated_bytes <= limit, "{what}: inflated {}", stats.inflated_bytes);
        assert!(stats.compressed_bytes < (64 << 10), "{what}: read {} compressed bytes", stats.compressed_bytes);
        // The rest of the bomb is dropped, the close frame still passes.
        let (items, _) = read_plain(&got.output[at..], ANY);
        assert_eq!(items, vec![Item::Control { opcode: 8, payload: vec![0x03, 0xe8] }], "{what}");
    }
}

#[test]
fn a_compressed_frame_over_the_frame_limit_is_refused_unread() {
    let mut server = ServerDeflater::new(0, 15, false);
    let payload = vec![1u8; 5000];
    let mut s = Vec::new();
    frame(&mut s, true, true, 2, &server.message(&payload, Ending::Stripped), None);
    frame(&mut s, true, false, 9, b"still here", None);
    frame(&mut s, true, false, 1, b"dropped", None);
    let cfg = Inbound { max_frame: Some(1000), ..inbound(15, false) };
    let mut rw = Rewriter::new(cfg);
    let got = feed(&mut rw, &s, &[4096], &[4096]);
    assert!(matches!(got.error, Some((InflateError::FrameTooBig { limit: 1000, .. }, 0))), "{:?}", got.error);
    assert!(!rw.is_allocated(), "refused before inflating anything");
    assert_eq!(read_plain(&got.output, ANY).0, vec![Item::Control { opcode: 9, payload: b"still here".to_vec() }]);
}

#[test]
fn written_frames_respect_a_small_frame_limit() {
    let cfg = Inbound { max_frame: Some(100), ..inbound(15, false) };
    let mut server = ServerDeflater::new(6, 15, false);
    let mut s = Vec::new();
    frame(&mut s, true, true, 1, &server.message("abc".repeat(1000).as_bytes(), Ending::Stripped), None);
    let got = feed(&mut Rewriter::new(cfg), &s, &[4096], &[4096]);
    assert!(got.error.is_none());
    let (items, ok) = read_plain(&got.output, 100);
    ok.unwrap();
    assert_eq!(items, vec![text(&"abc".repeat(1000))]);
}

// ----- broken input -----------------------------------------------------------------------------------------

#[test]
fn broken_compressed_data_is_refused_and_the_close_still_passes() {
    let cases: [(&str, Vec<u8>); 3] = [
        ("invalid block type", {
            let mut s = Vec::new();
            frame(&mut s, true, true, 1, &[0xff, 0xff, 0xff], None);
            s
        }),
        ("a new message inside a compressed one", {
            let mut s = Vec::new();
            frame(&mut s, false, true, 1, &[0xf2, 0x48], None);
            frame(&mut s, true, false, 1, b"x", None);
            s
        }),
        ("RSV1 on a continuation", {
            let mut s = Vec::new();
            frame(&mut s, false, true, 1, &[0xf2, 0x48], None);
            frame(&mut s, true, true, 0, &[0xcd], None);
            s
        }),
    ];
    for (what, mut s) in cases {
        frame(&mut s, true, false, 8, &[0x03, 0xe8], None);
        let got = feed(&mut Rewriter::new(inbound(15, false)), &s, &[1], &[4096]);
        let (e, at) = got.error.unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(!e.is_too_big(), "{what}: {e}");
        let (after, _) = read_plain(&got.output[at..], ANY);
        assert_eq!(after, vec![Item::Control { opcode: 8, payload: vec![0x03, 0xe8] }], "{what}");
    }
}

// ----- the fuzz corpus ---------------------------------------------------------------------------------------

#[test]
fn fuzz_corpus_deflate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/deflate");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    for f in files {
        let data = std::fs::read(&f).expect("readable corpus file");
        let r = std::panic::catch_unwind(|| tether_tests::deflate::rewriter(&data));
        assert!(r.is_ok(), "fuzz target deflate fails on {}", f.display());
    }
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/deflate");
    if let Ok(entries) = std::fs::read_dir(&regressions) {
        for f in entries.map(|e| e.expect("readable entry").path()) {
            let data = std::fs::read(&f).expect("readable regression file");
            let r = std::panic::catch_unwind(|| tether_tests::deflate::rewriter(&data));
            assert!(r.is_ok(), "fuzz target deflate fails on {}", f.display());
        }
    }
}

#[test]
fn fuzz_body_on_seeded_random_inputs() {
    // The fuzz body on pseudo-random inputs (deterministic), so the checker itself is exercised on
    // every `cargo test`, not only on the committed corpus.
    // One stream cut into consecutive inputs of growing length.
    let lens: Vec<usize> = (0..400).map(|i| 16 + i * 13).collect();
    let stream = tether_tests::noise(42, lens.iter().sum());
    let mut rest = &stream[..];
    for len in lens {
        let (data, tail) = rest.split_at(len);
        tether_tests::deflate::rewriter(data);
        rest = tail;
    }
}
