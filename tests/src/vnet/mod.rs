//! A deterministic harness for the driver: the real `tether` driver, [`Client`] and [`Events`] on a
//! virtual runtime, with no sockets, no threads and no sleeps. quinn-proto's `Pair` is the model.
//!
//! * [`clock`]: a manual clock; its timers complete only when the test moves it.
//! * [`exec`]: a single-threaded executor that polls tasks in wake order, only when the test runs it.
//! * [`pipe`]: in-memory TCP connections with bounded buffers, close (FIN), abort (RST) and a link that
//!   can be cut and healed.
//! * [`net`]: listeners at addresses and the [`tether::Runtime`] that connects to them.
//!
//! The test plays the server: it accepts connections from a [`Listener`] and speaks WebSocket on them
//! with tungstenite's server side ([`accept_ws`]), or writes raw bytes. Time moves only when the test
//! says: [`VNet::run`] runs what is ready at the current instant; [`VNet::wait`] also steps the clock
//! to the earliest deadline whenever nothing is ready, up to a limit of virtual time; [`VNet::advance`]
//! moves it by a duration, firing timers in order. Same test, same schedule: every run is identical.
//!
//! Only the public API is used (`tether::Runtime`, `tether::connect`), so what works here works for
//! any runtime.

pub mod clock;
pub mod exec;
pub mod net;
pub mod pipe;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use tether::{Client, ClientConfig, Events};

pub use clock::Clock;
pub use exec::{Executor, TaskId};
pub use net::{Listener, Mode, VirtualRuntime};
pub use pipe::{End, Link, PipeConfig, TcpEnd};

/// The server's side of a WebSocket on the virtual network.
pub type ServerWs = WebSocketStream<TcpEnd>;

/// Polls per wait without the clock moving before the harness calls it a livelock.
const MAX_POLLS: u64 = 10_000_000;

/// The world: an executor, a clock and a network.
#[derive(Debug)]
pub struct VNet {
    exec: Executor,
    rt: VirtualRuntime,
}

impl Default for VNet {
    fn default() -> Self {
        Self::new()
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

impl VNet {
    /// An empty world; its clock starts at the real `Instant::now()` and only moves when told.
    pub fn new() -> Self {
        let exec = Executor::default();
        let rt = VirtualRuntime { clock: Clock::new(Instant::now()), spawner: exec.spawner(), net: Default::default() };
        Self { exec, rt }
    }

    /// The runtime, to pass to [`tether::connect`].
    pub fn runtime(&self) -> VirtualRuntime {
        self.rt.clone()
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.rt.clock
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.rt.clock.now()
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.rt.clock.elapsed()
    }

    /// Listens at `addr` (`"10.0.0.1:80"`), accepting connections.
    pub fn listen(&self, addr: &str) -> Listener {
        let addr: SocketAddr = addr.parse().unwrap_or_else(|e| panic!("bad address {addr:?}: {e}"));
        self.rt.net.listen(addr)
    }

    /// Starts a client on the virtual runtime ([`tether::connect`]); returns its driver's task too.
    pub fn connect(&mut self, cfg: ClientConfig) -> (Client, Events, TaskId) {
        let (client, events) = tether::connect(self.runtime(), cfg);
        let driver = *self.rt.net.spawned().last().expect("connect spawned the driver");
        (client, events, driver)
    }

    /// Spawns a task (a server, a user) on the executor.
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) -> TaskId {
        self.rt.spawner.spawn(fut)
    }

    /// Whether task `id` is alive.
    pub fn is_alive(&self, id: TaskId) -> bool {
        self.exec.is_alive(id)
    }

    /// Drops task `id` unfinished (as a runtime shutting down would).
    pub fn kill(&mut self, id: TaskId) {
        self.exec.kill(id);
    }

    /// Polls done in all by the executor.
    pub fn polls(&self) -> u64 {
        self.exec.polls
    }

    /// Runs every task ready at the current instant until none is; the clock does not move.
    pub fn run(&mut self) {
        let n = self.exec.run_until_stalled(MAX_POLLS);
        assert!(n < MAX_POLLS, "livelock: {n} polls at {:?} without stalling", self.elapsed());
    }

    /// Moves the clock to the earliest pending deadline (never past `limit`) and runs what it wakes;
    /// false if no deadline is due by `limit`.
    pub fn step(&mut self, limit: Instant) -> bool {
        self.run();
        match self.rt.clock.next_deadline() {
            Some(d) if d <= limit => {
                self.rt.clock.set(d);
                self.run();
                true
            }
            _ => false,
        }
    }

    /// Moves the clock forward by `d`, firing timers in deadline order (running the tasks they wake
    /// at each one's instant).
    pub fn advance(&mut self, d: Duration) {
        let until = self.now() + d;
        while self.step(until) {}
        self.rt.clock.set(until);
        self.run();
    }

    /// Runs `fut` (with the tasks) to completion at the current instant: the clock does not move.
    /// Panics if everything stalls first.
    pub fn block_on<T>(&mut self, fut: impl Future<Output = T>) -> T {
        self.drive(fut, None, "block_on")
    }

    /// Runs `fut` (with the tasks) to completion, stepping the clock to the earliest deadline whenever
    /// nothing is ready, for at most `limit` of virtual time. Panics, saying `what` did not happen, if
    /// it does not complete by then.
    pub fn wait<T>(&mut self, limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
        let until = self.now() + limit;
        self.drive(fut, Some(until), what)
    }

    /// Runs until `cond` holds (checked whenever nothing more can run at the current instant), stepping
    /// the clock to the earliest deadline in between, for at most `limit` of virtual time. Panics, saying
    /// `what` did not happen, if it does not hold by then.
    pub fn wait_until(&mut self, limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
        let until = self.now() + limit;
        loop {
            self.run();
            if cond() {
                return;
            }
            match self.rt.clock.next_deadline() {
                Some(d) if d <= until => {
                    self.rt.clock.set(d);
                }
                next => panic!(
                    "{what}: not by {:?} (next deadline {:?})",
                    until - self.rt.clock.epoch(),
                    next.map(|d| d - self.rt.clock.epoch())
                ),
            }
        }
    }

    fn drive<T>(&mut self, fut: impl Future<Output = T>, until: Option<Instant>, what: &str) -> T {
        let mut fut = pin!(fut);
        let flag = Arc::new(Flag(AtomicBool::new(true)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut polls = 0u64;
        loop {
            if flag.0.swap(false, Ordering::AcqRel)
                && let Poll::Ready(v) = fut.as_mut().poll(&mut cx)
            {
                return v;
            }
            if self.exec.run_one() {
                polls += 1;
                assert!(polls < MAX_POLLS, "{what}: livelock at {:?}", self.elapsed());
                continue;
            }
            if flag.0.load(Ordering::Acquire) {
                continue;
            }
            // Nothing can move at this instant.
            polls = 0;
            match (until, self.rt.clock.next_deadline()) {
                (Some(limit), Some(d)) if d <= limit => {
                    self.rt.clock.set(d);
                }
                _ => panic!(
                    "{what}: stalled at {:?} (next deadline {:?}, limit {:?})",
                    self.elapsed(),
                    self.rt.clock.next_deadline().map(|d| d - self.rt.clock.epoch()),
                    until.map(|u| u - self.rt.clock.epoch())
                ),
            }
        }
    }
}

/// The server's WebSocket handshake on an accepted connection.
pub async fn accept_ws(end: TcpEnd) -> ServerWs {
    match async_tungstenite::accept_async(end).await {
        Ok(ws) => ws,
        Err(e) => panic!("server handshake failed: {e}"),
    }
}
