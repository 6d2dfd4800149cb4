//! The runtime pieces shared by smol and async-std, which both run on `async-io`: its timer, and
//! `async-net` for TCP and name resolution. Only spawning differs, so it is a parameter.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::Runtime;

/// Spawns a future on some executor.
pub type Spawner = Arc<dyn Fn(Pin<Box<dyn Future<Output = ()> + Send>>) + Send + Sync>;

/// A [`Runtime`] on async-io, given a spawner (smol's or async-std's).
#[derive(Clone)]
pub struct AsyncIoRuntime {
    spawner: Spawner,
}

impl std::fmt::Debug for AsyncIoRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AsyncIoRuntime")
    }
}

impl AsyncIoRuntime {
    /// A runtime that spawns with `spawner`.
    pub fn new(spawner: Spawner) -> Self {
        Self { spawner }
    }
}

/// async-io's timer, as a re-armable future.
#[derive(Debug)]
pub struct Timer(async_io::Timer);

impl Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

// The futures must not borrow `self` (they outlive the call), so they are `async move` blocks rather
// than `async fn`.
#[allow(clippy::manual_async_fn)]
impl Runtime for AsyncIoRuntime {
    type Tcp = async_net::TcpStream;
    type Timer = Timer;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        (self.spawner)(Box::pin(fut));
    }

    fn timer(&self, deadline: Instant) -> Timer {
        Timer(async_io::Timer::at(deadline))
    }

    fn reset_timer(timer: &mut Timer, deadline: Instant) {
        timer.0.set_at(deadline);
    }

    fn resolve(&self, host: String, port: u16) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static {
        async move { async_net::resolve((host.as_str(), port)).await }
    }

    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Tcp>> + Send + 'static {
        async move {
            let s = async_net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            Ok(s)
        }
    }
}
