//! Keepalive: pings on an interval, pong deadlines, RTT samples and dead-link detection.
//!
//! # The rules
//!
//! * While connected, a ping is sent every `interval` (measured from the previous ping), unless a probe
//!   is still waiting for any sign of life: there is at most one unanswered probe outstanding.
//! * A probe's pong is matched by payload (an 8-byte big-endian sequence number). The match gives an RTT
//!   sample. Pongs with other payloads (late, or unsolicited) are only proof of life.
//! * **Any inbound frame is proof of life.** When a probe's deadline passes, the link is alive if anything
//!   arrived since the probe was sent, even if the pong itself is stuck behind a busy stream; so a flood of
//!   inbound messages never causes a false timeout.
//! * Otherwise the probe is missed. After `tolerated_misses + 1` consecutive misses the link is dead; a
//!   missed probe that is tolerated is followed at once by a new one. A dead link is therefore detected at
//!   most `interval + (tolerated_misses + 1) * pong_timeout` after the last sign of life
//!   ([`HeartbeatConfig::detection_bound`]).
//! * Optional receive-idle timeout: no inbound frame at all for `receive_idle` means dead.
//! * **Time jumps.** If a heartbeat deadline is handled more than `late_tolerance` after it was due, the
//!   host was most likely suspended (laptop sleep, a stopped process, a starved runtime): the peer had no
//!   chance to prove anything. So a stale deadline alone never kills the link: a fresh probe is sent with a
//!   full `pong_timeout`, and the receive-idle clock restarts at that moment. Only the probe's answer, or
//!   its absence, decides.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::timer::after;

/// Keepalive settings. See each field for its default; build from [`Default`] and the chainable
/// setters (`HeartbeatConfig::default().interval(d)`), or set fields on a default value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeartbeatConfig {
    /// Time between pings. Default: 15 s.
    pub interval: Duration,
    /// How long to wait for the pong (or any other frame) after a ping. Default: 10 s.
    pub pong_timeout: Duration,
    /// Consecutive missed probes tolerated before the link is declared dead. Default: 0.
    pub tolerated_misses: u32,
    /// Declare the link dead when nothing at all has been received for this long. Default: `None`.
    pub receive_idle: Option<Duration>,
    /// A deadline handled later than this after it was due is treated as a time jump (see the module
    /// documentation). Default: 2 s.
    pub late_tolerance: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15),
            pong_timeout: Duration::from_secs(10),
            tolerated_misses: 0,
            receive_idle: None,
            late_tolerance: Duration::from_secs(2),
        }
    }
}

impl HeartbeatConfig {
    /// The longest a dead link can go undetected after its last sign of life (without time jumps):
    /// `interval + (tolerated_misses + 1) * pong_timeout`.
    pub fn detection_bound(&self) -> Duration {
        let probes = self.pong_timeout.saturating_mul(self.tolerated_misses.saturating_add(1));
        self.interval.saturating_add(probes)
    }
}

/// Why the heartbeat declared a link dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadLink {
    /// Probes went unanswered.
    PongTimeout,
    /// Nothing was received for `receive_idle`.
    ReceiveIdle,
}

/// What the heartbeat wants after a timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Send this ping payload.
    Ping(Bytes),
    /// The link is dead.
    Dead(DeadLink),
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    seq: u64,
    sent_at: Instant,
    deadline: Instant,
}

/// Heartbeat state for one open transport.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    seq: u64,
    probe: Option<Probe>,
    next_ping: Instant,
    last_inbound: Instant,
    /// Start of the receive-idle clock: the last inbound frame, or a resume after a time jump.
    idle_anchor: Instant,
    misses: u32,
    /// Count of deadlines that were handled as time jumps.
    pub(crate) time_jumps: u64,
}

impl Heartbeat {
    /// Starts the heartbeat of a transport opened at `now`. `seq` continues across transports so a pong
    /// from an old connection can never match a new probe.
    pub(crate) fn start(cfg: &HeartbeatConfig, now: Instant, seq: u64) -> Self {
        Self {
            seq,
            probe: None,
            next_ping: after(now, cfg.interval),
            last_inbound: now,
            idle_anchor: now,
            misses: 0,
            time_jumps: 0,
        }
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// The earliest instant at which [`Heartbeat::on_timeout`] has something to do.
    pub(crate) fn deadline(&self, cfg: &HeartbeatConfig) -> Instant {
        let mut d = self.next_ping;
        if let Some(p) = self.probe {
            d = d.min(p.deadline);
        }
        if let Some(idle) = cfg.receive_idle {
            d = d.min(after(self.idle_anchor, idle));
        }
        d
    }

    /// Any inbound frame: proof of life.
    pub(crate) fn on_inbound(&mut self, now: Instant) {
        self.last_inbound = now;
        self.idle_anchor = now;
    }

    /// A pong: proof of life, and an RTT sample if it answers the outstanding probe.
    pub(crate) fn on_pong(&mut self, now: Instant, payload: &[u8]) -> Option<Duration> {
        self.on_inbound(now);
        let p = self.probe?;
        if payload == p.seq.to_be_bytes() {
            self.probe = None;
            self.misses = 0;
            Some(now.saturating_duration_since(p.sent_at))
        } else {
            None
        }
    }

    /// Sends a probe now unless an unanswered one is outstanding (network hints, resume from sleep).
    pub(crate) fn probe_now(&mut self, cfg: &HeartbeatConfig, now: Instant) -> Option<Bytes> {
        if !self.probe_resolved() {
            return None;
        }
        Some(self.send_probe(cfg, now))
    }

    /// No probe is outstanding, or the outstanding one already has its proof of life (a frame arrived
    /// after it left) and waits only to match its pong for an RTT sample. Such a probe must not hold
    /// back the next ping: the schedule then follows the last sign of life, which is what keeps the
    /// detection bound true even when `pong_timeout > interval`.
    fn probe_resolved(&self) -> bool {
        self.probe.is_none_or(|p| self.last_inbound >= p.sent_at)
    }

    fn send_probe(&mut self, cfg: &HeartbeatConfig, now: Instant) -> Bytes {
        self.seq = self.seq.wrapping_add(1);
        self.probe = Some(Probe { seq: self.seq, sent_at: now, deadline: after(now, cfg.pong_timeout) });
        self.next_ping = after(now, cfg.interval);
        Bytes::copy_from_slice(&self.seq.to_be_bytes())
    }

    /// Handles every heartbeat deadline that is due at `now`; returns at most one thing to do.
    pub(crate) fn on_timeout(&mut self, cfg: &HeartbeatConfig, now: Instant) -> Option<Tick> {
        let late = |deadline: Instant| now.saturating_duration_since(deadline) > cfg.late_tolerance;

        if let Some(p) = self.probe.filter(|p| now >= p.deadline) {
            if self.last_inbound >= p.sent_at {
                // Something arrived after the probe left: alive, even if the pong is still queued.
                self.probe = None;
                self.misses = 0;
            } else if late(p.deadline) {
                self.time_jumps += 1;
                self.idle_anchor = now;
                return Some(Tick::Ping(self.send_probe(cfg, now)));
            } else {
                self.misses += 1;
                if self.misses > cfg.tolerated_misses {
                    return Some(Tick::Dead(DeadLink::PongTimeout));
                }
                return Some(Tick::Ping(self.send_probe(cfg, now)));
            }
        }

        if let Some(idle) = cfg.receive_idle {
            let due = after(self.idle_anchor, idle);
            if now >= due {
                if late(due) {
                    self.time_jumps += 1;
                    self.idle_anchor = now;
                    if self.probe.is_none() {
                        return Some(Tick::Ping(self.send_probe(cfg, now)));
                    }
                } else {
                    return Some(Tick::Dead(DeadLink::ReceiveIdle));
                }
            }
        }

        if now >= self.next_ping {
            if self.probe_resolved() {
                return Some(Tick::Ping(self.send_probe(cfg, now)));
            }
            // An unanswered probe is outstanding; its deadline decides. Ping again an interval after.
            self.next_ping = after(now, cfg.interval);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HeartbeatConfig {
        HeartbeatConfig {
            interval: Duration::from_secs(10),
            pong_timeout: Duration::from_secs(5),
            tolerated_misses: 0,
            receive_idle: None,
            late_tolerance: Duration::from_secs(1),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn ping_pong_gives_rtt() {
        let c = cfg();
        let t0 = Instant::now();
        let mut h = Heartbeat::start(&c, t0, 0);
        assert_eq!(h.deadline(&c), t0 + c.interval);
        assert_eq!(h.on_timeout(&c, t0 + ms(9_999)), None);
        let Some(Tick::Ping(p)) = h.on_timeout(&c, t0 + c.interval) else { panic!("expected ping") };
        assert_eq!(h.on_pong(t0 + c.interval + ms(30), b"nope"), None);
        assert_eq!(h.on_pong(t0 + c.interval + ms(40), &p), Some(ms(40)));
        assert_eq!(h.deadline(&c), t0 + c.interval * 2);
    }

    #[test]
    fn missed_pong_is_dead_within_bound() {
        let c = cfg();
        let t0 = Instant::now();
        let mut h = Heartbeat::start(&c, t0, 0);
        assert!(matches!(h.on_timeout(&c, t0 + c.interval), Some(Tick::Ping(_))));
        assert_eq!(h.deadline(&c), t0 + c.interval + c.pong_timeout);
        assert_eq!(h.on_timeout(&c, t0 + c.detection_bound()), Some(Tick::Dead(DeadLink::PongTimeout)));
    }

    #[test]
    fn inbound_traffic_counts_as_life() {
        let c = cfg();
        let t0 = Instant::now();
        let mut h = Heartbeat::start(&c, t0, 0);
        assert!(matches!(h.on_timeout(&c, t0 + c.interval), Some(Tick::Ping(_))));
        h.on_inbound(t0 + c.interval + ms(1));
        assert_eq!(h.on_timeout(&c, t0 + c.interval + c.pong_timeout), None);
    }

    #[test]
    fn tolerated_misses_reprobe() {
        let c = HeartbeatConfig { tolerated_misses: 2, ..cfg() };
        let t0 = Instant::now();
        let mut h = Heartbeat::start(&c, t0, 0);
        let mut t = t0 + c.interval;
        assert!(matches!(h.on_timeout(&c, t), Some(Tick::Ping(_))));
        for _ in 0..2 {
            t += c.pong_timeout;
            assert!(matches!(h.on_timeout(&c, t), Some(Tick::Ping(_))));
        }
        t += c.pong_timeout;
        assert_eq!(t, t0 + c.detection_bound());
        assert_eq!(h.on_timeout(&c, t), Some(Tick::Dead(DeadLink::PongTimeout)));
    }

    #[test]
    fn time_jump_probes_instead_of_killing() {
        let c = cfg();
        let t0 = Instant::now();
        let mut h = Heartbeat::start(&c, t0, 0);
        assert!(matches!(h.on_timeout(&c, t0 + c.interval), Some(Tick::Ping(_))));
        // The host sleeps for an hour: the pong deadline is long past when we next run.
        let wake = t0 + Duration::from_secs(3600);
        let Some(Tick::Ping(p)) = h.on_timeout(&c, wake) else { panic!("expected a fresh probe") };
        assert_eq!(h.time_jumps, 1);
        assert_eq!(h.on_pong(wake + ms(20), &p), Some(ms(20)));
        // And if the fresh probe goes unanswered, the link is dead after a full pong timeout.
        let mut h = Heartbeat::start(&c, t0, 0);
        let _ = h.on_timeout(&c, t0 + c.interval);
        let _ = h.on_timeout(&c, wake);
        assert_eq!(h.on_timeout(&c, wake + c.pong_timeout), Some(Tick::Dead(DeadLink::PongTimeout)));
    }

    #[test]
    fn bound_holds_when_pong_timeout_exceeds_interval() {
        // Probe at 2 s, a data frame at 2.1 s, then silence: dead within the bound after 2.1 s.
        let c = HeartbeatConfig { interval: Duration::from_secs(2), pong_timeout: Duration::from_secs(3), ..cfg() };
        let t0 = Instant::now();
        let mut h = Heartbeat::start(&c, t0, 0);
        assert!(matches!(h.on_timeout(&c, t0 + ms(2_000)), Some(Tick::Ping(_))));
        let life = t0 + ms(2_100);
        h.on_inbound(life);
        let t = loop {
            let t = h.deadline(&c);
            match h.on_timeout(&c, t) {
                Some(Tick::Dead(_)) => break t,
                _ => assert!(t - life <= c.detection_bound(), "still alive at {:?}", t - life),
            }
        };
        assert!(t - life <= c.detection_bound(), "dead after {:?}, bound {:?}", t - life, c.detection_bound());
    }

    #[test]
    fn receive_idle() {
        let c = HeartbeatConfig { receive_idle: Some(Duration::from_secs(3)), ..cfg() };
        let t0 = Instant::now();
        let mut h = Heartbeat::start(&c, t0, 0);
        h.on_inbound(t0 + ms(2_000));
        assert_eq!(h.deadline(&c), t0 + ms(5_000));
        assert_eq!(h.on_timeout(&c, t0 + ms(4_999)), None);
        assert_eq!(h.on_timeout(&c, t0 + ms(5_000)), Some(Tick::Dead(DeadLink::ReceiveIdle)));
        // Late by more than the tolerance: probe instead.
        let mut h = Heartbeat::start(&c, t0, 0);
        assert!(matches!(h.on_timeout(&c, t0 + ms(9_000)), Some(Tick::Ping(_))));
    }
}
