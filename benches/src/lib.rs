//! Shared pieces of the Tether benchmarks: the server's protocol, a counting allocator, RSS, percentiles.
//!
//! * `benches/core.rs` (criterion): the sans-IO core per message, per reconnect cycle, per heartbeat tick.
//! * `tether-bench` (binary): the end-to-end harness, Tether on tokio, smol and async-std against raw
//!   tokio-tungstenite / async-tungstenite on the same runtime, with `tether-bench-server` in its own
//!   process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Path of the sink endpoint: counts data messages; a text message [`END`] is answered with the count
/// (as text) and resets it.
pub const SINK: &str = "/sink";
/// Path of the echo endpoint: every data message is sent back.
pub const ECHO: &str = "/echo";
/// Path of the acknowledging endpoint: every binary message is answered with its first 8 bytes (the
/// key of a tracked message, acknowledged).
pub const ACK: &str = "/ack";
/// Path of the black hole: the handshake completes, then the server neither reads nor writes (a
/// half-open link, as far as the client can tell).
pub const BLACKHOLE: &str = "/blackhole";
/// The end marker of a one-way run.
pub const END: &str = "END";
/// The line the server prints on stdout once it listens: `ready <port>`.
pub const READY: &str = "ready";

/// A global allocator that counts live bytes and allocation calls (install it with
/// `#[global_allocator]`).
pub struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Live heap bytes (meaningful only with [`CountingAlloc`] installed).
pub fn heap_live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Allocation calls so far (meaningful only with [`CountingAlloc`] installed).
pub fn alloc_calls() -> usize {
    CALLS.load(Ordering::Relaxed)
}

/// Resident set size of this process in KiB (`VmRSS` of /proc/self/status); 0 where unavailable.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The `p`-th percentile (0..=100) of `v` (sorted in place); zero for an empty slice.
pub fn percentile(v: &mut [Duration], p: usize) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort_unstable();
    v[(v.len() * p / 100).min(v.len() - 1)]
}

/// The median of `v` (sorted in place); zero for an empty slice.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable_by(f64::total_cmp);
    v[v.len() / 2]
}
