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
/// Path of the feed: right after the handshake the server writes `n` JSON ticks (`?n=N`, see
/// [`feed`]), compressed if the client offered permessage-deflate (the server then answers the offer
/// with plain `permessage-deflate`: 32 KiB windows, context takeover), and from then on reads and
/// drops whatever the client sends.
pub const FEED: &str = "/feed";
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

/// A market-data tick as a JSON feed sends it: about 200 bytes, fields and most digits alike from one
/// tick to the next, the numbers varying (a deterministic walk).
pub fn tick(i: u64) -> String {
    let mix = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    let price = 64_000 + (mix % 2_000);
    format!(
        r#"{{"type":"ticker","product_id":"BTC-USD","sequence":{},"price":"{}.{:02}","best_bid":"{}.{:02}","best_ask":"{}.{:02}","last_size":"0.{:08}","side":"{}","time":"2025-11-29T21:{:02}:{:02}.{:06}Z"}}"#,
        9_000_000_000u64 + i,
        price,
        mix % 100,
        price - 1,
        (mix >> 3) % 100,
        price,
        (mix >> 5) % 100,
        mix % 100_000_000,
        if mix.is_multiple_of(3) { "buy" } else { "sell" },
        (i / 60_000) % 60,
        (i / 1000) % 60,
        (i * 997) % 1_000_000
    )
}

/// The first `n` ticks as the server's frames, one text message each: plain, or compressed with
/// permessage-deflate (default parameters, context takeover, every message compressed).
pub fn feed(n: usize, deflate: bool) -> Vec<u8> {
    use tether_deflate::{Compressor, DeflateConfig, DeflateParams};
    let params = DeflateParams::new(15, 15, false, false);
    let cfg = DeflateConfig::default().threshold(Some(0));
    let mut compressor = Compressor::new(&cfg, &params);
    let mut out = Vec::with_capacity(n * if deflate { 80 } else { 210 });
    for i in 0..n as u64 {
        let t = tick(i);
        let compressed = if deflate { compressor.compress(t.as_bytes()) } else { None };
        let (payload, first) = match compressed {
            Some(c) => (c.to_vec(), 0xc1u8),
            None => (t.into_bytes(), 0x81u8),
        };
        out.push(first);
        match payload.len() {
            n @ 0..=125 => out.push(n as u8),
            n => {
                out.push(126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        out.extend_from_slice(&payload);
    }
    out
}
