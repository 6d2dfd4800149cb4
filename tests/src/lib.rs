//! Support code for Tether's integration tests: the deterministic simulator of the core ([`sim`]), the
//! virtual-time harness of the driver ([`vnet`]), the real proxies (tinyproxy, danted) of the proxy
//! tests ([`real_proxy`]), and the permessage-deflate test support and fuzz body ([`deflate`]).
//!
//! The test server, the fault proxy and the test PKI are the `tether-chaos` crate (`testkit/`); they are
//! re-exported here under their old paths so that tests written against `tether_tests::server` and
//! friends keep compiling. New code should use `tether_chaos` directly.
#![warn(missing_docs)]
pub mod deflate;
pub mod real_proxy;
pub mod sim;
pub mod vnet;

pub use tether_chaos::{pki, proxy, raw, server};

/// `len` deterministic pseudo-random bytes from `seed` (xorshift64, the low byte of each step):
/// incompressible payloads for the compression and interop tests, the same on every run.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
