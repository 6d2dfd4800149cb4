//! Opening one transport: the request (hook), DNS, TCP, TLS, WebSocket upgrade, and the classification
//! of every failure into the core's [`OpenError`].

use std::io;
use std::sync::Arc;
use std::time::Instant;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::tungstenite::handshake::client::generate_key;
use async_tungstenite::tungstenite::http::HeaderValue;
use async_tungstenite::tungstenite::http::header::{
    SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
};
use rustls_pki_types::ServerName;
use tether_core::{ConnectInfo, OpenError, parse_retry_after};

use crate::builder::Inner;
use crate::deflate::DeflateStream;
use crate::runtime::Runtime;
use crate::tls::MaybeTls;

/// An open WebSocket on runtime `R`.
pub(crate) type Ws<R> = WebSocketStream<DeflateStream<MaybeTls<<R as Runtime>::Tcp>>>;

/// Opens a transport; returns it with what was learned opening it.
pub(crate) async fn open<R: Runtime>(rt: R, cfg: Arc<Inner>, attempt: u32) -> Result<(Ws<R>, ConnectInfo), OpenError> {
    let started = Instant::now();
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
        (Some(tcp), _) => tcp,
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

    // permessage-deflate, if the request (after the hook) still offers it.
    let deflate = cfg.deflate.as_ref().filter(|_| request.headers().contains_key(SEC_WEBSOCKET_EXTENSIONS));
    let stream = DeflateStream::new(stream, deflate.is_some());
    let (mut ws, response) =
        async_tungstenite::client_async_with_config(request, stream, Some(cfg.ws)).await.map_err(classify_ws)?;
    let mut info = ConnectInfo::new(started.elapsed());
    info.compression = crate::deflate::accept(&mut ws, deflate, &response)?;
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
