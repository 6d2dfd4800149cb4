//! JSON-RPC request/response against peers we did not write: Node's `ws` and Python's `websockets`
//! answering JSON-RPC 2.0 (`jsonrpc` mode of tests/interop/ws_server.js and websockets_server.py), with
//! the JSON correlation (`correlate_json("id")`), on tokio, smol and async-std. Including the server
//! process restarting with requests pending: idempotent ones are sent again and answered, the others
//! fail with `ConnectionLost`, and one queued while the server was down goes out once it is back.
//!
//! The peers are installed as for tests/tests/interop.rs (`TETHER_SKIP_INTEROP=1` skips explicitly).

use std::time::Duration;

use futures::StreamExt;
use futures::future::{Either, join_all, select};
use serde_json::json;
use tether::{BackoffConfig, ClientBuilder, Event, Events, RequestError};

mod common;
use common::peers::{Kind, Peer, enabled};
use common::runtimes::{AsyncStd, Rt, Smol, Tokio, within};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn rpc(url: &str) -> ClientBuilder {
    ClientBuilder::new(url)
        .backoff(BackoffConfig::default().base(ms(20)).max_delay(ms(200)).stable_after(ms(300)))
        .connect_timeout(secs(3))
        .close_timeout(secs(2))
        .correlate_json("id")
}

/// Waits (bounded) for a JSON-RPC notification with `method` on the event stream.
async fn notification<R: Rt>(events: &mut Events, method: &str) -> serde_json::Value {
    within::<R, _>(secs(10), method, async {
        while let Some(e) = events.next().await {
            if let Event::Message(m) = e
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(m.payload())
                && v["method"] == method
            {
                return v;
            }
        }
        panic!("the event stream ended before the {method} notification");
    })
    .await
}

/// Requests and their results; many at once, each gets its own; a method error is a response too; the
/// server's notifications (no id) are ordinary messages.
async fn round_trips<R: Rt>(kind: Kind) {
    let peer = Peer::start(kind, "jsonrpc");
    let (client, mut events) = R::connect(rpc(&peer.url()).build().unwrap());
    assert_eq!(notification::<R>(&mut events, "hello").await["params"]["conn"], 1);
    let r = within::<R, _>(
        secs(10),
        "add",
        client.request_json(json!({"jsonrpc": "2.0", "method": "add", "params": [2, 3]})),
    )
    .await
    .unwrap();
    assert_eq!((r["result"].clone(), r["id"].clone()), (json!(5), json!(1)));
    let many =
        join_all((0..50).map(|i| client.request_json(json!({"jsonrpc": "2.0", "method": "echo", "params": [i]}))));
    for (i, r) in within::<R, _>(secs(10), "50 echoes", many).await.into_iter().enumerate() {
        assert_eq!(r.unwrap()["result"], json!([i]));
    }
    let e = client.request_json(json!({"jsonrpc": "2.0", "method": "nope", "id": "s1"})).await.unwrap();
    assert_eq!((e["error"]["code"].clone(), e["id"].clone()), (json!(-32601), json!("s1")));
    assert_eq!(client.pending_requests(), 0);
    let st = client.stats();
    assert_eq!((st.messages_acked, st.tracked, st.acks_unknown), (52, 0, 0), "{st:?}");
    client.close(1000, "done").await.unwrap();
}

/// The server process restarts while requests are pending.
async fn restart_with_requests_pending<R: Rt>(kind: Kind) {
    let mut peer = Peer::start(kind, "jsonrpc");
    let (client, mut events) = R::connect(rpc(&peer.url()).build().unwrap());
    notification::<R>(&mut events, "hello").await;
    let slow = |id: u64| json!({"jsonrpc": "2.0", "method": "slow", "params": [1500], "id": id});
    let plain = client.request_json(slow(1));
    let idempotent = client.request_json(slow(2)).idempotent();
    let mut both = Box::pin(futures::future::join(plain, idempotent));
    // Both written and flushed; the server holds them for 1.5 s.
    within::<R, _>(secs(10), "both requests flushed", async {
        while client.stats().awaiting_ack < 2 {
            assert!(matches!(select(both.as_mut(), std::pin::pin!(R::sleep(ms(10)))).await, Either::Right(_)));
        }
    })
    .await;
    // The peer is killed and started again on the same port (blocking: a thread of its own).
    let restarted = std::thread::spawn(move || {
        peer.restart();
        peer
    });
    // A request made while the server is down waits in the queue, and is sent once it is back.
    within::<R, _>(secs(10), "the connection lost", async {
        while let Some(e) = events.next().await {
            if matches!(e, Event::Disconnected { .. }) {
                return;
            }
        }
    })
    .await;
    let queued = client.request_json(json!({"jsonrpc": "2.0", "method": "add", "params": [40, 2], "id": 3}));
    let (all, queued) =
        within::<R, _>(secs(20), "answers after the restart", futures::future::join(both, queued)).await;
    let (plain, idempotent) = all;
    assert_eq!(plain.unwrap_err(), RequestError::ConnectionLost);
    assert_eq!(idempotent.unwrap()["result"], "done");
    assert_eq!(queued.unwrap()["result"], 42);
    let st = client.stats();
    assert!(st.messages_redelivered >= 1 && st.reconnects >= 1, "{st:?}");
    let _peer = restarted.join().unwrap();
    client.close(1000, "done").await.unwrap();
}

macro_rules! interop {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;
                #[test]
                fn node_ws_on_tokio() { if enabled(Kind::Node) { Tokio::block_on(super::$name::<Tokio>(Kind::Node)) } }
                #[test]
                fn node_ws_on_smol() { if enabled(Kind::Node) { Smol::block_on(super::$name::<Smol>(Kind::Node)) } }
                #[test]
                fn node_ws_on_async_std() { if enabled(Kind::Node) { AsyncStd::block_on(super::$name::<AsyncStd>(Kind::Node)) } }
                #[test]
                fn python_websockets_on_tokio() { if enabled(Kind::Python) { Tokio::block_on(super::$name::<Tokio>(Kind::Python)) } }
                #[test]
                fn python_websockets_on_smol() { if enabled(Kind::Python) { Smol::block_on(super::$name::<Smol>(Kind::Python)) } }
                #[test]
                fn python_websockets_on_async_std() { if enabled(Kind::Python) { AsyncStd::block_on(super::$name::<AsyncStd>(Kind::Python)) } }
            }
        )*
    };
}

interop!(round_trips, restart_with_requests_pending);
