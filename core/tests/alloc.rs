//! The steady-state per-message path allocates nothing besides the payload (here a static payload, so
//! nothing at all). A counting global allocator makes this a test, not a claim. It counts the test's own
//! thread only: the test harness's other threads allocate when they like (seen under load).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tether_core::*;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Whether this thread's allocations are counted (a const-initialised `Cell`: no allocation).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn run(s: &mut Session, t: TransportId, now: Instant, payload: &Bytes, n: usize) {
    for _ in 0..n {
        let id = s.send(now, Message::binary(payload.clone())).unwrap();
        let Some(Action::Send { id: Some(sent), message, .. }) = s.poll_action() else { panic!("expected Send") };
        assert_eq!(sent, id);
        drop(message);
        s.handle_transport(now, t, TransportEvent::Flushed { through: sent });
        let Some(Event::Outcome { outcome: Outcome::Sent, .. }) = s.poll_event() else { panic!("expected Sent") };
    }
}

#[test]
fn per_message_path_does_not_allocate() {
    COUNTED.with(|c| c.set(true));
    for policy in [InFlightPolicy::Abandon, InFlightPolicy::Requeue] {
        let now = Instant::now();
        let mut cfg = Config::default();
        cfg.queue.in_flight = policy;
        let mut s = Session::new(cfg, now).unwrap();
        s.connect(now).unwrap();
        let Some(Action::Open { transport: t, .. }) = s.poll_action() else { panic!() };
        s.handle_transport(now, t, TransportEvent::Opened(ConnectInfo::new(Duration::from_millis(1))));
        while s.poll_event().is_some() {}
        let payload = Bytes::from_static(&[0u8; 64]);
        run(&mut s, t, now, &payload, 1_000); // warm-up: the deques reach their working size
        let before = ALLOCS.load(Ordering::Relaxed);
        run(&mut s, t, now, &payload, 10_000);
        let allocs = ALLOCS.load(Ordering::Relaxed) - before;
        assert_eq!(allocs, 0, "{policy:?}: {allocs} allocations for 10 000 messages");
    }
}
