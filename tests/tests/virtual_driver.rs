//! The driver on virtual time (`tether_tests::vnet`): the real driver, `Client` and `Events` on an
//! in-memory network, a manual clock and a deterministic executor, the test playing the server. No
//! sockets, no sleeps: every expectation is exact, and every run the same.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tether::{BackoffConfig, Cause, ClientBuilder, Event, Events, HeartbeatConfig, Jitter};
use tether_tests::vnet::{Listener, ServerWs, VNet, accept_ws};

const ADDR: &str = "10.0.0.1:80";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A builder with exact, jitter-free timings and no heartbeat unless a test sets one.
fn builder(l: &Listener) -> ClientBuilder {
    ClientBuilder::new(l.url()).seed(1).heartbeat(None).connect_timeout(ms(1_000)).close_timeout(ms(1_000)).backoff(
        BackoffConfig {
            base: ms(100),
            max_delay: ms(100),
            jitter: Jitter::None,
            stable_after: ms(500),
            ..BackoffConfig::default()
        },
    )
}

/// Reads events until one matches `pred`, within `limit` of virtual time; returns it with the virtual
/// time it was read at, and keeps every event read in `seen`.
fn until(
    net: &mut VNet,
    events: &mut Events,
    seen: &mut Vec<Event>,
    limit: Duration,
    what: &str,
    mut pred: impl FnMut(&Event) -> bool,
) -> (Event, Instant) {
    let e = net.wait(limit, what, async {
        loop {
            match events.next().await {
                Some(e) => {
                    seen.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                }
                None => panic!("{what}: the event stream ended"),
            }
        }
    });
    (e, net.now())
}

fn connected(e: &Event) -> bool {
    matches!(e, Event::Connected { .. })
}

/// Accepts the next connection and completes the WebSocket handshake on it.
fn accept(net: &mut VNet, l: &Listener) -> ServerWs {
    net.wait(ms(10), "the client's connection", async {
        let end = l.accept().await;
        accept_ws(end).await
    })
}

#[test]
fn echo_on_virtual_time() {
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let (client, mut events, _driver) = net.connect(builder(&l).build().unwrap());
    let mut server = accept(&mut net, &l);
    let mut seen = Vec::new();
    until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    net.block_on(client.send("hello")).unwrap();
    let m = net.block_on(server.next()).unwrap().unwrap();
    assert_eq!(m.to_text().unwrap(), "hello");
    net.block_on(server.send(m)).unwrap();
    let (e, _) = until(&mut net, &mut events, &mut seen, ms(1), "the echo", |e| matches!(e, Event::Message(_)));
    assert!(matches!(e, Event::Message(m) if m.as_text() == Some("hello")));
    // No virtual time passed: everything happened at the first instant.
    assert_eq!(net.elapsed(), Duration::ZERO);
}

#[test]
fn heartbeat_detects_a_silent_server_at_exactly_interval_plus_pong_timeout() {
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let hb = HeartbeatConfig { interval: ms(1_000), pong_timeout: ms(400), ..HeartbeatConfig::default() };
    let (_client, mut events, _driver) = net.connect(builder(&l).heartbeat(Some(hb.clone())).build().unwrap());
    // The server completes the handshake, then never reads again: the ping is never answered.
    let _server = accept(&mut net, &l);
    let mut seen = Vec::new();
    let (_, at_connect) = until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    let (e, at_dead) = until(&mut net, &mut events, &mut seen, ms(10_000), "the dead link", |e| {
        matches!(e, Event::Disconnected { .. })
    });
    assert!(matches!(e, Event::Disconnected { cause: Cause::Heartbeat(_), .. }), "{e:?}");
    assert_eq!(at_dead - at_connect, hb.interval + hb.pong_timeout);
}

/// A waker whose registered copies can be counted (each holds a reference).
struct Counted;

impl std::task::Wake for Counted {
    fn wake(self: std::sync::Arc<Self>) {}
}

/// Copies of `waker` held elsewhere than `arc` and `waker` themselves.
fn registered(arc: &std::sync::Arc<Counted>) -> usize {
    std::sync::Arc::strong_count(arc) - 2
}

#[test]
fn waker_leak_dropped_finished_and_send_futures_leave_at_most_one_waker() {
    use std::future::Future;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};
    use tether::{Overflow, QueueConfig};

    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let queue = QueueConfig { max_messages: 1, overflow: Overflow::Reject, ..QueueConfig::default() };
    let (client, _events, _driver) = net.connect(builder(&l).queue(queue).build().unwrap());
    net.run();
    let arc = Arc::new(Counted);
    let waker = Waker::from(arc.clone());
    let mut cx = Context::from_waker(&waker);
    // A `select!` loop over `finished()` polls a fresh future every turn and drops it.
    for _ in 0..10_000 {
        let mut f = std::pin::pin!(client.finished());
        assert!(f.as_mut().poll(&mut cx).is_pending());
    }
    assert!(registered(&arc) <= 1, "{} wakers left by 10 000 dropped finished() futures", registered(&arc));
    // The same with sends waiting for room in a full queue.
    client.try_send("fills the queue").unwrap();
    for _ in 0..10_000 {
        let mut f = std::pin::pin!(client.send("waits"));
        assert!(matches!(f.as_mut().poll(&mut cx), Poll::Pending));
    }
    assert!(registered(&arc) <= 1, "{} wakers left by 10 000 dropped send() futures", registered(&arc));
}
