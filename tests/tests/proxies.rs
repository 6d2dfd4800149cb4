//! Through real proxies: `tinyproxy` (HTTP CONNECT with Basic auth) and `danted` (SOCKS5 with
//! username/password), started on loopback with generated configurations (`tether_tests::real_proxy`).
//! ws and wss through each; wrong credentials are fatal; a proxy killed and restarted mid-stream is
//! reconnected through, the queue delivered in order; `no_proxy` bypasses the environment's proxy.
//!
//! A missing proxy binary (or danted's system account) skips a test with the reason, and fails it on
//! CI (`CI=true`), where `.ci/run` installs them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use tether::proxy::ProxyEnv;
use tether::{Cause, ConnectPhase, Event, Events, FailReason, OpenError, ProxyError};
use tether_tests::pki::TestPki;
use tether_tests::real_proxy::{Missing, RealProxy, skip_or_fail};
use tether_tests::server::{Behavior, TestServer};

mod common;
use common::events::{connected, fast, secs, until};
use common::runtimes::{AsyncStd, Rt, Smol, Tokio};

async fn failed<R: Rt>(events: &mut Events) -> FailReason {
    match until::<R>(events, secs(15), "failed", |e| matches!(e, Event::Failed(_))).await {
        Event::Failed(why) => why,
        _ => unreachable!("matched Failed"),
    }
}

/// Sends `text` and waits for its echo.
async fn echo<R: Rt>(client: &tether::Client, events: &mut Events, text: &str) {
    client.send(text).await.expect("queued");
    until::<R>(events, secs(10), text, |e| matches!(e, Event::Message(m) if m.as_text() == Some(text))).await;
}

fn proxy_or_skip(test: &str, p: Result<RealProxy, Missing>) -> Option<RealProxy> {
    match p {
        Ok(p) => Some(p),
        Err(why) => {
            skip_or_fail(test, &why);
            None
        }
    }
}

/// ws:// and wss:// (TLS to the server inside the tunnel) through `proxy_url`; both echo, and
/// `Connected` says which proxy and how long each phase took.
async fn ws_and_wss<R: Rt>(proxy_url: String, socks_hostname: bool) {
    ws_and_wss_trusting::<R>(proxy_url, socks_hostname, None).await;
}

/// [`ws_and_wss`] with the servers' certificates from `pki` (made here if `None`).
async fn ws_and_wss_trusting<R: Rt>(proxy_url: String, socks_hostname: bool, pki: Option<TestPki>) {
    let plain = TestServer::start(Behavior::Echo);
    let pki = match pki {
        Some(p) => p,
        None => TestPki::generate("proxy test CA").expect("test PKI"),
    };
    let tls = TestServer::start_tls(Behavior::Echo, pki.server.clone());
    for (url, is_tls) in [(plain.url(), false), (tls.url(), true)] {
        let mut proxy = proxy_url.clone();
        if socks_hostname && is_tls {
            // socks5h: the proxy resolves "localhost".
            proxy = proxy.replacen("socks5://", "socks5h://", 1);
        }
        let cfg = fast(&url).proxy(proxy.as_str()).add_root_certificate_der(pki.ca_der.clone()).build().unwrap();
        let (client, mut events) = R::connect(cfg);
        let info = connected::<R>(&mut events).await;
        let shown = info.proxy.clone().expect("the proxy is on Connected");
        assert!(proxy.starts_with(shown.split("://").next().unwrap_or("")), "{shown} for {proxy}");
        assert!(!shown.contains('@'), "no credentials on Connected: {shown}");
        let phases: Vec<ConnectPhase> = info.phases.iter().map(|(p, _)| *p).collect();
        let mut want = vec![ConnectPhase::Tcp, ConnectPhase::Proxy];
        if is_tls {
            want.push(ConnectPhase::Tls);
        }
        want.push(ConnectPhase::Handshake);
        let dns = proxy.starts_with("socks5://") && is_tls; // socks5:// resolves "localhost" here
        if dns {
            want.insert(0, ConnectPhase::Dns);
        }
        assert_eq!(phases, want, "{url} through {shown}");
        assert_eq!(info.peer, Some(shown_addr(&shown)), "the TCP peer is the proxy");
        echo::<R>(&client, &mut events, &format!("through {shown} to {url}")).await;
        client.close(1000, "done").await.expect("close");
        until::<R>(&mut events, secs(10), "closed", |e| matches!(e, Event::Closed { .. })).await;
    }
    assert_eq!(plain.handshakes(), 1);
    assert_eq!(tls.handshakes(), 1);
}

fn shown_addr(shown: &str) -> std::net::SocketAddr {
    shown.split("://").nth(1).and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("bad proxy {shown}"))
}

#[test]
fn http_connect_ws_and_wss_tokio() {
    let Some(p) = proxy_or_skip("http_connect_ws_and_wss_tokio", RealProxy::tinyproxy(true)) else { return };
    Tokio::block_on(ws_and_wss::<Tokio>(p.url(), false));
}

#[test]
fn http_connect_ws_and_wss_smol() {
    let Some(p) = proxy_or_skip("http_connect_ws_and_wss_smol", RealProxy::tinyproxy(true)) else { return };
    Smol::block_on(ws_and_wss::<Smol>(p.url(), false));
}

#[test]
fn socks5_ws_and_wss_tokio() {
    let Some(p) = proxy_or_skip("socks5_ws_and_wss_tokio", RealProxy::dante(true)) else { return };
    Tokio::block_on(ws_and_wss::<Tokio>(p.url(), false));
}

#[test]
fn socks5h_ws_and_wss_async_std() {
    let Some(p) = proxy_or_skip("socks5h_ws_and_wss_async_std", RealProxy::dante(true)) else { return };
    AsyncStd::block_on(ws_and_wss::<AsyncStd>(p.url(), true));
}

#[test]
fn socks5_without_auth_smol() {
    let Some(p) = proxy_or_skip("socks5_without_auth_smol", RealProxy::dante(false)) else { return };
    Smol::block_on(ws_and_wss::<Smol>(p.url(), false));
}

/// Wrong credentials: fatal at once (no retry), with a message about the proxy's credentials.
async fn wrong_credentials<R: Rt>(proxy_url: String, want_http: bool) {
    let server = TestServer::start(Behavior::Echo);
    let (_client, mut events) = R::connect(fast(&server.url()).proxy(proxy_url.as_str()).build().unwrap());
    let why = failed::<R>(&mut events).await;
    let FailReason::Fatal(Cause::OpenFailed(OpenError::Proxy(ProxyError::Auth(detail)))) = &why else {
        panic!("expected a fatal proxy authentication failure, got {why:?}");
    };
    assert_eq!(detail.contains("HTTP 40"), want_http, "{detail}");
    let line = why.to_string();
    assert!(line.contains("proxy authentication failed") && line.contains("user name and password"), "{line}");
    assert!(!line.contains("wrong-pw"), "the password is never shown: {line}");
    assert_eq!(server.handshakes(), 0);
}

#[test]
fn http_connect_wrong_password_is_fatal() {
    let Some(p) = proxy_or_skip("http_connect_wrong_password_is_fatal", RealProxy::tinyproxy(true)) else { return };
    Tokio::block_on(wrong_credentials::<Tokio>(p.url_with("tether", "wrong-pw"), true));
    // No credentials at all: the same verdict, and the message says where to put them.
    let no_creds = p.url_with("x", "y").replacen("x:y@", "", 1);
    Tokio::block_on(wrong_credentials::<Tokio>(no_creds, true));
}

#[test]
fn socks5_wrong_password_is_fatal() {
    let Some(p) = proxy_or_skip("socks5_wrong_password_is_fatal", RealProxy::dante(true)) else { return };
    Smol::block_on(wrong_credentials::<Smol>(p.url_with(tether_tests::real_proxy::SOCKS_USER, "wrong-pw"), false));
}

/// The proxy dies mid-stream (SIGKILL) and comes back on the same port: the client reconnects
/// through it, and what was sent while it was down arrives after what was sent before, in order.
async fn proxy_restart<R: Rt>(mut proxy: RealProxy) {
    let server = TestServer::start(Behavior::Echo);
    let cfg = fast(&server.url()).proxy(proxy.url()).build().unwrap();
    let (client, mut events) = R::connect(cfg);
    connected::<R>(&mut events).await;
    for i in 0..20 {
        client.send(format!("{i}")).await.unwrap();
    }
    until::<R>(&mut events, secs(10), "echo of 19", |e| matches!(e, Event::Message(m) if m.as_text() == Some("19")))
        .await;
    proxy.kill();
    until::<R>(&mut events, secs(10), "disconnected", |e| matches!(e, Event::Disconnected { .. })).await;
    // Queued while the proxy is down (attempts are refused and retried meanwhile).
    for i in 20..40 {
        client.send(format!("{i}")).await.unwrap();
    }
    until::<R>(&mut events, secs(10), "an attempt refused by the dead proxy", |e| {
        matches!(e, Event::StateChanged { cause: Cause::OpenFailed(OpenError::Proxy(ProxyError::Unreachable(_))), .. })
    })
    .await;
    proxy.restart();
    let info = connected::<R>(&mut events).await;
    assert!(info.proxy.is_some());
    until::<R>(&mut events, secs(10), "echo of 39", |e| matches!(e, Event::Message(m) if m.as_text() == Some("39")))
        .await;
    let got: Vec<String> = server.received().iter().map(|r| String::from_utf8_lossy(&r.data).into_owned()).collect();
    let want: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    assert_eq!(got, want, "every message once, in order");
    assert_eq!(server.handshakes(), 2);
    let s = client.stats();
    assert!(s.errors.proxy >= 1, "refused attempts to the proxy are counted: {:?}", s.errors);
}

#[test]
fn http_proxy_killed_and_restarted_mid_stream() {
    let Some(p) = proxy_or_skip("http_proxy_killed_and_restarted_mid_stream", RealProxy::tinyproxy(true)) else {
        return;
    };
    Tokio::block_on(proxy_restart::<Tokio>(p));
}

#[test]
fn socks_proxy_killed_and_restarted_mid_stream() {
    let Some(p) = proxy_or_skip("socks_proxy_killed_and_restarted_mid_stream", RealProxy::dante(true)) else {
        return;
    };
    Smol::block_on(proxy_restart::<Smol>(p));
}

/// The environment's proxy is used, except for the hosts `no_proxy` lists.
#[test]
fn no_proxy_bypasses_the_environment_proxy() {
    let Some(p) = proxy_or_skip("no_proxy_bypasses_the_environment_proxy", RealProxy::tinyproxy(true)) else {
        return;
    };
    let proxy_url = p.url();
    Tokio::block_on(async move {
        let server = TestServer::start(Behavior::Echo);
        let env = |no_proxy: &'static str| {
            let proxy_url = proxy_url.clone();
            ProxyEnv::with_lookup(move |k| match k {
                "http_proxy" => Some(proxy_url.clone()),
                "no_proxy" => Some(no_proxy.to_owned()),
                _ => None,
            })
        };
        for (no_proxy, through) in [("example.com, 127.0.0.1", false), ("example.com", true), ("*", false)] {
            let cfg = fast(&server.url()).proxy_env(env(no_proxy)).build().unwrap();
            let (client, mut events) = Tokio::connect(cfg);
            let info = connected::<Tokio>(&mut events).await;
            assert_eq!(info.proxy.is_some(), through, "no_proxy={no_proxy:?}");
            assert_eq!(info.phases.iter().any(|(p, _)| *p == ConnectPhase::Proxy), through);
            echo::<Tokio>(&client, &mut events, no_proxy).await;
            client.close(1000, "done").await.unwrap();
        }
    });
}

/// A TLS front for a proxy (what an `https://` proxy is): terminates TLS with `tls` and forwards the
/// bytes to `upstream`, on its own thread and runtime, for the life of the test process.
fn tls_front(upstream: SocketAddr, tls: Arc<rustls::ServerConfig>) -> SocketAddr {
    use async_tungstenite::tokio::TokioAdapter;
    use futures::io::AsyncReadExt;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = futures_rustls::TlsAcceptor::from(tls.clone());
                tokio::spawn(async move {
                    let Ok(client) = acceptor.accept(TokioAdapter::new(tcp)).await else { return };
                    let Ok(up) = tokio::net::TcpStream::connect(upstream).await else { return };
                    let (cr, mut cw) = client.split();
                    let (ur, mut uw) = TokioAdapter::new(up).split();
                    let _ = futures::future::select(
                        std::pin::pin!(futures::io::copy(cr, &mut uw)),
                        std::pin::pin!(futures::io::copy(ur, &mut cw)),
                    )
                    .await;
                });
            }
        });
    });
    addr
}

/// An `https://` proxy (TLS to the proxy, then CONNECT, then the server's own TLS inside for wss://):
/// tinyproxy behind a TLS front whose certificate the client trusts like the servers'.
#[test]
fn https_proxy_ws_and_wss() {
    let Some(p) = proxy_or_skip("https_proxy_ws_and_wss", RealProxy::tinyproxy(true)) else { return };
    let pki = TestPki::generate("https proxy CA").expect("test PKI");
    let front = tls_front(p.addr(), pki.server.clone());
    let url = p.url().replacen("http://", "https://", 1).replacen(&p.addr().to_string(), &front.to_string(), 1);
    Tokio::block_on(ws_and_wss_trusting::<Tokio>(url, false, Some(pki)));
}

/// A fake proxy on its own thread: `answer` speaks to each connection (up to 10).
fn fake_proxy(answer: fn(&mut TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for conn in listener.incoming().take(10) {
            let Ok(mut conn) = conn else { return };
            answer(&mut conn);
        }
    });
    addr
}

/// Reads until the end of an HTTP head (or EOF).
fn read_head(conn: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && matches!(conn.read(&mut byte), Ok(1)) {
        head.push(byte[0]);
    }
}

/// A proxy answering 503 with `Retry-After`: retried, not sooner than it asked.
#[test]
fn proxy_503_is_retried_after_its_retry_after() {
    let proxy = fake_proxy(|conn| {
        read_head(conn);
        let _ = conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n");
    });
    Tokio::block_on(async move {
        let cfg = fast("ws://127.0.0.1:9/").proxy(format!("http://{proxy}")).build().unwrap();
        let (client, mut events) = Tokio::connect(cfg);
        let cause = until::<Tokio>(&mut events, secs(10), "a failed attempt", |e| {
            matches!(e, Event::StateChanged { cause: Cause::OpenFailed(_), .. })
        })
        .await;
        let Event::StateChanged { cause: Cause::OpenFailed(OpenError::Proxy(e)), .. } = cause else {
            panic!("expected a proxy failure, got {cause:?}");
        };
        assert_eq!(e, ProxyError::Http { status: 503, retry_after: Some(secs(1)) });
        let delay =
            match until::<Tokio>(&mut events, secs(5), "retry", |e| matches!(e, Event::RetryScheduled { .. })).await {
                Event::RetryScheduled { delay, .. } => delay,
                _ => unreachable!("matched RetryScheduled"),
            };
        assert!(delay >= secs(1), "Retry-After honoured: {delay:?}");
        let _ = client.close(1000, "done").await;
    });
}

/// SOCKS5 reply codes through the retry policy: 5 (connection refused) is retried like a 502,
/// 2 (not allowed by the ruleset) is fatal like a 403.
#[test]
fn socks_reply_codes_map_to_verdicts() {
    fn socks_replying(code: u8) -> impl Fn(&mut TcpStream) {
        move |conn: &mut TcpStream| {
            let mut greeting = [0u8; 3];
            let mut request = [0u8; 10]; // VER CMD RSV ATYP=1 IPv4 PORT
            if conn.read_exact(&mut greeting).is_ok()
                && conn.write_all(&[5, 0]).is_ok()
                && conn.read_exact(&mut request).is_ok()
            {
                let _ = conn.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
            }
        }
    }
    let refused = fake_proxy(|c| socks_replying(5)(c));
    let forbidden = fake_proxy(|c| socks_replying(2)(c));
    Smol::block_on(async move {
        let cfg = fast("ws://127.0.0.1:9/").proxy(format!("socks5://{refused}")).build().unwrap();
        let (client, mut events) = Smol::connect(cfg);
        let retried = until::<Smol>(&mut events, secs(10), "retry after reply 5", |e| {
            matches!(
                e,
                Event::StateChanged { cause: Cause::OpenFailed(OpenError::Proxy(ProxyError::Socks { reply: 5 })), .. }
            )
        });
        retried.await;
        until::<Smol>(&mut events, secs(5), "retry", |e| matches!(e, Event::RetryScheduled { .. })).await;
        let _ = client.close(1000, "done").await;

        let cfg = fast("ws://127.0.0.1:9/").proxy(format!("socks5://{forbidden}")).build().unwrap();
        let (_client, mut events) = Smol::connect(cfg);
        let why = failed::<Smol>(&mut events).await;
        assert_eq!(why, FailReason::Fatal(Cause::OpenFailed(OpenError::Proxy(ProxyError::Socks { reply: 2 }))));
        assert!(why.to_string().contains("connection not allowed by ruleset"), "{why}");
    });
}
