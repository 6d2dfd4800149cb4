//! `tether-bench`: the end-to-end harness. Tether on tokio, smol and async-std, side by side with raw
//! tokio-tungstenite / async-tungstenite on the same runtime, against `tether-bench-server` in its own
//! process on loopback. Harness and server are pinned to the same CPU when `taskset` exists.
//!
//! ```text
//! cargo run --release -p tether-benches --bin tether-bench            # quick mode (< 2 min)
//! cargo run --release -p tether-benches --bin tether-bench -- --full  # full mode: repeats, medians
//! ```
//!
//! Options: `--full`, `--no-pin`, `--only tokio|smol|async-std` (repeatable). It prints a markdown
//! table; benchmarks report, they assert nothing about time.

mod anchors;
mod delivery;
mod memory;
mod rt;
mod runs;
mod server;

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tether_benches::{BLACKHOLE, CountingAlloc, ECHO, SINK, alloc_calls, median, percentile};
use tether_core::{Action, Config, ConnectInfo, Event, Message, Session, TransportEvent};

use crate::anchors::Anchor;
use crate::rt::{Rt, with_raw};
use crate::server::Server;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const PIN_ENV: &str = "TETHER_BENCH_PINNED";

struct Params {
    full: bool,
    reps: usize,
    n64: usize,
    n16k: usize,
    echo: usize,
    connects: usize,
    reconnects: usize,
    half_open: usize,
    mem_n: usize,
    mem_reps: usize,
    core_n: usize,
    feed: usize,
}

impl Params {
    fn quick() -> Self {
        Self {
            full: false,
            reps: 1,
            n64: 200_000,
            n16k: 10_000,
            echo: 2_000,
            connects: 200,
            reconnects: 3,
            half_open: 2,
            mem_n: 2_000,
            mem_reps: 1,
            core_n: 1_000_000,
            feed: 100_000,
        }
    }

    fn full() -> Self {
        Self {
            full: true,
            reps: 5,
            n64: 1_000_000,
            n16k: 40_000,
            echo: 10_000,
            connects: 500,
            reconnects: 10,
            half_open: 5,
            mem_n: 2_000,
            mem_reps: 3,
            core_n: 5_000_000,
            feed: 500_000,
        }
    }
}

struct Row {
    what: String,
    rt: &'static str,
    tether: String,
    raw: String,
    ratio: String,
    target: &'static str,
    verdict: &'static str,
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "—",
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn rate(msgs_per_s: f64, size: usize) -> String {
    format!("{:.2} M msg/s, {:.0} MB/s", msgs_per_s / 1e6, msgs_per_s * size as f64 / 1e6)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--mem-child") {
        let num = |i: usize| args[i].parse().expect("number");
        memory::child(&args[1], num(2), num(3) as u16, num(4) as u16);
        return;
    }
    if args.first().map(String::as_str) == Some("--profile-oneway") {
        // Hidden, for a profiler: one-way 64 B only. `--profile-oneway tether|raw|raw-batched|fast|fast-batched|tws|tws-batched|tether-connect|raw-connect RUNTIME N [SIZE]` (the anchors on tokio only).
        let rt = *Rt::ALL.iter().find(|r| r.name() == args[2]).expect("runtime");
        let n: usize = args[3].parse().expect("number");
        let size: usize = args.get(4).map_or(64, |s| s.parse().expect("size"));
        let server = Server::start(0, None);
        let url = server.url(SINK);
        let connects = match args[1].as_str() {
            "tether-connect" => Some(rt.block_on(runs::tether_connects(rt, url.clone(), n))),
            "raw-connect" => Some(rt.block_on(runs::raw_connects(rt, url.clone(), n))),
            _ => None,
        };
        if let Some(mut c) = connects {
            c.sort();
            println!("{:.1} µs p50", c[c.len() / 2].as_secs_f64() * 1e6);
            return;
        }
        let d = match args[1].as_str() {
            "tether" => rt.block_on(runs::tether_oneway(rt, url, n, size)),
            "fast" | "fast-batched" | "tws" | "tws-batched" => {
                let a = if args[1].starts_with("fast") { Anchor::Fast } else { Anchor::TokioWs };
                let batched = args[1].ends_with("batched");
                rt.block_on(async move { a.oneway(&url, n, size, batched).await })
            }
            "raw" => rt.block_on(async move { with_raw!(rt, url, |ws| runs::raw_oneway(ws, n, size, false).await) }),
            _ => rt.block_on(async move { with_raw!(rt, url, |ws| runs::raw_oneway(ws, n, size, true).await) }),
        };
        println!("{:.2} M msg/s", n as f64 / d.as_secs_f64() / 1e6);
        return;
    }
    if args.first().map(String::as_str) == Some("--profile-feed") {
        // Hidden, for a profiler: the feed only. `--profile-feed RUNTIME N on|off`.
        let rt = *Rt::ALL.iter().find(|r| r.name() == args[1]).expect("runtime");
        let n: usize = args[2].parse().expect("number");
        let server = Server::start(0, None);
        rt.block_on(runs::tether_feed(rt, server.url(""), n, args[3] == "on"));
        let d = rt.block_on(runs::tether_feed(rt, server.url(""), n, args[3] == "on"));
        println!("{:.3} M msg/s", n as f64 / d.as_secs_f64() / 1e6);
        return;
    }
    if args.first().map(String::as_str) == Some("--profile-reconnect") {
        // Hidden: the reconnect measure alone, beside fresh connects on the same runtime, pinned like the
        // full harness. `--profile-reconnect RUNTIME N`; with TETHER_BENCH_RECONNECT_PARTS=1 in the
        // environment, each reconnect's parts go to stderr.
        let rt = *Rt::ALL.iter().find(|r| r.name() == args[1]).expect("runtime");
        let n: usize = args[2].parse().expect("number");
        let cpu = pin_self(&args);
        let server = Server::start(0, cpu);
        let mut fresh = rt.block_on(runs::tether_connects(rt, server.url(SINK), 200));
        let mut raw = rt.block_on(runs::raw_connects(rt, server.url(SINK), 200));
        let srv = Server::start(free_port(), cpu);
        let (samples, _srv) = rt.block_on(runs::tether_reconnects(rt, srv, cpu, n));
        let mut over: Vec<Duration> = samples.iter().map(|s| s.overhead).collect();
        println!(
            "reconnect p50 {} max {}; fresh connect p50 {}, raw {}",
            us(percentile(&mut over, 50)),
            us(percentile(&mut over, 100)),
            us(percentile(&mut fresh, 50)),
            us(percentile(&mut raw, 50))
        );
        return;
    }
    if args.first().map(String::as_str) == Some("--profile-core") {
        // Hidden, for callgrind: the core's per-message loop only. `--profile-core N`.
        let p = Params { core_n: args[1].parse().expect("number"), ..Params::quick() };
        let mut rows = Vec::new();
        core_rows(&p, &mut rows);
        println!("{}", rows[0].tether);
        return;
    }
    let cpu = pin_self(&args);
    let p = if args.iter().any(|a| a == "--full") { Params::full() } else { Params::quick() };
    let mut only: Vec<Rt> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--full" | "--no-pin" => {}
            "--only" => {
                let name = it.next().expect("--only takes a runtime");
                only.push(*Rt::ALL.iter().find(|r| r.name() == name).expect("tokio, smol or async-std"));
            }
            other => panic!("unknown option {other:?}; options: --full, --no-pin, --only RUNTIME"),
        }
    }
    if only.is_empty() {
        only = Rt::ALL.to_vec();
    }

    describe(&p, cpu);
    // Started first: from a fresh checkout this builds the server binary, which is not timed.
    let server = Server::start(0, cpu);
    let started = Instant::now();
    let mut rows = Vec::new();
    core_rows(&p, &mut rows);
    feed_bytes_row(&p, &mut rows);
    // tokio first: its pass runs the anchors, which the other runtimes are compared with.
    only.sort_by_key(|r| *r != Rt::Tokio);
    if !only.contains(&Rt::Tokio) {
        only.insert(0, Rt::Tokio);
        eprintln!("(tokio runs too: the anchors run on it)");
    }
    let mut best = Best::default();
    for &rt in &only {
        eprintln!("[{:>5.1}s] {} ...", started.elapsed().as_secs_f64(), rt.name());
        runtime_rows(rt, &p, &server, cpu, &mut best, &mut rows);
        let sizes = delivery::Sizes { reps: p.reps, messages: p.n64 / 4, requests: p.echo };
        delivery::rows(rt, &sizes, &server, &mut rows);
    }
    eprintln!("[{:>5.1}s] memory ...", started.elapsed().as_secs_f64());
    memory_rows(&p, &server, &mut rows);
    drop(server);

    println!();
    println!("| measurement | runtime | Tether | raw | ratio Tether/raw | target | verdict |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("| {} | {} | {} | {} | {} | {} | {} |", r.what, r.rt, r.tether, r.raw, r.ratio, r.target, r.verdict);
    }
    println!();
    println!("total time: {:.1} s; load average after: {}", started.elapsed().as_secs_f64(), loadavg());
}

/// Re-executes under `taskset -c CPU` (the last CPU) unless already pinned, `--no-pin`, or no taskset.
fn pin_self(args: &[String]) -> Option<usize> {
    if let Ok(c) = std::env::var(PIN_ENV) {
        return c.parse().ok();
    }
    let have_taskset = Command::new("taskset").arg("--version").output().is_ok_and(|o| o.status.success());
    if args.iter().any(|a| a == "--no-pin") || !have_taskset {
        return None;
    }
    let cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    let exe = std::env::current_exe().expect("current exe");
    let status = Command::new("taskset")
        .arg("-c")
        .arg(cpu.to_string())
        .arg(exe)
        .args(args)
        .env(PIN_ENV, cpu.to_string())
        .status()
        .expect("run under taskset");
    std::process::exit(status.code().unwrap_or(1));
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn describe(p: &Params, cpu: Option<usize>) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|m| m.trim_start_matches([' ', '\t', ':']));
    let cores = std::fs::read_to_string("/sys/fs/cgroup/cpu.max").ok();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("# tether-bench ({} mode)", if p.full { "full" } else { "quick" });
    println!();
    println!(
        "- machine: {} ({} CPUs), Linux {}; load average before: {}",
        model.unwrap_or("unknown CPU"),
        cpuinfo.lines().filter(|l| l.starts_with("processor")).count(),
        kernel.trim(),
        loadavg()
    );
    if let Some(c) = cores {
        println!("- cgroup cpu.max: {}", c.trim());
    }
    match cpu {
        Some(c) => println!("- pinning: harness and server both on CPU {c} (`taskset -c {c}`)"),
        None => println!("- pinning: none (no taskset, or --no-pin)"),
    }
    println!(
        "- runs: {} repeat(s), medians; one-way {} x 64 B and {} x 16 KiB; echo {} round trips; {} connects; {} reconnects; {} half-open; feed {} ticks; memory N = {} connections ({} repeat(s))",
        p.reps, p.n64, p.n16k, p.echo, p.connects, p.reconnects, p.half_open, p.feed, p.mem_n, p.mem_reps
    );
    println!(
        "- Tether: default config (`ClientBuilder::new(url).build()`), `client.send(m).await` per message; raw: `TCP_NODELAY` on, default `WebSocketConfig`"
    );
}

/// The core alone, in this process: ns and allocation calls per message (send -> Send action ->
/// Flushed -> Sent outcome), as in `benches/core.rs`.
fn core_rows(p: &Params, rows: &mut Vec<Row>) {
    let now = Instant::now();
    let mut s = Session::new(Config::default(), now).expect("valid");
    s.connect(now).expect("connect");
    let Some(Action::Open { transport: t, .. }) = s.poll_action() else { panic!("expected Open") };
    s.handle_transport(now, t, TransportEvent::Opened(ConnectInfo::new(Duration::from_millis(1))));
    while s.poll_event().is_some() {}
    let payload = Bytes::from_static(&[7u8; 64]);
    let one = |s: &mut Session| {
        s.send(now, Message::binary(payload.clone())).expect("room");
        let Some(Action::Send { id: Some(sent), message, .. }) = s.poll_action() else { panic!("expected Send") };
        black_box(message);
        s.handle_transport(now, t, TransportEvent::Flushed { through: sent });
        let Some(Event::Outcome { .. }) = s.poll_event() else { panic!("expected Outcome") };
    };
    for _ in 0..10_000 {
        one(&mut s);
    }
    // The fastest of 10 chunks: on a shared machine the others measure the neighbours too.
    const CHUNKS: usize = 10;
    let mut ns = f64::INFINITY;
    let mut allocs = 0;
    for _ in 0..CHUNKS {
        let a0 = alloc_calls();
        let t0 = Instant::now();
        for _ in 0..p.core_n / CHUNKS {
            one(&mut s);
        }
        let dt = t0.elapsed();
        allocs += alloc_calls() - a0;
        ns = ns.min(dt.as_nanos() as f64 / (p.core_n / CHUNKS) as f64);
    }
    let per = allocs as f64 / p.core_n as f64;
    rows.push(Row {
        what: "core per message (send → action → flushed → outcome), fastest of 10 chunks".into(),
        rt: "—",
        tether: format!("{ns:.0} ns, {per:.3} allocs ({allocs} in {} messages)", p.core_n),
        raw: "—".into(),
        ratio: "—".into(),
        target: "≤ 100 ns, 0 allocs",
        verdict: verdict(Some(ns <= 100.0 && allocs == 0)),
    });
}

/// The fastest batched figures of the run so far (msg/s), per size (64 B, 16 KiB): the anchors' (on tokio)
/// and raw tokio-tungstenite's.
#[derive(Default)]
struct Best {
    anchor: [Option<(&'static str, f64)>; 2],
    raw_batched: [Option<f64>; 2],
}

fn runtime_rows(rt: Rt, p: &Params, server: &Server, cpu: Option<usize>, best: &mut Best, rows: &mut Vec<Row>) {
    let sink = server.url(SINK);
    let echo = server.url(ECHO);
    let name = rt.name();
    let raw = rt.raw_name();

    // Warm-up (not reported): each kind once, small.
    {
        let u = sink.clone();
        rt.block_on(runs::tether_oneway(rt, u, 20_000, 64));
        let u = sink.clone();
        rt.block_on(async move { with_raw!(rt, u, |ws| runs::raw_oneway(ws, 20_000, 64, false).await) });
    }

    // One-way throughput; on tokio the anchors run in the same repeats.
    let anchors: &[Anchor] = if rt == Rt::Tokio { &Anchor::ALL } else { &[] };
    for (k, (size, n)) in [(64usize, p.n64), (16 << 10, p.n16k)].into_iter().enumerate() {
        let (mut t, mut per, mut bat) = (Vec::new(), Vec::new(), Vec::new());
        let mut anchor_runs: Vec<[Vec<f64>; 2]> = anchors.iter().map(|_| [Vec::new(), Vec::new()]).collect();
        for _ in 0..p.reps {
            let u = sink.clone();
            t.push(n as f64 / rt.block_on(runs::tether_oneway(rt, u, n, size)).as_secs_f64());
            let u = sink.clone();
            let d = rt.block_on(async move { with_raw!(rt, u, |ws| runs::raw_oneway(ws, n, size, false).await) });
            per.push(n as f64 / d.as_secs_f64());
            let u = sink.clone();
            let d = rt.block_on(async move { with_raw!(rt, u, |ws| runs::raw_oneway(ws, n, size, true).await) });
            bat.push(n as f64 / d.as_secs_f64());
            for (a, runs) in anchors.iter().zip(&mut anchor_runs) {
                for (batched, v) in runs.iter_mut().enumerate() {
                    let (a, u) = (*a, sink.clone());
                    let d = rt.block_on(async move { a.oneway(&u, n, size, batched == 1).await });
                    v.push(n as f64 / d.as_secs_f64());
                }
            }
        }
        let (t, per, bat) = (median(&mut t), median(&mut per), median(&mut bat));
        let label = if size == 64 { "64 B" } else { "16 KiB" };
        let (target_abs, ok_abs) = if size == 64 { ("≥ 3 M msg/s", Some(t >= 3e6)) } else { ("—", None) };
        rows.push(Row {
            what: format!("one-way {label}: Tether `send().await` vs raw `send` per message"),
            rt: name,
            tether: rate(t, size),
            raw: format!("{raw}: {}", rate(per, size)),
            ratio: format!("{:.2}×", t / per),
            target: target_abs,
            verdict: verdict(ok_abs),
        });
        let (target, min) = if size == 64 { ("≥ 1.00×", 1.00) } else { ("≥ 0.90×", 0.90) };
        rows.push(Row {
            what: format!("one-way {label}: Tether `send().await` vs raw batched (`send_all`)"),
            rt: name,
            tether: rate(t, size),
            raw: format!("{raw}: {}", rate(bat, size)),
            ratio: format!("{:.2}×", t / bat),
            target,
            verdict: verdict(Some(t / bat >= min)),
        });
        for (a, mut runs) in anchors.iter().zip(anchor_runs) {
            for (batched, v) in runs.iter_mut().enumerate() {
                let r = median(v);
                let how = match (a, batched == 1) {
                    (Anchor::Fast, false) => "`write_frame` per message",
                    (Anchor::Fast, true) => "batched: `write_frame` into a 128 KiB `BufWriter`, one flush",
                    (Anchor::TokioWs, false) => "`send` per message",
                    (Anchor::TokioWs, true) => "batched (`send_all`)",
                };
                if batched == 1 && best.anchor[k].is_none_or(|(_, b)| r > b) {
                    best.anchor[k] = Some((a.name(), r));
                }
                rows.push(Row {
                    what: format!("one-way {label}: Tether `send().await` vs {} {how}", a.name()),
                    rt: name,
                    tether: rate(t, size),
                    raw: format!("{}: {}", a.name(), rate(r, size)),
                    ratio: format!("{:.2}×", t / r),
                    target: "—",
                    verdict: "—",
                });
            }
        }
        if rt == Rt::Tokio && best.raw_batched[k].is_none_or(|b| bat > b) {
            best.raw_batched[k] = Some(bat);
        }
        // The fastest batched client of the run (the anchors run on tokio).
        let fastest = match (best.anchor[k], best.raw_batched[k]) {
            (Some((a, r)), Some(b)) if r >= b => Some((a, r)),
            (_, Some(b)) => Some(("tokio-tungstenite", b)),
            (a, None) => a,
        };
        if let Some((who, r)) = fastest {
            rows.push(Row {
                what: format!("one-way {label}: Tether `send().await` vs the fastest batched client (on tokio)"),
                rt: name,
                tether: rate(t, size),
                raw: format!("{who}: {}", rate(r, size)),
                ratio: format!("{:.2}×", t / r),
                target: if size == 64 { "≥ 1.00× (the goal beyond issue 15)" } else { "—" },
                verdict: "—",
            });
        }
    }

    // Echo round trips, 64 B; connects. On tokio the anchors run in the same repeats.
    type Lat = [Vec<f64>; 2];
    let push = |l: &mut Lat, mut v: Vec<Duration>| {
        l[0].push(percentile(&mut v, 50).as_secs_f64());
        l[1].push(percentile(&mut v, 99).as_secs_f64());
    };
    let (mut t, mut r) = (Lat::default(), Lat::default());
    let mut an: Vec<Lat> = anchors.iter().map(|_| Lat::default()).collect();
    for _ in 0..p.reps {
        push(&mut t, rt.block_on(runs::tether_echo(rt, echo.clone(), p.echo)));
        let (u, n) = (echo.clone(), p.echo);
        push(&mut r, rt.block_on(async move { with_raw!(rt, u, |ws| runs::raw_echo(ws, n).await) }));
        for (a, l) in anchors.iter().zip(&mut an) {
            let (a, u, n) = (*a, echo.clone(), p.echo);
            push(l, rt.block_on(async move { a.echo(&u, n).await }));
        }
    }
    let what = "echo 64 B round trip";
    latency_rows(
        rows,
        what,
        name,
        raw,
        [t[0].clone(), t[1].clone(), r[0].clone(), r[1].clone()],
        Some(("≤ 1.10×", 1.10)),
    );
    for (a, [a50, a99]) in anchors.iter().zip(an) {
        latency_rows(rows, what, name, a.name(), [t[0].clone(), t[1].clone(), a50, a99], None);
    }

    let (mut t, mut r) = (Lat::default(), Lat::default());
    let mut an: Vec<Lat> = anchors.iter().map(|_| Lat::default()).collect();
    for _ in 0..p.reps {
        push(&mut t, rt.block_on(runs::tether_connects(rt, sink.clone(), p.connects)));
        push(&mut r, rt.block_on(runs::raw_connects(rt, sink.clone(), p.connects)));
        for (a, l) in anchors.iter().zip(&mut an) {
            let (a, u, n) = (*a, sink.clone(), p.connects);
            push(l, rt.block_on(async move { a.connects(&u, n).await }));
        }
    }
    let raw_connect_p50 = Duration::from_secs_f64(median(&mut r[0].clone()));
    let what = "connect (to `Connected`) vs raw `connect_async`";
    latency_rows(
        rows,
        what,
        name,
        raw,
        [t[0].clone(), t[1].clone(), r[0].clone(), r[1].clone()],
        Some(("≤ 1.05×", 1.05)),
    );
    for (a, [a50, a99]) in anchors.iter().zip(an) {
        let what = format!("connect (to `Connected`) vs {} (TCP + upgrade)", a.name());
        latency_rows(rows, &what, name, a.name(), [t[0].clone(), t[1].clone(), a50, a99], None);
    }

    // Reconnect: a killable server of its own, on a fixed port.
    let port = free_port();
    let srv = Server::start(port, cpu);
    let (samples, srv) = rt.block_on(runs::tether_reconnects(rt, srv, cpu, p.reconnects));
    drop(srv);
    let mut over: Vec<Duration> = samples.iter().map(|s| s.overhead).collect();
    let delay = samples.first().map_or(Duration::ZERO, |s| s.delay);
    let (o50, o99) = (percentile(&mut over, 50), percentile(&mut over, 99));
    rows.push(Row {
        what: format!(
            "reconnect after server kill + restart: server accepting → `Connected`, minus the scheduled backoff ({} ms), p50 / max of {}",
            delay.as_millis(),
            over.len()
        ),
        rt: name,
        tether: format!("{} / {}", us(o50), us(o99)),
        raw: format!("{raw} connect p50: {}", us(raw_connect_p50)),
        ratio: format!("{:.2}×", o50.as_secs_f64() / raw_connect_p50.as_secs_f64()),
        target: "≤ 1.50×",
        verdict: verdict(Some(o50.as_secs_f64() / raw_connect_p50.as_secs_f64() <= 1.5)),
    });

    // The JSON feed, with and without permessage-deflate. The server makes each feed once, on its first
    // request: a run first, untimed, so that the timed ones measure the client only.
    for compression in [true, false] {
        rt.block_on(runs::tether_feed(rt, server.url(""), p.feed, compression));
    }
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..p.reps {
        with.push(p.feed as f64 / rt.block_on(runs::tether_feed(rt, server.url(""), p.feed, true)).as_secs_f64());
        without.push(p.feed as f64 / rt.block_on(runs::tether_feed(rt, server.url(""), p.feed, false)).as_secs_f64());
    }
    let (with, without) = (median(&mut with), median(&mut without));
    rows.push(Row {
        what: format!(
            "JSON feed received ({} ticks of ~200 B pushed by the server): with permessage-deflate (raw column: without)",
            p.feed
        ),
        rt: name,
        tether: format!("{:.2} M msg/s", with / 1e6),
        raw: format!("Tether, compression off: {:.2} M msg/s", without / 1e6),
        ratio: format!("{:.2}×", with / without),
        target: "—",
        verdict: "—",
    });

    // Half-open detection.
    let (interval, pong) = (Duration::from_millis(200), Duration::from_millis(100));
    let mut det = Vec::new();
    let mut bound = Duration::ZERO;
    for _ in 0..p.half_open {
        let (d, b) = rt.block_on(runs::tether_half_open(rt, server.url(BLACKHOLE), interval, pong));
        det.push(d);
        bound = b;
    }
    let worst = det.iter().copied().max().unwrap_or_default();
    let d50 = percentile(&mut det, 50);
    rows.push(Row {
        what: format!(
            "half-open detection (server silent; ping 200 ms, pong timeout 100 ms), p50 / max of {}",
            det.len()
        ),
        rt: name,
        tether: format!("{:.1} ms / {:.1} ms", d50.as_secs_f64() * 1e3, worst.as_secs_f64() * 1e3),
        raw: format!("bound {} ms (raw: no keepalive, never detected)", bound.as_millis()),
        ratio: format!("{:.3}× bound", worst.as_secs_f64() / bound.as_secs_f64()),
        target: "≤ bound + 10 ms timer slack",
        verdict: verdict(Some(worst <= bound + Duration::from_millis(10))),
    });
}

/// Bytes on the wire for the feed, plain and compressed (computed from the frames the server sends:
/// deterministic, no timing involved).
fn feed_bytes_row(p: &Params, rows: &mut Vec<Row>) {
    let n = p.feed.min(100_000);
    let plain = tether_benches::feed(n, false).len() as f64 / n as f64;
    let compressed = tether_benches::feed(n, true).len() as f64 / n as f64;
    rows.push(Row {
        what: format!("JSON feed: bytes on the wire per tick (frames included, {n} ticks, context takeover)"),
        rt: "—",
        tether: format!("permessage-deflate: {compressed:.1} B"),
        raw: format!("uncompressed: {plain:.1} B"),
        ratio: format!("{:.2}×", compressed / plain),
        target: "—",
        verdict: "—",
    });
}

/// p50 and p99 rows of Tether against another client; `max`: the target for the p50 ratio (its text, its
/// bound).
fn latency_rows(
    rows: &mut Vec<Row>,
    what: &str,
    rt: &'static str,
    raw: &str,
    v: [Vec<f64>; 4],
    max: Option<(&'static str, f64)>,
) {
    let [mut t50, mut t99, mut r50, mut r99] = v;
    let (t50, t99, r50, r99) = (median(&mut t50), median(&mut t99), median(&mut r50), median(&mut r99));
    let d = Duration::from_secs_f64;
    rows.push(Row {
        what: format!("{what}, p50"),
        rt,
        tether: us(d(t50)),
        raw: format!("{raw}: {}", us(d(r50))),
        ratio: format!("{:.2}×", t50 / r50),
        target: max.map_or("—", |(text, _)| text),
        verdict: verdict(max.map(|(_, m)| t50 / r50 <= m)),
    });
    rows.push(Row {
        what: format!("{what}, p99"),
        rt,
        tether: us(d(t99)),
        raw: format!("{raw}: {}", us(d(r99))),
        ratio: format!("{:.2}×", t99 / r99),
        target: "—",
        verdict: "—",
    });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn memory_rows(p: &Params, server: &Server, rows: &mut Vec<Row>) {
    let dead = free_port();
    let mut get = |kind: &str| {
        let mut rss = Vec::new();
        let mut heap = Vec::new();
        for _ in 0..p.mem_reps {
            let m = memory::measure(kind, p.mem_n, server.port, dead);
            rss.push(m.rss_kib);
            heap.push(m.heap_kib);
        }
        (median(&mut rss), median(&mut heap))
    };
    let [ti, ri, tq, rq, pr, di, dr, db] = memory::KINDS.map(&mut get);
    let n = p.mem_n;
    rows.push(Row {
        what: format!("idle connection, default config: RSS per connection (N = {n}, driver task included)"),
        rt: "tokio",
        tether: format!("{:.1} KiB", ti.0),
        raw: format!("tokio-tungstenite default: {:.1} KiB", ri.0),
        ratio: format!("{:.2}×", ti.0 / ri.0),
        target: "≤ 16 KiB",
        verdict: verdict(Some(ti.0 <= 16.0)),
    });
    rows.push(Row {
        what: format!("idle connection, default config: heap per connection (N = {n})"),
        rt: "tokio",
        tether: format!("{:.1} KiB", ti.1),
        raw: format!("tokio-tungstenite default: {:.1} KiB", ri.1),
        ratio: format!("{:.2}×", ti.1 / ri.1),
        target: "—",
        verdict: "—",
    });
    let t = memory::FEED_TICKS;
    for (what, m, base, base_what) in [
        ("idle, compression negotiated", di, ti, "idle, not negotiated"),
        (
            &*format!("after receiving {t} compressed ticks (decompressor allocated)"),
            dr,
            pr,
            "the same ticks uncompressed",
        ),
        (
            &*format!("after receiving {t} compressed ticks and sending one 2 KiB message (both allocated)"),
            db,
            pr,
            "the same ticks uncompressed",
        ),
    ] {
        rows.push(Row {
            what: format!("connection, default config, {what}: RSS / heap per connection (N = {n})"),
            rt: "tokio",
            tether: format!("{:.1} KiB / {:.1} KiB", m.0, m.1),
            raw: format!("{base_what}: {:.1} KiB / {:.1} KiB", base.0, base.1),
            ratio: format!("{:.2}×", m.0 / base.0),
            target: if base_what.starts_with("idle") { "≤ 16 KiB" } else { "—" },
            verdict: if base_what.starts_with("idle") { verdict(Some(m.0 <= 16.0)) } else { "—" },
        });
    }
    let q = memory::QUEUED;
    rows.push(Row {
        what: format!("connection holding {q} queued 64 B messages (outage): RSS per connection (N = {n})"),
        rt: "tokio",
        tether: format!("{:.1} KiB", tq.0),
        raw: format!("app-side `VecDeque<Message>`: {:.1} KiB", rq.0),
        ratio: format!("{:.2}×", tq.0 / rq.0),
        target: "—",
        verdict: "—",
    });
    rows.push(Row {
        what: format!("connection holding {q} queued 64 B messages (outage): heap per connection (N = {n})"),
        rt: "tokio",
        tether: format!("{:.1} KiB", tq.1),
        raw: format!("app-side `VecDeque<Message>`: {:.1} KiB", rq.1),
        ratio: format!("{:.2}×", tq.1 / rq.1),
        target: "—",
        verdict: "—",
    });
}
