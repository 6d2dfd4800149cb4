//! The async-io runtime's shared timer (smol and async-std clients keep their deadlines in one keeper
//! with one async-io timer): deadlines fire in order, never early, an earlier deadline arriving after a
//! later one is not held back by it, moved and dropped timers behave. Bounded waits: "never early" is
//! exact, "on time" allows generous slack for a loaded machine.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use std::sync::Arc;

use futures::future::join_all;
use tether::Runtime;
use tether::async_io::AsyncIoRuntime;

/// A runtime of its own, so its keeper sees only this test's deadlines.
fn runtime() -> AsyncIoRuntime {
    AsyncIoRuntime::new(Arc::new(|fut| smol::spawn(fut).detach()))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Awaits `timer` (at most 10 s, on async-io's own timer), returning when it fired.
async fn fired(timer: impl Future<Output = ()>) -> Instant {
    let limit = async {
        smol::Timer::after(ms(10_000)).await;
        panic!("a timer did not fire within 10 s");
    };
    futures::future::select(std::pin::pin!(timer), std::pin::pin!(limit)).await;
    Instant::now()
}

#[test]
fn deadlines_fire_in_order_and_never_early() {
    let rt = runtime();
    smol::block_on(async {
        let t0 = Instant::now();
        let offsets = [40, 10, 25, 10, 60];
        let ends = join_all(offsets.map(|o| fired(rt.timer(t0 + ms(o))))).await;
        for (o, end) in offsets.iter().zip(&ends) {
            assert!(*end >= t0 + ms(*o), "a {o} ms timer fired early, at {:?}", *end - t0);
            assert!(*end < t0 + ms(o + 2_000), "a {o} ms timer fired at {:?}", *end - t0);
        }
    });
}

#[test]
fn an_earlier_deadline_is_not_held_back_by_a_later_one() {
    let rt = runtime();
    smol::block_on(async {
        let t0 = Instant::now();
        // The later one first, and polled; then time for the keeper to arm its timer at +3 s.
        let mut late = Box::pin(rt.timer(t0 + ms(3_000)));
        assert!(futures::poll!(late.as_mut()).is_pending());
        smol::Timer::after(ms(100)).await;
        let end = fired(rt.timer(t0 + ms(120))).await;
        assert!(end >= t0 + ms(120));
        assert!(end < t0 + ms(2_000), "the 120 ms timer waited for the 3 s one: {:?}", end - t0);
    });
}

#[test]
fn a_moved_timer_fires_at_its_new_deadline_and_a_dropped_one_never() {
    let rt = runtime();
    smol::block_on(async {
        let t0 = Instant::now();
        // Moved later, after it was registered.
        let mut moved = rt.timer(t0 + ms(10));
        assert!(futures::poll!(Pin::new(&mut moved)).is_pending());
        <AsyncIoRuntime as Runtime>::reset_timer(&mut moved, t0 + ms(80));
        // Moved earlier.
        let mut sooner = rt.timer(t0 + ms(5_000));
        assert!(futures::poll!(Pin::new(&mut sooner)).is_pending());
        <AsyncIoRuntime as Runtime>::reset_timer(&mut sooner, t0 + ms(30));
        // Dropped while registered: its deadline must not disturb the others.
        let mut dropped = rt.timer(t0 + ms(15));
        assert!(futures::poll!(Pin::new(&mut dropped)).is_pending());
        drop(dropped);
        let (a, b) = futures::join!(fired(moved), fired(sooner));
        assert!(a >= t0 + ms(80), "the moved timer fired at its old deadline: {:?}", a - t0);
        assert!(b >= t0 + ms(30) && b < t0 + ms(2_000), "the timer moved sooner fired at {:?}", b - t0);
        // A timer set in the past is ready at once.
        assert!(futures::poll!(Box::pin(rt.timer(t0))).is_ready());
    });
}
