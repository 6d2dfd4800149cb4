//! The interop peers: Node's `ws` and Python's `websockets` as server processes on 127.0.0.1, installed
//! into `tests/interop` on first use. Std only, so that the CLI's tests include this file by path too
//! (`cli/tests/interop.rs`).
#![allow(dead_code)] // each including suite uses part of it

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Node `ws`.
    Node,
    /// Python `websockets`.
    Python,
}

/// `tests/interop` of the repository, found from the crate that includes this file (`tests/` or `cli/`).
fn interop_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|d| d.join("tests/interop"))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| manifest.join("interop"))
}

const INSTALL: &str = "the interop peers are installed by `bash .ci/run` (or by hand: `npm ci --prefix tests/interop` and \
                       `python3 -m venv tests/interop/.venv && tests/interop/.venv/bin/pip install -r \
                       tests/interop/requirements.txt`); set TETHER_SKIP_INTEROP=1 to skip these tests instead";

/// Installs the peer `kind` into tests/interop if it is missing, once per test process, so that the
/// README's test command works on a fresh machine (it needs `node`/`npm` and `python3`, which the
/// machine image has, and the npm and PyPI registries). `.ci/run` does the same before the tests.
fn ensure_installed(kind: Kind) -> Result<(), String> {
    static NODE: OnceLock<Result<(), String>> = OnceLock::new();
    static PYTHON: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = interop_dir();
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
        }
    };
    match kind {
        Kind::Node => NODE
            .get_or_init(|| {
                if dir.join("node_modules/ws/package.json").exists() {
                    return Ok(());
                }
                eprintln!("installing Node `ws` into {} (npm ci)", dir.display());
                run(Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
                    .arg(&dir))
            })
            .clone(),
        Kind::Python => PYTHON
            .get_or_init(|| {
                let venv = dir.join(".venv");
                let pip = venv.join("bin/pip");
                let have = Command::new(venv.join("bin/python"))
                    .args(["-c", "import websockets"])
                    .output()
                    .is_ok_and(|o| o.status.success());
                if have {
                    return Ok(());
                }
                eprintln!("installing Python `websockets` into {}", venv.display());
                if !pip.exists() {
                    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
                }
                run(Command::new(&pip)
                    .args(["install", "-q", "--disable-pip-version-check", "-r"])
                    .arg(dir.join("requirements.txt")))
            })
            .clone(),
    }
}

/// The command that starts `kind`, or why it cannot start.
fn command(kind: Kind) -> Result<Command, String> {
    let dir = interop_dir();
    ensure_installed(kind)?;
    match kind {
        Kind::Node => {
            if !dir.join("node_modules/ws/package.json").exists() {
                return Err(format!("Node `ws` is not installed in {}", dir.join("node_modules").display()));
            }
            let mut c = Command::new("node");
            c.arg(dir.join("ws_server.js"));
            Ok(c)
        }
        Kind::Python => {
            let python = dir.join(".venv/bin/python");
            if !python.exists() {
                return Err(format!("Python `websockets` is not installed ({} is missing)", python.display()));
            }
            let mut c = Command::new(python);
            c.arg(dir.join("websockets_server.py"));
            Ok(c)
        }
    }
}

/// Whether to run: false (with the reason printed) only when skipping was asked for explicitly.
pub fn enabled(kind: Kind) -> bool {
    match command(kind) {
        Ok(_) => true,
        Err(why) if std::env::var("TETHER_SKIP_INTEROP").is_ok_and(|v| v == "1") => {
            eprintln!("SKIPPED (TETHER_SKIP_INTEROP=1): {why}");
            false
        }
        Err(why) => panic!("{why}: {INSTALL}"),
    }
}

/// A peer server process; killed when dropped.
pub struct Peer {
    kind: Kind,
    mode: String,
    /// permessage-deflate setting of the peer (see the scripts); `default`: the library's default.
    compression: String,
    port: u16,
    child: Option<Child>,
}

impl Peer {
    /// Starts `kind` in `mode` (see the scripts), with the library's default compression.
    pub fn start(kind: Kind, mode: &str) -> Self {
        Self::start_with(kind, mode, "default")
    }

    /// Starts `kind` in `mode` with the permessage-deflate setting `compression` (see the scripts).
    pub fn start_with(kind: Kind, mode: &str, compression: &str) -> Self {
        let mut p = Self { kind, mode: mode.to_owned(), compression: compression.to_owned(), port: 0, child: None };
        p.spawn();
        p
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// Starts the process on `self.port` (0: any) and waits, bounded, for the port it prints.
    fn spawn(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut cmd = command(self.kind).unwrap_or_else(|why| panic!("{why}: {INSTALL}"));
            let mut child = cmd
                .arg(self.port.to_string())
                .arg(&self.mode)
                .arg(&self.compression)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start the {:?} peer: {e}; {INSTALL}", self.kind));
            let stdout = child.stdout.take().expect("piped");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let _ = tx.send(lines.next());
                for _ in lines {} // drain, so the peer never blocks on a full pipe
            });
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Some(Ok(line))) => {
                    self.port = line.trim().parse().unwrap_or_else(|_| panic!("{:?} peer printed {line:?}", self.kind));
                    self.child = Some(child);
                    return;
                }
                other => {
                    let _ = child.kill();
                    let status = child.wait();
                    // A restart may race the old socket's release: retry until the deadline.
                    assert!(
                        Instant::now() < deadline && self.port != 0,
                        "the {:?} peer ({}) did not report its port: {other:?}, exit {status:?}",
                        self.kind,
                        self.mode
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}
