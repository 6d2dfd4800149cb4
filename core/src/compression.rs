//! Plain data about message compression on a transport: what the driver negotiated, for the
//! application to see on [`Event::Connected`](crate::Event::Connected). The core decides nothing from it.

/// The permessage-deflate parameters in force on a connection (RFC 7692), as agreed with the server in
/// the opening handshake. Carried by [`ConnectInfo::compression`](crate::ConnectInfo::compression).
///
/// Window sizes are base-2 logarithms (8 to 15: a 256 B to 32 KiB LZ77 window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DeflateParams {
    /// The largest window the server compresses with: its `server_max_window_bits` answer, else 15.
    pub server_max_window_bits: u8,
    /// The largest window the client compresses with: the server's `client_max_window_bits` answer,
    /// else the client's own configured window.
    pub client_max_window_bits: u8,
    /// The server compresses every message on its own (`server_no_context_takeover`), so the client
    /// resets its decompressor after each message.
    pub server_no_context_takeover: bool,
    /// The client compresses every message on its own (`client_no_context_takeover`): its compressor
    /// is reset after each message.
    pub client_no_context_takeover: bool,
}

impl DeflateParams {
    /// Parameters with these windows (base-2 logarithms) and context-takeover rules.
    pub fn new(
        server_max_window_bits: u8,
        client_max_window_bits: u8,
        server_no_context_takeover: bool,
        client_no_context_takeover: bool,
    ) -> Self {
        Self { server_max_window_bits, client_max_window_bits, server_no_context_takeover, client_no_context_takeover }
    }
}

impl std::fmt::Display for DeflateParams {
    /// The parameters in the header syntax of RFC 7692, e.g.
    /// `permessage-deflate; server_max_window_bits=15; client_max_window_bits=15`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "permessage-deflate; server_max_window_bits={}; client_max_window_bits={}",
            self.server_max_window_bits, self.client_max_window_bits
        )?;
        if self.server_no_context_takeover {
            f.write_str("; server_no_context_takeover")?;
        }
        if self.client_no_context_takeover {
            f.write_str("; client_no_context_takeover")?;
        }
        Ok(())
    }
}
