//! Criterion end-to-end benchmark on loopback: how long a tether-tokio client takes to be connected
//! again after its link is cut. tether-chaos provides the echo server and the fault proxy in front of
//! it; one iteration is one `proxy.cut()` → `Event::Connected { reconnect: true }`, with an immediate
//! first retry (so the figure is detection + TCP + WebSocket handshake, no backoff).
//!
//! Real sockets, so noisier than `core`: compare medians of runs on an idle machine.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use tether_chaos::proxy::FaultProxy;
use tether_chaos::server::{Behavior, TestServer};
use tether_tokio::{BackoffConfig, ClientBuilder, Event, Jitter};

/// No iteration may hang the benchmark: a reconnection slower than this is a bug, reported.
const LIMIT: Duration = Duration::from_secs(30);
/// How long a connection must live to count as stable (a cut of a stable connection is retried at once).
const STABLE: Duration = Duration::from_millis(1);

fn reconnect_after_cut(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let server = TestServer::start(Behavior::Echo);
    let proxy = FaultProxy::start(server.addr());
    let backoff = // Every connection counts as stable almost at once, so every cut gets the immediate retry.
BackoffConfig::default().jitter(Jitter::None).immediate_first_retry(true).stable_after(STABLE);
    let config = ClientBuilder::new(proxy.url()).backoff(backoff).heartbeat(None).build().expect("valid config");
    // The client's driver runs on `rt`, while a `block_on` of it is in progress.
    let (client, mut events) = {
        let _in_runtime = rt.enter();
        tether_tokio::connect(config).expect("inside a tokio runtime")
    };
    let mut connected = || {
        rt.block_on(async {
            tokio::time::timeout(LIMIT, async {
                while !matches!(events.next().await, Some(Event::Connected { .. }) | None) {}
            })
            .await
            .expect("the client reconnects")
        })
    };
    connected();
    rt.block_on(async { tokio::time::sleep(STABLE * 10).await });
    let mut g = c.benchmark_group("recovery");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("reconnect_after_cut", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                proxy.cut();
                connected();
                total += start.elapsed();
                // Let the connection become stable (the driver runs only inside `block_on`), so the
                // next cut gets the immediate retry too.
                rt.block_on(async { tokio::time::sleep(STABLE * 10).await });
            }
            total
        })
    });
    g.finish();
    drop(client);
}

criterion_group!(benches, reconnect_after_cut);
criterion_main!(benches);
