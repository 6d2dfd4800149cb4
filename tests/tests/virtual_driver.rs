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
    ClientBuilder::new(l.url())
        .seed(1)
        .heartbeat(None)
        .connect_timeout(ms(1_000))
        .close_timeout(ms(1_000))
        .backoff(BackoffConfig::default().base(ms(100)).max_delay(ms(100)).jitter(Jitter::None).stable_after(ms(500)))
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
    let hb = HeartbeatConfig::default().interval(ms(1_000)).pong_timeout(ms(400));
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
    let queue = QueueConfig::default().max_messages(1).overflow(Overflow::Reject);
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

/// Answers the next connection's upgrade request with `response`, byte for byte, then closes.
fn answer_raw(net: &mut VNet, l: &Listener, response: &'static str) {
    use futures::{AsyncReadExt, AsyncWriteExt};
    net.wait(ms(10), "the raw answer", async {
        let mut end = l.accept().await;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(end.read(&mut byte).await.unwrap(), 1, "the request ended early");
            head.push(byte[0]);
        }
        end.write_all(response.as_bytes()).await.unwrap();
    });
}

#[test]
fn http10_rejection_401_is_fatal() {
    use tether::{FailReason, OpenError};
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let (_client, mut events, _driver) = net.connect(builder(&l).build().unwrap());
    answer_raw(&mut net, &l, "HTTP/1.0 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
    let mut seen = Vec::new();
    let (e, _) = until(&mut net, &mut events, &mut seen, ms(10), "the verdict", |e| matches!(e, Event::Failed(_)));
    let Event::Failed(FailReason::Fatal(Cause::OpenFailed(OpenError::Http { status, .. }))) = e else {
        panic!("HTTP/1.0 401 must be fatal like HTTP/1.1 401: {e:?} after {seen:?}");
    };
    assert_eq!(status, 401);
    assert_eq!(l.attempts(), 1);
}

#[test]
fn http10_rejection_503_honours_retry_after() {
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let (_client, mut events, _driver) = net.connect(builder(&l).build().unwrap());
    let rejected_at = net.now();
    answer_raw(&mut net, &l, "HTTP/1.0 503 Service Unavailable\r\nRetry-After: 7\r\n\r\n");
    let mut seen = Vec::new();
    let (e, _) =
        until(&mut net, &mut events, &mut seen, ms(10), "the retry", |e| matches!(e, Event::RetryScheduled { .. }));
    let Event::RetryScheduled { delay, at, .. } = e else { unreachable!() };
    // The server's 7 s, not the 100 ms backoff.
    assert_eq!((delay, at), (Duration::from_secs(7), rejected_at + Duration::from_secs(7)));
    // The second attempt comes exactly then.
    net.wait_until(Duration::from_secs(8), "the second attempt", || l.attempts() == 2);
    assert_eq!(net.now(), rejected_at + Duration::from_secs(7));
}

#[test]
fn a_client_whose_driver_task_is_gone_behaves_as_failed() {
    use tether::{Outcome, SendError, State};
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let (client, mut events, driver) = net.connect(builder(&l).build().unwrap());
    let _server = accept(&mut net, &l);
    let mut seen = Vec::new();
    until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    // Queued; the driver, woken, has not run yet: `block_on` returns as soon as the send completes.
    let receipt = net.block_on(client.send_with_receipt("never written")).unwrap();
    net.kill(driver);
    assert!(!net.is_alive(driver));
    // Everything that waits returns, nothing hangs, and the client says it cannot work any more.
    assert_eq!(net.block_on(receipt), Outcome::Aborted);
    assert_eq!(net.block_on(events.next()), None);
    net.block_on(client.finished());
    assert_eq!(client.state(), State::Failed);
    assert!(matches!(client.try_send("x"), Err(SendError::Inactive { state: State::Failed, .. })));
    assert!(matches!(net.block_on(client.send("x")), Err(SendError::Inactive { state: State::Failed, .. })));
    assert!(matches!(
        net.block_on(client.send_with_receipt("x")),
        Err(SendError::Inactive { state: State::Failed, .. })
    ));
    net.block_on(client.close(1000, "bye")).unwrap();
    // No virtual time passed: nothing waited on a timer.
    assert_eq!(net.elapsed(), Duration::ZERO);
}

/// Polls `fut` once with a waker that does nothing (the test decides when to poll again).
fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> std::task::Poll<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(fut).poll(&mut cx)
}

#[test]
fn send_pauses_once_every_512_messages_the_driver_has_not_taken() {
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let (client, mut events, _driver) = net.connect(builder(&l).build().unwrap());
    let _server = accept(&mut net, &l);
    let mut seen = Vec::new();
    until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    // The driver does not run between these polls: a loop of sends that never waits.
    for i in 0..512 {
        let mut f = Box::pin(client.send(format!("m{i}")));
        assert!(poll_once(&mut f).is_ready(), "send {i} paused");
    }
    let mut f = Box::pin(client.send("m512"));
    assert!(poll_once(&mut f).is_pending(), "the 513th send lets the driver run first");
    assert_eq!(client.stats().queue_len, 512, "and has not queued its message yet");
    // The driver takes the 512 (one batch) and writes them; the send then completes.
    net.run();
    assert_eq!(client.stats().messages_sent, 512);
    assert!(poll_once(&mut f).is_ready());
    // A dropped paused send has not queued its message (cancel-safe). 512 waiting again:
    for i in 513..1024 {
        client.try_send(format!("m{i}")).unwrap();
    }
    let mut f = Box::pin(client.send("dropped"));
    assert!(poll_once(&mut f).is_pending());
    drop(f);
    assert_eq!(client.stats().messages_accepted, 1024);
}

#[test]
fn backpressure_when_the_queue_is_full_and_the_server_does_not_read() {
    use tether::{Outcome, Overflow, QueueConfig, SendError};
    use tether_tests::vnet::PipeConfig;
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    // Socket buffers of 1 KiB: three 256-byte messages fill them.
    l.set_pipe(PipeConfig { capacity: 1024 });
    let queue = QueueConfig::default().max_messages(8).overflow(Overflow::Reject);
    let (client, mut events, _driver) = net.connect(builder(&l).queue(queue).build().unwrap());
    let mut server = accept(&mut net, &l);
    let mut seen = Vec::new();
    until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    let payload = "x".repeat(256);
    let ids: Vec<_> = (0..8).map(|_| client.try_send(payload.as_str()).unwrap()).collect();
    assert!(matches!(client.try_send("ninth"), Err(SendError::Full(_))));
    // The driver writes all 8, but cannot flush them: none is `Sent`, the queue stays full.
    net.run();
    let s = client.stats();
    assert_eq!((s.queue_len, s.queue_in_flight, s.messages_sent), (8, 8, 0));
    let mut ninth = Box::pin(client.send("ninth"));
    assert!(poll_once(&mut ninth).is_pending(), "a send waits while the queue is full");
    net.run();
    assert!(!seen.iter().any(|e| matches!(e, Event::Outcome { .. })));
    // The server reads: the flush completes, the 8 are Sent, the queue has room, the send completes.
    for _ in 0..8 {
        let m = net.block_on(server.next()).unwrap().unwrap();
        assert_eq!(m.len(), 256);
    }
    let ninth = net.block_on(ninth).unwrap();
    let m = net.block_on(server.next()).unwrap().unwrap();
    assert_eq!(m.to_text().unwrap(), "ninth");
    let mut outcomes = Vec::new();
    until(&mut net, &mut events, &mut seen, ms(1), "the outcomes", |e| {
        if let Event::Outcome { id, outcome } = e {
            outcomes.push((*id, *outcome));
        }
        outcomes.len() == 9
    });
    let expected: Vec<_> = ids.iter().chain([&ninth]).map(|id| (*id, Outcome::Sent)).collect();
    assert_eq!(outcomes, expected);
    // The refused `try_send` is told when there is room again.
    assert_eq!(seen.iter().filter(|e| matches!(e, Event::QueueUnblocked)).count(), 1);
    assert_eq!(net.elapsed(), Duration::ZERO);
}

#[test]
fn a_deadline_moved_later_fires_at_the_later_instant() {
    // Receive-idle detection only: its deadline moves later with every frame received.
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let hb = HeartbeatConfig::default()
        .interval(Duration::from_secs(3_600))
        .pong_timeout(Duration::from_secs(3_600))
        .receive_idle(Some(ms(1_000)));
    let (_client, mut events, _driver) = net.connect(builder(&l).heartbeat(Some(hb)).build().unwrap());
    let mut server = accept(&mut net, &l);
    let mut seen = Vec::new();
    let (_, t0) = until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    net.advance(ms(600));
    net.block_on(server.send("alive".into())).unwrap();
    until(&mut net, &mut events, &mut seen, ms(1), "the message", |e| matches!(e, Event::Message(_)));
    // Nothing happens at 1 s (the first deadline); the link is declared dead at 1.6 s, exactly.
    let (e, dead_at) = until(&mut net, &mut events, &mut seen, ms(5_000), "the dead link", |e| {
        matches!(e, Event::Disconnected { .. })
    });
    assert!(matches!(e, Event::Disconnected { cause: Cause::Heartbeat(tether::DeadLink::ReceiveIdle), .. }), "{e:?}");
    assert_eq!(dead_at - t0, ms(1_600));
}

#[test]
fn a_deadline_moved_earlier_fires_at_the_earlier_instant() {
    // A ping every hour; then a close with a 250 ms close timeout that the server never answers.
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let hb = HeartbeatConfig::default().interval(Duration::from_secs(3_600)).pong_timeout(Duration::from_secs(10));
    let cfg = builder(&l).heartbeat(Some(hb)).close_timeout(ms(250)).build().unwrap();
    let (client, mut events, _driver) = net.connect(cfg);
    let _server = accept(&mut net, &l);
    let mut seen = Vec::new();
    until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    net.advance(ms(100));
    let closing_at = net.now();
    let closed = net.wait(ms(1_000), "the close", client.close(1000, "bye"));
    closed.unwrap();
    let (e, closed_at) =
        until(&mut net, &mut events, &mut seen, ms(1), "the close event", |e| matches!(e, Event::Closed { .. }));
    assert!(matches!(e, Event::Closed { cause: Cause::CloseTimeout, .. }), "{e:?}");
    assert_eq!(closed_at - closing_at, ms(250));
}

#[test]
fn a_transport_that_closes_while_writes_are_pending() {
    use tether::{InFlightPolicy, Outcome, QueueConfig};
    use tether_tests::vnet::PipeConfig;
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    l.set_pipe(PipeConfig { capacity: 1024 });
    let queue = QueueConfig::default().in_flight(InFlightPolicy::Requeue);
    let (client, mut events, _driver) = net.connect(builder(&l).queue(queue).build().unwrap());
    let server = accept(&mut net, &l);
    let mut seen = Vec::new();
    until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    // 8 KiB: the first KiB fills the socket buffer, the rest waits in the driver's write buffer.
    let handshake = l.link(0).client_written();
    let big = client.try_send("y".repeat(8 << 10)).unwrap();
    net.run();
    assert_eq!(l.link(0).client_written() - handshake, 1024);
    assert_eq!(client.stats().messages_sent, 0);
    // The server goes away without reading: the pending write fails.
    drop(server);
    let (e, _) =
        until(&mut net, &mut events, &mut seen, ms(1), "the loss", |e| matches!(e, Event::Disconnected { .. }));
    assert!(matches!(e, Event::Disconnected { cause: Cause::TransportFailed(_), .. }), "{e:?}");
    // Never reported sent; requeued (this policy), then written on the next connection.
    assert!(!seen.iter().any(|e| matches!(e, Event::Outcome { id, .. } if *id == big)));
    assert!(seen.iter().any(|e| matches!(e, Event::Requeued { id } if *id == big)));
    let mut server = net.wait(ms(1_000), "the reconnection", async {
        let end = l.accept().await;
        accept_ws(end).await
    });
    let m = net.block_on(server.next()).unwrap().unwrap();
    assert_eq!(m.len(), 8 << 10);
    until(
        &mut net,
        &mut events,
        &mut seen,
        ms(1),
        "the outcome",
        |e| matches!(e, Event::Outcome { id, outcome: Outcome::Sent } if *id == big),
    );
}

#[test]
fn stale_bytes_of_a_dead_link_never_reach_the_server_after_the_next_connection() {
    // Issue 11, defect 1: the old connection's unacknowledged bytes, retransmitted once the path
    // heals, must not arrive after the new connection's. Aborting it (RST) discards them.
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let hb = HeartbeatConfig::default().interval(ms(1_000)).pong_timeout(ms(400));
    let (client, mut events, _driver) = net.connect(builder(&l).heartbeat(Some(hb)).build().unwrap());
    let mut old = accept(&mut net, &l);
    let mut seen = Vec::new();
    until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    net.block_on(client.send("c1-0")).unwrap();
    assert_eq!(net.block_on(old.next()).unwrap().unwrap().to_text().unwrap(), "c1-0");
    // The path breaks; what the client sends now waits in the "kernel", retransmitted in vain.
    l.link(0).cut();
    for i in 1..=3 {
        net.block_on(client.send(format!("c1-{i}"))).unwrap();
    }
    net.run();
    until(&mut net, &mut events, &mut seen, ms(2_000), "the dead link", |e| matches!(e, Event::Disconnected { .. }));
    assert_eq!(l.link(0).client_end(), tether_tests::vnet::End::Reset, "a connection given up on is reset");
    // The next connection carries the next messages.
    let mut new = net.wait(ms(1_000), "the reconnection", async {
        let end = l.accept().await;
        accept_ws(end).await
    });
    net.block_on(client.send("c2-0")).unwrap();
    assert_eq!(net.block_on(new.next()).unwrap().unwrap().to_text().unwrap(), "c2-0");
    // Then the old path heals: nothing of the old connection may arrive any more.
    l.link(0).heal();
    let late = net.block_on(old.next());
    assert!(
        !matches!(&late, Some(Ok(m)) if m.is_text()),
        "a message of the dead connection arrived after the new connection's first: {late:?}"
    );
}

#[test]
fn remote_close_then_eof_counts_one_remote_close_and_no_stale_event() {
    // Issue 11, defect 7: the server's close frame, then the end of the connection. The driver reports
    // both; the second used to be counted as a stale event.
    use async_tungstenite::tungstenite::Message as WsMessage;
    use async_tungstenite::tungstenite::protocol::CloseFrame;
    use tether::CloseFrame as Frame;
    use tether_tests::vnet::End;
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let (client, mut events, _driver) = net.connect(builder(&l).build().unwrap());
    let mut server = accept(&mut net, &l);
    let mut seen = Vec::new();
    until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    let close = CloseFrame { code: 1001.into(), reason: "going away".into() };
    net.block_on(server.send(WsMessage::Close(Some(close)))).unwrap();
    // The client answers the close frame; the server then ends the connection (tungstenite's server
    // closes TCP once its close handshake is done).
    let reply = net.block_on(server.next());
    assert!(matches!(&reply, Some(Ok(WsMessage::Close(Some(c)))) if u16::from(c.code) == 1001), "{reply:?}");
    assert!(net.block_on(server.next()).is_none());
    drop(server);
    let (e, _) = until(&mut net, &mut events, &mut seen, ms(1), "the disconnection", |e| {
        matches!(e, Event::Disconnected { .. })
    });
    let expected = Frame { code: 1001, reason: "going away".into() };
    assert!(matches!(&e, Event::Disconnected { cause: Cause::RemoteClosed(Some(f)), .. } if *f == expected), "{e:?}");
    net.run();
    // The client's end closed normally once the server's had (no reset after a completed handshake).
    assert_eq!(l.link(0).client_end(), End::Closed);
    let s = client.stats();
    assert_eq!((s.errors.remote_close, s.stale_events), (1, 0));
}

#[test]
fn a_user_close_completes_the_handshake_and_closes_the_socket_normally() {
    use async_tungstenite::tungstenite::Message as WsMessage;
    use tether_tests::vnet::End;
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let (client, mut events, driver) = net.connect(builder(&l).build().unwrap());
    let mut server = accept(&mut net, &l);
    let mut seen = Vec::new();
    until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    net.block_on(client.send("last words")).unwrap();
    // The server reads the message, then the close frame (tungstenite answers it and ends).
    net.spawn(async move {
        while let Some(Ok(m)) = server.next().await {
            if let WsMessage::Close(c) = m {
                assert_eq!(c.map(|c| u16::from(c.code)), Some(4000));
            }
        }
    });
    net.wait(ms(10), "the close", client.close(4000, "done")).unwrap();
    let (e, _) = until(&mut net, &mut events, &mut seen, ms(1), "closed", |e| matches!(e, Event::Closed { .. }));
    assert!(matches!(e, Event::Closed { cause: Cause::CloseCompleted, .. }), "{e:?}");
    net.run();
    assert!(!net.is_alive(driver));
    assert_eq!(l.link(0).client_end(), End::Closed);
    let s = client.stats();
    assert_eq!((s.messages_sent, s.stale_events), (1, 0));
    assert_eq!(net.elapsed(), Duration::ZERO);
}

/// A server that completes the handshake, writes `frame` (raw bytes), then reads until the client's
/// close frame, which it answers (tungstenite does) before it closes; returns the close code seen.
fn violation_answer(cfg: ClientBuilder, frame: Vec<u8>) -> (VNet, u16, Vec<Event>, tether::Client) {
    use async_tungstenite::tungstenite::Message as WsMessage;
    use futures::AsyncWriteExt;
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let (client, mut events, _driver) = net.connect(cfg.url(l.url()).build().unwrap());
    let mut server = accept(&mut net, &l);
    let mut seen = Vec::new();
    until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    net.block_on(async {
        server.get_mut().write_all(&frame).await.unwrap();
    });
    let code = net.wait(ms(10), "the client's close frame", async {
        match server.next().await {
            Some(Ok(WsMessage::Close(Some(c)))) => u16::from(c.code),
            Some(Ok(m)) => panic!("the server got {m:?}, not a close frame"),
            other => panic!("the connection ended without a close frame: {other:?}"),
        }
    });
    // The server's reply goes out; its side then ends.
    assert!(net.block_on(server.next()).is_none());
    drop(server);
    until(&mut net, &mut events, &mut seen, ms(1), "the loss", |e| matches!(e, Event::Disconnected { .. }));
    net.run();
    let end = l.link(0).client_end();
    assert_eq!(end, tether_tests::vnet::End::Closed, "after the close handshake the socket is closed, not reset");
    (net, code, seen, client)
}

#[test]
fn violation_invalid_utf8_is_answered_with_close_1007() {
    // Issue 11, defect 2: RFC 6455 7.1.7 and 8.1.
    let (_net, code, seen, client) = violation_answer(builder_at(), raw_text(&[0xff, 0xfe, 0xfd]));
    assert_eq!(code, 1007);
    let lost = seen.iter().find(|e| matches!(e, Event::Disconnected { .. })).unwrap();
    assert!(
        matches!(
            lost,
            Event::Disconnected {
                cause: Cause::TransportFailed(tether::TransportError::Violation {
                    kind: tether::core::Violation::InvalidUtf8,
                    ..
                }),
                next_attempt_at: Some(_),
                ..
            }
        ),
        "{lost:?}"
    );
    let s = client.stats();
    assert_eq!((s.errors.protocol, s.stale_events), (1, 0));
}

#[test]
fn violation_bad_opcode_reserved_bits_or_masked_frame_is_answered_with_close_1002() {
    for (what, frame) in [
        ("a reserved data opcode", raw_frame(0x83, b"x")),
        ("a reserved control opcode", raw_frame(0x8B, b"")),
        ("a reserved bit", raw_frame(0xC1, b"x")),
        ("a masked server frame", vec![0x81, 0x81, 1, 2, 3, 4, b'x' ^ 1]),
        ("a continuation without a start", raw_frame(0x80, b"x")),
    ] {
        let (_net, code, _, client) = violation_answer(builder_at(), frame);
        assert_eq!(code, 1002, "{what}");
        assert_eq!(client.stats().stale_events, 0, "{what}");
    }
}

#[test]
fn violation_message_over_the_limit_is_answered_with_close_1009() {
    let (_net, code, _, _client) =
        violation_answer(builder_at().max_message_size(Some(1024)), raw_frame(0x82, &[0u8; 2000]));
    assert_eq!(code, 1009);
    let (_net, code, _, _client) =
        violation_answer(builder_at().max_frame_size(Some(1024)), raw_frame(0x82, &[0u8; 2000]));
    assert_eq!(code, 1009);
}

#[test]
fn a_failed_connection_is_read_beside_the_next_one_and_reset_after_the_close_timeout() {
    use futures::AsyncWriteExt;
    use tether_tests::vnet::End;
    // The server sends invalid UTF-8, then never reads again: the client's close frame is never
    // answered. The client reconnects after the backoff (100 ms) while the failed connection waits for
    // its end, and resets it when the close timeout (1 s) passes.
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let (client, mut events, _driver) = net.connect(builder(&l).build().unwrap());
    let mut server = accept(&mut net, &l);
    let mut seen = Vec::new();
    until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    net.block_on(async { server.get_mut().write_all(&raw_text(&[0xc3, 0x28])).await.unwrap() });
    let (_, failed_at) =
        until(&mut net, &mut events, &mut seen, ms(1), "the loss", |e| matches!(e, Event::Disconnected { .. }));
    let mut second = net.wait(ms(200), "the next connection", async {
        let end = l.accept().await;
        accept_ws(end).await
    });
    until(&mut net, &mut events, &mut seen, ms(1), "reconnected", connected);
    assert_eq!(net.now() - failed_at, ms(100));
    assert_eq!(l.link(0).client_end(), End::Open, "the failed connection waits for its end");
    // The new connection works meanwhile.
    net.block_on(client.send("on the second")).unwrap();
    assert_eq!(net.block_on(second.next()).unwrap().unwrap().to_text().unwrap(), "on the second");
    net.wait_until(ms(2_000), "the reset", || l.link(0).client_end() != End::Open);
    assert_eq!(l.link(0).client_end(), End::Reset);
    assert_eq!(net.now() - failed_at, ms(1_000));
    assert_eq!(l.link(1).client_end(), End::Open);
    assert_eq!(client.stats().stale_events, 0);
}

fn builder_at() -> ClientBuilder {
    ClientBuilder::new("ws://unused/")
        .seed(1)
        .heartbeat(None)
        .connect_timeout(ms(1_000))
        .close_timeout(ms(1_000))
        .backoff(BackoffConfig::default().base(ms(100)).max_delay(ms(100)).jitter(Jitter::None))
}

fn raw_text(payload: &[u8]) -> Vec<u8> {
    raw_frame(0x81, payload)
}

fn raw_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    tether_chaos::raw::raw_frame(b0, payload)
}

#[test]
fn an_attempt_dropped_by_the_connect_timeout_is_reset() {
    use tether_tests::vnet::End;
    // The server accepts the TCP connection but never answers the upgrade request: the attempt is
    // dropped at the connect timeout, and its socket reset (the request may sit unacknowledged).
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let (_client, mut events, _driver) = net.connect(builder(&l).build().unwrap());
    let _silent = net.wait(ms(1), "the connection", l.accept());
    let mut seen = Vec::new();
    let (e, at) = until(&mut net, &mut events, &mut seen, ms(2_000), "the timeout", |e| {
        matches!(e, Event::RetryScheduled { .. })
    });
    // Named by the phase the driver reported last: the WebSocket handshake.
    assert!(
        seen.iter().any(|e| matches!(
            e,
            Event::StateChanged {
                cause: Cause::ConnectTimeout { phase: Some(tether::ConnectPhase::Handshake), .. },
                ..
            }
        )),
        "{e:?} after {seen:?}"
    );
    assert_eq!(at - net.clock().epoch(), ms(1_000));
    net.run();
    assert_eq!(l.link(0).client_end(), End::Reset);
}

#[test]
fn a_fatal_violation_still_sends_its_close_frame() {
    use async_tungstenite::tungstenite::Message as WsMessage;
    use futures::AsyncWriteExt;
    use tether::core::Violation;
    use tether::{FailReason, RetryPolicy, Verdict};
    // The session fails for good at once; the driver still carries out the close it asked for last.
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let policy = RetryPolicy::default().violation(Violation::InvalidUtf8, Verdict::Fatal);
    let (_client, mut events, driver) = net.connect(builder(&l).retry_policy(policy).build().unwrap());
    let mut server = accept(&mut net, &l);
    let mut seen = Vec::new();
    until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    net.block_on(async { server.get_mut().write_all(&raw_text(&[0xff])).await.unwrap() });
    let (e, _) = until(&mut net, &mut events, &mut seen, ms(1), "the failure", |e| matches!(e, Event::Failed(_)));
    assert!(matches!(e, Event::Failed(FailReason::Fatal(_))), "{e:?}");
    let close = net.block_on(server.next());
    assert!(matches!(&close, Some(Ok(WsMessage::Close(Some(c)))) if u16::from(c.code) == 1007), "{close:?}");
    net.run();
    assert!(!net.is_alive(driver));
    assert_eq!(l.link(0).client_end(), tether_tests::vnet::End::Closed, "closed after the close frame, not reset");
}

#[test]
fn a_server_reset_is_an_io_loss_and_the_client_reconnects_after_the_backoff() {
    let mut net = VNet::new();
    let l = net.listen(ADDR);
    let (client, mut events, _driver) = net.connect(builder(&l).build().unwrap());
    let server = accept(&mut net, &l);
    let mut seen = Vec::new();
    until(&mut net, &mut events, &mut seen, ms(1), "connected", connected);
    server.into_inner().reset();
    let (e, lost_at) =
        until(&mut net, &mut events, &mut seen, ms(1), "the loss", |e| matches!(e, Event::Disconnected { .. }));
    assert!(
        matches!(&e, Event::Disconnected { cause: Cause::TransportFailed(tether::TransportError::Io(_)), .. }),
        "{e:?}"
    );
    let _again = net.wait(ms(1_000), "the next connection", async { accept_ws(l.accept().await).await });
    let (_, back_at) = until(&mut net, &mut events, &mut seen, ms(1), "reconnected", connected);
    assert_eq!(back_at - lost_at, ms(100));
    let s = client.stats();
    assert_eq!((s.errors.io, s.errors.protocol, s.stale_events), (1, 0, 0));
}
