//! The server process: started (pinned like the harness), killed and restarted.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Instant;

use tether_benches::READY;

pub struct Server {
    child: Child,
    _stdin: ChildStdin,
    pub port: u16,
    /// When the harness read the server's `ready` line (it listens from just before).
    pub ready_at: Instant,
}

/// The server binary, next to the harness; built with cargo if it is missing.
pub fn server_exe() -> PathBuf {
    let me = std::env::current_exe().expect("current exe");
    let exe = me.with_file_name("tether-bench-server");
    if !exe.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = !cfg!(debug_assertions);
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "tether-benches", "--bin", "tether-bench-server"]);
        if release {
            cmd.arg("--release");
        }
        let ok = cmd.status().map(|s| s.success()).unwrap_or(false);
        assert!(ok && exe.exists(), "could not build {}", exe.display());
    }
    exe
}

impl Server {
    /// Starts the server on `port` (0: any), on `cpu` if given, and waits until it listens.
    pub fn start(port: u16, cpu: Option<usize>) -> Server {
        let exe = server_exe();
        let mut cmd = match cpu {
            Some(c) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(c.to_string()).arg(&exe);
                cmd
            }
            None => Command::new(&exe),
        };
        cmd.arg("--port").arg(port.to_string()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn the server");
        let stdin = child.stdin.take().expect("stdin");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("server output");
        let ready_at = Instant::now();
        let port = line
            .strip_prefix(READY)
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected server output {line:?}"));
        Server { child, _stdin: stdin, port, ready_at }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// Kills the server (SIGKILL): its connections are reset or closed by the kernel.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
