//! `tether connect` against a server it did not write: Python's `websockets` echo server (the interop
//! peer, installed into tests/interop/.venv on first use; `TETHER_SKIP_INTEROP=1` skips explicitly).
//!
//! `printf 'a\nb\nc\n' | tether connect URL` must print all three echoes, every time: the end of stdin
//! waits for replies (`--linger`, default 1 s of quiet) before closing.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../tests/tests/common/peers.rs"]
mod peers;
use peers::{Kind, Peer, enabled};

const RUNS: usize = 20;
/// Runs at a time: enough to finish quickly, few enough not to load the machine much more.
const PARALLEL: usize = 4;
/// Generous: a run takes about the linger (1 s) when the machine is idle.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// One piped run; returns (exit code, stdout lines, stderr).
fn piped_run(url: &str, input: &str) -> (Option<i32>, Vec<String>, String) {
    piped_run_with(&[url], input)
}

/// One piped run of `tether connect ARGS`.
fn piped_run_with(args: &[&str], input: &str) -> (Option<i32>, Vec<String>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
        .arg("connect")
        .args(args)
        .env_remove("RUST_LOG")
        .env("NO_PROXY", "*")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tether");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin); // the end of stdin, as with printf | tether
    let deadline = Instant::now() + RUN_LIMIT;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("collect output");
    let stdout = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    (out.status.code(), stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn piped_lines_get_every_echo_from_python_websockets_20_of_20() {
    if !enabled(Kind::Python) {
        return;
    }
    let peer = Peer::start(Kind::Python, "echo");
    let url = peer.url();
    let mut failures = Vec::new();
    for batch in 0..RUNS.div_ceil(PARALLEL) {
        let runs: Vec<_> = (0..PARALLEL.min(RUNS - batch * PARALLEL))
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || piped_run(&url, "a\nb\nc\n"))
            })
            .collect();
        for r in runs {
            let (code, out, err) = r.join().expect("run thread");
            if code != Some(0) || out != ["a", "b", "c"] {
                failures.push(format!("exit {code:?}, stdout {out:?}, stderr {err}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {RUNS} runs lost echoes or failed:\n{}", failures.len(), failures.join("\n"));
}

/// `tether connect` offers permessage-deflate by default: Python `websockets` (which compresses by
/// default) agrees, `--json` shows what was agreed, and a compressible line comes back intact;
/// `--no-compression` does not offer it.
#[test]
fn connect_negotiates_compression_with_python_websockets() {
    if !enabled(Kind::Python) {
        return;
    }
    let peer = Peer::start(Kind::Python, "echo");
    let url = peer.url();
    let line = format!("{{\"compress\":\"me\",\"pad\":\"{}\"}}", "x".repeat(4000));
    for (flags, want) in [(&[][..], true), (&["--no-compression"][..], false)] {
        let args = [&["--json"][..], flags, &[url.as_str()]].concat();
        let (code, out, err) = piped_run_with(&args, &format!("{line}\n"));
        assert_eq!(code, Some(0), "{flags:?} stderr: {err}");
        let events: Vec<serde_json::Value> =
            out.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"))).collect();
        let connected = events.iter().find(|v| v["event"] == "connected").expect("a connected event");
        if want {
            let agreed = connected["compression"].as_str().unwrap_or_else(|| panic!("nothing agreed: {connected}"));
            assert!(agreed.starts_with("permessage-deflate; server_max_window_bits="), "{agreed}");
        } else {
            assert!(connected["compression"].is_null(), "{connected}");
        }
        let echo = events.iter().find(|v| v["event"] == "message").unwrap_or_else(|| panic!("no echo: {out:?}"));
        assert_eq!(echo["data"].as_str(), Some(line.as_str()), "{flags:?}");
    }
}
