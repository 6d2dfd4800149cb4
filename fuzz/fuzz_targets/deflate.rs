//! Fuzz target `deflate`: see `tether_tests::deflate::rewriter`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_tests::deflate::rewriter(data));
