//! Classifying the failures of TLS and of the WebSocket handshake into the core's [`OpenError`].

use std::io;
use std::sync::PoisonError;

use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::tungstenite::error::ProtocolError;
use tether_core::{OpenError, parse_retry_after};

use crate::stream::HeadRecord;

/// Whether a TLS handshake error is a certificate problem (which will not pass by retrying).
pub(crate) fn is_certificate_error(e: &io::Error) -> bool {
    e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).is_some_and(|r| {
        matches!(
            r,
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType
        )
    })
}

/// A TLS handshake error with the server: certificate problems will not pass by retrying; others may.
pub(crate) fn classify_tls(e: io::Error) -> OpenError {
    if is_certificate_error(&e) { OpenError::TlsCertificate(e.to_string()) } else { OpenError::Tls(e.to_string()) }
}

/// A handshake error, with the bytes the handshake read: tungstenite refuses a response older than
/// HTTP/1.1 before it looks at the status, but an `HTTP/1.0 401` from a simple server or proxy is a
/// rejection like any other, classified by its status (and `Retry-After`).
pub(crate) fn classify_handshake(e: WsError, head: &HeadRecord) -> OpenError {
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
fn classify_ws(e: WsError) -> OpenError {
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
