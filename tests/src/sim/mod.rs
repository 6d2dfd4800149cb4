//! A deterministic simulator of `tether-core`: one `u64` seed gives one scenario (configuration, a
//! scripted server, a lossy link, a user and the platform), run on virtual time, with the core's
//! invariants checked after every step.
//!
//! * [`scenario`]: what a seed decides up front (config, link, server phases).
//! * [`server`], [`link`], [`user`]: the parts of the world.
//! * [`world`]: the event loop ([`world::World::step`]).
//! * [`harness`] and [`invariants`]: the checked driver side, shared with the fuzz targets.
//! * [`coverage`]: what the runs reached.
//! * [`spec`]: the state diagram and backoff bounds the checks hold the core to.
//! * [`fuzz`]: the bodies of the cargo-fuzz targets, so stable `cargo test` replays their corpus.

pub mod coverage;
pub mod fuzz;
pub mod harness;
pub mod invariants;
pub mod link;
pub mod rng;
pub mod scenario;
pub mod server;
pub mod spec;
pub mod user;
pub mod world;

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub use coverage::Coverage;
pub use invariants::Violation;
pub use world::World;

/// The outcome of one seed.
#[derive(Debug)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// What it reached.
    pub coverage: Coverage,
    /// The first violation, if any.
    pub violation: Option<Violation>,
    /// The trace, if asked for.
    pub trace: Vec<String>,
}

/// The command that replays `seed` with its trace.
pub fn replay_command(seed: u64, known_bugs: bool) -> String {
    let flag = if known_bugs { " --known-bugs" } else { "" };
    format!("cargo run --release -p tether-tests --bin tether-sim -- --seed {seed} --trace{flag}")
}

/// Runs one seed; `known_bugs` lets the scenario hit [`scenario::KNOWN_BUGS`].
pub fn run_seed(seed: u64, trace: bool, known_bugs: bool) -> RunReport {
    let mut w = World::new(seed, Instant::now(), trace, known_bugs);
    let violation = w.run().err();
    w.h.cov.steps = w.steps;
    RunReport { seed, coverage: w.h.cov.clone(), violation, trace: w.h.trace.lines().to_vec() }
}

/// Runs `seeds` on `threads` threads; returns the merged coverage and the failing seeds (sorted).
pub fn run_seeds(seeds: Range<u64>, threads: usize, known_bugs: bool) -> (Coverage, Vec<(u64, Violation)>) {
    let next = AtomicU64::new(seeds.start);
    let total = Mutex::new(Coverage::default());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut cov = Coverage::default();
                let mut failed = Vec::new();
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    let r = run_seed(seed, false, known_bugs);
                    cov.merge(&r.coverage);
                    if let Some(v) = r.violation {
                        failed.push((seed, v));
                    }
                }
                total.lock().expect("no panics while holding it").merge(&cov);
                failures.lock().expect("no panics while holding it").extend(failed);
            });
        }
    });
    let mut failures = failures.into_inner().expect("threads joined");
    failures.sort_by_key(|f| f.0);
    (total.into_inner().expect("threads joined"), failures)
}
