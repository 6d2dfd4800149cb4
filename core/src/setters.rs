//! Chainable setters for the configuration structs.
//!
//! [`Config`], [`BackoffConfig`], [`HeartbeatConfig`], [`QueueConfig`] and [`AckConfig`] are `#[non_exhaustive]`, so
//! that a new setting is not a breaking change; outside this crate they cannot be written as struct
//! literals. Start from `Default` and chain these (one per field, named after it, as tungstenite's
//! `WebSocketConfig` does), or assign fields on a default value:
//!
//! ```
//! use std::time::Duration;
//! use tether_core::{BackoffConfig, Config, Jitter, QueueConfig};
//!
//! let backoff = BackoffConfig::default().base(Duration::from_millis(100)).jitter(Jitter::Full);
//! let config = Config::default().backoff(backoff).queue(QueueConfig::default().max_messages(64));
//! assert_eq!(config.backoff.base, Duration::from_millis(100));
//!
//! let mut same = Config::default();
//! same.backoff.base = Duration::from_millis(100);
//! same.backoff.jitter = Jitter::Full;
//! same.queue.max_messages = 64;
//! assert_eq!(config, same);
//! ```
//!
//! Nothing is checked here; [`Config::validate`] (called when a session is created) checks everything.

use std::time::Duration;

use crate::{
    AckConfig, BackoffConfig, Config, HeartbeatConfig, InFlightPolicy, Jitter, Overflow, QueueConfig, RetryPolicy,
};

/// One `pub fn field(mut self, value) -> Self` per listed field.
macro_rules! setters {
    ($ty:ident { $($field:ident: $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets `", stringify!($field), "` (see the field for its meaning and default).")]
                #[must_use = "a setter returns the changed configuration"]
                pub fn $field(mut self, value: $t) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters!(Config {
    connect_timeout: Duration,
    close_timeout: Duration,
    backoff: BackoffConfig,
    heartbeat: Option<HeartbeatConfig>,
    queue: QueueConfig,
    acks: AckConfig,
    retry: RetryPolicy,
    seed: u64,
});

setters!(BackoffConfig {
    base: Duration,
    factor: f64,
    max_delay: Duration,
    jitter: Jitter,
    max_attempts: Option<u32>,
    give_up_after: Option<Duration>,
    stable_after: Duration,
    immediate_first_retry: bool,
});

setters!(HeartbeatConfig {
    interval: Duration,
    pong_timeout: Duration,
    tolerated_misses: u32,
    receive_idle: Option<Duration>,
    late_tolerance: Duration,
});

setters!(QueueConfig {
    max_messages: usize,
    max_bytes: usize,
    overflow: Overflow,
    ttl: Option<Duration>,
    in_flight: InFlightPolicy,
});

setters!(AckConfig {
    max_messages: usize,
    max_bytes: usize,
    timeout: Option<Duration>,
});
