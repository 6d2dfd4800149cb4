//! Scenario tests with injected time: heartbeat, dead links, time jumps and network hints.

mod common;

use bytes::Bytes;
use common::*;
use tether_core::*;

fn ping_payload(acts: &[Action]) -> Bytes {
    acts.iter()
        .find_map(|a| if let Action::Ping { payload, .. } = a { Some(payload.clone()) } else { None })
        .expect("a ping")
}

#[test]
fn ping_on_interval_and_pong_gives_rtt() {
    let mut h = H::new(exact());
    let t = h.connected();
    h.drain();
    h.at(ms(1_999)).tick();
    assert_eq!(h.drain(), vec![]);
    h.at(secs(2)).tick();
    let p = ping_payload(&h.drain());
    h.at(ms(2_030)).ev(t, TransportEvent::Received(Frame::Pong(p)));
    let rtt = h.s.stats(h.now).rtt;
    assert_eq!(
        (rtt.last, rtt.min, rtt.max, rtt.ewma, rtt.samples),
        (Some(ms(30)), Some(ms(30)), Some(ms(30)), Some(ms(30)), 1)
    );
    // The next ping comes an interval after the previous one.
    h.at(secs(4)).tick();
    let p = ping_payload(&h.drain());
    h.at(ms(4_010)).ev(t, TransportEvent::Received(Frame::Pong(p)));
    let rtt = h.s.stats(h.now).rtt;
    assert_eq!((rtt.last, rtt.min, rtt.max, rtt.samples), (Some(ms(10)), Some(ms(10)), Some(ms(30)), 2));
    assert_eq!(rtt.ewma, Some((ms(30) * 7 + ms(10)) / 8));
}

#[test]
fn half_open_link_is_detected_at_the_bound_and_replaced() {
    let mut h = H::new(exact());
    let t = h.connected();
    let bound = h.s.config().heartbeat.as_ref().unwrap().detection_bound();
    assert_eq!(bound, secs(3));
    h.step(); // stable at 1 s
    h.step(); // ping at 2 s
    assert_eq!(h.s.state(), State::Connected);
    let d = h.step(); // pong deadline at 3 s
    assert_eq!(d - h.t0, bound);
    assert_eq!(h.s.state(), State::Reconnecting);
    let acts = h.drain();
    // Aborted, not closed: a close frame would wait behind the dead link and reach the server late.
    assert!(acts.iter().any(|a| matches!(a, Action::Abort { transport } if *transport == t)), "{acts:?}");
    assert!(!acts.iter().any(|a| matches!(a, Action::Close { .. })), "{acts:?}");
    let ev = h.take_events();
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Disconnected { cause: Cause::Heartbeat(DeadLink::PongTimeout), next_attempt_at: Some(_), .. }
    )));
    assert_eq!(h.s.stats(h.now).errors.heartbeat, 1);
    h.step();
    let t2 = h.expect_open();
    h.open(t2);
    assert_eq!(h.s.state(), State::Connected);
}

#[test]
fn busy_inbound_stream_is_proof_of_life() {
    let mut h = H::new(exact());
    let t = h.connected();
    // Messages every 100 ms for 20 s, and the pongs never arrive (stuck behind the stream).
    for i in 1..=200u64 {
        h.at(ms(i * 100));
        h.tick();
        h.ev(t, TransportEvent::Received(Frame::Message(Message::binary(vec![0; 8]))));
        h.drain();
    }
    assert_eq!(h.s.state(), State::Connected);
    assert_eq!(h.s.stats(h.now).messages_received, 200);
    assert!(h.actions.iter().filter(|a| matches!(a, Action::Ping { .. })).count() >= 5, "pings still go out");
}

#[test]
fn tolerated_misses_extend_the_bound() {
    let mut cfg = exact();
    cfg.heartbeat.as_mut().unwrap().tolerated_misses = 2;
    let mut h = H::new(cfg);
    h.connected();
    let bound = h.s.config().heartbeat.as_ref().unwrap().detection_bound();
    assert_eq!(bound, secs(5));
    while h.s.state() == State::Connected {
        h.step();
        h.drain();
    }
    assert_eq!(h.elapsed(), bound);
    assert_eq!(h.actions.iter().filter(|a| matches!(a, Action::Ping { .. })).count(), 3);
}

#[test]
fn time_jump_probes_before_killing() {
    let mut h = H::new(exact());
    let t = h.connected();
    h.at(secs(2)).tick(); // ping
    h.drain();
    // The laptop sleeps for an hour; the first thing we see is a timeout far past every deadline.
    h.at(secs(3_600)).tick();
    assert_eq!(h.s.state(), State::Connected, "a stale deadline alone must not kill the link");
    let p = ping_payload(&h.drain());
    h.at(secs(3_600) + ms(20)).ev(t, TransportEvent::Received(Frame::Pong(p)));
    assert_eq!(h.s.state(), State::Connected);
    assert_eq!(h.s.stats(h.now).time_jumps, 1);
    // Had the probe gone unanswered, the link would be dead a pong timeout later.
    let mut h = H::new(exact());
    h.connected();
    h.at(secs(2)).tick();
    h.at(secs(3_600)).tick();
    h.at(secs(3_601)).tick();
    assert_eq!(h.s.state(), State::Reconnecting);
}

#[test]
fn receive_idle_timeout() {
    let mut cfg = exact();
    let hb = cfg.heartbeat.as_mut().unwrap();
    hb.receive_idle = Some(ms(1_500));
    hb.interval = secs(60);
    let mut h = H::new(cfg);
    let t = h.connected();
    h.at(ms(1_000)).ev(t, TransportEvent::Received(Frame::Ping));
    h.at(ms(2_499)).tick();
    assert_eq!(h.s.state(), State::Connected);
    h.at(ms(2_500)).tick();
    assert_eq!(h.s.state(), State::Reconnecting);
    assert!(
        h.take_events()
            .iter()
            .any(|e| matches!(e, Event::StateChanged { cause: Cause::Heartbeat(DeadLink::ReceiveIdle), .. }))
    );
}

#[test]
fn heartbeat_can_be_disabled() {
    let mut cfg = exact();
    cfg.heartbeat = None;
    let mut h = H::new(cfg);
    h.connected();
    h.step(); // stable timer
    assert_eq!(h.s.poll_timeout(), None);
    h.at(secs(3_600)).tick();
    assert_eq!(h.s.state(), State::Connected);
}

#[test]
fn offline_probes_an_open_link_and_pauses_retries() {
    let mut h = H::new(exact());
    let t = h.connected();
    h.drain();
    h.at(ms(100));
    h.s.handle_network(h.now, NetworkHint::Offline);
    assert!(matches!(h.drain().as_slice(), [Action::Ping { .. }]), "offline: probe the link at once");
    h.drop_conn(t);
    let retry_at = h.s.next_attempt_at().unwrap();
    h.now = retry_at;
    h.tick();
    assert_eq!(h.drain(), vec![], "no attempt while offline");
    assert_eq!(h.s.state(), State::Reconnecting);
    h.at(secs(30));
    h.s.handle_network(h.now, NetworkHint::Online);
    assert!(matches!(h.drain().as_slice(), [Action::Open { .. }]));
    assert!(h.take_events().iter().any(|e| matches!(
        e,
        Event::StateChanged { to: State::Connecting, cause: Cause::Network(NetworkHint::Online), .. }
    )));
}

#[test]
fn online_and_resume_cut_the_backoff_short() {
    for hint in [NetworkHint::Online, NetworkHint::Resumed] {
        let mut h = H::new(exact());
        let mut t = h.connect();
        for _ in 0..5 {
            h.fail_open(t, OpenError::Tcp("refused".into()));
            h.step();
            t = h.expect_open();
        }
        h.fail_open(t, OpenError::Tcp("refused".into()));
        assert!(h.s.next_attempt_at().unwrap() > h.now + secs(1));
        h.s.handle_network(h.now, hint);
        assert!(matches!(h.drain().as_slice(), [Action::Open { attempt: 7, .. }]), "{hint:?}");
    }
}

#[test]
fn resumed_probes_an_open_link() {
    let mut h = H::new(exact());
    let t = h.connected();
    h.drain();
    h.at(ms(500));
    h.s.handle_network(h.now, NetworkHint::Resumed);
    let p = ping_payload(&h.drain());
    h.at(ms(510)).ev(t, TransportEvent::Received(Frame::Pong(p)));
    assert_eq!(h.s.stats(h.now).rtt.last, Some(ms(10)));
}

#[test]
fn pong_of_an_old_transport_cannot_match_a_new_probe() {
    let mut h = H::new(exact());
    let t1 = h.connected();
    h.at(secs(2)).tick();
    let old = ping_payload(&h.drain());
    h.drop_conn(t1);
    h.step();
    let t2 = h.expect_open();
    h.open(t2);
    let up = h.elapsed();
    h.at(up + secs(2)).tick(); // ping on t2
    let new = ping_payload(&h.drain());
    assert_ne!(old, new);
    h.ev(t2, TransportEvent::Received(Frame::Pong(old)));
    assert_eq!(h.s.stats(h.now).rtt.samples, 0);
}

/// Issue 11, defect 6: a probe sent on a network hint (not by the heartbeat's own timer) must advance the
/// ping sequence the next transport continues from, or the next transport's first probe repeats its
/// payload and a late pong from the old transport gives an RTT sample on the new one.
#[test]
fn heartbeat_probe_payload_is_never_reused_across_connections() {
    let mut h = H::new(exact());
    let t1 = h.connected();
    h.drain();
    h.at(ms(500));
    h.s.handle_network(h.now, NetworkHint::Resumed);
    let old = ping_payload(&h.drain());
    // The link dies before the pong comes back; a new transport opens.
    h.drop_conn(t1);
    h.step();
    let t2 = h.expect_open();
    h.open(t2);
    h.drain();
    h.at(ms(500) + ms(100) + secs(2)).tick();
    let new = ping_payload(&h.drain());
    assert_ne!(old, new, "the new transport's first probe repeats the old transport's payload");
    // The old pong arrives late, relayed on the new transport: proof of life, but no RTT sample.
    h.ev(t2, TransportEvent::Received(Frame::Pong(old)));
    assert_eq!(h.s.stats(h.now).rtt.samples, 0);
    h.ev(t2, TransportEvent::Received(Frame::Pong(new)));
    assert_eq!(h.s.stats(h.now).rtt.samples, 1);
}
