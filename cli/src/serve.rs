//! `tether serve`: the test suite's echo server on a local port, with optional chaos from the test
//! suite's fault tools (server stop/restart, close frames, handshake rejection, the fault proxy's
//! blackhole).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tether_tests::pki::TestPki;
use tether_tests::proxy::FaultProxy;
use tether_tests::server::{Behavior, TestServer};

use crate::{ServeArgs, exit, parse_duration};

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

/// One fault to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Chaos {
    /// Crash and restart every `every`, down for `down`.
    Restart { every: Duration, down: Duration },
    /// Close every connection with `code` every `every`.
    Close { every: Duration, code: u16 },
    /// Half-open link every `every`, for `hold`.
    Blackhole { every: Duration, hold: Duration },
    /// Reject every handshake.
    Reject { status: u16, retry_after: Option<String> },
}

fn positive(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(10) {
        return Err(format!("chaos period {s:?} is too short (at least 10ms)"));
    }
    Ok(d)
}

/// Parses `KIND=VALUE[:VALUE]`.
pub(crate) fn parse_chaos(s: &str) -> Result<Chaos, String> {
    let (kind, rest) = s.split_once('=').ok_or_else(|| format!("expected KIND=VALUE, got {s:?}"))?;
    let (a, b) = match rest.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    match kind {
        "restart" => Ok(Chaos::Restart {
            every: positive(a)?,
            down: b.map(positive).transpose()?.unwrap_or(Duration::from_secs(1)),
        }),
        "close" => {
            let code = match b {
                None => 1012,
                Some(c) => c
                    .parse::<u16>()
                    .ok()
                    .filter(|c| matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999))
                    .ok_or_else(|| format!("invalid close code {c:?}"))?,
            };
            Ok(Chaos::Close { every: positive(a)?, code })
        }
        "blackhole" => Ok(Chaos::Blackhole {
            every: positive(a)?,
            hold: b.map(positive).transpose()?.unwrap_or(Duration::from_secs(5)),
        }),
        "reject" => {
            let status = a
                .parse::<u16>()
                .ok()
                .filter(|s| (100..=599).contains(s) && *s != 101)
                .ok_or_else(|| format!("invalid HTTP status {a:?}"))?;
            if let Some(r) = b
                && r.parse::<u64>().is_err()
            {
                return Err(format!("invalid Retry-After {r:?} (seconds)"));
            }
            Ok(Chaos::Reject { status, retry_after: b.map(str::to_owned) })
        }
        other => Err(format!("unknown chaos {other:?}; use restart, close, blackhole or reject")),
    }
}

fn log(line: impl std::fmt::Display) {
    eprintln!("serve: {line}");
}

/// Runs `tether serve` until Ctrl-C; returns the exit code.
pub(crate) async fn run(args: ServeArgs) -> u8 {
    let behavior = args
        .chaos
        .iter()
        .find_map(|c| match c {
            Chaos::Reject { status, retry_after } => {
                Some(Behavior::Reject { status: *status, retry_after: retry_after.clone() })
            }
            _ => None,
        })
        .unwrap_or(Behavior::Echo);
    let listen = SocketAddr::from(([127, 0, 0, 1], args.port));
    let tls = match &args.tls {
        None => None,
        Some(path) => {
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
            Some(pki.server)
        }
    };
    let needs_proxy = args.chaos.iter().any(|c| matches!(c, Chaos::Blackhole { .. }));
    let bind_error = |e: std::io::Error| {
        crate::error_line(format_args!("error: cannot listen on {listen}: {e}"));
        exit::IO
    };
    // With a blackhole the public port is the fault proxy's, and the server hides behind it.
    let (server, proxy) = if needs_proxy {
        let server = match TestServer::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), behavior, tls.clone()) {
            Ok(s) => s,
            Err(e) => return bind_error(e),
        };
        match FaultProxy::start_at(listen, server.addr()) {
            Ok(p) => (server, Some(p)),
            Err(e) => return bind_error(e),
        }
    } else {
        match TestServer::start_at(listen, behavior, tls.clone()) {
            Ok(s) => (s, None),
            Err(e) => return bind_error(e),
        }
    };
    let public = proxy.as_ref().map_or(server.addr(), FaultProxy::addr);
    {
        let mut out = std::io::stdout().lock();
        let _ = match &args.tls {
            None => writeln!(out, "listening on ws://{public}/"),
            // The certificate names localhost.
            Some(_) => writeln!(out, "listening on wss://localhost:{}/", public.port()),
        };
        let _ = out.flush();
    }
    let server = Arc::new(server);
    let proxy = proxy.map(Arc::new);
    if let Some(path) = &args.tls {
        log(format_args!("TLS: trust {} (tether connect --ca {} ...)", path.display(), path.display()));
    }
    if args.chaos.is_empty() {
        log("echo server; no chaos (see --help for --chaos); Ctrl-C stops it");
    }
    for chaos in args.chaos.clone() {
        let (server, proxy) = (server.clone(), proxy.clone());
        match chaos {
            Chaos::Reject { status, retry_after } => {
                let ra = retry_after.map(|r| format!(" (Retry-After: {r})")).unwrap_or_default();
                log(format_args!("chaos: every handshake is rejected with HTTP {status}{ra}"));
            }
            Chaos::Restart { every, down } => {
                log(format_args!("chaos: crash every {every:?}, down for {down:?}"));
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        log(format_args!(
                            "chaos: crash: dropping {} connections, refusing new ones for {down:?}",
                            server.open_connections()
                        ));
                        server.stop();
                        tokio::time::sleep(down).await;
                        let s = server.clone();
                        // `restart` retries the bind for a moment: keep it off the async threads.
                        let _ = tokio::task::spawn_blocking(move || s.restart()).await;
                        log("chaos: listening again");
                    }
                });
            }
            Chaos::Close { every, code } => {
                log(format_args!("chaos: close every connection with {code} every {every:?}"));
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        log(format_args!("chaos: closing {} connections with {code}", server.open_connections()));
                        server.close_all(code, "chaos");
                    }
                });
            }
            Chaos::Blackhole { every, hold } => {
                log(format_args!("chaos: half-open link every {every:?} for {hold:?}"));
                let Some(proxy) = proxy else { continue };
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        log(format_args!("chaos: blackhole on: nothing is forwarded for {hold:?}"));
                        proxy.blackhole(true);
                        tokio::time::sleep(hold).await;
                        proxy.cut();
                        proxy.blackhole(false);
                        log("chaos: blackhole off; the half-open connections are cut");
                    }
                });
            }
        }
    }

    // Activity, at most once a second, and only when something changed.
    let print = args.print;
    let watcher = server.clone();
    tokio::spawn(async move {
        let mut last = (0, 0, 0);
        let mut total = 0u64;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let received = watcher.take_received();
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
            let now = (watcher.open_connections(), watcher.handshakes(), total);
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
    fn chaos_specs() {
        let s = Duration::from_secs;
        assert_eq!(parse_chaos("restart=10"), Ok(Chaos::Restart { every: s(10), down: s(1) }));
        assert_eq!(
            parse_chaos("restart=5:500ms"),
            Ok(Chaos::Restart { every: s(5), down: Duration::from_millis(500) })
        );
        assert_eq!(parse_chaos("close=3"), Ok(Chaos::Close { every: s(3), code: 1012 }));
        assert_eq!(parse_chaos("close=3:4000"), Ok(Chaos::Close { every: s(3), code: 4000 }));
        assert_eq!(parse_chaos("blackhole=8:2"), Ok(Chaos::Blackhole { every: s(8), hold: s(2) }));
        assert_eq!(parse_chaos("reject=503:2"), Ok(Chaos::Reject { status: 503, retry_after: Some("2".into()) }));
        for bad in ["restart", "restart=0", "close=1:1006", "reject=101", "reject=abc", "reject=503:x", "nope=1"] {
            assert!(parse_chaos(bad).is_err(), "{bad}");
        }
    }
}
