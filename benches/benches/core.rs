//! Criterion micro-benchmarks of `tether-core`: the steady-state per-message path, a reconnect cycle and
//! a heartbeat tick. Criterion prints the time per iteration; for `per_message` one iteration is one
//! message (send -> Send action -> Flushed -> Sent outcome), so that is the ns per message.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tether_core::{Action, Config, ConnectInfo, Event, Message, Session, TransportError, TransportEvent, TransportId};

fn connected(now: Instant) -> (Session, TransportId) {
    let mut s = Session::new(Config::default(), now).expect("default config is valid");
    s.connect(now).expect("idle session connects");
    let Some(Action::Open { transport, .. }) = s.poll_action() else { panic!("expected Open") };
    s.handle_transport(now, transport, TransportEvent::Opened(ConnectInfo::new(Duration::from_millis(1))));
    while s.poll_event().is_some() {}
    (s, transport)
}

fn per_message(c: &mut Criterion) {
    let now = Instant::now();
    let (mut s, t) = connected(now);
    let payload = Bytes::from_static(&[7u8; 64]);
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("per_message_64B", |b| {
        b.iter(|| {
            let id = s.send(now, Message::binary(payload.clone())).expect("queue has room");
            let Some(Action::Send { id: Some(sent), message, .. }) = s.poll_action() else { panic!("expected Send") };
            black_box(message);
            s.handle_transport(now, t, TransportEvent::Flushed { through: sent });
            let Some(Event::Outcome { id: done, .. }) = s.poll_event() else { panic!("expected Outcome") };
            debug_assert_eq!(id, done);
        })
    });
    g.finish();
}

fn reconnect_cycle(c: &mut Criterion) {
    let mut now = Instant::now();
    let (mut s, mut t) = connected(now);
    c.bench_function("core/reconnect_cycle", |b| {
        b.iter(|| {
            s.handle_transport(now, t, TransportEvent::Closed(Err(TransportError::Io("reset".into()))));
            now = s.poll_timeout().expect("backoff is scheduled");
            s.handle_timeout(now);
            let Some(Action::Open { transport, .. }) = s.poll_action() else { panic!("expected Open") };
            t = transport;
            s.handle_transport(now, t, TransportEvent::Opened(ConnectInfo::new(Duration::from_millis(1))));
            while let Some(e) = s.poll_event() {
                black_box(e);
            }
            while s.poll_action().is_some() {}
        })
    });
}

fn heartbeat_tick(c: &mut Criterion) {
    let mut now = Instant::now();
    let (mut s, t) = connected(now);
    // The first deadline is the Stable timer (backoff reset), not a ping: get past it to the first ping.
    loop {
        now = s.poll_timeout().expect("a deadline is scheduled");
        s.handle_timeout(now);
        if let Some(Action::Ping { payload, .. }) = s.poll_action() {
            s.handle_transport(now, t, TransportEvent::Received(tether_core::Frame::Pong(payload)));
            break;
        }
    }
    c.bench_function("core/heartbeat_tick", |b| {
        b.iter(|| {
            now = s.poll_timeout().expect("ping is scheduled");
            s.handle_timeout(now);
            let Some(Action::Ping { payload, .. }) = s.poll_action() else { panic!("expected Ping") };
            s.handle_transport(now, t, TransportEvent::Received(tether_core::Frame::Pong(payload)));
        })
    });
}

criterion_group!(benches, per_message, reconnect_cycle, heartbeat_tick);
criterion_main!(benches);
