//! Code shared by the integration suites.
pub mod events;
pub mod peers;
pub mod runtimes;
