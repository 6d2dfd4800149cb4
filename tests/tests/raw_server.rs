//! Real sockets against a raw server (`tether_chaos::raw`) that sends what no well-behaved WebSocket
//! server sends: handshake rejections in `HTTP/1.0`, and frames that break the protocol. Written once,
//! run on tokio, smol and async-std. Bounded waits only.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tether::{BackoffConfig, Cause, ClientBuilder, Event, Events, FailReason, Jitter, OpenError};
use tether_chaos::raw::{self, Answer, RawServer};

mod common;
use common::runtimes::{AsyncStd, Rt, Smol, Tokio, within};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn builder(url: &str) -> ClientBuilder {
    ClientBuilder::new(url)
        .heartbeat(None)
        .connect_timeout(Duration::from_secs(10))
        .backoff(BackoffConfig::default().base(ms(20)).max_delay(ms(20)).jitter(Jitter::None))
}

async fn until<R: Rt>(events: &mut Events, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
    within::<R, _>(Duration::from_secs(30), what, async {
        while let Some(e) = events.next().await {
            if pred(&e) {
                return e;
            }
        }
        panic!("{what}: the event stream ended");
    })
    .await
}

/// Issue 11, defect 4: `HTTP/1.0 401` is fatal, as `HTTP/1.1 401` is.
async fn http10_rejection_401_is_fatal<R: Rt>() {
    let server = RawServer::start(raw::answer("HTTP/1.0 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"));
    let (_client, mut events) = R::connect(builder(&server.url()).build().unwrap());
    let e =
        until::<R>(&mut events, "the verdict", |e| matches!(e, Event::Failed(_) | Event::RetryScheduled { .. })).await;
    assert!(
        matches!(&e, Event::Failed(FailReason::Fatal(Cause::OpenFailed(OpenError::Http { status: 401, .. })))),
        "{e:?}"
    );
    assert_eq!(server.accepted(), 1);
}

/// Issue 11, defect 4: `HTTP/1.0 503` with `Retry-After` is retried after the server's delay.
async fn http10_rejection_503_honours_retry_after<R: Rt>() {
    let server = RawServer::start(raw::answer("HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n"));
    let (_client, mut events) = R::connect(builder(&server.url()).build().unwrap());
    let e =
        until::<R>(&mut events, "the retry", |e| matches!(e, Event::RetryScheduled { .. } | Event::Failed(_))).await;
    let rejected = Instant::now();
    let Event::RetryScheduled { delay, .. } = e else { panic!("{e:?}") };
    assert_eq!(delay, Duration::from_secs(1), "the server's Retry-After, not the 20 ms backoff");
    within::<R, _>(Duration::from_secs(30), "the second attempt", async {
        while server.accepted() < 2 {
            R::sleep(ms(10)).await;
        }
    })
    .await;
    assert!(rejected.elapsed() >= ms(900), "retried after {:?}", rejected.elapsed());
}

/// A server that sends `frame` after the handshake; returns what the client answered on the first
/// connection.
async fn answer_to<R: Rt>(cfg: ClientBuilder, frame: Vec<u8>) -> Answer {
    let answers = Arc::new(Mutex::new(Vec::new()));
    let a = answers.clone();
    let server = RawServer::start(move |tcp| {
        let answer = raw::send_raw_frame(tcp, &frame);
        a.lock().unwrap_or_else(|e| e.into_inner()).push(answer);
    });
    let (_client, _events) = R::connect(cfg.url(server.url()).build().unwrap());
    within::<R, _>(Duration::from_secs(30), "the client's answer", async {
        loop {
            if let Some(a) = answers.lock().unwrap_or_else(|e| e.into_inner()).first() {
                return a.clone();
            }
            R::sleep(ms(5)).await;
        }
    })
    .await
}

/// Issue 11, defect 2: invalid UTF-8 in a text message gets close 1007 (RFC 6455 8.1), not a dropped
/// connection.
async fn violation_invalid_utf8_gets_close_1007<R: Rt>() {
    let answer = answer_to::<R>(builder("ws://x/"), raw::text_frame(&[0xff, 0xfe])).await;
    assert!(matches!(answer, Answer::Close(1007, _)), "{answer:?}");
}

/// Issue 11, defect 2: a reserved opcode gets close 1002.
async fn violation_bad_opcode_gets_close_1002<R: Rt>() {
    let answer = answer_to::<R>(builder("ws://x/"), raw::raw_frame(0x83, b"x")).await;
    assert!(matches!(answer, Answer::Close(1002, _)), "{answer:?}");
}

/// Issue 11, defect 2: a message over the limit gets close 1009.
async fn violation_too_big_gets_close_1009<R: Rt>() {
    let cfg = builder("ws://x/").max_message_size(Some(1024));
    let answer = answer_to::<R>(cfg, raw::raw_frame(0x82, &[7u8; 4096])).await;
    assert!(matches!(answer, Answer::Close(1009, _)), "{answer:?}");
}

macro_rules! suite {
    ($module:ident, $rt:ty) => {
        mod $module {
            use super::*;
            #[test]
            fn http10_rejection_401_is_fatal() {
                <$rt>::block_on(super::http10_rejection_401_is_fatal::<$rt>())
            }
            #[test]
            fn http10_rejection_503_honours_retry_after() {
                <$rt>::block_on(super::http10_rejection_503_honours_retry_after::<$rt>())
            }
            #[test]
            fn violation_invalid_utf8_gets_close_1007() {
                <$rt>::block_on(super::violation_invalid_utf8_gets_close_1007::<$rt>())
            }
            #[test]
            fn violation_bad_opcode_gets_close_1002() {
                <$rt>::block_on(super::violation_bad_opcode_gets_close_1002::<$rt>())
            }
            #[test]
            fn violation_too_big_gets_close_1009() {
                <$rt>::block_on(super::violation_too_big_gets_close_1009::<$rt>())
            }
        }
    };
}

suite!(on_tokio, Tokio);
suite!(on_smol, Smol);
suite!(on_async_std, AsyncStd);
