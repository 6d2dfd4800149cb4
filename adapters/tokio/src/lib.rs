//! # tether-tokio
//!
//! Tether, the resilient WebSocket client, on tokio. Everything of [`tether`] is re-exported; this crate
//! only adds [`TokioRuntime`] (spawn, timer, DNS, TCP) and [`connect`].
//!
//! ```no_run
//! use futures::StreamExt;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = tether_tokio::ClientBuilder::new("wss://example.com/feed").build()?;
//! let (client, mut events) = tether_tokio::connect(config)?; // fails only outside a tokio runtime
//! client.send("hello").await?;
//! while let Some(event) = events.next().await {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_tungstenite::tokio::TokioAdapter;
pub use tether::*;

/// The [`Runtime`] for tokio: spawns on the runtime it was created in.
#[derive(Debug, Clone)]
pub struct TokioRuntime {
    handle: tokio::runtime::Handle,
}

impl TokioRuntime {
    /// The runtime of the current context; [`ConnectError::NoRuntime`] outside one.
    pub fn current() -> Result<Self, ConnectError> {
        tokio::runtime::Handle::try_current().map(|handle| Self { handle }).map_err(|_| ConnectError::NoRuntime {
            runtime: "tokio",
            fix: "call tether_tokio::connect from inside a tokio runtime (e.g. #[tokio::main]), or use \
                  tether::connect(TokioRuntime::with_handle(handle), config)",
        })
    }

    /// A specific runtime.
    pub fn with_handle(handle: tokio::runtime::Handle) -> Self {
        Self { handle }
    }
}

/// tokio's `Sleep`, boxed once per client so it is `Unpin` and can be re-armed in place.
#[derive(Debug)]
pub struct Timer(Pin<Box<tokio::time::Sleep>>);

impl Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

// The futures must not borrow `self` (they outlive the call), so they are `async move` blocks rather
// than `async fn`.
#[allow(clippy::manual_async_fn)]
impl Runtime for TokioRuntime {
    type Tcp = TokioAdapter<tokio::net::TcpStream>;
    type Timer = Timer;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        self.handle.spawn(fut);
    }

    fn yield_now(cx: &Context<'_>) {
        // tokio's own yield defers the wake-up until after the scheduler has polled I/O and, on a
        // current-thread runtime, the `block_on` future; a plain self-wake runs this task again first.
        // The deferred wake-up stays registered when the future is dropped after its first poll.
        let mut y = std::pin::pin!(tokio::task::yield_now());
        let _ = y.as_mut().poll(&mut Context::from_waker(cx.waker()));
    }

    fn now(&self) -> Instant {
        // tokio's clock, which a test can pause and advance (`tokio::time::pause`).
        tokio::time::Instant::now().into_std()
    }

    fn timer(&self, deadline: Instant) -> Timer {
        let _enter = self.handle.enter();
        Timer(Box::pin(tokio::time::sleep_until(deadline.into())))
    }

    fn reset_timer(timer: &mut Timer, deadline: Instant) {
        timer.0.as_mut().reset(deadline.into());
    }

    fn resolve(&self, host: String, port: u16) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static {
        async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()) }
    }

    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Tcp>> + Send + 'static {
        async move {
            let s = tokio::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            Ok(TokioAdapter::new(s))
        }
    }

    fn abort_on_drop(tcp: &Self::Tcp) -> io::Result<()> {
        // Not `set_linger`, deprecated since a non-zero linger blocks the thread on drop; zero does not.
        tcp.get_ref().set_zero_linger()
    }
}

/// Starts a client on the current tokio runtime. See [`tether::connect`].
///
/// The same shape as `tether_smol::connect` and `tether_async_std::connect`; it fails with
/// [`ConnectError::NoRuntime`] when called outside a tokio runtime (tokio has no global one).
pub fn connect(config: ClientConfig) -> Result<(Client, Events), ConnectError> {
    Ok(tether::connect(TokioRuntime::current()?, config))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The driver reads tokio's clock: paused, it stands still until advanced, and the timers follow it.
    #[tokio::test(start_paused = true)]
    async fn the_clock_is_tokios_and_can_be_paused() {
        let rt = TokioRuntime::current().unwrap();
        let t0 = rt.now();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rt.now(), t0, "a paused clock does not move with real time");
        let mut timer = rt.timer(t0 + Duration::from_secs(3_600));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut timer).poll(&mut cx).is_pending());
        tokio::time::advance(Duration::from_secs(3_600)).await;
        assert_eq!(rt.now() - t0, Duration::from_secs(3_600));
        assert!(Pin::new(&mut timer).poll(&mut cx).is_ready());
    }
}
