//! In-memory TCP connections: two ends, each direction a bounded byte buffer standing for both
//! kernels' socket buffers and the path between them.
//!
//! What the driver can tell apart on a real socket, an end tells apart too:
//! * a writer's buffer is bounded ([`PipeConfig::capacity`]): a peer that does not read makes writes
//!   wait, as a full socket buffer does;
//! * dropping an end closes it (FIN): the peer reads what is buffered, then end of stream;
//! * dropping an end after [`TcpEnd::abort_on_drop`] (SO_LINGER 0) aborts it (RST): what it wrote and
//!   the peer has not read is discarded, and the peer's next read or write fails with a reset;
//! * a [`Link`] can be cut: nothing crosses it (the bytes wait, as the kernel keeps retransmitting them)
//!   until it heals. A reset sent while it is cut arrives when it heals.
//!
//! Every operation is synchronous under one lock per connection; wake-ups go to the executor.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures::io::{AsyncRead, AsyncWrite};

/// The size of a connection's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeConfig {
    /// Bytes one side may have written and the other not yet read, per direction. Default: 64 KiB.
    pub capacity: usize,
}

impl Default for PipeConfig {
    fn default() -> Self {
        Self { capacity: 64 << 10 }
    }
}

/// One direction of a connection.
#[derive(Debug, Default)]
struct Dir {
    buf: VecDeque<u8>,
    /// The writer closed (FIN after the buffered bytes).
    fin: bool,
    /// The writer aborted (RST): the reader fails once the link lets the reset through.
    reset: bool,
    /// The reader is gone: writes fail.
    reader_gone: bool,
    /// Bytes written in all (for tests that count what crossed).
    written: u64,
    /// The writer's end is to be aborted when dropped.
    abort_on_drop: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

impl Dir {
    fn wake_reader(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
    }

    fn wake_writer(&mut self) {
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }
}

#[derive(Debug)]
struct Conn {
    /// `dirs[0]`: client to server; `dirs[1]`: server to client.
    dirs: [Dir; 2],
    cut: bool,
    capacity: usize,
}

/// The path of one connection: cut it and heal it.
#[derive(Debug, Clone)]
pub struct Link {
    conn: Arc<Mutex<Conn>>,
}

fn lock(conn: &Mutex<Conn>) -> MutexGuard<'_, Conn> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Link {
    /// Cuts the path: nothing crosses until [`heal`](Self::heal), in either direction.
    pub fn cut(&self) {
        lock(&self.conn).cut = true;
    }

    /// Heals the path: what waited crosses now.
    pub fn heal(&self) {
        let mut c = lock(&self.conn);
        c.cut = false;
        for d in &mut c.dirs {
            d.wake_reader();
            d.wake_writer();
        }
    }

    /// Bytes the client has written in all.
    pub fn client_written(&self) -> u64 {
        lock(&self.conn).dirs[0].written
    }

    /// How the client's end went away, if it has.
    pub fn client_end(&self) -> End {
        let c = lock(&self.conn);
        let d = &c.dirs[0];
        match (d.reset, d.fin, c.dirs[1].reader_gone) {
            (true, _, _) => End::Reset,
            (false, _, true) => End::Closed,
            _ => End::Open,
        }
    }
}

/// How an end of a connection went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Still there.
    Open,
    /// Dropped normally (FIN after what it wrote).
    Closed,
    /// Dropped with SO_LINGER 0 (RST, what it wrote and the peer had not read discarded).
    Reset,
}

/// One end of an in-memory connection: `futures::io` read and write.
#[derive(Debug)]
pub struct TcpEnd {
    conn: Arc<Mutex<Conn>>,
    /// Index of the direction this end reads; it writes the other one.
    rx: usize,
}

/// A new connection: (client end, server end, its link).
pub fn pair(cfg: PipeConfig) -> (TcpEnd, TcpEnd, Link) {
    let conn = Arc::new(Mutex::new(Conn { dirs: Default::default(), cut: false, capacity: cfg.capacity.max(1) }));
    let client = TcpEnd { conn: conn.clone(), rx: 1 };
    let server = TcpEnd { conn: conn.clone(), rx: 0 };
    (client, server, Link { conn })
}

impl TcpEnd {
    fn tx(&self) -> usize {
        1 - self.rx
    }

    /// Makes dropping this end abort the connection (as SO_LINGER 0 does).
    pub fn abort_on_drop(&self) {
        let tx = self.tx();
        lock(&self.conn).dirs[tx].abort_on_drop = true;
    }

    /// The link of this connection.
    pub fn link(&self) -> Link {
        Link { conn: self.conn.clone() }
    }

    /// Aborts the connection now (RST), as a crashing peer or a middlebox would.
    pub fn reset(self) {
        self.abort_on_drop();
    }
}

impl Drop for TcpEnd {
    fn drop(&mut self) {
        let (rx, tx) = (self.rx, self.tx());
        let mut c = lock(&self.conn);
        let out = &mut c.dirs[tx];
        if out.abort_on_drop {
            // RST: what the peer has not read is discarded, and it learns of the reset.
            out.buf.clear();
            out.reset = true;
        } else {
            out.fin = true;
        }
        out.wake_reader();
        let inbound = &mut c.dirs[rx];
        inbound.reader_gone = true;
        inbound.buf.clear();
        inbound.wake_writer();
    }
}

impl AsyncRead for TcpEnd {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let rx = self.rx;
        let mut c = lock(&self.conn);
        let cut = c.cut;
        let d = &mut c.dirs[rx];
        if cut {
            d.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if d.reset {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if !d.buf.is_empty() {
            let n = buf.len().min(d.buf.len());
            for (dst, src) in buf.iter_mut().zip(d.buf.drain(..n)) {
                *dst = src;
            }
            d.wake_writer();
            return Poll::Ready(Ok(n));
        }
        if d.fin || buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        d.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for TcpEnd {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let (rx, tx) = (self.rx, self.tx());
        let mut c = lock(&self.conn);
        let (cut, capacity) = (c.cut, c.capacity);
        // A reset from the peer fails writes too, once it has crossed.
        if !cut && c.dirs[rx].reset {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        let d = &mut c.dirs[tx];
        if d.fin {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "write after close")));
        }
        if d.reader_gone && !cut {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = capacity.saturating_sub(d.buf.len());
        if room == 0 {
            d.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        d.buf.extend(&buf[..n]);
        d.written += n as u64;
        d.wake_reader();
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Written bytes are in the buffer at once, as in a kernel's.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let tx = self.tx();
        let mut c = lock(&self.conn);
        c.dirs[tx].fin = true;
        c.dirs[tx].wake_reader();
        Poll::Ready(Ok(()))
    }
}
