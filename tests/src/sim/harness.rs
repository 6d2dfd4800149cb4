//! Plays the driver's side of the core: every input goes through here, is followed by a drain, and is
//! checked. Shared by the simulator (which drains everything) and the fuzz targets (which cap the
//! action drain).

use std::time::{Duration, Instant};

use tether_core::{
    AckKey, Action, CloseMode, CommandError, Config, ConfigError, Event, Message, MessageId, NetworkHint, SendError,
    Session, Tracking, TransportEvent, TransportId,
};

use super::coverage::Coverage;
use super::invariants::{Checker, Violation, ensure, names};

/// An optional trace of everything that happened, stamped with virtual milliseconds since the epoch.
#[derive(Debug, Default)]
pub struct Trace {
    lines: Option<Vec<String>>,
}

impl Trace {
    /// A trace that records (`on`) or ignores everything.
    pub fn new(on: bool) -> Self {
        Self { lines: on.then(Vec::new) }
    }

    /// Whether lines are recorded.
    pub fn on(&self) -> bool {
        self.lines.is_some()
    }

    /// Records a line built by `f` (only called when recording).
    pub fn line(&mut self, at: Duration, f: impl FnOnce() -> String) {
        if let Some(l) = &mut self.lines {
            l.push(format!("{:>10.3}s  {}", at.as_secs_f64(), f()));
        }
    }

    /// The recorded lines.
    pub fn lines(&self) -> &[String] {
        self.lines.as_deref().unwrap_or(&[])
    }
}

/// An event for the trace, with instants shown relative to the epoch (so traces compare across runs).
fn fmt_event(e: &Event, epoch: Instant) -> String {
    let rel = |t: Instant| format!("+{:?}", t.saturating_duration_since(epoch));
    match e {
        Event::RetryScheduled { attempt, delay, at, .. } => {
            format!("RetryScheduled {{ attempt: {attempt}, delay: {delay:?}, at: {} }}", rel(*at))
        }
        Event::Disconnected { cause, next_attempt_at, .. } => {
            format!("Disconnected {{ cause: {cause:?}, next_attempt_at: {:?} }}", next_attempt_at.map(rel))
        }
        // What the driver learned opening it is not the core's doing: only the handshake time it records.
        Event::Connected { transport, attempt, reconnect, info } => format!(
            "Connected {{ transport: {transport:?}, attempt: {attempt}, reconnect: {reconnect}, handshake: {:?} }}",
            info.handshake
        ),
        e => format!("{e:?}"),
    }
}

/// A session with its checker, clock, coverage and trace.
#[derive(Debug)]
pub struct Harness {
    /// The session under test.
    pub s: Session,
    /// The invariant checker.
    pub chk: Checker,
    /// The virtual epoch: time is only ever added to it.
    pub epoch: Instant,
    /// The current virtual time; never goes back.
    pub now: Instant,
    /// What was reached.
    pub cov: Coverage,
    /// What happened.
    pub trace: Trace,
    /// Most actions drained after one input (`usize::MAX`: all).
    pub action_cap: usize,
    /// Events seen in the last drain.
    pub events: Vec<Event>,
    /// Take actions and events in batches (`drain_actions`, `drain_events`), as the adapter's driver does,
    /// instead of one `poll_action`/`poll_event` at a time.
    pub batched: bool,
}

impl Harness {
    /// A session for `cfg`, created at `epoch`.
    pub fn new(cfg: Config, epoch: Instant, trace: bool) -> Result<Self, ConfigError> {
        let s = Session::new(cfg.clone(), epoch)?;
        Ok(Self {
            s,
            chk: Checker::new(&cfg, epoch),
            epoch,
            now: epoch,
            cov: Coverage::default(),
            trace: Trace::new(trace),
            action_cap: usize::MAX,
            events: Vec::new(),
            batched: false,
        })
    }

    /// Virtual time since the epoch.
    pub fn elapsed(&self) -> Duration {
        self.now - self.epoch
    }

    /// Moves the clock to `t` (never back).
    pub fn advance_to(&mut self, t: Instant) {
        self.now = self.now.max(t);
    }

    fn log(&mut self, f: impl FnOnce() -> String) {
        let at = self.elapsed();
        self.trace.line(at, f);
    }

    fn drain_events(&mut self) -> Result<(), Violation> {
        let batch: Vec<Event> = if self.batched {
            let mut buf = std::collections::VecDeque::new();
            self.s.drain_events(&mut buf, usize::MAX);
            buf.into()
        } else {
            std::iter::from_fn(|| self.s.poll_event()).collect()
        };
        for e in batch {
            self.cov.event(&e);
            let epoch = self.epoch;
            self.trace.line(self.now - epoch, || format!("  event  {}", fmt_event(&e, epoch)));
            self.chk.on_event(&e)?;
            self.events.push(e);
        }
        Ok(())
    }

    /// Drains events and up to `action_cap` actions, checking each, then checks the session.
    fn drain(&mut self) -> Result<Vec<Action>, Violation> {
        self.events.clear();
        let mut actions = Vec::new();
        loop {
            self.drain_events()?;
            if actions.len() >= self.action_cap {
                break;
            }
            let current = self.s.transport();
            let batch: Vec<Action> = if self.batched {
                let mut buf = std::collections::VecDeque::new();
                self.s.drain_actions(&mut buf, self.action_cap - actions.len());
                buf.into()
            } else {
                self.s.poll_action().into_iter().collect()
            };
            if batch.is_empty() {
                break;
            }
            for a in batch {
                self.cov.action(&a);
                self.trace.line(self.now - self.epoch, || format!("  action {a:?}"));
                self.chk.on_action(&a, current)?;
                actions.push(a);
            }
        }
        self.drain_events()?;
        self.chk.after_input(&self.s)?;
        Ok(actions)
    }

    /// Drains again (e.g. after a capped drain) without an input.
    pub fn drain_more(&mut self) -> Result<Vec<Action>, Violation> {
        self.chk.before_input(&self.s, self.now, false);
        self.drain()
    }

    /// `connect`; the error, if any, is part of the result.
    pub fn connect(&mut self) -> Result<(Result<(), CommandError>, Vec<Action>), Violation> {
        self.log(|| "user   connect".into());
        self.chk.before_input(&self.s, self.now, false);
        let r = self.s.connect(self.now);
        self.chk.on_connect(r.is_ok());
        Ok((r, self.drain()?))
    }

    /// `send`.
    pub fn send(&mut self, m: Message) -> Result<(Result<MessageId, SendError>, Vec<Action>), Violation> {
        self.chk.before_input(&self.s, self.now, false);
        let r = self.s.send(self.now, m.clone());
        self.log(|| format!("user   send {m:?} -> {:?}", r.as_ref().map_err(|_| "refused")));
        if let Err(e) = &r {
            ensure!(e.clone().into_message() == m, names::OUTCOME, "a refused message was not handed back intact");
        }
        self.chk.on_send(&m, r.as_ref().ok().copied(), None)?;
        Ok((r, self.drain()?))
    }

    /// `send_tracked`.
    pub fn send_tracked(
        &mut self,
        m: Message,
        tracking: Tracking,
    ) -> Result<(Result<MessageId, SendError>, Vec<Action>), Violation> {
        self.chk.before_input(&self.s, self.now, false);
        let redeliver = tracking.redelivers();
        let key = tracking.key.clone();
        let r = self.s.send_tracked(self.now, m.clone(), tracking);
        self.log(|| format!("user   send_tracked {key} {m:?} -> {:?}", r.as_ref().map_err(|e| e.to_string())));
        if let Err(e) = &r {
            ensure!(e.clone().into_message() == m, names::OUTCOME, "a refused message was not handed back intact");
        }
        self.chk.on_send(&m, r.as_ref().ok().copied(), Some(redeliver))?;
        Ok((r, self.drain()?))
    }

    /// `ack`: the application acknowledges `key` by hand.
    pub fn ack(&mut self, key: &AckKey) -> Result<(Option<MessageId>, Vec<Action>), Violation> {
        self.chk.before_input(&self.s, self.now, false);
        let r = self.s.ack(self.now, key);
        self.log(|| format!("user   ack {key} -> {r:?}"));
        Ok((r, self.drain()?))
    }

    /// `cancel`.
    pub fn cancel(&mut self, key: &AckKey) -> Result<(Option<MessageId>, Vec<Action>), Violation> {
        self.chk.before_input(&self.s, self.now, false);
        let r = self.s.cancel(self.now, key);
        self.log(|| format!("user   cancel {key} -> {r:?}"));
        Ok((r, self.drain()?))
    }

    /// `set_preamble`.
    pub fn set_preamble(&mut self, p: Vec<Message>) -> Result<Vec<Action>, Violation> {
        self.log(|| format!("user   set_preamble {p:?}"));
        self.chk.before_input(&self.s, self.now, false);
        self.s.set_preamble(p);
        self.drain()
    }

    /// `close`.
    pub fn close(
        &mut self,
        code: u16,
        reason: &str,
        mode: CloseMode,
    ) -> Result<(Result<(), CommandError>, Vec<Action>), Violation> {
        self.chk.before_input(&self.s, self.now, false);
        let r = self.s.close(self.now, code, reason, mode);
        self.log(|| format!("user   close {code} {mode:?} -> {r:?}"));
        Ok((r, self.drain()?))
    }

    /// `handle_timeout(now)`.
    pub fn timeout(&mut self) -> Result<Vec<Action>, Violation> {
        self.log(|| "timer  handle_timeout".into());
        self.chk.before_input(&self.s, self.now, true);
        self.s.handle_timeout(self.now);
        self.drain()
    }

    /// `handle_timeout(now)` before the next deadline: must do nothing.
    pub fn early_timeout(&mut self) -> Result<(), Violation> {
        self.chk.before_input(&self.s, self.now, false);
        let before = self.s.poll_timeout();
        if before.is_none_or(|t| t <= self.now) {
            return Ok(());
        }
        self.log(|| "timer  early handle_timeout".into());
        self.s.handle_timeout(self.now);
        let (a, e) = (self.s.poll_action(), self.s.poll_event());
        ensure!(a.is_none() && e.is_none(), names::SPURIOUS, "early handle_timeout gave {a:?} / {e:?}");
        ensure!(self.s.poll_timeout() == before, names::SPURIOUS, "early handle_timeout moved poll_timeout");
        Ok(())
    }

    /// `handle_transport`.
    pub fn transport(&mut self, id: TransportId, ev: TransportEvent) -> Result<Vec<Action>, Violation> {
        self.log(|| match &ev {
            // Only the handshake time of what the driver learned is the core's business (see fmt_event).
            TransportEvent::Opened(info) => format!("net    {id} Opened(handshake {:?})", info.handshake),
            ev => format!("net    {id} {ev:?}"),
        });
        self.chk.before_input(&self.s, self.now, false);
        self.chk.on_transport_input(id, &ev);
        self.s.handle_transport(self.now, id, ev);
        self.drain()
    }

    /// `handle_network`.
    pub fn network(&mut self, hint: NetworkHint) -> Result<Vec<Action>, Violation> {
        self.log(|| format!("hint   {hint:?}"));
        self.chk.before_input(&self.s, self.now, false);
        self.s.handle_network(self.now, hint);
        self.drain()
    }
}
