//! `tether connect` against a server it did not write: Python's `websockets` echo server (the interop
//! peer, installed into tests/interop/.venv on first use; `TETHER_SKIP_INTEROP=1` skips explicitly).
//!
//! `printf 'a\nb\nc\n' | tether connect URL` must print all three echoes, every time: the end of stdin
//! waits for replies (`--linger`, default 1 s of quiet) before closing. And `--rpc-id id` against the
//! peer's JSON-RPC mode: responses in request order with their latency, the request timeout, and a
//! request sent again after the server restarted (`--rpc-retry`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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

fn parse(lines: &[String]) -> Vec<Value> {
    lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"))).collect()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|v| v["event"] == kind).collect()
}

/// The server answers a slow request after quicker ones; tether prints the responses in request order,
/// each with its own latency, and the server's notification as an ordinary message.
#[test]
fn rpc_id_prints_responses_in_request_order_with_their_latency() {
    if !enabled(Kind::Python) {
        return;
    }
    let peer = Peer::start(Kind::Python, "jsonrpc");
    let input = [
        json!({"jsonrpc": "2.0", "method": "slow", "params": [800]}),
        json!({"jsonrpc": "2.0", "method": "add", "params": [2, 3]}),
        json!({"jsonrpc": "2.0", "method": "echo", "params": ["x"], "id": "s"}),
        json!({"jsonrpc": "2.0", "method": "nope"}),
    ]
    .map(|v| v.to_string() + "\n")
    .concat();
    let (code, out, err) = piped_run_with(&["--json", "--rpc-id", "id", "--linger", "0", &peer.url()], &input);
    assert_eq!(code, Some(0), "stderr: {err}");
    let events = parse(&out);
    let responses = of_kind(&events, "response");
    let ids: Vec<&Value> = responses.iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, [&json!(1), &json!(2), &json!("s"), &json!(3)], "{out:?}");
    let lines: Vec<u64> = responses.iter().filter_map(|r| r["line"].as_u64()).collect();
    assert_eq!(lines, [1, 2, 3, 4]);
    assert_eq!(responses[0]["response"]["result"], "done");
    assert_eq!(responses[1]["response"]["result"], 5);
    assert_eq!(responses[2]["response"]["result"], json!(["x"]));
    assert_eq!(responses[3]["response"]["error"]["code"], -32601);
    let latency: Vec<f64> = responses.iter().map(|r| r["latency_ms"].as_f64().expect("latency_ms")).collect();
    assert!(latency[0] >= 790.0, "the slow one waited 800 ms: {latency:?}");
    assert!(latency[1] < latency[0], "the quick one's own latency, not the wait for its turn: {latency:?}");
    let hello = of_kind(&events, "message");
    assert!(hello.iter().any(|m| m["data"].as_str().is_some_and(|d| d.contains("hello"))), "{out:?}");
    let exit = events.last().expect("events");
    assert_eq!(
        (exit["event"].as_str(), exit["requests"].as_u64(), exit["requests_failed"].as_u64()),
        (Some("exit"), Some(4), Some(0))
    );
}

/// `--rpc-timeout`: a request with no response in time fails in its place; the exit code says so.
#[test]
fn rpc_timeout_fails_the_request() {
    if !enabled(Kind::Python) {
        return;
    }
    let peer = Peer::start(Kind::Python, "jsonrpc");
    let input = [
        json!({"jsonrpc": "2.0", "method": "slow", "params": [5000]}),
        json!({"jsonrpc": "2.0", "method": "add", "params": [1, 1]}),
    ]
    .map(|v| v.to_string() + "\n")
    .concat();
    let args = ["--json", "--rpc-id", "id", "--rpc-timeout", "300ms", "--linger", "0", &peer.url()];
    let (code, out, err) = piped_run_with(&args, &input);
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(err.contains("1 of 2 requests failed"), "{err}");
    let events = parse(&out);
    let ended: Vec<&Value> =
        events.iter().filter(|v| v["event"] == "response" || v["event"] == "request_failed").collect();
    assert_eq!(ended.len(), 2, "{out:?}");
    assert_eq!((ended[0]["event"].as_str(), ended[0]["id"].as_u64()), (Some("request_failed"), Some(1)));
    assert!(ended[0]["error"].as_str().is_some_and(|e| e.contains("no response")), "{:?}", ended[0]);
    assert_eq!(ended[1]["response"]["result"], 2);
}

/// `--rpc-retry`: the server process restarts while a request is pending; the request is sent again
/// after the reconnect and its response printed.
#[test]
fn rpc_retry_sends_a_pending_request_again_after_a_server_restart() {
    if !enabled(Kind::Python) {
        return;
    }
    let mut peer = Peer::start(Kind::Python, "jsonrpc");
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(["connect", "--json", "--rpc-id", "id", "--rpc-retry", "--linger", "0", "--backoff-base", "50ms"])
            .arg(peer.url())
            .env_remove("RUST_LOG")
            .env("NO_PROXY", "*")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tether"),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.0.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut out = Vec::new();
    let mut next = |what: &str, pred: &dyn Fn(&Value) -> bool| loop {
        let line = rx.recv_timeout(RUN_LIMIT).unwrap_or_else(|_| panic!("no {what} within {RUN_LIMIT:?}: {out:?}"));
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
        out.push(line);
        if pred(&v) {
            return v;
        }
    };
    next("connected", &|v| v["event"] == "connected");
    let mut stdin = child.0.stdin.take().expect("piped stdin");
    let request = json!({"jsonrpc": "2.0", "method": "slow", "params": [1500], "id": 9});
    stdin.write_all(format!("{request}\n").as_bytes()).expect("write stdin");
    stdin.flush().expect("flush stdin");
    // Sent (or still queued: either way it must be answered after the restart); the server holds it.
    std::thread::sleep(Duration::from_millis(300));
    peer.restart();
    drop(stdin);
    next("the reconnect", &|v| v["event"] == "connected" && v["reconnect"] == true);
    let response = next("the response", &|v| v["event"] == "response" || v["event"] == "request_failed");
    assert_eq!((response["id"].as_u64(), &response["response"]["result"]), (Some(9), &json!("done")), "{response}");
    let exit = next("the exit line", &|v| v["event"] == "exit");
    assert_eq!(exit["code"], 0, "{exit}");
    let deadline = Instant::now() + RUN_LIMIT;
    while child.0.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "tether did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed and reaped when dropped (also on a failed assert).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
