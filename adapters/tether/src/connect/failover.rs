//! Which endpoint an attempt goes to, sans-IO.
//!
//! Rules: the first attempt of an outage goes to the endpoint that served last (the first URL at
//! the start), and every further attempt to the next one in the list, wrapping around. So an
//! endpoint that fails passes the next attempt to the next endpoint; a connection that was stable
//! and then dropped is retried where it was first (a restart is the common case), then fails over.
//! The core's attempt number (consecutive failures + 1) carries the failure count, so this needs
//! nothing but the last endpoint that served.

/// The endpoint chooser.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failover {
    count: usize,
    base: usize,
}

impl Failover {
    /// A chooser over `count` endpoints (at least one).
    pub(crate) fn new(count: usize) -> Self {
        Self { count: count.max(1), base: 0 }
    }

    /// The endpoint for `attempt` (1 = the first attempt of an outage).
    pub(crate) fn choose(&self, attempt: u32) -> usize {
        let step = (attempt.max(1) - 1) as usize % self.count;
        (self.base + step) % self.count
    }

    /// `endpoint` opened a connection.
    pub(crate) fn served(&mut self, endpoint: usize) {
        self.base = endpoint % self.count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_walk_the_list_and_a_success_becomes_home() {
        let mut f = Failover::new(3);
        assert_eq!((1..=5).map(|a| f.choose(a)).collect::<Vec<_>>(), [0, 1, 2, 0, 1]);
        // Endpoint 1 served; its connection drops: retried there first, then 2, 0, ...
        f.served(1);
        assert_eq!((1..=4).map(|a| f.choose(a)).collect::<Vec<_>>(), [1, 2, 0, 1]);
        let one = Failover::new(1);
        assert_eq!((1..=3).map(|a| one.choose(a)).collect::<Vec<_>>(), [0, 0, 0]);
        assert_eq!(Failover::new(2).choose(u32::MAX), 0);
        assert_eq!(Failover::new(2).choose(0), 0);
    }
}
