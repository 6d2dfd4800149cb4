//! What the API promises about its types, checked at compile time: every error-like type is a
//! `std::error::Error` (so it goes through `?` into `Box<dyn Error>`), and the configurations build from
//! `Default` with their setters. (`#[non_exhaustive]` is checked by the committed API listing,
//! `api/tether-core.txt`, through `tools/api-check.sh`.)

use std::error::Error;
use std::time::Duration;

use tether_core::*;

fn is_error<E: Error + Send + Sync + 'static>() {}

#[test]
fn every_error_like_type_is_an_error() {
    is_error::<OpenError>();
    is_error::<TransportError>();
    is_error::<Cause>();
    is_error::<FailReason>();
    is_error::<SendError>();
    is_error::<CommandError>();
    is_error::<ConfigError>();
    is_error::<InvalidUtf8>();

    // And `?` takes them into a boxed error, keeping the message.
    fn fails() -> Result<(), Box<dyn Error>> {
        Err(FailReason::Fatal(Cause::OpenFailed(OpenError::Http { status: 401, retry_after: None })))?
    }
    let e = fails().expect_err("an error");
    assert_eq!(e.to_string(), "fatal, not retried: handshake rejected with HTTP 401");
}

#[test]
fn configurations_build_from_default_with_setters() {
    let c = Config::default()
        .seed(7)
        .connect_timeout(Duration::from_secs(3))
        .backoff(BackoffConfig::default().base(Duration::from_millis(100)).jitter(Jitter::None).max_attempts(Some(4)))
        .heartbeat(Some(HeartbeatConfig::default().interval(Duration::from_secs(1)).tolerated_misses(2)))
        .queue(QueueConfig::default().max_messages(8).overflow(Overflow::DropOldest).ttl(Some(Duration::from_secs(9))));
    assert_eq!((c.seed, c.connect_timeout), (7, Duration::from_secs(3)));
    assert_eq!(
        (c.backoff.base, c.backoff.jitter, c.backoff.max_attempts),
        (Duration::from_millis(100), Jitter::None, Some(4))
    );
    assert_eq!(c.heartbeat.as_ref().map(|h| (h.interval, h.tolerated_misses)), Some((Duration::from_secs(1), 2)));
    assert_eq!((c.queue.max_messages, c.queue.overflow), (8, Overflow::DropOldest));
    // Everything not set keeps its default.
    assert_eq!(c.close_timeout, Config::default().close_timeout);
    assert_eq!(c.backoff.max_delay, BackoffConfig::default().max_delay);
    assert!(c.validate().is_ok());
}
