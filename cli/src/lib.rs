//! The library side of `tether-cli` holds nothing: it exists so that `cargo test -p tether-cli --doc`
//! compiles (and runs) the Rust examples of the repository's README, which therefore cannot go stale.
//! The program is `src/main.rs`.

#![cfg_attr(doctest, doc = include_str!("../../README.md"))]
#![warn(missing_docs)]
#![forbid(unsafe_code)]
