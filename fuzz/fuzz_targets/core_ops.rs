//! Fuzz target `core_ops`: see `tether_tests::sim::fuzz::core_ops`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_tests::sim::fuzz::core_ops(data));
