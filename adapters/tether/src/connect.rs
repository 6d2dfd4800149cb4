//! Opening one transport: the request (hook), DNS, TCP, TLS, WebSocket upgrade, and the classification
//! of every failure into the core's [`OpenError`].

use std::io;
use std::sync::{Arc, PoisonError};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::tungstenite::error::ProtocolError;
use async_tungstenite::tungstenite::handshake::client::generate_key;
use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::http::header::{SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL};
use rustls_pki_types::ServerName;
use tether_core::{ConnectInfo, OpenError, parse_retry_after};

use crate::builder::Inner;
use crate::runtime::Runtime;
use crate::stream::{Head, HeadRecord, Tcp};
use crate::tls::MaybeTls;

/// An open WebSocket on runtime `R`.
pub(crate) type Ws<R> = WebSocketStream<Head<MaybeTls<Tcp<R>>>>;

/// The TCP stream under a WebSocket.
pub(crate) fn tcp_of<R: Runtime>(ws: &mut Ws<R>) -> &mut Tcp<R> {
    match ws.get_mut().get_mut() {
        MaybeTls::Plain(tcp) => tcp,
        MaybeTls::Tls(tls) => tls.get_mut().0,
    }
}

/// Opens a transport; returns it with what was learned opening it.
pub(crate) async fn open<R: Runtime>(rt: R, cfg: Arc<Inner>, attempt: u32) -> Result<(Ws<R>, ConnectInfo), OpenError> {
    let started = rt.now();
    let mut request = cfg.request.clone();
    // RFC 6455, 4.1: the key is a nonce "selected randomly for each connection"; the one the builder's
    // request was made with must not be sent twice.
    match HeaderValue::try_from(generate_key()) {
        Ok(key) => request.headers_mut().insert(SEC_WEBSOCKET_KEY, key),
        Err(_) => unreachable!("a base64 key is a valid header value"),
    };
    if let Some(hook) = &cfg.request_hook {
        request = hook(request, attempt).await.map_err(|e| OpenError::Io(format!("request hook failed: {e}")))?;
    }
    tracing::debug!(headers = %crate::redact::headers(request.headers()), "opening");

    let addrs = rt.resolve(cfg.host.clone(), cfg.port).await.map_err(|e| OpenError::Dns(e.to_string()))?;
    let mut last_err = None;
    let mut tcp = None;
    for addr in addrs {
        match rt.connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e, "TCP connect failed");
                last_err = Some(e);
            }
        }
    }
    let tcp = match (tcp, last_err) {
        // Reset if this attempt is dropped before it opens (the connect timeout).
        (Some(tcp), _) => Tcp::<R>::armed(tcp),
        (None, Some(e)) => return Err(OpenError::Tcp(e.to_string())),
        (None, None) => return Err(OpenError::Dns(format!("{} resolved to no address", cfg.host))),
    };

    let stream = match &cfg.tls {
        None => MaybeTls::Plain(tcp),
        Some(tls) => {
            let name = ServerName::try_from(cfg.host.clone())
                .map_err(|e| OpenError::TlsCertificate(format!("invalid server name {:?}: {e}", cfg.host)))?;
            let s = futures_rustls::TlsConnector::from(tls.clone()).connect(name, tcp).await.map_err(classify_tls)?;
            MaybeTls::Tls(Box::new(s))
        }
    };

    let record = HeadRecord::default();
    let stream = Head::recording(stream, record.clone());
    let (mut ws, response) = match async_tungstenite::client_async_with_config(request, stream, Some(cfg.ws)).await {
        Ok(r) => r,
        Err(e) => return Err(classify_handshake(e, &record)),
    };
    ws.get_mut().stop();
    tcp_of(&mut ws).keep();
    let mut info = ConnectInfo::new(rt.now().saturating_duration_since(started));
    // tungstenite has checked that the server chose one of the offered subprotocols.
    info.subprotocol =
        response.headers().get(SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()).map(|p| p.trim().to_owned());
    Ok((ws, info))
}

/// A TLS handshake error: certificate problems will not pass by retrying; others may.
fn classify_tls(e: io::Error) -> OpenError {
    let cert = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).is_some_and(|r| {
        matches!(
            r,
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType
        )
    });
    if cert { OpenError::TlsCertificate(e.to_string()) } else { OpenError::Tls(e.to_string()) }
}

/// A handshake error, with the bytes the handshake read: tungstenite refuses a response older than
/// HTTP/1.1 before it looks at the status, but an `HTTP/1.0 401` from a simple server or proxy is a
/// rejection like any other, classified by its status (and `Retry-After`).
fn classify_handshake(e: WsError, head: &HeadRecord) -> OpenError {
    if let WsError::Protocol(ProtocolError::WrongHttpVersion) = &e
        && let Some((status, retry_after)) =
            crate::stream::rejection(&head.lock().unwrap_or_else(PoisonError::into_inner))
        && status != 101
    {
        return OpenError::Http { status, retry_after };
    }
    classify_ws(e)
}

/// A handshake error from the WebSocket library.
pub(crate) fn classify_ws(e: WsError) -> OpenError {
    match e {
        WsError::Http(response) => {
            let retry_after =
                response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
            OpenError::Http { status: response.status().as_u16(), retry_after }
        }
        WsError::Io(e) => OpenError::Io(e.to_string()),
        WsError::Protocol(p) => OpenError::Protocol(p.to_string()),
        other => OpenError::Protocol(other.to_string()),
    }
}
