//! The interop peers (tests/interop): Node's `ws` (`ws_server.js`) and Python's `websockets`
//! (`websockets_server.py`), installed on first use when missing (`npm ci` in tests/interop,
//! `websockets` into tests/interop/.venv), as `.ci/run` also does. Used by `tests/tests/interop.rs` and
//! by the `tether` command's tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Which peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Node `ws`.
    Node,
    /// Python `websockets`.
    Python,
}

/// `tests/interop`, where the peers' scripts and installs live.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// How to install the peers by hand, for error messages.
pub const INSTALL: &str = "the interop peers are installed by `bash .ci/run` (or by hand: `npm ci --prefix tests/interop` and \
                       `python3 -m venv tests/interop/.venv && tests/interop/.venv/bin/pip install -r \
                       tests/interop/requirements.txt`); set TETHER_SKIP_INTEROP=1 to skip these tests instead";

/// Installs the peer `kind` into tests/interop if it is missing, once per test process, so that the
/// README's test command works on a fresh machine (it needs `node`/`npm` and `python3`, which the
/// machine image has, and the npm and PyPI registries). `.ci/run` does the same before the tests.
pub fn ensure_installed(kind: Kind) -> Result<(), String> {
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

/// The command that starts `kind` (arguments: `PORT MODE [COMPRESSION]`, see the scripts), or why it
/// cannot start.
pub fn command(kind: Kind) -> Result<Command, String> {
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
