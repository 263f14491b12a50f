//! The recent `outcomes` per subscription, for `GET /v1/subscriptions/{id}/attempts` and the
//! backlog counts: bounded in attempts per subscription and in subscriptions.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use hookline_kafka::table::TableSink;
use hookline_model::{Outcome, SubscriptionId};

use super::{write, ATTEMPTS_KEPT};

/// Subscriptions whose attempt history is kept; past it, the histories updated longest ago go
/// first (a tenth at a time), so memory stays bounded however many subscription ids the
/// `outcomes` topic has ever seen.
pub const HISTORIES_KEPT: usize = 20_000;

/// Where an outcome is on the `outcomes` topic: (partition, offset). A subscription's outcomes
/// are keyed by its id, so they share a partition and their offsets order them.
pub type Position = (i32, i64);

/// Attempt histories by subscription, oldest first, each outcome with its [`Position`].
pub(super) type Histories = Arc<RwLock<HashMap<SubscriptionId, VecDeque<(Position, Outcome)>>>>;

/// Keeps the last [`ATTEMPTS_KEPT`] outcomes of at most [`HISTORIES_KEPT`] subscriptions.
pub(super) struct OutcomesSink {
    rows: Histories,
    /// What waits per subscription ([`crate::backlog`]), from the same outcomes.
    backlog: Arc<RwLock<crate::backlog::Backlog>>,
    /// When each history was last added to (a counter, not a clock).
    touched: HashMap<SubscriptionId, u64>,
    seq: u64,
    histories: usize,
}

impl OutcomesSink {
    pub(super) fn new(
        rows: Histories,
        backlog: Arc<RwLock<crate::backlog::Backlog>>,
        histories: usize,
    ) -> Self {
        Self {
            rows,
            backlog,
            touched: HashMap::new(),
            seq: 0,
            histories: histories.max(1),
        }
    }

    fn add(&mut self, at: Position, outcome: Outcome) {
        write(&self.backlog).apply(&outcome);
        self.seq += 1;
        let id = outcome.subscription_id.clone();
        let mut rows = write(&self.rows);
        let list = rows.entry(id.clone()).or_default();
        if list.len() >= ATTEMPTS_KEPT {
            list.pop_front();
        }
        list.push_back((at, outcome));
        self.touched.insert(id, self.seq);
        if rows.len() > self.histories {
            // Drop the histories updated longest ago, a tenth of the bound at once.
            let mut by_age: Vec<(u64, SubscriptionId)> =
                self.touched.iter().map(|(k, v)| (*v, k.clone())).collect();
            by_age.sort_unstable();
            let drop_n = rows.len() - self.histories + self.histories.div_ceil(10);
            for (_, k) in by_age.into_iter().take(drop_n) {
                rows.remove(&k);
                self.touched.remove(&k);
            }
        }
    }
}

impl TableSink for OutcomesSink {
    fn apply(&mut self, partition: i32, offset: i64, _key: Option<&[u8]>, value: Option<&[u8]>) {
        let Some(outcome) = value.and_then(|v| serde_json::from_slice::<Outcome>(v).ok()) else {
            return;
        };
        self.add((partition, offset), outcome);
    }

    fn forget_partition(&mut self, _partition: i32) {}
}

/// See [`Tables::attempts_before`]; `list` is oldest first.
pub(super) fn older_than(
    list: &VecDeque<(Position, Outcome)>,
    before: Option<Position>,
    limit: usize,
) -> (Vec<Outcome>, Option<Position>) {
    let newest_first = list.iter().rev();
    let mut older: Vec<&(Position, Outcome)> = match before {
        None => newest_first.take(limit + 1).collect(),
        Some(pos) => newest_first
            .skip_while(|(p, _)| *p != pos)
            .skip(1)
            .take(limit + 1)
            .collect(),
    };
    let more = older.len() > limit;
    older.truncate(limit);
    let next = more.then(|| older.last().map(|(p, _)| *p)).flatten();
    (older.into_iter().map(|(_, o)| o.clone()).collect(), next)
}

#[cfg(test)]
mod tests {
    use super::super::read;
    use super::*;

    fn outcome(sub: &str, n: u32) -> Outcome {
        serde_json::from_value(serde_json::json!({
            "delivery_id": format!("dlv_{n}"), "event_id": format!("evt-{n}"),
            "subscription_id": sub, "account": "1001", "attempt": 1, "result": "delivered",
            "started_at": "2026-12-01T00:00:00Z", "finished_at": "2026-12-01T00:00:00Z",
            "latency_ms": 1.0}))
        .unwrap()
    }

    #[test]
    fn histories_are_bounded_per_subscription_and_in_number() {
        let rows = Arc::default();
        let mut sink = OutcomesSink::new(Arc::clone(&rows), Arc::default(), 10);
        for n in 0..(ATTEMPTS_KEPT as u32 + 5) {
            sink.add((0, i64::from(n)), outcome("busy", n));
        }
        assert_eq!(
            read(&rows)[&SubscriptionId("busy".into())].len(),
            ATTEMPTS_KEPT
        );
        // Thousands of subscription ids seen once each: at most 10 histories stay, and the
        // one still being added to is among them.
        for n in 0..5_000 {
            sink.add((0, i64::from(n)), outcome(&format!("once-{n}"), n));
            if n % 7 == 0 {
                sink.add((1, i64::from(n)), outcome("busy", n));
            }
        }
        let r = read(&rows);
        assert!(r.len() <= 10, "{} histories", r.len());
        assert!(r.contains_key(&SubscriptionId("busy".into())));
        assert!(
            r.contains_key(&SubscriptionId("once-4999".into())),
            "the newest stays"
        );
    }

    #[test]
    fn attempt_pages_go_back_in_time_and_ignore_newer_arrivals() {
        let rows: Histories = Arc::default();
        let mut sink = OutcomesSink::new(Arc::clone(&rows), Arc::default(), 10);
        for n in 0..7 {
            sink.add((0, i64::from(n) * 10), outcome("s", n));
        }
        let ids = |v: &[Outcome]| v.iter().map(|o| o.event_id.to_string()).collect::<Vec<_>>();
        let list = read(&rows)[&SubscriptionId("s".into())].clone();
        let (first, next) = older_than(&list, None, 3);
        assert_eq!(ids(&first), ["evt-6", "evt-5", "evt-4"]);
        assert_eq!(next, Some((0, 40)));
        sink.add((0, 70), outcome("s", 7));
        let list = read(&rows)[&SubscriptionId("s".into())].clone();
        let (second, next) = older_than(&list, next, 3);
        assert_eq!(
            ids(&second),
            ["evt-3", "evt-2", "evt-1"],
            "a newer arrival shifts nothing"
        );
        let (last, next) = older_than(&list, next, 3);
        assert_eq!((ids(&last), next), (vec!["evt-0".to_owned()], None));
        assert!(
            older_than(&list, Some((0, 5)), 3).0.is_empty(),
            "a dropped cursor ends the walk"
        );
    }
}
