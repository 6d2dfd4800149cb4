//! The runtime pieces shared by smol and async-std, which both run on `async-io`: its timer, and
//! `async-net` for TCP and name resolution. Only spawning differs, so it is a parameter.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use crate::Runtime;
use crate::keeper::Keeper;

/// Spawns a future on some executor.
pub type Spawner = Arc<dyn Fn(Pin<Box<dyn Future<Output = ()> + Send>>) + Send + Sync>;

/// A [`Runtime`] on async-io, given a spawner (smol's or async-std's).
///
/// Its clients share one async-io timer (see [`Timer`]): make one runtime and clone it, as
/// `tether-smol` and `tether-async-std` do; each `new` has a keeper task of its own.
#[derive(Clone)]
pub struct AsyncIoRuntime {
    spawner: Spawner,
    keeper: Arc<Keeper>,
}

impl std::fmt::Debug for AsyncIoRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AsyncIoRuntime")
    }
}

impl AsyncIoRuntime {
    /// A runtime that spawns with `spawner`.
    pub fn new(spawner: Spawner) -> Self {
        Self { keeper: Keeper::new(spawner.clone()), spawner }
    }
}

/// A client's timer on this runtime: a deadline held by the runtime's keeper, which keeps a single
/// async-io timer armed at the earliest deadline of all its clients (arming an async-io timer notifies
/// its reactor, a syscall and a thread wake-up).
pub use crate::keeper::Timer;

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
        Timer::new(self.keeper.clone(), deadline)
    }

    fn reset_timer(timer: &mut Timer, deadline: Instant) {
        timer.reset(deadline);
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

    fn abort_on_drop(tcp: &Self::Tcp) -> io::Result<()> {
        // async-net exposes no linger setting, only the socket (`AsFd`/`AsSocket`); socket2 sets it.
        socket2::SockRef::from(tcp).set_linger(Some(std::time::Duration::ZERO))
    }
}
