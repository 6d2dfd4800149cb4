//! Scenario tests with injected time: lifecycle, stale transports, misuse, retry policy and backoff.

mod common;

use common::*;
use std::time::Duration;
use tether_core::*;

#[test]
fn connect_emits_transitions_with_causes() {
    let mut h = H::new(exact());
    assert_eq!(h.s.state(), State::Idle);
    let t = h.connect();
    h.open(t);
    let ev = h.take_events();
    assert_eq!(ev[0], Event::StateChanged { from: State::Idle, to: State::Connecting, cause: Cause::ConnectRequested });
    assert_eq!(ev[1], Event::StateChanged { from: State::Connecting, to: State::Connected, cause: Cause::Opened });
    assert_eq!(ev[2], Event::Connected { transport: t, attempt: 1, reconnect: false, info: ConnectInfo::new(ms(5)) });
}

#[test]
fn stale_transport_reports_are_ignored_and_counted() {
    let mut h = H::new(exact());
    let t1 = h.connected();
    h.drop_conn(t1);
    h.step();
    let t2 = h.expect_open();
    // The old transport "opens" late, "receives" and "closes": none of it may touch the new attempt.
    h.open(t1);
    h.ev(t1, TransportEvent::Received(Frame::Message(Message::text("ghost"))));
    h.drop_conn(t1);
    assert_eq!(h.s.state(), State::Connecting);
    assert_eq!(h.s.stats(h.now).stale_events, 3);
    h.open(t2);
    assert_eq!(h.s.state(), State::Connected);
    assert!(!h.take_events().iter().any(|e| matches!(e, Event::Message(_))));
}

#[test]
fn misuse_is_a_typed_error_and_hands_messages_back() {
    let mut h = H::new(exact());
    let _t = h.connected();
    assert_eq!(h.s.connect(h.now), Err(CommandError::InvalidState { command: "connect", state: State::Connected }));
    assert_eq!(h.s.close(h.now, 1005, "", CloseMode::Drain), Err(CommandError::InvalidCloseCode(1005)));
    assert_eq!(h.s.close(h.now, 1000, &"x".repeat(124), CloseMode::Drain), Err(CommandError::ReasonTooLong(124)));
    h.s.close(h.now, 1000, "bye", CloseMode::Abort).unwrap();
    assert!(matches!(h.s.close(h.now, 1000, "", CloseMode::Abort), Err(CommandError::InvalidState { .. })));
    let err = h.s.send(h.now, Message::text("late")).unwrap_err();
    assert!(matches!(err, SendError::Inactive { state: State::Closing, .. }));
    assert_eq!(err.into_message().as_text(), Some("late"));
}

#[test]
fn inputs_in_every_state_never_panic() {
    // Walk through every state and throw every kind of input at it.
    type Input = Box<dyn Fn(&mut H, TransportId)>;
    let inputs: Vec<Input> = vec![
        Box::new(|h, t| h.open(t)),
        Box::new(|h, t| h.fail_open(t, OpenError::Tcp("refused".into()))),
        Box::new(|h, t| h.drop_conn(t)),
        Box::new(|h, t| h.remote_close(t, 1000)),
        Box::new(|h, t| h.ev(t, TransportEvent::Flushed { through: MessageId(u64::MAX) })),
        Box::new(|h, t| h.ev(t, TransportEvent::Received(Frame::Pong(bytes::Bytes::from_static(b"??"))))),
        Box::new(|h, t| h.ev(t, TransportEvent::Closed(Ok(None)))),
        Box::new(|h, _| h.tick()),
        Box::new(|h, _| {
            let _ = h.s.connect(h.now);
        }),
        Box::new(|h, _| {
            let _ = h.s.close(h.now, 1000, "", CloseMode::Drain);
        }),
        Box::new(|h, _| {
            let _ = h.s.send(h.now, Message::binary(vec![1]));
        }),
        Box::new(|h, _| h.s.handle_network(h.now, NetworkHint::Offline)),
        Box::new(|h, _| h.s.handle_network(h.now, NetworkHint::Online)),
        Box::new(|h, _| h.s.handle_network(h.now, NetworkHint::Resumed)),
    ];
    for setup in 0..6 {
        for input in &inputs {
            let mut h = H::new(exact());
            let t = match setup {
                0 => TransportId(0),
                1 => h.connect(),
                2 => h.connected(),
                3 => {
                    let t = h.connected();
                    h.drop_conn(t);
                    t
                }
                4 => {
                    let t = h.connected();
                    h.s.close(h.now, 1000, "", CloseMode::Drain).unwrap();
                    t
                }
                _ => {
                    let t = h.connect();
                    h.fail_open(t, OpenError::Http { status: 401, retry_after: None });
                    t
                }
            };
            input(&mut h, t);
            h.drain();
            input(&mut h, TransportId(99));
            h.drain();
            let edges: Vec<_> = h
                .events
                .iter()
                .filter_map(|e| if let Event::StateChanged { from, to, .. } = e { Some((*from, *to)) } else { None })
                .collect();
            for (from, to) in edges {
                assert!(legal_transition(from, to), "{from:?} -> {to:?}");
            }
        }
    }
}

#[test]
fn http_401_is_fatal_and_not_retried() {
    let mut h = H::new(exact());
    let id = h.send("queued before connect");
    let t = h.connect();
    h.fail_open(t, OpenError::Http { status: 401, retry_after: None });
    assert_eq!(h.s.state(), State::Failed);
    assert_eq!(h.s.poll_timeout(), None, "nothing scheduled after a fatal failure");
    let ev = h.take_events();
    assert!(ev.contains(&Event::Failed(FailReason::Fatal(Cause::OpenFailed(OpenError::Http {
        status: 401,
        retry_after: None
    })))));
    assert!(ev.contains(&Event::Outcome { id, outcome: Outcome::Aborted }));
    assert_eq!(h.drain(), vec![]);
    // Failed is not a dead end: the application may fix its credentials and connect again.
    h.s.connect(h.now).unwrap();
    assert!(matches!(h.drain().as_slice(), [Action::Open { attempt: 1, .. }]));
}

#[test]
fn http_503_with_retry_after_waits_at_least_that_long() {
    let mut h = H::new(exact());
    let t = h.connect();
    h.fail_open(t, OpenError::Http { status: 503, retry_after: Some(secs(1)) });
    assert_eq!(h.s.state(), State::Reconnecting);
    assert_eq!(h.s.next_attempt_at(), Some(h.now + secs(1)), "backoff 100 ms raised to Retry-After 1 s");
    h.at(ms(999)).tick();
    assert_eq!(h.drain(), vec![]);
    h.at(secs(1)).tick();
    assert!(matches!(h.drain().as_slice(), [Action::Open { attempt: 2, .. }]));
}

#[test]
fn close_codes_follow_the_policy() {
    for (code, expect) in [
        (1000, State::Reconnecting),
        (1001, State::Reconnecting),
        (1006, State::Reconnecting),
        (1011, State::Reconnecting),
        (1012, State::Reconnecting),
        (1013, State::Reconnecting),
        (1002, State::Failed),
        (1003, State::Failed),
        (1007, State::Failed),
        (1008, State::Failed),
        (1009, State::Failed),
        (1010, State::Failed),
    ] {
        let mut h = H::new(exact());
        let t = h.connected();
        h.remote_close(t, code);
        assert_eq!(h.s.state(), expect, "close {code}");
        if code == 1013 {
            let min = h.s.config().retry.try_again_later;
            assert!(h.s.next_attempt_at().unwrap() >= h.now + min);
        }
    }
}

#[test]
fn retry_policy_overrides_apply() {
    let mut cfg = exact();
    cfg.retry = RetryPolicy::default().http(401, Verdict::Retry).close(1000, Verdict::Fatal);
    let mut h = H::new(cfg);
    let t = h.connect();
    h.fail_open(t, OpenError::Http { status: 401, retry_after: None });
    assert_eq!(h.s.state(), State::Reconnecting);
    h.step();
    let t = h.expect_open();
    h.open(t);
    h.remote_close(t, 1000);
    assert_eq!(h.s.state(), State::Failed);
}

#[test]
fn backoff_grows_exponentially_and_caps() {
    let mut h = H::new(exact());
    let mut t = h.connect();
    for _ in 0..7 {
        h.fail_open(t, OpenError::Tcp("refused".into()));
        h.step();
        t = h.expect_open();
    }
    let d: Vec<u64> = h.retry_delays().iter().map(|d| d.as_millis() as u64).collect();
    assert_eq!(d, vec![100, 200, 400, 800, 1600, 2000, 2000]);
}

#[test]
fn max_attempts_then_failed() {
    let mut cfg = exact();
    cfg.backoff.max_attempts = Some(3);
    let mut h = H::new(cfg);
    let mut t = h.connect();
    for attempt in 1..=3 {
        let acts = &h.actions;
        assert!(matches!(acts.last(), Some(Action::Open { attempt: a, .. }) if *a == attempt));
        h.fail_open(t, OpenError::Tcp("refused".into()));
        if attempt < 3 {
            h.step();
            t = h.expect_open();
        }
    }
    assert_eq!(h.s.state(), State::Failed);
    assert!(
        h.take_events().iter().any(|e| matches!(e, Event::Failed(FailReason::RetriesExhausted { attempts: 3, .. })))
    );
}

#[test]
fn give_up_after_budget() {
    let mut cfg = exact();
    cfg.backoff.give_up_after = Some(secs(1));
    let mut h = H::new(cfg);
    let mut t = h.connect();
    loop {
        h.fail_open(t, OpenError::Tcp("refused".into()));
        if h.s.state() == State::Failed {
            break;
        }
        h.step();
        t = h.expect_open();
    }
    assert!(h.elapsed() >= secs(1) && h.elapsed() < secs(2), "gave up at {:?}", h.elapsed());
    assert!(h.take_events().iter().any(|e| matches!(e, Event::Failed(FailReason::BudgetExhausted { .. }))));
}

#[test]
fn accept_then_close_counts_as_failure_until_stable() {
    // A server that accepts and at once closes must see growing delays, not a storm.
    let mut h = H::new(exact());
    let mut t = h.connected();
    for _ in 0..4 {
        h.remote_close(t, 1000);
        h.step();
        t = h.expect_open();
        h.open(t);
    }
    let d: Vec<u64> = h.retry_delays().iter().map(|d| d.as_millis() as u64).collect();
    assert_eq!(d, vec![100, 200, 400, 800]);
    assert_eq!(h.s.stats(h.now).failed_attempts, 4);
    // Once a connection stays up for stable_after, the next loss starts from the base again.
    h.step(); // the Stable timer (1 s)
    let up = h.now;
    h.at(up - h.t0 + ms(10));
    h.drop_conn(t);
    assert_eq!(h.retry_delays().last(), Some(&ms(100)));
}

#[test]
fn immediate_first_retry_after_a_stable_connection() {
    let mut cfg = exact();
    cfg.backoff.immediate_first_retry = true;
    let mut h = H::new(cfg);
    let t = h.connected();
    h.at(secs(1)).tick(); // stable
    h.drop_conn(t);
    assert_eq!(h.s.state(), State::Connecting);
    let t2 = h.expect_open();
    h.fail_open(t2, OpenError::Tcp("refused".into()));
    assert_eq!(h.retry_delays(), vec![Duration::ZERO, ms(100)]);
}

#[test]
fn connect_timeout_retries_and_releases_the_transport() {
    let mut h = H::new(exact());
    let t = h.connect();
    h.at(secs(1)).tick();
    assert_eq!(h.s.state(), State::Reconnecting);
    // Aborted: nothing of a half-made connection should reach the server later.
    assert!(h.drain().iter().any(|a| matches!(a, Action::Abort { transport } if *transport == t)));
    assert_eq!(h.s.stats(h.now).errors.connect_timeout, 1);
    assert!(
        h.take_events().iter().any(|e| matches!(e, Event::StateChanged { cause: Cause::ConnectTimeout { .. }, .. }))
    );
}

#[test]
fn connect_timeout_names_the_phase_the_driver_reported_last() {
    let mut h = H::new(exact());
    let timeout = h.s.config().connect_timeout;
    let t = h.connect();
    h.ev(t, TransportEvent::Progress(ConnectPhase::Dns));
    h.ev(t, TransportEvent::Progress(ConnectPhase::Tcp));
    h.ev(t, TransportEvent::Progress(ConnectPhase::Tls));
    h.take_events();
    h.at(timeout).tick();
    let cause = h.take_events().into_iter().find_map(|e| match e {
        Event::StateChanged { to: State::Reconnecting, cause, .. } => Some(cause),
        _ => None,
    });
    let cause = cause.expect("the attempt timed out");
    assert_eq!(cause, Cause::ConnectTimeout { phase: Some(ConnectPhase::Tls), elapsed: timeout });
    assert_eq!(cause.to_string(), "TLS handshake timed out after 1 s");
    // The next attempt starts with no phase known: its timeout says so.
    h.step();
    let t2 = h.expect_open();
    assert_ne!(t, t2);
    let started = h.elapsed();
    h.at(started + timeout).tick();
    let cause = h.take_events().into_iter().find_map(|e| match e {
        Event::StateChanged { to: State::Reconnecting, cause, .. } => Some(cause),
        _ => None,
    });
    assert_eq!(cause, Some(Cause::ConnectTimeout { phase: None, elapsed: timeout }));
    // A phase reported by a stale transport changes nothing.
    assert_eq!(h.s.stats(h.now).stale_events, 0);
}

#[test]
fn jitter_is_seeded() {
    let delays = |seed: u64| {
        let mut cfg = exact();
        cfg.backoff.jitter = Jitter::Full;
        cfg.seed = seed;
        let mut h = H::new(cfg);
        let mut t = h.connect();
        for _ in 0..5 {
            h.fail_open(t, OpenError::Tcp("refused".into()));
            h.step();
            t = h.expect_open();
        }
        h.retry_delays()
    };
    assert_eq!(delays(1), delays(1));
    assert_ne!(delays(1), delays(2));
}

#[test]
fn invalid_config_is_refused_at_creation() {
    let mut cfg = Config::default();
    cfg.queue.max_bytes = 0;
    assert_eq!(Session::new(cfg, std::time::Instant::now()).unwrap_err(), ConfigError::ZeroLimit("queue.max_bytes"));
}

#[test]
fn time_never_goes_back() {
    let mut h = H::new(exact());
    let t = h.connect();
    h.at(secs(5));
    h.fail_open(t, OpenError::Tcp("refused".into()));
    let retry_at = h.s.next_attempt_at().unwrap();
    // An earlier `now` is clamped to the latest one seen: the retry is still not due before its time.
    h.at(secs(0)).tick();
    assert_eq!(h.drain(), vec![]);
    assert_eq!(retry_at, h.t0 + secs(5) + ms(100));
}

#[test]
fn stability_is_judged_by_time_even_before_the_timer_is_handled() {
    // A driver that reports the loss before it got round to the Stable timer must not be punished.
    let mut h = H::new(exact());
    let mut t = h.connected();
    for _ in 0..3 {
        h.remote_close(t, 1000);
        h.step();
        t = h.expect_open();
        h.open(t);
    }
    let up = h.elapsed();
    h.at(up + secs(5));
    h.drop_conn(t);
    assert_eq!(h.retry_delays().last(), Some(&ms(100)));
}

/// Issue 11, defect 7: the driver reports a normal server close as the close frame, then the end of the
/// stream. The end belongs to a transport the session let go of on purpose: it is not stale.
#[test]
fn normal_server_close_is_not_counted_stale() {
    let mut h = H::new(exact());
    let t = h.connected();
    h.remote_close(t, 1001);
    let st = h.s.stats(h.now);
    assert_eq!((st.errors.remote_close, st.stale_events), (1, 0));
    assert_eq!(h.s.state(), State::Reconnecting);
    // Nothing is left to abort: the transport ended by itself.
    assert!(!h.drain().iter().any(|a| matches!(a, Action::Abort { .. })));
    // And in a user close: the server's close frame completes it, its end follows.
    let mut h = H::new(exact());
    let t = h.connected();
    h.s.close(h.now, 1000, "bye", CloseMode::Drain).unwrap();
    assert!(matches!(h.drain().as_slice(), [Action::Close { code: 1000, .. }]));
    h.remote_close(t, 1000);
    assert_eq!(h.s.state(), State::Closed);
    assert_eq!(h.s.stats(h.now).stale_events, 0);
    // A report about a transport the session never let go of that way is still stale.
    h.ev(TransportId(99), TransportEvent::Closed(Ok(None)));
    assert_eq!(h.s.stats(h.now).stale_events, 1);
}

/// A server close frame whose transport never ends (the server keeps TCP open) is aborted after the
/// close timeout: the session does not hold the old connection forever.
#[test]
fn a_closed_transport_that_never_ends_is_aborted_after_the_close_timeout() {
    let mut h = H::new(exact());
    let t = h.connected();
    h.remote_close_frame(t, 1001);
    h.drain();
    let retry = h.step(); // backoff (100 ms) comes first, then the release deadline (close_timeout, 1 s)
    assert_eq!(retry - h.t0, ms(100));
    let t2 = h.expect_open();
    h.open(t2);
    let d = h.step();
    assert_eq!(d - h.t0, secs(1));
    assert_eq!(h.drain(), vec![Action::Abort { transport: t }]);
    assert_eq!(h.s.stats(h.now).stale_events, 0);
    // After its abort, its late reports are stale.
    h.ev(t, TransportEvent::Closed(Ok(None)));
    assert_eq!(h.s.stats(h.now).stale_events, 1);
}

/// Issue 11, defect 2 (the core's part): a protocol violation detected by the client fails the connection
/// with the matching close code (RFC 6455 7.1.7, 7.4.1), waits for the server's answer, and is retried
/// unless the policy says otherwise.
#[test]
fn server_protocol_violation_is_answered_with_its_close_code() {
    for (kind, code) in [(Violation::InvalidUtf8, 1007), (Violation::Protocol, 1002), (Violation::TooBig, 1009)] {
        let mut h = H::new(exact());
        let t = h.connected();
        h.drain();
        h.ev(t, TransportEvent::Closed(Err(TransportError::Violation { kind, detail: "x".into() })));
        let acts = h.drain();
        assert!(
            matches!(acts.as_slice(), [Action::Close { transport, code: c, .. }] if *transport == t && *c == code),
            "{kind:?}: {acts:?}"
        );
        assert_eq!(h.s.state(), State::Reconnecting);
        assert_eq!(h.s.stats(h.now).errors.protocol, 1);
        // The server answers the close frame and closes: expected, not stale, nothing to abort.
        h.remote_close(t, code);
        assert_eq!(h.s.stats(h.now).stale_events, 0);
        assert_eq!(h.s.stats(h.now).errors.remote_close, 0, "the answer to our close is not a remote close");
        h.step();
        assert!(matches!(h.drain().as_slice(), [Action::Open { .. }]));
    }
    // Overridden as fatal: the session fails, and still closes with the code.
    let mut cfg = exact();
    cfg.retry = RetryPolicy::default().violation(Violation::InvalidUtf8, Verdict::Fatal);
    let mut h = H::new(cfg);
    let t = h.connected();
    h.drain();
    h.ev(
        t,
        TransportEvent::Closed(Err(TransportError::Violation { kind: Violation::InvalidUtf8, detail: "x".into() })),
    );
    assert!(matches!(h.drain().as_slice(), [Action::Close { code: 1007, .. }]));
    assert_eq!(h.s.state(), State::Failed);
}

/// At most one released transport is awaited, and none outlives a close: a transport still finishing its
/// close handshake when the session closes is aborted.
#[test]
fn a_released_transport_is_aborted_when_the_session_closes() {
    let mut h = H::new(exact());
    let t1 = h.connected();
    h.drain();
    h.ev(t1, TransportEvent::Closed(Err(TransportError::Violation { kind: Violation::Protocol, detail: "x".into() })));
    assert!(matches!(h.drain().as_slice(), [Action::Close { code: 1002, .. }]));
    h.step(); // the backoff; t1 still finishes its close handshake
    let t2 = h.expect_open();
    h.open(t2);
    h.s.close(h.now, 1000, "bye", CloseMode::Drain).unwrap();
    assert!(matches!(h.drain().as_slice(), [Action::Close { code: 1000, .. }]));
    h.remote_close_frame(t2, 1000);
    assert_eq!(h.s.state(), State::Closed);
    assert_eq!(h.drain(), vec![Action::Abort { transport: t1 }]);
    // t2's end is expected; t1's is now stale.
    h.ev(t2, TransportEvent::Closed(Ok(None)));
    assert_eq!(h.s.stats(h.now).stale_events, 0);
    h.ev(t1, TransportEvent::Closed(Ok(None)));
    assert_eq!(h.s.stats(h.now).stale_events, 1);
}
