//! Test a WebSocket application against a misbehaving network, in `cargo test`: what Toxiproxy gives
//! other ecosystems, in-process.
//!
//! - [`server::TestServer`]: a real WebSocket server (echo, sink, reject the handshake with a status,
//!   accept-then-close) that records what it received and can crash, restart on the same port, close
//!   every connection with a code, push messages, and speak TLS.
//! - [`proxy::FaultProxy`]: a TCP proxy in front of any server that cuts every connection, refuses new
//!   ones, goes half-open (sockets open, nothing forwarded) or adds delay.
//! - [`pki::TestPki`]: a throwaway certificate authority and a `localhost` certificate for `wss://`.
//! - [`raw::RawServer`]: a raw TCP server for what no well-behaved WebSocket server sends: an `HTTP/1.0`
//!   rejection, invalid UTF-8, a reserved opcode; it reports how the client answered.
//! - [`ack_server::AckServer`]: a server that persists what it receives (a log file), then acknowledges
//!   it (`ack KEY`): the peer of Tether's tracked messages, killed and restarted by the soak test.
//! - [`ChaosServer`]: the echo server with faults on a timer (crash every N s, close every N s,
//!   half-open every N s, reject), as `tether serve --chaos` runs it.
//!
//! Each runs on its own thread with its own tokio runtime, so the code under test may use any runtime
//! (tokio, smol, async-std, or none), and every method may be called from synchronous code or from
//! inside an async task. Everything listens on 127.0.0.1 and stops when dropped. Faults happen when the
//! test says so (or on the chaos timer), never at random: a test that fails, fails again.
//!
//! # Testing an application against a restarting server
//!
//! The server crashes while the application is connected; what the application sends in the meantime
//! waits in Tether's queue and reaches the server once it is back.
//!
//! ```
//! use std::time::Duration;
//!
//! use futures::StreamExt;
//! use tether_chaos::server::{Behavior, TestServer};
//! use tether_tokio::{BackoffConfig, ClientBuilder, Event};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let server = TestServer::start(Behavior::Echo);
//!     // Short delays keep the test fast; the defaults (0.5 s, doubling) would work too.
//!     let mut backoff = BackoffConfig::default();
//!     backoff.base = Duration::from_millis(20);
//!     backoff.max_delay = Duration::from_millis(100);
//!     let config = ClientBuilder::new(server.url()).backoff(backoff).build()?;
//!     let (client, mut events) = tether_tokio::connect(config)?;
//!
//!     // Every wait is bounded: a broken application fails the test instead of hanging it.
//!     let limit = Duration::from_secs(20);
//!     tokio::time::timeout(limit, async {
//!         while !matches!(events.next().await, Some(Event::Connected { .. }) | None) {}
//!     })
//!     .await?;
//!
//!     server.stop(); // a crash: no close frame, new connections refused
//!     tokio::time::timeout(limit, async {
//!         while !matches!(events.next().await, Some(Event::Disconnected { .. }) | None) {}
//!     })
//!     .await?;
//!     // Sent now, the message waits in the queue (sent earlier, it could have been flushed into the
//!     // dying socket and lost with it: a WebSocket has no delivery receipt).
//!     client.send("sent while the server was down").await?;
//!     tokio::time::sleep(Duration::from_millis(100)).await;
//!     // `restart` binds the same port again (blocking for as long as that takes).
//!     let server = tokio::task::spawn_blocking(move || {
//!         server.restart();
//!         server
//!     })
//!     .await?;
//!
//!     // The client reconnects by itself and flushes its queue: the echo comes back.
//!     let echo = tokio::time::timeout(limit, async {
//!         loop {
//!             match events.next().await {
//!                 Some(Event::Message(m)) => break m.as_text().map(str::to_owned),
//!                 Some(_) => {}
//!                 None => break None,
//!             }
//!         }
//!     })
//!     .await?;
//!     assert_eq!(echo.as_deref(), Some("sent while the server was down"));
//!     assert_eq!(server.handshakes(), 2, "one connection before the crash, one after");
//!     Ok(())
//! }
//! ```
//!
//! Half-open links, refusals and slow networks go through a [`proxy::FaultProxy`] in front of the
//! server: `FaultProxy::start(server.addr())`, point the client at `proxy.url()`, then
//! `proxy.blackhole(true)`, `proxy.refuse(true)`, `proxy.cut()` or `proxy.delay(d)`.
//!
//! # Panics
//! The `start` constructors panic when nothing can be bound on 127.0.0.1 (a test cannot go on); the
//! `start_at` ones return the error. Nothing panics on what a client sends.

#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod ack_server;
mod background;
mod chaos;
pub mod pki;
pub mod proxy;
pub mod raw;
pub mod server;

pub use chaos::{ChaosBuilder, ChaosEvent, ChaosServer, Fault, ParseFaultError, parse_duration};
