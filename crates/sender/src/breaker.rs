//! Circuit breaking per endpoint (subscription).
//!
//! An endpoint failing most of its recent requests is opened: no calls for a cool-down, during
//! which its deliveries are re-scheduled without an attempt. Then one probe is let through
//! (half-open): success closes the circuit, failure opens it again with a doubled cool-down.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hookline_model::SubscriptionId;
use time::OffsetDateTime;

use crate::health::EndpointHealth;

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
    /// Since when every attempt has failed (for auto-disable). Wall-clock time, because it is
    /// persisted (`endpoint-health`) and outlives the process.
    pub failing_since: Option<OffsetDateTime>,
    /// When the circuit last opened.
    pub opened_at: Option<OffsetDateTime>,
}

impl Breaker {
    /// Whether the circuit is closed (neither open nor probing).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    pub fn new(cfg: &BreakerConfig) -> Self {
        Self {
            state: State::Closed,
            recent: VecDeque::new(),
            cool_down: cfg.cool_down,
            failing_since: None,
            opened_at: None,
        }
    }

    /// A breaker as a persisted record left it. An open (or half-open) circuit stays open
    /// until its `open_until`, then probes; the recent-results window starts empty.
    pub fn restore(cfg: &BreakerConfig, h: &EndpointHealth, now: Instant) -> Self {
        let parse = |s: &Option<String>| s.as_deref().and_then(hookline_model::timefmt::parse);
        let mut b = Self::new(cfg);
        b.failing_since = parse(&h.failing_since);
        b.opened_at = parse(&h.opened_at);
        b.cool_down = Duration::from_millis(h.cool_down_ms)
            .clamp(cfg.cool_down.min(cfg.max_cool_down), cfg.max_cool_down);
        if h.state != "closed" {
            let left = parse(&h.open_until).map_or(Duration::ZERO, |until| {
                Duration::from_secs_f64(
                    (until - OffsetDateTime::now_utc())
                        .as_seconds_f64()
                        .max(0.0),
                )
            });
            b.state = State::Open { until: now + left };
        }
        b
    }

    /// The record to persist for this breaker.
    pub fn snapshot(&self, id: &SubscriptionId, now: Instant) -> EndpointHealth {
        let fmt = |t: OffsetDateTime| hookline_model::timefmt::rfc3339(t);
        let (state, open_until) = match self.state {
            State::Closed => ("closed", None),
            State::Open { until } => (
                "open",
                Some(OffsetDateTime::now_utc() + until.saturating_duration_since(now)),
            ),
            State::HalfOpen { .. } => ("half-open", None),
        };
        EndpointHealth {
            subscription_id: id.clone(),
            state: state.to_owned(),
            failing_since: self.failing_since.map(fmt),
            opened_at: self.opened_at.map(fmt),
            open_until: open_until.map(fmt),
            cool_down_ms: self.cool_down.as_millis() as u64,
            updated_at: hookline_model::timefmt::now_rfc3339(),
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
            // One probe at a time; the others wait as long as the circuit was open, by when the
            // probe has long decided (a short wait here turned a backlog into a hot loop).
            State::HalfOpen { probing: true } => (Admit::No(now + self.cool_down), None),
        }
    }

    pub fn record(&mut self, ok: bool, now: Instant, cfg: &BreakerConfig) -> Option<Transition> {
        if ok {
            self.failing_since = None;
        } else {
            self.failing_since
                .get_or_insert_with(OffsetDateTime::now_utc);
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
                    self.opened_at = Some(OffsetDateTime::now_utc());
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
                    self.opened_at = Some(OffsetDateTime::now_utc());
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
    fn an_open_breaker_survives_a_snapshot_and_restore() {
        let cfg = BreakerConfig::default();
        let mut b = Breaker::new(&cfg);
        let t0 = Instant::now();
        for _ in 0..10 {
            b.record(false, t0, &cfg);
        }
        let since = b.failing_since.expect("failing");
        let h = b.snapshot(&SubscriptionId("s".into()), t0);
        assert_eq!(h.state, "open");
        assert!(h.open_until.is_some() && h.opened_at.is_some());
        let mut r = Breaker::restore(&cfg, &h, t0);
        assert_eq!(
            r.failing_since.map(|t| t.unix_timestamp()),
            Some(since.unix_timestamp()),
            "the auto-disable clock goes on"
        );
        assert!(matches!(r.admit(t0).0, Admit::No(_)), "still open");
        let after = t0 + cfg.cool_down + Duration::from_secs(1);
        assert_eq!(r.admit(after), (Admit::Yes, Some(Transition::HalfOpened)));
        let closed = Breaker::new(&cfg).snapshot(&SubscriptionId("s".into()), t0);
        assert_eq!(Breaker::restore(&cfg, &closed, t0).admit(t0).0, Admit::Yes);
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
