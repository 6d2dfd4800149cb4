//! Several endpoints (failover and back), the resolver hook with an unreachable first address, and
//! connect phases: a proxy or server that accepts and goes silent is named by the timeout.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use tether::{Cause, ConnectPhase, Event, Events, OpenError, State};
use tether_tests::server::{Behavior, TestServer};

mod common;
use common::events::{connected, fast, ms, secs, until};
use common::runtimes::{AsyncStd, Rt, Smol, Tokio};

/// Two endpoints, the first dead: the client fails over to the second; when the second dies and the
/// first is back, it goes back to the first. Which endpoint served is on `Connected` and in stats.
async fn failover<R: Rt>() {
    // The first endpoint: a port where nothing listens yet.
    let a_addr = SocketAddr::from(([127, 0, 0, 1], closed_port()));
    let b = TestServer::start(Behavior::Echo);
    let cfg = fast(&format!("ws://{a_addr}/")).endpoint(b.url()).build().unwrap();
    assert_eq!(cfg.endpoints().count(), 2);
    let (client, mut events) = R::connect(cfg);
    let info = connected::<R>(&mut events).await;
    assert_eq!(info.endpoint, 1, "failed over to the second endpoint");
    assert_eq!(info.peer, Some(b.addr()));
    assert_eq!(client.stats().endpoint, Some(1));
    assert_eq!(client.stats().errors.tcp, 1, "the first endpoint was tried and refused");
    client.send("on b").await.unwrap();
    until::<R>(&mut events, secs(10), "echo from b", |e| matches!(e, Event::Message(m) if m.as_text() == Some("on b")))
        .await;
    // Let the connection become stable, then swap: the first endpoint comes up, the second dies.
    R::sleep(ms(400)).await;
    let a = TestServer::start_at(a_addr, Behavior::Echo, None).expect("the first endpoint's port is free");
    b.stop();
    let info = connected::<R>(&mut events).await;
    assert_eq!(info.endpoint, 0, "back to the first endpoint");
    assert_eq!(info.peer, Some(a_addr));
    assert_eq!(client.stats().endpoint, Some(0));
    client.send("on a").await.unwrap();
    until::<R>(&mut events, secs(10), "echo from a", |e| matches!(e, Event::Message(m) if m.as_text() == Some("on a")))
        .await;
    assert_eq!(a.received().len(), 1);
    assert_eq!(b.received().len(), 1);
    client.close(1000, "done").await.unwrap();
}

#[test]
fn failover_between_two_endpoints_tokio() {
    Tokio::block_on(failover::<Tokio>());
}

#[test]
fn failover_between_two_endpoints_smol() {
    Smol::block_on(failover::<Smol>());
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The resolver hook answers a made-up name with an unreachable address first and the server's
/// second: every address is tried, the second one wins, and the hook saw the name and port.
async fn resolver_hook<R: Rt>() {
    let server = TestServer::start(Behavior::Echo);
    let port = server.addr().port();
    let dead: SocketAddr = ([127, 0, 0, 1], closed_port()).into();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let cfg = fast(&format!("ws://dual.test:{port}/"))
        .resolver(move |host, port| {
            seen.lock().unwrap().push((host, port));
            let server = SocketAddr::from(([127, 0, 0, 1], port));
            async move { Ok(vec![dead, server]) }
        })
        .happy_eyeballs_delay(ms(100))
        .build()
        .unwrap();
    let (client, mut events) = R::connect(cfg);
    let info = connected::<R>(&mut events).await;
    assert_eq!(info.peer, Some(server.addr()));
    assert!(info.phase(ConnectPhase::Dns).is_some(), "the hook ran as the DNS phase: {:?}", info.phases);
    assert_eq!(*asked.lock().unwrap(), [("dual.test".to_owned(), port)]);
    let host = server.requests()[0].headers.iter().find(|(k, _)| k == "host").map(|(_, v)| v.clone());
    assert_eq!(host, Some(format!("dual.test:{port}")));
    assert_eq!(client.stats().errors.tcp, 0, "a failed address is not a failed attempt");
    client.close(1000, "done").await.unwrap();
}

#[test]
fn resolver_hook_unreachable_first_address_tokio() {
    Tokio::block_on(resolver_hook::<Tokio>());
}

#[test]
fn resolver_hook_unreachable_first_address_async_std() {
    AsyncStd::block_on(resolver_hook::<AsyncStd>());
}

/// A listener that completes TCP handshakes (the kernel's backlog) and never says a word.
fn silent() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// The state change after a failed attempt: its cause.
async fn first_failure<R: Rt>(events: &mut Events) -> Cause {
    match until::<R>(events, secs(15), "a failed attempt", |e| {
        matches!(e, Event::StateChanged { from: State::Connecting, to: State::Reconnecting, .. })
    })
    .await
    {
        Event::StateChanged { cause, .. } => cause,
        _ => unreachable!("matched StateChanged"),
    }
}

/// A proxy that accepts and goes silent: the overall connect timeout (the core's) names the proxy
/// phase; a wss server that goes silent: it names TLS; a per-phase timeout fails sooner, naming it.
async fn silent_peers<R: Rt>() {
    let proxy = silent();
    let server = TestServer::start(Behavior::Echo);
    let cfg = fast(&server.url())
        .proxy(format!("http://{}", proxy.local_addr().unwrap()))
        .connect_timeout(ms(800))
        .build()
        .unwrap();
    let (_c, mut events) = R::connect(cfg);
    let cause = first_failure::<R>(&mut events).await;
    assert!(
        matches!(cause, Cause::ConnectTimeout { phase: Some(ConnectPhase::Proxy), elapsed } if elapsed >= ms(800)),
        "{cause:?}"
    );
    assert!(cause.to_string().starts_with("proxy handshake timed out after"), "{cause}");

    let tls = silent();
    let url = format!("wss://localhost:{}/", tls.local_addr().unwrap().port());
    let (_c, mut events) = R::connect(fast(&url).connect_timeout(ms(800)).build().unwrap());
    let cause = first_failure::<R>(&mut events).await;
    assert!(matches!(cause, Cause::ConnectTimeout { phase: Some(ConnectPhase::Tls), .. }), "{cause:?}");
    assert!(cause.to_string().starts_with("TLS handshake timed out after"), "{cause}");

    let cfg = fast(&server.url())
        .proxy(format!("http://{}", proxy.local_addr().unwrap()))
        .phase_timeout(ConnectPhase::Proxy, ms(200))
        .build()
        .unwrap();
    let (_c, mut events) = R::connect(cfg);
    let cause = first_failure::<R>(&mut events).await;
    assert_eq!(cause, Cause::OpenFailed(OpenError::Timeout { phase: ConnectPhase::Proxy, after: ms(200) }));
    assert_eq!(cause.to_string(), "proxy handshake timed out after 200 ms");
}

#[test]
fn silent_peers_are_named_by_their_phase_tokio() {
    Tokio::block_on(silent_peers::<Tokio>());
}

#[test]
fn silent_peers_are_named_by_their_phase_smol() {
    Smol::block_on(silent_peers::<Smol>());
}
