//! The simulated user: sends, registers preambles, closes, reconnects, and the platform around it
//! (network hints, time jumps, spurious wake-ups).

use std::time::Duration;

use bytes::Bytes;
use tether_core::{CloseMode, Message, NetworkHint};

use super::rng::SimRng;

/// Payload tag of a data message.
pub const DATA: u8 = b'D';
/// Payload tag of a preamble message.
pub const PREAMBLE: u8 = b'P';
/// Payload tag of a tracked data message: the server acknowledges it.
pub const TRACKED: u8 = b'T';
/// Payload tag of the server's acknowledgement of tracked message `key`.
pub const ACK: u8 = b'A';

/// One thing the user (or the platform) does.
#[derive(Debug, Clone)]
pub enum UserAction {
    /// Send this many messages of about this size.
    Send {
        /// How many.
        count: u64,
        /// Longest payload.
        max_len: usize,
    },
    /// Replace the preamble with this many messages.
    Preamble(u64),
    /// Close the session.
    Close {
        /// The close code.
        code: u16,
        /// Drain or abort.
        mode: CloseMode,
    },
    /// Start the session again if it is idle, closed or failed.
    Connect,
    /// A network hint.
    Hint(NetworkHint),
    /// The host sleeps this long: nothing runs on the client meanwhile.
    TimeJump(Duration),
    /// The driver wakes before its deadline.
    SpuriousWake,
}

/// The next user action and the pause before the one after it.
pub fn next(rng: &mut SimRng, max_bytes: usize, jumps_left: &mut u32) -> (UserAction, Duration) {
    let r = rng.range(0, 999);
    let action = match r {
        0..=449 => {
            let count = if rng.chance(0.1) { rng.range(10, 80) } else { rng.range(1, 5) };
            let max_len = if rng.chance(0.02) { max_bytes + 50 } else { rng.range(MIN_LEN as u64, 300) as usize };
            UserAction::Send { count, max_len }
        }
        450..=489 => UserAction::Preamble(rng.range(0, 3)),
        490..=519 => {
            let mode = if rng.chance(0.5) { CloseMode::Drain } else { CloseMode::Abort };
            UserAction::Close { code: rng.pick(&[1000, 1001, 4000]), mode }
        }
        520..=699 => UserAction::Connect,
        700..=749 => UserAction::Hint(rng.pick(&[NetworkHint::Offline, NetworkHint::Online, NetworkHint::Resumed])),
        750..=759 if *jumps_left > 0 => {
            *jumps_left -= 1;
            let d = if rng.chance(0.1) { Duration::from_secs(3_600) } else { rng.ms(100, 120_000) };
            UserAction::TimeJump(d)
        }
        _ => UserAction::SpuriousWake,
    };
    let pause = if rng.chance(0.3) { rng.ms(0, 100) } else { rng.ms(100, 6_000) };
    (action, pause)
}

/// Shortest payload: a tag byte and 16 hex digits of key.
pub const MIN_LEN: usize = 17;

/// A payload of `len` bytes (at least [`MIN_LEN`]) tagged with `tag` and `key`, so the server can tell
/// what it received.
pub fn payload(tag: u8, key: u64, len: usize) -> Message {
    let mut s = format!("{}{key:016x}", tag as char);
    s.extend(std::iter::repeat_n('.', len.saturating_sub(MIN_LEN)));
    if (tag == DATA || tag == TRACKED) && key % 2 == 1 { Message::binary(Bytes::from(s)) } else { Message::text(s) }
}

/// The tag and key of a payload built by [`payload`].
pub fn parse(m: &Message) -> Option<(u8, u64)> {
    let p = m.payload();
    let hex = std::str::from_utf8(p.get(1..MIN_LEN)?).ok()?;
    Some((p[0], u64::from_str_radix(hex, 16).ok()?))
}
