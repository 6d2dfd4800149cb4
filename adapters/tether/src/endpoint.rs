//! The endpoints a client connects to: each URL checked once, with its upgrade request and how to
//! reach it (directly or through a proxy).

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Uri};

use crate::builder::{BuildError, HttpRequest};
use crate::proxy::ProxyUrl;

/// One URL the client may connect to, checked, with how to reach it.
pub(crate) struct Endpoint {
    pub(crate) redacted_url: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `wss://`.
    pub(crate) tls: bool,
    pub(crate) request: HttpRequest,
    pub(crate) proxy: Option<ProxyUrl>,
}

/// One endpoint's URL checked, with its request (headers and subprotocols applied); no proxy yet.
pub(crate) fn endpoint(
    url: &str,
    headers: &[(String, String)],
    subprotocols: &[String],
) -> Result<Endpoint, BuildError> {
    let uri: Uri = url.parse().map_err(|e: async_tungstenite::tungstenite::http::uri::InvalidUri| {
        BuildError::InvalidUrl { url: crate::redact::url(url), reason: e.to_string() }
    })?;
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        Some(other) => return Err(BuildError::UnsupportedScheme(other.to_owned())),
        None => {
            return Err(BuildError::InvalidUrl {
                url: crate::redact::url(url),
                reason: "no scheme; use ws:// or wss://".into(),
            });
        }
    };
    let host = match uri.host() {
        Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']').to_owned(),
        _ => {
            return Err(BuildError::InvalidUrl { url: crate::redact::url(url), reason: "no host".into() });
        }
    };
    let port = match uri.authority().and_then(|a| port_of(a.as_str())) {
        None => {
            if tls {
                443
            } else {
                80
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => {
                return Err(BuildError::InvalidUrl {
                    url: crate::redact::url(url),
                    reason: format!("invalid port {p:?}; use a number from 1 to 65535"),
                });
            }
        },
    };

    let mut request = uri
        .clone()
        .into_client_request()
        .map_err(|e| BuildError::InvalidUrl { url: crate::redact::url(url), reason: e.to_string() })?;
    for (name, value) in headers {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| BuildError::InvalidHeaderName(name.clone()))?;
        let mut v = HeaderValue::from_str(value).map_err(|_| BuildError::InvalidHeaderValue(name.clone()))?;
        if crate::redact::is_secret_header(n.as_str()) {
            v.set_sensitive(true);
        }
        request.headers_mut().append(n, v);
    }
    if !subprotocols.is_empty() {
        for p in subprotocols {
            if p.is_empty() || !p.bytes().all(is_token_byte) {
                return Err(BuildError::InvalidSubprotocol(p.clone()));
            }
        }
        let joined = subprotocols.join(", ");
        let v = HeaderValue::from_str(&joined).map_err(|_| BuildError::InvalidSubprotocol(joined.clone()))?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", v);
    }
    Ok(Endpoint { redacted_url: crate::redact::url(url), host, port, tls, request, proxy: None })
}

/// The port of an authority (`[user@]host[:port]`) as written, if one is written. The URI parser's own
/// port is `None` for a port that does not fit a `u16` as well as for no port, and the client would then
/// dial the default port: a port given must be checked as written.
fn port_of(authority: &str) -> Option<&str> {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    // An IPv6 literal holds colons of its own: the port follows its closing bracket.
    let after_host = match host_port.rfind(']') {
        Some(i) => &host_port[i + 1..],
        None => host_port,
    };
    after_host.rsplit_once(':').map(|(_, port)| port)
}

/// RFC 7230 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use crate::proxy::ProxyEnv;
    use crate::{BuildError, ClientBuilder};

    #[test]
    fn endpoints_and_proxies() {
        let c = ClientBuilder::new("ws://a:1/x")
            .endpoint("wss://b/y?k=secret")
            .proxy("http://user:pw@proxy:3128")
            .build()
            .unwrap();
        assert_eq!(c.endpoints().collect::<Vec<_>>(), ["ws://a:1/x", "wss://b/y?k=<redacted>"]);
        let proxies: Vec<_> = c.proxies().map(|p| p.map(ToString::to_string)).collect();
        assert_eq!(proxies, [Some("http://proxy:3128".to_owned()), Some("http://proxy:3128".to_owned())]);
        assert_eq!(c.inner.endpoints[1].request.uri().path(), "/y");
        assert!(c.inner.tls.is_some(), "a wss endpoint needs TLS");
        // A bad further endpoint, or a bad proxy, is a build error; the password never shows.
        assert!(matches!(
            ClientBuilder::new("ws://a/").endpoint("http://b/").build(),
            Err(BuildError::UnsupportedScheme(_))
        ));
        let e = ClientBuilder::new("ws://a/").proxy("gopher://u:pw@h:1").build().unwrap_err();
        assert!(matches!(e, BuildError::InvalidProxy { .. }) && !e.to_string().contains("pw"), "{e}");
        // An https proxy needs TLS even for ws://.
        let c = ClientBuilder::new("ws://a/").proxy("https://p:1").build().unwrap();
        assert!(c.inner.tls.is_some());
        assert!(ClientBuilder::new("ws://a/").build().unwrap().inner.tls.is_none());
    }

    #[test]
    fn proxy_from_an_injected_environment() {
        let env = ProxyEnv::with_lookup(|k| match k {
            "http_proxy" => Some("http://envproxy:8080".into()),
            "https_proxy" => Some("socks5h://envsocks:1080".into()),
            "no_proxy" => Some("direct.example".into()),
            _ => None,
        });
        let c = ClientBuilder::new("ws://a/")
            .endpoint("wss://b/")
            .endpoint("ws://direct.example/")
            .proxy_env(env)
            .build()
            .unwrap();
        let proxies: Vec<_> = c.proxies().map(|p| p.map(ToString::to_string)).collect();
        assert_eq!(
            proxies,
            [Some("http://envproxy:8080".to_owned()), Some("socks5h://envsocks:1080".to_owned()), None]
        );
        // The default ignores the environment; no_proxy() restores that.
        let c = ClientBuilder::new("ws://a/").proxy("http://p:1").no_proxy().build().unwrap();
        assert_eq!(c.proxies().collect::<Vec<_>>(), [None]);
    }
}
