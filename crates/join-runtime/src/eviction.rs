//! The local table lets go of partitions this instance no longer holds, after a grace period.
//!
//! A partition that leaves may come straight back (eager rebalances revoke everything and assign
//! again; an instance's rolling restart hands its partitions out and back), and then its rows and
//! checkpoint are still good: only the tail is read. Kept forever, though, the rows of every
//! partition an instance ever held would make each instance drift toward a full copy of the
//! table. So a partition the store has a checkpoint of but the stage does not hold waits for the
//! grace period (`--revoked-partition-grace`, default 10 minutes); if it is not assigned again
//! by then, its rows, checkpoint and applied changes are deleted, and a later assignment reads it
//! from the beginning. The wait counts from the rebalance that took the partition away, or, for
//! partitions left from before a restart, from the stage's first assignment.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::store::ProfileStore;
use crate::StageError;

/// Partitions the store keeps without holding them, and since when. Time is passed in, so the
/// logic is tested without waiting.
#[derive(Debug)]
pub struct Evictions {
    grace: Duration,
    waiting: HashMap<i32, Instant>,
}

impl Evictions {
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            waiting: HashMap::new(),
        }
    }

    /// After a rebalance: the `held` partitions stop waiting; every partition the store has
    /// (`stored`) and the stage does not hold starts waiting at `now`, unless it already is.
    pub fn track(&mut self, held: &HashSet<i32>, stored: &[i32], now: Instant) {
        self.waiting
            .retain(|p, _| stored.contains(p) && !held.contains(p));
        for p in stored.iter().filter(|p| !held.contains(p)) {
            self.waiting.entry(*p).or_insert(now);
        }
    }

    /// The partitions that have waited for the grace period by `now`, in ascending order; they
    /// stop waiting.
    pub fn due(&mut self, now: Instant) -> Vec<i32> {
        let mut due: Vec<i32> = self
            .waiting
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= self.grace)
            .map(|(p, _)| *p)
            .collect();
        due.sort_unstable();
        for p in &due {
            self.waiting.remove(p);
        }
        due
    }

    /// One step of the stage loop: after a rebalance (`rebalanced`), looks at which partitions
    /// the store has and the stage does not hold; then deletes those whose grace has passed
    /// (off the async workers: a drop costs one deletion per row).
    pub async fn step(
        &mut self,
        stage: &'static str,
        store: &ProfileStore,
        held: &HashSet<i32>,
        rebalanced: bool,
    ) -> Result<(), StageError> {
        if rebalanced {
            self.track(held, &store.partitions()?, Instant::now());
        }
        let due = self.due(Instant::now());
        if due.is_empty() {
            return Ok(());
        }
        let s = store.clone();
        let grace_s = self.grace.as_secs_f64();
        tokio::task::spawn_blocking(move || {
            due.into_iter().try_for_each(|p| {
                s.evict(p)?;
                tracing::info!(stage, partition = p, grace_s, "table partition dropped: not held again within the grace period (a later assignment reads it from the beginning)");
                Ok::<_, hookline_state_store::StoreError>(())
            })
        })
        .await
        .expect("dropping a table partition does not panic")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_partition_not_held_again_within_the_grace_period_is_due() {
        let t0 = Instant::now();
        let mut e = Evictions::new(10 * MIN);
        // Held 1; the store also has 0 and 2 (left from before a restart, or just revoked).
        e.track(&HashSet::from([1]), &[0, 1, 2], t0);
        assert!(e.due(t0 + 9 * MIN).is_empty(), "within the grace period");
        // 0 comes back within the grace period: it stops waiting.
        e.track(&HashSet::from([0, 1]), &[0, 1, 2], t0 + 6 * MIN);
        assert_eq!(e.due(t0 + 10 * MIN), vec![2]);
        assert!(e.due(t0 + 20 * MIN).is_empty(), "due once");
        // 0 leaves again: its wait starts anew, from that rebalance.
        e.track(&HashSet::from([1]), &[0, 1], t0 + 7 * MIN);
        // A later rebalance that still does not give it back does not restart the wait.
        e.track(&HashSet::from([1]), &[0, 1], t0 + 12 * MIN);
        assert!(e.due(t0 + 16 * MIN).is_empty());
        assert_eq!(e.due(t0 + 17 * MIN), vec![0]);
    }

    #[test]
    fn a_partition_the_store_no_longer_has_stops_waiting() {
        let t0 = Instant::now();
        let mut e = Evictions::new(MIN);
        e.track(&HashSet::new(), &[3, 4], t0);
        // 4 was dropped meanwhile (read again from the beginning by a restore, say).
        e.track(&HashSet::new(), &[3], t0 + Duration::from_secs(1));
        assert_eq!(e.due(t0 + 2 * MIN), vec![3]);
    }

    #[test]
    fn a_zero_grace_drops_at_once_and_a_clock_going_back_does_not_panic() {
        let t0 = Instant::now() + MIN;
        let mut e = Evictions::new(Duration::ZERO);
        e.track(&HashSet::new(), &[5], t0);
        assert_eq!(e.due(t0), vec![5]);
        let mut e = Evictions::new(MIN);
        e.track(&HashSet::new(), &[5], t0);
        assert!(e.due(t0 - MIN).is_empty());
    }
}
