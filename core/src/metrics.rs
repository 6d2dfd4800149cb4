//! Connection quality metrics: plain counters, cheap to copy out.

use std::time::{Duration, Instant};

/// Failures counted by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorCounts {
    /// DNS lookups that failed.
    pub dns: u64,
    /// TCP connects that failed.
    pub tcp: u64,
    /// TLS handshakes that failed, certificate rejections included.
    pub tls: u64,
    /// Handshakes answered with a non-101 HTTP status.
    pub http: u64,
    /// Handshake protocol errors and protocol errors on open connections.
    pub protocol: u64,
    /// Other I/O errors, while connecting or connected.
    pub io: u64,
    /// Connection attempts that hit the connect timeout.
    pub connect_timeout: u64,
    /// Links declared dead by the heartbeat (pong timeout or receive idle).
    pub heartbeat: u64,
    /// Connections the server closed with a close frame (any code).
    pub remote_close: u64,
    /// Attempts a proxy failed: unreachable, authentication, a refused tunnel, a protocol error.
    pub proxy: u64,
}

impl ErrorCounts {
    /// Sum over all kinds.
    pub fn total(&self) -> u64 {
        self.dns
            + self.tcp
            + self.tls
            + self.http
            + self.protocol
            + self.io
            + self.connect_timeout
            + self.heartbeat
            + self.remote_close
            + self.proxy
    }
}

/// Round-trip time measured by the heartbeat's ping/pong pairs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rtt {
    /// The latest sample.
    pub last: Option<Duration>,
    /// Exponentially weighted moving average, weight 1/8 for the new sample (as TCP's SRTT).
    pub ewma: Option<Duration>,
    /// Smallest sample seen.
    pub min: Option<Duration>,
    /// Largest sample seen.
    pub max: Option<Duration>,
    /// Number of samples.
    pub samples: u64,
}

impl Rtt {
    pub(crate) fn record(&mut self, sample: Duration) {
        self.last = Some(sample);
        self.ewma = Some(match self.ewma {
            None => sample,
            // avg + (sample - avg) / 8, as TCP's SRTT: exact, and no intermediate can overflow, however
            // absurd the sample (a clock that jumped by centuries).
            Some(avg) if sample >= avg => avg + (sample - avg) / 8,
            Some(avg) => avg - (avg - sample) / 8,
        });
        self.min = Some(self.min.map_or(sample, |m| m.min(sample)));
        self.max = Some(self.max.map_or(sample, |m| m.max(sample)));
        self.samples = self.samples.saturating_add(1);
    }
}

/// A snapshot of a session's counters, from [`Session::stats`](crate::Session::stats).
///
/// "Sent" counts messages the transport reported flushed to the socket, not messages delivered: a
/// WebSocket has no application-level acknowledgement.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Data messages flushed to a transport (preamble included).
    pub messages_sent: u64,
    /// Payload bytes of those messages.
    pub bytes_sent: u64,
    /// Data messages received.
    pub messages_received: u64,
    /// Payload bytes of those messages.
    pub bytes_received: u64,
    /// Messages accepted by `send`.
    pub messages_accepted: u64,
    /// Messages refused by `send` (queue full, too large, or the session closed).
    pub messages_refused: u64,
    /// Messages dropped by [`Overflow::DropOldest`](crate::Overflow::DropOldest).
    pub messages_dropped: u64,
    /// Messages that expired in the queue.
    pub messages_expired: u64,
    /// In-flight messages abandoned with a dead transport.
    pub messages_abandoned: u64,
    /// In-flight messages requeued after a dead transport.
    pub messages_requeued: u64,
    /// Queued messages aborted by close or failure.
    pub messages_aborted: u64,
    /// Tracked messages acknowledged ([`Outcome::Acked`](crate::Outcome::Acked)).
    pub messages_acked: u64,
    /// Tracked messages whose acknowledgement did not come within the ack timeout.
    pub messages_timed_out: u64,
    /// Tracked messages put back in line after a lost connection (each time counted).
    pub messages_redelivered: u64,
    /// Acknowledgements ignored: for a key no tracked message waits on (never used, already
    /// acknowledged or ended), or whose message had not been sent yet. Never an error: a server may
    /// acknowledge twice, or answer a request that timed out.
    pub acks_unknown: u64,
    /// Messages held now: pending, in flight, and (tracked) awaiting their acknowledgement.
    pub queue_len: usize,
    /// Payload bytes held now.
    pub queue_bytes: usize,
    /// Of the messages held, those handed to the transport and not yet reported flushed.
    pub queue_in_flight: usize,
    /// Of the messages held, tracked ones flushed and waiting for their acknowledgement.
    pub awaiting_ack: usize,
    /// Tracked messages accepted and not yet ended (the window in use; every stage).
    pub tracked: usize,
    /// Their payload bytes.
    pub tracked_bytes: usize,
    /// Connection attempts started.
    pub attempts: u64,
    /// Attempts that failed (including connections dropped before they became stable).
    pub failed_attempts: u64,
    /// Successful handshakes.
    pub connects: u64,
    /// Successful handshakes after the first one.
    pub reconnects: u64,
    /// Failures by kind.
    pub errors: ErrorCounts,
    /// Transport reports ignored because they came from a transport the core no longer uses.
    pub stale_events: u64,
    /// Heartbeat deadlines handled so late that they were treated as a time jump (host suspended).
    pub time_jumps: u64,
    /// Round-trip time.
    pub rtt: Rtt,
    /// How long the current connection has been up (zero when not connected).
    pub uptime: Duration,
    /// Connected time over the session's life, the current connection included.
    pub total_connected: Duration,
    /// When the last data message was sent or received.
    pub last_message_at: Option<Instant>,
    /// How long the last successful handshake took.
    pub last_handshake: Option<Duration>,
    /// Which endpoint served the current or last connection, as an index into the client's list of
    /// URLs (see [`ConnectInfo::endpoint`](crate::ConnectInfo::endpoint)).
    pub endpoint: Option<usize>,
}
