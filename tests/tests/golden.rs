//! The core's behaviour, pinned: the traces (every input, action and event, on virtual time) of a fixed
//! set of simulator seeds and of the fuzz corpus, hashed and compared with `tests/golden/traces.txt`.
//!
//! This is what proves a refactor of the session changed nothing: same inputs, same outputs, byte for
//! byte. A change that is *meant* to change behaviour records the new traces in the same commit, and
//! says why:
//!
//! ```sh
//! TETHER_BLESS=1 cargo test -p tether-tests --test golden
//! ```
//!
//! Configuration lines are left out of the hash (adding a setting with its default is not a change of
//! behaviour), and so is what the driver reports about a connection beyond its handshake time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use tether_tests::sim::fuzz::{OpsInput, run_ops_traced};
use tether_tests::sim::{replay_command, run_seed};

/// Simulator seeds pinned (both driving styles: odd seeds drain in batches).
const SEEDS: u64 = 1_000;

/// FNV-1a over the trace lines, leaving out the configuration dump.
fn digest(lines: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for line in lines.iter().filter(|l| !l.trim_start().split_once("  ").is_some_and(|(_, r)| r.starts_with("config ")))
    {
        for b in line.bytes().chain([b'\n']) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

fn golden_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/traces.txt")
}

/// `name digest` lines for every pinned run, in a fixed order.
fn current() -> String {
    let mut out = String::new();
    for seed in 0..SEEDS {
        let r = run_seed(seed, true, false);
        assert!(r.violation.is_none(), "seed {seed}: {:?}", r.violation);
        let _ = writeln!(out, "seed-{seed} {:016x}", digest(&r.trace));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/core_ops");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable corpus entry").path())
        .collect();
    files.sort();
    for f in files {
        let data = std::fs::read(&f).expect("readable corpus file");
        let Ok(input) = OpsInput::arbitrary_take_rest(Unstructured::new(&data)) else { continue };
        let (r, trace) = run_ops_traced(input);
        assert!(r.is_ok(), "{}: {r:?}", f.display());
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = writeln!(out, "core_ops-{name} {:016x}", digest(&trace));
    }
    out
}

#[test]
fn traces_are_the_pinned_ones() {
    let now = current();
    let path = golden_file();
    if std::env::var_os("TETHER_BLESS").is_some() {
        std::fs::write(&path, &now).expect("write the golden file");
        eprintln!("recorded {} traces in {}", now.lines().count(), path.display());
        return;
    }
    let pinned = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; record it with TETHER_BLESS=1", path.display()));
    let changed: Vec<String> = now
        .lines()
        .zip(pinned.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, _)| {
            let name = a.split(' ').next().unwrap_or(a);
            match name.strip_prefix("seed-").and_then(|s| s.parse().ok()) {
                Some(seed) => format!("{name}: see its trace with `{}`", replay_command(seed, false)),
                None => format!("{name} (fuzz corpus)"),
            }
        })
        .collect();
    assert_eq!(now.lines().count(), pinned.lines().count(), "a different set of pinned runs");
    assert!(
        changed.is_empty(),
        "{} of {} traces changed; if the change is intended, record them with TETHER_BLESS=1 and say why in \
         the commit:\n{}",
        changed.len(),
        now.lines().count(),
        changed.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}
