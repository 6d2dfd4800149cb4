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
//! Connections can go through an HTTP `CONNECT` or SOCKS5 proxy ([`ClientBuilder::proxy`], or the
//! environment with [`ClientBuilder::proxy_from_env`]; see [`proxy`]), fail over between several
//! endpoints ([`ClientBuilder::endpoint`]), and race a host's addresses (Happy Eyeballs). Each attempt
//! is timed phase by phase (DNS, TCP, proxy, TLS, WebSocket handshake: [`ConnectInfo::phases`]).
//!
//! What may grow without breaking you: the core's rules apply (see [`tether_core`], "What you can rely
//! on as the API grows"); here [`BuildError`] and [`ConnectError`] are `#[non_exhaustive]`, and
//! [`ClientConfig`] is opaque (made only by [`ClientBuilder::build`], whose methods are the settings).
//!
//! Logging goes through `tracing`: a span per client (URL with query values redacted) and per attempt;
//! header values that may hold secrets, and proxy credentials, are never logged.

#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

#[cfg(feature = "async-io")]
pub mod async_io;
mod builder;
mod client;
mod conn;
mod connect;
mod correlate;
mod deflate;
mod driver;
mod endpoint;
mod events;
#[cfg(feature = "json")]
pub mod json;
#[cfg(feature = "async-io")]
mod keeper;
pub mod proxy;
mod redact;
mod request;
mod runtime;
mod stream;
mod tls;
mod waiters;
mod writer;

pub use builder::{
    BoxError, BuildError, ClientBuilder, ClientConfig, HttpRequest, RequestFuture, RequestHook, ResolveFuture, Resolver,
};
pub use client::{Client, ConnectError, Receipt, SendMessage, connect};
pub use events::Events;
pub use request::{Request, RequestError};
pub use runtime::Runtime;
pub use tether_deflate::DeflateConfig;

pub use bytes::Bytes;
/// The sans-IO core, for driving it by hand.
pub use tether_core as core;
pub use tether_core::{
    AckConfig, AckKey, BackoffConfig, Cause, CloseFrame, CloseMode, CommandError, Config, ConfigError, ConnectInfo,
    ConnectPhase, DeadLink, DeflateParams, ErrorCounts, Event, FailReason, HeartbeatConfig, InFlightPolicy, Jitter,
    Message, MessageId, MessageKind, NetworkHint, OpenError, Outcome, Overflow, ProxyError, QueueConfig, RetryPolicy,
    Rtt, SendError, State, Stats, Tracking, TransportError, Verdict,
};
