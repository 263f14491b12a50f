//! Circuit breaking per endpoint (subscription).
//!
//! An endpoint failing most of its recent requests is opened: no calls for a cool-down, during
//! which its deliveries are re-scheduled without an attempt. Then one probe is let through
//! (half-open): success closes the circuit, failure opens it again with a doubled cool-down.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// When to open and for how long.
#[derive(Debug, Clone)]
pub struct BreakerConfig {
    /// Recent results considered.
    pub window: usize,
    /// Results needed before the breaker may open.
    pub min_requests: usize,
    /// Failure share at or above which it opens.
    pub failure_ratio: f64,
    pub cool_down: Duration,
    pub max_cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: 20,
            min_requests: 10,
            failure_ratio: 0.5,
            cool_down: Duration::from_secs(30),
            max_cool_down: Duration::from_secs(600),
        }
    }
}

/// May a request go out now?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Open: try again at this moment.
    No(Instant),
}

/// A change of state, reported as an outcome and a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    HalfOpened,
    Closed,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "open",
            Self::HalfOpened => "half-open",
            Self::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// One endpoint's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    state: State,
    recent: VecDeque<bool>,
    cool_down: Duration,
    /// Since when every attempt has failed (for auto-disable).
    pub failing_since: Option<Instant>,
}

impl Breaker {
    pub fn new(cfg: &BreakerConfig) -> Self {
        Self {
            state: State::Closed,
            recent: VecDeque::new(),
            cool_down: cfg.cool_down,
            failing_since: None,
        }
    }

    pub fn admit(&mut self, now: Instant) -> (Admit, Option<Transition>) {
        match self.state {
            State::Closed => (Admit::Yes, None),
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen { probing: true };
                (Admit::Yes, Some(Transition::HalfOpened))
            }
            State::Open { until } => (Admit::No(until), None),
            State::HalfOpen { probing: false } => {
                self.state = State::HalfOpen { probing: true };
                (Admit::Yes, None)
            }
            // One probe at a time; others wait a short while.
            State::HalfOpen { probing: true } => (Admit::No(now + Duration::from_secs(1)), None),
        }
    }

    pub fn record(&mut self, ok: bool, now: Instant, cfg: &BreakerConfig) -> Option<Transition> {
        if ok {
            self.failing_since = None;
        } else {
            self.failing_since.get_or_insert(now);
        }
        match self.state {
            State::HalfOpen { .. } => {
                if ok {
                    self.state = State::Closed;
                    self.recent.clear();
                    self.cool_down = cfg.cool_down;
                    Some(Transition::Closed)
                } else {
                    self.cool_down = (self.cool_down * 2).min(cfg.max_cool_down);
                    self.state = State::Open {
                        until: now + self.cool_down,
                    };
                    Some(Transition::Opened)
                }
            }
            State::Open { .. } => None,
            State::Closed => {
                self.recent.push_back(ok);
                while self.recent.len() > cfg.window {
                    self.recent.pop_front();
                }
                let failures = self.recent.iter().filter(|r| !**r).count();
                if self.recent.len() >= cfg.min_requests
                    && failures as f64 >= cfg.failure_ratio * self.recent.len() as f64
                {
                    self.state = State::Open {
                        until: now + self.cool_down,
                    };
                    Some(Transition::Opened)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_on_mostly_failures_probes_after_cool_down_and_closes_on_success() {
        let cfg = BreakerConfig::default();
        let mut b = Breaker::new(&cfg);
        let t0 = Instant::now();
        for i in 0..9 {
            assert_eq!(
                b.record(i % 3 == 0, t0, &cfg),
                None,
                "not enough requests yet"
            );
        }
        assert_eq!(b.record(false, t0, &cfg), Some(Transition::Opened));
        assert_eq!(
            b.admit(t0 + Duration::from_secs(1)),
            (Admit::No(t0 + cfg.cool_down), None)
        );
        let later = t0 + cfg.cool_down;
        assert_eq!(b.admit(later), (Admit::Yes, Some(Transition::HalfOpened)));
        assert!(
            matches!(b.admit(later).0, Admit::No(_)),
            "one probe at a time"
        );
        assert_eq!(
            b.record(false, later, &cfg),
            Some(Transition::Opened),
            "failed probe reopens"
        );
        let reopened_until = later + cfg.cool_down * 2;
        assert_eq!(
            b.admit(later).0,
            Admit::No(reopened_until),
            "cool-down doubled"
        );
        assert_eq!(
            b.admit(reopened_until),
            (Admit::Yes, Some(Transition::HalfOpened))
        );
        assert_eq!(
            b.record(true, reopened_until, &cfg),
            Some(Transition::Closed)
        );
        assert_eq!(b.admit(reopened_until).0, Admit::Yes);
        assert!(b.failing_since.is_none());
    }

    #[test]
    fn healthy_endpoints_stay_closed() {
        let cfg = BreakerConfig::default();
        let mut b = Breaker::new(&cfg);
        let t = Instant::now();
        for i in 0..100 {
            assert_eq!(
                b.record(i % 4 != 0, t, &cfg),
                None,
                "25% failures never open"
            );
        }
    }
}
