//! # tether
//!
//! A resilient WebSocket client: the runtime-agnostic driver and the [`Client`] API. Use it through
//! `tether-tokio`, `tether-smol` or `tether-async-std`, which bind it to a runtime and re-export all of
//! this.
//!
//! The decisions (reconnection, backoff, retry policy, heartbeat, queue, outcomes) are made by the
//! sans-IO state machine in [`tether_core`]; this crate carries them to real sockets with
//! `async-tungstenite` and rustls, in one driver task per client:
//!
//! * [`ClientBuilder`] gathers and validates the settings (a bad URL, header or subprotocol is a
//!   [`BuildError`], never a panic).
//! * [`connect`] spawns the driver and returns a [`Client`] (cloneable, `Send + Sync`) and the
//!   [`Events`] stream.
//! * [`Client::send`] returns the message id as soon as the message is queued; its [`Outcome`] arrives as
//!   an event (or through a [`Receipt`]).
//!
//! Logging goes through `tracing`: a span per client (URL with query values redacted) and per attempt;
//! header values that may hold secrets are never logged.

#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

#[cfg(feature = "async-io")]
pub mod async_io;
mod builder;
mod client;
mod connect;
mod deflate;
mod driver;
mod events;
#[cfg(feature = "async-io")]
mod keeper;
mod redact;
mod runtime;
mod tls;

pub use builder::{BoxError, BuildError, ClientBuilder, ClientConfig, HttpRequest, RequestFuture, RequestHook};
pub use client::{Client, Receipt, SendMessage, connect};
pub use events::Events;
pub use runtime::Runtime;
pub use tether_deflate::DeflateConfig;
pub use tls::MaybeTls;

pub use bytes::Bytes;
/// The sans-IO core, for driving it by hand.
pub use tether_core as core;
pub use tether_core::{
    BackoffConfig, Cause, CloseFrame, CloseMode, CommandError, Config, ConfigError, ConnectInfo, DeadLink,
    DeflateParams, ErrorCounts, Event, FailReason, HeartbeatConfig, InFlightPolicy, Jitter, Message, MessageId,
    MessageKind, NetworkHint, OpenError, Outcome, Overflow, QueueConfig, RetryPolicy, Rtt, SendError, State, Stats,
    TransportError, Verdict,
};
