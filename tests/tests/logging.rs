//! Secrets never reach the logs: header values that may hold credentials, URL query values and proxy
//! credentials are redacted in every span and event the client emits, at every level.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tether::{ClientBuilder, Event};
use tether_chaos::server::{Behavior, TestServer};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn secrets_are_never_logged() {
    let server = TestServer::start(Behavior::Reject { status: 503, retry_after: None });
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // A current-thread runtime: the driver runs on this thread, under this subscriber.
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
        rt.block_on(async {
            let url = format!("{}feed?token=query-s3cret&user=alice", server.url());
            let cfg = ClientBuilder::new(url)
                .header("Authorization", "Bearer header-s3cret")
                .header("Cookie", "session=cookie-s3cret")
                .header("X-Api-Key", "key-s3cret")
                .header("User-Agent", "tether-test")
                .build()
                .expect("valid config");
            let (client, mut events) = tether_tokio::connect(cfg).expect("in a runtime");
            let mut retries = 0;
            let wait = async {
                while let Some(e) = events.next().await {
                    if matches!(e, Event::RetryScheduled { .. }) {
                        retries += 1;
                        if retries == 2 {
                            break;
                        }
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(10), wait).await.expect("two attempts within 10 s");
            let _ = client.close(1000, "done").await;
        });
    });
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    assert!(text.contains("opening"), "the attempt was logged at all:\n{text}");
    assert!(text.contains("tether-test"), "harmless headers are logged:\n{text}");
    assert!(text.contains("<redacted>"), "redaction is visible:\n{text}");
    for secret in ["query-s3cret", "header-s3cret", "cookie-s3cret", "key-s3cret", "alice"] {
        assert!(!text.contains(secret), "{secret} leaked into the logs:\n{text}");
    }
}

/// A fake HTTP proxy on its own thread: reads each CONNECT request and answers 503; returns the
/// requests it saw.
fn refusing_proxy() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(10) {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 2048];
            let mut req = Vec::new();
            while !req.ends_with(b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            log.lock().unwrap_or_else(|e| e.into_inner()).push(String::from_utf8_lossy(&req).into_owned());
            let _ = conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (addr, seen)
}

#[test]
fn proxy_credentials_are_never_logged() {
    let server = TestServer::start(Behavior::Echo);
    let (proxy, requests) = refusing_proxy();
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
        rt.block_on(async {
            let cfg = ClientBuilder::new(server.url())
                .proxy(format!("http://proxy-us3r:pr0xy-s3cret@{proxy}"))
                .build()
                .expect("valid config");
            assert!(!format!("{cfg:?}").contains("pr0xy-s3cret"));
            let (client, mut events) = tether_tokio::connect(cfg).expect("in a runtime");
            let mut retries = 0;
            let wait = async {
                while let Some(e) = events.next().await {
                    if let Event::RetryScheduled { .. } = e {
                        retries += 1;
                        if retries == 2 {
                            break;
                        }
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(10), wait).await.expect("two attempts within 10 s");
            let _ = client.close(1000, "done").await;
        });
    });
    // The credentials did reach the proxy, so they were there to leak.
    let token = "cHJveHktdXMzcjpwcjB4eS1zM2NyZXQ="; // base64("proxy-us3r:pr0xy-s3cret")
    let seen = requests.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(seen.iter().any(|r| r.contains(&format!("Proxy-Authorization: Basic {token}"))), "{seen:?}");
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    assert!(text.contains(&format!("http://{proxy}")), "the proxy itself is logged:\n{text}");
    assert!(text.contains("HTTP 503"), "the proxy's refusal is logged:\n{text}");
    for secret in ["pr0xy-s3cret", "proxy-us3r", token] {
        assert!(!text.contains(secret), "{secret} leaked into the logs:\n{text}");
    }
}
