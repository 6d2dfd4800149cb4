//! # tether-core
//!
//! The sans-IO state machine of Tether, a WebSocket client that keeps its connection up: reconnection
//! with backoff and jitter, a retry policy, heartbeat with RTT, a bounded outgoing queue in which every
//! message ends with exactly one reported [`Outcome`], and metrics.
//!
//! The core does no I/O, starts no thread, reads no clock and has no global state. Time is passed in as
//! `now: Instant`; jitter comes from a generator seeded through [`Config::seed`]. **The same seed and the
//! same inputs give the same actions and events**, which is what makes the deterministic simulator and
//! the fuzzer possible. Drivers (the `tether` adapters for tokio, async-std and smol) own the sockets and
//! timers and only carry out what the session decides.
//!
//! ## The driving loop
//!
//! After every input — a command ([`Session::connect`], [`Session::send`], [`Session::close`]), a
//! transport report ([`Session::handle_transport`]), a timer ([`Session::handle_timeout`]) or a network
//! hint ([`Session::handle_network`]) — drain [`Session::poll_action`] and [`Session::poll_event`] until
//! both return `None`, then sleep until [`Session::poll_timeout`] or the next input.
//!
//! Here a driver is played by hand: connect, exchange a message, lose the connection, back off,
//! reconnect, and see the message queued during the outage go out first.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tether_core::*;
//!
//! let t0 = Instant::now(); // the only clock read, by the "driver"
//! // Exact delays, for the example; real clients keep the jitter.
//! let backoff = BackoffConfig::default().jitter(Jitter::None);
//! let mut s = Session::new(Config::default().backoff(backoff), t0)?;
//!
//! // 1. Connect: the session asks for a transport.
//! s.connect(t0)?;
//! let Some(Action::Open { transport: t1, attempt: 1 }) = s.poll_action() else { unreachable!() };
//! s.handle_transport(t0, t1, TransportEvent::Opened(ConnectInfo::new(Duration::from_millis(3))));
//! assert_eq!(s.state(), State::Connected);
//!
//! // 2. A message: sent, flushed by the driver, reported as Sent.
//! let id = s.send(t0, Message::text("hello"))?;
//! let Some(Action::Send { id: Some(sent), .. }) = s.poll_action() else { unreachable!() };
//! s.handle_transport(t0, t1, TransportEvent::Flushed { through: sent });
//! let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
//! assert!(events.contains(&Event::Outcome { id, outcome: Outcome::Sent }));
//!
//! // 3. The connection drops: the session backs off (500 ms by default) and queues meanwhile.
//! let t = t0 + Duration::from_secs(60);
//! s.handle_transport(t, t1, TransportEvent::Closed(Err(TransportError::Io("reset".into()))));
//! assert_eq!(s.state(), State::Reconnecting);
//! let queued = s.send(t, Message::text("during the outage"))?;
//! assert_eq!(s.poll_action(), None); // nothing to do until the backoff passes
//! let retry_at = s.poll_timeout().unwrap();
//! assert_eq!(retry_at, t + Duration::from_millis(500));
//!
//! // 4. The backoff passes: a new transport, and the queued message goes out on it.
//! s.handle_timeout(retry_at);
//! let Some(Action::Open { transport: t2, .. }) = s.poll_action() else { unreachable!() };
//! assert_ne!(t1, t2);
//! s.handle_transport(retry_at, t2, TransportEvent::Opened(ConnectInfo::new(Duration::from_millis(2))));
//! let Some(Action::Send { transport, id: Some(resent), .. }) = s.poll_action() else { unreachable!() };
//! assert_eq!((transport, resent), (t2, queued));
//!
//! // A late report from the old transport is ignored and counted, not obeyed.
//! s.handle_transport(retry_at, t1, TransportEvent::Flushed { through: queued });
//! assert_eq!(s.stats(retry_at).stale_events, 1);
//! assert_eq!(s.stats(retry_at).reconnects, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Semantics worth knowing
//!
//! * **Outcomes.** Every id returned by [`Session::send`] ends with exactly one [`Event::Outcome`]:
//!   `Sent` (flushed to the socket — a WebSocket has no delivery receipt), `Dropped` (evicted by
//!   `DropOldest`), `Expired` (TTL passed, never sent), `Abandoned` (in flight on a transport that died,
//!   under [`InFlightPolicy::Abandon`]) or `Aborted` (queued when the session closed or failed).
//! * **Order.** Messages leave in the order they were accepted, across reconnects; on every new
//!   connection the preamble ([`Session::set_preamble`]) goes first, then requeued messages, then the
//!   backlog, then new messages.
//! * **Acknowledged messages.** `Sent` is not delivered. A message sent with
//!   [`Session::send_tracked`] and a key waits for the application's acknowledgement
//!   ([`Session::ack`], or a [`Frame::Correlated`] the driver matched) and ends [`Outcome::Acked`];
//!   a lost connection sends it again first on the next one (at-least-once). `Acked` is as strong as
//!   the server's acknowledgement: it must persist before it acknowledges. See the [`acks`] module.
//! * **Retries.** See [`RetryPolicy`] for what is retried, and [`BackoffConfig`] for how soon.
//! * **Heartbeat.** See the [`heartbeat`] module for the exact rules, including time jumps.
//!
//! ## What you can rely on as the API grows
//!
//! * **Marked `#[non_exhaustive]`, so they grow in minor versions:** [`Event`] (and its `Disconnected`,
//!   `RetryScheduled` and `Closed` variants), [`Cause`], [`FailReason`], [`Outcome`], [`DeadLink`],
//!   [`NetworkHint`], [`CloseMode`], [`Verdict`], [`Jitter`], [`Overflow`], [`InFlightPolicy`], the
//!   errors ([`SendError`], [`CommandError`], [`ConfigError`], [`OpenError`], [`TransportError`],
//!   [`Violation`]); the structs [`Stats`], [`ErrorCounts`], [`Rtt`], [`ConnectInfo`], [`Tracking`] and
//!   the configurations [`Config`], [`BackoffConfig`], [`HeartbeatConfig`], [`QueueConfig`],
//!   [`AckConfig`]. Match them with
//!   a `_` arm (and `..` in struct-like variants), read their fields, and build configurations from
//!   `Default` with the chainable setters, one per field:
//!
//!   ```
//!   # use std::time::Duration;
//!   # use tether_core::{BackoffConfig, Config, Jitter, QueueConfig};
//!   let backoff = BackoffConfig::default().base(Duration::from_millis(100)).jitter(Jitter::Full);
//!   let config = Config::default().backoff(backoff).queue(QueueConfig::default().max_messages(64));
//!   let mut same = Config::default(); // or assign fields on a default value
//!   same.backoff.base = Duration::from_millis(100);
//!   same.backoff.jitter = Jitter::Full;
//!   same.queue.max_messages = 64;
//!   assert_eq!(config, same);
//!   ```
//! * **Exhaustive on purpose:** [`State`] (a new state would change the lifecycle every application
//!   reasons about: a breaking change, announced as one), [`MessageKind`] (text or binary, fixed by
//!   RFC 6455), and the driver-facing [`Action`], [`TransportEvent`] and [`Frame`]: a driver must carry
//!   out every action, so a new one must fail its build rather than fall into a wildcard.
//! * **Errors** all implement [`std::error::Error`] (so `?` into `Box<dyn Error>` works); their
//!   `Display` text is for people and may be reworded: match on variants, not on text. `Debug` output
//!   is not a format either.
//! * **The list** of public items is committed in `api/tether-core.txt` at the repository root, and
//!   checked: see the README, "API check".

#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod acks;
mod backoff;
mod compression;
pub mod config;
mod error;
mod event;
pub mod heartbeat;
mod message;
mod metrics;
mod queue;
mod retry;
mod rng;
mod session;
mod setters;
mod timer;
mod transport;

pub use acks::{AckConfig, AckKey, Tracking};
pub use backoff::{BackoffConfig, Jitter};
pub use compression::DeflateParams;
pub use config::{Config, MAX_DURATION};
pub use error::{CommandError, ConfigError, SendError};
pub use event::{Action, Cause, CloseMode, Event, FailReason, NetworkHint, Outcome, State};
pub use heartbeat::{DeadLink, HeartbeatConfig};
pub use message::{InvalidUtf8, Message, MessageId, MessageKind};
pub use metrics::{ErrorCounts, Rtt, Stats};
pub use queue::{InFlightPolicy, Overflow, QueueConfig};
pub use retry::{RetryPolicy, Verdict};
pub use session::Session;
pub use transport::{
    CloseFrame, ConnectInfo, ConnectPhase, Frame, OpenError, ProxyError, TransportError, TransportEvent, TransportId,
    Violation, parse_retry_after,
};
