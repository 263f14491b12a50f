//! Ordered subscriptions whose queue is full block only themselves.
//!
//! An ordered subscription cannot move its overflow to the retry path (that would let later
//! deliveries overtake it). Instead, when its endpoint will not take a delivery, the loop
//! *holds* the subscription on that partition: the delivery stays unfinished (so the commit
//! point stays at it), every later record of the subscription is passed over, and the
//! partition keeps flowing for everyone else. Once the endpoint has room again, the loop seeks
//! the partition back to the first delivery not taken and reads forward: records it already
//! handled are passed over, the held subscription's are taken in order.
//!
//! The price is re-reading the partition from the held delivery (no records written), and a
//! commit point that lags while a subscription is held (a crash repeats what was finished after
//! it; receivers drop repeats by delivery id).

use std::collections::HashMap;

use hookline_model::SubscriptionId;

/// What to do with a record just read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Already handled before a seek brought reading back over it: pass over it, and leave its
    /// bookkeeping alone (it may still be in flight).
    Handled,
    /// Not seen before, or of a held subscription at or after its first delivery not taken.
    New,
}

/// What became of an ordered subscription's record that was offered to its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Taken.
    Taken,
    /// Not taken: the subscription is (now) held here; the record stays unfinished.
    Held,
    /// Passed over without being offered: an earlier record of the subscription is held.
    Blocked,
}

#[derive(Debug)]
struct SubHold {
    /// The subscription's records at or after this offset have not been taken.
    from: i64,
    /// Passing over its records until a seek brings reading back to `from`.
    blocked: bool,
}

#[derive(Debug, Default)]
struct Part {
    /// The next offset never read before.
    high: i64,
    /// The offset after the last one read.
    position: i64,
    subs: HashMap<SubscriptionId, SubHold>,
}

/// Held ordered subscriptions, per partition.
#[derive(Debug, Default)]
pub struct Holds {
    parts: HashMap<i32, Part>,
}

impl Holds {
    /// Classifies a record at `offset` of `sub` just read from `partition`.
    pub fn read(&mut self, partition: i32, offset: i64, sub: &SubscriptionId) -> Read {
        let p = self.parts.entry(partition).or_default();
        p.position = offset + 1;
        let reread = offset < p.high;
        p.high = p.high.max(offset + 1);
        match p.subs.get(sub) {
            Some(h) if offset >= h.from => Read::New,
            Some(_) => Read::Handled,
            None if reread => Read::Handled,
            None => Read::New,
        }
    }

    /// An ordered subscription's record (classified [`Read::New`]) is offered to its endpoint
    /// by `try_take`, unless an earlier record of the subscription is held.
    pub fn offer(
        &mut self,
        partition: i32,
        offset: i64,
        sub: &SubscriptionId,
        try_take: impl FnOnce() -> bool,
    ) -> Offer {
        let p = self.parts.entry(partition).or_default();
        if p.subs.get(sub).is_some_and(|h| h.blocked) {
            return Offer::Blocked;
        }
        if try_take() {
            let caught_up = offset + 1 >= p.high;
            match p.subs.get_mut(sub) {
                Some(_) if caught_up => {
                    p.subs.remove(sub);
                }
                Some(h) => h.from = offset + 1,
                None => {}
            }
            Offer::Taken
        } else {
            p.subs.insert(
                sub.clone(),
                SubHold {
                    from: offset,
                    blocked: true,
                },
            );
            Offer::Held
        }
    }

    /// Subscriptions held on some partition.
    pub fn held(&self) -> Vec<(i32, SubscriptionId)> {
        let mut out = Vec::new();
        for (p, part) in &self.parts {
            for (s, h) in &part.subs {
                if h.blocked {
                    out.push((*p, s.clone()));
                }
            }
        }
        out
    }

    /// The subscription's endpoint has room again: unblocks it and returns the offset to seek
    /// `partition` back to, if reading must go back.
    pub fn release(&mut self, partition: i32, sub: &SubscriptionId) -> Option<i64> {
        let p = self.parts.get_mut(&partition)?;
        let h = p.subs.get_mut(sub)?;
        if !h.blocked {
            return None;
        }
        h.blocked = false;
        (h.from < p.position).then_some(h.from)
    }

    /// The partition was revoked: its next owner starts from the commit point.
    pub fn forget(&mut self, partition: i32) {
        self.parts.remove(&partition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SubscriptionId {
        SubscriptionId(s.into())
    }

    /// Reads `records` (offset, subscription) through the holds; `room(sub)` says whether the
    /// endpoint takes; returns the offsets taken.
    fn pass(
        h: &mut Holds,
        records: &[(i64, &str)],
        room: &mut dyn FnMut(&str) -> bool,
    ) -> Vec<i64> {
        let mut taken = Vec::new();
        for (o, s) in records {
            if h.read(0, *o, &id(s)) == Read::Handled {
                continue;
            }
            if s.starts_with("ord") {
                if h.offer(0, *o, &id(s), || room(s)) == Offer::Taken {
                    taken.push(*o);
                }
            } else {
                taken.push(*o);
            }
        }
        taken
    }

    #[test]
    fn a_held_subscription_blocks_itself_and_resumes_in_order_after_a_seek() {
        let recs: Vec<(i64, &str)> = (0..10)
            .map(|o| (o, if o % 2 == 0 { "ord" } else { "other" }))
            .collect();
        let mut h = Holds::default();
        // The endpoint takes two, then is full.
        let mut left = 2;
        let first = pass(&mut h, &recs, &mut |_| {
            left -= 1;
            left >= 0
        });
        assert_eq!(
            first,
            vec![0, 1, 2, 3, 5, 7, 9],
            "others flow; ord stops at 4"
        );
        assert_eq!(h.held(), vec![(0, id("ord"))]);
        let seek = h.release(0, &id("ord")).expect("seek back");
        assert_eq!(seek, 4);
        let again: Vec<(i64, &str)> = recs.iter().copied().filter(|(o, _)| *o >= seek).collect();
        let second = pass(&mut h, &again, &mut |_| true);
        assert_eq!(second, vec![4, 6, 8], "only the held records, in order");
        assert!(h.held().is_empty());
        // New records are taken normally; re-reads of handled ones are not.
        assert_eq!(
            pass(&mut h, &[(10, "ord"), (11, "other")], &mut |_| true),
            vec![10, 11]
        );
        assert_eq!(
            pass(&mut h, &[(9, "other"), (10, "ord")], &mut |_| true),
            Vec::<i64>::new()
        );
    }

    #[test]
    fn holding_again_during_the_reread_keeps_the_order() {
        let recs: Vec<(i64, &str)> = (0..6).map(|o| (o, "ord")).collect();
        let mut h = Holds::default();
        let mut left = 1;
        assert_eq!(
            pass(&mut h, &recs, &mut |_| {
                left -= 1;
                left >= 0
            }),
            vec![0]
        );
        let seek = h.release(0, &id("ord")).unwrap();
        assert_eq!(seek, 1);
        let mut left = 2;
        let again: Vec<(i64, &str)> = recs.iter().copied().filter(|(o, _)| *o >= seek).collect();
        assert_eq!(
            pass(&mut h, &again, &mut |_| {
                left -= 1;
                left >= 0
            }),
            vec![1, 2]
        );
        let seek = h.release(0, &id("ord")).unwrap();
        assert_eq!(seek, 3);
        let again: Vec<(i64, &str)> = recs.iter().copied().filter(|(o, _)| *o >= seek).collect();
        assert_eq!(pass(&mut h, &again, &mut |_| true), vec![3, 4, 5]);
        assert!(h.held().is_empty());
    }

    #[test]
    fn releasing_what_is_not_held_does_nothing() {
        let mut h = Holds::default();
        assert_eq!(h.release(0, &id("x")), None);
        h.read(0, 0, &id("x"));
        h.forget(0);
        assert_eq!(h.release(0, &id("x")), None);
    }
}
