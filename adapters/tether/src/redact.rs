//! Keeping secrets out of logs: header values and URL query values.

/// Whether a header's value may hold a secret and must never be logged.
pub(crate) fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(n.as_str(), "authorization" | "proxy-authorization" | "cookie" | "set-cookie")
        || ["token", "secret", "key", "auth", "session", "password", "signature"].iter().any(|s| n.contains(s))
}

/// The URL with every query value replaced by `<redacted>`: tokens are often passed in the query.
pub(crate) fn url(url: &str) -> String {
    // Userinfo (user:password@) is dropped as well.
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = before_query.to_owned();
    if let Some((scheme, rest)) = before_query.split_once("://") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            out = format!("{scheme}://<redacted>@{}", &rest[at + 1..]);
        }
    }
    if let Some(q) = query {
        out.push('?');
        let parts: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) => format!("{k}=<redacted>"),
                None => kv.to_owned(),
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    out
}

/// Header names and values for logging, secrets redacted.
pub(crate) fn headers(h: &async_tungstenite::tungstenite::http::HeaderMap) -> String {
    h.iter()
        .map(|(k, v)| {
            if v.is_sensitive() || is_secret_header(k.as_str()) {
                format!("{k}: <redacted>")
            } else {
                format!("{k}: {}", v.to_str().unwrap_or("<binary>"))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_and_userinfo_are_redacted() {
        assert_eq!(url("wss://h/p?token=abc&x=1&flag"), "wss://h/p?token=<redacted>&x=<redacted>&flag");
        assert_eq!(url("ws://user:pw@h:1/p"), "ws://<redacted>@h:1/p");
        assert_eq!(url("ws://h/p"), "ws://h/p");
        assert_eq!(url("ws://h/a@b"), "ws://h/a@b");
    }

    #[test]
    fn secret_headers() {
        for h in ["Authorization", "cookie", "X-Api-Key", "X-Auth-Token", "Proxy-Authorization"] {
            assert!(is_secret_header(h), "{h}");
        }
        assert!(!is_secret_header("User-Agent"));
        let mut m = async_tungstenite::tungstenite::http::HeaderMap::new();
        m.insert("authorization", "Bearer s3cret".parse().unwrap());
        m.insert("user-agent", "tether".parse().unwrap());
        let s = headers(&m);
        assert!(!s.contains("s3cret") && s.contains("user-agent: tether"), "{s}");
    }
}
