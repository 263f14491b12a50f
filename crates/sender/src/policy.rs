//! When to try again.

use std::time::Duration;

use rand::Rng;

/// The retry schedule: exponential steps with full jitter, bounded by attempts and by age.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Delay ceiling before attempt 2, 3, …; the last step repeats.
    pub steps: Vec<Duration>,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// No attempt is scheduled later than this after the first.
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            steps: [5, 60, 600, 3_600, 21_600, 86_400]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_attempts: 10,
            max_age: Duration::from_secs(5 * 86_400),
        }
    }
}

impl RetryPolicy {
    /// Parses `5s,1m,10m,1h,6h,1d`.
    pub fn parse_steps(raw: &str) -> Result<Vec<Duration>, String> {
        raw.split(',')
            .map(|s| hookline_config::parse_duration(s.trim()))
            .collect()
    }

    /// The delay before attempt `next_attempt` (≥ 2), or `None` when the delivery is exhausted.
    /// `retry_after` (from 429/503) replaces the jittered delay when it is longer.
    pub fn delay(
        &self,
        next_attempt: u32,
        age: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if next_attempt > self.max_attempts || self.steps.is_empty() {
            return None;
        }
        let idx = (next_attempt.saturating_sub(2) as usize).min(self.steps.len() - 1);
        let ceiling = self.steps[idx];
        // Full jitter, with a floor of half the step so retries still spread out but never come
        // back almost at once.
        let half = ceiling / 2;
        let jittered =
            half + Duration::from_millis(rand::rng().random_range(0..=half.as_millis() as u64));
        let delay = retry_after.map_or(jittered, |ra| ra.max(jittered));
        (age + delay <= self.max_age).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_the_schedule_with_jitter_and_stop() {
        let p = RetryPolicy::default();
        for _ in 0..50 {
            let d = p.delay(2, Duration::ZERO, None).unwrap();
            assert!(
                d >= Duration::from_millis(2500) && d <= Duration::from_secs(5),
                "{d:?}"
            );
            let d = p.delay(4, Duration::ZERO, None).unwrap();
            assert!(d >= Duration::from_secs(300) && d <= Duration::from_secs(600));
        }
        assert!(
            p.delay(11, Duration::ZERO, None).is_none(),
            "attempts are bounded"
        );
        assert!(
            p.delay(3, Duration::from_secs(5 * 86_400), None).is_none(),
            "age is bounded"
        );
        let ra = p
            .delay(2, Duration::ZERO, Some(Duration::from_secs(120)))
            .unwrap();
        assert_eq!(
            ra,
            Duration::from_secs(120),
            "Retry-After longer than the step wins"
        );
    }

    #[test]
    fn parsing() {
        assert_eq!(
            RetryPolicy::parse_steps("5s, 1m,1h,1d").unwrap()[3],
            Duration::from_secs(86_400)
        );
        assert!(RetryPolicy::parse_steps("5s,5x")
            .unwrap_err()
            .contains("unknown unit"));
    }
}
