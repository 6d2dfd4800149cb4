//! A tokio runtime on its own thread, for test servers and proxies: they run the same whatever runtime
//! the client under test uses, and can be started, stopped and dropped from inside any async test.

use std::future::Future;

/// A one-worker tokio runtime. Dropping it stops everything spawned on it, without blocking (so it may
/// be dropped inside another runtime).
pub(crate) struct Background {
    rt: Option<tokio::runtime::Runtime>,
}

impl Background {
    /// Starts the runtime; its worker thread is called `name`.
    ///
    /// # Panics
    /// If the OS refuses a thread or an event loop (out of resources): test support cannot go on.
    pub(crate) fn new(name: &str) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("test support cannot start a tokio runtime: {e}"));
        Self { rt: Some(rt) }
    }

    /// The runtime's handle.
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        match &self.rt {
            Some(rt) => rt.handle(),
            None => unreachable!("the runtime lives until drop"),
        }
    }

    /// Spawns `f` on the runtime.
    pub(crate) fn spawn<F: Future<Output = ()> + Send + 'static>(&self, f: F) -> tokio::task::JoinHandle<()> {
        self.handle().spawn(f)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Binds a listener on `addr` with the standard library (so it works from any context) and hands it
/// to tokio inside the runtime.
pub(crate) fn bind_std(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}
