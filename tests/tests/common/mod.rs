//! Code shared by the integration suites.
pub mod peers;
pub mod runtimes;
