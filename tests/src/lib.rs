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
