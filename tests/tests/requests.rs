//! Tracked messages and request/response through the real driver, on tokio, smol and async-std, against
//! real servers on their own threads: the persisting `AckServer` (acknowledges `ack KEY` after logging
//! KEY) and the test server (echo, or a sink that never answers). Short intervals, bounded waits.

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::{Either, join_all, select};
use serde_json::json;
use tether::{
    AckConfig, AckKey, BackoffConfig, ClientBuilder, Event, Events, Message, MessageId, Outcome, RequestError,
    SendError, Tracking,
};
use tether_chaos::ack_server::{AckServer, acked_key};
use tether_chaos::server::{Behavior, TestServer};

mod common;
use common::runtimes::{AsyncStd, Rt, Smol, Tokio, within};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn fast(url: &str) -> ClientBuilder {
    ClientBuilder::new(url)
        .backoff(BackoffConfig::default().base(ms(20)).max_delay(ms(200)).stable_after(ms(300)))
        .connect_timeout(secs(2))
        .close_timeout(secs(2))
}

/// The `AckServer`'s acknowledgement `ack KEY`, as a text key.
fn ack_correlation(m: &Message) -> Option<AckKey> {
    acked_key(m.as_text()?).map(AckKey::from)
}

/// Requests of the form `req N ...`: the echo server's answer is the request itself, so its key is N.
fn echo_correlation(m: &Message) -> Option<AckKey> {
    let n = m.as_text()?.strip_prefix("req ")?.split(' ').next()?;
    Some(AckKey::from(n.parse::<u64>().ok()?))
}

/// Reads events until `pred` holds (bounded), keeping them.
async fn until<R: Rt>(events: &mut Events, seen: &mut Vec<Event>, what: &str, mut pred: impl FnMut(&Event) -> bool) {
    within::<R, _>(secs(10), what, async {
        while let Some(e) = events.next().await {
            let done = pred(&e);
            seen.push(e);
            if done {
                return;
            }
        }
        panic!("{what}: the event stream ended");
    })
    .await
}

fn outcome_of(seen: &[Event], id: MessageId) -> Vec<Outcome> {
    seen.iter()
        .filter_map(|e| match e {
            Event::Outcome { id: i, outcome } if *i == id => Some(*outcome),
            _ => None,
        })
        .collect()
}

/// Whether `f` is still pending after `d` (it is dropped either way).
async fn still_pending<R: Rt, F: std::future::Future>(d: Duration, f: F) -> bool {
    matches!(select(std::pin::pin!(f), std::pin::pin!(R::sleep(d))).await, Either::Right(_))
}

// ----- scenarios ---------------------------------------------------------------------------------------

/// Tracked messages end `Acked` when the persisting server's acknowledgement comes back (through the
/// correlation function), and only then; the server logged every one.
async fn tracked_messages_are_acked_by_the_server<R: Rt>() {
    let server = AckServer::start_at("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let (client, mut events) = R::connect(fast(&server.url()).correlate(ack_correlation).build().unwrap());
    let mut ids = vec![];
    for i in 0..50 {
        let key = format!("k{i}");
        ids.push(client.send_tracked(format!("{key} payload {i}"), key.as_str()).await.unwrap());
    }
    let mut seen = vec![];
    let mut acked = 0;
    until::<R>(&mut events, &mut seen, "50 Acked outcomes", |e| {
        acked += usize::from(matches!(e, Event::Outcome { outcome: Outcome::Acked, .. }));
        acked == 50
    })
    .await;
    for id in &ids {
        assert_eq!(outcome_of(&seen, *id), vec![Outcome::Acked], "{id}");
    }
    // The acknowledgements were their responses, not ordinary messages.
    assert!(!seen.iter().any(|e| matches!(e, Event::Message(_))), "{seen:?}");
    assert_eq!(seen.iter().filter(|e| matches!(e, Event::Response { .. })).count(), 50);
    let logged: Vec<Vec<u8>> = server.keys();
    assert_eq!(logged, (0..50).map(|i| format!("k{i}").into_bytes()).collect::<Vec<_>>());
    let st = client.stats();
    assert_eq!((st.messages_acked, st.tracked, st.awaiting_ack, st.acks_unknown), (50, 0, 0, 0));
    // The same key again is fine once the first ended; by hand, an unknown key is only counted.
    assert_eq!(client.ack("never sent"), None);
    assert_eq!(client.stats().acks_unknown, 1);
    client.close(1000, "done").await.unwrap();
}

/// A request resolves to its own response, which does not reach the event stream; many at once each get
/// theirs.
async fn requests_get_their_own_response<R: Rt>() {
    let server = TestServer::start(Behavior::Echo);
    let (client, mut events) = R::connect(fast(&server.url()).correlate(echo_correlation).build().unwrap());
    let r = within::<R, _>(secs(10), "a response", client.request("req 1 hello", 1u64)).await.unwrap();
    assert_eq!(r.as_text(), Some("req 1 hello"));
    let all = join_all((2..22u64).map(|n| client.request(format!("req {n} x{n}"), n)));
    let responses = within::<R, _>(secs(10), "20 responses", all).await;
    for (n, r) in (2..22u64).zip(responses) {
        assert_eq!(r.unwrap().as_text(), Some(format!("req {n} x{n}").as_str()));
    }
    assert_eq!(client.pending_requests(), 0);
    // An unsolicited message is an ordinary one.
    client.send("hello").await.unwrap();
    let mut seen = vec![];
    until::<R>(
        &mut events,
        &mut seen,
        "the echo of hello",
        |e| matches!(e, Event::Message(m) if m.as_text() == Some("hello")),
    )
    .await;
    assert!(!seen.iter().any(|e| matches!(e, Event::Response { .. })), "responses went to their requests");
    assert_eq!(seen.iter().filter(|e| matches!(e, Event::Outcome { outcome: Outcome::Acked, .. })).count(), 21);
    assert_eq!(client.stats().messages_acked, 21);
}

/// Dropping a request future removes everything it held: nothing pending, nothing tracked, nothing
/// queued, however many come and go.
async fn dropped_requests_leave_nothing_behind<R: Rt>() {
    let server = TestServer::start(Behavior::Sink);
    let (client, mut events) = R::connect(fast(&server.url()).correlate(echo_correlation).build().unwrap());
    let mut seen = vec![];
    until::<R>(&mut events, &mut seen, "connected", |e| matches!(e, Event::Connected { .. })).await;
    for n in 0..200u64 {
        // Polled once or a few times: queued, sent, maybe flushed; then dropped.
        assert!(still_pending::<R, _>(ms(1), client.request(format!("req {n}"), n)).await);
    }
    assert_eq!(client.pending_requests(), 0);
    let st = client.stats();
    assert_eq!((st.tracked, st.queue_len, st.awaiting_ack), (0, 0, 0), "{st:?}");
    let mut ended = 0;
    until::<R>(&mut events, &mut seen, "200 outcomes", |e| {
        ended += usize::from(matches!(e, Event::Outcome { outcome: Outcome::Abandoned | Outcome::Aborted, .. }));
        ended == 200
    })
    .await;
}

/// The ack timeout is the request timeout.
async fn a_request_times_out<R: Rt>() {
    let server = TestServer::start(Behavior::Sink);
    let builder = fast(&server.url()).correlate(echo_correlation).acks(AckConfig::default().timeout(Some(ms(300))));
    let (client, _events) = R::connect(builder.build().unwrap());
    let r = within::<R, _>(secs(10), "the timeout", client.request("req 1", 1u64)).await;
    assert_eq!(r.unwrap_err(), RequestError::TimedOut);
    assert_eq!(client.stats().messages_timed_out, 1);
}

/// A request's own timeout (`Request::timeout`, no ack timeout configured): from its first poll; the
/// request then ends as if dropped, leaving nothing behind, also while it waits for room in the window.
/// A response in time wins.
async fn a_request_times_out_by_its_own_timeout<R: Rt>() {
    let server = TestServer::start(Behavior::Sink);
    let builder = fast(&server.url()).correlate(echo_correlation).acks(AckConfig::default().max_messages(1));
    let (client, mut events) = R::connect(builder.build().unwrap());
    let t0 = Instant::now();
    let r = within::<R, _>(secs(10), "its own timeout", client.request("req 1", 1u64).timeout(ms(300))).await;
    assert_eq!(r.unwrap_err(), RequestError::TimedOut);
    assert!(t0.elapsed() >= ms(300), "timed out after {:?}", t0.elapsed());
    assert_eq!(client.pending_requests(), 0);
    let mut seen = vec![];
    until::<R>(&mut events, &mut seen, "its outcome", |e| {
        matches!(e, Event::Outcome { outcome: Outcome::Abandoned | Outcome::Aborted, .. })
    })
    .await;
    let st = client.stats();
    assert_eq!((st.tracked, st.queue_len, st.messages_timed_out), (0, 0, 0), "{st:?}");
    // The window (1) is held by a pending request: the next one times out while waiting for room.
    let mut first = std::pin::pin!(client.request("req 2", 2u64));
    assert!(still_pending::<R, _>(ms(50), first.as_mut()).await);
    let r = within::<R, _>(secs(10), "waiting for room", client.request("req 3", 3u64).timeout(ms(200))).await;
    assert_eq!(r.unwrap_err(), RequestError::TimedOut);
    assert_eq!((client.pending_requests(), client.stats().tracked), (1, 1));
    let echo = TestServer::start(Behavior::Echo);
    let (c2, _e2) = R::connect(fast(&echo.url()).correlate(echo_correlation).build().unwrap());
    let r = within::<R, _>(secs(10), "a response in time", c2.request("req 4 x", 4u64).timeout(secs(5))).await;
    assert_eq!(r.unwrap().as_text(), Some("req 4 x"));
    assert_eq!(c2.pending_requests(), 0);
}

/// The window bounds pending requests: the next one waits for room, and gets it when one ends.
async fn pending_requests_are_bounded<R: Rt>() {
    let server = TestServer::start(Behavior::Sink);
    let builder = fast(&server.url()).correlate(echo_correlation).acks(AckConfig::default().max_messages(2));
    let (client, _events) = R::connect(builder.build().unwrap());
    let a = client.request("req 1", 1u64);
    let b = client.request("req 2", 2u64);
    // Boxed, so that dropping it drops the requests.
    let mut both = Box::pin(futures::future::join(a, b));
    assert!(still_pending::<R, _>(ms(50), both.as_mut()).await);
    assert_eq!(client.pending_requests(), 2);
    assert!(matches!(client.try_send_tracked("x", 3u64), Err(SendError::Full(_))), "the window is full");
    assert!(still_pending::<R, _>(ms(100), client.request("req 3", 3u64)).await, "waits for room");
    // One ends (dropped): the next one is accepted.
    drop(both);
    let mut c = std::pin::pin!(client.request("req 4", 4u64));
    assert!(still_pending::<R, _>(ms(50), c.as_mut()).await);
    assert!(c.id().is_some(), "accepted once there was room");
    assert_eq!(client.pending_requests(), 1);
}

/// A connection lost with requests pending: a plain one fails with `ConnectionLost`, an idempotent one
/// is sent again on the next connection and gets its response.
async fn a_lost_connection_fails_plain_requests_and_resends_idempotent_ones<R: Rt>() {
    let server = TestServer::start(Behavior::Sink);
    let (client, mut events) = R::connect(fast(&server.url()).correlate(echo_correlation).build().unwrap());
    let plain = client.request("req 1 plain", 1u64);
    let idem = client.request("req 2 idempotent", 2u64).idempotent();
    let mut both = std::pin::pin!(futures::future::join(plain, idem));
    // Until both are written and flushed to the server that never answers.
    within::<R, _>(secs(10), "both requests flushed", async {
        while client.stats().awaiting_ack < 2 {
            assert!(still_pending::<R, _>(ms(10), both.as_mut()).await);
        }
    })
    .await;
    server.set_behavior(Behavior::Echo);
    server.stop(); // a crash
    let restart = std::thread::spawn(move || {
        std::thread::sleep(ms(100));
        server.restart();
        server
    });
    let (plain, idem) = within::<R, _>(secs(10), "both answered", both).await;
    assert_eq!(plain.unwrap_err(), RequestError::ConnectionLost);
    assert_eq!(idem.unwrap().as_text(), Some("req 2 idempotent"));
    let mut seen = vec![];
    until::<R>(&mut events, &mut seen, "a redelivery", |e| matches!(e, Event::Redelivered { .. })).await;
    let _server = restart.join().unwrap();
}

/// The JSON correlation: ids generated where there are none, the response parsed, JSON-RPC in one line.
async fn json_requests<R: Rt>() {
    let server = TestServer::start(Behavior::Echo);
    let (client, _events) = R::connect(fast(&server.url()).correlate_json("id").build().unwrap());
    let r = within::<R, _>(secs(10), "a JSON response", client.request_json(json!({"method": "m"}))).await.unwrap();
    assert_eq!(r, json!({"method": "m", "id": 1}), "the echo of the request, with the id it was given");
    let r = client.request_json(json!({"method": "m", "id": "mine"})).await.unwrap();
    assert_eq!(r["id"], "mine");
    let r = client.request_json(json!({"method": "m"})).await.unwrap();
    assert_eq!(r["id"], 2);
    assert!(matches!(client.request_json(json!([1, 2])).await, Err(RequestError::Json(_))));
    assert!(matches!(client.request_json(json!({"id": null})).await, Err(RequestError::Json(_))));
    // A key in use is refused, with the message back.
    let sink = TestServer::start(Behavior::Sink);
    let (c2, _e2) = R::connect(fast(&sink.url()).correlate_json("id").build().unwrap());
    let first = c2.request_json(json!({"id": 5}));
    let mut first = std::pin::pin!(first);
    assert!(still_pending::<R, _>(ms(50), first.as_mut()).await);
    let dup = c2.request_json(json!({"id": 5})).await;
    assert!(matches!(dup, Err(RequestError::Refused(SendError::DuplicateKey { .. }))), "{dup:?}");
}

/// Tracked sends with `Tracking` and a receipt; a duplicate key is refused; `cancel` by hand.
async fn receipts_duplicates_and_cancel<R: Rt>() {
    let server = AckServer::start_at("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let (client, _events) = R::connect(fast(&server.url()).correlate(ack_correlation).build().unwrap());
    let receipt = client.send_tracked_with_receipt("a 1", Tracking::new("a").redeliver(false)).await.unwrap();
    assert_eq!(within::<R, _>(secs(10), "the receipt", receipt).await, Outcome::Acked);
    let sink = TestServer::start(Behavior::Sink);
    let (c2, _e2) = R::connect(fast(&sink.url()).build().unwrap());
    c2.send_tracked("x", "x").await.unwrap();
    let err = c2.send_tracked("x again", "x").await.unwrap_err();
    assert!(matches!(&err, SendError::DuplicateKey { message, .. } if message.as_text() == Some("x again")));
    assert!(c2.cancel("x").is_some());
    c2.send_tracked("x third", "x").await.unwrap();
}

macro_rules! on_runtimes {
    ($($name:ident),* $(,)?) => {
        mod on_tokio { use super::*; $( #[test] fn $name() { Tokio::block_on(super::$name::<Tokio>()); } )* }
        mod on_smol { use super::*; $( #[test] fn $name() { Smol::block_on(super::$name::<Smol>()); } )* }
        mod on_async_std { use super::*; $( #[test] fn $name() { AsyncStd::block_on(super::$name::<AsyncStd>()); } )* }
    };
}

on_runtimes!(
    tracked_messages_are_acked_by_the_server,
    requests_get_their_own_response,
    dropped_requests_leave_nothing_behind,
    a_request_times_out,
    a_request_times_out_by_its_own_timeout,
    pending_requests_are_bounded,
    a_lost_connection_fails_plain_requests_and_resends_idempotent_ones,
    json_requests,
    receipts_duplicates_and_cancel,
);
