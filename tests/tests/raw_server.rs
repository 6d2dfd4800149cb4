//! Real sockets against a raw server (`tether_tests::raw`) that sends what no well-behaved WebSocket
//! server sends: handshake rejections in `HTTP/1.0`, and frames that break the protocol. Written once,
//! run on tokio, smol and async-std. Bounded waits only.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tether::{BackoffConfig, Cause, ClientBuilder, Event, Events, FailReason, Jitter, OpenError};
use tether_tests::raw::{self, RawServer};

mod common;
use common::runtimes::{AsyncStd, Rt, Smol, Tokio, within};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn builder(url: &str) -> ClientBuilder {
    ClientBuilder::new(url).heartbeat(None).connect_timeout(Duration::from_secs(10)).backoff(BackoffConfig {
        base: ms(20),
        max_delay: ms(20),
        jitter: Jitter::None,
        ..BackoffConfig::default()
    })
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
        }
    };
}

suite!(on_tokio, Tokio);
suite!(on_smol, Smol);
suite!(on_async_std, AsyncStd);
