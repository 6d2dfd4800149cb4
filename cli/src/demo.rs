//! `tether demo`: a loopback tour, about 12 s, with a summary computed from what the server recorded.
//!
//! The cast: tether-chaos's echo server, its fault proxy in front of it, and one Tether
//! client on tokio with `InFlightPolicy::Requeue`. The script: stream numbered messages; restart the
//! server gracefully (close 1012, down 2 s) while the stream goes on, so the client backs off, queues,
//! reconnects and flushes in order; then make the link half-open and let the heartbeat find it; close.
//!
//! Why "lost" is honest: the server is stopped only after its connections have ended with the close
//! handshake, and the test server records every data message it reads until the client's close reply.
//! So every message the client reported `Sent` before the restart was read by the server; the ones that
//! were in flight are requeued and sent again (at-least-once: the server may see them twice, and the
//! summary counts those duplicates). In the half-open phase the app pauses first, because a message
//! flushed into a dead link is reported `Sent` and still lost: that is what "sent" means on a WebSocket.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tether_chaos::proxy::FaultProxy;
use tether_chaos::server::{Behavior, TestServer};
use tether_tokio::{
    BackoffConfig, Cause, Client, ClientBuilder, Event, HeartbeatConfig, InFlightPolicy, Jitter, Message, MessageId,
    Outcome, QueueConfig, State,
};

use crate::connect::fmt_duration;
use crate::exit;

const TOTAL: u32 = 150;
/// The server restarts after this message...
const RESTART_AT: u32 = 40;
/// ...the link goes half-open after this one.
const HALF_OPEN_AT: u32 = 120;
const PACE: Duration = Duration::from_millis(40);
const SERVER_DOWN: Duration = Duration::from_secs(2);
const PING_INTERVAL: Duration = Duration::from_millis(500);
const PONG_TIMEOUT: Duration = Duration::from_millis(1500);

/// What the client reported, gathered by the event task.
#[derive(Default)]
struct Record {
    outcomes: HashMap<MessageId, Outcome>,
    /// Message numbers echoed back, in arrival order.
    echoes: Vec<u32>,
    requeued: u64,
    /// When the 1012 close reached the client.
    restart_lost_at: Option<Instant>,
    /// When the client was connected again after the restart.
    restart_back_at: Option<Instant>,
    /// When the server listened again.
    server_up_at: Option<Instant>,
    /// When the heartbeat declared the half-open link dead.
    dead_at: Option<Instant>,
    /// When the client was connected again after that.
    dead_back_at: Option<Instant>,
    connected: bool,
    finished: bool,
}

struct Shared {
    start: Instant,
    record: Mutex<Record>,
}

impl Shared {
    fn rec(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn say(&self, who: &str, text: impl std::fmt::Display) {
        println!("{:>6.2}s  {who:<8} {text}", self.start.elapsed().as_secs_f64());
    }
}

fn section(title: &str) {
    println!("\n── {title} ──");
}

/// Polls `cond` every 10 ms for at most `limit`.
async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn number(payload: &[u8]) -> Option<u32> {
    std::str::from_utf8(payload).ok()?.strip_prefix("msg ")?.parse().ok()
}

/// Narrates the client's events and records what the summary needs.
async fn watch_events(shared: Arc<Shared>, client: Client, mut events: tether_tokio::Events) {
    let mut pending_loss: Option<(bool, Cause)> = None;
    let mut requeued_now = 0u64;
    let mut phase_restart = true;
    while let Some(ev) = events.next().await {
        let now = Instant::now();
        match ev {
            Event::Message(m) => {
                if let Some(n) = number(m.payload()) {
                    shared.rec().echoes.push(n);
                }
            }
            Event::Outcome { id, outcome } => {
                shared.rec().outcomes.insert(id, outcome);
            }
            Event::Requeued { .. } => {
                requeued_now += 1;
                shared.rec().requeued += 1;
            }
            Event::Connected { info, reconnect, attempt, .. } => {
                // Outcomes not yet seen here: what was waiting when the connection opened.
                let accepted = client.stats().messages_accepted;
                let mut r = shared.rec();
                let queued = accepted.saturating_sub(r.outcomes.len() as u64);
                r.connected = true;
                let line = if !reconnect {
                    format!("connected (handshake {})", fmt_duration(info.handshake))
                } else if r.restart_lost_at.is_some() && r.restart_back_at.is_none() {
                    r.restart_back_at = Some(now);
                    let outage = now - r.restart_lost_at.unwrap_or(now);
                    let since_up = r.server_up_at.map_or_else(String::new, |up| {
                        format!(", {} after the server was back", fmt_duration(now.saturating_duration_since(up)))
                    });
                    format!(
                        "reconnected on attempt {attempt} after {} of outage{since_up}; the {queued} messages \
                         queued meanwhile go out first, oldest first",
                        fmt_duration(outage)
                    )
                } else if r.dead_at.is_some() && r.dead_back_at.is_none() {
                    r.dead_back_at = Some(now);
                    format!(
                        "reconnected {} after the dead link was found",
                        fmt_duration(now - r.dead_at.unwrap_or(now))
                    )
                } else {
                    format!("reconnected (attempt {attempt})")
                };
                drop(r);
                shared.say("client", line);
            }
            Event::StateChanged { from, to: State::Reconnecting, cause } => {
                shared.rec().connected = false;
                pending_loss = Some((from == State::Connected, cause));
            }
            Event::Disconnected { cause, .. } => {
                let mut r = shared.rec();
                match cause {
                    Cause::RemoteClosed(_) if phase_restart && r.restart_lost_at.is_none() => {
                        r.restart_lost_at = Some(now);
                        phase_restart = false;
                    }
                    Cause::Heartbeat(_) if r.dead_at.is_none() => r.dead_at = Some(now),
                    _ => {}
                }
            }
            Event::RetryScheduled { attempt, delay, .. } => {
                let Some((was_connected, cause)) = pending_loss.take() else { continue };
                let mut line = if was_connected {
                    match cause {
                        Cause::Heartbeat(_) => format!(
                            "heartbeat: no pong within {} → the link is declared dead",
                            fmt_duration(PONG_TIMEOUT)
                        ),
                        c => format!("connection lost: {c}"),
                    }
                } else {
                    format!("attempt {} failed: {cause}", attempt.saturating_sub(1).max(1))
                };
                if requeued_now > 0 {
                    line.push_str(&format!("; {} requeued", crate::connect::count(requeued_now, "in-flight message")));
                    requeued_now = 0;
                }
                line.push_str(&format!("; next attempt in {} (backoff with jitter)", fmt_duration(delay)));
                shared.say("client", line);
            }
            Event::Failed(reason) => shared.say("client", format_args!("failed: {reason}")),
            Event::Closed { cause, .. } => shared.say("client", format_args!("closed ({cause})")),
            // Queue room, and kinds of event added to the library after this demo: nothing to show.
            _ => {}
        }
    }
    shared.rec().finished = true;
}

/// One line for a setup failure; the demo exits with 1.
fn setup_error(what: &str, e: impl std::fmt::Display) -> u8 {
    crate::error_line(format_args!("error: demo: {what}: {e}"));
    exit::IO
}

/// Runs the demo; returns the exit code (0 only if every check passed, lost = 0 among them).
pub(crate) async fn run() -> u8 {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = match TestServer::start_at(loopback, Behavior::Echo, None) {
        Ok(s) => Arc::new(s),
        Err(e) => return setup_error("cannot start the echo server", e),
    };
    let proxy = match FaultProxy::start_at(loopback, server.addr()) {
        Ok(p) => Arc::new(p),
        Err(e) => return setup_error("cannot start the fault proxy", e),
    };
    let backoff = BackoffConfig::default()
        .base(Duration::from_millis(200))
        .max_delay(Duration::from_secs(2))
        .jitter(Jitter::Equal)
        .stable_after(Duration::from_secs(1));
    let heartbeat = HeartbeatConfig::default().interval(PING_INTERVAL).pong_timeout(PONG_TIMEOUT);
    let config = ClientBuilder::new(proxy.url())
        .backoff(backoff)
        .heartbeat(Some(heartbeat.clone()))
        .queue(QueueConfig::default().in_flight(InFlightPolicy::Requeue))
        .seed(7)
        .build();
    let config = match config {
        Ok(c) => c,
        Err(e) => return setup_error("bad client configuration", e),
    };

    let shared = Arc::new(Shared { start: Instant::now(), record: Mutex::new(Record::default()) });
    println!("Tether demo: one client, one echo server, a fault proxy between them; all on 127.0.0.1.");
    println!(
        "The client: in-flight messages requeued after a failure (at-least-once), a ping every {} with a pong \
         due within {}, backoff from 200 ms doubling to 2 s with jitter.",
        fmt_duration(PING_INTERVAL),
        fmt_duration(PONG_TIMEOUT)
    );
    println!();
    shared.say("server", format_args!("echo server on ws://{}/", server.addr()));
    shared.say("network", format_args!("fault proxy on {} forwards to it; the client connects there", proxy.url()));

    let (client, events) = match tether_tokio::connect(config) {
        Ok(pair) => pair,
        Err(e) => return setup_error("no runtime", e),
    };
    let watcher = tokio::spawn(watch_events(shared.clone(), client.clone(), events));
    if !wait_for(Duration::from_secs(10), || shared.rec().connected).await {
        return setup_error("no connection", "the client did not connect to the local server within 10 s");
    }

    section("1. streaming");
    shared.say("app", format_args!("sends \"msg 1\" … \"msg {TOTAL}\", one every {} ms", PACE.as_millis()));
    let mut ids: Vec<(MessageId, u32)> = Vec::with_capacity(TOTAL as usize);
    let mut down_for = Duration::ZERO;
    let mut restart_task = None;
    let mut half_open = None;
    for n in 1..=TOTAL {
        match client.send(Message::text(format!("msg {n}"))).await {
            Ok(id) => ids.push((id, n)),
            Err(e) => return setup_error("send refused", e),
        }
        if n % 20 == 0 {
            let s = client.stats();
            let state = client.state();
            let echoed = shared.rec().echoes.len();
            if state == State::Connected {
                shared.say("app", format_args!("msg {n} sent; {echoed} echoes back so far; queue {}", s.queue_len));
            } else {
                shared.say(
                    "app",
                    format_args!("msg {n} queued while the client is {state:?}: {} messages waiting", s.queue_len),
                );
            }
        }
        if n == RESTART_AT {
            section("2. the server restarts (graceful: close 1012, down 2 s)");
            restart_task = Some(tokio::spawn(restart_server(shared.clone(), server.clone(), proxy.clone())));
        }
        if n == HALF_OPEN_AT {
            if let Some(t) = restart_task.take() {
                down_for = t.await.unwrap_or(Duration::ZERO);
            }
            section("3. the link goes half-open");
            match half_open_phase(&shared, &client, &proxy, &server, &ids).await {
                Ok(detected) => half_open = Some(detected),
                Err(e) => return setup_error("half-open phase", e),
            }
            section("4. streaming again");
        }
        tokio::time::sleep(PACE).await;
    }

    section("5. close");
    shared.say("app", "closes the client: what is queued is sent first, then a close frame (1000)");
    if let Err(e) = client.close(1000, "demo finished").await {
        return setup_error("close", e);
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), watcher).await;
    let stats = client.stats();

    // ----- the summary, computed ----------------------------------------------------------------
    let received = server.received();
    let rec = shared.rec();
    let sent: Vec<u32> =
        ids.iter().filter(|(id, _)| rec.outcomes.get(id) == Some(&Outcome::Sent)).map(|x| x.1).collect();
    let unsent = ids.len() - sent.len();
    let server_nums: Vec<u32> = received.iter().filter_map(|r| number(&r.data)).collect();
    let server_set: HashSet<u32> = server_nums.iter().copied().collect();
    let duplicates = server_nums.len() - server_set.len();
    let lost = sent.iter().filter(|n| !server_set.contains(n)).count();
    let server_in_order = first_occurrences_increasing(&server_nums);
    let echo_set: HashSet<u32> = rec.echoes.iter().copied().collect();
    let echoes_in_order = first_occurrences_increasing(&rec.echoes);
    let restart_recovery = match (rec.restart_lost_at, rec.restart_back_at) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let after_up = match (rec.server_up_at, rec.restart_back_at) {
        (Some(a), Some(b)) => Some(b.saturating_duration_since(a)),
        _ => None,
    };
    let rtt = &stats.rtt;
    let ms = |d: Option<Duration>| d.map_or_else(|| "-".into(), fmt_duration);

    section("summary");
    println!("  sent        {:>4}   messages the client reported Sent (written and flushed to the socket)", sent.len());
    println!(
        "  received    {:>4}   distinct messages the server recorded ({duplicates} duplicates: requeued, \
         at-least-once)",
        server_set.len()
    );
    println!("  lost        {lost:>4}   reported Sent by the client, never received by the server");
    println!(
        "  echoed      {:>4}   distinct echoes back to the client, {}{}",
        echo_set.len(),
        if echoes_in_order { "in order" } else { "OUT OF ORDER" },
        if echo_set.len() < server_set.len() {
            " (a message that reaches the server after its close frame is recorded, but not echoed)"
        } else {
            ""
        }
    );
    println!(
        "  order              {}",
        if server_in_order { "FIFO kept: the server saw the messages in the order they were sent" } else { "BROKEN" }
    );
    println!("  reconnects  {:>4}   ({} connection attempts)", stats.reconnects, stats.attempts);
    println!(
        "  rtt                {} average (min {}, max {}; {} ping/pong samples)",
        ms(rtt.ewma),
        ms(rtt.min),
        ms(rtt.max),
        rtt.samples
    );
    println!(
        "  recovery           server restart: connected again {} after the close (server down {}, then {} \
         until the next attempt)",
        ms(restart_recovery),
        fmt_duration(down_for),
        ms(after_up)
    );
    if let Some((detected, back)) = half_open {
        println!(
            "                     half-open link: found dead {} after it went silent (bound: {} + {}), \
             connected again {} later",
            fmt_duration(detected),
            fmt_duration(heartbeat.interval),
            fmt_duration(heartbeat.pong_timeout),
            ms(back)
        );
    }
    println!();
    println!(
        "summary: sent = {}, received = {}, lost = {lost}, duplicates = {duplicates}, reconnects = {}, \
         rtt = {}, time to recover = {}",
        sent.len(),
        server_set.len(),
        stats.reconnects,
        ms(rtt.ewma),
        ms(restart_recovery)
    );

    let mut failures = Vec::new();
    if lost > 0 {
        failures.push(format!("{lost} messages lost"));
    }
    if unsent > 0 {
        failures.push(format!("{unsent} messages not reported Sent"));
    }
    if !server_in_order || !echoes_in_order {
        failures.push("order broken".to_owned());
    }
    if half_open.is_none() || restart_recovery.is_none() {
        failures.push("a phase did not complete".to_owned());
    }
    if failures.is_empty() {
        exit::OK
    } else {
        crate::error_line(format_args!("error: demo check failed: {}", failures.join(", ")));
        exit::IO
    }
}

fn first_occurrences_increasing(seq: &[u32]) -> bool {
    let mut seen = HashSet::new();
    let firsts: Vec<u32> = seq.iter().copied().filter(|n| seen.insert(*n)).collect();
    firsts.windows(2).all(|w| w[0] < w[1])
}

/// Graceful restart: stop listening, close every connection with 1012, wait for the close handshakes
/// (so the server has read everything), stay down, listen again. Returns how long it was down.
async fn restart_server(shared: Arc<Shared>, server: Arc<TestServer>, proxy: Arc<FaultProxy>) -> Duration {
    shared.say("server", "stops listening and closes every connection with 1012 \"service restart\"");
    shared
        .say("network", "while the server is down, the proxy resets new connections (like a balancer with no backend)");
    proxy.refuse(true);
    server.stop_listening();
    server.close_all(1012, "service restart");
    let down_at = Instant::now();
    let clean = wait_for(Duration::from_secs(3), || server.open_connections() == 0).await;
    server.stop();
    if clean {
        shared.say("server", "close handshakes done: every message the client flushed has been read");
    } else {
        shared.say("server", "close handshakes not done in 3 s: remaining connections dropped");
    }
    tokio::time::sleep(SERVER_DOWN.saturating_sub(down_at.elapsed())).await;
    let s = server.clone();
    let _ = tokio::task::spawn_blocking(move || s.restart()).await;
    proxy.refuse(false);
    shared.rec().server_up_at = Some(Instant::now());
    let down = down_at.elapsed();
    shared.say("server", format_args!("listening again after {}", fmt_duration(down)));
    down
}

/// Pauses, blackholes the link, waits for the heartbeat, restores. Returns (silence → declared dead,
/// declared dead → connected again).
async fn half_open_phase(
    shared: &Arc<Shared>,
    client: &Client,
    proxy: &FaultProxy,
    server: &TestServer,
    ids: &[(MessageId, u32)],
) -> Result<(Duration, Option<Duration>), String> {
    shared.say(
        "app",
        "pauses until the server has everything sent so far: a message flushed into a dead link is reported \
         Sent and is lost with it (\"sent\" means flushed to the socket; a WebSocket has no receipt)",
    );
    let settled = wait_for(Duration::from_secs(30), || {
        if !shared.rec().connected || client.stats().queue_len != 0 {
            return false;
        }
        let at_server: HashSet<u32> = server.received().iter().filter_map(|r| number(&r.data)).collect();
        ids.iter().all(|(_, n)| at_server.contains(n))
    })
    .await;
    if !settled {
        return Err("the client did not reconnect and drain within 30 s".into());
    }
    // Let the last echoes arrive: the proxy would drop them.
    tokio::time::sleep(Duration::from_millis(100)).await;
    shared.say("network", "the link goes half-open: both sockets stay open, nothing gets through, no FIN, no RST");
    let silent_at = Instant::now();
    proxy.blackhole(true);
    let found = wait_for(Duration::from_secs(10), || shared.rec().dead_at.is_some()).await;
    proxy.cut();
    proxy.blackhole(false);
    if !found {
        return Err("the heartbeat did not find the dead link within 10 s".into());
    }
    let dead_at = shared.rec().dead_at.unwrap_or(silent_at);
    shared.say("network", "the link works again (the dead connection is gone)");
    wait_for(Duration::from_secs(10), || shared.rec().dead_back_at.is_some()).await;
    let back = shared.rec().dead_back_at.map(|b| b - dead_at);
    shared.say("app", "resumes the stream");
    Ok((dead_at.saturating_duration_since(silent_at), back))
}
