//! Fuzz target `parsers`: see `tether_tests::sim::fuzz::parsers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_tests::sim::fuzz::parsers(data));
