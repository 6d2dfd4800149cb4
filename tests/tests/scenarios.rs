//! The scenario suite, written once and run on tokio, smol and async-std, against a real WebSocket
//! server (on its own thread) behind a fault-injecting proxy. Short intervals and bounded waits only.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tether::{
    BackoffConfig, BuildError, Cause, ClientBuilder, CloseMode, Event, Events, FailReason, HeartbeatConfig,
    InFlightPolicy, Jitter, Message, MessageId, OpenError, Outcome, Overflow, QueueConfig, SendError, State,
};
use tether_chaos::pki::TestPki;
use tether_chaos::proxy::FaultProxy;
use tether_chaos::server::{Behavior, TestServer};

mod common;
use common::runtimes::{AsyncStd, Rt, Smol, Tokio, within};

/// Reads events, keeping all of them.
struct Watch {
    events: Events,
    seen: Vec<(Instant, Event)>,
}

impl Watch {
    fn new(events: Events) -> Self {
        Self { events, seen: vec![] }
    }

    /// Waits (at most `d`) for an event matching `pred`; returns it.
    async fn until<R: Rt>(&mut self, d: Duration, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
        let events = &mut self.events;
        let seen = &mut self.seen;
        within::<R, _>(d, what, async {
            while let Some(e) = events.next().await {
                seen.push((Instant::now(), e.clone()));
                if pred(&e) {
                    return e;
                }
            }
            panic!("{what}: the event stream ended; saw {:?}", seen.iter().map(|(_, e)| e).collect::<Vec<_>>());
        })
        .await
    }

    async fn connected<R: Rt>(&mut self) {
        self.until::<R>(secs(10), "connected", |e| matches!(e, Event::Connected { .. })).await;
    }

    fn outcomes(&self) -> BTreeMap<MessageId, Vec<Outcome>> {
        let mut m: BTreeMap<MessageId, Vec<Outcome>> = BTreeMap::new();
        for (_, e) in &self.seen {
            if let Event::Outcome { id, outcome } = e {
                m.entry(*id).or_default().push(*outcome);
            }
        }
        m
    }

    fn requeued(&self) -> BTreeSet<MessageId> {
        self.seen.iter().filter_map(|(_, e)| if let Event::Requeued { id } = e { Some(*id) } else { None }).collect()
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Fast timings for tests.
fn fast(url: &str) -> ClientBuilder {
    ClientBuilder::new(url)
        .backoff(BackoffConfig::default().base(ms(20)).max_delay(ms(200)).stable_after(ms(300)))
        .connect_timeout(secs(2))
        .close_timeout(secs(2))
}

/// The number at the start of a streamed message ("17 xxxx...").
fn parse_num(data: &[u8]) -> u64 {
    let text = std::str::from_utf8(data).expect("utf8");
    text.split(' ').next().unwrap_or(text).parse().expect("a number")
}

// ----- a. echo ------------------------------------------------------------------------------------

async fn a_echo<R: Rt>() {
    let server = TestServer::start(Behavior::Echo);
    let (client, events) = R::connect(fast(&server.url()).subprotocol("v2.tether").subprotocol("v1").build().unwrap());
    let mut w = Watch::new(events);
    let Event::Connected { info, .. } =
        w.until::<R>(secs(10), "connected", |e| matches!(e, Event::Connected { .. })).await
    else {
        unreachable!("matched Connected")
    };
    assert_eq!(info.subprotocol.as_deref(), Some("v2.tether"), "the server's choice is on Connected");
    let t = client.send("hello").await.unwrap();
    let b = client.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    w.until::<R>(secs(5), "text echo", |e| matches!(e, Event::Message(m) if m.as_text() == Some("hello"))).await;
    w.until::<R>(secs(5), "binary echo", |e| matches!(e, Event::Message(m) if m.payload()[..] == [1, 2, 3])).await;
    let o = w.outcomes();
    assert_eq!(o[&t], vec![Outcome::Sent]);
    assert_eq!(o[&b], vec![Outcome::Sent]);
    let s = client.stats();
    assert_eq!((s.messages_sent, s.bytes_sent), (2, 8));
    assert_eq!((s.messages_received, s.bytes_received), (2, 8));
    assert_eq!((s.connects, s.reconnects), (1, 0));
    assert!(s.last_handshake.is_some());
    assert_eq!(client.state(), State::Connected);
}

// ----- b. server restart while streaming ----------------------------------------------------------

const STREAM: u64 = 10_000;

async fn stream_through_restart<R: Rt>(policy: InFlightPolicy) {
    let server = TestServer::start(Behavior::Sink);
    let proxy = FaultProxy::start(server.addr());
    let cfg = fast(&proxy.url())
        .queue(QueueConfig::default().max_messages(20_000).max_bytes(32 << 20).in_flight(policy))
        .event_capacity(4096)
        .build()
        .unwrap();
    let (client, events) = R::connect(cfg);
    let mut w = Watch::new(events);
    w.connected::<R>().await;

    // Under Requeue the messages are large and the link is stopped first, so that writes pile up
    // unflushed in the socket buffers: those are the in-flight ones the cut requeues.
    let pad = if policy == InFlightPolicy::Requeue { "x".repeat(1_000) } else { String::new() };
    if policy == InFlightPolicy::Requeue {
        proxy.blackhole(true);
    }
    let sender = client.clone();
    let (done_tx, done_rx) = futures::channel::oneshot::channel();
    R::spawn(async move {
        for i in 0..STREAM {
            sender.send(format!("{i} {pad}")).await.expect("accepted");
        }
        let _ = done_tx.send(());
    });
    if policy == InFlightPolicy::Requeue {
        // Wait until writes are stuck unflushed behind the stopped link (the socket buffers are full).
        within::<R, _>(secs(20), "messages in flight", async {
            while client.stats().queue_in_flight == 0 {
                R::sleep(ms(20)).await;
            }
        })
        .await;
        R::sleep(ms(100)).await;
        assert!(client.stats().queue_in_flight > 0, "stuck writes stay in flight");
        proxy.cut();
        proxy.blackhole(false);
    } else {
        // Let part of the stream through, then crash the server.
        w.until::<R>(secs(10), "1000 outcomes", |e| matches!(e, Event::Outcome { id, .. } if id.0 >= 1_000)).await;
    }
    server.stop();
    R::sleep(ms(100)).await;
    server.restart();
    within::<R, _>(secs(30), "the sender finished", done_rx).await.expect("sender ran");
    let last = MessageId(STREAM - 1);
    w.until::<R>(
        secs(30),
        "an outcome for the last message",
        |e| matches!(e, Event::Outcome { id, .. } if *id == last),
    )
    .await;
    // Every message must have ended by now; give stragglers (abandoned on the old link) a moment.
    let outcomes = w.outcomes();
    assert_eq!(outcomes.len() as u64, STREAM, "every accepted message has an outcome");
    assert!(outcomes.values().all(|v| v.len() == 1), "exactly one outcome each");
    assert!(client.stats().reconnects >= 1, "the client reconnected");

    // The server's record catches up with what was flushed: when the last message was Sent, it went out
    // on the final connection after everything else there, so once it is recorded all of them are (a
    // fixed pause was too short on a loaded machine).
    if outcomes[&last][0] == Outcome::Sent {
        within::<R, _>(secs(20), "the server recorded the last message", async {
            while !server.received().iter().any(|r| parse_num(&r.data) == STREAM - 1) {
                R::sleep(ms(20)).await;
            }
        })
        .await;
    } else {
        R::sleep(ms(200)).await;
    }
    let received = server.received();
    let outcome = |n: u64| outcomes[&MessageId(n)][0];
    let requeued = w.requeued();
    let mut first_seen = BTreeSet::new();
    let mut highest: Option<u64> = None;
    for r in &received {
        let n = parse_num(&r.data);
        let fresh = first_seen.insert(n);
        if !fresh {
            assert!(requeued.contains(&MessageId(n)), "{n} received twice but never reported requeued");
            continue;
        }
        if policy == InFlightPolicy::Abandon {
            assert!(highest.is_none_or(|h| n > h), "{n} received after {highest:?}: FIFO broken");
        }
        highest = highest.max(Some(n));
        assert!(matches!(outcome(n), Outcome::Sent | Outcome::Abandoned), "{n} received but {:?}", outcome(n));
    }
    // A message reported Sent but not received was flushed into the crashed server's socket: it can only
    // lie between the last one the old connection delivered and the first the new one did.
    let conn_of: BTreeMap<u64, u64> = received.iter().map(|r| (parse_num(&r.data), r.conn)).collect();
    let last_conn = received.last().map(|r| r.conn).expect("something received");
    let first_on_last = received.iter().find(|r| r.conn == last_conn).map(|r| parse_num(&r.data)).expect("one");
    for n in 0..STREAM {
        if outcome(n) == Outcome::Sent && !conn_of.contains_key(&n) {
            assert!(n < first_on_last, "{n} was sent on the final connection but never received");
        }
        if n >= first_on_last && outcome(n) == Outcome::Sent {
            assert!(conn_of.contains_key(&n), "{n} sent on the final connection, not received");
        }
    }
    if policy == InFlightPolicy::Requeue {
        assert!(!requeued.is_empty(), "the blackholed link left messages in flight to requeue");
        for id in &requeued {
            assert_eq!(outcomes[id], vec![Outcome::Sent], "{id} requeued then ended");
            assert!(conn_of.contains_key(&id.0), "requeued {id} reached the server");
        }
    }
}

async fn b_restart_abandon<R: Rt>() {
    stream_through_restart::<R>(InFlightPolicy::Abandon).await
}

async fn b_restart_requeue<R: Rt>() {
    stream_through_restart::<R>(InFlightPolicy::Requeue).await
}

// ----- c. half-open link --------------------------------------------------------------------------

async fn c_half_open<R: Rt>() {
    let server = TestServer::start(Behavior::Echo);
    let proxy = FaultProxy::start(server.addr());
    let hb = HeartbeatConfig::default().interval(ms(200)).pong_timeout(ms(300));
    let bound = hb.detection_bound();
    let (client, events) = R::connect(fast(&proxy.url()).heartbeat(Some(hb)).connect_timeout(ms(500)).build().unwrap());
    let mut w = Watch::new(events);
    w.connected::<R>().await;
    let cut_at = Instant::now();
    proxy.blackhole(true);
    w.until::<R>(secs(5), "half-open detected", |e| {
        matches!(e, Event::Disconnected { cause: Cause::Heartbeat(_), .. })
    })
    .await;
    let detected = cut_at.elapsed();
    // Exact timing is proven on virtual time (virtual_driver.rs:
    // heartbeat_detects_a_silent_server_at_exactly_interval_plus_pong_timeout). On real sockets and a
    // loaded machine the bound only tells the heartbeat from slower paths (TCP's own timeouts), so
    // the slack is generous: 0.7 s flaked at a load of 15 on 2 cores (1.48 s seen).
    let slack = secs(3);
    assert!(detected <= bound + slack, "detected after {detected:?}, bound {bound:?} + slack {slack:?}");
    proxy.blackhole(false);
    w.connected::<R>().await;
    assert!(client.stats().errors.heartbeat >= 1);
    client.send("after").await.unwrap();
    w.until::<R>(secs(5), "echo after healing", |e| matches!(e, Event::Message(m) if m.as_text() == Some("after")))
        .await;
}

// ----- d. handshake statuses ----------------------------------------------------------------------

async fn d_statuses<R: Rt>() {
    let server = TestServer::start(Behavior::Reject { status: 401, retry_after: None });
    let (_client, events) = R::connect(fast(&server.url()).build().unwrap());
    let mut w = Watch::new(events);
    let e = w.until::<R>(secs(5), "failed", |e| matches!(e, Event::Failed(_))).await;
    assert!(
        matches!(&e, Event::Failed(FailReason::Fatal(Cause::OpenFailed(OpenError::Http { status: 401, .. })))),
        "{e:?}"
    );
    R::sleep(ms(300)).await;
    assert_eq!(server.requests().len(), 1, "401 is not retried");

    let server = TestServer::start(Behavior::Reject { status: 503, retry_after: Some("1".into()) });
    let (client, events) = R::connect(fast(&server.url()).build().unwrap());
    let mut w = Watch::new(events);
    w.until::<R>(secs(5), "503 seen", |e| matches!(e, Event::RetryScheduled { .. })).await;
    server.set_behavior(Behavior::Echo);
    w.connected::<R>().await;
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "one refusal, one success");
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= secs(1), "second attempt {gap:?} after the 503, before Retry-After");
    assert_eq!(client.state(), State::Connected);
}

// ----- e. accept then close -----------------------------------------------------------------------

async fn e_accept_then_close<R: Rt>() {
    let server = TestServer::start(Behavior::AcceptThenClose { code: 1000 });
    let cfg = fast(&server.url())
        .backoff(BackoffConfig::default().base(ms(50)).max_delay(ms(400)).jitter(Jitter::None).stable_after(secs(5)))
        .build()
        .unwrap();
    let (client, events) = R::connect(cfg);
    let mut w = Watch::new(events);
    let window = ms(1_500);
    R::sleep(window).await;
    let handshakes = server.handshakes();
    // 50+100+200+400+400 ms: about 5 attempts in 1.5 s; a storm would make hundreds.
    assert!((2..=8).contains(&handshakes), "{handshakes} handshakes in {window:?}");
    let delays: Vec<Duration> = {
        let e = &mut w.events;
        let mut d = vec![];
        while let Some(Some(ev)) = futures::FutureExt::now_or_never(e.next()) {
            if let Event::RetryScheduled { delay, .. } = ev {
                d.push(delay);
            }
        }
        d
    };
    assert!(delays.windows(2).all(|p| p[1] >= p[0]), "delays grow: {delays:?}");
    assert!(client.stats().failed_attempts >= 2);
}

// ----- f. long outage with queue limits -----------------------------------------------------------

async fn f_queue_limits<R: Rt>() {
    let server = TestServer::start(Behavior::Echo);
    let proxy = FaultProxy::start(server.addr());
    proxy.refuse(true);
    let queue = |overflow, ttl| QueueConfig::default().max_messages(5).overflow(overflow).ttl(ttl);

    // Reject: the sixth message is handed back.
    let (reject, events) = R::connect(fast(&proxy.url()).queue(queue(Overflow::Reject, None)).build().unwrap());
    let mut wr = Watch::new(events);
    for i in 0..5 {
        reject.try_send(format!("r{i}")).unwrap();
    }
    match reject.try_send("r5") {
        Err(SendError::Full(m)) => assert_eq!(m.as_text(), Some("r5")),
        other => panic!("expected Full, got {other:?}"),
    }

    // DropOldest: the three oldest are reported dropped.
    let (drop_oldest, events) =
        R::connect(fast(&proxy.url()).queue(queue(Overflow::DropOldest, None)).build().unwrap());
    let mut wd = Watch::new(events);
    let ids: Vec<_> = futures::future::join_all((0..8).map(|i| drop_oldest.send(format!("d{i}")))).await;
    let ids: Vec<MessageId> = ids.into_iter().map(|r| r.unwrap()).collect();
    for id in &ids[..3] {
        wd.until::<R>(
            secs(2),
            "dropped",
            |e| matches!(e, Event::Outcome { id: i, outcome: Outcome::Dropped } if i == id),
        )
        .await;
    }

    // TTL: messages expire during the outage and are reported.
    let (ttl, events) = R::connect(fast(&proxy.url()).queue(queue(Overflow::Reject, Some(ms(150)))).build().unwrap());
    let mut wt = Watch::new(events);
    let a = ttl.send("t0").await.unwrap();
    wt.until::<R>(secs(3), "expired", |e| matches!(e, Event::Outcome { id, outcome: Outcome::Expired } if *id == a))
        .await;

    // The outage ends: what is left goes out, in order.
    proxy.refuse(false);
    for w in [&mut wr, &mut wd] {
        w.until::<R>(secs(5), "reconnected", |e| matches!(e, Event::Connected { .. })).await;
    }
    let last = ids[7];
    wd.until::<R>(
        secs(5),
        "kept ones sent",
        |e| matches!(e, Event::Outcome { id, outcome: Outcome::Sent } if *id == last),
    )
    .await;
    let sent: Vec<MessageId> = wd
        .seen
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Outcome { id, outcome: Outcome::Sent } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(sent, ids[3..].to_vec());
    wr.until::<R>(secs(5), "unblocked", |e| matches!(e, Event::QueueUnblocked)).await;
}

// ----- g. preamble --------------------------------------------------------------------------------

async fn g_preamble<R: Rt>() {
    let server = TestServer::start(Behavior::Sink);
    let proxy = FaultProxy::start(server.addr());
    let cfg = fast(&proxy.url()).preamble(vec![Message::text("AUTH"), Message::text("SUB")]).build().unwrap();
    let (client, events) = R::connect(cfg);
    let mut w = Watch::new(events);
    for round in 0..3 {
        w.connected::<R>().await;
        let id = client.send(format!("m{round}")).await.unwrap();
        w.until::<R>(secs(5), "sent", |e| matches!(e, Event::Outcome { id: i, .. } if *i == id)).await;
        R::sleep(ms(50)).await;
        proxy.cut();
    }
    R::sleep(ms(100)).await;
    let received = server.received();
    let conns: BTreeSet<u64> = received.iter().map(|r| r.conn).collect();
    assert!(conns.len() >= 3, "three connections, got {conns:?}");
    for c in conns {
        let on: Vec<_> = received.iter().filter(|r| r.conn == c).map(|r| r.data.clone()).collect();
        assert_eq!(&on[..2], &[&b"AUTH"[..], &b"SUB"[..]], "connection {c} began with {on:?}");
    }
}

// ----- h. graceful close --------------------------------------------------------------------------

async fn h_close<R: Rt>() {
    let server = TestServer::start(Behavior::Echo);
    let (client, events) = R::connect(fast(&server.url()).build().unwrap());
    let mut w = Watch::new(events);
    w.connected::<R>().await;
    let ids: Vec<MessageId> = futures::future::join_all((0..50).map(|i| client.send(format!("{i}"))))
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    within::<R, _>(secs(5), "close", client.close(1000, "bye")).await.unwrap();
    assert_eq!(client.state(), State::Closed);
    w.until::<R>(secs(2), "closed event", |e| matches!(e, Event::Closed { .. })).await;
    let o = w.outcomes();
    assert!(ids.iter().all(|id| o[id] == vec![Outcome::Sent]), "drained before closing");
    assert_eq!(server.received().len(), 50);
    let handshakes = server.handshakes();
    R::sleep(ms(300)).await;
    assert_eq!(server.handshakes(), handshakes, "no reconnect after close");
    assert!(matches!(client.send("late").await, Err(SendError::Inactive { .. })));
    assert!(within::<R, _>(secs(1), "events end", w.events.next()).await.is_none());

    // Abort while disconnected: queued messages are aborted, reported.
    let proxy = FaultProxy::start(server.addr());
    proxy.refuse(true);
    let (client, events) = R::connect(fast(&proxy.url()).build().unwrap());
    let mut w = Watch::new(events);
    let a = client.send("never").await.unwrap();
    within::<R, _>(secs(5), "abort close", client.close_with(1001, "shutdown", CloseMode::Abort)).await.unwrap();
    w.until::<R>(secs(2), "aborted", |e| matches!(e, Event::Outcome { id, outcome: Outcome::Aborted } if *id == a))
        .await;
}

// ----- i. wss -------------------------------------------------------------------------------------

async fn i_wss<R: Rt>() {
    let pki = TestPki::generate("Tether Test CA").expect("test CA");
    let server = TestServer::start_tls(Behavior::Echo, pki.server.clone());
    let cfg = fast(&server.url()).add_root_certificate_der(pki.ca_der.clone()).build().unwrap();
    let (client, events) = R::connect(cfg);
    let mut w = Watch::new(events);
    w.connected::<R>().await;
    client.send("secure").await.unwrap();
    w.until::<R>(secs(5), "echo over TLS", |e| matches!(e, Event::Message(m) if m.as_text() == Some("secure"))).await;

    // The same server, without trusting its CA: a typed certificate error, not retried.
    let (_client, events) = R::connect(fast(&server.url()).build().unwrap());
    let mut w = Watch::new(events);
    let e = w.until::<R>(secs(5), "tls failure", |e| matches!(e, Event::Failed(_))).await;
    assert!(matches!(&e, Event::Failed(FailReason::Fatal(Cause::OpenFailed(OpenError::TlsCertificate(_))))), "{e:?}");
    // And with the PEM form of the CA, as the CLI reads it.
    let cfg = fast(&server.url()).add_root_certificates_pem(pki.ca_pem.as_bytes()).build().unwrap();
    let (_client, events) = R::connect(cfg);
    Watch::new(events).connected::<R>().await;
}

// ----- j. bad input -------------------------------------------------------------------------------

async fn j_bad_input<R: Rt>() {
    let build = |b: ClientBuilder| b.build().map(|_| ());
    assert!(matches!(build(ClientBuilder::new("ws//nope")), Err(BuildError::InvalidUrl { .. })));
    assert!(matches!(build(ClientBuilder::new("")), Err(BuildError::InvalidUrl { .. })));
    assert_eq!(build(ClientBuilder::new("ftp://h/")), Err(BuildError::UnsupportedScheme("ftp".into())));
    assert_eq!(
        build(ClientBuilder::new("ws://h/").header("Bad Header", "x")),
        Err(BuildError::InvalidHeaderName("Bad Header".into()))
    );
    assert_eq!(
        build(ClientBuilder::new("ws://h/").header("X-Ok", "line\nbreak")),
        Err(BuildError::InvalidHeaderValue("X-Ok".into()))
    );
    // A valid URL to a port nobody listens on: retried, not a panic; the failure is typed.
    let (client, events) = R::connect(fast("ws://127.0.0.1:1/").build().unwrap());
    let mut w = Watch::new(events);
    let e = w.until::<R>(secs(5), "tcp failure", |e| matches!(e, Event::RetryScheduled { .. })).await;
    assert!(matches!(e, Event::RetryScheduled { .. }));
    assert!(
        w.seen
            .iter()
            .any(|(_, e)| matches!(e, Event::StateChanged { cause: Cause::OpenFailed(OpenError::Tcp(_)), .. }))
    );
    assert!(client.stats().errors.tcp >= 1);
}

// ----- k. request hook, receipts, backpressure -----------------------------------------------------

async fn k_hook_receipts_backpressure<R: Rt>() {
    let server = TestServer::start(Behavior::Echo);
    let proxy = FaultProxy::start(server.addr());
    let cfg = fast(&proxy.url())
        .header("Authorization", "Bearer stale")
        .request_hook(|mut req, attempt| async move {
            // A fresh token for every attempt.
            let token = format!("Bearer fresh-{attempt}");
            req.headers_mut().insert("authorization", token.parse().expect("valid header"));
            Ok(req)
        })
        .queue(QueueConfig::default().max_messages(2))
        .build()
        .unwrap();
    let cfg_again = cfg.clone();
    let (client, events) = R::connect(cfg);
    let mut w = Watch::new(events);
    w.connected::<R>().await;
    let receipt = client.send_with_receipt("with receipt").await.unwrap();
    assert_eq!(within::<R, _>(secs(5), "receipt", receipt).await, Outcome::Sent);

    // An outage with a full queue: send().await waits (backpressure) and completes once there is room.
    proxy.refuse(true);
    proxy.cut();
    w.until::<R>(secs(5), "disconnected", |e| matches!(e, Event::Disconnected { .. })).await;
    client.send("q1").await.unwrap();
    client.send("q2").await.unwrap();
    let blocked = client.clone();
    let (tx, mut rx) = futures::channel::oneshot::channel();
    R::spawn(async move {
        let _ = tx.send(blocked.send("q3").await);
    });
    R::sleep(ms(200)).await;
    assert!(matches!(rx.try_recv(), Ok(None)), "send waits while the queue is full");
    proxy.refuse(false);
    let id = within::<R, _>(secs(5), "blocked send accepted", rx).await.expect("sender ran").unwrap();
    w.until::<R>(secs(5), "q3 sent", |e| matches!(e, Event::Outcome { id: i, outcome: Outcome::Sent } if *i == id))
        .await;
    let tokens: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.clone()).unwrap_or_default())
        .collect();
    assert_eq!(tokens.first().map(String::as_str), Some("Bearer fresh-1"));
    assert!(tokens.len() >= 2 && tokens.iter().all(|t| t.starts_with("Bearer fresh-")), "{tokens:?}");
    // Every attempt sends a fresh Sec-WebSocket-Key (RFC 6455, 4.1), including a second client built
    // from the same configuration.
    let (other, other_events) = R::connect(cfg_again);
    Watch::new(other_events).connected::<R>().await;
    drop(other);
    let keys: BTreeSet<String> = server
        .requests()
        .iter()
        .filter_map(|r| r.headers.iter().find(|(k, _)| k == "sec-websocket-key").map(|(_, v)| v.clone()))
        .collect();
    assert_eq!(keys.len(), server.requests().len(), "a key was sent twice: {keys:?}");
}

macro_rules! suite {
    ($module:ident, $rt:ty) => {
        mod $module {
            use super::*;
            #[test]
            fn a_echo() {
                <$rt>::block_on(super::a_echo::<$rt>())
            }
            #[test]
            fn b_restart_abandon() {
                <$rt>::block_on(super::b_restart_abandon::<$rt>())
            }
            #[test]
            fn b_restart_requeue() {
                <$rt>::block_on(super::b_restart_requeue::<$rt>())
            }
            #[test]
            fn c_half_open() {
                <$rt>::block_on(super::c_half_open::<$rt>())
            }
            #[test]
            fn d_statuses() {
                <$rt>::block_on(super::d_statuses::<$rt>())
            }
            #[test]
            fn e_accept_then_close() {
                <$rt>::block_on(super::e_accept_then_close::<$rt>())
            }
            #[test]
            fn f_queue_limits() {
                <$rt>::block_on(super::f_queue_limits::<$rt>())
            }
            #[test]
            fn g_preamble() {
                <$rt>::block_on(super::g_preamble::<$rt>())
            }
            #[test]
            fn h_close() {
                <$rt>::block_on(super::h_close::<$rt>())
            }
            #[test]
            fn i_wss() {
                <$rt>::block_on(super::i_wss::<$rt>())
            }
            #[test]
            fn j_bad_input() {
                <$rt>::block_on(super::j_bad_input::<$rt>())
            }
            #[test]
            fn k_hook_receipts_backpressure() {
                <$rt>::block_on(super::k_hook_receipts_backpressure::<$rt>())
            }
        }
    };
}

suite!(on_tokio, Tokio);
suite!(on_smol, Smol);
suite!(on_async_std, AsyncStd);

/// A client whose runtime shuts down does not leave its event stream or its waiters hanging.
#[test]
fn runtime_shutdown_ends_the_event_stream() {
    let server = TestServer::start(Behavior::Echo);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("tokio");
    let (client, events) = rt.block_on(async { tether_tokio::connect(fast(&server.url()).build().unwrap()) }).unwrap();
    rt.shutdown_timeout(Duration::from_secs(1));
    let rest: Vec<Event> = smol::block_on(within::<Smol, _>(secs(5), "stream ends", events.collect()));
    assert!(rest.len() < 100);
    smol::block_on(within::<Smol, _>(secs(5), "finished", client.finished()));
}

/// On a single-threaded runtime a loop of `send().await` never waits while the queue has room, so
/// without a pause the driver would write nothing until the loop ends. The client pauses once every
/// 512 messages the driver has not taken (its per-round batch), before accepting the next one, so a
/// send future dropped at that pause has queued nothing.
#[test]
fn a_burst_of_sends_lets_the_driver_write_and_its_pause_is_cancel_safe() {
    const BURST: usize = 512;
    let server = TestServer::start(Behavior::Sink);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    rt.block_on(async {
        let (client, events) = tether_tokio::connect(fast(&server.url()).build().unwrap()).unwrap();
        let mut w = Watch::new(events);
        w.connected::<Tokio>().await;
        // The application keeps reading events (the outcomes), as it must.
        let reader = tokio::spawn(async move {
            let mut sent = 0;
            while let Some(e) = w.events.next().await {
                sent += matches!(e, Event::Outcome { outcome: Outcome::Sent, .. }) as usize;
            }
            sent
        });
        // Exactly one burst: nothing has yielded, so the driver has taken none of it.
        for i in 0..BURST {
            client.send(format!("{i}")).await.unwrap();
        }
        let s = client.stats();
        assert_eq!((s.queue_len, s.queue_in_flight, s.messages_sent), (BURST, 0, 0));
        // The next send pauses first; dropped there, it has queued nothing.
        let mut next = Box::pin(client.send("dropped"));
        assert!(futures::poll!(next.as_mut()).is_pending());
        drop(next);
        assert_eq!(client.stats().queue_len, BURST);
        // Three more bursts: each pause lets the driver take what waits, so at most one burst waits.
        for i in 0..3 * BURST {
            client.send(format!("{i}")).await.unwrap();
        }
        let s = client.stats();
        let waiting = s.queue_len - s.queue_in_flight;
        assert!(waiting <= BURST, "{waiting} messages wait for the driver");
        assert!(s.messages_sent >= 2 * BURST as u64, "only {} written during the loop", s.messages_sent);
        client.close(1000, "done").await.unwrap();
        assert_eq!(client.stats().messages_sent, 4 * BURST as u64);
        assert_eq!(reader.await.unwrap(), 4 * BURST);
    });
}
