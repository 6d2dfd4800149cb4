//! The scripted server: what it does with each connection attempt, and the per-connection state the
//! simulator keeps (both ends of one transport).

use std::time::{Duration, Instant};

use tether_core::{CloseFrame, MessageId, OpenError, TransportError, Violation, parse_retry_after};

use super::rng::SimRng;
use super::scenario::{Phase, PhaseKind};

/// How an accepted connection ends, if the server ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A close frame (`None`: without a status code), reported as a received frame, as the transport's
    /// end, or both (`form` 0, 1, 2).
    Close {
        /// The frame.
        frame: Option<CloseFrame>,
        /// 0: a received close frame; 1: the transport's end; 2: both.
        form: u8,
    },
    /// A reset or a protocol violation: the client is told at once. After a violation the connection is
    /// still open: the client fails it with a close frame, which the server answers.
    Drop(TransportError),
    /// The connection goes half-open: nothing passes either way, and nobody is told.
    Silent,
}

/// What the server does with one connection attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Accept, and maybe end it after a while.
    Accept {
        /// After how long, and how, the server ends it.
        ending: Option<(Duration, Ending)>,
        /// The server reads slowly.
        slow: bool,
    },
    /// Refuse the open.
    Refuse(OpenError),
    /// Close the connection during the handshake.
    CloseDuringHandshake,
    /// Never answer.
    Hang,
}

/// `Retry-After` headers as servers send them, parsed as the driver would.
const RETRY_AFTER: [&str; 8] = ["0", "1", " 3 ", "10", "120", "Wed, 21 Oct 2015 07:28:00 GMT", "-1", "99999999999"];

fn close(code: Option<u16>, rng: &mut SimRng) -> Ending {
    let frame = code.map(|code| CloseFrame { code, reason: "bye".into() });
    Ending::Close { frame, form: rng.range(0, 2) as u8 }
}

/// Draws the behaviour for an attempt arriving during `phase`.
pub fn draw(rng: &mut SimRng, phase: &Phase) -> Behaviour {
    let fatal = rng.chance(phase.fatal);
    let slow = rng.chance(phase.slow);
    let after = |rng: &mut SimRng| rng.ms(0, 20_000);
    let kind = match phase.kind {
        PhaseKind::Mixed => rng.pick(&[
            PhaseKind::Healthy,
            PhaseKind::Refuse,
            PhaseKind::Errors,
            PhaseKind::Hang,
            PhaseKind::AcceptThenClose,
            PhaseKind::AcceptThenSilent,
            PhaseKind::AcceptThenDrop,
        ]),
        k => k,
    };
    match kind {
        PhaseKind::Healthy | PhaseKind::Mixed => Behaviour::Accept { ending: None, slow },
        PhaseKind::Refuse => {
            let status =
                if fatal { rng.pick(&[400, 401, 403, 404, 301]) } else { rng.pick(&[408, 429, 500, 502, 503]) };
            let retry_after = if rng.chance(0.5) { parse_retry_after(rng.pick(&RETRY_AFTER)) } else { None };
            Behaviour::Refuse(OpenError::Http { status, retry_after })
        }
        PhaseKind::Errors => {
            if fatal {
                return Behaviour::Refuse(OpenError::TlsCertificate("unknown issuer".into()));
            }
            match rng.range(0, 5) {
                0 => Behaviour::Refuse(OpenError::Dns("no such host".into())),
                1 => Behaviour::Refuse(OpenError::Tcp("connection refused".into())),
                2 => Behaviour::Refuse(OpenError::Tls("unexpected eof".into())),
                3 => Behaviour::Refuse(OpenError::Protocol("bad Sec-WebSocket-Accept".into())),
                4 => Behaviour::Refuse(OpenError::Io("broken pipe".into())),
                _ => Behaviour::CloseDuringHandshake,
            }
        }
        PhaseKind::Hang => Behaviour::Hang,
        PhaseKind::AcceptThenClose => {
            let code = if fatal {
                Some(rng.pick(&[1002, 1003, 1008]))
            } else {
                rng.pick(&[Some(1000), Some(1001), Some(1011), Some(1012), Some(1013), Some(1013), Some(4000), None])
            };
            Behaviour::Accept { ending: Some((after(rng), close(code, rng))), slow }
        }
        PhaseKind::AcceptThenSilent => Behaviour::Accept { ending: Some((after(rng), Ending::Silent)), slow },
        PhaseKind::AcceptThenDrop => {
            let err = if rng.chance(0.8) {
                TransportError::Io("connection reset".into())
            } else {
                let kind = rng.pick(&[Violation::Protocol, Violation::InvalidUtf8, Violation::TooBig]);
                TransportError::Violation { kind, detail: "bad frame".into() }
            };
            Behaviour::Accept { ending: Some((after(rng), Ending::Drop(err))), slow }
        }
        PhaseKind::LinkDown => {
            if rng.chance(0.6) {
                Behaviour::Hang
            } else {
                Behaviour::Refuse(OpenError::Tcp("network unreachable".into()))
            }
        }
    }
}

/// Both ends of one transport, as the simulator sees them.
#[derive(Debug, Clone)]
pub struct Conn {
    /// The server accepted it.
    pub accepted: bool,
    /// Half-open: nothing passes either way from now on.
    pub silent: bool,
    /// The server closed or reset it.
    pub dead: bool,
    /// The driver let go of it: aborted, or its end reported.
    pub client_closed: bool,
    /// Preamble messages the driver wrote on it.
    pub preamble_written: usize,
    /// The server reads slowly: the client's writes flush slowly.
    pub slow: bool,
    /// Its scripted ending no longer applies (the server became healthy).
    pub ending_cancelled: bool,
    /// When the client's write buffer is free again.
    pub write_free_at: Instant,
    /// Last arrival client → server (order is kept).
    pub c2s_last: Instant,
    /// Last arrival server → client.
    pub s2c_last: Instant,
    /// The preamble the server must see first (keys), fixed when the client connected on it.
    pub preamble: Vec<u64>,
    /// Preamble messages received so far.
    pub preamble_got: usize,
    /// The last data message the server received on it.
    pub last_data: Option<MessageId>,
    /// When the client last received anything on it (or opened it).
    pub last_inbound: Option<Instant>,
    /// The client connected on it.
    pub connected: bool,
    /// A time jump happened while it was open.
    pub jumped: bool,
}

impl Conn {
    /// A new transport, opened by the client at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            accepted: false,
            silent: false,
            dead: false,
            client_closed: false,
            preamble_written: 0,
            slow: false,
            ending_cancelled: false,
            write_free_at: now,
            c2s_last: now,
            s2c_last: now,
            preamble: Vec::new(),
            preamble_got: 0,
            last_data: None,
            last_inbound: None,
            connected: false,
            jumped: false,
        }
    }

    /// Whether frames can still travel on it.
    pub fn passes(&self) -> bool {
        !self.silent && !self.dead
    }
}
