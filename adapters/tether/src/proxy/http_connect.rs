//! HTTP `CONNECT` (RFC 9110 section 9.3.6), sans-IO: the request bytes, and a parser for the
//! proxy's response head fed with whatever the socket gives.
//!
//! Rules:
//! * The request names the server as `host:port` (IPv6 in brackets) in the request line and `Host`,
//!   with `Proxy-Authorization: Basic` when the proxy URL has credentials.
//! * A 2xx answer opens the tunnel. 407 is an authentication failure (fatal: the credentials will
//!   not get better), and so is 401, which some proxies (tinyproxy) send for wrong credentials: to a
//!   `CONNECT` only the proxy answers. Any other status is reported with its `Retry-After` for the
//!   retry policy.
//! * The head may end with CRLF CRLF or, from lenient proxies, LF LF; it is at most 16 KiB.
//! * Nothing may follow a 2xx head before we speak: both the WebSocket upgrade and TLS start with
//!   the client, so bytes past the head mean the proxy is not a CONNECT tunnel. They are counted
//!   and reported, never passed on.

use std::time::Duration;

use tether_core::{ProxyError, parse_retry_after};

use super::Credentials;

/// The longest response head accepted.
const MAX_HEAD: usize = 16 << 10;

/// An HTTP `CONNECT` handshake in progress.
///
/// ```
/// use tether::proxy::HttpConnect;
/// let mut c = HttpConnect::new("example.com", 443, None);
/// assert!(c.request().starts_with(b"CONNECT example.com:443 HTTP/1.1\r\n"));
/// assert_eq!(c.handle_input(b"HTTP/1.1 200 Connection established\r\n\r\n"), Ok(Some(0)));
/// ```
#[derive(Debug)]
pub struct HttpConnect {
    request: Vec<u8>,
    head: Vec<u8>,
    sent_credentials: bool,
    done: bool,
}

impl HttpConnect {
    /// A `CONNECT` to `host:port`, with Basic credentials if given.
    pub fn new(host: &str, port: u16, credentials: Option<&Credentials>) -> Self {
        let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(c) = credentials {
            let token = super::base64(format!("{}:{}", c.user, c.password).as_bytes());
            req.push_str("Proxy-Authorization: Basic ");
            req.push_str(&token);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        Self { request: req.into_bytes(), head: Vec::new(), sent_credentials: credentials.is_some(), done: false }
    }

    /// The bytes to send to the proxy (they hold the credentials: never log them).
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// Feeds bytes read from the proxy. `Ok(None)`: more needed. `Ok(Some(extra))`: the tunnel is
    /// open, and `extra` bytes arrived past the response head (see the module rules: anything but 0
    /// is a broken proxy). `Err`: the proxy refused, or did not speak HTTP. Input after the end is
    /// ignored.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<Option<usize>, ProxyError> {
        if self.done {
            return Ok(Some(data.len()));
        }
        let before = self.head.len();
        let take = data.len().min((MAX_HEAD + 4).saturating_sub(before));
        self.head.extend_from_slice(&data[..take]);
        let dropped = data.len() - take;
        // Only the new bytes (and three before them) can complete the terminator.
        let Some(end) = find_head_end(&self.head, before.saturating_sub(3)) else {
            if self.head.len() >= MAX_HEAD {
                return Err(ProxyError::Protocol(format!("the proxy's response head is over {} KiB", MAX_HEAD >> 10)));
            }
            if !b"HTTP/".starts_with(&self.head[..self.head.len().min(5)]) {
                return Err(not_http());
            }
            return Ok(None);
        };
        self.done = true;
        let extra = self.head.len() - end + dropped;
        self.head.truncate(end);
        let (status, retry_after) = parse_head(&self.head)?;
        match status {
            200..=299 => Ok(Some(extra)),
            401 | 407 => Err(ProxyError::Auth(if self.sent_credentials {
                format!("the proxy refused the credentials (HTTP {status})")
            } else {
                format!(
                    "the proxy requires credentials (HTTP {status}); put them in the proxy URL: \
                     http://user:password@host:port"
                )
            })),
            status => Err(ProxyError::Http { status, retry_after }),
        }
    }
}

fn not_http() -> ProxyError {
    ProxyError::Protocol("the proxy's answer is not HTTP; is it an HTTP proxy (check the URL's scheme)?".into())
}

/// The offset just past the blank line ending the head, searching from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find_map(|i| {
        if buf[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if buf[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else if buf[i..].starts_with(b"\n\r\n") {
            Some(i + 3)
        } else {
            None
        }
    })
}

/// The status code and `Retry-After` of a complete head.
fn parse_head(head: &[u8]) -> Result<(u16, Option<Duration>), ProxyError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(not_http());
    }
    let code = parts.next().unwrap_or("");
    let status = match code.parse::<u16>() {
        Ok(s) if code.len() == 3 && (100..=599).contains(&s) => s,
        _ => return Err(ProxyError::Protocol(format!("bad status line from the proxy: {:?}", truncate(status_line)))),
    };
    let retry_after = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, v)| parse_retry_after(v));
    Ok((status, retry_after))
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new("Aladdin", "open sesame")
    }

    #[test]
    fn request_bytes_are_exact() {
        let c = HttpConnect::new("example.com", 8443, None);
        assert_eq!(c.request(), b"CONNECT example.com:8443 HTTP/1.1\r\nHost: example.com:8443\r\n\r\n");
        let c = HttpConnect::new("::1", 80, Some(&creds()));
        assert_eq!(
            c.request(),
            &b"CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"[..]
        );
    }

    #[test]
    fn a_2xx_opens_the_tunnel_in_any_chunking() {
        let answer = b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n";
        for chunk in [1, 2, 3, 7, answer.len()] {
            let mut c = HttpConnect::new("h", 1, None);
            let mut result = None;
            for part in answer.chunks(chunk) {
                result = c.handle_input(part).unwrap();
            }
            assert_eq!(result, Some(0), "chunks of {chunk}");
        }
        let mut c = HttpConnect::new("h", 1, None);
        assert_eq!(c.handle_input(b"HTTP/1.1 200 OK\n\nextra"), Ok(Some(5)));
    }

    #[test]
    fn statuses_map_to_proxy_errors() {
        let mut c = HttpConnect::new("h", 1, None);
        let e =
            c.handle_input(b"HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n<html>");
        assert!(matches!(&e, Err(ProxyError::Auth(m)) if m.contains("requires credentials")), "{e:?}");
        let mut c = HttpConnect::new("h", 1, Some(&creds()));
        let e = c.handle_input(b"HTTP/1.1 407 Nope\r\n\r\n");
        assert!(matches!(&e, Err(ProxyError::Auth(m)) if m.contains("refused the credentials")), "{e:?}");
        // tinyproxy's answer to wrong credentials.
        let mut c = HttpConnect::new("h", 1, Some(&creds()));
        let e = c.handle_input(b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"Tinyproxy\"\r\n\r\n");
        assert!(matches!(&e, Err(ProxyError::Auth(m)) if m.contains("HTTP 401")), "{e:?}");
        let mut c = HttpConnect::new("h", 1, None);
        let e = c.handle_input(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(e, Err(ProxyError::Http { status: 503, retry_after: Some(Duration::from_secs(7)) }));
        let mut c = HttpConnect::new("h", 1, None);
        assert_eq!(
            c.handle_input(b"HTTP/1.1 502 Bad Gateway\r\n\r\n"),
            Err(ProxyError::Http { status: 502, retry_after: None })
        );
    }

    #[test]
    fn not_http_is_a_protocol_error_at_once() {
        // A SOCKS5 proxy's answer to an HTTP request, or anything else.
        let mut c = HttpConnect::new("h", 1, None);
        assert!(matches!(c.handle_input(&[5, 0xff]), Err(ProxyError::Protocol(_))));
        let mut c = HttpConnect::new("h", 1, None);
        assert!(matches!(c.handle_input(b"HTTP/1.1 2x0 OK\r\n\r\n"), Err(ProxyError::Protocol(_))));
        let mut c = HttpConnect::new("h", 1, None);
        let big = vec![b'a'; MAX_HEAD + 10];
        let mut first = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        first.extend_from_slice(&big);
        assert!(matches!(c.handle_input(&first), Err(ProxyError::Protocol(_))));
    }

    proptest::proptest! {
        /// Untrusted input: any bytes in any chunking end in a result, never a panic, and the same
        /// result whatever the chunking.
        #[test]
        fn any_input_any_chunking(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), cut in 0usize..300) {
            let whole = HttpConnect::new("h", 1, None).handle_input(&data);
            let mut c = HttpConnect::new("h", 1, None);
            let cut = cut.min(data.len());
            let first = c.handle_input(&data[..cut]);
            let split = match first {
                Ok(None) => c.handle_input(&data[cut..]),
                Ok(Some(extra)) => Ok(Some(extra + data.len() - cut)),
                e => e,
            };
            // An early error on a prefix (not HTTP) is the same verdict as on the whole.
            proptest::prop_assert_eq!(whole.is_ok(), split.is_ok());
            if let (Ok(a), Ok(b)) = (whole, split) {
                proptest::prop_assert_eq!(a, b);
            }
        }
    }
}
