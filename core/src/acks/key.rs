//! The application's name for a tracked message: [`AckKey`].

use bytes::Bytes;

/// The key a tracked message is sent with, and acknowledged by: an opaque, application-chosen id (a
/// JSON-RPC `id`, an order id, a chat message id).
///
/// Two keys are equal when they are both numbers and equal, or both byte strings and equal: the
/// number `7` and the text `"7"` are different keys (as they are different JSON-RPC ids). Cloning is
/// cheap (a number, or a reference-counted [`Bytes`]); building one from `&str` or `String` copies the
/// text once.
///
/// ```
/// use tether_core::AckKey;
/// assert_eq!(AckKey::from(7u64), AckKey::from(7u64));
/// assert_ne!(AckKey::from(7u64), AckKey::from("7"));
/// assert_eq!(AckKey::from("order-1"), AckKey::from(String::from("order-1")));
/// assert_eq!(AckKey::from(7u64).to_string(), "7");
/// assert_eq!(AckKey::from("order-1").to_string(), "\"order-1\"");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AckKey(Repr);

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Repr {
    Number(u64),
    Bytes(Bytes),
}

impl AckKey {
    /// A key from a static string, without copying it.
    pub const fn from_static(key: &'static str) -> Self {
        Self(Repr::Bytes(Bytes::from_static(key.as_bytes())))
    }

    /// The number, if this key is one.
    pub fn as_number(&self) -> Option<u64> {
        match &self.0 {
            Repr::Number(n) => Some(*n),
            Repr::Bytes(_) => None,
        }
    }

    /// The bytes, if this key is a byte string (text keys included).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::Number(_) => None,
            Repr::Bytes(b) => Some(b),
        }
    }
}

impl From<u64> for AckKey {
    fn from(n: u64) -> Self {
        Self(Repr::Number(n))
    }
}

impl From<&str> for AckKey {
    /// The text's bytes (copied).
    fn from(s: &str) -> Self {
        Self(Repr::Bytes(Bytes::copy_from_slice(s.as_bytes())))
    }
}

impl From<String> for AckKey {
    fn from(s: String) -> Self {
        Self(Repr::Bytes(Bytes::from(s)))
    }
}

impl From<Bytes> for AckKey {
    fn from(b: Bytes) -> Self {
        Self(Repr::Bytes(b))
    }
}

impl From<Vec<u8>> for AckKey {
    fn from(b: Vec<u8>) -> Self {
        Self(Repr::Bytes(Bytes::from(b)))
    }
}

impl std::fmt::Display for AckKey {
    /// A number as digits; a byte string quoted, as text where it is UTF-8 (escaped), else as hex.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Number(n) => write!(f, "{n}"),
            Repr::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => write!(f, "{s:?}"),
                Err(_) => {
                    f.write_str("0x")?;
                    b.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
                }
            },
        }
    }
}

impl std::fmt::Debug for AckKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AckKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_text_are_distinct_and_shown_as_such() {
        assert_ne!(AckKey::from(1u64), AckKey::from("1"));
        assert_eq!(AckKey::from_static("a"), AckKey::from("a"));
        assert_eq!(AckKey::from(vec![0xff, 0x01]).to_string(), "0xff01");
        assert_eq!(format!("{:?}", AckKey::from("a\"b")), r#"AckKey("a\"b")"#);
        assert_eq!(AckKey::from(3u64).as_number(), Some(3));
        assert_eq!(AckKey::from("x").as_bytes(), Some(&b"x"[..]));
    }
}
