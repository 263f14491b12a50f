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
    /// The last commit point handed out.
    stored: i64,
}

/// Per-partition ordered completion tracking for one topic.
#[derive(Debug, Default)]
pub struct Finalizer {
    parts: HashMap<i32, Part>,
}

impl Finalizer {
    pub fn begin(&mut self, partition: i32, offset: i64) {
        let p = self.parts.entry(partition).or_default();
        p.pending.insert(offset);
        p.next = p.next.max(offset + 1);
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

    /// The partition was revoked: its unfinished records belong to the next owner.
    pub fn forget(&mut self, partition: i32) {
        self.parts.remove(&partition);
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
}
