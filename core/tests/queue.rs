//! Scenario tests with injected time: queue limits, overflow, expiry, FIFO, preamble, in-flight policy,
//! close, and stats.

mod common;

use std::time::Duration;

use common::*;
use tether_core::*;

fn small_queue(overflow: Overflow) -> Config {
    let mut c = exact();
    c.queue.max_messages = 3;
    c.queue.max_bytes = 1_000;
    c.queue.overflow = overflow;
    c
}

#[test]
fn reject_hands_the_message_back_and_unblocks_once() {
    let mut h = H::new(small_queue(Overflow::Reject));
    let ids: Vec<_> = (0..3).map(|i| h.send(&format!("m{i}"))).collect();
    let err = h.s.send(h.now, Message::text("m3")).unwrap_err();
    assert!(matches!(&err, SendError::Full(m) if m.as_text() == Some("m3")));
    assert!(h.s.send(h.now, Message::text("m4")).is_err());
    assert_eq!(h.s.stats(h.now).messages_refused, 2);
    assert!(!h.take_events().contains(&Event::QueueUnblocked));
    let t = h.connect();
    h.open(t);
    let acts = h.drain();
    assert_eq!(h.flush_all(t, &acts), ids);
    let ev = h.take_events();
    assert_eq!(ev.iter().filter(|e| **e == Event::QueueUnblocked).count(), 1);
}

#[test]
fn byte_limit_and_too_large() {
    let mut h = H::new(small_queue(Overflow::Reject));
    h.s.send(h.now, Message::binary(vec![0; 600])).unwrap();
    assert!(matches!(h.s.send(h.now, Message::binary(vec![0; 401])), Err(SendError::Full(_))));
    h.s.send(h.now, Message::binary(vec![0; 400])).unwrap();
    assert_eq!(h.s.queue_bytes(), 1_000);
    let err = h.s.send(h.now, Message::binary(vec![0; 1_001])).unwrap_err();
    assert!(matches!(err, SendError::TooLarge { max_bytes: 1_000, .. }));
}

#[test]
fn drop_oldest_reports_what_it_drops() {
    let mut h = H::new(small_queue(Overflow::DropOldest));
    let ids: Vec<_> = (0..5).map(|i| h.send(&format!("m{i}"))).collect();
    assert_eq!(h.s.queue_len(), 3);
    assert_eq!(h.outcomes(), vec![(ids[0], Outcome::Dropped), (ids[1], Outcome::Dropped)]);
    let t = h.connected();
    let acts = h.drain();
    assert_eq!(sent_texts(&acts), vec!["m2", "m3", "m4"]);
    h.flush_all(t, &acts);
    assert_eq!(h.s.stats(h.now).messages_dropped, 2);
    // Byte overflow drops as many as needed, and never an in-flight message.
    let mut h = H::new(small_queue(Overflow::DropOldest));
    let a = h.s.send(h.now, Message::binary(vec![0; 400])).unwrap();
    let b = h.s.send(h.now, Message::binary(vec![0; 400])).unwrap();
    let _c = h.s.send(h.now, Message::binary(vec![0; 900])).unwrap();
    assert_eq!(h.outcomes(), vec![(a, Outcome::Dropped), (b, Outcome::Dropped)]);
}

#[test]
fn ttl_expiry_is_reported_and_never_sent() {
    let mut cfg = exact();
    cfg.queue.ttl = Some(ms(500));
    let mut h = H::new(cfg);
    let t = h.connect();
    h.fail_open(t, OpenError::Tcp("refused".into()));
    let old = h.send("old");
    h.at(ms(300));
    let young = h.send("young");
    assert_eq!(h.s.poll_timeout(), Some(h.t0 + ms(100)), "the retry comes first");
    h.at(ms(500)).tick();
    let t = h.expect_open();
    assert_eq!(h.outcomes(), vec![(old, Outcome::Expired)]);
    h.at(ms(850));
    h.open(t);
    let acts = h.drain();
    assert_eq!(sent_texts(&acts), Vec::<String>::new(), "young expired at 800 ms, before the open");
    assert!(h.outcomes().contains(&(young, Outcome::Expired)));
    assert_eq!(h.s.stats(h.now).messages_expired, 2);
}

#[test]
fn fifo_across_reconnects_backlog_before_new() {
    let mut h = H::new(exact());
    let t = h.connected();
    h.send("a");
    let acts = h.drain();
    h.flush_all(t, &acts);
    h.drop_conn(t);
    h.send("b");
    h.send("c");
    h.step();
    let t = h.expect_open();
    h.open(t);
    h.send("d");
    let acts = h.drain();
    assert_eq!(sent_texts(&acts), vec!["b", "c", "d"]);
}

#[test]
fn preamble_goes_first_on_every_connection() {
    let mut h = H::new(exact());
    h.s.set_preamble(vec![Message::text("auth"), Message::text("subscribe")]);
    h.send("backlog");
    let t = h.connected();
    h.send("new");
    let acts = h.drain();
    assert_eq!(sent_texts(&acts), vec!["auth", "subscribe", "backlog", "new"]);
    assert!(acts.iter().take(2).all(|a| matches!(a, Action::Send { id: None, .. })));
    h.flush_all(t, &acts);
    h.drop_conn(t);
    h.send("later");
    h.step();
    let t = h.expect_open();
    h.open(t);
    assert_eq!(sent_texts(&h.drain()), vec!["auth", "subscribe", "later"]);
}

#[test]
fn in_flight_abandoned_by_default() {
    let mut h = H::new(exact());
    let t = h.connected();
    let a = h.send("a");
    let b = h.send("b");
    let acts = h.drain();
    h.ev(t, TransportEvent::Flushed { through: a });
    h.drop_conn(t);
    assert_eq!(h.outcomes(), vec![(a, Outcome::Sent), (b, Outcome::Abandoned)]);
    h.step();
    let t = h.expect_open();
    h.open(t);
    assert_eq!(sent_texts(&h.drain()), Vec::<String>::new());
    let _ = acts;
}

#[test]
fn in_flight_requeued_under_requeue_policy() {
    let mut cfg = exact();
    cfg.queue.in_flight = InFlightPolicy::Requeue;
    let mut h = H::new(cfg);
    h.s.set_preamble(vec![Message::text("auth")]);
    let t = h.connected();
    let a = h.send("a");
    let b = h.send("b");
    let c = h.send("c");
    h.drain();
    assert_eq!(h.s.stats(h.now).queue_in_flight, 3);
    h.ev(t, TransportEvent::Flushed { through: a });
    assert_eq!(h.s.stats(h.now).queue_in_flight, 2);
    h.drop_conn(t);
    assert_eq!(h.s.stats(h.now).queue_in_flight, 0);
    let d = h.send("d");
    let ev = h.take_events();
    assert!(ev.contains(&Event::Requeued { id: b }) && ev.contains(&Event::Requeued { id: c }));
    h.step();
    let t = h.expect_open();
    h.open(t);
    let acts = h.drain();
    assert_eq!(sent_texts(&acts), vec!["auth", "b", "c", "d"]);
    h.flush_all(t, &acts);
    assert_eq!(h.outcomes(), vec![(b, Outcome::Sent), (c, Outcome::Sent), (d, Outcome::Sent)]);
    assert_eq!(h.s.stats(h.now).messages_requeued, 2);
}

#[test]
fn every_message_gets_one_outcome_through_an_outage() {
    let mut h = H::new(exact());
    let mut ids = vec![];
    let t = h.connected();
    for i in 0..10 {
        ids.push(h.send(&format!("{i}")));
    }
    let acts = h.drain();
    let flushed = h.flush_all(t, &acts[..5]);
    assert_eq!(flushed.len(), 5);
    h.drop_conn(t);
    for i in 10..15 {
        ids.push(h.send(&format!("{i}")));
    }
    h.step();
    let t = h.expect_open();
    h.open(t);
    let acts = h.drain();
    h.flush_all(t, &acts);
    let mut got: Vec<_> = h.outcomes().into_iter().map(|(id, _)| id).collect();
    got.sort();
    assert_eq!(got, ids);
}

#[test]
fn graceful_close_drains_then_closes() {
    let mut h = H::new(exact());
    let t = h.connected();
    let a = h.send("a");
    h.drain();
    let b = h.send("b");
    h.s.close(h.now, 1000, "done", CloseMode::Drain).unwrap();
    assert_eq!(h.s.state(), State::Closing);
    let acts = h.drain();
    assert!(matches!(&acts[..], [Action::Send { id: Some(x), .. }, Action::Close { code: 1000, .. }] if *x == b));
    h.ev(t, TransportEvent::Flushed { through: b });
    h.ev(t, TransportEvent::Received(Frame::Close(Some(CloseFrame { code: 1000, reason: "done".into() }))));
    assert_eq!(h.s.state(), State::Closed);
    assert_eq!(h.outcomes(), vec![(a, Outcome::Sent), (b, Outcome::Sent)]);
    assert!(h.take_events().iter().any(|e| matches!(e, Event::Closed { cause: Cause::CloseCompleted, .. })));
    h.at(secs(100)).tick();
    assert_eq!(h.drain(), vec![], "no reconnect after a user close");
    assert_eq!(h.s.poll_timeout(), None);
}

#[test]
fn abort_close_reports_aborted() {
    let mut h = H::new(exact());
    let t = h.connected();
    let a = h.send("a");
    h.drain();
    let b = h.send("b");
    h.s.close(h.now, 1001, "shutdown", CloseMode::Abort).unwrap();
    let acts = h.drain();
    assert!(matches!(&acts[..], [Action::Close { code: 1001, .. }]));
    assert_eq!(h.outcomes(), vec![(b, Outcome::Aborted)]);
    // The close handshake never completes: the close timeout ends it, the in-flight one is abandoned.
    h.at(secs(1)).tick();
    assert_eq!(h.s.state(), State::Closed);
    assert!(h.outcomes().contains(&(a, Outcome::Abandoned)));
    assert!(h.take_events().iter().any(|e| matches!(e, Event::Closed { cause: Cause::CloseTimeout, .. })));
    let _ = t;
}

#[test]
fn close_while_reconnecting_aborts_the_queue() {
    let mut h = H::new(exact());
    let t = h.connected();
    h.drop_conn(t);
    let a = h.send("a");
    h.s.close(h.now, 1000, "", CloseMode::Drain).unwrap();
    assert_eq!(h.s.state(), State::Closed);
    assert_eq!(h.outcomes(), vec![(a, Outcome::Aborted)]);
    // And while connecting, the pending transport is released.
    let mut h = H::new(exact());
    let t = h.connect();
    h.s.close(h.now, 1000, "", CloseMode::Drain).unwrap();
    assert!(matches!(h.drain().as_slice(), [Action::Abort { transport }] if *transport == t));
    assert_eq!(h.states(), vec![State::Connecting, State::Closed]);
}

#[test]
fn stats_count_what_happened() {
    let mut h = H::new(exact());
    let t = h.connected();
    h.send("hello");
    let acts = h.drain();
    h.at(ms(10));
    h.flush_all(t, &acts);
    h.ev(t, TransportEvent::Received(Frame::Message(Message::binary(vec![0; 7]))));
    h.at(ms(500));
    h.remote_close(t, 1001);
    h.step();
    let t = h.expect_open();
    h.s.handle_transport(h.now, t, TransportEvent::Opened(ConnectInfo::new(ms(9))));
    h.at(ms(1_000));
    let s = h.s.stats(h.now);
    assert_eq!((s.messages_sent, s.bytes_sent), (1, 5));
    assert_eq!((s.messages_received, s.bytes_received), (1, 7));
    assert_eq!((s.attempts, s.connects, s.reconnects, s.failed_attempts), (2, 2, 1, 1));
    assert_eq!(s.errors.remote_close, 1);
    assert_eq!(s.errors.total(), 1);
    assert_eq!(s.last_handshake, Some(ms(9)));
    assert_eq!(s.last_message_at, Some(h.t0 + ms(10)));
    assert_eq!(s.uptime, ms(400));
    assert_eq!(s.total_connected, ms(900));
    assert_eq!((s.queue_len, s.queue_bytes, s.messages_accepted), (0, 0, 1));
}

/// Messages that expire while being handed out make room: `QueueUnblocked` follows at once, whether
/// the driver takes actions one by one or in a batch.
#[test]
fn expiry_at_hand_out_unblocks_in_batches_too() {
    let run = |batched: bool| {
        let mut cfg = small_queue(Overflow::Reject);
        cfg.queue.ttl = Some(ms(500));
        let mut h = H::new(cfg);
        let t = h.connected();
        h.take_events();
        for i in 0..3 {
            h.s.send(h.now, Message::text(format!("m{i}"))).unwrap();
        }
        assert!(matches!(h.s.send(h.now, Message::text("m3")), Err(SendError::Full(_))));
        // Time moves past the TTL through an input that does not look at the queue.
        h.at(ms(600)).ev(t, TransportEvent::Received(Frame::Message(Message::text("hi"))));
        let mut actions = std::collections::VecDeque::new();
        if batched {
            while h.s.drain_actions(&mut actions, 2) > 0 {}
        } else {
            actions.extend(std::iter::from_fn(|| h.s.poll_action()));
        }
        assert!(actions.is_empty(), "expired messages are never sent: {actions:?}");
        let events: Vec<Event> = std::iter::from_fn(|| h.s.poll_event()).collect();
        assert_eq!(events.iter().filter(|e| matches!(e, Event::Outcome { outcome: Outcome::Expired, .. })).count(), 3);
        assert_eq!(events.last(), Some(&Event::QueueUnblocked), "{events:?}");
        events
    };
    assert_eq!(run(true), run(false));
}

/// Issue 11, defect 10: `Stats::messages_sent` counts messages flushed to a transport, the preamble's
/// included, so a preamble handed out to a transport that dies before flushing it is not counted.
#[test]
fn preamble_is_counted_sent_when_flushed() {
    let mut h = H::new(exact());
    h.s.set_preamble(vec![Message::text("auth"), Message::text("subscribe")]);
    let t = h.connected();
    let acts = h.drain();
    assert_eq!(sent_texts(&acts), vec!["auth", "subscribe"]);
    let s = h.s.stats(h.now);
    assert_eq!((s.messages_sent, s.bytes_sent), (0, 0), "handed out is not sent");
    h.at(ms(10)).ev(t, TransportEvent::PreambleFlushed { count: 1 });
    let s = h.s.stats(h.now);
    assert_eq!((s.messages_sent, s.bytes_sent, s.last_message_at), (1, 4, Some(h.t0 + ms(10))));
    // Cumulative: a repeated report counts nothing twice, and never more than was handed out.
    h.ev(t, TransportEvent::PreambleFlushed { count: 1 });
    h.ev(t, TransportEvent::PreambleFlushed { count: 7 });
    let s = h.s.stats(h.now);
    assert_eq!((s.messages_sent, s.bytes_sent), (2, 13));
    // On the next transport the preamble goes out again; dying before its flush counts nothing.
    h.drop_conn(t);
    h.step();
    let t2 = h.expect_open();
    h.open(t2);
    assert_eq!(sent_texts(&h.drain()), vec!["auth", "subscribe"]);
    h.drop_conn(t2);
    assert_eq!(h.s.stats(h.now).messages_sent, 2);
}

/// Issue 11, defect 8: instants and durations far beyond any real clock (a caller's bug, a corrupted
/// clock) must not panic the core: RTT samples, uptime and connected-time sums saturate. `Instant` spans
/// about 2^64 s, more than a `Duration` sum of its spans can hold when they add up from one end to the
/// other.
#[test]
fn absurd_instants_do_not_panic_the_core() {
    // The earliest instant this platform represents (within a second).
    let mut t0 = std::time::Instant::now();
    for shift in (0..64).rev() {
        while let Some(earlier) = t0.checked_sub(Duration::from_secs(1 << shift)) {
            t0 = earlier;
        }
    }
    let mut h = H { s: Session::new(exact(), t0).unwrap(), t0, now: t0, actions: vec![], events: vec![] };
    let huge = Duration::from_secs(1 << 62);
    let mut t = h.connected();
    h.drain();
    // Time runs as far as it can, in spans of about 2^62 s: pings answered after such a span give RTT
    // samples whose weighted average overflows, and connected time summed over transports overflows.
    let mut at = Duration::ZERO;
    let mut samples = 0;
    while let Some(next) = at.checked_add(huge).filter(|d| t0.checked_add(*d + secs(10)).is_some()) {
        h.at(at + secs(2)).tick();
        let ping = h
            .drain()
            .iter()
            .find_map(|a| if let Action::Ping { payload, .. } = a { Some(payload.clone()) } else { None });
        at = next;
        if let Some(p) = ping {
            h.at(at).ev(t, TransportEvent::Received(Frame::Pong(p)));
            samples += 1;
        }
        let _ = h.s.stats(h.now);
        h.drop_conn(t);
        h.step();
        t = h.expect_open();
        h.open(t);
    }
    let s = h.s.stats(h.now);
    assert!(samples >= 2 && s.rtt.samples >= 2, "{samples} pongs, {:?}", s.rtt);
    assert!(s.rtt.ewma.is_some_and(|e| e >= huge / 2), "{:?}", s.rtt);
    assert!(s.total_connected >= huge * 2, "{:?}", s.total_connected);
}
