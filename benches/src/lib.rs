//! Shared helpers for the Tether benchmarks.
