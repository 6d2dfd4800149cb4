//! The one retry policy: which failures are worth another attempt, and how soon.
//!
//! Handshake statuses, close codes and transport errors all go through [`RetryPolicy`], so there is a
//! single place to read (and override) what Tether retries.

use std::time::Duration;

use crate::transport::{OpenError, ProxyError, TransportError, Violation};

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// Retry after the backoff delay.
    Retry,
    /// Retry, but not before this delay (the backoff delay is used if it is longer).
    RetryAfter(Duration),
    /// Do not retry: the session goes to [`State::Failed`](crate::State::Failed).
    Fatal,
}

/// Decides [`Verdict`]s for HTTP statuses, close codes and transport errors.
///
/// Defaults (each can be overridden per code with [`RetryPolicy::http`] and [`RetryPolicy::close`]):
///
/// | failure | verdict |
/// |---|---|
/// | HTTP 400, 401, 403, 404 and other 4xx | fatal: the request itself is wrong; fix credentials or URL |
/// | HTTP 408, 429, 5xx | retry; a `Retry-After` header is honoured as the minimum delay |
/// | HTTP 1xx/2xx/3xx instead of 101 | fatal (redirects are not followed) |
/// | close 1000, 1001, 1005, 1006, 1011, 1012, 1014, 3000–4999 | retry |
/// | close 1013 (try again later) | retry after at least [`try_again_later`](Self::try_again_later) |
/// | close 1002, 1003, 1007, 1008, 1009, 1010, 1015 | fatal: the server refuses what we send |
/// | DNS, TCP, TLS I/O, timeouts (overall or per phase), handshake protocol errors | retry |
/// | certificate rejected | fatal: it will not fix itself |
/// | an invalid answer to the permessage-deflate offer ([`OpenError::Extension`]) | fatal: unlike one corrupt message, it is the server's fixed answer to the client's fixed offer, so every retry would get it again; turn compression off for that server |
/// | I/O errors on an open connection (reset, EOF) | retry |
/// | a protocol violation by the server, detected by the client ([`Violation`]) | retry: the client closes with 1002, 1007 or 1009 first; a server bug is often transient (a bad deploy, one corrupt message) and the backoff keeps the retries slow. Override with [`RetryPolicy::violation`] |
/// | proxy unreachable (refused, reset, no route) or speaking the wrong protocol | retry |
/// | proxy authentication: HTTP 407, SOCKS5 username/password refused, no common method | fatal: fix the proxy credentials |
/// | proxy `CONNECT` answered 408, 429, 5xx (502/503/504: it could not reach the server) | retry; `Retry-After` honoured |
/// | proxy `CONNECT` answered another 4xx (403: the proxy forbids that destination) or 1xx/3xx | fatal |
/// | SOCKS5 reply 1 (general failure), 3, 4, 5, 6 (network/host unreachable, refused, TTL) | retry, like 502/504 |
/// | SOCKS5 reply 2 (not allowed by the ruleset), 7, 8 (command/address type not supported) | fatal, like 403 |
///
/// Proxy statuses are overridden with [`RetryPolicy::proxy_http`], separately from the server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Minimum delay after close code 1013 (Try Again Later). Default: 5 s.
    pub try_again_later: Duration,
    /// Upper bound on a server-requested delay (`Retry-After`, 1013), so a hostile or buggy server cannot
    /// park the client for days. Default: 10 minutes.
    pub max_server_delay: Duration,
    http_overrides: Vec<(u16, Verdict)>,
    close_overrides: Vec<(u16, Verdict)>,
    proxy_overrides: Vec<(u16, Verdict)>,
    violation_overrides: Vec<(Violation, Verdict)>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            try_again_later: Duration::from_secs(5),
            max_server_delay: Duration::from_secs(600),
            http_overrides: Vec::new(),
            close_overrides: Vec::new(),
            proxy_overrides: Vec::new(),
            violation_overrides: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// Overrides the verdict for one HTTP status (a later override of the same status wins).
    /// `RetryAfter` here is a fixed minimum; a `Retry-After` header still raises it.
    pub fn http(mut self, status: u16, verdict: Verdict) -> Self {
        self.http_overrides.retain(|(s, _)| *s != status);
        self.http_overrides.push((status, verdict));
        self
    }

    /// Overrides the verdict for one close code (a later override of the same code wins).
    pub fn close(mut self, code: u16, verdict: Verdict) -> Self {
        self.close_overrides.retain(|(c, _)| *c != code);
        self.close_overrides.push((code, verdict));
        self
    }

    /// Overrides the verdict for one HTTP status answered by a proxy to `CONNECT` (a later override of
    /// the same status wins). `RetryAfter` here is a fixed minimum; a `Retry-After` header still raises it.
    pub fn proxy_http(mut self, status: u16, verdict: Verdict) -> Self {
        self.proxy_overrides.retain(|(s, _)| *s != status);
        self.proxy_overrides.push((status, verdict));
        self
    }

    /// Overrides the verdict for a kind of protocol violation by the server (a later override of the same
    /// kind wins), e.g. `Fatal` for [`Violation::InvalidUtf8`] when a server that sends bad text will not
    /// get better by reconnecting.
    pub fn violation(mut self, kind: Violation, verdict: Verdict) -> Self {
        self.violation_overrides.retain(|(k, _)| *k != kind);
        self.violation_overrides.push((kind, verdict));
        self
    }

    /// The verdict for a failed open.
    pub fn classify_open(&self, err: &OpenError) -> Verdict {
        match err {
            OpenError::Http { status, retry_after } => self.classify_http(*status, *retry_after),
            // The server's software answers the same offer the same way: retrying cannot help, turning
            // compression off (or fixing the server) does.
            OpenError::TlsCertificate(_) | OpenError::Extension(_) => Verdict::Fatal,
            OpenError::Proxy(e) => self.classify_proxy(e),
            OpenError::Dns(_)
            | OpenError::Tcp(_)
            | OpenError::Tls(_)
            | OpenError::Protocol(_)
            | OpenError::Io(_)
            | OpenError::Timeout { .. } => Verdict::Retry,
        }
    }

    /// The verdict for a proxy that did not give us a tunnel.
    pub fn classify_proxy(&self, err: &ProxyError) -> Verdict {
        match err {
            ProxyError::Unreachable(_) | ProxyError::Protocol(_) => Verdict::Retry,
            ProxyError::Auth(_) => Verdict::Fatal,
            ProxyError::Http { status, retry_after } => {
                self.status_verdict(&self.proxy_overrides, *status, *retry_after)
            }
            ProxyError::Socks { reply: 2 | 7 | 8 } => Verdict::Fatal,
            ProxyError::Socks { .. } => Verdict::Retry,
        }
    }

    /// The verdict for a handshake answered with `status`, with the server's `Retry-After` if any.
    pub fn classify_http(&self, status: u16, retry_after: Option<Duration>) -> Verdict {
        self.status_verdict(&self.http_overrides, status, retry_after)
    }

    fn status_verdict(&self, overrides: &[(u16, Verdict)], status: u16, retry_after: Option<Duration>) -> Verdict {
        let base = match overrides.iter().find(|(s, _)| *s == status) {
            Some((_, v)) => *v,
            None => match status {
                408 | 429 | 500..=599 => Verdict::Retry,
                _ => Verdict::Fatal,
            },
        };
        match (base, retry_after) {
            (Verdict::Fatal, _) => Verdict::Fatal,
            (v, None) => self.cap(v),
            (Verdict::Retry, Some(d)) => self.cap(Verdict::RetryAfter(d)),
            (Verdict::RetryAfter(min), Some(d)) => self.cap(Verdict::RetryAfter(min.max(d))),
        }
    }

    /// The verdict for a connection the server closed with `code` (`None`: no status code, 1005).
    pub fn classify_close(&self, code: Option<u16>) -> Verdict {
        let code = code.unwrap_or(1005);
        if let Some((_, v)) = self.close_overrides.iter().find(|(c, _)| *c == code) {
            return self.cap(*v);
        }
        match code {
            1013 => self.cap(Verdict::RetryAfter(self.try_again_later)),
            1002 | 1003 | 1007 | 1008 | 1009 | 1010 | 1015 => Verdict::Fatal,
            _ => Verdict::Retry,
        }
    }

    /// The verdict for an open transport lost without a close frame.
    pub fn classify_transport(&self, err: &TransportError) -> Verdict {
        match err {
            // A reset on an established connection is exactly what reconnection is for.
            TransportError::Io(_) => Verdict::Retry,
            TransportError::Violation { kind, .. } => {
                self.violation_overrides.iter().find(|(k, _)| k == kind).map_or(Verdict::Retry, |(_, v)| self.cap(*v))
            }
        }
    }

    fn cap(&self, v: Verdict) -> Verdict {
        match v {
            Verdict::RetryAfter(d) => Verdict::RetryAfter(d.min(self.max_server_delay)),
            v => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_defaults() {
        let p = RetryPolicy::default();
        for s in [400, 401, 403, 404, 405, 426, 301, 200] {
            assert_eq!(p.classify_http(s, None), Verdict::Fatal, "{s}");
        }
        for s in [408, 429, 500, 502, 503, 599] {
            assert_eq!(p.classify_http(s, None), Verdict::Retry, "{s}");
        }
        let one = Duration::from_secs(1);
        assert_eq!(p.classify_http(503, Some(one)), Verdict::RetryAfter(one));
        // Retry-After does not turn a fatal status into a retryable one.
        assert_eq!(p.classify_http(401, Some(one)), Verdict::Fatal);
        // A huge Retry-After is capped.
        assert_eq!(p.classify_http(503, Some(Duration::from_secs(1 << 40))), Verdict::RetryAfter(p.max_server_delay));
    }

    #[test]
    fn close_defaults() {
        let p = RetryPolicy::default();
        for c in [1000, 1001, 1006, 1011, 1012, 4000] {
            assert_eq!(p.classify_close(Some(c)), Verdict::Retry, "{c}");
        }
        assert_eq!(p.classify_close(None), Verdict::Retry);
        assert_eq!(p.classify_close(Some(1013)), Verdict::RetryAfter(p.try_again_later));
        for c in [1002, 1003, 1007, 1008, 1009, 1010] {
            assert_eq!(p.classify_close(Some(c)), Verdict::Fatal, "{c}");
        }
    }

    #[test]
    fn overrides_win_and_replace() {
        let p = RetryPolicy::default()
            .http(401, Verdict::Retry)
            .http(503, Verdict::Fatal)
            .close(4001, Verdict::Fatal)
            .close(4001, Verdict::RetryAfter(Duration::from_secs(2)));
        assert_eq!(p.classify_http(401, None), Verdict::Retry);
        assert_eq!(p.classify_http(503, Some(Duration::from_secs(1))), Verdict::Fatal);
        assert_eq!(p.classify_close(Some(4001)), Verdict::RetryAfter(Duration::from_secs(2)));
        let p = p.http(500, Verdict::RetryAfter(Duration::from_secs(3)));
        assert_eq!(p.classify_http(500, Some(Duration::from_secs(1))), Verdict::RetryAfter(Duration::from_secs(3)));
    }

    #[test]
    fn errors() {
        let p = RetryPolicy::default();
        assert_eq!(p.classify_open(&OpenError::Tcp("refused".into())), Verdict::Retry);
        assert_eq!(p.classify_open(&OpenError::TlsCertificate("unknown issuer".into())), Verdict::Fatal);
        assert_eq!(p.classify_open(&OpenError::Extension("unknown parameter".into())), Verdict::Fatal);
        assert_eq!(p.classify_transport(&TransportError::Io("reset".into())), Verdict::Retry);
        let utf8 = TransportError::Violation { kind: Violation::InvalidUtf8, detail: "bad text".into() };
        assert_eq!(p.classify_transport(&utf8), Verdict::Retry);
        let p = p.violation(Violation::InvalidUtf8, Verdict::Fatal);
        assert_eq!(p.classify_transport(&utf8), Verdict::Fatal);
        let big = TransportError::Violation { kind: Violation::TooBig, detail: "64 MiB".into() };
        assert_eq!(p.classify_transport(&big), Verdict::Retry);
        let p = p.violation(Violation::InvalidUtf8, Verdict::Retry);
        assert_eq!(p.classify_transport(&utf8), Verdict::Retry);
        let timeout = OpenError::Timeout { phase: crate::ConnectPhase::Tls, after: Duration::from_secs(1) };
        assert_eq!(p.classify_open(&timeout), Verdict::Retry);
    }

    #[test]
    fn proxy_defaults() {
        let p = RetryPolicy::default();
        let proxy = |e| p.classify_open(&OpenError::Proxy(e));
        assert_eq!(proxy(ProxyError::Unreachable("refused".into())), Verdict::Retry);
        assert_eq!(proxy(ProxyError::Protocol("not HTTP".into())), Verdict::Retry);
        assert_eq!(proxy(ProxyError::Auth("407".into())), Verdict::Fatal);
        assert_eq!(proxy(ProxyError::Http { status: 407, retry_after: None }), Verdict::Fatal);
        assert_eq!(proxy(ProxyError::Http { status: 403, retry_after: None }), Verdict::Fatal);
        for status in [502, 503, 504, 500, 429] {
            assert_eq!(proxy(ProxyError::Http { status, retry_after: None }), Verdict::Retry, "{status}");
        }
        let two = Duration::from_secs(2);
        assert_eq!(proxy(ProxyError::Http { status: 503, retry_after: Some(two) }), Verdict::RetryAfter(two));
        for reply in [1, 3, 4, 5, 6, 9, 255] {
            assert_eq!(proxy(ProxyError::Socks { reply }), Verdict::Retry, "{reply}");
        }
        for reply in [2, 7, 8] {
            assert_eq!(proxy(ProxyError::Socks { reply }), Verdict::Fatal, "{reply}");
        }
        // Proxy overrides are separate from the server's.
        let p = RetryPolicy::default().proxy_http(403, Verdict::Retry);
        assert_eq!(
            p.classify_open(&OpenError::Proxy(ProxyError::Http { status: 403, retry_after: None })),
            Verdict::Retry
        );
        assert_eq!(p.classify_http(403, None), Verdict::Fatal);
    }
}
