//! `tether`: the command-line face of Tether, the resilient WebSocket client.
//!
//! * `tether connect URL`: stdin lines become text messages (queued across outages), received messages go
//!   to stdout, connection events to stderr; with `--rpc-id FIELD`, JSON requests matched to their
//!   responses (printed in request order).
//! * `tether serve`: a local echo server, with optional chaos (the `tether-chaos` crate).
//! * `tether demo`: a loopback tour of what the client survives, ending with a computed summary.
//!
//! This is a program: it prints. Diagnostics go through `tracing` (`-v`, or `RUST_LOG`).

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod connect;
mod demo;
mod json_line;
mod rpc;
mod serve;
mod term;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Exit codes, documented in `--help` and the README.
pub(crate) mod exit {
    /// A clean close (stdin ended and everything was sent, or Ctrl-C), or a finished demo.
    pub(crate) const OK: u8 = 0;
    /// Any other failure: an I/O error, a close handshake that timed out, a demo check that failed, a
    /// `--rpc-id` request that failed.
    pub(crate) const IO: u8 = 1;
    /// Bad arguments: unknown option, bad URL, header, duration, unreadable CA file.
    pub(crate) const USAGE: u8 = 2;
    /// The server rejected us for good (HTTP 401/403/404..., close 1008, certificate rejected, proxy
    /// credentials refused).
    pub(crate) const FATAL: u8 = 3;
    /// Gave up connecting: the retry budget is spent (`--max-attempts` consecutive failures), or stdin
    /// ended with nothing left to send while not connected.
    pub(crate) const RETRIES: u8 = 4;
    /// A second Ctrl-C: stopped at once, without waiting for the close.
    pub(crate) const INTERRUPTED: u8 = 130;
}

/// The exit codes' help text (a macro, so that `concat!` can put it under other help texts).
macro_rules! exit_codes {
    () => {
        "\
Exit codes:
  0    clean close (stdin ended and every message was sent, or Ctrl-C), or a successful demo
  1    other failure (I/O error, close handshake timed out, a demo check failed, an --rpc-id
       request failed)
  2    bad arguments (unknown option, bad URL, header or duration, unreadable CA file)
  3    fatal rejection: the server refused us and retrying will not help (e.g. HTTP 401, close 1008,
       certificate rejected, proxy credentials refused)
  4    gave up connecting: --max-attempts consecutive failed attempts, or stdin ended with nothing
       left to send while not connected
  130  interrupted by a second Ctrl-C

Logs: -v (info), -vv (debug), or RUST_LOG=tether=debug."
    };
}

const EXIT_CODES: &str = exit_codes!();

const END_OF_STDIN: &str = concat!(
    "\
At the end of stdin:
  - messages still queued are sent first (reconnecting as needed, within --max-attempts);
  - then, while connected, replies are awaited: the connection is closed (1000) once nothing has
    arrived for --linger (default 1 s; each message received starts the wait again), or when the
    server closes it; --linger 0 closes as soon as everything is sent;
  - while not connected, with nothing left to send, tether stops once the attempt in progress has
    failed (exit 4; --connect-timeout bounds a host that never answers), or at once (exit 0) if it
    was connected before and sent everything.

Request/response (--rpc-id FIELD, e.g. --rpc-id id for JSON-RPC):
  - every stdin line is a JSON object, sent as a request; a line without FIELD gets the next number
    (1, 2, ...) there. FIELD may be a path into nested objects: --rpc-id meta.id;
  - the inbound message whose FIELD holds a request's id (a string, or a non-negative integer) is its
    response: responses are printed on stdout in request order, one JSON line each (with --json:
    {\"event\":\"response\",\"line\":N,\"id\":ID,\"latency_ms\":MS,\"response\":{...}}), while later requests
    are already on their way (at most 256 at a time). Other messages are printed as usual;
  - a request fails (a line on stderr; with --json a \"request_failed\" line, in its place in
    the order) if its line is not a JSON object, if no response came within --rpc-timeout, or if the
    connection was lost after it was sent (unless --rpc-retry: it is then sent again after the
    reconnect, and the server may see it twice). A request made while disconnected waits for the
    connection;
  - the end of stdin waits for every response, then follows the rules above; the exit code is 1 if
    any request failed and the session was otherwise clean.

",
    exit_codes!()
);

/// Tether: a resilient WebSocket client.
#[derive(Debug, Parser)]
#[command(name = "tether", version, after_help = EXIT_CODES, propagate_version = true)]
struct Cli {
    /// More log output on stderr (-v: info, -vv: debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect to a server: stdin lines out, received messages on stdout, events on stderr.
    ///
    /// Every line of stdin is sent as a text message; lines read while the connection is down are
    /// queued and sent, in order, when it is back. Received messages are printed on stdout, connection
    /// events on stderr, with a live status line when stderr is a terminal. Ctrl-C closes gracefully;
    /// a second Ctrl-C stops at once.
    #[command(after_help = END_OF_STDIN)]
    Connect(Box<ConnectArgs>),
    /// Run a local echo server to try things against, optionally with chaos.
    ///
    /// Listens on 127.0.0.1 only. The first line on stdout is `listening on ws://127.0.0.1:PORT/`;
    /// activity and chaos are logged on stderr. Ctrl-C stops it.
    #[command(after_help = serve::CHAOS_HELP)]
    Serve(ServeArgs),
    /// A 10-second loopback tour of what the client survives, with a computed summary.
    ///
    /// Starts an echo server and a fault proxy on 127.0.0.1, streams numbered messages, restarts the
    /// server (backoff, queueing, reconnection, in-order flush), makes the link half-open (found by the
    /// heartbeat), closes, and compares what the client reported sent with what the server received.
    Demo,
}

/// `tether connect`'s options.
#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// ws:// or wss:// URL; more URLs are failover endpoints (an attempt that fails sends the next
    /// one to the next URL, wrapping around).
    #[arg(value_name = "URL", required = true, num_args = 1..)]
    pub(crate) urls: Vec<String>,
    /// Connect through this proxy: http://[user:password@]host:port (HTTP CONNECT), https://...,
    /// socks5://... (names resolved here) or socks5h://... (by the proxy). Default: from the
    /// environment (wss_proxy/https_proxy for wss://, ws_proxy/http_proxy for ws://, all_proxy;
    /// no_proxy lists hosts to reach directly).
    #[arg(long, value_name = "URL", conflicts_with = "no_proxy")]
    pub(crate) proxy: Option<String>,
    /// Connect directly, ignoring the proxy environment variables.
    #[arg(long)]
    pub(crate) no_proxy: bool,
    /// Extra header for the upgrade request, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "K:V", value_parser = parse_header)]
    pub(crate) headers: Vec<(String, String)>,
    /// Subprotocol to offer (repeatable, in preference order).
    #[arg(long = "subprotocol", value_name = "P")]
    pub(crate) subprotocols: Vec<String>,
    /// Seconds between pings (e.g. 15, 0.5, 500ms). Default: 15.
    #[arg(long, value_name = "S", value_parser = parse_duration)]
    pub(crate) ping_interval: Option<Duration>,
    /// Seconds to wait for the pong before the link is declared dead. Default: 10.
    #[arg(long, value_name = "S", value_parser = parse_duration)]
    pub(crate) pong_timeout: Option<Duration>,
    /// First reconnection delay, before jitter. Default: 0.5.
    #[arg(long, value_name = "S", value_parser = parse_duration)]
    pub(crate) backoff_base: Option<Duration>,
    /// Longest reconnection delay. Default: 30.
    #[arg(long, value_name = "S", value_parser = parse_duration)]
    pub(crate) backoff_max: Option<Duration>,
    /// Longest time an attempt may take to open: TCP, proxy, TLS and the WebSocket upgrade. Default: 10.
    #[arg(long, value_name = "S", value_parser = parse_duration)]
    pub(crate) connect_timeout: Option<Duration>,
    /// Longest time a close waits for the queue to drain and the server's close frame (then exit 1).
    /// Default: 5.
    #[arg(long, value_name = "S", value_parser = parse_duration)]
    pub(crate) close_timeout: Option<Duration>,
    /// After the end of stdin and once everything is sent, close once nothing has arrived for this
    /// long (replies are awaited); 0 closes at once. Default: 1.
    #[arg(long, value_name = "S", value_parser = parse_duration, default_value = "1")]
    pub(crate) linger: Duration,
    /// Give up after N consecutive failed attempts (exit code 4). Default: retry forever (but see the
    /// end of stdin below).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_attempts: Option<u32>,
    /// Most messages queued (pending and in flight); reading stdin waits while it is full. Default: 4096.
    #[arg(long = "queue", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) queue: Option<u64>,
    /// Resend messages that were in flight on a connection that died (at-least-once) instead of
    /// reporting them abandoned (at-most-once, the default).
    #[arg(long)]
    pub(crate) requeue: bool,
    /// Do not offer permessage-deflate compression (offered by default; a server that declines gets
    /// uncompressed messages either way). The agreed parameters are in the `connected` event.
    #[arg(long)]
    pub(crate) no_compression: bool,
    /// Also trust the CA certificates in this PEM file (for wss:// with a private CA).
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<std::path::PathBuf>,
    /// Print every event (messages included) as one JSON object per line on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Request/response mode: every stdin line is a JSON request, matched to its response by this
    /// field (`id` for JSON-RPC; `a.b` for a nested one); responses are printed in request order, with
    /// their latency in --json. See below.
    #[arg(long, value_name = "FIELD", value_parser = parse_field)]
    pub(crate) rpc_id: Option<rpc::FieldPath>,
    /// With --rpc-id: how long a request waits for its response before it fails. Default: no limit.
    #[arg(long, value_name = "S", value_parser = parse_duration, requires = "rpc_id")]
    pub(crate) rpc_timeout: Option<Duration>,
    /// With --rpc-id: requests pending when the connection is lost are sent again after the reconnect
    /// (for idempotent requests: the server may see one twice) instead of failing.
    #[arg(long, requires = "rpc_id")]
    pub(crate) rpc_retry: bool,
}

/// `tether serve`'s options.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, short, default_value_t = 9001)]
    pub(crate) port: u16,
    /// Fault to inject (repeatable); see below.
    #[arg(long = "chaos", value_name = "FAULT", value_parser = serve::parse_chaos)]
    pub(crate) chaos: Vec<tether_chaos::Fault>,
    /// Print every message received on stderr.
    #[arg(long)]
    pub(crate) print: bool,
    /// Serve wss:// with a certificate for localhost signed by a CA made now; the CA certificate is
    /// written to this PEM file (for `tether connect --ca FILE wss://localhost:PORT/`).
    #[arg(long, value_name = "CA_FILE")]
    pub(crate) tls: Option<std::path::PathBuf>,
}

/// A JSON field path: `id`, or `a.b` for field `b` of object `a`.
fn parse_field(s: &str) -> Result<rpc::FieldPath, String> {
    rpc::FieldPath::parse(s).ok_or_else(|| format!("expected a field name or a dotted path such as a.b, got {s:?}"))
}

/// `K:V` or `K: V`.
fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("expected NAME:VALUE, got {s:?}")),
    }
}

/// Seconds (`1.5`, `2s`) or milliseconds (`500ms`): the syntax of `--chaos` too.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    tether_chaos::parse_duration(s).map_err(|e| e.to_string())
}

/// Prints one line on stderr, prefixed with the program's name.
pub(crate) fn error_line(msg: impl std::fmt::Display) {
    eprintln!("tether: {msg}");
}

/// A clap error as one line (help and version are printed as they are).
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                exit::USAGE
            } else {
                exit::OK
            });
        }
        _ => {}
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid arguments");
    let first = first.trim().strip_prefix("error: ").unwrap_or(first.trim());
    error_line(format_args!("{first} (see 'tether --help')"));
    ExitCode::from(exit::USAGE)
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

fn main() -> ExitCode {
    // A panic would be a bug; even then the user gets one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string().replace('\n', " ");
        error_line(format_args!("internal error (please report): {msg}"));
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    init_tracing(cli.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            error_line(format_args!("cannot start the async runtime: {e}"));
            return ExitCode::from(exit::IO);
        }
    };
    let code = rt.block_on(async move {
        match cli.command {
            Command::Connect(args) => connect::run(*args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Demo => demo::run().await,
        }
    });
    // The stdin reader may be blocked in a read: don't wait for it.
    rt.shutdown_background();
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("NaN").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(parse_header("Authorization: Bearer x:y"), Ok(("Authorization".into(), "Bearer x:y".into())));
        assert!(parse_header("no-colon").is_err());
        assert!(parse_header(":v").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
