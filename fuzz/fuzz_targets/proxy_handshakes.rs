//! Fuzz target `proxy_handshakes`: see `tether_tests::sim::fuzz::proxy_handshakes`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_tests::sim::fuzz::proxy_handshakes(data));
