//! Per-endpoint rate limiting (`limits.per_second`): a token bucket with a burst of one second's
//! worth, so an endpoint never sees more than its rate over any second.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket; waiters sleep until their token is due (no polling).
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> Self {
        let per_second = per_second.max(0.001);
        Self {
            per_second,
            state: Mutex::new((per_second.max(1.0), Instant::now())),
        }
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Takes one token, returning how long the caller must wait before using it.
    pub fn reserve(&self, now: Instant) -> Duration {
        let mut g = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let burst = self.per_second.max(1.0);
        let (tokens, last) = *g;
        let refilled = (tokens
            + now.saturating_duration_since(last).as_secs_f64() * self.per_second)
            .min(burst);
        let after = refilled - 1.0;
        *g = (after, now);
        if after >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-after / self.per_second)
        }
    }

    /// Waits for a token.
    /// How long a reservation made now would wait, without making it.
    pub fn peek(&self, now: Instant) -> Duration {
        let g = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = *g;
        let refilled = (tokens
            + now.saturating_duration_since(last).as_secs_f64() * self.per_second)
            .min(self.per_second.max(1.0));
        let after = refilled - 1.0;
        if after >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-after / self.per_second)
        }
    }

    pub async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_second_then_the_rate() {
        let r = RateLimiter::new(10.0);
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(
                r.reserve(t0),
                Duration::ZERO,
                "one second's worth goes at once"
            );
        }
        assert_eq!(r.reserve(t0), Duration::from_millis(100));
        assert_eq!(
            r.reserve(t0),
            Duration::from_millis(200),
            "waiters queue up, each 1/rate later"
        );
        // After a quiet second the bucket is full again (capped at the burst).
        let later = t0 + Duration::from_secs(5);
        for _ in 0..10 {
            assert_eq!(r.reserve(later), Duration::ZERO);
        }
        assert!(r.reserve(later) > Duration::ZERO);
    }
}
