//! Application messages and their identifiers.

use bytes::Bytes;

/// Identifies a message accepted by [`Session::send`](crate::Session::send).
///
/// Ids increase strictly in the order messages are accepted, over the whole life of a session, so the
/// FIFO order of the queue is also the order of the ids. Every id ends with exactly one
/// [`Outcome`](crate::Outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u64);

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Whether a message is a text or a binary WebSocket message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A text message; its payload is valid UTF-8.
    Text,
    /// A binary message.
    Binary,
}

/// A complete WebSocket data message (text or binary).
///
/// The payload is [`Bytes`], so handing a message to the core, queueing it across reconnects and giving
/// it to the transport never copies it. A text message is guaranteed to hold valid UTF-8: the only ways
/// to build one check or already know it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Message {
    kind: MessageKind,
    payload: Bytes,
}

/// A text payload that is not valid UTF-8, returned by [`Message::text_from_bytes`] with the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "text message payload is not valid UTF-8 (valid up to byte {valid_up_to}); send it as binary or fix its encoding"
)]
pub struct InvalidUtf8 {
    /// The rejected bytes, handed back.
    pub payload: Bytes,
    /// Length of the longest valid UTF-8 prefix.
    pub valid_up_to: usize,
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self { kind: MessageKind::Text, payload: Bytes::from(text.into()) }
    }

    /// A text message from a static string, without allocating.
    pub const fn text_static(text: &'static str) -> Self {
        Self { kind: MessageKind::Text, payload: Bytes::from_static(text.as_bytes()) }
    }

    /// A text message from bytes, checked to be UTF-8 (the check is the only cost; no copy).
    pub fn text_from_bytes(payload: Bytes) -> Result<Self, InvalidUtf8> {
        match std::str::from_utf8(&payload) {
            Ok(_) => Ok(Self { kind: MessageKind::Text, payload }),
            Err(e) => Err(InvalidUtf8 { valid_up_to: e.valid_up_to(), payload }),
        }
    }

    /// A binary message.
    pub fn binary(payload: impl Into<Bytes>) -> Self {
        Self { kind: MessageKind::Binary, payload: payload.into() }
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The payload bytes.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Payload length in bytes; this is what the queue's byte limit counts.
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self.kind {
            // Text messages are only built from `String`/`&str` or after a UTF-8 check.
            MessageKind::Text => std::str::from_utf8(&self.payload).ok(),
            MessageKind::Binary => None,
        }
    }

    /// Takes the message apart, e.g. to hand the payload to a WebSocket library.
    pub fn into_parts(self) -> (MessageKind, Bytes) {
        (self.kind, self.payload)
    }
}

impl From<String> for Message {
    /// A text message.
    fn from(text: String) -> Self {
        Message::text(text)
    }
}

impl From<&str> for Message {
    /// A text message (the string is copied).
    fn from(text: &str) -> Self {
        Message::text(text.to_owned())
    }
}

impl From<Bytes> for Message {
    /// A binary message.
    fn from(payload: Bytes) -> Self {
        Message::binary(payload)
    }
}

impl From<Vec<u8>> for Message {
    /// A binary message.
    fn from(payload: Vec<u8>) -> Self {
        Message::binary(payload)
    }
}

/// Characters of a text message that `Debug` shows.
const PREVIEW_CHARS: usize = 32;

impl std::fmt::Debug for Message {
    /// `Message::Text(7 bytes, "hello\n…")`: the length and the first 32 characters, escaped, so that
    /// a debug print of an event says what arrived without flooding the terminal. Binary messages show
    /// only their length. (Tether never logs messages; this is for the application's own prints.)
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.payload.len();
        match self.as_text() {
            None => write!(f, "Message::Binary({len} bytes)"),
            Some(text) => {
                write!(f, "Message::Text({len} bytes, \"")?;
                let mut chars = text.chars();
                for c in chars.by_ref().take(PREVIEW_CHARS) {
                    write!(f, "{}", c.escape_debug())?;
                }
                let more = if chars.next().is_some() { "…" } else { "" };
                write!(f, "\"{more})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_bytes_checks_utf8_and_hands_bytes_back() {
        let ok = Message::text_from_bytes(Bytes::from_static("héllo".as_bytes())).unwrap();
        assert_eq!(ok.as_text(), Some("héllo"));
        let err = Message::text_from_bytes(Bytes::from_static(b"ab\xffcd")).unwrap_err();
        assert_eq!(err.valid_up_to, 2);
        assert_eq!(&err.payload[..], b"ab\xffcd");
    }

    #[test]
    fn debug_previews_text_and_sizes_binary() {
        assert_eq!(format!("{:?}", Message::text("hello")), r#"Message::Text(5 bytes, "hello")"#);
        assert_eq!(format!("{:?}", Message::text("a\"b\n\u{1}")), r#"Message::Text(5 bytes, "a\"b\n\u{1}")"#);
        // 40 characters, 80 bytes: the first 32 characters, then an ellipsis outside the quotes.
        let long = "é".repeat(40);
        assert_eq!(format!("{:?}", Message::text(long)), format!("Message::Text(80 bytes, \"{}\"…)", "é".repeat(32)));
        assert_eq!(format!("{:?}", Message::binary(vec![1, 2])), "Message::Binary(2 bytes)");
        assert_eq!(Message::binary(vec![1, 2]).as_text(), None);
    }
}
