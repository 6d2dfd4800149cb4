//! Support code for Tether's integration tests: the deterministic simulator of the core ([`sim`]), the
//! permessage-deflate test support and fuzz body ([`deflate`]), and the interop peers ([`peers`]).
//!
//! The test server, the fault proxy and the test PKI are the `tether-chaos` crate (`testkit/`); they are
//! re-exported here under their old paths so that tests written against `tether_tests::server` and
//! friends keep compiling. New code should use `tether_chaos` directly.
#![warn(missing_docs)]
pub mod deflate;
pub mod peers;
pub mod sim;

pub use tether_chaos::{pki, proxy, server};
