//! # tether-smol
//!
//! Tether, the resilient WebSocket client, on smol. Everything of [`tether`] is re-exported; the
//! runtime is the shared async-io one ([`tether::async_io`]), spawning on smol's global executor.
//!
//! ```no_run
//! use futures::StreamExt;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let config = tether_smol::ClientBuilder::new("wss://example.com/feed").build()?;
//!     let (client, mut events) = tether_smol::connect(config)?;
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

/// The async-io runtime spawning on smol's global executor (`smol::spawn`).
pub fn runtime() -> AsyncIoRuntime {
    // Made once: every client holds a clone (one reference count), not its own spawner.
    static RUNTIME: OnceLock<AsyncIoRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| AsyncIoRuntime::new(Arc::new(|fut| smol::spawn(fut).detach()))).clone()
}

/// Starts a client on smol. See [`tether::connect`].
///
/// Returns a `Result` for one shape with `tether_tokio::connect` (so code moves between runtimes
/// unchanged); on smol it always succeeds, since the executor is global.
pub fn connect(config: ClientConfig) -> Result<(Client, Events), ConnectError> {
    Ok(tether::connect(runtime(), config))
}
