//! The Autobahn|Testsuite client protocol, spoken through Tether.
//!
//! ```text
//! cargo run --release -p tether-tests --example autobahn-client -- <tokio|smol|async-std> ws://127.0.0.1:9001 [AGENT]
//! ```
//!
//! Asks the fuzzing server for the number of cases (`/getCaseCount`), runs each one (`/runCase`),
//! echoing every message exactly as received (text as text, binary as binary), then asks the server to
//! write its reports (`/updateReports`). Every connection is a fresh Tether client that never
//! reconnects: a case ends when its connection does. Verdicts are the server's; `run.sh` reads them.

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::{Either, select};
use tether::{BackoffConfig, ClientBuilder, ClientConfig, DeflateConfig, Event, QueueConfig, SendError};

#[path = "../tests/common/runtimes.rs"]
mod runtimes;
use runtimes::{AsyncStd, Rt, Smol, Tokio};

/// Longer than the suite's own longest case timeout (480 s, the large compressed cases of 12.* and
/// 13.*): a client stuck past it is a failure of ours, reported; until then the suite decides.
const CASE_LIMIT: Duration = Duration::from_secs(600);

/// One connection per case: no heartbeat (the suite times its own pings), no reconnection (the case
/// ends with its connection), room for the largest case (9.*: 16 MiB messages, 1000-message bursts),
/// permessage-deflate offered with the defaults but a threshold of 0, so that every echo of a
/// compressed case (12.*, 13.*) goes out compressed.
fn config(url: &str) -> ClientConfig {
    ClientBuilder::new(url)
        .heartbeat(None)
        .connect_timeout(Duration::from_secs(10))
        .close_timeout(Duration::from_secs(5))
        .backoff(
            // Never reached: the case's client is dropped on its first disconnection.
            BackoffConfig::default()
                .max_attempts(Some(1))
                .base(Duration::from_secs(60))
                .max_delay(Duration::from_secs(60)),
        )
        .queue(QueueConfig::default().max_messages(100_000).max_bytes(256 << 20))
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20))
        .compression(Some(DeflateConfig::default().threshold(Some(0))))
        .build()
        .unwrap_or_else(|e| panic!("bad configuration for {url}: {e}"))
}

/// How one connection ended, as the client saw it.
struct Ended {
    echoed: u64,
    how: String,
}

/// Runs one connection to `url`, echoing every message (or handing each to `on_message` instead).
async fn session<R: Rt>(url: &str, echo: bool, mut on_message: impl FnMut(&tether::Message)) -> Ended {
    let (client, mut events) = R::connect(config(url));
    let mut echoed = 0;
    let run = async {
        while let Some(event) = events.next().await {
            match event {
                Event::Message(m) => {
                    on_message(&m);
                    if echo {
                        match client.send(m).await {
                            Ok(_) => echoed += 1,
                            // The connection is closing: the suite expects no echo then.
                            Err(SendError::Inactive { .. }) => {}
                            Err(e) => return format!("echo refused: {e:?}"),
                        }
                    }
                }
                Event::Disconnected { cause, .. } => return format!("disconnected: {cause}"),
                Event::Failed(reason) => return format!("failed: {reason}"),
                Event::Closed { cause, .. } => return format!("closed: {cause}"),
                _ => {}
            }
        }
        "event stream ended".to_owned()
    };
    let how = match select(std::pin::pin!(run), std::pin::pin!(R::sleep(CASE_LIMIT))).await {
        Either::Left((how, _)) => how,
        Either::Right(_) => format!("TIMEOUT: still open after {CASE_LIMIT:?}"),
    };
    // Dropping the last handle closes the session; it does not reconnect.
    drop(client);
    Ended { echoed, how }
}

async fn run<R: Rt>(base: &str, agent: &str, only: Option<(usize, usize)>) -> i32 {
    let mut count = None;
    let ended = session::<R>(&format!("{base}/getCaseCount"), false, |m| {
        count = m.as_text().and_then(|t| t.trim().parse::<usize>().ok());
    })
    .await;
    let Some(count) = count else {
        eprintln!("autobahn-client: no case count from {base} ({})", ended.how);
        return 2;
    };
    let (first, last) = only.unwrap_or((1, count));
    eprintln!("autobahn-client[{agent}]: {count} cases on the server, running {first}..={last}");
    let started = Instant::now();
    let mut timeouts = 0;
    let verbose = std::env::var_os("AUTOBAHN_VERBOSE").is_some();
    for case in first..=last.min(count) {
        let t = Instant::now();
        let ended = session::<R>(&format!("{base}/runCase?case={case}&agent={agent}"), true, |_| {}).await;
        let took = t.elapsed();
        if ended.how.starts_with("TIMEOUT") {
            timeouts += 1;
        }
        if verbose || took > Duration::from_secs(2) || ended.how.starts_with("TIMEOUT") {
            eprintln!("  case {case}: {:.1}s, {} echoed, {}", took.as_secs_f64(), ended.echoed, ended.how);
        }
    }
    session::<R>(&format!("{base}/updateReports?agent={agent}"), false, |_| {}).await;
    eprintln!("autobahn-client[{agent}]: done in {:.1}s", started.elapsed().as_secs_f64());
    if timeouts > 0 { 1 } else { 0 }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: autobahn-client <tokio|smol|async-std> <ws://host:port> [agent] [first-last]";
    let (Some(runtime), Some(base)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let base = base.trim_end_matches('/');
    let agent = args.get(2).cloned().unwrap_or_else(|| format!("tether-{runtime}"));
    let only = args.get(3).map(|r| {
        let (a, b) = r.split_once('-').unwrap_or_else(|| panic!("{usage}"));
        (a.parse().expect(usage), b.parse().expect(usage))
    });
    let code = match runtime.as_str() {
        "tokio" => Tokio::block_on(run::<Tokio>(base, &agent, only)),
        "smol" => Smol::block_on(run::<Smol>(base, &agent, only)),
        "async-std" => AsyncStd::block_on(run::<AsyncStd>(base, &agent, only)),
        other => {
            eprintln!("unknown runtime {other:?}; {usage}");
            2
        }
    };
    std::process::exit(code);
}
