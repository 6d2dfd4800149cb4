//! What the session tells the driver to do ([`Action`]) and the application ([`Event`]).

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::heartbeat::DeadLink;
use crate::transport::{CloseFrame, ConnectInfo, ConnectPhase, OpenError, TransportError, TransportId, human_duration};
use crate::{Message, MessageId};

/// The lifecycle state of a session.
///
/// ```text
/// Idle ─connect─▶ Connecting ─opened─▶ Connected ─close─▶ Closing ─▶ Closed
///                   ▲    │                 │
///                   │    └──failed──┐      └──lost──┐
///                   └─ backoff ── Reconnecting ◀────┘        (fatal / budget spent ─▶ Failed)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Created, not started. Messages sent now are queued.
    Idle,
    /// A transport is being opened.
    Connecting,
    /// A transport is open; messages flow.
    Connected,
    /// Waiting out the backoff delay before the next attempt. Messages are queued.
    Reconnecting,
    /// A user close is in progress.
    Closing,
    /// Closed by the user. `connect` starts it again.
    Closed,
    /// Gave up: a fatal failure or a spent retry budget. `connect` starts it again.
    Failed,
}

impl State {
    /// Whether `self -> to` is an edge of the state machine. Every transition the session makes is one
    /// (checked in debug builds). Tests keep their own copy of the diagram as the specification.
    pub(crate) fn can_transition_to(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (Idle, Connecting)
                | (Idle, Closed)
                | (Connecting, Connected)
                | (Connecting, Reconnecting)
                | (Connecting, Failed)
                | (Connecting, Closed)
                | (Connected, Reconnecting)
                | (Connected, Failed)
                | (Connected, Closing)
                | (Reconnecting, Connecting)
                | (Reconnecting, Closed)
                | (Closing, Closed)
                | (Closed, Connecting)
                | (Failed, Connecting)
        )
    }
}

/// A network condition reported by the platform, passed to
/// [`Session::handle_network`](crate::Session::handle_network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NetworkHint {
    /// The network is back: a pending retry happens now instead of after the rest of its delay.
    Online,
    /// The network is gone: retries pause until `Online`; an open connection is probed at once.
    Offline,
    /// The host resumed from sleep: an open connection is probed at once (its deadlines are stale), a
    /// pending retry happens now.
    Resumed,
}

/// Why something happened. Carried by every state change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// The application called `connect`.
    ConnectRequested,
    /// The application called `close`.
    CloseRequested,
    /// The WebSocket handshake completed.
    Opened,
    /// Opening the transport failed.
    OpenFailed(OpenError),
    /// Opening the transport took longer than the connect timeout.
    ConnectTimeout {
        /// The phase the attempt was in, as last reported by the driver
        /// ([`TransportEvent::Progress`](crate::TransportEvent::Progress)); `None` if it reported none.
        phase: Option<ConnectPhase>,
        /// How long the attempt had run.
        elapsed: Duration,
    },
    /// The server closed the connection with this close frame (`None`: no status code).
    RemoteClosed(Option<CloseFrame>),
    /// The connection failed without a close frame.
    TransportFailed(TransportError),
    /// The heartbeat declared the link dead.
    Heartbeat(DeadLink),
    /// The backoff delay passed.
    BackoffElapsed,
    /// A network hint cut the wait short.
    Network(NetworkHint),
    /// The close handshake completed.
    CloseCompleted,
    /// The close handshake did not complete within the close timeout.
    CloseTimeout,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::ConnectRequested => f.write_str("connect requested"),
            Cause::CloseRequested => f.write_str("close requested"),
            Cause::Opened => f.write_str("handshake completed"),
            Cause::OpenFailed(e) => write!(f, "{e}"),
            Cause::ConnectTimeout { phase: Some(p), elapsed } => {
                write!(f, "{p} timed out after {}", human_duration(*elapsed))
            }
            Cause::ConnectTimeout { phase: None, elapsed } => {
                write!(f, "connect timed out after {}", human_duration(*elapsed))
            }
            Cause::RemoteClosed(Some(c)) => write!(f, "server closed with {} {:?}", c.code, c.reason),
            Cause::RemoteClosed(None) => f.write_str("server closed without a status code"),
            Cause::TransportFailed(e) => write!(f, "{e}"),
            Cause::Heartbeat(DeadLink::PongTimeout) => f.write_str("no pong within the pong timeout"),
            Cause::Heartbeat(DeadLink::ReceiveIdle) => f.write_str("nothing received within the idle timeout"),
            Cause::BackoffElapsed => f.write_str("backoff elapsed"),
            Cause::Network(h) => write!(f, "network hint {h:?}"),
            Cause::CloseCompleted => f.write_str("close handshake completed"),
            Cause::CloseTimeout => f.write_str("close handshake timed out"),
        }
    }
}

/// Why a session gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailReason {
    /// The retry policy says this failure will not pass by retrying (e.g. HTTP 401, close 1008).
    Fatal(Cause),
    /// `max_attempts` consecutive attempts failed; the last failure is given.
    RetriesExhausted {
        /// Failed attempts in this outage.
        attempts: u32,
        /// The last failure.
        last: Cause,
    },
    /// The outage lasted longer than `give_up_after`; the last failure is given.
    BudgetExhausted {
        /// How long the outage lasted.
        elapsed: Duration,
        /// The last failure.
        last: Cause,
    },
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailReason::Fatal(c) => write!(f, "fatal, not retried: {c}"),
            FailReason::RetriesExhausted { attempts, last } => {
                let s = if *attempts == 1 { "" } else { "s" };
                write!(f, "gave up after {attempts} failed attempt{s}; last: {last}")
            }
            FailReason::BudgetExhausted { elapsed, last } => {
                write!(f, "gave up after {:.1}s of outage; last: {last}", elapsed.as_secs_f64())
            }
        }
    }
}

// Their `Display` already includes the underlying error (one line for users), so no `source()`: a
// report that walks the chain would print it twice.
impl std::error::Error for Cause {}

impl std::error::Error for FailReason {}

/// How an accepted message ended. Each message id gets exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Written and flushed to the socket. A WebSocket has no delivery receipt: this is the strongest
    /// guarantee available without an application-level acknowledgement.
    Sent,
    /// Evicted from a full queue by [`Overflow::DropOldest`](crate::Overflow::DropOldest).
    Dropped,
    /// Its TTL passed before it could be handed to a transport; it was never sent.
    Expired,
    /// It was handed to a transport that died before confirming the flush, under
    /// [`InFlightPolicy::Abandon`](crate::InFlightPolicy::Abandon) (or the session closed/failed): the
    /// server may or may not have it. For a tracked message: handed out at least once and not
    /// acknowledged when the session closed or failed, when it was cancelled
    /// ([`Session::cancel`](crate::Session::cancel)), or when its connection was lost and it was not to
    /// be redelivered ([`Tracking::redeliver`](crate::Tracking::redeliver)).
    Abandoned,
    /// Still queued when the session was closed with [`CloseMode::Abort`] or failed (or, tracked,
    /// cancelled before it was ever handed out); never sent.
    Aborted,
    /// A tracked message ([`Session::send_tracked`](crate::Session::send_tracked)) was acknowledged:
    /// the server (or whatever the application's acknowledgement stands for) said it has it. As strong
    /// as that acknowledgement and no stronger: see [`crate::acks`].
    Acked,
    /// A tracked message was not acknowledged within [`AckConfig::timeout`](crate::AckConfig::timeout)
    /// of its `send_tracked`. It is not sent again; the server may or may not have it.
    TimedOut,
}

/// What `close` does with messages still queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CloseMode {
    /// Send what is queued on the open connection, then the close frame; whatever is left when the close
    /// timeout passes is aborted. Without an open connection nothing can be drained: queued messages are
    /// aborted (the session does not reconnect just to drain).
    #[default]
    Drain,
    /// Report every queued message as [`Outcome::Aborted`] and close at once.
    Abort,
}

/// Something for the application, from [`Session::poll_event`](crate::Session::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The state changed.
    StateChanged {
        /// Previous state.
        from: State,
        /// New state.
        to: State,
        /// Why.
        cause: Cause,
    },
    /// A transport opened.
    Connected {
        /// The transport.
        transport: TransportId,
        /// Attempt number within the outage (1 = first try).
        attempt: u32,
        /// Whether this session had been connected before.
        reconnect: bool,
        /// What the driver learned while opening it: handshake time, negotiated subprotocol, ...
        info: ConnectInfo,
    },
    /// An open connection was lost.
    #[non_exhaustive]
    Disconnected {
        /// Why.
        cause: Cause,
        /// When the next attempt starts; `None` if the session failed or closed instead.
        next_attempt_at: Option<Instant>,
    },
    /// The next attempt is scheduled (after a failed attempt or a lost connection).
    #[non_exhaustive]
    RetryScheduled {
        /// Its attempt number.
        attempt: u32,
        /// The delay chosen.
        delay: Duration,
        /// When it starts (unless the network is offline then).
        at: Instant,
    },
    /// A data message arrived.
    Message(Message),
    /// An accepted message ended.
    Outcome {
        /// The id `send` returned.
        id: MessageId,
        /// How it ended.
        outcome: Outcome,
    },
    /// An in-flight message of a dead transport was put back at the head of the queue
    /// ([`InFlightPolicy::Requeue`](crate::InFlightPolicy::Requeue)); it may reach the server twice.
    Requeued {
        /// The message.
        id: MessageId,
    },
    /// A tracked message handed to a connection that was lost before its acknowledgement was put back at
    /// the head of the queue: it is sent again first on the next connection, in its original order. The
    /// server may see it twice (its key lets it drop the duplicate). See [`crate::acks`].
    Redelivered {
        /// The message.
        id: MessageId,
    },
    /// A data message that acknowledged tracked message `id` (the driver's correlation function found
    /// its key in it: [`Frame::Correlated`](crate::Frame::Correlated)): its response. Comes just before
    /// that message's [`Outcome::Acked`], instead of an [`Event::Message`].
    Response {
        /// The tracked message it answers.
        id: MessageId,
        /// The message received.
        message: Message,
    },
    /// The queue (or the window of tracked messages) refused a message earlier and has room again
    /// (edge-triggered: once per refusal spell).
    QueueUnblocked,
    /// The session gave up.
    Failed(FailReason),
    /// The session closed after a user close.
    #[non_exhaustive]
    Closed {
        /// How the close ended: [`Cause::CloseCompleted`] or [`Cause::CloseTimeout`] or
        /// [`Cause::CloseRequested`] when there was no connection to close.
        cause: Cause,
    },
}

/// Something for the driver to do, from [`Session::poll_action`](crate::Session::poll_action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a new transport (TCP, TLS, WebSocket handshake) and report on it with this id.
    Open {
        /// The id to tag every report with.
        transport: TransportId,
        /// Attempt number within the outage (1 = first try), e.g. to rebuild the request.
        attempt: u32,
    },
    /// Write a data message. Report [`TransportEvent::Flushed`](crate::TransportEvent::Flushed) once it
    /// is flushed; preamble messages have no id.
    Send {
        /// The transport to write to.
        transport: TransportId,
        /// The message id; `None` for a preamble message.
        id: Option<MessageId>,
        /// The message.
        message: Message,
    },
    /// Write a ping with this payload.
    Ping {
        /// The transport.
        transport: TransportId,
        /// The payload, to be echoed by the pong.
        payload: Bytes,
    },
    /// Close the transport gracefully: write a close frame with this code and reason (if the WebSocket is
    /// open), flush it, and keep reading the transport, reporting its frames and finally
    /// [`TransportEvent::Closed`](crate::TransportEvent::Closed) when it ends (the server's close frame
    /// answers ours, then it closes TCP). The session bounds the wait with its own timer and sends
    /// [`Action::Abort`] if the transport has not ended by then. Used for a user close and when the
    /// client fails the connection after a protocol violation by the server.
    Close {
        /// The transport.
        transport: TransportId,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Let go of the transport now, without a close frame: stop opening it, or drop the connection so
    /// that nothing still unsent reaches the server later (for TCP: `SO_LINGER` 0, so the kernel resets
    /// the connection instead of retransmitting what is queued). Used when the session has given up on
    /// the transport: a dead link, a connect timeout, a close that did not complete in time. Nothing more
    /// is expected about it; late reports are ignored.
    Abort {
        /// The transport.
        transport: TransportId,
    },
}
