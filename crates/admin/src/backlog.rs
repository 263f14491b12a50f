//! What waits per subscription, as the operator view reports it: counted from the `outcomes`
//! the admin follows (the same window as the attempt history: the last 50,000 records of each
//! partition at start, then everything new).
//!
//! - **waiting**: deliveries whose last outcome says another attempt is scheduled (`retrying`,
//!   or `circuit-open`: moved to the retry path while the circuit is open). They sit in the
//!   retry tiers until due.
//! - **parked**: deliveries whose last outcome is `skipped-paused`: dead-lettered with reason
//!   `subscription-paused`, waiting for a replay after the resume.
//!
//! A delivery leaves both counts with its next outcome of any other kind (delivered, failed,
//! dead-lettered, skipped because disabled). Not counted: deliveries never attempted yet (the
//! sender group's consumer lag, a metric) and deferrals without an attempt (a full endpoint
//! queue; `hookline_sender_deferred_total`). The counts are bounded per subscription
//! ([`MAX_TRACKED`]); past it the view says `at_least`.

use std::collections::{HashMap, HashSet};

use hookline_model::{Outcome, OutcomeResult, SubscriptionId};
use serde::Serialize;

/// Delivery ids tracked per subscription and kind; more are counted as "at least".
pub const MAX_TRACKED: usize = 100_000;

/// One subscription's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BacklogView {
    pub waiting: usize,
    pub parked: usize,
    /// Some count reached [`MAX_TRACKED`]: the real figure is higher.
    pub at_least: bool,
}

#[derive(Default)]
struct Sets {
    waiting: HashSet<String>,
    parked: HashSet<String>,
    overflow: bool,
}

/// The delivery ids waiting or parked, per subscription.
#[derive(Default)]
pub struct Backlog {
    subs: HashMap<SubscriptionId, Sets>,
}

impl Backlog {
    /// Takes one outcome into account.
    pub fn apply(&mut self, o: &Outcome) {
        let id = &o.delivery_id.0;
        let sets = self.subs.entry(o.subscription_id.clone()).or_default();
        sets.waiting.remove(id);
        sets.parked.remove(id);
        let into = match o.result {
            OutcomeResult::Retrying | OutcomeResult::CircuitOpen => Some(&mut sets.waiting),
            OutcomeResult::SkippedPaused => Some(&mut sets.parked),
            _ => None,
        };
        if let Some(set) = into {
            if set.len() < MAX_TRACKED {
                set.insert(id.clone());
            } else {
                sets.overflow = true;
            }
        }
        if sets.waiting.is_empty() && sets.parked.is_empty() {
            self.subs.remove(&o.subscription_id);
        }
    }

    pub fn view(&self, id: &SubscriptionId) -> BacklogView {
        self.subs
            .get(id)
            .map_or_else(BacklogView::default, |s| BacklogView {
                waiting: s.waiting.len(),
                parked: s.parked.len(),
                at_least: s.overflow,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(sub: &str, delivery: &str, result: OutcomeResult) -> Outcome {
        serde_json::from_value(serde_json::json!({
            "delivery_id": delivery, "event_id": "e", "subscription_id": sub,
            "account": "1001", "attempt": 1, "result": result.as_str(), "latency_ms": 1.0,
            "started_at": "2026-12-02T10:00:00Z", "finished_at": "2026-12-02T10:00:01Z"}))
        .unwrap()
    }

    #[test]
    fn a_delivery_counts_as_what_its_last_outcome_says() {
        let mut b = Backlog::default();
        let s = SubscriptionId("s".into());
        b.apply(&outcome("s", "d1", OutcomeResult::Retrying));
        b.apply(&outcome("s", "d1", OutcomeResult::Retrying));
        b.apply(&outcome("s", "d2", OutcomeResult::CircuitOpen));
        b.apply(&outcome("s", "d3", OutcomeResult::SkippedPaused));
        assert_eq!(
            b.view(&s),
            BacklogView {
                waiting: 2,
                parked: 1,
                at_least: false
            }
        );
        b.apply(&outcome("s", "d1", OutcomeResult::Delivered));
        b.apply(&outcome("s", "d2", OutcomeResult::DeadLettered));
        b.apply(&outcome("s", "d3", OutcomeResult::Delivered)); // replayed after the resume
        assert_eq!(b.view(&s), BacklogView::default());
        assert!(
            b.subs.is_empty(),
            "nothing kept for a subscription with nothing waiting"
        );
    }

    #[test]
    fn other_subscriptions_are_counted_apart() {
        let mut b = Backlog::default();
        b.apply(&outcome("a", "d1", OutcomeResult::Retrying));
        b.apply(&outcome("b", "d1", OutcomeResult::Delivered));
        assert_eq!(b.view(&SubscriptionId("a".into())).waiting, 1);
        assert_eq!(b.view(&SubscriptionId("b".into())).waiting, 0);
    }
}
