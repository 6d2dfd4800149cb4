//! Support code for Tether's integration tests.
#![warn(missing_docs)]
pub mod background;
pub mod deflate;
pub mod peers;
pub mod pki;
pub mod proxy;
pub mod server;
pub mod sim;
