//! # tether-deflate
//!
//! permessage-deflate (RFC 7692) for Tether: the offer and the strict check of the server's answer,
//! a compressor for outgoing messages, and a rewriter that turns the server's compressed frames into
//! plain ones. Everything here is sans-IO and deterministic: bytes and messages in, bytes and messages
//! out, no clock, no socket. The `tether` driver wires it to the connection.
//!
//! ## Design card
//!
//! **Why a rewriter.** Tether speaks WebSocket through tungstenite 0.30, which has no extension
//! support: its reader refuses any frame with a reserved bit set (`NonZeroReservedBits`), with no
//! switch to turn that off. Its writer, though, sends a `Message::Frame` as given (masked, as a client
//! must), RSV1 included. So:
//!
//! - **Outgoing** ([`Compressor`]): a message at or above the threshold is deflated with a sync flush,
//!   the trailing `00 00 ff ff` removed, and sent as one frame with RSV1 set through tungstenite.
//! - **Incoming** ([`Rewriter`]): the bytes from the socket pass through the rewriter *before*
//!   tungstenite reads them (a stream wrapper under async-tungstenite in the driver). It parses the
//!   server's frames; a compressed message is inflated as it arrives and written out as ordinary
//!   fragmented frames, everything else (control frames, uncompressed messages, malformed frames for
//!   tungstenite to reject) is copied unchanged. tungstenite then does what it always does: UTF-8
//!   checks, fragment assembly, size limits, ping replies, the close handshake.
//! - **Handshake**: tungstenite's own. The offer is one more request header; the answer is read from
//!   the response it returns and checked by [`negotiate`]. Until then the wrapper hands tungstenite
//!   only the HTTP response ([`ResponseEnd`]), holding back frames that arrive with it, so that they
//!   too pass through the rewriter.
//!
//! **Costs.** With compression off or declined, the wrapper is a pass-through with one branch per
//! read. With it negotiated, uncompressed messages cost one copy; compressed ones are inflated into
//! the reader's buffer in frames of at most its size, so nothing grows with message size but what
//! tungstenite assembles (bounded by the message limit). The zlib states are allocated on first use
//! (decompressor: first compressed message received; compressor: first message sent at or above the
//! threshold), so an idle connection pays only a few hundred bytes. Figures in the README.
//!
//! **Limits.** The inflated size counts against the message limit while inflating; a compressed
//! frame's length against the frame limit. A bomb stops at the limit, with memory bounded by it.
//!
//! **Alternatives rejected.** Patching or forking tungstenite (a fork to maintain); tokio-websockets or
//! fastwebsockets (no permessage-deflate either, and a second protocol stack); inflating in the driver
//! after tungstenite (impossible: tungstenite refuses the frames first).

#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

mod compress;
mod config;
mod handshake;
mod negotiate;
mod rewrite;

pub use compress::Compressor;
pub use config::{ConfigError, DeflateConfig};
pub use handshake::ResponseEnd;
pub use negotiate::{EXTENSION, NegotiationError, negotiate, offer};
pub use rewrite::{Inbound, InflateError, Progress, Rewriter, Stats};
pub use tether_core::DeflateParams;
