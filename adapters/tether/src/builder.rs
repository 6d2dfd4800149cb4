//! The client builder: every setting, with its default, validated once when the client is built.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_EXTENSIONS;
use async_tungstenite::tungstenite::http::{HeaderValue, Request};
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tether_core::{
    BackoffConfig, Config, ConfigError, ConnectPhase, HeartbeatConfig, Message, QueueConfig, RetryPolicy,
};
use tether_deflate::DeflateConfig;

use crate::connect::phases::PhaseTimeouts;
use crate::correlate::Correlation;
use crate::endpoint::{Endpoint, endpoint};
use crate::proxy::{ProxyEnv, ProxyKind, ProxyUrl};
use crate::tls;

/// The HTTP upgrade request, as the WebSocket library takes it.
pub type HttpRequest = Request<()>;

/// A boxed error from a request hook.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The future a request hook returns.
pub type RequestFuture = Pin<Box<dyn Future<Output = Result<HttpRequest, BoxError>> + Send + 'static>>;

/// Rebuilds the upgrade request before every attempt (for example to put a fresh token in it). It gets
/// the request built from the URL, headers and subprotocols, and the attempt number within the outage.
pub type RequestHook = Arc<dyn Fn(HttpRequest, u32) -> RequestFuture + Send + Sync + 'static>;

/// The future a resolver hook returns: the addresses of a host, in preference order.
pub type ResolveFuture = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static>>;

/// Resolves a host name (and port) to addresses, in place of the runtime's resolver: a custom DNS
/// client, a service registry, a test. Not called for IP addresses.
pub type Resolver = Arc<dyn Fn(String, u16) -> ResolveFuture + Send + Sync + 'static>;

/// Where a client's connections go through.
#[derive(Clone, Default)]
enum ProxySetting {
    /// Directly (the default).
    #[default]
    Direct,
    /// Through this proxy, for every endpoint.
    Url(String),
    /// As the environment says (see [`ProxyEnv`]).
    Env(ProxyEnv),
}

/// Why a client could not be built. Each variant says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No URL was given.
    #[error("no URL given; call ClientBuilder::url(\"wss://...\")")]
    MissingUrl,
    /// The URL does not parse.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (query redacted).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL's scheme is not `ws` or `wss`.
    #[error("unsupported URL scheme {0:?}; use ws:// or wss://")]
    UnsupportedScheme(String),
    /// A header name is not a valid HTTP token.
    #[error("invalid header name {0:?}")]
    InvalidHeaderName(String),
    /// A header value holds characters HTTP does not allow (such as a newline). The value is not shown,
    /// since it may be a secret.
    #[error("invalid value for header {0:?} (control characters or non-visible bytes)")]
    InvalidHeaderValue(String),
    /// A subprotocol is not a valid HTTP token.
    #[error("invalid subprotocol {0:?}; subprotocols are HTTP tokens (no spaces, commas or separators)")]
    InvalidSubprotocol(String),
    /// A root certificate could not be read.
    #[error("invalid root certificate: {0}")]
    InvalidCertificate(String),
    /// TLS could not be configured.
    #[error("TLS configuration failed: {0}")]
    Tls(String),
    /// A core setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// A transport size setting is invalid.
    #[error("invalid size setting: {0}")]
    Size(&'static str),
    /// A compression setting is invalid, or conflicts with a header set by hand.
    #[error("invalid compression setting: {0}")]
    Compression(String),
    /// A proxy URL (given, or from the environment) is invalid. Its credentials are not shown.
    #[error("invalid proxy {proxy:?}: {reason}")]
    InvalidProxy {
        /// The proxy URL, user-info and query redacted.
        proxy: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Builds a client. Every setting has a documented default; [`build`](Self::build) checks them all.
///
/// ```
/// use std::time::Duration;
/// let cfg = tether::ClientBuilder::new("wss://example.com/feed")
///     .header("Authorization", "Bearer secret")
///     .subprotocol("v1.json")
///     .ping_interval(Duration::from_secs(10))
///     .build()?;
/// # Ok::<(), tether::BuildError>(())
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    url: Option<String>,
    more_urls: Vec<String>,
    proxy: ProxySetting,
    resolver: Option<Resolver>,
    phase_timeouts: PhaseTimeouts,
    eyeballs_delay: Duration,
    headers: Vec<(String, String)>,
    subprotocols: Vec<String>,
    pub(crate) core: Config,
    request_hook: Option<RequestHook>,
    preamble: Vec<Message>,
    extra_roots: Vec<CertificateDer<'static>>,
    root_errors: Vec<String>,
    webpki_roots: bool,
    ws: Sizes,
    event_capacity: usize,
    seed: Option<u64>,
    deflate: Option<DeflateConfig>,
    /// Set by `correlate` (in `correlate.rs`, with the other request/response settings).
    pub(crate) correlation: Option<Correlation>,
}

/// WebSocket buffer and size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sizes {
    read_buffer: usize,
    write_buffer: usize,
    max_write_buffer: usize,
    max_message: Option<usize>,
    max_frame: Option<usize>,
}

impl Default for Sizes {
    fn default() -> Self {
        Self {
            // tungstenite allocates its read buffer up front: its 128 KiB default is 128 KiB of RSS per
            // idle connection. 4 KiB keeps idle connections small; bursts grow the buffer as needed.
            read_buffer: 4 << 10,
            // Writes are buffered up to this before they go to the socket mid-burst; the driver flushes
            // when it has nothing more to write, so this only bounds a syscall's size.
            write_buffer: 64 << 10,
            max_write_buffer: 16 << 20,
            max_message: Some(64 << 20),
            max_frame: Some(16 << 20),
        }
    }
}

impl std::fmt::Debug for ClientBuilder {
    // Header values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url.as_deref().map(crate::redact::url))
            .field("more_urls", &self.more_urls.iter().map(|u| crate::redact::url(u)).collect::<Vec<_>>())
            .field("headers", &self.headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .field("subprotocols", &self.subprotocols)
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A builder for `url` (`ws://` or `wss://`) with every default.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: Some(url.into()), ..Self::default() }
    }

    /// Sets the URL.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Adds a further endpoint, for failover: when an attempt fails, the next attempt goes to the next
    /// endpoint in the list (the URL given first, then these in order, wrapping around); a connection
    /// that was up and drops is retried on the endpoint that served it first. Headers, subprotocols
    /// and every other setting apply to all. Which endpoint served is on
    /// [`Event::Connected`](crate::Event::Connected) (`info.endpoint`, an index: 0 for the first URL) and in
    /// [`Stats::endpoint`](crate::Stats::endpoint). Default: none.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.more_urls.push(url.into());
        self
    }

    /// Connects through this proxy: `http://[user:password@]host:port` (HTTP `CONNECT`),
    /// `https://...` (the same over TLS to the proxy, which must present a certificate trusted like
    /// the servers'), `socks5://...` (SOCKS5, names resolved here) or `socks5h://...` (the proxy
    /// resolves them). The credentials are never logged. Environment variables are not read.
    /// Default: no proxy.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = ProxySetting::Url(url.into());
        self
    }

    /// Connects directly, whatever the environment says (the default).
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxySetting::Direct;
        self
    }

    /// Picks the proxy from the process environment when the client is built, with the rules of
    /// curl and Python `websockets`: `wss_proxy`/`https_proxy` for `wss://`, `ws_proxy`/`http_proxy` for
    /// `ws://`, then `all_proxy`; lower case before upper case; `no_proxy` lists the hosts reached
    /// directly (names with their subdomains, IP addresses, CIDR blocks, optional `:port`, or `*`).
    /// The full rules are in [`ProxyEnv`]. Not the default: a library should not send its traffic
    /// somewhere else because of an ambient variable unless asked (the `tether` command does ask).
    pub fn proxy_from_env(self) -> Self {
        self.proxy_env(ProxyEnv::process())
    }

    /// Like [`proxy_from_env`](Self::proxy_from_env), reading the variables from `env` (for tests, or
    /// settings from elsewhere).
    pub fn proxy_env(mut self, env: ProxyEnv) -> Self {
        self.proxy = ProxySetting::Env(env);
        self
    }

    /// Resolves host names with `resolver` instead of the runtime's resolver (the system's). Every
    /// address it returns is tried (see [`happy_eyeballs_delay`](Self::happy_eyeballs_delay)).
    /// Default: the runtime's resolver.
    pub fn resolver<F, Fut>(mut self, resolver: F) -> Self
    where
        F: Fn(String, u16) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static,
    {
        self.resolver = Some(Arc::new(move |host, port| Box::pin(resolver(host, port))));
        self
    }

    /// When a host has several addresses, the delay between the starts of connection attempts to them
    /// (RFC 8305's "Connection Attempt Delay": IPv6 and IPv4 interleaved, the next attempt started
    /// after this delay or as soon as one fails, the first to connect wins). Default: 250 ms, as the
    /// RFC recommends. Zero tries them all at once.
    pub fn happy_eyeballs_delay(mut self, delay: Duration) -> Self {
        self.eyeballs_delay = delay;
        self
    }

    /// Bounds one phase of every attempt (DNS, TCP, proxy, TLS, WebSocket handshake); a phase that
    /// runs longer fails the attempt with [`OpenError::Timeout`](crate::OpenError::Timeout) naming it
    /// (retried). The overall [`connect_timeout`](Self::connect_timeout) still bounds the whole
    /// attempt. Default: none per phase.
    pub fn phase_timeout(mut self, phase: ConnectPhase, timeout: Duration) -> Self {
        self.phase_timeouts.set(phase, Some(timeout));
        self
    }

    /// Adds a header to the upgrade request. Values of `Authorization`, `Cookie` and headers whose name
    /// mentions a token, key or secret are never logged.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Offers a subprotocol (`Sec-WebSocket-Protocol`); may be called several times, in preference order.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.subprotocols.push(protocol.into());
        self
    }

    /// Rebuilds the request before every attempt, e.g. to fetch a fresh token. Default: none.
    pub fn request_hook<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(HttpRequest, u32) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HttpRequest, BoxError>> + Send + 'static,
    {
        self.request_hook = Some(Arc::new(move |req, attempt| Box::pin(hook(req, attempt))));
        self
    }

    /// Messages sent first on every (re)connection, before anything queued (authentication,
    /// subscriptions). Default: none.
    pub fn preamble(mut self, messages: Vec<Message>) -> Self {
        self.preamble = messages;
        self
    }

    /// Connect timeout: the whole attempt (DNS, TCP, proxy, TLS, upgrade). When it passes, the cause
    /// names the phase the attempt was in ("TLS handshake timed out after 10 s"). Default: 10 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.core.connect_timeout = d;
        self
    }

    /// How long a close waits for the drain and the server's close frame. Default: 5 s.
    pub fn close_timeout(mut self, d: Duration) -> Self {
        self.core.close_timeout = d;
        self
    }

    /// Reconnection backoff. Default: [`BackoffConfig::default`] (500 ms doubling to 30 s, equal
    /// jitter, retries forever, reset after 5 s up).
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.core.backoff = backoff;
        self
    }

    /// Keepalive; `None` disables it. Default: ping every 15 s, pong within 10 s.
    pub fn heartbeat(mut self, heartbeat: Option<HeartbeatConfig>) -> Self {
        self.core.heartbeat = heartbeat;
        self
    }

    /// Shorthand: sets the ping interval (enabling the heartbeat with defaults if it was off).
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.core.heartbeat.get_or_insert_with(HeartbeatConfig::default).interval = d;
        self
    }

    /// Shorthand: sets the pong timeout (enabling the heartbeat with defaults if it was off).
    pub fn pong_timeout(mut self, d: Duration) -> Self {
        self.core.heartbeat.get_or_insert_with(HeartbeatConfig::default).pong_timeout = d;
        self
    }

    /// The outgoing queue. Default: 4096 messages, 4 MiB, `Reject` on overflow, no TTL, `Abandon`.
    pub fn queue(mut self, queue: QueueConfig) -> Self {
        self.core.queue = queue;
        self
    }

    /// The retry policy. Default: [`RetryPolicy::default`].
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.core.retry = policy;
        self
    }

    /// The whole core configuration at once (replaces the settings above), its seed included: a
    /// non-zero `config.seed` is used as if given to [`seed`](Self::seed). A seed of 0 (the value of
    /// `Config::default()`) draws one per client, as without this call, so that clients configured
    /// from one default `Config` do not all retry in step; call [`seed`](Self::seed) to force 0.
    pub fn core_config(mut self, config: Config) -> Self {
        self.seed = (config.seed != 0).then_some(config.seed);
        self.core = config;
        self
    }

    /// Jitter seed. Default: drawn from the OS's hasher seed, different for every client (see also
    /// [`core_config`](Self::core_config)).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Trusts an extra root certificate (DER), e.g. a private CA. Default: none.
    pub fn add_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.extra_roots.push(CertificateDer::from(der.into()));
        self
    }

    /// Trusts every certificate in a PEM bundle. Errors are reported by [`build`](Self::build).
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Self {
        let mut found = false;
        for cert in CertificateDer::pem_slice_iter(pem) {
            match cert {
                Ok(c) => {
                    found = true;
                    self.extra_roots.push(c);
                }
                Err(e) => self.root_errors.push(e.to_string()),
            }
        }
        if !found && self.root_errors.is_empty() {
            self.root_errors.push("no CERTIFICATE found in the PEM data".into());
        }
        self
    }

    /// Whether the Mozilla root certificates (webpki-roots) are trusted. Default: `true`. With `false`
    /// only the extra roots are.
    pub fn webpki_roots(mut self, enabled: bool) -> Self {
        self.webpki_roots = enabled;
        self
    }

    /// Initial read buffer of a connection (it grows as needed). Default: 4 KiB.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.ws.read_buffer = bytes;
        self
    }

    /// Buffered bytes at which a write goes to the socket in the middle of a burst. Default: 64 KiB.
    pub fn write_buffer_size(mut self, bytes: usize) -> Self {
        self.ws.write_buffer = bytes;
        self
    }

    /// Largest incoming message; larger ones close the connection with a protocol error. Default: 64 MiB.
    pub fn max_message_size(mut self, bytes: Option<usize>) -> Self {
        self.ws.max_message = bytes;
        self
    }

    /// Largest incoming frame. Default: 16 MiB.
    pub fn max_frame_size(mut self, bytes: Option<usize>) -> Self {
        self.ws.max_frame = bytes;
        self
    }

    /// permessage-deflate (RFC 7692): `Some` offers it to the server with these settings, `None` does
    /// not offer it. A server that declines gets uncompressed messages, and an answer that breaks the
    /// RFC fails the attempt with [`OpenError::Extension`](tether_core::OpenError::Extension), which
    /// the retry policy treats as fatal (the server answers the same offer the same way: turn
    /// compression off for it). What was agreed is in [`ConnectInfo::compression`](tether_core::ConnectInfo)
    /// on every `Connected` event. Default: `Some(DeflateConfig::default())`: offered, 32 KiB windows,
    /// context takeover, outgoing messages of 1 KiB and more compressed at level 6. The compression
    /// state is allocated on first use (see the README for its memory).
    pub fn compression(mut self, deflate: Option<DeflateConfig>) -> Self {
        self.deflate = deflate;
        self
    }

    /// Events buffered for the application before the driver stops reading the socket (backpressure).
    /// Default: 1024.
    pub fn event_capacity(mut self, events: usize) -> Self {
        self.event_capacity = events;
        self
    }

    /// Checks everything and returns the configuration to connect with.
    pub fn build(self) -> Result<ClientConfig, BuildError> {
        let url = self.url.ok_or(BuildError::MissingUrl)?;
        let mut endpoints = Vec::with_capacity(1 + self.more_urls.len());
        for u in std::iter::once(&url).chain(&self.more_urls) {
            let mut ep = endpoint(u, &self.headers, &self.subprotocols)?;
            ep.proxy = match &self.proxy {
                ProxySetting::Direct => None,
                ProxySetting::Url(p) => Some(ProxyUrl::parse(p)?),
                ProxySetting::Env(env) => env.proxy_for(ep.tls, &ep.host, ep.port)?,
            };
            endpoints.push(ep);
        }

        if let Some(deflate) = &self.deflate {
            deflate.validate().map_err(|e| BuildError::Compression(e.to_string()))?;
            let offer = tether_deflate::offer(deflate);
            let v = HeaderValue::from_str(&offer).map_err(|_| BuildError::Compression(offer.clone()))?;
            for ep in &mut endpoints {
                if ep.request.headers().contains_key(SEC_WEBSOCKET_EXTENSIONS) {
                    return Err(BuildError::Compression(
                        "a Sec-WebSocket-Extensions header was set by hand while compression is on; \
                         call compression(None) to offer your own extensions"
                            .into(),
                    ));
                }
                ep.request.headers_mut().insert(SEC_WEBSOCKET_EXTENSIONS, v.clone());
            }
        }

        let mut core = self.core;
        core.seed = self.seed.unwrap_or_else(random_seed);
        core.validate()?;

        if let Some(e) = self.root_errors.first() {
            return Err(BuildError::InvalidCertificate(e.clone()));
        }
        // One TLS configuration for the servers (wss://) and https:// proxies.
        let needs_tls =
            endpoints.iter().any(|e| e.tls || e.proxy.as_ref().is_some_and(|p| p.kind() == ProxyKind::Https));
        let tls_config = if needs_tls { Some(tls::client_config(self.webpki_roots, &self.extra_roots)?) } else { None };

        let s = self.ws;
        if s.read_buffer == 0 {
            return Err(BuildError::Size("read_buffer_size must be greater than zero"));
        }
        if s.max_message == Some(0) || s.max_frame == Some(0) {
            return Err(BuildError::Size("max_message_size and max_frame_size must be greater than zero"));
        }
        if self.event_capacity == 0 {
            return Err(BuildError::Size("event_capacity must be greater than zero"));
        }
        let ws = WebSocketConfig::default()
            .read_buffer_size(s.read_buffer)
            .write_buffer_size(s.write_buffer)
            // tungstenite refuses a frame that would take its buffer past this limit ("Write buffer is
            // full", a dead connection). The buffer holds at most `write_buffer` unsent bytes plus the
            // frame being written, and the queue admits messages up to `max_bytes`: leave room for that.
            .max_write_buffer_size(
                s.max_write_buffer
                    .max(s.write_buffer.saturating_add(core.queue.max_bytes).saturating_add(MAX_FRAME_HEADER + 1)),
            )
            .max_message_size(s.max_message)
            .max_frame_size(s.max_frame);

        Ok(ClientConfig {
            inner: Arc::new(Inner {
                redacted_url: crate::redact::url(&url),
                endpoints,
                tls: tls_config,
                request_hook: self.request_hook,
                resolver: self.resolver,
                phase_timeouts: self.phase_timeouts,
                eyeballs_delay: self.eyeballs_delay,
                preamble: self.preamble,
                core,
                ws,
                event_capacity: self.event_capacity,
                deflate: self.deflate,
                correlation: self.correlation,
            }),
        })
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            url: None,
            more_urls: Vec::new(),
            proxy: ProxySetting::Direct,
            resolver: None,
            phase_timeouts: PhaseTimeouts::default(),
            // RFC 8305 section 5's recommended Connection Attempt Delay.
            eyeballs_delay: Duration::from_millis(250),
            headers: Vec::new(),
            subprotocols: Vec::new(),
            core: Config::default(),
            request_hook: None,
            preamble: Vec::new(),
            extra_roots: Vec::new(),
            root_errors: Vec::new(),
            webpki_roots: true,
            ws: Sizes::default(),
            event_capacity: 1024,
            seed: None,
            deflate: Some(DeflateConfig::default()),
            correlation: None,
        }
    }
}

/// The largest WebSocket frame header: 2 bytes, 8 of extended length, 4 of mask.
const MAX_FRAME_HEADER: usize = 14;

/// A per-client seed, so clients cut off together do not retry together. `RandomState` is seeded from
/// the OS once per process and varies per instance: no extra dependency needed for this.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x7e7e_7e7e);
    h.finish()
}

/// A validated client configuration, from [`ClientBuilder::build`]. Cheap to clone.
#[derive(Clone)]
pub struct ClientConfig {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig").field("url", &self.inner.redacted_url).finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// The URL, with query values redacted (safe to log).
    pub fn redacted_url(&self) -> &str {
        &self.inner.redacted_url
    }

    /// The core configuration in force (with its seed).
    pub fn core(&self) -> &Config {
        &self.inner.core
    }

    /// Every endpoint's URL (query values redacted), in failover order: index `i` here is
    /// `ConnectInfo::endpoint == i`.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        self.inner.endpoints.iter().map(|e| e.redacted_url.as_str())
    }

    /// The proxy each endpoint goes through (`scheme://host:port`, never credentials), in the same
    /// order as [`endpoints`](Self::endpoints); `None` for a direct connection.
    pub fn proxies(&self) -> impl Iterator<Item = Option<&ProxyUrl>> {
        self.inner.endpoints.iter().map(|e| e.proxy.as_ref())
    }
}

pub(crate) struct Inner {
    pub(crate) redacted_url: String,
    /// At least one.
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) request_hook: Option<RequestHook>,
    pub(crate) resolver: Option<Resolver>,
    pub(crate) phase_timeouts: PhaseTimeouts,
    pub(crate) eyeballs_delay: Duration,
    pub(crate) preamble: Vec<Message>,
    pub(crate) core: Config,
    pub(crate) ws: WebSocketConfig,
    pub(crate) event_capacity: usize,
    pub(crate) deflate: Option<DeflateConfig>,
    /// The application's correlation function, for tracked messages and requests.
    pub(crate) correlation: Option<Correlation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_a_typed_error() {
        let b = |u: &str| ClientBuilder::new(u);
        assert!(matches!(b("not a url at all").build(), Err(BuildError::InvalidUrl { .. })));
        assert!(matches!(b("/relative").build(), Err(BuildError::InvalidUrl { .. })));
        assert_eq!(b("http://x/").build().unwrap_err(), BuildError::UnsupportedScheme("http".into()));
        assert_eq!(ClientBuilder::default().build().unwrap_err(), BuildError::MissingUrl);
        assert_eq!(
            b("ws://x/").header("bad name", "v").build().unwrap_err(),
            BuildError::InvalidHeaderName("bad name".into())
        );
        assert_eq!(
            b("ws://x/").header("X-Token", "a\r\nb").build().unwrap_err(),
            BuildError::InvalidHeaderValue("X-Token".into())
        );
        assert_eq!(b("ws://x/").subprotocol("a b").build().unwrap_err(), BuildError::InvalidSubprotocol("a b".into()));
        assert!(matches!(
            b("ws://x/").ping_interval(Duration::ZERO).build(),
            Err(BuildError::Config(ConfigError::ZeroDuration("heartbeat.interval")))
        ));
        assert!(matches!(
            b("wss://x/").add_root_certificates_pem(b"garbage").build(),
            Err(BuildError::InvalidCertificate(_))
        ));
        let bad = DeflateConfig::default().client_max_window_bits(8);
        assert!(matches!(b("ws://x/").compression(Some(bad)).build(), Err(BuildError::Compression(_))));
        assert!(matches!(
            b("ws://x/").header("Sec-WebSocket-Extensions", "foo").build(),
            Err(BuildError::Compression(_))
        ));
        assert!(b("ws://x/").header("Sec-WebSocket-Extensions", "foo").compression(None).build().is_ok());
    }

    #[test]
    fn compression_is_offered_by_default() {
        let c = ClientBuilder::new("ws://x/").build().unwrap();
        assert_eq!(
            c.inner.endpoints[0].request.headers()["sec-websocket-extensions"],
            "permessage-deflate; client_max_window_bits"
        );
        assert_eq!(c.inner.deflate, Some(DeflateConfig::default()));
        let c = ClientBuilder::new("ws://x/").compression(None).build().unwrap();
        assert!(!c.inner.endpoints[0].request.headers().contains_key("sec-websocket-extensions"));
    }

    #[test]
    fn invalid_port_is_a_build_error() {
        // Issue 11, defect 3: these used to build and dial port 80 forever.
        for url in
            ["ws://127.0.0.1:99999/", "ws://127.0.0.1:65536/", "ws://127.0.0.1:abc/", "wss://h:0/", "ws://[::1]:70000/"]
        {
            match ClientBuilder::new(url).build() {
                Err(BuildError::InvalidUrl { reason, .. }) => assert!(reason.contains("port"), "{url}: {reason}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        assert_eq!(ClientBuilder::new("ws://h:65535/").build().unwrap().inner.endpoints[0].port, 65535);
        assert_eq!(ClientBuilder::new("wss://h/").build().unwrap().inner.endpoints[0].port, 443);
        assert_eq!(ClientBuilder::new("ws://u@[::1]:8080/").build().unwrap().inner.endpoints[0].port, 8080);
        assert_eq!(ClientBuilder::new("ws://[::1]/").build().unwrap().inner.endpoints[0].port, 80);
    }

    #[test]
    fn core_config_keeps_its_seed() {
        // Issue 11, defect 9: `build` replaced a seeded core config's seed with a random one.
        let seeded = Config::default().seed(42);
        assert_eq!(ClientBuilder::new("ws://x/").core_config(seeded.clone()).build().unwrap().core().seed, 42);
        // An explicit `seed` wins, whichever comes first.
        let b = ClientBuilder::new("ws://x/").core_config(seeded.clone()).seed(7);
        assert_eq!(b.build().unwrap().core().seed, 7);
        let b = ClientBuilder::new("ws://x/").seed(7).core_config(seeded);
        assert_eq!(b.build().unwrap().core().seed, 42);
        // The default config's 0 still draws a seed per client.
        let a = ClientBuilder::new("ws://x/").core_config(Config::default()).build().unwrap();
        let b = ClientBuilder::new("ws://x/").core_config(Config::default()).build().unwrap();
        assert_ne!(a.core().seed, b.core().seed);
    }

    #[test]
    fn write_buffer_fits_the_largest_queued_message() {
        // Autobahn 9.1.6 / 9.2.6: a 16 MiB echo died with "Write buffer is full" under the old 16 MiB cap.
        let queue = QueueConfig::default().max_bytes(64 << 20);
        let c = ClientBuilder::new("ws://x/").queue(queue).build().unwrap();
        assert!(c.inner.ws.max_write_buffer_size > (64 << 20) + (64 << 10) + MAX_FRAME_HEADER);
    }

    #[test]
    fn good_input_builds() {
        let c = ClientBuilder::new("wss://example.com:8443/feed?token=abc")
            .header("Authorization", "Bearer x")
            .subprotocol("v1.json")
            .build()
            .unwrap();
        let ep = &c.inner.endpoints[0];
        assert_eq!(ep.host, "example.com");
        assert_eq!(ep.port, 8443);
        assert!(c.inner.tls.is_some());
        assert_eq!(c.redacted_url(), "wss://example.com:8443/feed?token=<redacted>");
        assert!(ep.request.headers()["authorization"].is_sensitive());
        assert_eq!(ep.request.headers()["sec-websocket-protocol"], "v1.json");
        let c = ClientBuilder::new("ws://[::1]/").build().unwrap();
        let ep = &c.inner.endpoints[0];
        assert_eq!((ep.host.as_str(), ep.port), ("::1", 80));
        // Two clients built without a seed jitter differently.
        let a = ClientBuilder::new("ws://x/").build().unwrap();
        let b = ClientBuilder::new("ws://x/").build().unwrap();
        assert_ne!(a.core().seed, b.core().seed);
    }
}
