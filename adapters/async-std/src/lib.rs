//! # tether-async-std
//!
//! Tether, the resilient WebSocket client, on async-std.
//!
//! **async-std is discontinued upstream** (RUSTSEC-2025-0052); prefer `tether-smol` (the same I/O
//! stack) or `tether-tokio` for new code. This crate is kept as a thin alias over the shared async-io
//! runtime ([`tether::async_io`]): async-std runs on async-io itself, so only spawning differs
//! (`async_std::task::spawn`). Everything of [`tether`] is re-exported.
//!
//! ```no_run
//! use futures::StreamExt;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! async_std::task::block_on(async {
//!     let config = tether_async_std::ClientBuilder::new("wss://example.com/feed").build()?;
//!     let (client, mut events) = tether_async_std::connect(config)?;
//!     client.send("hello").await?;
//!     while let Some(event) = events.next().await {
//!         println!("{event:?}");
//!     }
//!     Ok(())
//! })
//! # }
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

use std::sync::{Arc, OnceLock};

pub use tether::async_io::AsyncIoRuntime;
pub use tether::*;

/// The async-io runtime spawning on async-std's executor.
pub fn runtime() -> AsyncIoRuntime {
    // Made once: every client holds a clone (one reference count), not its own spawner.
    static RUNTIME: OnceLock<AsyncIoRuntime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            AsyncIoRuntime::new(Arc::new(|fut| {
                async_std::task::spawn(fut);
            }))
        })
        .clone()
}

/// Starts a client on async-std. See [`tether::connect`].
///
/// Returns a `Result` for one shape with `tether_tokio::connect` (so code moves between runtimes
/// unchanged); on async-std it always succeeds, since the executor is global.
pub fn connect(config: ClientConfig) -> Result<(Client, Events), ConnectError> {
    Ok(tether::connect(runtime(), config))
}
