//! The network between client and server: latency per frame and seeded loss. The link carries a
//! WebSocket over TCP, so a lost segment is retransmitted: loss shows as extra delay, and each direction
//! stays in order (head-of-line blocking). A cut link is modelled by the server going silent.

use std::time::{Duration, Instant};

use super::rng::SimRng;

/// Most extra delay a loss adds to one frame (two retransmissions: 200 ms, then 400 ms).
pub const MAX_RETRANSMIT: Duration = Duration::from_millis(600);

/// Latency settings of one scenario.
#[derive(Debug, Clone, Copy)]
pub struct LinkParams {
    /// Least one-way latency.
    pub lat_lo: Duration,
    /// Most one-way latency without loss.
    pub lat_hi: Duration,
}

impl LinkParams {
    /// Draws the link of a scenario.
    pub fn generate(rng: &mut SimRng) -> Self {
        let lat_lo = rng.ms(0, 50);
        Self { lat_lo, lat_hi: lat_lo + rng.ms(0, 100) }
    }

    /// The longest a frame can take one way, losses included.
    pub fn max_one_way(&self) -> Duration {
        self.lat_hi + MAX_RETRANSMIT
    }

    /// When a frame sent at `now` arrives, with loss rate `loss`, given the previous arrival in the same
    /// direction (order is kept).
    pub fn arrival(&self, rng: &mut SimRng, now: Instant, loss: f64, last: &mut Instant) -> Instant {
        let mut d = Duration::from_millis(rng.range(self.lat_lo.as_millis() as u64, self.lat_hi.as_millis() as u64));
        if loss > 0.0 && rng.chance(loss) {
            d += Duration::from_millis(200);
            if rng.chance(loss) {
                d += Duration::from_millis(400);
            }
        }
        let at = (now + d).max(*last);
        *last = at;
        at
    }
}
