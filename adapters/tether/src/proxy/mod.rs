//! Proxies: HTTP `CONNECT` (over plain TCP or TLS) and SOCKS5, chosen explicitly or from the
//! environment.
//!
//! The handshakes are sans-IO state machines (bytes in, bytes out, no I/O, no clock), so they are
//! tested with exact bytes and fuzzed: [`HttpConnect`] and [`Socks5`]. The driver carries them over
//! the runtime's `futures::io` stream (`tunnel.rs`), whatever the runtime. [`ProxyEnv`] holds the
//! rules that pick a proxy from environment variables, read through an injectable lookup.
//!
//! Credentials (from the proxy URL's user-info) are never logged: [`ProxyUrl`]'s `Debug` and
//! `Display` show `scheme://host:port` only.

mod env;
mod http_connect;
mod socks5;
pub(crate) mod tunnel;

pub use env::{EnvLookup, ProxyEnv};
pub use http_connect::HttpConnect;
pub use socks5::{Socks5, SocksTarget};

use crate::BuildError;

/// What kind of proxy a [`ProxyUrl`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyKind {
    /// `http://`: an HTTP proxy, asked for a tunnel with `CONNECT`. Default port 80.
    Http,
    /// `https://`: an HTTP proxy reached over TLS (TLS to the proxy, then `CONNECT`, then the
    /// server's own TLS for `wss://` inside the tunnel). Default port 443.
    Https,
    /// `socks5://`: SOCKS5, the server's name resolved here and its address sent. Default port 1080.
    Socks5,
    /// `socks5h://`: SOCKS5, the server's name sent for the proxy to resolve. Default port 1080.
    Socks5h,
}

impl ProxyKind {
    fn scheme(self) -> &'static str {
        match self {
            ProxyKind::Http => "http",
            ProxyKind::Https => "https",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5h => "socks5h",
        }
    }
}

/// A user name and password for a proxy. Neither is ever printed (`Debug` shows `<redacted>`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl Credentials {
    /// A user name and password (as they are, not percent-encoded).
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self { user: user.into(), password: password.into() }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// A parsed proxy URL: `http://`, `https://`, `socks5://` or `socks5h://`, with optional
/// `user:password@` (percent-encoded, as in any URL). A URL without a scheme (`proxy.corp:3128`, as
/// often found in `http_proxy`) is an HTTP proxy.
///
/// `Debug` and `Display` never show the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    pub(crate) kind: ProxyKind,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) credentials: Option<Credentials>,
}

impl std::fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.kind.scheme(), self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.kind.scheme(), self.host, self.port)
        }
    }
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyUrl({self}{})", if self.credentials.is_some() { ", with credentials" } else { "" })
    }
}

impl ProxyUrl {
    /// Parses a proxy URL. The error never repeats the URL's credentials.
    pub fn parse(url: &str) -> Result<Self, BuildError> {
        let url = url.trim();
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("http".to_owned(), url),
        };
        let kind = match scheme.as_str() {
            "http" => ProxyKind::Http,
            "https" => ProxyKind::Https,
            "socks5" => ProxyKind::Socks5,
            "socks5h" => ProxyKind::Socks5h,
            other => {
                return Err(invalid(
                    url,
                    format!("unsupported proxy scheme {other:?}; use http, https, socks5 or socks5h"),
                ));
            }
        };
        // The authority ends at the path; a trailing "/" is common in environment variables.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if !rest[end..].trim_start_matches('/').is_empty() {
            return Err(invalid(url, "a proxy URL has no path or query".into()));
        }
        let authority = &rest[..end];
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let credentials = match userinfo {
            None => None,
            Some(u) => {
                let (user, password) = u.split_once(':').unwrap_or((u, ""));
                let user =
                    percent_decode(user).ok_or_else(|| invalid(url, "bad percent-encoding in the user name".into()))?;
                let password = percent_decode(password)
                    .ok_or_else(|| invalid(url, "bad percent-encoding in the password".into()))?;
                if user.is_empty() {
                    return Err(invalid(url, "empty user name".into()));
                }
                Some(Credentials { user, password })
            }
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| invalid(url, "bad host or port".into()))?;
        if host.is_empty() {
            return Err(invalid(url, "no host".into()));
        }
        let port = match port {
            Some(p) => p,
            None => match kind {
                ProxyKind::Http => 80,
                ProxyKind::Https => 443,
                ProxyKind::Socks5 | ProxyKind::Socks5h => 1080,
            },
        };
        if port == 0 {
            return Err(invalid(url, "port 0".into()));
        }
        if let (ProxyKind::Socks5 | ProxyKind::Socks5h, Some(c)) = (kind, &credentials)
            && (c.user.len() > 255 || c.password.len() > 255)
        {
            return Err(invalid(url, "SOCKS5 user names and passwords are at most 255 bytes".into()));
        }
        Ok(Self { kind, host, port, credentials })
    }

    /// The kind of proxy.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy's host (without brackets for IPv6) and port.
    pub fn host_port(&self) -> (&str, u16) {
        (&self.host, self.port)
    }

    /// Whether the URL carried credentials.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }
}

/// A proxy URL error that shows only what is safe: the scheme and host part, never user-info.
fn invalid(url: &str, reason: String) -> BuildError {
    let proxy =
        if url.contains("://") { crate::redact::url(url) } else { crate::redact::url(&format!("http://{url}")) };
    BuildError::InvalidProxy { proxy, reason }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; the host lower-cased, IPv6 without brackets.
pub(crate) fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((host.to_ascii_lowercase(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_ascii_lowercase(), Some(p.parse().ok()?))),
        Some(_) => None,
        None => Some((s.to_ascii_lowercase(), None)),
    }
}

/// Decodes `%XX` escapes; `None` on a bad escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Standard base64 with padding (RFC 4648), for `Proxy-Authorization: Basic`.
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_parse() {
        let p = ProxyUrl::parse("http://user:p%40ss%3Aword@Proxy.Corp:3128/").unwrap();
        assert_eq!((p.kind, p.host.as_str(), p.port), (ProxyKind::Http, "proxy.corp", 3128));
        assert_eq!(p.credentials, Some(Credentials::new("user", "p@ss:word")));
        assert_eq!(p.to_string(), "http://proxy.corp:3128");
        assert!(!format!("{p:?}").contains("p@ss"), "{p:?}");
        let p = ProxyUrl::parse("proxy.corp:8080").unwrap();
        assert_eq!((p.kind, p.port, p.credentials), (ProxyKind::Http, 8080, None));
        assert_eq!(ProxyUrl::parse("https://h").unwrap().port, 443);
        assert_eq!(ProxyUrl::parse("http://h").unwrap().port, 80);
        let p = ProxyUrl::parse("socks5h://[::1]").unwrap();
        assert_eq!((p.kind, p.host.as_str(), p.port), (ProxyKind::Socks5h, "::1", 1080));
        assert_eq!(p.to_string(), "socks5h://[::1]:1080");
        assert_eq!(ProxyUrl::parse("SOCKS5://u@h:1").unwrap().credentials, Some(Credentials::new("u", "")));
    }

    #[test]
    fn bad_proxy_urls_are_errors_without_secrets() {
        for bad in [
            "ftp://h:1",
            "http://user:s3cret@h:99999",
            "http://user:s3cret@:1",
            "http://:s3cret@h:1",
            "http://h:1/path",
            "http://u:%zz@h:1",
            "http://[::1:1",
            "http://h:0",
            "user:s3cret@h:0",
        ] {
            let e = ProxyUrl::parse(bad).unwrap_err();
            assert!(matches!(e, BuildError::InvalidProxy { .. }), "{bad}: {e:?}");
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
        let long = format!("socks5://{}:pw@h:1", "u".repeat(256));
        assert!(ProxyUrl::parse(&long).is_err());
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (plain, encoded) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")]
        {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(b"Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }
}
