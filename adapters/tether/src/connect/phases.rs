//! Timing and reporting the phases of an attempt (DNS, TCP, proxy, TLS, WebSocket handshake), with
//! the optional per-phase timeouts.
//!
//! Each phase that starts is published in a shared cell the driver reads after polling the attempt
//! (it reports changes to the core as `TransportEvent::Progress`, so the core's connect timeout can
//! name the phase); each phase that ends well is logged with its duration for `ConnectInfo::phases`.

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use futures::future::{Either, select};
use tether_core::{ConnectPhase, OpenError};

use crate::runtime::Runtime;

/// Optional timeouts per phase; none by default (the core's overall connect timeout applies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PhaseTimeouts([Option<Duration>; ConnectPhase::all().len()]);

impl PhaseTimeouts {
    pub(crate) fn set(&mut self, phase: ConnectPhase, limit: Option<Duration>) {
        if let Some(i) = index(phase) {
            self.0[i] = limit;
        }
    }

    pub(crate) fn get(&self, phase: ConnectPhase) -> Option<Duration> {
        index(phase).and_then(|i| self.0[i])
    }
}

fn index(phase: ConnectPhase) -> Option<usize> {
    ConnectPhase::all().iter().position(|p| *p == phase)
}

/// The phase published in a progress cell (0: none yet).
pub(crate) fn decode(cell: u8) -> Option<ConnectPhase> {
    ConnectPhase::all().get(usize::from(cell).checked_sub(1)?).copied()
}

/// The phases of one attempt.
pub(crate) struct Phases<'a, R: Runtime> {
    rt: &'a R,
    progress: &'a AtomicU8,
    timeouts: &'a PhaseTimeouts,
    pub(crate) log: Vec<(ConnectPhase, Duration)>,
}

impl<'a, R: Runtime> Phases<'a, R> {
    pub(crate) fn new(rt: &'a R, progress: &'a AtomicU8, timeouts: &'a PhaseTimeouts) -> Self {
        Self { rt, progress, timeouts, log: Vec::with_capacity(ConnectPhase::all().len()) }
    }

    /// Runs `phase`: publishes it, bounds it by its timeout if it has one, and logs its duration.
    pub(crate) async fn run<T>(
        &mut self,
        phase: ConnectPhase,
        fut: impl Future<Output = Result<T, OpenError>>,
    ) -> Result<T, OpenError> {
        if let Some(i) = index(phase) {
            self.progress.store(i as u8 + 1, Ordering::Release);
        }
        let start = self.rt.now();
        let limit = self.timeouts.get(phase).and_then(|d| Some((d, start.checked_add(d)?)));
        let out = match limit {
            None => fut.await,
            Some((after, deadline)) => {
                let timer = self.rt.timer(deadline);
                match select(std::pin::pin!(fut), timer).await {
                    Either::Left((out, _)) => out,
                    Either::Right(_) => Err(OpenError::Timeout { phase, after }),
                }
            }
        };
        if out.is_ok() {
            self.log.push((phase, self.rt.now().saturating_duration_since(start)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_and_timeouts_round_trip() {
        assert_eq!(decode(0), None);
        for (i, p) in ConnectPhase::all().iter().enumerate() {
            assert_eq!(decode(i as u8 + 1), Some(*p));
        }
        assert_eq!(decode(200), None);
        let mut t = PhaseTimeouts::default();
        t.set(ConnectPhase::Tls, Some(Duration::from_secs(2)));
        assert_eq!(t.get(ConnectPhase::Tls), Some(Duration::from_secs(2)));
        assert_eq!(t.get(ConnectPhase::Dns), None);
    }
}
