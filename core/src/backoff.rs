//! Exponential backoff with jitter between connection attempts.

use std::time::Duration;

use crate::rng::Rng;

/// How the backoff delay is randomised, so that many clients cut off at once do not return at once.
///
/// With `exp = min(max_delay, base * factor^(n-1))` for the n-th consecutive failure:
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// `exp` exactly. Only for tests and single clients.
    None,
    /// Uniform in `[0, exp]`: the widest spread, but a delay may be near zero.
    Full,
    /// Uniform in `[exp/2, exp]`: spread, and the delay still grows. The default.
    #[default]
    Equal,
    /// "Decorrelated" (AWS architecture blog, 2015): uniform in `[base, 3 * previous]`, capped at
    /// `max_delay`.
    Decorrelated,
}

/// Backoff settings. See each field for its default; build from [`Default`] and the chainable setters
/// (`BackoffConfig::default().base(d)`), or set fields on a default value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BackoffConfig {
    /// Delay before the first retry (before jitter). Default: 500 ms.
    pub base: Duration,
    /// Growth factor per consecutive failure; at least 1.0. Default: 2.0.
    pub factor: f64,
    /// Cap on the delay (before a server-requested minimum is applied). Default: 30 s.
    pub max_delay: Duration,
    /// Randomisation. Default: [`Jitter::Equal`].
    pub jitter: Jitter,
    /// Give up after this many consecutive failed attempts in one outage; `None` retries forever.
    /// Default: `None` (a client that must stay up keeps trying, at most every `max_delay`).
    pub max_attempts: Option<u32>,
    /// Give up when an outage has lasted this long; `None`: no limit. Default: `None`.
    pub give_up_after: Option<Duration>,
    /// A connection must stay up this long before the failure count resets. A server that accepts and
    /// then drops us sooner counts as a failed attempt, so it is retried with growing delays instead of a
    /// storm. Default: 5 s.
    pub stable_after: Duration,
    /// When a connection that had become stable dies, try again at once (no delay) the first time.
    /// Default: `false`, because a server restart drops every client at the same moment and an immediate
    /// retry by all of them is a thundering herd; the first delay is `base` with jitter.
    pub immediate_first_retry: bool,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            factor: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: Jitter::Equal,
            max_attempts: None,
            give_up_after: None,
            stable_after: Duration::from_secs(5),
            immediate_first_retry: false,
        }
    }
}

impl BackoffConfig {
    /// The un-jittered delay for the `failures`-th consecutive failure (1-based), capped at `max_delay`.
    /// Computed in floating point and saturated, so no failure count can overflow it.
    pub fn exponential(&self, failures: u32) -> Duration {
        let n = failures.saturating_sub(1).min(1_000) as i32;
        let secs = self.base.as_secs_f64() * self.factor.powi(n);
        let max = self.max_delay.as_secs_f64();
        if !secs.is_finite() || secs >= max { self.max_delay } else { Duration::from_secs_f64(secs.max(0.0)) }
    }

    /// The bounds `[lo, hi]` a delay for the `failures`-th failure must lie in, for the jitter mode (for
    /// decorrelated jitter, the bound over any history). The simulator keeps its own copy as the
    /// specification.
    #[cfg(test)]
    pub(crate) fn bounds(&self, failures: u32) -> (Duration, Duration) {
        let exp = self.exponential(failures);
        match self.jitter {
            Jitter::None => (exp, exp),
            Jitter::Full => (Duration::ZERO, exp),
            Jitter::Equal => (exp / 2, exp),
            Jitter::Decorrelated => (self.base.min(self.max_delay), self.max_delay),
        }
    }
}

/// Backoff state across the attempts of one outage.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    /// Previous delay, for decorrelated jitter.
    prev: Duration,
}

impl Backoff {
    pub(crate) fn new(cfg: &BackoffConfig) -> Self {
        Self { prev: cfg.base }
    }

    pub(crate) fn reset(&mut self, cfg: &BackoffConfig) {
        self.prev = cfg.base;
    }

    /// The delay before the next attempt after the `failures`-th consecutive failure (>= 1).
    pub(crate) fn next_delay(&mut self, cfg: &BackoffConfig, failures: u32, rng: &mut Rng) -> Duration {
        let exp = cfg.exponential(failures);
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let delay = match cfg.jitter {
            Jitter::None => exp,
            Jitter::Full => Duration::from_nanos(rng.between(0, nanos(exp))),
            Jitter::Equal => {
                let half = nanos(exp) / 2;
                Duration::from_nanos(rng.between(nanos(exp) - half, nanos(exp)))
            }
            Jitter::Decorrelated => {
                let lo = nanos(cfg.base.min(cfg.max_delay));
                let hi = nanos(self.prev).saturating_mul(3).min(nanos(cfg.max_delay));
                Duration::from_nanos(rng.between(lo, hi.max(lo)))
            }
        };
        self.prev = delay;
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(jitter: Jitter) -> BackoffConfig {
        BackoffConfig {
            base: Duration::from_millis(100),
            factor: 2.0,
            max_delay: Duration::from_secs(3),
            jitter,
            ..BackoffConfig::default()
        }
    }

    #[test]
    fn exponential_grows_then_caps_without_overflow() {
        let c = cfg(Jitter::None);
        assert_eq!(c.exponential(1), Duration::from_millis(100));
        assert_eq!(c.exponential(2), Duration::from_millis(200));
        assert_eq!(c.exponential(5), Duration::from_millis(1600));
        assert_eq!(c.exponential(6), Duration::from_secs(3));
        assert_eq!(c.exponential(u32::MAX), Duration::from_secs(3));
    }

    #[test]
    fn every_mode_stays_in_its_bounds() {
        for j in [Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
            let c = cfg(j);
            let mut b = Backoff::new(&c);
            let mut rng = Rng::new(1);
            for n in 1..200 {
                let d = b.next_delay(&c, n, &mut rng);
                let (lo, hi) = c.bounds(n);
                assert!(d >= lo && d <= hi, "{j:?} n={n}: {d:?} not in [{lo:?}, {hi:?}]");
                assert!(d <= c.max_delay);
            }
        }
    }

    #[test]
    fn equal_jitter_spreads() {
        let c = cfg(Jitter::Equal);
        let mut b = Backoff::new(&c);
        let mut rng = Rng::new(9);
        let delays: Vec<_> = (0..50).map(|_| b.next_delay(&c, 3, &mut rng)).collect();
        let distinct = delays.iter().collect::<std::collections::HashSet<_>>().len();
        assert!(distinct > 40, "jitter should spread delays, got {distinct} distinct of 50");
    }
}
