//! Support code for Tether's integration tests.
#![warn(missing_docs)]
