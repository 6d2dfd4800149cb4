//! What the client offers and how it compresses: the knobs, their defaults, their checks.

/// permessage-deflate settings of a client: what it offers the server and how it compresses what it
/// sends. Every field has a default ([`DeflateConfig::default`]); build from it with the chainable
/// setters (`DeflateConfig::default().threshold(None)`), or set fields on a default value.
/// [`validate`](Self::validate) checks them (the client builder calls it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// The LZ77 window the client compresses with, as a base-2 logarithm (9 to 15). Offered as
    /// `client_max_window_bits` (with this value when below 15); the server may ask for less. A
    /// larger window finds more repeats; the compressor's memory grows with it (see the README).
    /// Default: 15 (32 KiB).
    pub client_max_window_bits: u8,
    /// Asks the server to compress with a window of at most 2^N bytes (`server_max_window_bits=N`, 8 to
    /// 15): the client's decompressor then needs only that much window memory. A server that does not
    /// support the parameter declines compression. Default: `None` (not asked: the server chooses,
    /// usually 32 KiB).
    pub server_max_window_bits: Option<u8>,
    /// Promises the server that the client compresses every message on its own
    /// (`client_no_context_takeover`), so the server need not keep a window for it. Costs compression
    /// ratio on streams of similar messages. Default: `false`.
    pub client_no_context_takeover: bool,
    /// Asks the server to compress every message on its own (`server_no_context_takeover`). A server
    /// that does not support it declines compression. Default: `false`.
    pub server_no_context_takeover: bool,
    /// Compression level of outgoing messages, 0 (none, stored blocks) to 9 (smallest, slowest).
    /// Default: 6 (zlib's default balance).
    pub level: u8,
    /// Outgoing messages shorter than this many bytes are sent uncompressed (compressing them costs
    /// CPU and saves little); `None` sends every outgoing message uncompressed, which also never
    /// allocates the compressor. Incoming compressed messages are always accepted. Default:
    /// `Some(1024)`.
    pub threshold: Option<usize>,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            client_max_window_bits: 15,
            server_max_window_bits: None,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            level: 6,
            threshold: Some(1024),
        }
    }
}

/// A [`DeflateConfig`] value out of range. Each variant says what is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `client_max_window_bits` outside 9..=15.
    #[error(
        "client_max_window_bits {0} is out of range: use 9 to 15 (zlib cannot compress raw deflate with a 256-byte window)"
    )]
    ClientWindowBits(u8),
    /// `server_max_window_bits` outside 8..=15.
    #[error("server_max_window_bits {0} is out of range: use 8 to 15")]
    ServerWindowBits(u8),
    /// `level` above 9.
    #[error("compression level {0} is out of range: use 0 to 9")]
    Level(u8),
}

/// One `pub fn field(mut self, value) -> Self` per listed field.
macro_rules! setters {
    ($($field:ident: $t:ty),* $(,)?) => {
        impl DeflateConfig {
            $(
                #[doc = concat!("Sets `", stringify!($field), "` (see the field for its meaning and default).")]
                #[must_use = "a setter returns the changed configuration"]
                pub fn $field(mut self, value: $t) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters!(
    client_max_window_bits: u8,
    server_max_window_bits: Option<u8>,
    client_no_context_takeover: bool,
    server_no_context_takeover: bool,
    level: u8,
    threshold: Option<usize>,
);

impl DeflateConfig {
    /// Checks every value; the client builder calls this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(9..=15).contains(&self.client_max_window_bits) {
            return Err(ConfigError::ClientWindowBits(self.client_max_window_bits));
        }
        if let Some(bits) = self.server_max_window_bits
            && !(8..=15).contains(&bits)
        {
            return Err(ConfigError::ServerWindowBits(bits));
        }
        if self.level > 9 {
            return Err(ConfigError::Level(self.level));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ranges_are_checked() {
        let d = DeflateConfig::default();
        assert_eq!(d.validate(), Ok(()));
        let with = |f: fn(&mut DeflateConfig)| {
            let mut c = DeflateConfig::default();
            f(&mut c);
            c.validate()
        };
        assert_eq!(with(|c| c.client_max_window_bits = 8), Err(ConfigError::ClientWindowBits(8)));
        assert_eq!(with(|c| c.client_max_window_bits = 16), Err(ConfigError::ClientWindowBits(16)));
        assert_eq!(with(|c| c.client_max_window_bits = 9), Ok(()));
        assert_eq!(with(|c| c.server_max_window_bits = Some(7)), Err(ConfigError::ServerWindowBits(7)));
        assert_eq!(with(|c| c.server_max_window_bits = Some(8)), Ok(()));
        assert_eq!(with(|c| c.level = 10), Err(ConfigError::Level(10)));
        assert_eq!(with(|c| c.threshold = None), Ok(()));
    }
}
