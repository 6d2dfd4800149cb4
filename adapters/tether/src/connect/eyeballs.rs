//! Happy Eyeballs in the spirit of RFC 8305, sans-IO: which address to try next, and when.
//!
//! Rules (RFC 8305 sections 4 and 5):
//! * Addresses are interleaved by family, starting with the family of the resolver's first answer
//!   (IPv6 first when it comes first), the order within a family kept.
//! * The first attempt starts at once; each next one after the connection attempt delay (250 ms by
//!   default) unless an attempt succeeds first, or at once when an attempt fails.
//! * The first attempt to succeed wins; the others are dropped by the driver.
//! * When every address has been tried and every attempt failed, the race is lost.
//!
//! Not done: resolving AAAA and A separately and starting before both answer (the runtime's resolver
//! gives one list).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The schedule of one race.
#[derive(Debug)]
pub(crate) struct Eyeballs {
    order: Vec<SocketAddr>,
    next: usize,
    running: usize,
    next_at: Instant,
    delay: Duration,
}

impl Eyeballs {
    /// A race over `addrs`, starting at `now`, with `delay` between attempt starts.
    pub(crate) fn new(addrs: Vec<SocketAddr>, delay: Duration, now: Instant) -> Self {
        Self { order: interleave(addrs), next: 0, running: 0, next_at: now, delay }
    }

    /// The next address to try, if one is due at `now`.
    pub(crate) fn poll_start(&mut self, now: Instant) -> Option<SocketAddr> {
        let addr = *self.order.get(self.next)?;
        if now < self.next_at {
            return None;
        }
        self.next += 1;
        self.running += 1;
        self.next_at = now.checked_add(self.delay).unwrap_or(now);
        Some(addr)
    }

    /// An attempt failed at `now`: the next one may start at once.
    pub(crate) fn on_failed(&mut self, now: Instant) {
        self.running = self.running.saturating_sub(1);
        self.next_at = self.next_at.min(now);
    }

    /// When the next attempt is due, if any is left to start.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        (self.next < self.order.len()).then_some(self.next_at)
    }

    /// Every address tried and every attempt failed.
    pub(crate) fn is_lost(&self) -> bool {
        self.next >= self.order.len() && self.running == 0
    }
}

/// Interleaves the two families, starting with the first address's.
pub(crate) fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else { return addrs };
    let first_v6 = first.is_ipv6();
    let mut out = Vec::with_capacity(addrs.len());
    let (a, b): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|x| x.is_ipv6() == first_v6);
    let (mut a, mut b) = (a.into_iter(), b.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_interleave_from_the_first_answer() {
        let got = interleave(vec![a("[::1]:1"), a("[::2]:1"), a("[::3]:1"), a("10.0.0.1:1"), a("10.0.0.2:1")]);
        assert_eq!(got, vec![a("[::1]:1"), a("10.0.0.1:1"), a("[::2]:1"), a("10.0.0.2:1"), a("[::3]:1")]);
        let got = interleave(vec![a("10.0.0.1:1"), a("[::1]:1"), a("10.0.0.2:1")]);
        assert_eq!(got, vec![a("10.0.0.1:1"), a("[::1]:1"), a("10.0.0.2:1")]);
        assert!(interleave(vec![]).is_empty());
    }

    /// The whole schedule on virtual time: starts staggered by the delay, a failure starts the next
    /// at once, and the race is lost only when every attempt has failed.
    #[test]
    fn staggered_starts_and_early_failure() {
        let t0 = crate::runtime::test_epoch();
        let ms = |n| t0 + Duration::from_millis(n);
        let addrs = vec![a("[::1]:1"), a("[::2]:1"), a("10.0.0.1:1"), a("10.0.0.2:1")];
        let mut e = Eyeballs::new(addrs, Duration::from_millis(250), t0);
        assert_eq!(e.poll_start(t0), Some(a("[::1]:1")));
        assert_eq!(e.poll_start(t0), None, "one at a time");
        assert_eq!(e.poll_timeout(), Some(ms(250)));
        assert_eq!(e.poll_start(ms(249)), None);
        assert_eq!(e.poll_start(ms(250)), Some(a("10.0.0.1:1")));
        assert_eq!(e.poll_timeout(), Some(ms(500)));
        // The IPv4 attempt fails at 300 ms: the third starts at once, the fourth 250 ms later.
        e.on_failed(ms(300));
        assert_eq!(e.poll_timeout(), Some(ms(300)));
        assert_eq!(e.poll_start(ms(300)), Some(a("[::2]:1")));
        assert_eq!(e.poll_timeout(), Some(ms(550)));
        assert_eq!(e.poll_start(ms(550)), Some(a("10.0.0.2:1")));
        assert_eq!(e.poll_timeout(), None, "nothing left to start");
        assert!(!e.is_lost());
        for t in [600, 700, 800] {
            e.on_failed(ms(t));
        }
        assert!(e.is_lost());
    }

    #[test]
    fn a_failure_before_the_next_start_does_not_delay_it() {
        let t0 = crate::runtime::test_epoch();
        let mut e = Eyeballs::new(vec![a("10.0.0.1:1"), a("10.0.0.2:1")], Duration::from_millis(250), t0);
        e.poll_start(t0);
        e.on_failed(t0 + Duration::from_millis(10));
        assert_eq!(e.poll_start(t0 + Duration::from_millis(10)), Some(a("10.0.0.2:1")));
        let mut lone = Eyeballs::new(vec![a("10.0.0.1:1")], Duration::ZERO, t0);
        assert_eq!(lone.poll_start(t0), Some(a("10.0.0.1:1")));
        assert!(!lone.is_lost());
        lone.on_failed(t0);
        assert!(lone.is_lost());
        assert!(Eyeballs::new(vec![], Duration::ZERO, t0).is_lost());
    }
}
