//! The small trait a runtime implements so the one driver can run on it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::Context;
use std::time::Instant;

use futures::io::{AsyncRead, AsyncWrite};

/// What the driver needs from an async runtime: spawning, a clock and one re-armable timer per
/// client, name resolution, TCP connects and aborts. Everything else (TLS, WebSocket, reconnection) is
/// shared.
///
/// Every clock read of the driver and the [`Client`](crate::Client) goes through [`now`](Self::now), and
/// every wait through [`timer`](Self::timer), so a runtime with a virtual clock (a paused tokio clock, a
/// test harness) runs a client in virtual time.
///
/// `tether-tokio`, `tether-smol` and `tether-async-std` implement it; a custom runtime can too.
pub trait Runtime: Clone + Send + Sync + Unpin + 'static {
    /// A connected TCP stream, as `futures::io` traits.
    type Tcp: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A timer that completes at its deadline and can be moved to another deadline.
    type Timer: Future<Output = ()> + Unpin + Send + 'static;

    /// Runs `fut` in the background.
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F);

    /// Arranges for the task polled with `cx` to be polled again after the other ready tasks: the
    /// driver's way to yield. Default: wake it at once (it goes to the back of the run queue). tokio
    /// overrides it to wake the task after its next I/O poll, which also lets a `block_on` future run.
    fn yield_now(cx: &Context<'_>) {
        cx.waker().wake_by_ref();
    }

    /// The current time, on the clock [`timer`](Self::timer) deadlines are measured against. Default:
    /// [`Instant::now`]; a runtime with its own clock (tokio's can be paused) returns that one.
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// A timer that completes at `deadline`.
    fn timer(&self, deadline: Instant) -> Self::Timer;

    /// Moves `timer` to `deadline` (it completes again at the new deadline).
    fn reset_timer(timer: &mut Self::Timer, deadline: Instant);

    /// Resolves `host` to socket addresses, without blocking the executor.
    fn resolve(&self, host: String, port: u16) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static;

    /// Opens a TCP connection with `TCP_NODELAY` set (WebSocket messages are latency-sensitive and the
    /// driver already coalesces writes).
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Tcp>> + Send + 'static;

    /// Makes dropping `tcp` abort the connection instead of closing it: `SO_LINGER` 0, so the kernel
    /// sends a reset and discards what is unsent or unacknowledged. A graceful close would keep
    /// retransmitting those bytes, and once a broken path heals they would reach the server after the
    /// messages of the next connection. The driver calls it just before it drops a connection the
    /// session gave up on (a dead link, a connect timeout); an error is logged and the socket is dropped
    /// anyway.
    fn abort_on_drop(tcp: &Self::Tcp) -> io::Result<()>;
}

/// An instant for the sans-IO unit tests to add offsets to: they read no clock otherwise.
#[cfg(test)]
pub(crate) fn test_epoch() -> Instant {
    Instant::now()
}

/// A timer of the runtime, boxed for the handles that are not generic over it.
pub(crate) type BoxTimer = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// A runtime's clock and timers, for the handles that are not generic over the runtime
/// ([`Client`](crate::Client), [`Request`](crate::Request)).
pub(crate) trait Clock: Send + Sync + 'static {
    fn now(&self) -> Instant;
    /// A timer that completes at `deadline`.
    fn timer(&self, deadline: Instant) -> BoxTimer;
}

impl<R: Runtime> Clock for R {
    fn now(&self) -> Instant {
        Runtime::now(self)
    }

    fn timer(&self, deadline: Instant) -> BoxTimer {
        Box::pin(Runtime::timer(self, deadline))
    }
}
