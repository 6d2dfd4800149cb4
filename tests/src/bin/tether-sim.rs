//! The simulator's long mode.
//!
//! ```text
//! cargo run --release -p tether-tests --bin tether-sim -- --seeds 1000000 [--start N] [--threads T]
//! cargo run --release -p tether-tests --bin tether-sim -- --seed N --trace
//! ... --known-bugs   (also generate scenarios that hit the known, unfixed core bugs)
//! ```
//!
//! The first form runs many seeds and prints what they reached (transitions, events, outcomes) and
//! every failing seed with the command that replays it; the second replays one seed and prints its trace.

use std::process::ExitCode;
use std::time::Instant;

use tether_tests::sim::{replay_command, run_seed, run_seeds};

fn usage() -> ExitCode {
    eprintln!("usage: tether-sim [--seeds N [--start S] [--threads T] | --seed N [--trace]] [--known-bugs]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seeds = None;
    let mut start = 0u64;
    let mut one = None;
    let mut trace = false;
    let mut known_bugs = false;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = || it.next().and_then(|v| v.parse::<u64>().ok());
        match a.as_str() {
            "--seeds" => seeds = num(),
            "--start" => start = num().unwrap_or(0),
            "--seed" => one = num(),
            "--threads" => threads = num().map_or(threads, |n| n as usize),
            "--trace" => trace = true,
            "--known-bugs" => known_bugs = true,
            _ => return usage(),
        }
    }
    if let Some(seed) = one {
        let r = run_seed(seed, trace, known_bugs);
        for line in &r.trace {
            println!("{line}");
        }
        println!("{}", r.coverage);
        return match r.violation {
            Some(v) => {
                println!("seed {seed} FAILED: {v}");
                ExitCode::FAILURE
            }
            None => {
                println!("seed {seed} ok");
                ExitCode::SUCCESS
            }
        };
    }
    let Some(n) = seeds else { return usage() };
    let t = Instant::now();
    let (cov, failures) = run_seeds(start..start + n, threads, known_bugs);
    let secs = t.elapsed().as_secs_f64();
    println!("{cov}");
    println!("{n} seeds from {start} in {secs:.1}s on {threads} threads ({:.0} seeds/s)", n as f64 / secs);
    let missing = cov.missing();
    if !missing.is_empty() {
        println!("never reached: {}", missing.join(", "));
    }
    for (seed, v) in &failures {
        println!("seed {seed} FAILED: {v}\n  replay: {}", replay_command(*seed, known_bugs));
    }
    if failures.is_empty() {
        println!("no violation");
        ExitCode::SUCCESS
    } else {
        println!("{} failing seeds", failures.len());
        ExitCode::FAILURE
    }
}
