//! Carrying the sans-IO handshakes over a `futures::io` stream: the same code on every runtime.

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tether_core::ProxyError;

use super::{Credentials, HttpConnect, Socks5, SocksTarget};

/// An I/O error talking to the proxy: the link to it broke (retried).
fn lost(e: std::io::Error) -> ProxyError {
    ProxyError::Unreachable(format!("connection to the proxy failed during its handshake: {e}"))
}

fn closed() -> ProxyError {
    ProxyError::Unreachable("the proxy closed the connection during its handshake".into())
}

/// Asks an HTTP proxy for a tunnel to `host:port` with `CONNECT`.
pub(crate) async fn http_connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    host: &str,
    port: u16,
    credentials: Option<&Credentials>,
) -> Result<(), ProxyError> {
    let mut hc = HttpConnect::new(host, port, credentials);
    s.write_all(hc.request()).await.map_err(lost)?;
    s.flush().await.map_err(lost)?;
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf).await.map_err(lost)?;
        if n == 0 {
            return Err(closed());
        }
        match hc.handle_input(&buf[..n])? {
            None => {}
            Some(0) => return Ok(()),
            Some(extra) => {
                return Err(ProxyError::Protocol(format!(
                    "the proxy sent {extra} bytes past its CONNECT response before the tunnel was used"
                )));
            }
        }
    }
}

/// Asks a SOCKS5 proxy for a tunnel to `target`.
pub(crate) async fn socks5<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    target: SocksTarget,
    credentials: Option<Credentials>,
) -> Result<(), ProxyError> {
    let mut h = Socks5::new(target, credentials)?;
    let mut buf = [0u8; 512];
    loop {
        let out = h.take_output();
        if !out.is_empty() {
            s.write_all(&out).await.map_err(lost)?;
            s.flush().await.map_err(lost)?;
        }
        if h.is_done() {
            return Ok(());
        }
        let want = h.wants().min(buf.len());
        let n = s.read(&mut buf[..want]).await.map_err(lost)?;
        if n == 0 {
            return Err(closed());
        }
        h.handle_input(&buf[..n])?;
    }
}
