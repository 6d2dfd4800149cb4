//! Code shared by the integration suites.
pub mod runtimes;
