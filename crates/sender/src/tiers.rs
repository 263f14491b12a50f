//! The retry path: `retries` and its delay tiers.
//!
//! A delivery that must wait (a failed attempt's backoff, an open circuit, an endpoint whose
//! queue is full or whose next send is not due) is written to the tier whose delay is the
//! longest not above the wait: `retries` (no delay), `retries.5s`, `.1m`, `.10m`, `.1h`, `.6h`.
//! Every record of a tier waits the same time after it was written, so a tier partition is in
//! due order: its loop pauses the partition only until the record at its head is due (the
//! pattern Uber published for Kafka retry topics), and nothing waits in memory for long.
//!
//! When a tier's head is due, the record's own `not_before` decides: within
//! [`IN_MEMORY_WAIT`] it goes to its endpoint (which sleeps the rest); further off, it moves on
//! to the tier for what is left. Each move is one more record, and `hops` bounds them.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Waits up to this long are slept by the delivery's job, off the partition; longer waits go
/// through a tier. Also the longest a record of `retries` (no delay) holds the records behind it.
pub const IN_MEMORY_WAIT: Duration = Duration::from_secs(5);

/// One retry topic and the time its records wait after being written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub topic: String,
    pub delay: Duration,
    /// The delay as a metric label.
    pub label: String,
}

/// The retry topics, shortest delay first; the first is `retries` (no delay).
#[derive(Debug, Clone)]
pub struct Tiers(Vec<Tier>);

impl Tiers {
    /// From `(topic, delay)` pairs (see `Topics::retry_tiers`).
    pub fn new(list: Vec<(String, Duration)>) -> Self {
        let mut tiers: Vec<Tier> = list
            .into_iter()
            .map(|(topic, delay)| Tier {
                topic,
                delay,
                label: delay_label(delay),
            })
            .collect();
        tiers.sort_by_key(|t| t.delay);
        Self(tiers)
    }

    pub fn all(&self) -> &[Tier] {
        &self.0
    }

    /// The metric label of the tier writing to `topic`: its delay (`0s`, `5s`, `1m`, `6h`, `1d`),
    /// `other` for a topic that is no tier. Bounded by the number of tiers.
    pub fn label_of(&self, topic: &str) -> &str {
        self.0
            .iter()
            .find(|t| t.topic == topic)
            .map_or("other", |t| t.label.as_str())
    }

    /// The tier for a wait: the longest delay not above `wait` (`retries` below the shortest).
    pub fn for_wait(&self, wait: Duration) -> &Tier {
        self.0
            .iter()
            .rev()
            .find(|t| t.delay <= wait)
            .unwrap_or(&self.0[0])
    }
}

/// A tier's delay as its metric label: `0s`, `5s`, `1m`, `6h`, `1d` (the largest whole unit).
fn delay_label(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// What a tier loop does with the record at the head of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadAction {
    /// Not due in this tier yet: pause the partition for this long, then read it again.
    Pause(Duration),
    /// Due: hand it to its endpoint, which waits this long (at most [`IN_MEMORY_WAIT`]) first.
    Attempt(Duration),
    /// Due in this tier, but its own time is this far off: move it to the tier for that wait.
    Move(Duration),
}

/// Decides for a record at the head of a tier partition. `written_ago`: how long ago it was
/// written (from the record's timestamp; `None` if it has none); `until_due`: how long until its
/// own `not_before` (zero if past).
pub fn head_action(
    tier_delay: Duration,
    written_ago: Option<Duration>,
    until_due: Duration,
) -> HeadAction {
    if let Some(ago) = written_ago {
        // Never pause for longer than the record itself asks: a clock that moved, or a record
        // written to a longer tier than its wait, must not hold it past its time.
        let tier_wait = tier_delay.saturating_sub(ago).min(until_due);
        if tier_wait > Duration::ZERO && until_due > IN_MEMORY_WAIT {
            return HeadAction::Pause(tier_wait);
        }
    }
    if until_due <= IN_MEMORY_WAIT {
        HeadAction::Attempt(until_due)
    } else {
        HeadAction::Move(until_due)
    }
}

/// One link of a delivery's chain on the retry path: which delivery, which attempt is next,
/// and how many records it had on the path.
pub type Link = (String, u32, u32);

/// The links a loop finished recently. A crash between writing a record's successor and
/// committing the record makes the record be read and moved again, starting a second chain of
/// the same delivery; both chains' records are the same links, so the loop that finished one
/// drops the other when it meets it. Bounded: the oldest links are forgotten first.
#[derive(Debug)]
pub struct Recent {
    capacity: usize,
    inner: Mutex<(HashSet<Link>, VecDeque<Link>)>,
}

impl Recent {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    /// Remembers a finished link.
    pub fn finished(&self, link: Link) {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (set, order) = &mut *g;
        if set.insert(link.clone()) {
            order.push_back(link);
            while order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
    }

    /// Whether the link was finished already (this record is a second chain's).
    pub fn contains(&self, link: &Link) -> bool {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.0.contains(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers() -> Tiers {
        let s = |n| Duration::from_secs(n);
        Tiers::new(vec![
            ("r.1m".into(), s(60)),
            ("r".into(), s(0)),
            ("r.5s".into(), s(5)),
            ("r.1h".into(), s(3600)),
        ])
    }

    #[test]
    fn each_tier_is_labelled_by_its_delay() {
        let t = tiers();
        assert_eq!(t.label_of("r"), "0s");
        assert_eq!(t.label_of("r.5s"), "5s");
        assert_eq!(t.label_of("r.1m"), "1m");
        assert_eq!(t.label_of("r.1h"), "1h");
        assert_eq!(t.label_of("elsewhere"), "other");
    }

    #[test]
    fn recent_links_are_remembered_up_to_the_capacity() {
        let r = Recent::new(2);
        let link = |n: u32| ("dlv_1".to_owned(), 2, n);
        r.finished(link(1));
        r.finished(link(1));
        r.finished(link(2));
        assert!(r.contains(&link(1)) && r.contains(&link(2)));
        r.finished(link(3));
        assert!(!r.contains(&link(1)), "the oldest goes first");
        assert!(r.contains(&link(3)));
        assert!(!r.contains(&("dlv_2".to_owned(), 2, 3)));
    }

    #[test]
    fn a_wait_goes_to_the_longest_tier_not_above_it() {
        let t = tiers();
        let at = |secs: u64| t.for_wait(Duration::from_secs(secs)).topic.clone();
        assert_eq!(at(0), "r");
        assert_eq!(at(4), "r");
        assert_eq!(at(5), "r.5s");
        assert_eq!(at(59), "r.5s");
        assert_eq!(at(60), "r.1m");
        assert_eq!(at(7200), "r.1h");
        assert_eq!(t.all()[0].topic, "r", "sorted by delay");
    }

    #[test]
    fn the_head_pauses_until_due_in_its_tier_then_goes_or_moves_on() {
        let s = Duration::from_secs;
        // Written 10 s ago to the 1 m tier, due in 2 min: pause 50 s.
        assert_eq!(
            head_action(s(60), Some(s(10)), s(120)),
            HeadAction::Pause(s(50))
        );
        // Due in the tier; 2 s left of its own wait: to the endpoint, which sleeps 2 s.
        assert_eq!(
            head_action(s(60), Some(s(60)), s(2)),
            HeadAction::Attempt(s(2))
        );
        // Due in the tier with 70 s left: move on to the tier for 70 s.
        assert_eq!(
            head_action(s(60), Some(s(61)), s(70)),
            HeadAction::Move(s(70))
        );
        // Never paused past its own time, and a record without a timestamp is looked at now.
        assert_eq!(
            head_action(s(3600), Some(s(1)), s(3)),
            HeadAction::Attempt(s(3))
        );
        assert_eq!(head_action(s(60), None, s(0)), HeadAction::Attempt(s(0)));
        // `retries` itself (no delay) never pauses.
        assert_eq!(
            head_action(s(0), Some(s(0)), s(30)),
            HeadAction::Move(s(30))
        );
    }
}
