//! Where the server's HTTP response ends, so that nothing after it reaches the WebSocket library's
//! handshake reader: frames that arrive with the response must go through the [`Rewriter`]
//! (crate::Rewriter) too, and the handshake reader would otherwise keep them.

/// Finds the end of an HTTP response head (the empty line: `CRLF CRLF`, or the bare `LF LF` that
/// lenient parsers also accept), across any split of the bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ResponseEnd {
    /// 0: inside a line; 1: just after a LF; 2: after LF CR.
    state: u8,
}

impl ResponseEnd {
    /// A scanner at the start of a response.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans `bytes` (the next bytes of the response); returns the length of the prefix that ends the
    /// head, if it ends within `bytes`.
    pub fn scan(&mut self, bytes: &[u8]) -> Option<usize> {
        for (i, &b) in bytes.iter().enumerate() {
            self.state = match (self.state, b) {
                (1 | 2, b'\n') => {
                    self.state = 0;
                    return Some(i + 1);
                }
                (_, b'\n') => 1,
                (1, b'\r') => 2,
                _ => 0,
            };
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_empty_line_across_splits() {
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi";
        let end = head.len() - 4;
        for split in 0..head.len() {
            let mut s = ResponseEnd::new();
            let found = match s.scan(&head[..split]) {
                Some(n) => n,
                None => split + s.scan(&head[split..]).expect("found in the second part"),
            };
            assert_eq!(found, end, "split at {split}");
        }
        assert_eq!(ResponseEnd::new().scan(b"HTTP/1.1 101 OK\nA: b\n\nrest"), Some(22));
        assert_eq!(ResponseEnd::new().scan(b"HTTP/1.1 101 OK\r\nA: b\r\n"), None);
        // A CR inside a line does not count.
        assert_eq!(ResponseEnd::new().scan(b"A\r\rB\r\n\r\n"), Some(8));
    }
}
