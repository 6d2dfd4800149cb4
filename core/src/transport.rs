//! What the driver reports about the transports (WebSocket connections) the core asked it to open.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::Message;

/// Identifies one transport (one TCP/TLS/WebSocket connection attempt) issued by the core in
/// [`Action::Open`](crate::Action::Open).
///
/// Every report about a transport carries its id, so a late report from a transport the core has
/// already given up on is recognised, ignored and counted ([`Stats::stale_events`](crate::Stats)),
/// instead of racing the core into a wrong state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransportId(pub u64);

impl std::fmt::Display for TransportId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// A close code and reason, as carried by a WebSocket close frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CloseFrame {
    /// The close code (RFC 6455 section 7.4).
    pub code: u16,
    /// The UTF-8 reason, at most 123 bytes on the wire.
    pub reason: String,
}

/// A frame read from an open transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete data message.
    Message(Message),
    /// A ping from the peer. The WebSocket library answers it; the core only takes it as proof of life.
    Ping,
    /// A pong, with the payload it echoes.
    Pong(Bytes),
    /// The peer's close frame; `None` when it carried no status code (1005).
    Close(Option<CloseFrame>),
    /// A complete data message in which the driver's correlation function (the application's, which
    /// maps an inbound message to the key it acknowledges) found `key`. It acknowledges the tracked
    /// message sent with that key and is reported as its [`Event::Response`](crate::Event::Response);
    /// if no such message is waiting, it is reported as an ordinary [`Event::Message`](crate::Event::Message)
    /// (and counted in [`Stats::acks_unknown`](crate::Stats::acks_unknown)).
    Correlated {
        /// The key the message carries.
        key: crate::AckKey,
        /// The message.
        message: Message,
    },
}

/// A step of opening a transport, in the order a driver goes through them. The driver reports each
/// step as it starts ([`TransportEvent::Progress`]) so that a connect timeout can say where the attempt
/// was stuck, and times each one ([`ConnectInfo::phases`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ConnectPhase {
    /// Name resolution (of the server, or of the proxy).
    Dns,
    /// The TCP connection (to the server, or to the proxy), every address raced.
    Tcp,
    /// The proxy's handshake: HTTP `CONNECT` (after TLS to an `https://` proxy) or SOCKS5.
    Proxy,
    /// The TLS handshake with the server (`wss://`).
    Tls,
    /// The WebSocket upgrade (HTTP request, `101 Switching Protocols`).
    Handshake,
}

impl ConnectPhase {
    /// Every phase, in order.
    ///
    /// A slice rather than a fixed-size array: the enum is `#[non_exhaustive]`, and a phase added later
    /// must not change the type of this item (an array's length is part of its type).
    pub const fn all() -> &'static [ConnectPhase] {
        &[ConnectPhase::Dns, ConnectPhase::Tcp, ConnectPhase::Proxy, ConnectPhase::Tls, ConnectPhase::Handshake]
    }

    /// A short lower-case name (`dns`, `tcp`, `proxy`, `tls`, `handshake`), for logs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            ConnectPhase::Dns => "dns",
            ConnectPhase::Tcp => "tcp",
            ConnectPhase::Proxy => "proxy",
            ConnectPhase::Tls => "tls",
            ConnectPhase::Handshake => "handshake",
        }
    }
}

impl std::fmt::Display for ConnectPhase {
    /// What the phase is, as a sentence subject: "TLS handshake timed out after 10 s".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConnectPhase::Dns => "DNS lookup",
            ConnectPhase::Tcp => "TCP connect",
            ConnectPhase::Proxy => "proxy handshake",
            ConnectPhase::Tls => "TLS handshake",
            ConnectPhase::Handshake => "WebSocket handshake",
        })
    }
}

/// A duration as people write it in a message: `250 ms`, `1.5 s`, `10 s`.
pub(crate) fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() / 100 == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{}.{} s", d.as_secs(), d.subsec_millis() / 100)
    }
}

/// Why a proxy did not give us a tunnel to the server. Part of [`OpenError::Proxy`].
///
/// Never holds the proxy's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy itself could not be reached (name, TCP, or TLS to an `https://` proxy).
    Unreachable(String),
    /// The proxy wants credentials, or refused the ones given: HTTP 407, a SOCKS5 username/password
    /// failure, or no authentication method both sides support. Retrying will not change that.
    Auth(String),
    /// The proxy answered `CONNECT` with a status other than 2xx (502/503/504: it could not reach
    /// the server).
    Http {
        /// The HTTP status code.
        status: u16,
        /// The proxy's `Retry-After`, already parsed.
        retry_after: Option<Duration>,
    },
    /// The SOCKS5 proxy refused the connect request with this reply code (RFC 1928 section 6:
    /// 1 general failure, 2 not allowed by the ruleset, 3 network unreachable, 4 host unreachable,
    /// 5 connection refused, 6 TTL expired, 7 command not supported, 8 address type not supported).
    Socks {
        /// The reply code (never 0, which is success).
        reply: u8,
    },
    /// The proxy's answer broke its protocol (not HTTP, not SOCKS5, a malformed reply): often a proxy
    /// URL with the wrong scheme.
    Protocol(String),
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyError::Unreachable(e) => write!(f, "proxy unreachable: {e}"),
            ProxyError::Auth(e) => {
                write!(f, "proxy authentication failed: {e}; check the proxy URL's user name and password")
            }
            ProxyError::Http { status, retry_after: Some(d) } => {
                write!(f, "proxy refused the tunnel with HTTP {status} (Retry-After {}s)", d.as_secs())
            }
            ProxyError::Http { status, retry_after: None } => write!(f, "proxy refused the tunnel with HTTP {status}"),
            ProxyError::Socks { reply } => {
                write!(f, "SOCKS5 proxy refused the connection: {}", socks_reply_text(*reply))
            }
            ProxyError::Protocol(e) => write!(f, "proxy protocol error: {e}"),
        }
    }
}

/// RFC 1928's name for a SOCKS5 reply code.
fn socks_reply_text(reply: u8) -> String {
    let text = match reply {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    };
    format!("{text} (reply {reply})")
}

/// Why opening a transport failed, classified so the retry policy can decide.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpenError {
    /// The host name did not resolve.
    Dns(String),
    /// The TCP connection failed (refused, reset, unreachable).
    Tcp(String),
    /// The TLS handshake failed for a reason that may pass (reset, unexpected EOF).
    Tls(String),
    /// The server's certificate was rejected. Retrying will not change that.
    TlsCertificate(String),
    /// The server answered the upgrade request with a non-101 HTTP status.
    Http {
        /// The HTTP status code.
        status: u16,
        /// The server's `Retry-After`, already parsed by the driver (see [`parse_retry_after`](crate::parse_retry_after)).
        retry_after: Option<Duration>,
    },
    /// The handshake broke the WebSocket protocol (bad `Sec-WebSocket-Accept`, missing upgrade, ...).
    Protocol(String),
    /// The server's answer to the offered extensions (`Sec-WebSocket-Extensions`) breaks RFC 7692 or
    /// names an extension that was not offered; the connection is failed, as the RFC requires.
    Extension(String),
    /// Any other I/O error while connecting.
    Io(String),
    /// The proxy did not give us a tunnel (see [`ProxyError`]).
    Proxy(ProxyError),
    /// A phase of the attempt took longer than the driver's timeout for that phase (per-phase
    /// timeouts are optional; the overall connect timeout is the core's, [`Cause::ConnectTimeout`](crate::Cause::ConnectTimeout)).
    Timeout {
        /// The phase that timed out.
        phase: ConnectPhase,
        /// How long it had run.
        after: Duration,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Dns(e) => write!(f, "DNS lookup failed: {e}"),
            OpenError::Tcp(e) => write!(f, "TCP connect failed: {e}"),
            OpenError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            OpenError::TlsCertificate(e) => write!(f, "server certificate rejected: {e}"),
            OpenError::Http { status, retry_after: Some(d) } => {
                write!(f, "handshake rejected with HTTP {status} (Retry-After {}s)", d.as_secs())
            }
            OpenError::Http { status, retry_after: None } => write!(f, "handshake rejected with HTTP {status}"),
            OpenError::Protocol(e) => write!(f, "WebSocket handshake protocol error: {e}"),
            OpenError::Extension(e) => write!(f, "invalid extension answer from the server: {e}"),
            OpenError::Io(e) => write!(f, "I/O error while connecting: {e}"),
            OpenError::Proxy(e) => write!(f, "{e}"),
            OpenError::Timeout { phase, after } => write!(f, "{phase} timed out after {}", human_duration(*after)),
        }
    }
}

impl std::error::Error for OpenError {}

/// A breach of the WebSocket protocol by the server, detected by this client.
///
/// The client then *fails the connection* (RFC 6455 7.1.7): it sends a close frame with
/// [`close_code`](Self::close_code), waits a bounded time for the server's reply, and lets go. Whether it
/// reconnects afterwards is the retry policy's call ([`RetryPolicy::violation`](crate::RetryPolicy::violation)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Violation {
    /// Malformed or forbidden framing: a reserved bit set, an unknown opcode, a masked server frame, a
    /// fragmented or oversized control frame, a continuation out of place. Close code 1002.
    Protocol,
    /// A text message that is not valid UTF-8. Close code 1007.
    InvalidUtf8,
    /// A frame or message larger than the configured limit. Close code 1009.
    TooBig,
}

impl Violation {
    /// The close code the client sends when it fails the connection for this (RFC 6455 7.4.1).
    pub fn close_code(self) -> u16 {
        match self {
            Violation::Protocol => 1002,
            Violation::InvalidUtf8 => 1007,
            Violation::TooBig => 1009,
        }
    }

    /// The reason sent in the close frame: short, fixed, and free of anything the server sent.
    pub fn close_reason(self) -> &'static str {
        match self {
            Violation::Protocol => "protocol error",
            Violation::InvalidUtf8 => "invalid UTF-8 in a text message",
            Violation::TooBig => "message too big",
        }
    }
}

/// Why an open transport was lost, when it was not a close frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportError {
    /// Reading or writing the socket failed (reset, broken pipe, EOF without a close frame).
    Io(String),
    /// The server broke the WebSocket protocol; the client fails the connection with the matching close
    /// code (see [`Violation`]).
    Violation {
        /// What kind of breach.
        kind: Violation,
        /// What the WebSocket library saw, for logs.
        detail: String,
    },
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Io(e) => write!(f, "connection I/O error: {e}"),
            TransportError::Violation { kind, detail } => {
                write!(f, "the server broke the WebSocket protocol ({}): {detail}", kind.close_reason())
            }
        }
    }
}

impl std::error::Error for TransportError {}

/// What the driver learned while opening a transport: reported with [`TransportEvent::Opened`] and
/// handed to the application on [`Event::Connected`](crate::Event::Connected).
///
/// The core only carries it; it decides nothing from it but the handshake time it records in
/// [`Stats::last_handshake`](crate::Stats::last_handshake). More fields will be added as drivers learn
/// more (build one with [`ConnectInfo::new`], then set the fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectInfo {
    /// How long opening took in all: name resolution, TCP, TLS and the WebSocket upgrade.
    pub handshake: Duration,
    /// The subprotocol the server selected (`Sec-WebSocket-Protocol`), if any.
    pub subprotocol: Option<String>,
    /// The permessage-deflate parameters agreed with the server; `None` when messages go uncompressed
    /// (compression not offered, or declined by the server).
    pub compression: Option<crate::DeflateParams>,
    /// How long each phase took, in the order they ran (a phase that did not run is absent: no
    /// `Proxy` without a proxy, no `Tls` for `ws://`, no `Dns` for an IP address).
    pub phases: Vec<(ConnectPhase, Duration)>,
    /// Which of the client's endpoints served, as an index into the list it was given (0: the first
    /// URL). Also in [`Stats::endpoint`](crate::Stats::endpoint).
    pub endpoint: usize,
    /// The address the TCP connection went to: the server's, or the proxy's when there is one.
    pub peer: Option<SocketAddr>,
    /// The proxy the connection went through (`scheme://host:port`, never credentials), if any.
    pub proxy: Option<String>,
}

impl ConnectInfo {
    /// Information about a transport that took `handshake` to open; every other field empty.
    pub fn new(handshake: Duration) -> Self {
        Self { handshake, ..Self::default() }
    }

    /// How long `phase` took, if it ran.
    pub fn phase(&self, phase: ConnectPhase) -> Option<Duration> {
        self.phases.iter().find(|(p, _)| *p == phase).map(|(_, d)| *d)
    }
}

/// A report about a transport, passed to [`Session::handle_transport`](crate::Session::handle_transport).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// Opening the transport entered this phase. Optional: a driver that reports phases gets a connect
    /// timeout that names the phase the attempt was stuck in ([`Cause::ConnectTimeout`](crate::Cause::ConnectTimeout));
    /// the core decides nothing else from it.
    Progress(ConnectPhase),
    /// The WebSocket handshake completed; what the driver learned doing it.
    Opened(ConnectInfo),
    /// The transport could not be opened.
    OpenFailed(OpenError),
    /// A frame arrived.
    Received(Frame),
    /// Every message the core handed to this transport up to and including `through` has been written to
    /// the socket (the write buffer was flushed). Messages of the preamble carry no id: they are reported
    /// with [`PreambleFlushed`](Self::PreambleFlushed).
    Flushed {
        /// The highest message id that is now flushed.
        through: crate::MessageId,
    },
    /// `count` preamble messages (sends without an id) have been written to this transport and flushed,
    /// in all since it opened. Cumulative, so a repeated or late report counts nothing twice.
    PreambleFlushed {
        /// Preamble messages flushed on this transport so far.
        count: usize,
    },
    /// The transport is gone. `Ok` carries the close frame seen (if any) when the close handshake ended
    /// normally; `Err` is the failure that ended it.
    Closed(Result<Option<CloseFrame>, TransportError>),
}

/// Parses an HTTP `Retry-After` value in its delay-seconds form (RFC 9110 section 10.2.3).
///
/// The HTTP-date form needs a wall clock, which the core never reads; it yields `None` and the status is
/// then retried by the ordinary backoff. Untrusted input: any string gives `Some` or `None`, never a panic.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// Close codes an endpoint may put in a close frame (RFC 6455 section 7.4, IANA registry).
pub(crate) fn close_code_sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_only() {
        assert_eq!(parse_retry_after("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("1.5"), None);
        assert_eq!(parse_retry_after(""), None);
        assert_eq!(parse_retry_after("99999999999999999999"), None);
    }

    #[test]
    fn phase_timeouts_read_as_sentences() {
        let e = OpenError::Timeout { phase: ConnectPhase::Tls, after: Duration::from_secs(10) };
        assert_eq!(e.to_string(), "TLS handshake timed out after 10 s");
        let e = OpenError::Timeout { phase: ConnectPhase::Proxy, after: Duration::from_millis(1500) };
        assert_eq!(e.to_string(), "proxy handshake timed out after 1.5 s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250 ms");
        let e = OpenError::Proxy(ProxyError::Socks { reply: 5 });
        assert_eq!(e.to_string(), "SOCKS5 proxy refused the connection: connection refused (reply 5)");
        let e = OpenError::Proxy(ProxyError::Auth("HTTP 407".into()));
        assert!(e.to_string().contains("check the proxy URL's user name and password"), "{e}");
    }
}
