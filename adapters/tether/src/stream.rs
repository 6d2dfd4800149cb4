//! The byte stream under the WebSocket, in two thin layers around TLS:
//!
//! * [`Tcp`], below TLS: the runtime's TCP connection, aborted (reset) when dropped while armed. It is
//!   armed while the transport opens, so an attempt dropped by the connect timeout is reset, and again
//!   when the session gives a connection up. A reset discards what the kernel would otherwise keep
//!   retransmitting; see [`Runtime::abort_on_drop`].
//! * [`Head`], above TLS: records the bytes read during the WebSocket handshake, so that a rejection
//!   tungstenite refuses to parse (an `HTTP/1.0` status line) can still be classified by its status.
//!
//! Both only pass calls through once the transport is open: no copy, allocation or lock per message.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::io::{AsyncRead, AsyncWrite};
use tether_core::parse_retry_after;

use crate::runtime::Runtime;

/// The runtime's TCP stream; reset instead of closed when dropped while armed.
pub(crate) struct Tcp<R: Runtime> {
    io: R::Tcp,
    abort: bool,
}

impl<R: Runtime> Tcp<R> {
    /// A stream that is aborted if dropped before [`keep`](Self::keep) is called.
    pub(crate) fn armed(io: R::Tcp) -> Self {
        Self { io, abort: true }
    }

    /// Dropping the stream closes it normally (FIN, unsent bytes still delivered).
    pub(crate) fn keep(&mut self) {
        self.abort = false;
    }

    /// Dropping the stream aborts it (RST, nothing more delivered).
    pub(crate) fn abort_on_drop(&mut self) {
        self.abort = true;
    }
}

impl<R: Runtime> Drop for Tcp<R> {
    fn drop(&mut self) {
        if self.abort
            && let Err(e) = R::abort_on_drop(&self.io)
        {
            tracing::debug!(error = %e, "cannot set SO_LINGER 0; the socket is closed normally");
        }
    }
}

impl<R: Runtime> AsyncRead for Tcp<R> {
    #[inline]
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<R: Runtime> AsyncWrite for Tcp<R> {
    #[inline]
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    #[inline]
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_close(cx)
    }
}

/// Bytes of the handshake response recorded at most: a status line and headers far larger than any
/// rejection worth classifying. Past it, the recording stops (and a rejection is not classified).
const HEAD_LIMIT: usize = 16 << 10;

/// The record of the bytes read during the handshake, shared with the code that opened the stream (the
/// handshake consumes the stream when it fails).
pub(crate) type HeadRecord = Arc<Mutex<Vec<u8>>>;

/// A stream that records what is read from it until [`stop`](Self::stop) is called.
pub(crate) struct Head<S> {
    io: S,
    record: Option<HeadRecord>,
}

impl<S> Head<S> {
    /// Wraps `io`, recording into `record`.
    pub(crate) fn recording(io: S, record: HeadRecord) -> Self {
        Self { io, record: Some(record) }
    }

    /// Stops recording: from now on, calls only pass through.
    pub(crate) fn stop(&mut self) {
        self.record = None;
    }

    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Head<S> {
    #[inline]
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if let (Some(record), Poll::Ready(Ok(n))) = (&this.record, &r) {
            let mut v = record.lock().unwrap_or_else(PoisonError::into_inner);
            let take = (*n).min(HEAD_LIMIT.saturating_sub(v.len()));
            v.extend_from_slice(&buf[..take]);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Head<S> {
    #[inline]
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    #[inline]
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_close(cx)
    }
}

/// The status and `Retry-After` of a complete HTTP response head, whatever its HTTP version; `None` if
/// `head` does not start with one. Untrusted input: never panics.
pub(crate) fn rejection(head: &[u8]) -> Option<(u16, Option<Duration>)> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let status = response.code?;
    let retry_after = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("retry-after"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(parse_retry_after);
    Some((status, retry_after))
}
