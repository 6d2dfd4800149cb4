//! The virtual network: listeners at socket addresses, and the [`tether::Runtime`] that connects to
//! them, on the harness's clock and executor.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::Instant;

use super::clock::{Clock, Timer};
use super::exec::{Spawner, TaskId};
use super::pipe::{Link, PipeConfig, TcpEnd, pair};

/// What a listener does with a connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Accept it (the test takes it with [`Listener::accept`]).
    Accept,
    /// Refuse it at once (connection refused).
    Refuse,
    /// Never answer it (a dropped SYN): the attempt hangs until the client gives up.
    Blackhole,
}

#[derive(Debug)]
struct Port {
    mode: Mode,
    pipe: PipeConfig,
    backlog: VecDeque<TcpEnd>,
    acceptor: Option<Waker>,
    /// Every connection accepted, in order.
    links: Vec<Link>,
}

#[derive(Debug, Default)]
struct Net {
    ports: HashMap<SocketAddr, Port>,
    /// Tasks spawned through the runtime, in order (the drivers).
    spawned: Vec<TaskId>,
    /// Connection attempts seen, per address.
    attempts: HashMap<SocketAddr, u32>,
}

/// The shared network; cloning shares it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Network {
    net: Arc<Mutex<Net>>,
}

impl Network {
    fn lock(&self) -> MutexGuard<'_, Net> {
        self.net.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn listen(&self, addr: SocketAddr) -> Listener {
        let port = Port {
            mode: Mode::Accept,
            pipe: PipeConfig::default(),
            backlog: VecDeque::new(),
            acceptor: None,
            links: Vec::new(),
        };
        self.lock().ports.insert(addr, port);
        Listener { net: self.clone(), addr }
    }

    pub(crate) fn spawned(&self) -> Vec<TaskId> {
        self.lock().spawned.clone()
    }
}

/// A listening address. Dropping the handle keeps it listening; [`close`](Self::close) stops it.
#[derive(Debug, Clone)]
pub struct Listener {
    net: Network,
    addr: SocketAddr,
}

impl Listener {
    fn with<T>(&self, f: impl FnOnce(&mut Port) -> T) -> T {
        match self.net.lock().ports.get_mut(&self.addr) {
            Some(p) => f(p),
            None => panic!("{} is not listening", self.addr),
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/`.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Changes what it does with the next attempts.
    pub fn set_mode(&self, mode: Mode) {
        self.with(|p| p.mode = mode);
    }

    /// The buffer sizes of the next connections.
    pub fn set_pipe(&self, pipe: PipeConfig) {
        self.with(|p| p.pipe = pipe);
    }

    /// Stops listening: the next attempts are refused; pending connections are dropped.
    pub fn close(&self) {
        self.net.lock().ports.remove(&self.addr);
    }

    /// The next accepted connection (the server's end).
    pub fn accept(&self) -> impl Future<Output = TcpEnd> + '_ {
        std::future::poll_fn(move |cx| {
            self.with(|p| match p.backlog.pop_front() {
                Some(end) => Poll::Ready(end),
                None => {
                    p.acceptor = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
        })
    }

    /// Connections accepted so far (taken or not).
    pub fn accepted(&self) -> usize {
        self.net.lock().ports.get(&self.addr).map_or(0, |p| p.links.len())
    }

    /// The link of the `n`th connection accepted (0-based).
    pub fn link(&self, n: usize) -> Link {
        self.with(|p| p.links[n].clone())
    }

    /// Connection attempts made to it, accepted or not.
    pub fn attempts(&self) -> u32 {
        self.net.lock().attempts.get(&self.addr).copied().unwrap_or(0)
    }
}

/// The [`tether::Runtime`] of the harness: spawns on its executor, reads its clock, arms its timers,
/// connects to its listeners. IP literals resolve to themselves; names do not resolve.
#[derive(Debug, Clone)]
pub struct VirtualRuntime {
    pub(crate) clock: Clock,
    pub(crate) spawner: Spawner,
    pub(crate) net: Network,
}

impl tether::Runtime for VirtualRuntime {
    type Tcp = TcpEnd;
    type Timer = Timer;

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        let id = self.spawner.spawn(fut);
        self.net.lock().spawned.push(id);
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn timer(&self, deadline: Instant) -> Timer {
        self.clock.timer(deadline)
    }

    fn reset_timer(timer: &mut Timer, deadline: Instant) {
        timer.reset(deadline);
    }

    fn resolve(&self, host: String, port: u16) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static {
        let r = host.parse::<IpAddr>().map(|ip| vec![SocketAddr::new(ip, port)]).map_err(|_| {
            io::Error::new(io::ErrorKind::NotFound, format!("{host}: no such host in the virtual network"))
        });
        std::future::ready(r)
    }

    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<TcpEnd>> + Send + 'static {
        let net = self.net.clone();
        let mut first = true;
        std::future::poll_fn(move |_cx| {
            let mut n = net.lock();
            if first {
                first = false;
                *n.attempts.entry(addr).or_default() += 1;
            }
            let Some(p) = n.ports.get_mut(&addr) else {
                return Poll::Ready(Err(io::ErrorKind::ConnectionRefused.into()));
            };
            match p.mode {
                Mode::Refuse => Poll::Ready(Err(io::ErrorKind::ConnectionRefused.into())),
                // Never woken: only the connect timeout ends it.
                Mode::Blackhole => Poll::Pending,
                Mode::Accept => {
                    let (client, server, link) = pair(p.pipe);
                    p.backlog.push_back(server);
                    p.links.push(link);
                    if let Some(w) = p.acceptor.take() {
                        w.wake();
                    }
                    Poll::Ready(Ok(client))
                }
            }
        })
    }

    fn abort_on_drop(tcp: &TcpEnd) -> io::Result<()> {
        tcp.abort_on_drop();
        Ok(())
    }
}
