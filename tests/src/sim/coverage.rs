//! What a run reached: counts of every state transition, event, outcome, action and cause kind, so we
//! can see that the schedules exercise everything.

use std::fmt;

use tether_core::{Action, Cause, Event};

use super::spec::{OUTCOMES, STATES, legal_transition, outcome_index, state_index};

/// Names of the event kinds, in [`event_index`] order.
pub const EVENT_KINDS: [&str; 12] = [
    "StateChanged",
    "Connected",
    "Disconnected",
    "RetryScheduled",
    "Message",
    "Outcome",
    "Requeued",
    "QueueUnblocked",
    "Failed",
    "Closed",
    "Redelivered",
    "Response",
];

/// Names of the action kinds, in [`action_index`] order.
pub const ACTION_KINDS: [&str; 5] = ["Open", "Send", "Ping", "Close", "Abort"];

/// Names of the cause kinds, in [`cause_index`] order.
pub const CAUSE_KINDS: [&str; 12] = [
    "ConnectRequested",
    "CloseRequested",
    "Opened",
    "OpenFailed",
    "ConnectTimeout",
    "RemoteClosed",
    "TransportFailed",
    "Heartbeat",
    "BackoffElapsed",
    "Network",
    "CloseCompleted",
    "CloseTimeout",
];

/// Index of an event kind in [`EVENT_KINDS`].
pub fn event_index(e: &Event) -> usize {
    match e {
        Event::StateChanged { .. } => 0,
        Event::Connected { .. } => 1,
        Event::Disconnected { .. } => 2,
        Event::RetryScheduled { .. } => 3,
        Event::Message(_) => 4,
        Event::Outcome { .. } => 5,
        Event::Requeued { .. } => 6,
        Event::QueueUnblocked => 7,
        Event::Failed(_) => 8,
        Event::Closed { .. } => 9,
        Event::Redelivered { .. } => 10,
        Event::Response { .. } => 11,
        other => panic!("an event kind the simulator does not count yet: {other:?}; add it to EVENT_KINDS"),
    }
}

/// Index of an action kind in [`ACTION_KINDS`].
pub fn action_index(a: &Action) -> usize {
    match a {
        Action::Open { .. } => 0,
        Action::Send { .. } => 1,
        Action::Ping { .. } => 2,
        Action::Close { .. } => 3,
        Action::Abort { .. } => 4,
    }
}

/// Index of a cause kind in [`CAUSE_KINDS`].
pub fn cause_index(c: &Cause) -> usize {
    match c {
        Cause::ConnectRequested => 0,
        Cause::CloseRequested => 1,
        Cause::Opened => 2,
        Cause::OpenFailed(_) => 3,
        Cause::ConnectTimeout { .. } => 4,
        Cause::RemoteClosed(_) => 5,
        Cause::TransportFailed(_) => 6,
        Cause::Heartbeat(_) => 7,
        Cause::BackoffElapsed => 8,
        Cause::Network(_) => 9,
        Cause::CloseCompleted => 10,
        Cause::CloseTimeout => 11,
        other => panic!("a cause the simulator does not count yet: {other:?}; add it to CAUSE_KINDS"),
    }
}

/// Counters over one or many runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// `transitions[from][to]`, indexed as [`STATES`].
    pub transitions: [[u64; 7]; 7],
    /// Per [`EVENT_KINDS`].
    pub events: [u64; 12],
    /// Per [`OUTCOMES`].
    pub outcomes: [u64; 7],
    /// Per [`ACTION_KINDS`].
    pub actions: [u64; 5],
    /// Causes of state changes, per [`CAUSE_KINDS`].
    pub causes: [u64; 12],
    /// Runs counted.
    pub runs: u64,
    /// Simulation steps over all runs.
    pub steps: u64,
    /// Messages the simulated server received twice (allowed only after a reported requeue).
    pub duplicates: u64,
    /// Runs that ended in `Failed`.
    pub ended_failed: u64,
    /// Time jumps simulated.
    pub time_jumps: u64,
    /// Liveness windows checked (the server became healthy and the client had to come back).
    pub liveness_checks: u64,
    /// Dead links the heartbeat had to detect within its bound.
    pub dead_link_checks: u64,
    /// Runs that sent tracked messages.
    pub tracked_runs: u64,
    /// Acknowledgements the application gave by hand (`Session::ack`), and those that found nothing.
    pub app_acks: u64,
    /// Acknowledgements (by hand or correlated) that found nothing to acknowledge.
    pub unknown_acks: u64,
    /// Acknowledgements that ended a message waiting in line for its redelivery.
    pub acks_while_requeued: u64,
    /// Tracked messages cancelled.
    pub cancels: u64,
}

impl Coverage {
    /// Counts an event.
    pub fn event(&mut self, e: &Event) {
        self.events[event_index(e)] += 1;
        match e {
            Event::StateChanged { from, to, cause } => {
                self.transitions[state_index(*from)][state_index(*to)] += 1;
                self.causes[cause_index(cause)] += 1;
            }
            Event::Outcome { outcome, .. } => {
                let Some(i) = outcome_index(*outcome) else {
                    panic!("an outcome the simulator does not count yet: {outcome:?}; add it to spec::OUTCOMES")
                };
                self.outcomes[i] += 1;
            }
            _ => {}
        }
    }

    /// Counts an action.
    pub fn action(&mut self, a: &Action) {
        self.actions[action_index(a)] += 1;
    }

    /// Adds another run's counters.
    pub fn merge(&mut self, o: &Coverage) {
        for (a, b) in self.transitions.iter_mut().flatten().zip(o.transitions.iter().flatten()) {
            *a += b;
        }
        let pairs = [
            (&mut self.events[..], &o.events[..]),
            (&mut self.outcomes[..], &o.outcomes[..]),
            (&mut self.actions[..], &o.actions[..]),
            (&mut self.causes[..], &o.causes[..]),
        ];
        for (a, b) in pairs {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.runs += o.runs;
        self.steps += o.steps;
        self.duplicates += o.duplicates;
        self.ended_failed += o.ended_failed;
        self.time_jumps += o.time_jumps;
        self.liveness_checks += o.liveness_checks;
        self.dead_link_checks += o.dead_link_checks;
        self.tracked_runs += o.tracked_runs;
        self.app_acks += o.app_acks;
        self.unknown_acks += o.unknown_acks;
        self.acks_while_requeued += o.acks_while_requeued;
        self.cancels += o.cancels;
    }

    /// What was never reached: legal transitions, events, outcomes, actions and causes with a zero
    /// count. Empty when the runs exercised everything.
    pub fn missing(&self) -> Vec<String> {
        let mut out = vec![];
        for from in STATES {
            for to in STATES {
                if legal_transition(from, to) && self.transitions[state_index(from)][state_index(to)] == 0 {
                    out.push(format!("transition {from:?} -> {to:?}"));
                }
            }
        }
        let lists: [(&str, &[&str], &[u64]); 3] = [
            ("event", &EVENT_KINDS, &self.events),
            ("action", &ACTION_KINDS, &self.actions),
            ("cause", &CAUSE_KINDS, &self.causes),
        ];
        for (what, names, counts) in lists {
            for (n, c) in names.iter().zip(counts) {
                if *c == 0 {
                    out.push(format!("{what} {n}"));
                }
            }
        }
        for (o, c) in OUTCOMES.iter().zip(self.outcomes) {
            if c == 0 {
                out.push(format!("outcome {o:?}"));
            }
        }
        out
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "runs {}  steps {}", self.runs, self.steps)?;
        writeln!(f, "transitions:")?;
        for from in STATES {
            for to in STATES {
                if legal_transition(from, to) {
                    let n = self.transitions[state_index(from)][state_index(to)];
                    writeln!(f, "  {:>12} -> {:<12} {n}", format!("{from:?}"), format!("{to:?}"))?;
                }
            }
        }
        writeln!(f, "events:")?;
        for (n, c) in EVENT_KINDS.iter().zip(self.events) {
            writeln!(f, "  {n:<16} {c}")?;
        }
        writeln!(f, "outcomes:")?;
        for (o, c) in OUTCOMES.iter().zip(self.outcomes) {
            writeln!(f, "  {:<16} {c}", format!("{o:?}"))?;
        }
        writeln!(f, "actions:")?;
        for (n, c) in ACTION_KINDS.iter().zip(self.actions) {
            writeln!(f, "  {n:<16} {c}")?;
        }
        writeln!(f, "causes of state changes:")?;
        for (n, c) in CAUSE_KINDS.iter().zip(self.causes) {
            writeln!(f, "  {n:<16} {c}")?;
        }
        writeln!(
            f,
            "requeue duplicates {}  runs ended Failed {}  time jumps {}  liveness windows {}  dead links {}",
            self.duplicates, self.ended_failed, self.time_jumps, self.liveness_checks, self.dead_link_checks
        )?;
        writeln!(
            f,
            "tracked runs {}  acks by hand {}  unknown acks {}  acks of a message in line again {}  cancels {}",
            self.tracked_runs, self.app_acks, self.unknown_acks, self.acks_while_requeued, self.cancels
        )
    }
}
