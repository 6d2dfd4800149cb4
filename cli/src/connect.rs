//! `tether connect`: stdin → messages, messages → stdout, events → stderr (or JSON lines on stdout).

use std::io::BufRead;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tether_tokio::{
    AckConfig, BackoffConfig, Cause, ClientBuilder, ClientConfig, ConnectPhase, Event, FailReason, InFlightPolicy,
    Message, MessageKind, Outcome, QueueConfig, State, Stats,
};
use tokio::sync::mpsc;

use crate::json_line::{self, Line};
use crate::rpc;
use crate::term::Console;
use crate::{ConnectArgs, exit};

/// What the stdin reader hands over.
pub(crate) enum Input {
    Line(Vec<u8>),
    End(Option<std::io::Error>),
}

/// Builds the client configuration; the error is the one line to print.
pub(crate) fn build(a: &ConnectArgs) -> Result<ClientConfig, String> {
    let mut b = ClientBuilder::new(a.urls[0].as_str());
    for url in &a.urls[1..] {
        b = b.endpoint(url.as_str());
    }
    // Like curl: the environment's proxy unless told otherwise.
    b = match (&a.proxy, a.no_proxy) {
        (Some(p), _) => b.proxy(p.as_str()),
        (None, true) => b.no_proxy(),
        (None, false) => b.proxy_from_env(),
    };
    for (k, v) in &a.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    for p in &a.subprotocols {
        b = b.subprotocol(p.as_str());
    }
    if let Some(d) = a.ping_interval {
        b = b.ping_interval(d);
    }
    if let Some(d) = a.pong_timeout {
        b = b.pong_timeout(d);
    }
    if let Some(d) = a.connect_timeout {
        b = b.connect_timeout(d);
    }
    if let Some(d) = a.close_timeout {
        b = b.close_timeout(d);
    }
    let mut backoff = BackoffConfig::default();
    if let Some(d) = a.backoff_base {
        backoff.base = d;
        if a.backoff_max.is_none() {
            backoff.max_delay = backoff.max_delay.max(d);
        }
    }
    if let Some(d) = a.backoff_max {
        backoff.max_delay = d;
    }
    backoff.max_attempts = a.max_attempts;
    b = b.backoff(backoff);
    let mut queue = QueueConfig::default();
    if let Some(n) = a.queue {
        queue.max_messages = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if a.requeue {
        queue.in_flight = InFlightPolicy::Requeue;
    }
    b = b.queue(queue);
    if let Some(path) = &a.rpc_id {
        b = b.correlate_json(&path.text);
        if let Some(t) = a.rpc_timeout {
            b = b.acks(AckConfig::default().timeout(Some(t)));
        }
    }
    if a.no_compression {
        b = b.compression(None);
    }
    if let Some(path) = &a.ca {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
        b = b.add_root_certificates_pem(&pem);
    }
    b.build().map_err(|e| e.to_string())
}

/// Reads stdin on its own thread (a blocking read cannot be cancelled; the thread dies with the
/// process). The bounded channel passes the client's backpressure on to the reads.
fn spawn_stdin_reader(tx: mpsc::Sender<Input>) {
    let spawned = std::thread::Builder::new().name("stdin".into()).spawn(move || {
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        loop {
            let mut line = Vec::new();
            match lock.read_until(b'\n', &mut line) {
                Ok(0) => {
                    let _ = tx.blocking_send(Input::End(None));
                    return;
                }
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    if tx.blocking_send(Input::Line(line)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Input::End(Some(e)));
                    return;
                }
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the stdin reader; nothing will be sent");
    }
}

/// `1 message`, `2 messages`.
pub(crate) fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        let ms = d.as_secs_f64() * 1e3;
        if ms < 10.0 { format!("{ms:.1} ms") } else { format!("{ms:.0} ms") }
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Idle => "idle",
        State::Connecting => "connecting",
        State::Connected => "connected",
        State::Reconnecting => "reconnecting",
        State::Closing => "closing",
        State::Closed => "closed",
        State::Failed => "failed",
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Sent => "sent",
        Outcome::Dropped => "dropped",
        Outcome::Expired => "expired",
        Outcome::Abandoned => "abandoned",
        Outcome::Aborted => "aborted",
        Outcome::Acked => "acked",
        Outcome::TimedOut => "timed_out",
        // An outcome added to the library after this program: named, not mistaken for another.
        _ => "other",
    }
}

/// The exit code and the one line for a session that gave up.
pub(crate) fn failure(reason: &FailReason) -> (u8, String) {
    match reason {
        FailReason::Fatal(c) => (exit::FATAL, format!("{c} (fatal: not retried)")),
        FailReason::RetriesExhausted { .. } | FailReason::BudgetExhausted { .. } => (exit::RETRIES, reason.to_string()),
        _ => (exit::IO, reason.to_string()),
    }
}

fn status_text(state: State, s: &Stats) -> String {
    let rtt = s.rtt.ewma.map_or_else(|| "-".to_owned(), fmt_duration);
    format!(
        "[{}] rtt {rtt} | reconnects {} | queue {} | sent {} | received {}",
        state_name(state),
        s.reconnects,
        s.queue_len,
        s.messages_sent,
        s.messages_received
    )
}

/// Prints events, human-readable or as JSON lines; remembers what the exit code needs.
struct Printer {
    json: bool,
    /// Every endpoint's URL (redacted), and its proxy.
    endpoints: Vec<(String, Option<String>)>,
    start: Instant,
    console: Console,
    /// Why the session went to `Reconnecting`, and whether it was connected: printed with the retry.
    pending_loss: Option<(bool, Cause)>,
    /// Why the last attempt or connection failed.
    last_failure: Option<Cause>,
    requeued: u64,
    aborted: u64,
    exit: Option<u8>,
    stdout_closed: bool,
    connected_once: bool,
    /// `--rpc-id`: requests answered, and failed.
    requests: u64,
    failed_requests: u64,
}

impl Printer {
    fn t(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn emit_json(&mut self, line: String) {
        if self.console.out(line.as_bytes()).is_err() {
            self.stdout_closed = true;
        }
    }

    fn print_message(&mut self, m: &Message) {
        if !self.json && self.console.out(m.payload()).is_err() {
            self.stdout_closed = true;
        }
    }

    fn event(&mut self, ev: Event) {
        if self.json {
            self.json_event(&ev);
        }
        match ev {
            Event::Message(m) => self.print_message(&m),
            Event::StateChanged { from, to: State::Reconnecting, cause } => {
                self.last_failure = Some(cause.clone());
                self.pending_loss = Some((from == State::Connected, cause));
            }
            Event::Connected { .. } if self.json => self.connected_once = true,
            Event::Connected { info, reconnect, .. } => {
                self.connected_once = true;
                let what = if reconnect { "reconnected to" } else { "connected to" };
                let url = self.endpoints.get(info.endpoint).map_or("?", |(u, _)| u.as_str());
                let via = info.proxy.as_ref().map(|p| format!(" via {p}")).unwrap_or_default();
                // "in 3.1 ms: tcp 0.2 ms, tls 2.0 ms, websocket 0.9 ms"
                let phases: Vec<String> = info
                    .phases
                    .iter()
                    .map(|(p, d)| {
                        let name = if *p == ConnectPhase::Handshake { "websocket" } else { p.name() };
                        format!("{name} {}", fmt_duration(*d))
                    })
                    .collect();
                let phases = if phases.is_empty() { String::new() } else { format!(": {}", phases.join(", ")) };
                let compression = info.compression.map(|c| format!("; {c}")).unwrap_or_default();
                self.console
                    .err(format_args!("{what} {url}{via} (in {}{phases}{compression})", fmt_duration(info.handshake)));
            }
            Event::RetryScheduled { attempt, delay, .. } => {
                let requeued = std::mem::take(&mut self.requeued);
                if let (false, Some((was_connected, cause))) = (self.json, self.pending_loss.take()) {
                    let mut line = if was_connected {
                        format!("connection lost: {cause}")
                    } else {
                        format!("attempt {} failed: {cause}", attempt.saturating_sub(1).max(1))
                    };
                    if requeued > 0 {
                        line.push_str(&format!("; {} requeued", count(requeued, "in-flight message")));
                    }
                    line.push_str(&format!("; retrying in {}", fmt_duration(delay)));
                    self.console.err(line);
                }
            }
            Event::Requeued { .. } => self.requeued += 1,
            Event::Outcome { id, outcome } => match outcome {
                // A request's response (or its failure) is printed as its answer.
                Outcome::Sent | Outcome::Acked => {}
                Outcome::Aborted => self.aborted += 1,
                other if !self.json => {
                    self.console.err(format_args!("message {id} {}", outcome_name(other)));
                }
                _ => {}
            },
            Event::Failed(reason) => {
                let (code, line) = failure(&reason);
                self.console.err(format_args!("error: {line}"));
                self.exit = Some(code);
            }
            Event::Closed { cause, .. } => {
                self.exit = Some(if cause == Cause::CloseTimeout {
                    self.console.err("error: the close handshake timed out");
                    exit::IO
                } else {
                    exit::OK
                });
            }
            _ => {}
        }
    }

    fn json_event(&mut self, ev: &Event) {
        let t = self.t();
        let line = match ev {
            Event::StateChanged { from, to, cause } => Line::event("state", t)
                .str("from", state_name(*from))
                .str("to", state_name(*to))
                .str("cause", &cause.to_string())
                .finish(),
            Event::Connected { transport, attempt, reconnect, info } => {
                let mut o = Line::event("connected", t);
                o.int("transport", transport.0)
                    .int("attempt", u64::from(*attempt))
                    .num("handshake_ms", info.handshake.as_secs_f64() * 1e3)
                    .bool("reconnect", *reconnect)
                    .opt_str("subprotocol", info.subprotocol.as_deref())
                    .opt_str("compression", info.compression.map(|c| c.to_string()).as_deref())
                    .int("endpoint", info.endpoint as u64)
                    .opt_str("url", self.endpoints.get(info.endpoint).map(|(u, _)| u.as_str()))
                    .opt_str("proxy", info.proxy.as_deref());
                // `handshake_ms` is the whole attempt (as before phases existed): the upgrade is `websocket_ms`.
                for (phase, d) in &info.phases {
                    let name = if *phase == ConnectPhase::Handshake { "websocket" } else { phase.name() };
                    o.num(&format!("{name}_ms"), d.as_secs_f64() * 1e3);
                }
                o.finish()
            }
            Event::Disconnected { cause, next_attempt_at, .. } => Line::event("disconnected", t)
                .str("cause", &cause.to_string())
                .opt_num(
                    "next_attempt_in_ms",
                    next_attempt_at.map(|at| at.saturating_duration_since(Instant::now()).as_secs_f64() * 1e3),
                )
                .finish(),
            Event::RetryScheduled { attempt, delay, .. } => Line::event("retry_scheduled", t)
                .int("attempt", u64::from(*attempt))
                .num("delay_ms", delay.as_secs_f64() * 1e3)
                .finish(),
            Event::Message(m) => {
                let mut o = Line::event("message", t);
                match (m.kind(), m.as_text()) {
                    (MessageKind::Text, Some(text)) => o.str("kind", "text").str("data", text),
                    _ => o.str("kind", "binary").str("hex", &json_line::hex(m.payload())),
                };
                o.finish()
            }
            Event::Outcome { id, outcome } => {
                Line::event("outcome", t).int("id", id.0).str("outcome", outcome_name(*outcome)).finish()
            }
            Event::Requeued { id } => Line::event("requeued", t).int("id", id.0).finish(),
            Event::QueueUnblocked => Line::event("queue_unblocked", t).finish(),
            Event::Failed(reason) => {
                let kind = match reason {
                    FailReason::Fatal(_) => "fatal",
                    FailReason::RetriesExhausted { .. } => "retries_exhausted",
                    FailReason::BudgetExhausted { .. } => "budget_exhausted",
                    _ => "other",
                };
                Line::event("failed", t).str("kind", kind).str("reason", &reason.to_string()).finish()
            }
            Event::Closed { cause, .. } => Line::event("closed", t).str("cause", &cause.to_string()).finish(),
            other => Line::event("other", t).str("debug", &format!("{other:?}")).finish(),
        };
        self.emit_json(line);
    }

    /// One `--rpc-id` request's end, in request order: the response on stdout, or the failure.
    fn answer(&mut self, a: rpc::Answer) {
        self.requests += 1;
        let latency_ms = a.latency.as_secs_f64() * 1e3;
        if self.json {
            let mut o = Line::event(if a.result.is_ok() { "response" } else { "request_failed" }, self.t());
            o.int("line", a.line).field("id", a.id).num("latency_ms", (latency_ms * 1e3).round() / 1e3);
            match a.result {
                Ok(response) => o.field("response", response),
                Err(e) => {
                    self.failed_requests += 1;
                    o.str("error", &e)
                }
            };
            let line = o.finish();
            self.emit_json(line);
            return;
        }
        match a.result {
            Ok(response) => {
                if self.console.out(response.to_string().as_bytes()).is_err() {
                    self.stdout_closed = true;
                }
            }
            Err(e) => {
                self.failed_requests += 1;
                self.console.err(format_args!("request on line {} (id {}) failed: {e}", a.line, a.id));
            }
        }
    }

    fn stats_json(&mut self, s: &Stats, code: u8) {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        let line = Line::event("exit", self.t())
            .int("code", u64::from(code))
            .int("messages_accepted", s.messages_accepted)
            .int("messages_sent", s.messages_sent)
            .int("messages_received", s.messages_received)
            .int("messages_aborted", s.messages_aborted)
            .int("messages_abandoned", s.messages_abandoned)
            .int("messages_requeued", s.messages_requeued)
            .int("messages_acked", s.messages_acked)
            .int("messages_redelivered", s.messages_redelivered)
            .int("requests", self.requests)
            .int("requests_failed", self.failed_requests)
            .int("attempts", s.attempts)
            .int("reconnects", s.reconnects)
            .opt_num("rtt_ms", ms(s.rtt.ewma))
            .opt_num("rtt_min_ms", ms(s.rtt.min))
            .opt_num("rtt_max_ms", ms(s.rtt.max))
            .finish();
        self.emit_json(line);
    }
}

/// Runs `tether connect`; returns the exit code.
pub(crate) async fn run(args: ConnectArgs) -> u8 {
    let config = match build(&args) {
        Ok(c) => c,
        Err(line) => {
            crate::error_line(line);
            return exit::USAGE;
        }
    };
    let endpoints: Vec<(String, Option<String>)> =
        config.endpoints().zip(config.proxies()).map(|(u, p)| (u.to_owned(), p.map(ToString::to_string))).collect();
    let start = Instant::now();
    let (client, mut events) = match tether_tokio::connect(config) {
        Ok(pair) => pair,
        Err(e) => {
            crate::error_line(e);
            return exit::IO;
        }
    };

    let (line_tx, mut line_rx) = mpsc::channel::<Input>(64);
    spawn_stdin_reader(line_tx);
    // Sends stdin lines in order, waiting while the queue is full; reports the end of stdin.
    let (end_tx, mut end_rx) = mpsc::channel::<Option<std::io::Error>>(1);
    // `--rpc-id`: the answers, in request order; all of them are sent before the end of stdin is.
    let (answer_tx, mut answer_rx) = mpsc::channel::<rpc::Answer>(64);
    let mut answers_open = args.rpc_id.is_some();
    let sender = client.clone();
    if let Some(path) = args.rpc_id.clone() {
        tokio::spawn(rpc::run(sender, path.fields, args.rpc_retry, line_rx, answer_tx, end_tx));
    } else {
        drop(answer_tx);
        tokio::spawn(async move {
            let mut warned = false;
            while let Some(input) = line_rx.recv().await {
                match input {
                    Input::Line(bytes) => {
                        let msg = match String::from_utf8(bytes) {
                            Ok(text) => Message::text(text),
                            Err(e) => {
                                if !warned {
                                    warned = true;
                                    crate::error_line("stdin is not UTF-8: such lines are sent as binary messages");
                                }
                                Message::binary(e.into_bytes())
                            }
                        };
                        // Refused only once the session is closing or over: stop reading.
                        if sender.send(msg).await.is_err() {
                            break;
                        }
                    }
                    Input::End(err) => {
                        let _ = end_tx.send(err).await;
                        break;
                    }
                }
            }
        });
    }

    let mut p = Printer {
        json: args.json,
        endpoints,
        start,
        console: Console::new(!args.json),
        pending_loss: None,
        last_failure: None,
        requeued: 0,
        aborted: 0,
        exit: None,
        stdout_closed: false,
        connected_once: false,
        requests: 0,
        failed_requests: 0,
    };
    let mut sigint = Box::pin(tokio::signal::ctrl_c());
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stdin_done = false;
    let mut closing = false;
    let mut io_error: Option<String> = None;
    // The end-of-stdin rules (`tether connect --help`): how long replies are awaited, from when.
    let linger = args.linger;
    let mut quiet_since: Option<Instant> = None;
    let mut linger_timer = Box::pin(tokio::time::sleep(Duration::ZERO));
    let mut linger_armed = false;
    // Stopped by the end-of-stdin rule while not connected: the exit code and the line to print.
    let mut gave_up: Option<(u8, String)> = None;

    let start_close = |closing: &mut bool| {
        if !*closing {
            *closing = true;
            let c = client.clone();
            tokio::spawn(async move {
                // Already closed or failed: nothing to do.
                let _ = c.close(1000, "bye").await;
            });
        }
    };

    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(ev) => {
                    if matches!(ev, Event::Message(_)) && quiet_since.is_some() {
                        // A reply while lingering: wait for the next one again.
                        quiet_since = Some(Instant::now());
                    }
                    p.event(ev)
                }
                None => break,
            },
            _ = &mut sigint => {
                if closing {
                    p.console.done();
                    crate::error_line("interrupted");
                    return exit::INTERRUPTED;
                }
                if !p.json {
                    p.console.err("closing (Ctrl-C again to stop at once)");
                }
                start_close(&mut closing);
                sigint = Box::pin(tokio::signal::ctrl_c());
            }
            answer = answer_rx.recv(), if answers_open => match answer {
                Some(a) => p.answer(a),
                None => answers_open = false,
            },
            end = end_rx.recv(), if !stdin_done => {
                // Every answer was handed over before the end: print them first.
                while let Ok(a) = answer_rx.try_recv() {
                    p.answer(a);
                }
                stdin_done = true;
                if let Some(Some(e)) = end {
                    io_error = Some(format!("error: reading stdin failed: {e}"));
                    start_close(&mut closing);
                }
            }
            _ = &mut linger_timer, if linger_armed => linger_armed = false,
            _ = tick.tick() => {
                let s = client.stats();
                p.console.status(&status_text(client.state(), &s));
            }
        }
        if p.stdout_closed && !closing {
            io_error = Some("error: stdout was closed".into());
            start_close(&mut closing);
        }
        if !stdin_done || closing || client.stats().queue_len > 0 {
            // Messages still queued at the end of stdin are sent first, reconnecting as needed.
            continue;
        }
        let now = Instant::now();
        match client.state() {
            State::Connected => {
                let since = *quiet_since.get_or_insert(now);
                let deadline = since + linger;
                if now >= deadline {
                    start_close(&mut closing);
                } else if !linger_armed || linger_timer.deadline() != deadline.into() {
                    linger_timer.as_mut().reset(deadline.into());
                    linger_armed = true;
                }
            }
            // Not connected, nothing to send: no reason to keep trying.
            State::Reconnecting if p.connected_once => {
                if !p.json {
                    p.console.err("not reconnecting: stdin has ended and everything was sent");
                }
                start_close(&mut closing);
            }
            State::Reconnecting => {
                let line = format!(
                    "error: could not connect, and stdin ended with nothing to send{}",
                    p.last_failure.as_ref().map(|c| format!("; last failure: {c}")).unwrap_or_default()
                );
                gave_up = Some((exit::RETRIES, line));
                start_close(&mut closing);
            }
            // An attempt in progress (bounded by the connect timeout), or the session is over.
            _ => {}
        }
    }

    p.console.done();
    let stats = client.stats();
    if p.aborted > 0 {
        let what = if p.aborted == 1 { "queued message was" } else { "queued messages were" };
        crate::error_line(format_args!("{} {what} not sent (aborted by the close)", p.aborted));
    }
    let code = match (p.exit, io_error) {
        _ if let Some((code, line)) = gave_up => {
            crate::error_line(line);
            code
        }
        (Some(code), _) if code != exit::OK => code,
        (_, Some(line)) => {
            crate::error_line(line);
            exit::IO
        }
        (Some(code), None) => code,
        (None, None) => exit::IO,
    };
    let code = if code == exit::OK && p.failed_requests > 0 {
        crate::error_line(format_args!("{} of {} failed", p.failed_requests, count(p.requests, "request")));
        exit::IO
    } else {
        code
    };
    if p.json {
        p.stats_json(&stats, code);
    } else if code == exit::OK {
        let rtt = stats.rtt.ewma.map_or_else(|| "-".to_owned(), fmt_duration);
        crate::error_line(format_args!(
            "closed: sent {}, received {}, reconnects {}, rtt {rtt}",
            stats.messages_sent, stats.messages_received, stats.reconnects
        ));
    }
    code
}
