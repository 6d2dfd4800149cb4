//! A fault-injecting TCP proxy on its own tokio thread: cut every connection, refuse new ones,
//! blackhole (keep sockets open, forward nothing), add delay.
//!
//! Put it between the code under test and any TCP server (a [`TestServer`](crate::server::TestServer)
//! or your own) and point the client at [`FaultProxy::url`]: the faults are the network's, so the
//! client sees what it would see on a real link (a reset, a refused connection, a silent peer).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Default)]
struct Faults {
    refuse: AtomicBool,
    blackhole: AtomicBool,
    delay_us: AtomicU64,
    accepted: AtomicU64,
    conns: Mutex<Vec<AbortHandle>>,
}

/// The proxy. Dropping it stops it and every connection through it.
pub struct FaultProxy {
    /// Held only to keep the proxy's runtime (and so its tasks) alive as long as the proxy.
    _rt: crate::background::Background,
    addr: SocketAddr,
    faults: Arc<Faults>,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:0` forwarding to `upstream`.
    ///
    /// # Panics
    /// If no port on 127.0.0.1 can be bound, or no thread started: a test cannot go on. Use
    /// [`start_at`](Self::start_at) to get the error instead.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = crate::background::bind_std("127.0.0.1:0".parse().expect("literal address"))
            .unwrap_or_else(|e| panic!("fault proxy cannot bind: {e}"));
        Self::start_on(listener, upstream).unwrap_or_else(|e| panic!("no local address: {e}"))
    }

    /// Starts a proxy on `listen` forwarding to `upstream`; unlike [`start`](Self::start) a bind failure
    /// is returned, not a panic.
    pub fn start_at(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<Self> {
        Self::start_on(crate::background::bind_std(listen)?, upstream)
    }

    fn start_on(listener: std::net::TcpListener, upstream: SocketAddr) -> std::io::Result<Self> {
        let rt = crate::background::Background::new("fault-proxy");
        let addr = listener.local_addr()?;
        let faults = Arc::new(Faults::default());
        let f = faults.clone();
        rt.spawn(async move {
            let listener = match TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => panic!("fault proxy cannot listen: {e}"),
            };
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                f.accepted.fetch_add(1, Ordering::SeqCst);
                if f.refuse.load(Ordering::SeqCst) {
                    // Reset at once: the client sees its connection reset. A zero linger never blocks on
                    // drop, which is what the deprecation warns about.
                    #[allow(deprecated)]
                    let _ = client.set_linger(Some(Duration::ZERO));
                    drop(client);
                    continue;
                }
                let f2 = f.clone();
                let task = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::select! {
                        _ = pump(cr, sw, &f2) => {}
                        _ = pump(sr, cw, &f2) => {}
                    }
                });
                let mut conns = f.conns.lock().unwrap_or_else(|e| e.into_inner());
                conns.retain(|c| !c.is_finished());
                conns.push(task.abort_handle());
            }
        });
        Ok(Self { _rt: rt, addr, faults })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Kills every connection through the proxy now (both sides see the socket close).
    pub fn cut(&self) {
        for c in self.faults.conns.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            c.abort();
        }
    }

    /// Resets new connections at once while `on`.
    pub fn refuse(&self, on: bool) {
        self.faults.refuse.store(on, Ordering::SeqCst);
    }

    /// While `on`, stops reading and forwarding in both directions but keeps every socket open: a
    /// half-open link. Senders see their TCP window fill, as with a peer that vanished.
    pub fn blackhole(&self, on: bool) {
        self.faults.blackhole.store(on, Ordering::SeqCst);
    }

    /// Delays every forwarded chunk by `d`.
    pub fn delay(&self, d: Duration) {
        self.faults.delay_us.store(d.as_micros() as u64, Ordering::SeqCst);
    }

    /// Connections accepted so far (refused ones included).
    pub fn accepted(&self) -> u64 {
        self.faults.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

async fn pump(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, f: &Faults) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while f.blackhole.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if f.blackhole.load(Ordering::SeqCst) {
            // Turned on while this chunk was in the proxy's hands: it is lost, as on a dead link.
            continue;
        }
        let d = f.delay_us.load(Ordering::SeqCst);
        if d > 0 {
            tokio::time::sleep(Duration::from_micros(d)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
