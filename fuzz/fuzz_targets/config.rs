//! Fuzz target `config`: see `tether_tests::sim::fuzz::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_tests::sim::fuzz::config(data));
