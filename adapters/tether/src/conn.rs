//! One open connection of the driver: its reads turned into reports for the core, its writes and
//! flushes (with the flush reports), its graceful close and its abort.
//!
//! A connection is *open* while the core sends on it. It is *closing* once a close frame has been sent
//! (a user close, or the client failing the connection after a protocol violation) or received (the
//! server closed): it is then read until it ends (the server's close frame and TCP close, an error, or
//! the core's [`Action::Abort`](tether_core::Action::Abort) when that takes too long), and its end is
//! reported with its own transport id, while a new connection may already be open beside it.
//!
//! After a protocol violation the WebSocket stream refuses further reads, and what follows cannot be
//! trusted anyway: the socket under it is read raw and discarded, to its end.

use std::pin::Pin;
use std::task::{Context, Poll};

use async_tungstenite::tungstenite::error::ProtocolError;
use async_tungstenite::tungstenite::protocol::CloseFrame as WsCloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message as WsMessage, Utf8Bytes};
use futures::io::AsyncRead;
use futures::{Sink, Stream};
use tether_core::{
    CloseFrame, Frame, Message, MessageId, MessageKind, TransportError, TransportEvent, TransportId, Violation,
};

use crate::connect::{self, Ws};
use crate::correlate::Correlation;
use crate::runtime::Runtime;
use crate::writer::OpCode;

/// Reports for the core, gathered during the I/O phase.
pub(crate) type Reports = Vec<(TransportId, TransportEvent)>;

/// Bytes read at once from the socket of a failed connection, on the stack.
const DRAIN_CHUNK: usize = 2048;

pub(crate) struct Conn<R: Runtime> {
    pub(crate) id: TransportId,
    ws: Ws<R>,
    /// Last message id written.
    fed: Option<MessageId>,
    /// Last message id reported flushed.
    reported: Option<MessageId>,
    /// Preamble messages (sends without an id) written, and reported flushed.
    preamble_fed: usize,
    preamble_reported: usize,
    need_flush: bool,
    /// A close frame was sent or received: what is read now only leads to the end.
    closing: bool,
    /// The WebSocket stream gave up (a protocol violation): the socket is read raw, to its end.
    failed: bool,
    /// Output buffered beyond this is written out before more is taken (tungstenite's write buffer
    /// size).
    write_limit: usize,
}

/// What reading a connection came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// Nothing more to read now; `true` if something was read.
    Pending(bool),
    /// The budget was spent with more perhaps waiting.
    Budget,
    /// The connection ended (reported).
    Ended,
}

impl<R: Runtime> Conn<R> {
    pub(crate) fn new(id: TransportId, ws: Ws<R>) -> Self {
        Self {
            write_limit: ws.get_config().write_buffer_size,
            id,
            ws,
            fed: None,
            reported: None,
            preamble_fed: 0,
            preamble_reported: 0,
            need_flush: false,
            closing: false,
            failed: false,
        }
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing
    }

    /// Reads up to `budget` frames, reporting them (data messages through the application's
    /// `correlation`, if it has one); reports the end if it comes.
    pub(crate) fn read(
        &mut self,
        cx: &mut Context<'_>,
        budget: usize,
        correlation: Option<&Correlation>,
        reports: &mut Reports,
    ) -> Read {
        if self.failed {
            return self.drain(cx, budget, reports);
        }
        let mut progress = false;
        for _ in 0..budget {
            match Pin::new(&mut self.ws).poll_next(cx) {
                Poll::Pending => return Read::Pending(progress),
                Poll::Ready(Some(Ok(msg))) => {
                    progress = true;
                    let frame = match msg {
                        WsMessage::Text(t) => match Message::text_from_bytes(t.into()) {
                            Ok(m) => Correlation::frame(correlation, m),
                            Err(_) => unreachable!("tungstenite validated the UTF-8"),
                        },
                        WsMessage::Binary(b) => Correlation::frame(correlation, Message::binary(b)),
                        WsMessage::Ping(_) => {
                            // tungstenite queued the Pong: flush it promptly, or idle clients get dropped.
                            self.need_flush = true;
                            Frame::Ping
                        }
                        WsMessage::Pong(p) => Frame::Pong(p),
                        WsMessage::Close(f) => {
                            // tungstenite queued the close reply (unless this answers ours): flush it, then
                            // read until the server closes the connection.
                            self.need_flush = true;
                            self.closing = true;
                            Frame::Close(f.map(|f| CloseFrame { code: f.code.into(), reason: f.reason.to_string() }))
                        }
                        WsMessage::Frame(_) => continue,
                    };
                    reports.push((self.id, TransportEvent::Received(frame)));
                }
                Poll::Ready(None) => {
                    reports.push((self.id, TransportEvent::Closed(Ok(None))));
                    return Read::Ended;
                }
                Poll::Ready(Some(Err(e))) => match classify_read_error(e) {
                    // The server broke the protocol: report it and keep the connection, so the core can
                    // fail it with a close frame (RFC 6455 7.1.7) and read on until it ends.
                    Err(violation @ TransportError::Violation { .. }) if !self.closing => {
                        tracing::info!(transport = %self.id, error = %violation, "protocol violation by the server");
                        reports.push((self.id, TransportEvent::Closed(Err(violation))));
                        self.failed = true;
                        return self.drain(cx, budget, reports);
                    }
                    // Once closing, any error only ends it.
                    result => {
                        let result = if self.closing { Ok(None) } else { result };
                        reports.push((self.id, TransportEvent::Closed(result)));
                        return Read::Ended;
                    }
                },
            }
        }
        Read::Budget
    }

    /// Reads the socket of a failed connection raw, discarding what arrives, until it ends.
    fn drain(&mut self, cx: &mut Context<'_>, budget: usize, reports: &mut Reports) -> Read {
        let mut buf = [0u8; DRAIN_CHUNK];
        let mut progress = false;
        for _ in 0..budget {
            // Under the output buffer and the extension's stream: nothing read now is inflated.
            match Pin::new(self.ws.get_mut().get_mut().get_mut()).poll_read(cx, &mut buf) {
                Poll::Pending => return Read::Pending(progress),
                Poll::Ready(Ok(n)) if n > 0 => progress = true,
                // The end, or an error after the failure: either way it is over.
                Poll::Ready(_) => {
                    reports.push((self.id, TransportEvent::Closed(Ok(None))));
                    return Read::Ended;
                }
            }
        }
        Read::Budget
    }

    /// Whether the connection can take a message now: yes while the output buffer holds less than the
    /// write buffer size; beyond, what is buffered is written out first (backpressure: `Pending` while
    /// the socket cannot take it).
    #[inline]
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        let limit = self.write_limit;
        let out = self.ws.get_mut();
        if out.buffered() < limit {
            return Poll::Ready(Ok(()));
        }
        match out.poll_drain(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(TransportError::Io(e.to_string()))),
            _ if out.buffered() < limit => Poll::Ready(Ok(())),
            _ => Poll::Pending,
        }
    }

    /// Writes a data message (after [`poll_ready`](Self::poll_ready)); `id` is `None` for a preamble
    /// message. Encoded by Tether (see `writer`), not by tungstenite; compressed first when
    /// permessage-deflate is in use and the message reaches the threshold: one frame with RSV1 set
    /// (RFC 7692, 6), its payload the compressed message.
    #[inline]
    pub(crate) fn send(&mut self, message: &Message, id: Option<MessageId>) -> Result<(), TransportError> {
        self.writable()?;
        let op = match message.kind() {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        };
        let out = self.ws.get_mut();
        match out.get_mut().compress(message.payload()) {
            Some(compressed) => out.encode(true, true, op, &compressed),
            None => out.encode(true, false, op, message.payload()),
        }
        self.need_flush = true;
        if id.is_some() {
            self.fed = id;
        } else {
            self.preamble_fed += 1;
        }
        Ok(())
    }

    /// Writes a Ping (after [`poll_ready`](Self::poll_ready)). Control frames are never compressed.
    pub(crate) fn ping(&mut self, payload: &[u8]) -> Result<(), TransportError> {
        self.writable()?;
        self.ws.get_mut().encode(true, false, OpCode::Ping, payload);
        self.need_flush = true;
        Ok(())
    }

    /// Refuses what tungstenite would refuse: nothing follows a close frame, sent or received.
    #[inline]
    fn writable(&self) -> Result<(), TransportError> {
        if self.closing || self.failed {
            return Err(TransportError::Io("sending after closing is not allowed".into()));
        }
        Ok(())
    }

    /// Starts the graceful close: queues the close frame (unless one was already exchanged) and marks
    /// the connection closing; the frame goes out with the next flush.
    pub(crate) fn close(&mut self, code: u16, reason: String) {
        if !self.closing || self.failed {
            let frame = WsCloseFrame { code: CloseCode::from(code), reason: Utf8Bytes::from(reason) };
            // Refused only if the WebSocket has already ended; the reads then report the end.
            if let Err(e) = Pin::new(&mut self.ws).start_send(WsMessage::Close(Some(frame))) {
                tracing::debug!(transport = %self.id, error = %e, "close frame not sent");
            }
        }
        self.closing = true;
        self.need_flush = true;
    }

    /// Flushes what was written, reporting what is now flushed. `Err` ends the connection.
    pub(crate) fn poll_flush(
        &mut self,
        cx: &mut Context<'_>,
        reports: &mut Reports,
    ) -> Poll<Result<(), TransportError>> {
        if !self.need_flush {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut self.ws).poll_flush(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => {
                self.need_flush = false;
                if self.preamble_fed > self.preamble_reported {
                    self.preamble_reported = self.preamble_fed;
                    reports.push((self.id, TransportEvent::PreambleFlushed { count: self.preamble_fed }));
                }
                if self.fed > self.reported
                    && let Some(through) = self.fed
                {
                    self.reported = self.fed;
                    reports.push((self.id, TransportEvent::Flushed { through }));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(classify_write_error(e))),
        }
    }

    /// Whether a flush is due.
    pub(crate) fn needs_flush(&self) -> bool {
        self.need_flush
    }

    /// Drops the connection with a reset: nothing unsent or unacknowledged reaches the server later.
    pub(crate) fn abort(mut self) {
        connect::tcp_of(&mut self.ws).abort_on_drop();
    }
}

/// A read error: the end of the connection, or a breach of the protocol by the server (which the core
/// answers with the matching close code).
fn classify_read_error(e: WsError) -> Result<Option<CloseFrame>, TransportError> {
    let violation = |kind, detail: String| Err(TransportError::Violation { kind, detail });
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => Ok(None),
        // The peer vanished (a crash, a reset): a lost connection, not a breach of the protocol.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            Err(TransportError::Io("connection reset without a closing handshake".into()))
        }
        // The details without tungstenite's "WebSocket protocol error: " prefix: `TransportError`'s
        // message already says what kind of error it is.
        WsError::Protocol(p) => violation(Violation::Protocol, p.to_string()),
        e @ WsError::Utf8(_) => violation(Violation::InvalidUtf8, e.to_string()),
        WsError::Capacity(c) => violation(Violation::TooBig, c.to_string()),
        // The server's compressed data broke a limit (1009) or the format (1002).
        WsError::Io(io) if crate::deflate::inflate_error(&io).is_some() => {
            let inflate = crate::deflate::inflate_error(&io).map(|i| (i.is_too_big(), i.to_string()));
            let (too_big, detail) = inflate.unwrap_or_default();
            violation(if too_big { Violation::TooBig } else { Violation::Protocol }, detail)
        }
        other => Err(classify_write_error(other)),
    }
}

/// A write error: always the connection's end.
fn classify_write_error(e: WsError) -> TransportError {
    match e {
        WsError::Io(e) => TransportError::Io(e.to_string()),
        WsError::ConnectionClosed | WsError::AlreadyClosed => TransportError::Io("connection closed".into()),
        other => TransportError::Io(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_errors_say_what_happened_once() {
        let reset = classify_read_error(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake));
        let Err(e) = reset else { panic!("a reset is an error") };
        assert_eq!(e, TransportError::Io("connection reset without a closing handshake".into()));
        assert_eq!(e.to_string(), "connection I/O error: connection reset without a closing handshake");

        let Err(e) = classify_read_error(WsError::Protocol(ProtocolError::NonZeroReservedBits)) else {
            panic!("a protocol error is an error")
        };
        let text = e.to_string();
        assert!(matches!(e, TransportError::Violation { kind: Violation::Protocol, .. }), "{e:?}");
        assert_eq!(text.matches("protocol").count(), 2, "{text}"); // "broke the WebSocket protocol (protocol error)"
        assert!(!text.contains("WebSocket protocol error"), "{text}");
        assert_eq!(classify_read_error(WsError::ConnectionClosed), Ok(None));
    }
}
