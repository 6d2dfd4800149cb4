//! Tracked (acknowledged) messages, with injected time: acknowledgement, redelivery after a lost
//! connection, the window, duplicate and unknown keys, the ack timeout, responses, cancel, and how
//! close and failure end them. The rules are in `tether_core::acks`.

mod common;

use common::*;
use tether_core::*;

fn tracked(h: &mut H, key: &str, text: &str) -> MessageId {
    h.s.send_tracked(h.now, Message::text(text.to_owned()), key).expect("accepted")
}

fn key(k: &str) -> AckKey {
    AckKey::from(k)
}

fn events_of(h: &mut H) -> Vec<Event> {
    h.take_events()
}

/// Ids of `Event::Redelivered` / `Event::Requeued`, in order.
fn put_back(ev: &[Event]) -> Vec<(MessageId, bool)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Redelivered { id } => Some((*id, true)),
            Event::Requeued { id } => Some((*id, false)),
            _ => None,
        })
        .collect()
}

fn outcomes(ev: &[Event]) -> Vec<(MessageId, Outcome)> {
    ev.iter()
        .filter_map(|e| if let Event::Outcome { id, outcome } = e { Some((*id, *outcome)) } else { None })
        .collect()
}

#[test]
fn a_flushed_tracked_message_waits_for_its_ack_then_ends_acked() {
    let mut h = H::new(exact());
    let t = h.connected();
    h.take_events();
    let id = tracked(&mut h, "k1", "order");
    let acts = h.drain();
    assert_eq!(sent_texts(&acts), vec!["order"]);
    h.flush_all(t, &acts);
    assert_eq!(outcomes(&events_of(&mut h)), vec![], "flushed is not done");
    let st = h.s.stats(h.now);
    assert_eq!((st.messages_sent, st.awaiting_ack, st.tracked, st.queue_len), (1, 1, 1, 1));
    assert_eq!(h.s.ack(h.now, &key("k1")), Some(id));
    assert_eq!(outcomes(&events_of(&mut h)), vec![(id, Outcome::Acked)]);
    let st = h.s.stats(h.now);
    assert_eq!((st.messages_acked, st.awaiting_ack, st.tracked, st.queue_len, st.acks_unknown), (1, 0, 0, 0, 0));
    // The key is free again, and a second ack for it is unknown, not an error.
    assert_eq!(h.s.ack(h.now, &key("k1")), None);
    assert_eq!(h.s.stats(h.now).acks_unknown, 1);
    tracked(&mut h, "k1", "again");
}

#[test]
fn an_ack_counts_only_for_a_message_sent_on_some_connection() {
    let mut h = H::new(exact());
    let id = tracked(&mut h, "k", "queued");
    // Not connected: it has never left the queue, so this cannot be its acknowledgement.
    assert_eq!(h.s.ack(h.now, &key("k")), None);
    assert_eq!(h.s.ack(h.now, &key("never used")), None);
    assert_eq!(h.s.stats(h.now).acks_unknown, 2);
    let t = h.connected();
    let acts = h.drain();
    assert_eq!(sent_texts(&acts), vec!["queued"]);
    // Handed out, the flush not reported yet: an acknowledgement may overtake that report.
    assert_eq!(h.s.ack(h.now, &key("k")), Some(id));
    assert_eq!(h.s.in_flight(), 0);
    h.flush_all(t, &acts);
    assert_eq!(outcomes(&events_of(&mut h)), vec![(id, Outcome::Acked)], "one outcome, no Sent after the flush");
    assert_eq!(h.s.queue_len(), 0);
}

#[test]
fn a_lost_connection_redelivers_first_in_original_order_and_abandons_the_rest_per_policy() {
    let mut h = H::new(exact());
    let t = h.connected();
    h.s.set_preamble(vec![Message::text("auth")]);
    let t1 = tracked(&mut h, "t1", "t1"); // flushed, awaiting its ack
    let u2 = h.send("u2"); // flushed: Sent
    let t3 = tracked(&mut h, "t3", "t3"); // acknowledged
    let t4 = tracked(&mut h, "t4", "t4"); // in flight
    let u5 = h.send("u5"); // in flight: Abandoned (the default policy)
    let acts = h.drain();
    assert_eq!(sent_texts(&acts), vec!["t1", "u2", "t3", "t4", "u5"]);
    h.ev(t, TransportEvent::Flushed { through: t3 });
    h.s.ack(h.now, &key("t3"));
    let t6 = tracked(&mut h, "t6", "t6"); // pending
    let u7 = h.send("u7");
    h.drop_conn(t);
    let ev = events_of(&mut h);
    assert_eq!(put_back(&ev), vec![(t1, true), (t4, true)]);
    assert_eq!(outcomes(&ev), vec![(u2, Outcome::Sent), (t3, Outcome::Acked), (u5, Outcome::Abandoned)]);
    assert_eq!(h.s.stats(h.now).messages_redelivered, 2);
    // The new connection: the preamble, the redelivered ones, then the backlog.
    h.step();
    let t2 = h.expect_open();
    h.open(t2);
    h.s.set_preamble(vec![Message::text("auth")]);
    let acts = h.drain();
    assert_eq!(sent_texts(&acts), vec!["t1", "t4", "t6", "u7"]);
    h.flush_all(t2, &acts);
    for k in ["t6", "t1", "t4"] {
        h.s.ack(h.now, &key(k));
    }
    let ev = events_of(&mut h);
    assert_eq!(
        outcomes(&ev),
        vec![(u7, Outcome::Sent), (t6, Outcome::Acked), (t1, Outcome::Acked), (t4, Outcome::Acked)]
    );
    assert_eq!((h.s.queue_len(), h.s.tracked_len()), (0, 0));
}

#[test]
fn redelivered_and_requeued_messages_merge_in_id_order() {
    let mut cfg = exact();
    cfg.queue.in_flight = InFlightPolicy::Requeue;
    let mut h = H::new(cfg);
    let t = h.connected();
    let a = tracked(&mut h, "a", "a");
    let b = h.send("b");
    let c = tracked(&mut h, "c", "c");
    let d = h.send("d");
    let acts = h.drain();
    h.ev(t, TransportEvent::Flushed { through: a }); // a awaits its ack; b, c, d in flight
    drop(acts);
    h.drop_conn(t);
    let ev = events_of(&mut h);
    assert_eq!(put_back(&ev), vec![(a, true), (b, false), (c, true), (d, false)]);
    h.step();
    let t2 = h.expect_open();
    h.open(t2);
    assert_eq!(sent_texts(&h.drain()), vec!["a", "b", "c", "d"]);
}

#[test]
fn an_ack_for_a_message_waiting_for_its_redelivery_ends_it_there() {
    let mut h = H::new(exact());
    let t = h.connected();
    let a = tracked(&mut h, "a", "a");
    let b = tracked(&mut h, "b", "b");
    let acts = h.drain();
    h.flush_all(t, &acts);
    h.drop_conn(t);
    h.take_events();
    // The application read the ack of `a` from the old connection only now.
    assert_eq!(h.s.ack(h.now, &key("a")), Some(a));
    h.step();
    let t2 = h.expect_open();
    h.open(t2);
    assert_eq!(sent_texts(&h.drain()), vec!["b"], "nothing acknowledged is sent again");
    let _ = b;
}

#[test]
fn without_redelivery_a_lost_message_is_abandoned_and_a_queued_one_still_goes() {
    let mut cfg = exact();
    cfg.queue.in_flight = InFlightPolicy::Requeue; // even so
    let mut h = H::new(cfg);
    let t = h.connected();
    let flushed = h.s.send_tracked(h.now, Message::text("f"), Tracking::new("f").redeliver(false)).unwrap();
    let in_flight = h.s.send_tracked(h.now, Message::text("i"), Tracking::new("i").redeliver(false)).unwrap();
    h.drain();
    h.ev(t, TransportEvent::Flushed { through: flushed });
    h.drop_conn(t);
    let queued = h.s.send_tracked(h.now, Message::text("q"), Tracking::new("q").redeliver(false)).unwrap();
    let ev = events_of(&mut h);
    assert_eq!(outcomes(&ev), vec![(flushed, Outcome::Abandoned), (in_flight, Outcome::Abandoned)]);
    assert_eq!(put_back(&ev), vec![]);
    h.step();
    let t2 = h.expect_open();
    h.open(t2);
    assert_eq!(sent_texts(&h.drain()), vec!["q"]);
    assert_eq!(h.s.tracked_len(), 1);
    let _ = queued;
}

#[test]
fn the_window_refuses_like_a_full_queue_and_unblocks_once() {
    let mut cfg = exact();
    cfg.acks = AckConfig::default().max_messages(2).max_bytes(100);
    let mut h = H::new(cfg);
    let t = h.connected();
    tracked(&mut h, "a", "a");
    tracked(&mut h, "b", "b");
    let err = h.s.send_tracked(h.now, Message::text("c"), "c").unwrap_err();
    assert!(matches!(&err, SendError::Full(m) if m.as_text() == Some("c")), "{err:?}");
    // Untracked messages do not count against the window.
    h.send("untracked");
    let acts = h.drain();
    h.flush_all(t, &acts);
    assert!(!events_of(&mut h).contains(&Event::QueueUnblocked), "flushed is not acknowledged");
    h.s.ack(h.now, &key("a"));
    h.s.ack(h.now, &key("b"));
    let ev = events_of(&mut h);
    assert_eq!(ev.iter().filter(|e| **e == Event::QueueUnblocked).count(), 1);
    // Bytes: 60 + 50 > 100; a message over the window's byte limit can never fit.
    h.s.send_tracked(h.now, Message::binary(vec![0; 60]), "x").unwrap();
    assert!(matches!(h.s.send_tracked(h.now, Message::binary(vec![0; 50]), "y"), Err(SendError::Full(_))));
    assert!(matches!(
        h.s.send_tracked(h.now, Message::binary(vec![0; 101]), "z"),
        Err(SendError::TooLarge { max_bytes: 100, .. })
    ));
    assert_eq!(h.s.stats(h.now).tracked_bytes, 60);
}

#[test]
fn a_duplicate_key_in_flight_is_refused_with_the_message_back() {
    let mut h = H::new(exact());
    h.connected();
    tracked(&mut h, "k", "first");
    let err = h.s.send_tracked(h.now, Message::text("second"), "k").unwrap_err();
    assert_eq!(
        err.to_string(),
        "a tracked message with key \"k\" is already waiting for its acknowledgement; use a fresh key"
    );
    match err {
        SendError::DuplicateKey { message, key: k } => {
            assert_eq!((message.as_text(), k), (Some("second"), key("k")));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.s.stats(h.now).messages_refused, 1);
    // Numbers and text are different keys.
    h.s.send_tracked(h.now, Message::text("n"), 7u64).unwrap();
    h.s.send_tracked(h.now, Message::text("s"), "7").unwrap();
}

#[test]
fn the_ack_timeout_ends_a_message_wherever_it_is() {
    let mut cfg = exact();
    cfg.acks.timeout = Some(secs(3));
    cfg.heartbeat = None;
    let mut h = H::new(cfg);
    let t = h.connected();
    h.take_events();
    let awaiting = tracked(&mut h, "w", "w");
    let acts = h.drain();
    h.flush_all(t, &acts);
    h.at(ms(500));
    let in_flight = tracked(&mut h, "i", "i");
    h.drain();
    h.at(ms(1_000));
    h.drop_conn(t); // `w` and `i` go back in line; the backoff is 100 ms
    h.take_events();
    h.at(ms(1_050));
    let queued = tracked(&mut h, "q", "q");
    // Deadlines: 3 s, 3.5 s, 4.05 s after each send; the backoff first.
    assert_eq!(h.s.poll_timeout(), Some(h.t0 + ms(1_100)));
    h.at(ms(1_100)).tick();
    let t2 = h.expect_open();
    h.open(t2);
    let acts = h.drain();
    assert_eq!(sent_texts(&acts), vec!["w", "i", "q"]);
    h.ev(t2, TransportEvent::Flushed { through: in_flight }); // `q` stays in flight
    h.take_events();
    assert_eq!(h.step(), h.t0 + ms(2_100), "the Stable timer of the new connection");
    assert_eq!(h.step(), h.t0 + secs(3));
    assert_eq!(outcomes(&events_of(&mut h)), vec![(awaiting, Outcome::TimedOut)]);
    assert_eq!(h.step(), h.t0 + ms(3_500));
    assert_eq!(h.step(), h.t0 + ms(4_050));
    assert_eq!(outcomes(&events_of(&mut h)), vec![(in_flight, Outcome::TimedOut), (queued, Outcome::TimedOut)]);
    assert_eq!(h.s.poll_timeout(), None);
    assert_eq!((h.s.queue_len(), h.s.tracked_len(), h.s.in_flight()), (0, 0, 0));
    // A late flush report and a late acknowledgement are harmless.
    h.ev(t2, TransportEvent::Flushed { through: queued });
    assert_eq!(h.s.ack(h.now, &key("q")), None);
    let st = h.s.stats(h.now);
    assert_eq!((st.messages_timed_out, st.acks_unknown), (3, 1));
    assert_eq!(outcomes(&events_of(&mut h)), vec![]);
}

#[test]
fn a_queued_message_that_times_out_is_never_sent() {
    let mut cfg = exact();
    cfg.acks.timeout = Some(ms(200));
    let mut h = H::new(cfg);
    let t = h.connect();
    h.fail_open(t, OpenError::Tcp("refused".into()));
    let id = tracked(&mut h, "k", "late");
    h.at(ms(100)).tick();
    let t2 = h.expect_open();
    h.at(ms(200)).tick();
    assert_eq!(h.outcomes(), vec![(id, Outcome::TimedOut)]);
    h.open(t2);
    assert_eq!(sent_texts(&h.drain()), Vec::<String>::new());
}

#[test]
fn a_correlated_message_is_the_response_of_the_message_it_acknowledges() {
    let mut h = H::new(exact());
    let t = h.connected();
    h.take_events();
    let id = tracked(&mut h, "7", "request");
    h.drain();
    let response = Message::text("response");
    h.ev(t, TransportEvent::Received(Frame::Correlated { key: key("7"), message: response.clone() }));
    let ev = events_of(&mut h);
    assert_eq!(ev, vec![Event::Response { id, message: response }, Event::Outcome { id, outcome: Outcome::Acked }]);
    // A key nobody waits for: an ordinary message, counted.
    let stray = Message::text("stray");
    h.ev(t, TransportEvent::Received(Frame::Correlated { key: key("7"), message: stray.clone() }));
    assert_eq!(events_of(&mut h), vec![Event::Message(stray)]);
    let st = h.s.stats(h.now);
    assert_eq!((st.messages_received, st.acks_unknown, st.messages_acked), (2, 1, 1));
}

#[test]
fn cancel_aborts_what_never_left_and_abandons_what_did() {
    let mut h = H::new(exact());
    let t = h.connected();
    let sent = tracked(&mut h, "s", "s");
    let acts = h.drain();
    h.flush_all(t, &acts);
    let queued = tracked(&mut h, "q", "q");
    assert_eq!(h.s.cancel(h.now, &key("q")), Some(queued));
    assert_eq!(h.s.cancel(h.now, &key("s")), Some(sent));
    assert_eq!(h.s.cancel(h.now, &key("s")), None);
    assert_eq!(sent_texts(&h.drain()), Vec::<String>::new());
    assert_eq!(h.outcomes(), vec![(queued, Outcome::Aborted), (sent, Outcome::Abandoned)]);
    assert_eq!((h.s.queue_len(), h.s.tracked_len()), (0, 0));
}

#[test]
fn awaiting_messages_count_against_the_queue_limits() {
    let mut cfg = exact();
    cfg.queue.max_messages = 2;
    let mut h = H::new(cfg);
    let t = h.connected();
    tracked(&mut h, "a", "a");
    tracked(&mut h, "b", "b");
    let acts = h.drain();
    h.flush_all(t, &acts);
    assert!(matches!(h.s.send(h.now, Message::text("c")), Err(SendError::Full(_))));
    h.s.ack(h.now, &key("a"));
    assert!(h.take_events().contains(&Event::QueueUnblocked));
    h.send("c");
}

#[test]
fn a_draining_close_waits_for_acknowledgements_within_the_close_timeout() {
    let mut h = H::new(exact());
    let t = h.connected();
    let a = tracked(&mut h, "a", "a");
    let b = tracked(&mut h, "b", "b");
    let acts = h.drain();
    h.flush_all(t, &acts);
    h.s.close(h.now, 1000, "bye", CloseMode::Drain).unwrap();
    assert_eq!(h.drain(), vec![], "no close frame while acknowledgements are outstanding");
    // Acknowledgements still arrive while closing.
    h.ev(t, TransportEvent::Received(Frame::Correlated { key: key("a"), message: Message::text("ok") }));
    assert_eq!(h.drain(), vec![]);
    h.s.ack(h.now, &key("b"));
    assert!(matches!(h.drain().as_slice(), [Action::Close { code: 1000, .. }]));
    assert_eq!(h.outcomes(), vec![(a, Outcome::Acked), (b, Outcome::Acked)]);

    // Never acknowledged: the close timeout aborts the transport and the message is abandoned.
    let mut h = H::new(exact());
    let t = h.connected();
    let c = tracked(&mut h, "c", "c");
    let acts = h.drain();
    h.flush_all(t, &acts);
    h.s.close(h.now, 1000, "bye", CloseMode::Drain).unwrap();
    h.drain();
    h.step();
    assert!(matches!(h.drain().as_slice(), [Action::Abort { .. }]), "{:?}", h.actions);
    assert_eq!(h.s.state(), State::Closed);
    assert_eq!(h.outcomes(), vec![(c, Outcome::Abandoned)]);
}

#[test]
fn failing_ends_every_tracked_message_by_where_it_got_to() {
    let mut cfg = exact();
    cfg.backoff.max_attempts = Some(1);
    let mut h = H::new(cfg);
    let t = h.connected();
    let flushed = tracked(&mut h, "f", "f");
    let acts = h.drain();
    h.flush_all(t, &acts);
    let in_flight = tracked(&mut h, "i", "i");
    h.drain();
    let queued = tracked(&mut h, "q", "q"); // not handed out: actions are taken lazily
    h.remote_close(t, 1008); // fatal: no reconnection, nothing redelivered
    assert_eq!(h.s.state(), State::Failed);
    let ev = events_of(&mut h);
    assert_eq!(
        outcomes(&ev),
        vec![(flushed, Outcome::Abandoned), (in_flight, Outcome::Abandoned), (queued, Outcome::Aborted)]
    );
    // Put back in line when the connection was lost, then ended with the session: sent, so Abandoned.
    assert_eq!(put_back(&ev), vec![(flushed, true), (in_flight, true)]);
    assert_eq!((h.s.queue_len(), h.s.tracked_len()), (0, 0));
}

#[test]
fn a_redelivered_message_whose_ttl_passed_expires() {
    let mut cfg = exact();
    cfg.queue.ttl = Some(ms(500));
    cfg.heartbeat = None;
    let mut h = H::new(cfg);
    let t = h.connected();
    let id = tracked(&mut h, "k", "k");
    let acts = h.drain();
    h.flush_all(t, &acts);
    h.at(ms(600));
    h.drop_conn(t);
    let ev = events_of(&mut h);
    assert_eq!(put_back(&ev), vec![(id, true)]);
    assert_eq!(outcomes(&ev), vec![(id, Outcome::Expired)]);
    assert_eq!(h.s.tracked_len(), 0);
}

#[test]
fn an_aborting_close_abandons_what_was_sent_and_aborts_what_was_not() {
    let mut h = H::new(exact());
    let t = h.connected();
    let w = tracked(&mut h, "w", "w");
    let a = tracked(&mut h, "a", "a");
    h.drain();
    h.ev(t, TransportEvent::Flushed { through: w });
    h.drop_conn(t); // both back in line
    h.step();
    let t2 = h.expect_open();
    h.open(t2); // not drained: both still in line for their redelivery
    let never = tracked(&mut h, "n", "n");
    h.s.close(h.now, 1000, "bye", CloseMode::Abort).unwrap();
    let ev = events_of(&mut h);
    assert_eq!(outcomes(&ev), vec![(w, Outcome::Abandoned), (a, Outcome::Abandoned), (never, Outcome::Aborted)]);

    // One waiting for its acknowledgement keeps waiting during the close handshake.
    let mut h = H::new(exact());
    let t = h.connected();
    let w = tracked(&mut h, "w", "w");
    let acts = h.drain();
    h.flush_all(t, &acts);
    h.s.close(h.now, 1000, "bye", CloseMode::Abort).unwrap();
    assert_eq!(h.s.ack(h.now, &key("w")), Some(w));
    h.ev(t, TransportEvent::Received(Frame::Close(None)));
    assert_eq!(h.s.state(), State::Closed);
    assert_eq!(h.outcomes(), vec![(w, Outcome::Acked)]);
}
