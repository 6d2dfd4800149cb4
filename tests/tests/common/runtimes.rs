//! The three runtimes a scenario runs on, behind one small trait, and a bounded wait. Shared by the
//! scenario, interop and namespace suites and the Autobahn client (`#[path]`-included there), so a
//! scenario is written once and run on tokio, smol and async-std.
#![allow(dead_code)] // each includer uses its own subset

use std::future::Future;
use std::time::Duration;

use futures::future::{Either, select};
use tether::{Client, ClientConfig, Events};

/// What a scenario needs from the runtime under test.
pub trait Rt: 'static {
    /// Runs `f` to completion on a fresh instance of the runtime.
    fn block_on<F: Future>(f: F) -> F::Output;
    /// Starts a Tether client on the runtime.
    fn connect(cfg: ClientConfig) -> (Client, Events);
    /// The runtime's timer.
    fn sleep(d: Duration) -> impl Future<Output = ()>;
    /// Runs `f` in the background.
    fn spawn<F: Future<Output = ()> + Send + 'static>(f: F);
}

/// tokio, multi-threaded with two workers (the machine has two cores).
pub struct Tokio;
impl Rt for Tokio {
    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio").block_on(f)
    }
    fn connect(cfg: ClientConfig) -> (Client, Events) {
        tether_tokio::connect(cfg).expect("inside a tokio runtime")
    }
    async fn sleep(d: Duration) {
        tokio::time::sleep(d).await
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) {
        tokio::spawn(f);
    }
}

/// smol's global executor.
pub struct Smol;
impl Rt for Smol {
    fn block_on<F: Future>(f: F) -> F::Output {
        smol::block_on(f)
    }
    fn connect(cfg: ClientConfig) -> (Client, Events) {
        tether_smol::connect(cfg).expect("smol needs no runtime handle")
    }
    async fn sleep(d: Duration) {
        smol::Timer::after(d).await;
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) {
        smol::spawn(f).detach();
    }
}

/// async-std (discontinued upstream; tested because tether-async-std exists).
pub struct AsyncStd;
impl Rt for AsyncStd {
    fn block_on<F: Future>(f: F) -> F::Output {
        async_std::task::block_on(f)
    }
    fn connect(cfg: ClientConfig) -> (Client, Events) {
        tether_async_std::connect(cfg).expect("async-std needs no runtime handle")
    }
    async fn sleep(d: Duration) {
        async_std::task::sleep(d).await
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(f: F) {
        async_std::task::spawn(f);
    }
}

/// Bounded wait: `f` must finish within `d`, or the test fails saying what did not happen.
pub async fn within<R: Rt, T>(d: Duration, what: &str, f: impl Future<Output = T>) -> T {
    match select(std::pin::pin!(f), std::pin::pin!(R::sleep(d))).await {
        Either::Left((v, _)) => v,
        Either::Right(_) => panic!("{what}: not within {d:?}"),
    }
}
