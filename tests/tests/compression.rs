//! permessage-deflate through the client on tokio, smol and async-std, against a server written by
//! hand ([`RawServer`]) so that every byte is ours to choose: frames that arrive in the same write as
//! the handshake response, what the client sends compressed, a decompression bomb (closed with 1009,
//! memory bounded), and answers to the offer that break RFC 7692 (fatal, [`OpenError::Extension`]).
//! Interop with real peers (Node `ws`, Python `websockets`) is in `interop.rs`; the codec on its own in
//! `deflate.rs`.

use std::time::Duration;

use flate2::{Decompress, FlushDecompress};
use futures::StreamExt;
use tether::core::Violation;
use tether::{
    BackoffConfig, Cause, ClientBuilder, DeflateConfig, Event, Events, FailReason, OpenError, TransportError,
};
use tether_tests::deflate::{ClientFrame, RawServer, bomb, fragmented, frame};

mod common;
use common::runtimes::{AsyncStd, Rt, Smol, Tokio, within};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// One attempt, no heartbeat, a 4 MiB message limit.
fn client(url: &str) -> ClientBuilder {
    ClientBuilder::new(url)
        .heartbeat(None)
        .backoff(BackoffConfig::default().max_attempts(Some(1)))
        .connect_timeout(secs(10))
        .close_timeout(secs(5))
        .max_message_size(Some(4 << 20))
        .compression(Some(DeflateConfig::default().threshold(Some(100))))
}

async fn next<R: Rt>(events: &mut Events, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
    within::<R, _>(secs(20), what, async {
        let mut seen = Vec::new();
        while let Some(e) = events.next().await {
            if pred(&e) {
                return e;
            }
            seen.push(e);
        }
        panic!("{what}: the event stream ended; saw {seen:?}");
    })
    .await
}

/// Inflates what the client sent compressed (RFC 7692 7.2.2), as a server would.
fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut d = Decompress::new_with_window_bits(false, 15);
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(64 << 10);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync).expect("valid deflate data");
    out
}

/// Frames that arrive in the same write as the 101 response pass through the rewriter too: a
/// compressed message, a ping, a fragmented compressed message; then the client's compressed message.
async fn frames_with_the_response<R: Rt>() {
    let mut after = Vec::new();
    frame(&mut after, true, true, 1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], None); // "Hello"
    frame(&mut after, true, false, 9, b"ping", None);
    fragmented(&mut after, true, true, &[0xf2, 0x00, 0x11, 0x00, 0x00], &[2, 3], true); // "Hello" again
    let server = RawServer::start(Some("permessage-deflate; client_no_context_takeover"), after);
    let (client, mut events) = R::connect(client(&server.url).build().unwrap());
    let e = next::<R>(&mut events, "connected", |e| matches!(e, Event::Connected { .. })).await;
    let Event::Connected { info, .. } = e else { unreachable!() };
    let params = info.compression.expect("negotiated");
    assert!(params.client_no_context_takeover && !params.server_no_context_takeover, "{params}");
    for n in 0..2 {
        let e = next::<R>(&mut events, "Hello", |e| matches!(e, Event::Message(_))).await;
        assert!(matches!(&e, Event::Message(m) if m.as_text() == Some("Hello")), "message {n}: {e:?}");
    }
    let long = "a message long enough to be compressed; ".repeat(10);
    client.send(long.as_str()).await.unwrap();
    client.send("short").await.unwrap();
    client.close(1000, "done").await.unwrap();
    next::<R>(&mut events, "closed", |e| matches!(e, Event::Closed { .. })).await;
    let frames = server.frames(secs(20)).expect("the server saw the client's frames");
    let data: Vec<&ClientFrame> = frames.iter().filter(|f| f.opcode == 1).collect();
    assert_eq!(data.len(), 2, "{frames:?}");
    assert!(data[0].rsv1 && data[0].fin, "above the threshold: compressed");
    assert_eq!(inflate(&data[0].payload), long.as_bytes());
    assert!(!data[1].rsv1 && data[1].payload == b"short", "below the threshold: plain");
    // Pongs answer the server's pings; the close frame ends it all.
    assert_eq!(frames.iter().filter(|f| f.opcode == 10).count(), 2, "{frames:?}");
    assert_eq!(frames.last().map(|f| (f.opcode, f.payload[..2].to_vec())), Some((8, 1000u16.to_be_bytes().to_vec())));
}

/// Peak resident memory of this process (`VmHWM`), KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A ~1 MiB message that inflates to 1 GiB, whole or in 1 KiB fragments: the client stops at its 4 MiB
/// message limit, reports a TooBig violation and closes with 1009; the process never holds anything
/// near the inflated size.
async fn bomb_is_closed_with_1009<R: Rt>(fragments: bool) {
    let bomb = bomb();
    let sizes = if fragments { vec![1024; bomb.len() / 1024 + 1] } else { vec![] };
    let mut after = Vec::new();
    fragmented(&mut after, false, true, &bomb, &sizes, false);
    let server = RawServer::start(Some("permessage-deflate"), after);
    let (client, mut events) = R::connect(client(&server.url).build().unwrap());
    let e = next::<R>(&mut events, "the violation", |e| {
        matches!(e, Event::Disconnected { .. } | Event::Failed(_) | Event::Message(_))
    })
    .await;
    let cause = match &e {
        Event::Disconnected { cause, .. } => cause,
        Event::Failed(FailReason::RetriesExhausted { last, .. } | FailReason::Fatal(last)) => last,
        other => panic!("{other:?}"),
    };
    assert!(
        matches!(cause, Cause::TransportFailed(TransportError::Violation { kind: Violation::TooBig, .. })),
        "{cause:?}"
    );
    let frames = server.frames(secs(20)).expect("the server saw the client's frames");
    assert!(frames.iter().all(|f| f.opcode != 2), "nothing echoed: {frames:?}");
    let close = frames.iter().find(|f| f.opcode == 8).unwrap_or_else(|| panic!("no close frame: {frames:?}"));
    assert_eq!(close.payload[..2], 1009u16.to_be_bytes(), "{close:?}");
    let peak = peak_rss_kib();
    assert!(peak < 512 << 10, "peak RSS {peak} KiB: the bomb was inflated far past the limit");
    drop(client);
}

/// Answers to the offer that break RFC 7692 fail the attempt with OpenError::Extension, fatal.
async fn invalid_answers_are_fatal<R: Rt>() {
    for answer in [
        "permessage-deflate; foo=1",
        "x-webkit-deflate-frame",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate, permessage-deflate",
    ] {
        let server = RawServer::start(Some(answer), Vec::new());
        let (client, mut events) = R::connect(client(&server.url).build().unwrap());
        let e = next::<R>(&mut events, "failed", |e| matches!(e, Event::Failed(_))).await;
        assert!(
            matches!(&e, Event::Failed(FailReason::Fatal(Cause::OpenFailed(OpenError::Extension(_))))),
            "{answer}: {e:?}"
        );
        assert_eq!(client.stats().connects, 0, "{answer}");
    }
    // Nothing offered, something answered: refused too.
    let server = RawServer::start(Some("permessage-deflate"), Vec::new());
    let (_client, mut events) = R::connect(client(&server.url).compression(None).build().unwrap());
    let e = next::<R>(&mut events, "failed", |e| matches!(e, Event::Failed(_))).await;
    assert!(matches!(&e, Event::Failed(FailReason::Fatal(Cause::OpenFailed(OpenError::Extension(_))))), "{e:?}");
}

macro_rules! suite {
    ($module:ident, $rt:ty) => {
        mod $module {
            use super::*;
            #[test]
            fn frames_with_the_response() {
                <$rt>::block_on(super::frames_with_the_response::<$rt>())
            }
            #[test]
            fn bomb_in_one_frame_is_closed_with_1009() {
                <$rt>::block_on(super::bomb_is_closed_with_1009::<$rt>(false))
            }
            #[test]
            fn bomb_in_fragments_is_closed_with_1009() {
                <$rt>::block_on(super::bomb_is_closed_with_1009::<$rt>(true))
            }
            #[test]
            fn invalid_answers_are_fatal() {
                <$rt>::block_on(super::invalid_answers_are_fatal::<$rt>())
            }
        }
    };
}

suite!(tokio_runtime, Tokio);
suite!(smol_runtime, Smol);
suite!(async_std_runtime, AsyncStd);
