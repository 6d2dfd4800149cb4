//! Nothing to see: this crate only declares dependencies, so that the demo and the tests build shared
//! dependencies with the same features (see its `Cargo.toml`).
