//! The deterministic simulation of `tether-core` over many seeds, its coverage, and the replay of the
//! fuzz corpus through the same bodies the fuzz targets run.
//!
//! `TETHER_SIM_SEEDS=N` changes the number of seeds (default 10 000); the long mode is the
//! `tether-sim` binary.

use std::path::Path;
use std::time::Instant;

use tether_tests::sim::{fuzz, replay_command, run_seed, run_seeds};

fn seeds() -> u64 {
    std::env::var("TETHER_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000)
}

#[test]
fn ten_thousand_seeds_hold_every_invariant_and_reach_everything() {
    let n = seeds();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    let (cov, failures) = run_seeds(0..n, threads, false);
    let secs = t.elapsed().as_secs_f64();
    println!("{cov}");
    println!("{n} seeds in {secs:.1}s on {threads} threads ({:.0} seeds/s)", n as f64 / secs);
    let report: Vec<String> = failures
        .iter()
        .map(|(seed, v)| format!("seed {seed}: {v}\n  replay: {}", replay_command(*seed, false)))
        .collect();
    assert!(failures.is_empty(), "{} failing seeds:\n{}", failures.len(), report.join("\n"));
    assert_eq!(cov.runs, n);
    let missing = cov.missing();
    assert!(missing.is_empty(), "never reached over {n} seeds: {}", missing.join(", "));
    assert!(cov.duplicates > 0, "no requeued message ever reached the server twice");
    assert!(cov.time_jumps > 0 && cov.liveness_checks > 0 && cov.dead_link_checks > 0, "{cov}");
    // Tracked messages: acknowledged by hand and by correlation, unknown and duplicate acknowledgements,
    // an acknowledgement for a message waiting in line for its redelivery, cancels.
    assert!(cov.tracked_runs > 0 && cov.app_acks > 0 && cov.unknown_acks > 0, "{cov}");
    assert!(cov.acks_while_requeued > 0 && cov.cancels > 0, "{cov}");
}

#[test]
fn a_seed_is_a_scenario() {
    for seed in [0, 1, 42, 9_999] {
        let a = run_seed(seed, true, false);
        let b = run_seed(seed, true, false);
        assert_eq!(a.trace, b.trace, "seed {seed} is not deterministic");
        assert_eq!(a.coverage, b.coverage);
        assert!(a.trace.len() > 10);
    }
}

fn replay_corpus(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    for f in files {
        let data = std::fs::read(&f).expect("readable corpus file");
        let r = std::panic::catch_unwind(|| body(&data));
        assert!(r.is_ok(), "fuzz target {target} fails on {}", f.display());
    }
}

#[test]
fn fuzz_corpus_core_ops() {
    replay_corpus("core_ops", fuzz::core_ops);
}

#[test]
fn fuzz_corpus_config() {
    replay_corpus("config", fuzz::config);
}

#[test]
fn fuzz_corpus_parsers() {
    replay_corpus("parsers", fuzz::parsers);
}

#[test]
fn fuzz_corpus_proxy_handshakes() {
    replay_corpus("proxy_handshakes", fuzz::proxy_handshakes);
}

/// Inputs on which a fuzz target once failed. Those that failed because of the simulator are fixed and
/// must pass; core bugs not yet fixed are in `fuzz/regressions/<target>/core-bug-*` and replayed by the
/// ignored tests below.
fn replay_regressions(target: &str, body: fn(&[u8]), core_bugs: bool) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let mut files: Vec<_> = entries.map(|e| e.expect("readable entry").path()).collect();
    files.sort();
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with("core-bug-") != core_bugs {
            continue;
        }
        let data = std::fs::read(&f).expect("readable regression file");
        let r = std::panic::catch_unwind(|| body(&data));
        assert!(r.is_ok(), "fuzz target {target} fails on {}", f.display());
    }
}

#[test]
fn fuzz_regressions() {
    replay_regressions("core_ops", fuzz::core_ops, false);
    replay_regressions("config", fuzz::config, false);
    replay_regressions("parsers", fuzz::parsers, false);
}

#[test]
#[ignore = "replays fuzz/regressions/*/core-bug-*: core bugs found by the fuzzers and not fixed yet (none at the moment)"]
fn fuzz_regressions_core_bugs() {
    replay_regressions("core_ops", fuzz::core_ops, true);
    replay_regressions("config", fuzz::config, true);
    replay_regressions("parsers", fuzz::parsers, true);
}

/// Once a core bug (fixed in 6706127): a requeued message whose TTL passed in flight left
/// `poll_timeout` in the past.
#[test]
fn requeued_message_expired_in_flight() {
    let r = run_seed(704, false, true);
    assert!(r.violation.is_none(), "{:?}", r.violation);
}

/// Regression: the detection bound with `pong_timeout > interval` (seed 625 violated it before the
/// heartbeat fix).
#[test]
fn detection_bound_with_long_pong_timeout() {
    let r = run_seed(625, false, true);
    assert!(r.violation.is_none(), "{:?}", r.violation);
}

/// The smallest case of the (fixed) detection-bound bug, by hand: interval 2 s, pong timeout 3 s, no
/// misses tolerated; bound 5 s. A probe at 2 s; a server message at 2.1 s (proof of life), then silence.
#[test]
fn detection_bound_minimal() {
    use std::time::Duration;
    use tether_core::*;
    let ms = Duration::from_millis;
    let cfg = Config::default().heartbeat(Some(
        HeartbeatConfig::default()
            .interval(ms(2_000))
            .pong_timeout(ms(3_000))
            .tolerated_misses(0)
            .receive_idle(None)
            .late_tolerance(ms(500)),
    ));
    let bound = cfg.heartbeat.as_ref().map(|h| h.detection_bound()).unwrap_or_default();
    let t0 = Instant::now();
    let mut s = Session::new(cfg, t0).expect("valid");
    s.connect(t0).expect("idle");
    let t = s.transport().expect("opening");
    s.handle_transport(t0, t, TransportEvent::Opened(ConnectInfo::new(ms(1))));
    s.handle_timeout(t0 + ms(2_000)); // the first probe
    let last_life = t0 + ms(2_100);
    s.handle_transport(last_life, t, TransportEvent::Received(Frame::Message(Message::text("hi"))));
    let mut now = last_life;
    while s.state() == State::Connected {
        now = s.poll_timeout().expect("a heartbeat deadline");
        s.handle_timeout(now);
    }
    assert!(
        now <= last_life + bound,
        "dead link detected {:?} after the last sign of life, bound {bound:?}",
        now - last_life
    );
}
