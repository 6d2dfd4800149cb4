//! Session configuration and its validation.

use std::time::Duration;

use crate::{AckConfig, BackoffConfig, ConfigError, HeartbeatConfig, QueueConfig, RetryPolicy};

/// The longest duration any setting may have (10 years): far beyond any sensible timeout, and small
/// enough that adding it to an `Instant` can never overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Everything a [`Session`](crate::Session) needs to know. Every field has a documented default, chosen
/// to be safe: bounded memory, capped backoff that retries until told otherwise, keepalive on.
///
/// Checked by [`Config::validate`] when the session is created: an invalid value is a
/// [`ConfigError`], never a panic or a silent misbehaviour later. Build from [`Default`] and the
/// chainable setters (`Config::default().seed(7).heartbeat(None)`), or set fields on a default value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Longest time a transport may take to open (TCP + TLS + HTTP upgrade). Default: 10 s.
    pub connect_timeout: Duration,
    /// Longest time a user close waits for the queue to drain and the server's close frame. Default: 5 s.
    pub close_timeout: Duration,
    /// Reconnection backoff.
    pub backoff: BackoffConfig,
    /// Keepalive; `None` disables pings (not recommended: half-open links then go undetected).
    /// Default: `Some(HeartbeatConfig::default())`.
    pub heartbeat: Option<HeartbeatConfig>,
    /// Outgoing queue.
    pub queue: QueueConfig,
    /// Tracked (acknowledged) messages: the window and the ack timeout. See [`crate::acks`].
    pub acks: AckConfig,
    /// Which failures are retried.
    pub retry: RetryPolicy,
    /// Seed of the jitter generator. The same seed and inputs give the same actions. Give each client its
    /// own (drivers seed from OS entropy unless told otherwise), or clients cut off together retry
    /// together. Default: 0.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            backoff: BackoffConfig::default(),
            heartbeat: Some(HeartbeatConfig::default()),
            queue: QueueConfig::default(),
            acks: AckConfig::default(),
            retry: RetryPolicy::default(),
            seed: 0,
        }
    }
}

impl Config {
    /// Checks every value; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |d: Duration, name| {
            if d.is_zero() {
                Err(ConfigError::ZeroDuration(name))
            } else if d > MAX_DURATION {
                Err(ConfigError::TooLong(name))
            } else {
                Ok(())
            }
        };
        let bounded = |d: Duration, name| if d > MAX_DURATION { Err(ConfigError::TooLong(name)) } else { Ok(()) };
        positive(self.connect_timeout, "connect_timeout")?;
        positive(self.close_timeout, "close_timeout")?;

        let b = &self.backoff;
        positive(b.base, "backoff.base")?;
        positive(b.max_delay, "backoff.max_delay")?;
        if b.max_delay < b.base {
            return Err(ConfigError::MaxBelowBase);
        }
        if !b.factor.is_finite() || b.factor < 1.0 {
            return Err(ConfigError::BadFactor);
        }
        if b.max_attempts == Some(0) {
            return Err(ConfigError::ZeroLimit("backoff.max_attempts"));
        }
        if let Some(g) = b.give_up_after {
            positive(g, "backoff.give_up_after")?;
        }
        positive(b.stable_after, "backoff.stable_after")?;

        if let Some(h) = &self.heartbeat {
            positive(h.interval, "heartbeat.interval")?;
            positive(h.pong_timeout, "heartbeat.pong_timeout")?;
            bounded(h.late_tolerance, "heartbeat.late_tolerance")?;
            if let Some(i) = h.receive_idle {
                positive(i, "heartbeat.receive_idle")?;
            }
        }

        bounded(self.retry.try_again_later, "retry.try_again_later")?;
        bounded(self.retry.max_server_delay, "retry.max_server_delay")?;

        let q = &self.queue;
        if q.max_messages == 0 {
            return Err(ConfigError::ZeroLimit("queue.max_messages"));
        }
        if q.max_bytes == 0 {
            return Err(ConfigError::ZeroLimit("queue.max_bytes"));
        }
        if let Some(t) = q.ttl {
            positive(t, "queue.ttl")?;
        }

        let a = &self.acks;
        if a.max_messages == 0 {
            return Err(ConfigError::ZeroLimit("acks.max_messages"));
        }
        if a.max_bytes == 0 {
            return Err(ConfigError::ZeroLimit("acks.max_bytes"));
        }
        if let Some(t) = a.timeout {
            positive(t, "acks.timeout")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn each_invalid_value_is_named() {
        type Case = (fn(&mut Config), ConfigError);
        let cases: Vec<Case> = vec![
            (|c| c.connect_timeout = Duration::ZERO, ConfigError::ZeroDuration("connect_timeout")),
            (|c| c.close_timeout = Duration::ZERO, ConfigError::ZeroDuration("close_timeout")),
            (|c| c.backoff.base = Duration::ZERO, ConfigError::ZeroDuration("backoff.base")),
            (|c| c.backoff.max_delay = Duration::from_millis(1), ConfigError::MaxBelowBase),
            (|c| c.backoff.factor = 0.5, ConfigError::BadFactor),
            (|c| c.backoff.factor = f64::NAN, ConfigError::BadFactor),
            (|c| c.backoff.max_attempts = Some(0), ConfigError::ZeroLimit("backoff.max_attempts")),
            (|c| c.backoff.give_up_after = Some(Duration::ZERO), ConfigError::ZeroDuration("backoff.give_up_after")),
            (|c| c.backoff.stable_after = Duration::ZERO, ConfigError::ZeroDuration("backoff.stable_after")),
            (
                |c| c.heartbeat.as_mut().unwrap().interval = Duration::ZERO,
                ConfigError::ZeroDuration("heartbeat.interval"),
            ),
            (
                |c| c.heartbeat.as_mut().unwrap().pong_timeout = Duration::ZERO,
                ConfigError::ZeroDuration("heartbeat.pong_timeout"),
            ),
            (
                |c| c.heartbeat.as_mut().unwrap().receive_idle = Some(Duration::ZERO),
                ConfigError::ZeroDuration("heartbeat.receive_idle"),
            ),
            (|c| c.queue.max_messages = 0, ConfigError::ZeroLimit("queue.max_messages")),
            (|c| c.queue.max_bytes = 0, ConfigError::ZeroLimit("queue.max_bytes")),
            (|c| c.queue.ttl = Some(Duration::ZERO), ConfigError::ZeroDuration("queue.ttl")),
            (|c| c.acks.max_messages = 0, ConfigError::ZeroLimit("acks.max_messages")),
            (|c| c.acks.max_bytes = 0, ConfigError::ZeroLimit("acks.max_bytes")),
            (|c| c.acks.timeout = Some(Duration::ZERO), ConfigError::ZeroDuration("acks.timeout")),
            (|c| c.acks.timeout = Some(Duration::MAX), ConfigError::TooLong("acks.timeout")),
            (|c| c.connect_timeout = Duration::MAX, ConfigError::TooLong("connect_timeout")),
            (|c| c.backoff.max_delay = Duration::MAX, ConfigError::TooLong("backoff.max_delay")),
            (
                |c| c.heartbeat.as_mut().unwrap().late_tolerance = Duration::MAX,
                ConfigError::TooLong("heartbeat.late_tolerance"),
            ),
            (|c| c.retry.max_server_delay = Duration::MAX, ConfigError::TooLong("retry.max_server_delay")),
        ];
        for (mutate, expected) in cases {
            let mut c = Config::default();
            mutate(&mut c);
            assert_eq!(c.validate(), Err(expected));
        }
    }
}
