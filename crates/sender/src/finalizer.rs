//! Which input offsets may be committed when records finish out of order.
//!
//! Deliveries to different endpoints finish in any order; an offset may only be committed once
//! every record before it in the partition is finished (the ordered finalizer Vector's Kafka
//! source uses). A slow endpoint therefore holds back the commit point, never the work.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
struct Part {
    pending: BTreeSet<i64>,
    /// One past the highest offset begun.
    next: i64,
    /// The lowest offset begun.
    first: Option<i64>,
    /// The last commit point handed out.
    stored: i64,
}

/// Per-partition ordered completion tracking for one topic.
#[derive(Debug, Default)]
pub struct Finalizer {
    parts: HashMap<i32, Part>,
    /// What was known of revoked partitions: records in `[from, next)` that are not in
    /// `pending` were finished here, and need not be sent again when the partition comes back
    /// (the eager rebalance protocol revokes every partition and hands most straight back).
    revoked: HashMap<i32, Part>,
}

impl Finalizer {
    pub fn begin(&mut self, partition: i32, offset: i64) {
        let p = self.parts.entry(partition).or_default();
        p.pending.insert(offset);
        p.next = p.next.max(offset + 1);
        p.first = Some(p.first.map_or(offset, |f| f.min(offset)));
    }

    pub fn end(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.parts.get_mut(&partition) {
            p.pending.remove(&offset);
        }
    }

    /// Commit points that moved since the last call: the lowest unfinished offset, or one past
    /// the highest begun when nothing is unfinished.
    pub fn committable(&mut self) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for (partition, p) in &mut self.parts {
            let point = p.pending.first().copied().unwrap_or(p.next);
            if point > p.stored {
                p.stored = point;
                out.push((*partition, point));
            }
        }
        out
    }

    /// The partition was revoked: its unfinished records belong to the next owner. Which
    /// records past the commit point were finished is remembered, for [`Self::finished_before`].
    pub fn forget(&mut self, partition: i32) {
        if let Some(p) = self.parts.remove(&partition) {
            self.revoked.insert(partition, p);
        }
    }

    /// Was this record finished here under an earlier assignment of its partition? Such a
    /// record is begun and ended at once instead of being sent again. Whether another instance
    /// sent it meanwhile does not matter: its outputs were acknowledged.
    pub fn finished_before(&mut self, partition: i32, offset: i64) -> bool {
        let Some(p) = self.revoked.get(&partition) else {
            return false;
        };
        if offset >= p.next {
            // Past everything known; reading only goes forward from here.
            self.revoked.remove(&partition);
            return false;
        }
        p.first.is_some_and(|f| offset >= f) && !p.pending.contains(&offset)
    }

    /// The partition's commit point now, moved or not.
    pub fn point(&self, partition: i32) -> Option<i64> {
        let p = self.parts.get(&partition)?;
        p.first?;
        Some(p.pending.first().copied().unwrap_or(p.next))
    }

    pub fn in_flight(&self) -> usize {
        self.parts.values().map(|p| p.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_point_waits_for_the_oldest_unfinished_record() {
        let mut f = Finalizer::default();
        for o in 10..15 {
            f.begin(0, o);
        }
        f.begin(1, 3);
        f.end(0, 11);
        f.end(0, 12);
        let mut c = f.committable();
        c.sort();
        assert_eq!(c, vec![(0, 10), (1, 3)], "10 and 3 are still in flight");
        f.end(0, 10);
        let mut c = f.committable();
        c.sort();
        assert_eq!(c, vec![(0, 13)]);
        f.end(0, 13);
        f.end(0, 14);
        f.end(1, 3);
        let mut c = f.committable();
        c.sort();
        assert_eq!(c, vec![(0, 15), (1, 4)]);
        assert!(f.committable().is_empty(), "nothing new");
        assert_eq!(f.in_flight(), 0);
    }

    #[test]
    fn a_partition_that_comes_back_skips_what_was_finished_past_the_commit_point() {
        let mut f = Finalizer::default();
        for o in 20..25 {
            f.begin(0, o);
        }
        f.end(0, 21);
        f.end(0, 23);
        assert_eq!(f.committable(), vec![(0, 20)]);
        f.forget(0);
        // Read again from the commit point, 20.
        let skipped: Vec<i64> = (20..27).filter(|o| f.finished_before(0, *o)).collect();
        assert_eq!(
            skipped,
            vec![21, 23],
            "only what was finished; 25 ends the memory"
        );
        assert!(
            !f.finished_before(0, 21),
            "forgotten once reading passed it"
        );
    }
}
