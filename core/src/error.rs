//! Errors of the commands an application gives the session. Each says what went wrong and what to do;
//! a refused message is always handed back.

use crate::{AckKey, Message, State};

/// Why [`Session::send`](crate::Session::send) refused a message. The message is handed back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The queue is at its message or byte limit (overflow policy `Reject`). Wait for
    /// [`Event::QueueUnblocked`](crate::Event::QueueUnblocked), or use `DropOldest`, or raise the limits.
    #[error("send queue is full; wait for QueueUnblocked or raise the queue limits")]
    Full(Message),
    /// The message alone is larger than the queue's byte limit (or, tracked, the window's), so it can
    /// never be queued.
    #[error("message of {len} bytes exceeds the byte limit of {max_bytes}; raise QueueConfig::max_bytes (AckConfig::max_bytes for a tracked message) or split it", len = .message.len())]
    TooLarge {
        /// The refused message.
        message: Message,
        /// The configured limit.
        max_bytes: usize,
    },
    /// The session is closing, closed or failed; call `connect` again to restart it.
    #[error("cannot send while the session is {state:?}; call connect() to start it again")]
    Inactive {
        /// The refused message.
        message: Message,
        /// The state that refused it.
        state: State,
    },
    /// A tracked message with this key is already waiting for its acknowledgement: an acknowledgement
    /// could not tell the two apart. Use a fresh key, or wait for the first one's outcome.
    #[error("a tracked message with key {key} is already waiting for its acknowledgement; use a fresh key")]
    DuplicateKey {
        /// The refused message.
        message: Message,
        /// The key in use.
        key: AckKey,
    },
}

impl SendError {
    /// Takes the refused message back.
    pub fn into_message(self) -> Message {
        match self {
            SendError::Full(message) => message,
            SendError::TooLarge { message, .. }
            | SendError::Inactive { message, .. }
            | SendError::DuplicateKey { message, .. } => message,
        }
    }
}

/// A command that does not apply in the current state, or bad close arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// `connect` while already running, or `close` when already closing/closed/failed.
    #[error("cannot {command} while the session is {state:?}")]
    InvalidState {
        /// The command given.
        command: &'static str,
        /// The state it was given in.
        state: State,
    },
    /// The close code may not be sent by an endpoint (RFC 6455 section 7.4): use 1000, 1001, 1002, 1003,
    /// 1007–1011 or 3000–4999.
    #[error("close code {0} may not be sent; use 1000 (normal), 1001 (going away) or 3000-4999")]
    InvalidCloseCode(u16),
    /// The close reason is longer than the 123 bytes a close frame can carry.
    #[error("close reason is {0} bytes; a close frame carries at most 123")]
    ReasonTooLong(usize),
}

/// An invalid configuration value, reported when the session is created instead of misbehaving later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// A duration is longer than [`MAX_DURATION`](crate::config::MAX_DURATION) (10 years).
    #[error("{0} is longer than 10 years; use a realistic value")]
    TooLong(&'static str),
    /// A limit that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroLimit(&'static str),
    /// `backoff.max_delay` is below `backoff.base`.
    #[error("backoff.max_delay must be at least backoff.base")]
    MaxBelowBase,
    /// `backoff.factor` is below 1.0, or not a finite number.
    #[error("backoff.factor must be a finite number >= 1.0")]
    BadFactor,
}
