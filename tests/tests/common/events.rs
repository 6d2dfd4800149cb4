//! Waiting for events in the real-socket suites: a bounded wait for the next matching event, and the
//! timings those suites share. Shared by the endpoint and proxy suites.
#![allow(dead_code)] // each including suite uses part of it

use std::time::Duration;

use futures::StreamExt;
use tether::{BackoffConfig, ClientBuilder, ConnectInfo, Event, Events};

use super::runtimes::{Rt, within};

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A client with short backoff (50 ms to 300 ms) and timeouts generous enough for a loaded machine.
pub fn fast(url: &str) -> ClientBuilder {
    ClientBuilder::new(url)
        .backoff(BackoffConfig::default().base(ms(50)).max_delay(ms(300)).stable_after(ms(300)))
        .connect_timeout(secs(5))
        .close_timeout(secs(2))
}

/// The next event matching `pred`, within `d`; panics with every event seen on the way if none comes.
pub async fn until<R: Rt>(events: &mut Events, d: Duration, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
    within::<R, _>(d, what, async {
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

/// What the driver learned opening the next connection (within 15 s).
pub async fn connected<R: Rt>(events: &mut Events) -> ConnectInfo {
    match until::<R>(events, secs(15), "connected", |e| matches!(e, Event::Connected { .. })).await {
        Event::Connected { info, .. } => info,
        _ => unreachable!("matched Connected"),
    }
}
