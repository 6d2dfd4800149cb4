//! Runs the built `tether` binary: against `tether serve`, with bad input, and the demo.
//!
//! Every wait is bounded; every child process is killed when its guard drops (also on a failed assert).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Generous bounds: these tests must not flake on a loaded 2-core machine.
const RUN_LIMIT: Duration = Duration::from_secs(60);
const DEMO_LIMIT: Duration = Duration::from_secs(120);

fn tether() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.env_remove("RUST_LOG");
    c
}

/// A running child, killed and reaped on drop. Its stdout and stderr are read by threads, line by line.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
}

fn reader(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

impl Proc {
    fn spawn(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tether");
        let stdin = child.stdin.take();
        let out = reader(child.stdout.take().expect("stdout"));
        let err = reader(child.stderr.take().expect("stderr"));
        Self { child, stdin, out, err }
    }

    fn write(&mut self, data: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(data.as_bytes()).expect("write to tether's stdin");
        stdin.flush().expect("flush tether's stdin");
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next stdout line, within `limit`.
    fn next_out(&self, limit: Duration) -> Option<String> {
        self.out.recv_timeout(limit).ok()
    }

    /// Waits for the exit within `limit`; returns the code and everything printed.
    fn finish(mut self, limit: Duration) -> (Option<i32>, Vec<String>, Vec<String>) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            assert!(Instant::now() < deadline, "tether did not exit within {limit:?}");
            thread::sleep(Duration::from_millis(20));
        };
        // The pipes close with the process: the readers end.
        let collect = |rx: &mpsc::Receiver<String>| {
            let mut v = Vec::new();
            while let Ok(l) = rx.recv_timeout(Duration::from_secs(5)) {
                v.push(l);
            }
            v
        };
        let out = collect(&self.out);
        let err = collect(&self.err);
        (status.code(), out, err)
    }

    fn interrupt(&self) {
        let ok = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().expect("run kill");
        assert!(ok.success(), "kill -INT failed");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tether serve --port 0 ARGS`, and the URL from its first line.
fn serve(args: &[&str]) -> (Proc, String) {
    let mut cmd = tether();
    cmd.args(["serve", "--port", "0"]).args(args);
    let p = Proc::spawn(cmd);
    let first = p.next_out(RUN_LIMIT).expect("tether serve printed nothing");
    let url = first.strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    assert!(url.starts_with("ws://127.0.0.1:") || url.starts_with("wss://localhost:"), "{url}");
    (p, url.to_owned())
}

fn connect(args: &[&str]) -> Proc {
    let mut cmd = tether();
    cmd.arg("connect").args(args);
    Proc::spawn(cmd)
}

#[test]
fn echo_through_stdin_and_stdout() {
    let (_server, url) = serve(&[]);
    let mut c = connect(&[&url]);
    c.write("hello\nwörld, with \"quotes\"\n\nlast\n");
    c.close_stdin();
    let (code, out, err) = c.finish(RUN_LIMIT);
    assert_eq!(out, ["hello", "wörld, with \"quotes\"", "", "last"], "stderr: {err:?}");
    assert_eq!(code, Some(0), "stderr: {err:?}");
    assert!(err.iter().any(|l| l.starts_with("tether: connected to ws://127.0.0.1:")), "{err:?}");
}

#[test]
fn json_output_parses() {
    let (_server, url) = serve(&[]);
    let mut c = connect(&["--json", &url]);
    c.write("a \"quoted\" line\\ with\ttab\n");
    c.close_stdin();
    let (code, out, err) = c.finish(RUN_LIMIT);
    assert_eq!(code, Some(0), "stderr: {err:?}");
    let events: Vec<serde_json::Value> =
        out.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"))).collect();
    let kind = |v: &serde_json::Value| v["event"].as_str().unwrap_or_default().to_owned();
    assert!(events.iter().all(|v| v.is_object() && v["t"].is_number() && !kind(v).is_empty()), "{out:?}");
    let echo = events.iter().find(|v| kind(v) == "message").expect("the echo");
    assert_eq!(echo["data"], "a \"quoted\" line\\ with\ttab");
    assert!(events.iter().any(|v| kind(v) == "connected" && v["reconnect"] == false));
    assert!(events.iter().any(|v| kind(v) == "outcome" && v["outcome"] == "sent"));
    let last = events.last().expect("events");
    assert_eq!((kind(last).as_str(), last["code"].as_u64()), ("exit", Some(0)));
    assert_eq!(last["messages_sent"], 1);
}

/// `tether connect` offers permessage-deflate by default: a Python `websockets` server (the interop peer,
/// which compresses by default) agrees, and `--json` shows what was agreed; `--no-compression` does
/// not offer it.
#[test]
fn connect_negotiates_compression_with_python_websockets() {
    use tether_tests::peers::{INSTALL, Kind, command, enabled};
    if !enabled(Kind::Python) {
        return;
    }
    let mut cmd = command(Kind::Python).unwrap_or_else(|why| panic!("{why}: {INSTALL}"));
    cmd.args(["0", "echo", "default"]);
    let peer = Proc::spawn(cmd);
    let port = peer.next_out(RUN_LIMIT).expect("the Python peer printed its port");
    let url = format!("ws://127.0.0.1:{}/", port.trim());
    for (flags, want) in [(&[][..], true), (&["--no-compression"][..], false)] {
        let mut c = connect(&[&["--json"][..], flags, &[&url]].concat());
        let line = format!("{{\"compress\":\"me\",\"pad\":\"{}\"}}\n", "x".repeat(4000));
        c.write(&line);
        // Wait for the echo before ending stdin: the server does not echo what arrives after a close.
        let mut out = Vec::new();
        while !out.iter().any(|l: &String| l.contains(r#""event":"message""#)) {
            out.push(c.next_out(RUN_LIMIT).unwrap_or_else(|| panic!("{flags:?}: no echo; stdout: {out:?}")));
        }
        c.close_stdin();
        let (code, rest, err) = c.finish(RUN_LIMIT);
        out.extend(rest);
        assert_eq!(code, Some(0), "{flags:?} stderr: {err:?}");
        let events: Vec<serde_json::Value> =
            out.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"))).collect();
        let connected = events.iter().find(|v| v["event"] == "connected").expect("a connected event");
        if want {
            let agreed = connected["compression"].as_str().unwrap_or_else(|| panic!("nothing agreed: {connected}"));
            assert!(agreed.starts_with("permessage-deflate; server_max_window_bits="), "{agreed}");
        } else {
            assert!(connected["compression"].is_null(), "{connected}");
        }
        let echo = events.iter().find(|v| v["event"] == "message").expect("the echo");
        assert_eq!(echo["data"].as_str(), Some(line.trim_end()), "{flags:?}");
    }
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    let cases: &[&[&str]] = &[
        &["connect", "not a url"],
        &["connect", "http://example.com/"],
        &["connect", "ws://127.0.0.1:1/", "--header", "no-colon"],
        &["connect", "ws://127.0.0.1:1/", "--bogus"],
        &["connect", "ws://127.0.0.1:1/", "--ping-interval", "0"],
        &["connect", "ws://127.0.0.1:1/", "--ca", "/nonexistent/ca.pem"],
        &["connect"],
        &["serve", "--chaos", "explode=1"],
    ];
    for args in cases {
        let mut cmd = tether();
        cmd.args(*args);
        let (code, out, err) = Proc::spawn(cmd).finish(RUN_LIMIT);
        assert_eq!(code, Some(2), "{args:?}: {err:?}");
        assert!(out.is_empty(), "{args:?}: {out:?}");
        assert_eq!(err.len(), 1, "{args:?}: one line expected: {err:?}");
        assert!(err[0].starts_with("tether: ") && !err[0].contains("panicked"), "{args:?}: {err:?}");
    }
    let mut cmd = tether();
    cmd.args(["connect", "not a url"]);
    let (_, _, err) = Proc::spawn(cmd).finish(RUN_LIMIT);
    assert!(err[0].contains("invalid URL"), "{err:?}");
}

#[test]
fn fatal_rejection_exits_3() {
    let (_server, url) = serve(&["--chaos", "reject=401"]);
    let mut c = connect(&[&url]);
    c.close_stdin();
    let (code, _, err) = c.finish(RUN_LIMIT);
    assert_eq!(code, Some(3), "{err:?}");
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].contains("HTTP 401") && err[0].contains("not retried"), "{err:?}");
}

#[test]
fn tls_with_and_without_the_ca() {
    let ca = std::env::temp_dir().join(format!("tether-cli-test-ca-{}.pem", std::process::id()));
    let ca_arg = ca.to_str().expect("UTF-8 temp path");
    let (_server, url) = serve(&["--tls", ca_arg]);
    assert!(url.starts_with("wss://localhost:"), "{url}");
    // Not trusted: the certificate is rejected, which retrying cannot fix.
    let mut c = connect(&[&url]);
    c.close_stdin();
    let (code, _, err) = c.finish(RUN_LIMIT);
    assert_eq!(code, Some(3), "{err:?}");
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].contains("certificate"), "{err:?}");
    // Trusted with --ca: echoes.
    let mut c = connect(&["--ca", ca_arg, &url]);
    c.write("over tls\n");
    c.close_stdin();
    let (code, out, err) = c.finish(RUN_LIMIT);
    let _ = std::fs::remove_file(&ca);
    assert_eq!((code, out), (Some(0), vec!["over tls".to_owned()]), "{err:?}");
}

#[test]
fn spent_retry_budget_exits_4() {
    // A port nobody listens on: bind one, note it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let url = format!("ws://127.0.0.1:{port}/");
    let mut c = connect(&[&url, "--max-attempts", "3", "--backoff-base", "20ms"]);
    c.close_stdin();
    let (code, _, err) = c.finish(RUN_LIMIT);
    assert_eq!(code, Some(4), "{err:?}");
    // One line per failed attempt, then the verdict.
    assert_eq!(err.len(), 3, "{err:?}");
    assert!(err[0].contains("attempt 1 failed: TCP connect failed"), "{err:?}");
    assert!(err[2].contains("gave up after 3 failed attempts"), "{err:?}");
}

#[test]
fn ctrl_c_closes_gracefully() {
    let (_server, url) = serve(&[]);
    let mut c = connect(&[&url]);
    c.write("ping\n");
    assert_eq!(c.next_out(RUN_LIMIT).as_deref(), Some("ping"));
    c.interrupt();
    let (code, _, err) = c.finish(RUN_LIMIT);
    assert_eq!(code, Some(0), "{err:?}");
    assert!(err.iter().any(|l| l.contains("closing")), "{err:?}");
}

#[test]
fn reconnects_through_server_chaos() {
    // The server closes every connection with 1012 every 300 ms; lines keep flowing, in order.
    let (_server, url) = serve(&["--chaos", "close=300ms"]);
    let mut c = connect(&["--json", "--backoff-base", "20ms", "--backoff-max", "100ms", &url]);
    let deadline = Instant::now() + RUN_LIMIT;
    let mut reconnected = false;
    while !reconnected {
        assert!(Instant::now() < deadline, "no reconnection seen");
        let Some(line) = c.next_out(Duration::from_secs(1)) else { continue };
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        reconnected = v["event"] == "connected" && v["reconnect"] == true;
    }
    for i in 0..20 {
        c.write(&format!("line {i}\n"));
    }
    c.close_stdin();
    let (code, out, err) = c.finish(RUN_LIMIT);
    assert_eq!(code, Some(0), "{err:?}");
    let echoes: Vec<String> = out
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "message")
        .map(|v| v["data"].as_str().unwrap_or_default().to_owned())
        .collect();
    // Outcomes are all Sent, and what came back came back in order (a message whose echo was cut off
    // by a close is not echoed again: the default in-flight policy is at-most-once).
    let numbers: Vec<u32> = echoes.iter().filter_map(|e| e.strip_prefix("line ")?.parse().ok()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
}

#[test]
fn demo_completes_with_lost_zero() {
    let mut cmd = tether();
    cmd.arg("demo");
    let (code, out, err) = Proc::spawn(cmd).finish(DEMO_LIMIT);
    assert_eq!(code, Some(0), "stdout: {out:#?}\nstderr: {err:?}");
    let summary = out.iter().find(|l| l.starts_with("summary: ")).expect("a summary line");
    assert!(summary.contains("lost = 0,"), "{summary}");
    assert!(out.iter().any(|l| l.contains("the link is declared dead")), "{out:#?}");
    assert!(out.iter().any(|l| l.contains("reconnected on attempt")), "{out:#?}");
}
