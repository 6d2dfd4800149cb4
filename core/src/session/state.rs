//! The session's state with the data that is valid only in it (quinn-proto's `State` pattern): no
//! `Option` field that means something in some states only, no `expect` to bridge the others.

use std::collections::VecDeque;
use std::time::Instant;

use crate::heartbeat::Heartbeat;
use crate::{ConnectPhase, State, TransportId};

/// The lifecycle state and its data. [`State`] is its public, data-free face.
#[derive(Debug, Clone)]
pub(super) enum Stage {
    Idle,
    /// A transport is being opened, since `since`; `phase`: the last phase its driver reported (named
    /// by a connect timeout).
    Connecting {
        transport: TransportId,
        since: Instant,
        phase: Option<ConnectPhase>,
    },
    /// A transport is open; `heartbeat` is `None` when keepalive is off.
    Connected {
        open: Open,
        heartbeat: Option<Heartbeat>,
    },
    /// Waiting out the backoff (or, offline, for the network: the attempt then starts on `Online`).
    Reconnecting,
    /// A user close on an open transport: draining, then the close handshake.
    Closing {
        open: Open,
        close: CloseRequest,
    },
    Closed,
    Failed,
}

impl Stage {
    pub(super) fn public(&self) -> State {
        match self {
            Stage::Idle => State::Idle,
            Stage::Connecting { .. } => State::Connecting,
            Stage::Connected { .. } => State::Connected,
            Stage::Reconnecting => State::Reconnecting,
            Stage::Closing { .. } => State::Closing,
            Stage::Closed => State::Closed,
            Stage::Failed => State::Failed,
        }
    }

    /// The transport in use (opening, open or closing), if any.
    pub(super) fn transport(&self) -> Option<TransportId> {
        match self {
            Stage::Connecting { transport, .. } => Some(*transport),
            Stage::Connected { open, .. } | Stage::Closing { open, .. } => Some(open.transport),
            _ => None,
        }
    }

    /// The open transport (connected or closing).
    pub(super) fn open(&self) -> Option<&Open> {
        match self {
            Stage::Connected { open, .. } | Stage::Closing { open, .. } => Some(open),
            _ => None,
        }
    }

    pub(super) fn open_mut(&mut self) -> Option<&mut Open> {
        match self {
            Stage::Connected { open, .. } | Stage::Closing { open, .. } => Some(open),
            _ => None,
        }
    }

    pub(super) fn heartbeat(&self) -> Option<&Heartbeat> {
        match self {
            Stage::Connected { heartbeat, .. } => heartbeat.as_ref(),
            _ => None,
        }
    }
}

/// An open transport.
#[derive(Debug, Clone)]
pub(super) struct Open {
    pub(super) transport: TransportId,
    /// When it opened.
    pub(super) since: Instant,
    pub(super) preamble: PreambleProgress,
}

/// How far the preamble has gone on the open transport.
#[derive(Debug, Clone, Default)]
pub(super) struct PreambleProgress {
    /// Preamble messages handed out (or skipped: a preamble replaced on an open transport waits for the
    /// next one).
    pub(super) handed: usize,
    /// Lengths of the ones handed out and not yet reported flushed, oldest first.
    pub(super) unflushed: VecDeque<usize>,
    /// Reported flushed.
    pub(super) flushed: usize,
}

/// A user close in progress.
#[derive(Debug, Clone)]
pub(super) struct CloseRequest {
    pub(super) code: u16,
    pub(super) reason: String,
    /// The close action has been handed to the driver.
    pub(super) sent: bool,
}

/// The current outage: consecutive failures, backoff draws, and when it began (`None` while stable).
#[derive(Debug, Clone, Default)]
pub(super) struct Outage {
    pub(super) failures: u32,
    pub(super) retries: u32,
    pub(super) start: Option<Instant>,
}
