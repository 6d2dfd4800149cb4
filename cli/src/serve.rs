//! `tether serve`: tether-chaos's echo server on a local port, with optional faults on a timer
//! ([`tether_chaos::ChaosServer`]: server crash and restart, close frames, handshake rejection, the fault
//! proxy's blackhole).

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use tether_chaos::pki::TestPki;
use tether_chaos::{ChaosServer, Fault};

use crate::{ServeArgs, exit};

pub(crate) const CHAOS_HELP: &str = "\
Chaos (--chaos, repeatable; durations in seconds, or with ms):
  restart=N[:DOWN]   every N s the server crashes: connections drop without a close frame, new ones
                     are refused for DOWN s (default 1), then it listens again
  close=N[:CODE]     every N s the server closes every connection with CODE (default 1012, service
                     restart); clients reconnect at once to a server that is still up
  blackhole=N[:HOLD] every N s the link goes half-open for HOLD s (default 5): sockets stay open,
                     nothing is forwarded either way; then those connections are cut
  reject=STATUS[:RETRY_AFTER]
                     answer every handshake with this HTTP status (and Retry-After header): 503 is
                     retried, 401 is fatal for the client

Examples:
  tether serve --port 9001 --chaos restart=10
  tether serve --chaos blackhole=8:3 --chaos close=20
  tether serve --chaos reject=503:2";

/// `--chaos`'s value parser: tether-chaos's syntax.
pub(crate) fn parse_chaos(s: &str) -> Result<Fault, String> {
    s.parse().map_err(|e: tether_chaos::ParseFaultError| e.to_string())
}

fn log(line: impl std::fmt::Display) {
    eprintln!("serve: {line}");
}

/// Runs `tether serve` until Ctrl-C; returns the exit code.
pub(crate) async fn run(args: ServeArgs) -> u8 {
    let listen = SocketAddr::from(([127, 0, 0, 1], args.port));
    let mut builder = ChaosServer::builder()
        .listen(listen)
        .faults(args.chaos.iter().cloned())
        .on_fault(|e| log(format_args!("chaos: {e}")));
    if let Some(path) = &args.tls {
        let pki = match TestPki::generate("tether serve CA") {
            Ok(p) => p,
            Err(e) => {
                crate::error_line(format_args!("error: cannot make a TLS certificate: {e}"));
                return exit::IO;
            }
        };
        if let Err(e) = std::fs::write(path, pki.ca_pem.as_bytes()) {
            crate::error_line(format_args!("error: cannot write the CA certificate to {}: {e}", path.display()));
            return exit::IO;
        }
        builder = builder.tls(pki.server);
    }
    let chaos = match builder.start() {
        Ok(c) => c,
        Err(e) => {
            crate::error_line(format_args!("error: cannot listen on {listen}: {e}"));
            return exit::IO;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", chaos.url());
        let _ = out.flush();
    }
    if let Some(path) = &args.tls {
        log(format_args!("TLS: trust {} (tether connect --ca {} ...)", path.display(), path.display()));
    }
    if args.chaos.is_empty() {
        log("echo server; no chaos (see --help for --chaos); Ctrl-C stops it");
    }
    for fault in &args.chaos {
        match fault {
            Fault::Reject { status, retry_after } => {
                let ra = retry_after.map(|r| format!(" (Retry-After: {r})")).unwrap_or_default();
                log(format_args!("chaos: every handshake is rejected with HTTP {status}{ra}"));
            }
            Fault::Restart { every, down } => log(format_args!("chaos: crash every {every:?}, down for {down:?}")),
            Fault::Close { every, code } => {
                log(format_args!("chaos: close every connection with {code} every {every:?}"))
            }
            Fault::Blackhole { every, hold } => log(format_args!("chaos: half-open link every {every:?} for {hold:?}")),
            other => log(format_args!("chaos: {other}")),
        }
    }

    // Activity, at most once a second, and only when something changed.
    let print = args.print;
    let chaos = std::sync::Arc::new(chaos);
    let watcher = chaos.clone();
    tokio::spawn(async move {
        let server = watcher.server();
        let mut last = (0, 0, 0);
        let mut total = 0u64;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let received = server.take_received();
            total += received.len() as u64;
            if print {
                for r in &received {
                    let body = if r.text {
                        String::from_utf8_lossy(&r.data).into_owned()
                    } else {
                        format!("<{} bytes>", r.data.len())
                    };
                    log(format_args!("conn {}: {body}", r.conn));
                }
            }
            let now = (server.open_connections(), server.handshakes(), total);
            if now != last {
                log(format_args!("{} open connections, {} handshakes, {} messages received", now.0, now.1, now.2));
                last = now;
            }
        }
    });

    match tokio::signal::ctrl_c().await {
        Ok(()) => {
            log("stopped");
            exit::OK
        }
        Err(e) => {
            crate::error_line(format_args!("error: cannot wait for Ctrl-C: {e}"));
            exit::IO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaos_specs_are_tether_chaos_faults() {
        let s = Duration::from_secs;
        assert_eq!(parse_chaos("restart=10"), Ok(Fault::Restart { every: s(10), down: s(1) }));
        assert_eq!(parse_chaos("reject=503:2"), Ok(Fault::Reject { status: 503, retry_after: Some(2) }));
        let err = parse_chaos("nope=1").expect_err("unknown kind");
        assert!(err.contains("use restart, close, blackhole or reject"), "{err}");
    }
}
