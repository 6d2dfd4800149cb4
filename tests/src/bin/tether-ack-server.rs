//! A persisting, acknowledging WebSocket server as a process, for tests that kill it
//! (`tether_chaos::ack_server`: each message's key is logged, then acknowledged with `ack KEY`).
//!
//! ```text
//! tether-ack-server PORT LOG [ACK_DELAY_MS]   (PORT 0: any; the chosen port is stdout's first line)
//! ```
//!
//! It runs until killed; the log file (appended to, created if missing) is what survives it. With
//! ACK_DELAY_MS each acknowledgement leaves that long after its key was persisted.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tether_chaos::ack_server::AckServer;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(port), Some(log)) = (args.first().and_then(|p| p.parse::<u16>().ok()), args.get(1)) else {
        eprintln!("usage: tether-ack-server PORT LOG [ACK_DELAY_MS]");
        return ExitCode::from(2);
    };
    let Some(delay) = args.get(2).map_or(Some(0), |d| d.parse::<u64>().ok()) else {
        eprintln!("tether-ack-server: ACK_DELAY_MS must be a number of milliseconds");
        return ExitCode::from(2);
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let server = match AckServer::start_with_delay(addr, Some(&PathBuf::from(log)), Duration::from_millis(delay)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tether-ack-server: cannot listen on {addr} or open {log}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout();
    if writeln!(out, "{}", server.addr().port()).and_then(|()| out.flush()).is_err() {
        return ExitCode::from(1);
    }
    loop {
        std::thread::park();
    }
}
