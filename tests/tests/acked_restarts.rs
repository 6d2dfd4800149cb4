//! The restart soak of tracked messages: a client streams tracked messages (200 per second) to a server
//! process that persists each message's key, then acknowledges it 20 ms later (`tether-ack-server`, as a
//! server that replicates before it confirms), while the server is killed (SIGKILL: what is in its
//! socket buffers and not yet acknowledged dies with it) and restarted every 2 s.
//!
//! Checked at the end, once the stream has stopped and the server has stayed up: every tracked message
//! ended with exactly one outcome, and that outcome is `Acked`; the server's log holds every
//! acknowledged key (lost = 0); a key logged twice (a duplicate at the server) is one the client
//! reported `Redelivered`, i.e. one the server had received but whose acknowledgement had not reached
//! the client when the connection died.
//!
//! The short form runs in `cargo test` (about 8 s). The long form, 10 minutes of wall time and little
//! CPU (200 messages a second), prints its counts; `--workspace` makes it reuse the test command's
//! build (the dev profile already optimises this crate):
//!
//! ```sh
//! cargo test --workspace --test acked_restarts -- --ignored --nocapture
//! TETHER_SOAK_SECS=60 cargo test --workspace --test acked_restarts -- --ignored --nocapture
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tether::{AckKey, BackoffConfig, ClientBuilder, Event, Message, MessageId, Outcome};
use tether_chaos::ack_server::acked_key;

const RATE_PER_SEC: u64 = 200;
const KILL_EVERY: Duration = Duration::from_secs(2);
/// So that every kill finds messages received and persisted but not yet acknowledged (about four).
const ACK_DELAY_MS: &str = "20";

/// The server process, restarted on the same port.
struct Server {
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start(log: &Path) -> Self {
        let mut s = Self { port: 0, log: log.to_owned(), child: None };
        s.spawn();
        s
    }

    /// Starts the process (on `self.port`; 0 the first time) and waits for the port it prints; a bind
    /// refused while the old socket is released is retried, bounded.
    fn spawn(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut child = Command::new(env!("CARGO_BIN_EXE_tether-ack-server"))
                .arg(self.port.to_string())
                .arg(&self.log)
                .arg(ACK_DELAY_MS)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("tether-ack-server starts");
            let mut line = String::new();
            let _ = BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line);
            if let Ok(port) = line.trim().parse() {
                self.port = port;
                self.child = Some(child);
                return;
            }
            let _ = child.wait();
            assert!(Instant::now() < deadline, "tether-ack-server did not come back on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What one run did.
#[derive(Debug, Default)]
struct Counts {
    sent: u64,
    acked: u64,
    failed: u64,
    redelivered: u64,
    duplicates_at_server: u64,
    lost: u64,
    restarts: u64,
}

fn ack_correlation(m: &Message) -> Option<AckKey> {
    acked_key(m.as_text()?).map(AckKey::from)
}

async fn soak(duration: Duration) -> Counts {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let log = std::env::temp_dir().join(format!(
        "tether-soak-{}-{}.log",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&log);
    let mut server = Server::start(&log);
    let url = format!("ws://127.0.0.1:{}/", server.port);

    // The killer: kill and restart every 2 s while the stream runs.
    let streaming = Arc::new(AtomicBool::new(true));
    let restarts = Arc::new(AtomicU64::new(0));
    let killer = {
        let (streaming, restarts) = (streaming.clone(), restarts.clone());
        std::thread::spawn(move || {
            while streaming.load(Ordering::Acquire) {
                std::thread::sleep(KILL_EVERY);
                if !streaming.load(Ordering::Acquire) {
                    break;
                }
                server.kill();
                server.spawn();
                restarts.fetch_add(1, Ordering::Relaxed);
            }
            server
        })
    };

    let config = ClientBuilder::new(url)
        .backoff(BackoffConfig::default().base(Duration::from_millis(20)).max_delay(Duration::from_millis(200)))
        .connect_timeout(Duration::from_secs(2))
        .correlate(ack_correlation)
        .build()
        .expect("valid config");
    let (client, mut events) = tether_tokio::connect(config).expect("inside tokio");

    // Events: every outcome, and the redeliveries.
    let (done_tx, mut done_rx) = futures::channel::mpsc::unbounded();
    tokio::spawn(async move {
        while let Some(e) = events.next().await {
            let _ = done_tx.unbounded_send(e);
        }
    });

    let mut keys: HashMap<MessageId, String> = HashMap::new();
    let mut outcomes: BTreeMap<MessageId, Vec<Outcome>> = BTreeMap::new();
    let mut redelivered: BTreeSet<MessageId> = BTreeSet::new();
    let mut note = |e: Event, outcomes: &mut BTreeMap<MessageId, Vec<Outcome>>| match e {
        Event::Outcome { id, outcome } => outcomes.entry(id).or_default().push(outcome),
        Event::Redelivered { id } => {
            redelivered.insert(id);
        }
        _ => {}
    };

    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE_PER_SEC));
    let mut n = 0u64;
    while start.elapsed() < duration {
        tick.tick().await;
        let key = format!("m{n}");
        let id = client.send_tracked(format!("{key} {}", "x".repeat(48)), key.as_str()).await.expect("accepted");
        keys.insert(id, key);
        n += 1;
        while let Ok(e) = done_rx.try_recv() {
            note(e, &mut outcomes);
        }
    }
    streaming.store(false, Ordering::Release);
    let server = tokio::task::spawn_blocking(move || killer.join().expect("the killer thread")).await.expect("joined");

    // The server stays up now: everything must end, within a bound.
    let settle = tokio::time::timeout(Duration::from_secs(60), async {
        while outcomes.len() < keys.len() {
            match done_rx.next().await {
                Some(e) => note(e, &mut outcomes),
                None => break,
            }
        }
    })
    .await;
    let st = client.stats();
    assert!(
        settle.is_ok(),
        "{} of {} tracked messages ended within 60 s after the stream; {st:?}",
        outcomes.len(),
        keys.len()
    );
    client.close(1000, "done").await.expect("close");
    drop(server);

    // The server's log: what it persisted, duplicates included.
    let mut logged: HashMap<String, u64> = HashMap::new();
    for line in std::fs::read_to_string(&log).expect("the server's log").lines() {
        *logged.entry(line.to_owned()).or_default() += 1;
    }
    let _ = std::fs::remove_file(&log);

    let mut c = Counts { sent: keys.len() as u64, restarts: restarts.load(Ordering::Relaxed), ..Counts::default() };
    c.redelivered = st.messages_redelivered;
    let redelivered_keys: BTreeSet<&str> =
        redelivered.iter().filter_map(|id| keys.get(id)).map(String::as_str).collect();
    for (id, key) in &keys {
        let o = outcomes.get(id).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(o.len(), 1, "{id} ({key}) ended {o:?}: exactly one outcome each");
        if o[0] == Outcome::Acked {
            c.acked += 1;
            if !logged.contains_key(key) {
                c.lost += 1;
            }
        } else {
            c.failed += 1;
        }
        let times = logged.get(key).copied().unwrap_or(0);
        if times > 1 {
            c.duplicates_at_server += times - 1;
            assert!(
                redelivered_keys.contains(key.as_str()),
                "{key} reached the server {times} times but was never redelivered"
            );
        }
    }
    println!(
        "soak {:?}: sent {}, acked {}, failed {}, redelivered {}, duplicates at the server {}, lost {}, server restarts {}",
        duration, c.sent, c.acked, c.failed, c.redelivered, c.duplicates_at_server, c.lost, c.restarts
    );
    c
}

fn check(c: &Counts, min_restarts: u64) {
    assert!(c.restarts >= min_restarts, "{c:?}");
    assert_eq!(c.lost, 0, "acknowledged but not persisted: {c:?}");
    assert_eq!(c.failed, 0, "every tracked message is acknowledged in the end: {c:?}");
    assert_eq!(c.acked, c.sent, "{c:?}");
    assert!(c.duplicates_at_server <= c.redelivered, "{c:?}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio")
}

#[test]
fn tracked_messages_survive_a_server_killed_every_two_seconds() {
    let c = runtime().block_on(soak(Duration::from_secs(7)));
    check(&c, 2);
    assert!(c.sent >= 500, "{c:?}");
    assert!(c.redelivered > 0, "the kills caught messages waiting for their acknowledgement: {c:?}");
}

#[test]
#[ignore = "10 minutes: cargo test --workspace --test acked_restarts -- --ignored --nocapture"]
fn ten_minutes_of_restarts() {
    let secs = std::env::var("TETHER_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let c = runtime().block_on(soak(Duration::from_secs(secs)));
    check(&c, secs / 3);
}
