//! Opening one transport, phase by phase: the request (hook), DNS, TCP (every address raced), the
//! proxy's tunnel, TLS, the WebSocket upgrade; and the classification of every failure into the
//! core's [`OpenError`].
//!
//! | module | what |
//! |---|---|
//! | `phases` | timing, reporting and per-phase timeouts |
//! | `eyeballs` | the sans-IO Happy Eyeballs schedule; `race` runs it |
//! | `failover` | the sans-IO choice of endpoint per attempt |
//! | `classify` | TLS and handshake errors as `OpenError` |
//! | `crate::proxy` | the proxy handshakes and the environment rules |

mod classify;
mod eyeballs;
pub(crate) mod failover;
pub(crate) mod phases;
mod race;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU8;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::handshake::client::generate_key;
use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::http::header::{
    SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
};
use rustls_pki_types::ServerName;
use tether_core::{ConnectInfo, ConnectPhase, OpenError, ProxyError};

use crate::builder::{HttpRequest, Inner};
use crate::deflate::DeflateStream;
use crate::endpoint::Endpoint;
use crate::proxy::{ProxyKind, ProxyUrl, SocksTarget, tunnel};
use crate::runtime::Runtime;
use crate::stream::{Head, HeadRecord, Tcp};
use crate::tls::MaybeTls;
use crate::writer::Out;
use phases::Phases;

/// The link to the first hop: the server, or the proxy (over TLS for an `https://` proxy).
pub(crate) type Link<R> = MaybeTls<Tcp<R>>;

/// An open WebSocket on runtime `R`: tungstenite over the shared output buffer (see `writer`), over the
/// permessage-deflate state (see `deflate`).
pub(crate) type Ws<R> = WebSocketStream<Out<DeflateStream<Head<MaybeTls<Link<R>>>>>>;

/// The TCP stream under a WebSocket (under TLS to the server and to a proxy, if any).
pub(crate) fn tcp_of<R: Runtime>(ws: &mut Ws<R>) -> &mut Tcp<R> {
    let link = match ws.get_mut().get_mut().get_mut().get_mut() {
        MaybeTls::Plain(link) => link,
        MaybeTls::Tls(tls) => tls.get_mut().0,
    };
    match link {
        MaybeTls::Plain(tcp) => tcp,
        MaybeTls::Tls(tls) => tls.get_mut().0,
    }
}

/// Opens a transport to endpoint `endpoint`; returns it with what was learned opening it. Each
/// phase's start is published in `progress` (see [`phases`]).
pub(crate) async fn open<R: Runtime>(
    rt: R,
    cfg: Arc<Inner>,
    attempt: u32,
    endpoint: usize,
    progress: Arc<AtomicU8>,
) -> Result<(Ws<R>, ConnectInfo), OpenError> {
    let started = rt.now();
    let Some(ep) = cfg.endpoints.get(endpoint) else {
        return Err(OpenError::Io(format!("no endpoint {endpoint}")));
    };
    let request = request(&cfg, ep, attempt).await?;
    tracing::debug!(
        url = %ep.redacted_url,
        proxy = ep.proxy.as_ref().map(tracing::field::display),
        headers = %crate::redact::headers(request.headers()),
        "opening"
    );
    let mut phases = Phases::new(&rt, &progress, &cfg.phase_timeouts);

    let (link, peer) = match &ep.proxy {
        None => {
            let addrs = resolve(&rt, &cfg, &mut phases, &ep.host, ep.port).await?;
            let delay = cfg.eyeballs_delay;
            let (tcp, peer) = phases
                .run(ConnectPhase::Tcp, async { race::race(&rt, addrs, delay).await.map_err(OpenError::Tcp) })
                .await?;
            // Reset if this attempt is dropped before it opens (the connect timeout).
            (MaybeTls::Plain(Tcp::armed(tcp)), peer)
        }
        Some(proxy) => through_proxy(&rt, &cfg, &mut phases, ep, proxy).await?,
    };

    let stream = match &cfg.tls {
        Some(tls) if ep.tls => {
            let name = ServerName::try_from(ep.host.clone())
                .map_err(|e| OpenError::TlsCertificate(format!("invalid server name {:?}: {e}", ep.host)))?;
            let connector = futures_rustls::TlsConnector::from(tls.clone());
            let s = phases
                .run(ConnectPhase::Tls, async { connector.connect(name, link).await.map_err(classify::classify_tls) })
                .await?;
            MaybeTls::Tls(Box::new(s))
        }
        _ => MaybeTls::Plain(link),
    };

    // permessage-deflate, if the request (after the hook) still offers it.
    let deflate = cfg.deflate.as_ref().filter(|_| request.headers().contains_key(SEC_WEBSOCKET_EXTENSIONS));
    let record = HeadRecord::default();
    let stream = Out::new(DeflateStream::new(Head::recording(stream, record.clone()), deflate.is_some()));
    let ws_config = Some(cfg.ws);
    let (mut ws, response) = phases
        .run(ConnectPhase::Handshake, async {
            async_tungstenite::client_async_with_config(request, stream, ws_config)
                .await
                .map_err(|e| classify::classify_handshake(e, &record))
        })
        .await?;
    ws.get_mut().get_mut().get_mut().stop();
    tcp_of(&mut ws).keep();
    let mut info = ConnectInfo::new(rt.now().saturating_duration_since(started));
    // tungstenite has checked that the server chose one of the offered subprotocols.
    info.subprotocol =
        response.headers().get(SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()).map(|p| p.trim().to_owned());
    info.compression = crate::deflate::accept(&mut ws, deflate, &response)?;
    info.phases = phases.log;
    info.endpoint = endpoint;
    info.peer = Some(peer);
    info.proxy = ep.proxy.as_ref().map(ToString::to_string);
    Ok((ws, info))
}

/// The upgrade request for this attempt: the endpoint's, with a fresh key, through the hook.
async fn request(cfg: &Inner, ep: &Endpoint, attempt: u32) -> Result<HttpRequest, OpenError> {
    let mut request = ep.request.clone();
    // RFC 6455, 4.1: the key is a nonce "selected randomly for each connection"; the one the builder's
    // request was made with must not be sent twice.
    match HeaderValue::try_from(generate_key()) {
        Ok(key) => request.headers_mut().insert(SEC_WEBSOCKET_KEY, key),
        Err(_) => unreachable!("a base64 key is a valid header value"),
    };
    if let Some(hook) = &cfg.request_hook {
        request = hook(request, attempt).await.map_err(|e| OpenError::Io(format!("request hook failed: {e}")))?;
    }
    Ok(request)
}

/// The addresses of `host:port`: an IP address as it is (no DNS phase), a name through the resolver
/// hook or the runtime's resolver.
async fn resolve<R: Runtime>(
    rt: &R,
    cfg: &Inner,
    phases: &mut Phases<'_, R>,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, OpenError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let lookup = async {
        let found = match &cfg.resolver {
            Some(hook) => hook(host.to_owned(), port).await,
            None => rt.resolve(host.to_owned(), port).await,
        };
        match found {
            Ok(addrs) if addrs.is_empty() => Err(OpenError::Dns(format!("{host} resolved to no address"))),
            Ok(addrs) => Ok(addrs),
            Err(e) => Err(OpenError::Dns(format!("{host}: {e}"))),
        }
    };
    phases.run(ConnectPhase::Dns, lookup).await
}

/// DNS and TCP to the proxy, then its handshake: a tunnel to the endpoint.
async fn through_proxy<R: Runtime>(
    rt: &R,
    cfg: &Inner,
    phases: &mut Phases<'_, R>,
    ep: &Endpoint,
    proxy: &ProxyUrl,
) -> Result<(Link<R>, SocketAddr), OpenError> {
    let unreachable = |e: String| OpenError::Proxy(ProxyError::Unreachable(format!("{proxy}: {e}")));
    let addrs = resolve(rt, cfg, phases, &proxy.host, proxy.port).await.map_err(|e| match e {
        OpenError::Dns(e) => unreachable(format!("cannot resolve the proxy: {e}")),
        other => other,
    })?;
    // socks5:// resolves the server here (the DNS phase covers both names) and sends the first address:
    // a SOCKS5 request carries one, and trying the next would take a new tunnel; socks5h:// lets the
    // proxy resolve (and race) the name.
    let socks_target = match proxy.kind {
        ProxyKind::Socks5 => {
            let mut found = resolve(rt, cfg, phases, &ep.host, ep.port).await?;
            Some(SocksTarget::Addr(found.swap_remove(0)))
        }
        ProxyKind::Socks5h => Some(match ep.host.parse::<IpAddr>() {
            Ok(ip) => SocksTarget::Addr(SocketAddr::new(ip, ep.port)),
            Err(_) => SocksTarget::Domain(ep.host.clone(), ep.port),
        }),
        _ => None,
    };
    let delay = cfg.eyeballs_delay;
    let (tcp, peer) =
        phases.run(ConnectPhase::Tcp, async { race::race(rt, addrs, delay).await.map_err(unreachable) }).await?;
    // Reset if this attempt is dropped before it opens (the connect timeout).
    let tcp = Tcp::armed(tcp);
    let handshake = async {
        let mut link = match (proxy.kind, &cfg.tls) {
            (ProxyKind::Https, Some(tls)) => {
                let name = ServerName::try_from(proxy.host.clone())
                    .map_err(|e| OpenError::TlsCertificate(format!("invalid proxy name {:?}: {e}", proxy.host)))?;
                match futures_rustls::TlsConnector::from(tls.clone()).connect(name, tcp).await {
                    Ok(s) => MaybeTls::Tls(Box::new(s)),
                    Err(e) if classify::is_certificate_error(&e) => {
                        return Err(OpenError::TlsCertificate(format!("proxy {proxy}: {e}")));
                    }
                    Err(e) => return Err(unreachable(format!("TLS with the proxy failed: {e}"))),
                }
            }
            _ => MaybeTls::Plain(tcp),
        };
        let credentials = proxy.credentials.clone();
        let done = match socks_target {
            Some(target) => tunnel::socks5(&mut link, target, credentials).await,
            None => tunnel::http_connect(&mut link, &ep.host, ep.port, credentials.as_ref()).await,
        };
        done.map(|()| link).map_err(OpenError::Proxy)
    };
    let link = phases.run(ConnectPhase::Proxy, handshake).await?;
    Ok((link, peer))
}
