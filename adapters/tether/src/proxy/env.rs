//! Choosing a proxy from environment variables, with the rules curl and Python `websockets` use.
//!
//! For a `wss://` URL the first variable set (non-empty) of `wss_proxy`, `WSS_PROXY`, `https_proxy`,
//! `HTTPS_PROXY`, `all_proxy`, `ALL_PROXY` names the proxy; for `ws://`, of `ws_proxy`, `WS_PROXY`,
//! `http_proxy`, `HTTP_PROXY`, `all_proxy`, `ALL_PROXY`. Lower case wins over upper case. Like curl
//! and Python, upper-case `HTTP_PROXY` is ignored when `REQUEST_METHOD` is set (a CGI program, where
//! a client's `Proxy:` header would arrive as `HTTP_PROXY`: "httpoxy").
//!
//! `no_proxy` (or `NO_PROXY`) then lists the hosts reached directly, comma-separated:
//! * `*` alone: every host;
//! * a name: that host and its subdomains (`example.com` and `.example.com` both match
//!   `example.com` and `a.example.com`, not `badexample.com`), case-insensitive;
//! * an IP address (`127.0.0.1`, `::1`, `[::1]`) matches that address written as the URL's host;
//!   a CIDR block (`10.0.0.0/8`, `fd00::/8`) matches the IP addresses in it;
//! * any of these with `:port` matches only that port.
//!
//! Nothing else is implied: `localhost` is proxied unless listed (as in curl).

use std::net::IpAddr;
use std::sync::Arc;

use super::ProxyUrl;
use crate::BuildError;

/// Reads one environment variable: `std::env::var` in production, a map in tests.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync + 'static>;

/// The proxy settings read from an environment.
#[derive(Clone)]
pub struct ProxyEnv {
    lookup: EnvLookup,
}

impl std::fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProxyEnv")
    }
}

impl ProxyEnv {
    /// The process environment.
    pub fn process() -> Self {
        Self::with_lookup(|name| std::env::var(name).ok())
    }

    /// An environment read through `lookup` (for tests, or a configuration source of your own).
    pub fn with_lookup(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self { lookup: Arc::new(lookup) }
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// The proxy for a server at `host:port` (`tls`: a `wss://` URL), or `None` to connect directly.
    /// An invalid proxy URL in the variable that applies is an error; others are not read.
    pub fn proxy_for(&self, tls: bool, host: &str, port: u16) -> Result<Option<ProxyUrl>, BuildError> {
        let names: &[&str] = if tls {
            &["wss_proxy", "WSS_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
        } else {
            &["ws_proxy", "WS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        };
        let cgi = self.get("REQUEST_METHOD").is_some();
        let Some(url) = names.iter().filter(|n| !(cgi && **n == "HTTP_PROXY")).find_map(|n| self.get(n)) else {
            return Ok(None);
        };
        let no_proxy = self.get("no_proxy").or_else(|| self.get("NO_PROXY")).unwrap_or_default();
        if bypass(&no_proxy, host, port) {
            return Ok(None);
        }
        ProxyUrl::parse(&url).map(Some)
    }
}

/// Whether `no_proxy` lists `host:port`.
pub(crate) fn bypass(no_proxy: &str, host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
    let ip: Option<IpAddr> = host.parse().ok();
    no_proxy.split([',', ' ', '\t']).map(str::trim).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        let (pattern, entry_port) = split_entry(entry);
        if entry_port.is_some_and(|p| p != port) {
            return false;
        }
        if let Some((net, bits)) = pattern.split_once('/') {
            return match (ip, net.parse::<IpAddr>(), bits.parse::<u8>()) {
                (Some(ip), Ok(net), Ok(bits)) => in_cidr(ip, net, bits),
                _ => false,
            };
        }
        if let Ok(entry_ip) = pattern.parse::<IpAddr>() {
            return ip == Some(entry_ip);
        }
        let domain =
            pattern.trim_start_matches("*.").trim_start_matches('.').trim_end_matches('.').to_ascii_lowercase();
        !domain.is_empty()
            && (host == domain
                || (host.len() > domain.len()
                    && host.ends_with(&domain)
                    && host[..host.len() - domain.len()].ends_with('.')))
    })
}

/// An entry's pattern and port: `h:1`, `[::1]:1`, `::1` (no port), `10.0.0.0/8:1`.
fn split_entry(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, after)) => (ip, after.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (entry, None),
        };
    }
    match entry.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 address (or block), no port.
        Some((head, _)) if head.contains(':') => (entry, None),
        Some((head, p)) => match p.parse() {
            Ok(p) => (head, Some(p)),
            Err(_) => (entry, None),
        },
        None => (entry, None),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ProxyEnv::with_lookup(move |k| map.get(k).cloned())
    }

    fn chosen(e: &ProxyEnv, tls: bool, host: &str) -> Option<String> {
        e.proxy_for(tls, host, 443).unwrap().map(|p| p.to_string())
    }

    #[test]
    fn scheme_specific_then_generic_lower_case_first() {
        let e = env(&[
            ("wss_proxy", "http://wss:1"),
            ("https_proxy", "http://https:1"),
            ("http_proxy", "http://http:1"),
            ("ALL_PROXY", "socks5://all:1"),
        ]);
        assert_eq!(chosen(&e, true, "h").as_deref(), Some("http://wss:1"));
        assert_eq!(chosen(&e, false, "h").as_deref(), Some("http://http:1"));
        let e = env(&[("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "http://lower:1")]);
        assert_eq!(chosen(&e, true, "h").as_deref(), Some("http://lower:1"));
        assert_eq!(chosen(&e, false, "h"), None);
        let e = env(&[("WS_PROXY", "http://ws:1"), ("all_proxy", "socks5h://all:1")]);
        assert_eq!(chosen(&e, false, "h").as_deref(), Some("http://ws:1"));
        assert_eq!(chosen(&e, true, "h").as_deref(), Some("socks5h://all:1"));
        // Empty counts as unset.
        let e = env(&[("wss_proxy", ""), ("https_proxy", "http://b:1")]);
        assert_eq!(chosen(&e, true, "h").as_deref(), Some("http://b:1"));
        assert_eq!(chosen(&env(&[]), true, "h"), None);
    }

    #[test]
    fn upper_case_http_proxy_is_ignored_under_cgi() {
        let e = env(&[("HTTP_PROXY", "http://attacker:1"), ("REQUEST_METHOD", "GET")]);
        assert_eq!(chosen(&e, false, "h"), None);
        let e = env(&[("HTTP_PROXY", "http://corp:1")]);
        assert_eq!(chosen(&e, false, "h").as_deref(), Some("http://corp:1"));
    }

    #[test]
    fn no_proxy_rules() {
        let np = "localhost, .internal.corp,Example.COM,10.0.0.0/8,::1,[fd00::5]:8443,192.168.1.7,ws.local:9000";
        for (host, port, direct) in [
            ("localhost", 80, true),
            ("LOCALHOST.", 80, true),
            ("a.internal.corp", 80, true),
            ("internal.corp", 80, true),
            ("example.com", 80, true),
            ("api.example.com", 80, true),
            ("badexample.com", 80, false),
            ("10.1.2.3", 80, true),
            ("11.1.2.3", 80, false),
            ("::1", 80, true),
            ("[::1]", 80, true),
            ("fd00::5", 8443, true),
            ("fd00::5", 443, false),
            ("192.168.1.7", 1, true),
            ("192.168.1.8", 1, false),
            ("ws.local", 9000, true),
            ("ws.local", 9001, false),
            ("other", 80, false),
        ] {
            assert_eq!(bypass(np, host, port), direct, "{host}:{port}");
        }
        assert!(bypass("*", "anything", 1));
        assert!(!bypass("", "anything", 1));
        assert!(bypass("*.example.com", "a.example.com", 1));
        assert!(!bypass("10.0.0.0/33", "10.0.0.1", 1));
        assert!(bypass("fd00::/8", "fd12::1", 1));
        assert!(bypass("0.0.0.0/0", "8.8.8.8", 1));
    }

    #[test]
    fn no_proxy_applies_to_the_env_proxy() {
        let e = env(&[("http_proxy", "http://p:1"), ("NO_PROXY", "127.0.0.1")]);
        assert_eq!(e.proxy_for(false, "127.0.0.1", 9).unwrap(), None);
        assert!(e.proxy_for(false, "127.0.0.2", 9).unwrap().is_some());
        let e = env(&[("http_proxy", "http://p:1"), ("no_proxy", "a"), ("NO_PROXY", "b")]);
        assert!(e.proxy_for(false, "a", 9).unwrap().is_none());
        assert!(e.proxy_for(false, "b", 9).unwrap().is_some(), "lower case wins");
    }

    #[test]
    fn a_bad_proxy_variable_is_a_build_error_only_when_it_applies() {
        let e = env(&[("http_proxy", "ftp://x"), ("https_proxy", "http://ok:1")]);
        assert!(matches!(e.proxy_for(false, "h", 1), Err(BuildError::InvalidProxy { .. })));
        assert!(e.proxy_for(true, "h", 1).unwrap().is_some());
    }
}
