//! Group membership beyond what librdkafka does by itself.
//!
//! - **Static membership** (KIP-345), opt-in: with `HOOKLINE_INSTANCE_ID` (a StatefulSet pod
//!   name, say) an instance joins its groups under that `group.instance.id`, so a restarted
//!   instance takes its predecessor's place at once, without a rebalance. A static member does
//!   not leave its group when it closes (librdkafka follows KIP-345), so a stage that stops on
//!   purpose calls [`leave_group`] first: its partitions move to the others at once instead of
//!   after the session timeout. The local broker (Tansu 0.6) never expires a static member that
//!   is gone, which is why this is not the default (`docs/reliability.md`).
//! - **Partitions held by nobody** ([`StuckGroupWatch`]): a coordinator may settle a group in
//!   which some partitions are assigned to no live member. The local broker (Tansu 0.6) does
//!   when a member joins while the killed members it replaces still lead the group (nobody
//!   holds anything), and when a member of a settled group misses its heartbeats (the
//!   survivors are answered from the old assignment, so the dead member's partitions go to
//!   nobody); either stays so until the membership changes again. Every member watches the
//!   group's committed offsets: when a partition it does not hold has stood still behind a
//!   backlog for well over a session timeout while its own partitions moved, it leaves and
//!   joins again, which starts a proper rebalance. (The local broker does not answer
//!   DescribeGroups, so the member cannot ask who holds what.) On Apache Kafka a partition
//!   stands still only when its owner is stalled (an ordered subscription held at a failing
//!   endpoint): each such stall costs a rebalance after 20 s, then after 40 s, 80 s… at most
//!   one per 5 minutes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};

use crate::{KafkaError, KafkaSettings};

/// The `group.instance.id` for `configured` (`HOOKLINE_INSTANCE_ID`): none when unset, empty
/// or `none`.
pub fn static_instance_id(configured: Option<&str>) -> Option<String> {
    configured
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("none"))
        .map(str::to_owned)
}

/// Leaves the consumer's group now, waiting up to `within` for its partitions to be revoked
/// (the rebalance callback runs), so that a static member's partitions go to the others at
/// once. Records fetched meanwhile are dropped unprocessed: their offsets were not stored.
pub async fn leave_group<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    within: Duration,
) {
    consumer.unsubscribe();
    let _ = tokio::time::timeout(within, async {
        while consumer.assignment().map(|a| a.count()).unwrap_or(0) > 0 {
            let _ = tokio::time::timeout(Duration::from_millis(50), consumer.recv()).await;
        }
    })
    .await;
}

/// How long a partition's backlog must have stood still, held by no member this one can see
/// consuming, before this member rejoins (well over a session timeout, so that the sessions of
/// killed members expire and the coordinator's own rebalance comes first).
const STALLED_FOR: Duration = Duration::from_secs(20);
/// The longest wait between two rejoins for a stall that rejoining did not cure (a partition
/// whose owner is merely slow: an ordered subscription held at a failing endpoint, say).
const MOST_PATIENCE: Duration = Duration::from_secs(300);
/// How often a member looks at the group's progress.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// Notices partitions of a group's topic that nobody consumes, and rejoins the group.
///
/// A partition not assigned to this member whose committed offset stood still behind a
/// backlog for [`STALLED_FOR`], while this member's own partitions moved (or it has none, or
/// they have no backlog), is taken as held by nobody: the member leaves and joins again, which
/// starts a proper rebalance. If the same stall outlives the rejoin, the next one waits twice
/// as long, up to [`MOST_PATIENCE`]; the wait starts over once nothing stands still.
///
/// The looking happens on a thread of its own with a client of its own (it never joins the
/// group): its broker requests block for as long as a busy broker takes, and must not hold up
/// the stage's loop. The loop only tells it what it holds and asks whether to rejoin
/// ([`StuckGroupWatch::check`]).
pub struct StuckGroupWatch {
    group: String,
    topic: String,
    shared: Arc<Watched>,
}

/// What the loop and the watching thread share.
#[derive(Default)]
struct Watched {
    mine: Mutex<HashSet<i32>>,
    rejoin: AtomicBool,
    stop: AtomicBool,
}

impl StuckGroupWatch {
    /// Starts watching `topic`'s partitions in `group`; `delay` is how long a record waits
    /// unconsumed on purpose (a delay tier's delay; zero elsewhere).
    pub fn spawn(
        settings: &KafkaSettings,
        group: &str,
        topic: &str,
        delay: Duration,
    ) -> Result<Self, KafkaError> {
        // group.id is the watched group's, to read its committed offsets; the client never
        // subscribes, so it never joins.
        let client: BaseConsumer = settings.table_consumer(group).create()?;
        let shared = Arc::new(Watched::default());
        let (t, s) = (topic.to_owned(), shared.clone());
        let mut stalls = Stalls::new(delay);
        std::thread::Builder::new()
            .name(format!("watch-{topic}"))
            .spawn(move || {
                while !s.stop.load(Ordering::Relaxed) {
                    sleep_unless_stopped(&s.stop, LOOK_EVERY);
                    let Some(progress) = progress(&client, &t) else {
                        continue;
                    };
                    let mine = s.mine.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    if let Some((partition, backlog)) = stalls.note(Instant::now(), &mine, &progress) {
                        tracing::warn!(topic = %t, partition, backlog, patience = ?stalls.patience,
                            "a partition this member does not hold has not been consumed; joining the group again");
                        stalls.rejoined();
                        s.rejoin.store(true, Ordering::Relaxed);
                    }
                }
            })
            .map_err(|e| KafkaError::CatchUp {
                topic: topic.to_owned(),
                reason: format!("starting the group watch thread: {e}"),
            })?;
        Ok(Self {
            group: group.to_owned(),
            topic: topic.to_owned(),
            shared,
        })
    }

    /// Called by the consumer's loop as often as it likes (a local call): tells the watch
    /// which partitions this member holds and, when the watch asks for it, makes the consumer
    /// rejoin its group. Returns true when it did.
    pub fn check<C: ConsumerContext + 'static>(&mut self, consumer: &StreamConsumer<C>) -> bool {
        if let Ok(a) = consumer.assignment() {
            let mine = a
                .elements_for_topic(&self.topic)
                .iter()
                .map(|e| e.partition())
                .collect();
            *self
                .shared
                .mine
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = mine;
        }
        if !self.shared.rejoin.swap(false, Ordering::Relaxed) {
            return false;
        }
        consumer.unsubscribe();
        if let Err(e) = consumer.subscribe(&[self.topic.as_str()]) {
            tracing::warn!(group = %self.group, error = %e, "subscribing again failed");
        }
        true
    }
}

impl Drop for StuckGroupWatch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn sleep_unless_stopped(stop: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(100);
    let until = Instant::now() + total;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step);
    }
}

/// The watch's decision: which partitions stood still behind a backlog, since when.
struct Stalls {
    /// Per partition: since when its committed offset has stood still behind a backlog, and at
    /// which offset.
    still: HashMap<i32, (Instant, i64)>,
    /// How long a stall must last before the next rejoin.
    patience: Duration,
    /// How long a record may wait unconsumed on purpose (a delay tier's delay).
    delay: Duration,
}

impl Stalls {
    fn new(delay: Duration) -> Self {
        Self {
            still: HashMap::new(),
            patience: STALLED_FOR,
            delay,
        }
    }

    /// After a rejoin: the stalls start over, and the next rejoin for one waits longer.
    fn rejoined(&mut self) {
        self.still.clear();
        self.patience = (self.patience * 2).min(MOST_PATIENCE);
    }

    /// Takes one look's `(committed, end)` per partition; returns the partition to rejoin for
    /// (and its backlog) when one not in `mine` stood still long enough.
    fn note(
        &mut self,
        now: Instant,
        mine: &HashSet<i32>,
        progress: &HashMap<i32, (i64, i64)>,
    ) -> Option<(i32, i64)> {
        let mut mine_stood_still = false;
        for (&p, &(committed, end)) in progress {
            if committed >= end {
                self.still.remove(&p);
                continue;
            }
            match self.still.get(&p) {
                // Stood still since the last look at least, and longer than records wait.
                Some(&(since, at)) if at == committed => {
                    mine_stood_still |= mine.contains(&p) && now - since > self.delay;
                }
                _ => {
                    self.still.insert(p, (now, committed));
                }
            }
        }
        self.still.retain(|p, _| progress.contains_key(p));
        if self.still.is_empty() {
            self.patience = STALLED_FOR;
            return None;
        }
        if mine_stood_still {
            return None;
        }
        self.still
            .iter()
            .filter(|(p, (since, _))| {
                !mine.contains(p) && now - *since >= self.delay + self.patience
            })
            .map(|(&p, _)| (p, progress[&p].1 - progress[&p].0))
            .next()
    }
}

/// Per partition of `topic`: the group's committed offset (a partition without a commit
/// counts from its start) and the partition's end offset.
fn progress(consumer: &BaseConsumer, topic: &str) -> Option<HashMap<i32, (i64, i64)>> {
    let timeout = Duration::from_secs(5);
    let md = consumer.fetch_metadata(Some(topic), timeout).ok()?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut out = HashMap::new();
    for p in md.topics().first()?.partitions() {
        tpl.add_partition(topic, p.id());
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout).ok()?;
        out.insert(p.id(), (low, high));
    }
    for e in consumer.committed_offsets(tpl, timeout).ok()?.elements() {
        if let (rdkafka::Offset::Offset(o), Some(entry)) = (e.offset(), out.get_mut(&e.partition()))
        {
            entry.0 = o;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(w: &mut Stalls, at: Instant, mine: &[i32], p: &[(i32, i64, i64)]) -> Option<i32> {
        let mine = mine.iter().copied().collect();
        let progress = p.iter().map(|&(p, c, e)| (p, (c, e))).collect();
        w.note(at, &mine, &progress).map(|(p, _)| p)
    }

    #[test]
    fn a_partition_nobody_consumes_is_found_after_the_patience() {
        let mut w = Stalls::new(Duration::ZERO);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // Partition 1 is not ours and stands still at 5 of 50; ours (0) moves.
        assert_eq!(look(&mut w, t0, &[0], &[(0, 10, 90), (1, 5, 50)]), None);
        assert_eq!(
            look(&mut w, t0 + s(10), &[0], &[(0, 20, 90), (1, 5, 50)]),
            None
        );
        assert_eq!(
            look(&mut w, t0 + s(20), &[0], &[(0, 30, 90), (1, 5, 50)]),
            Some(1)
        );
    }

    #[test]
    fn nothing_is_done_while_our_own_backlog_stands_still_too() {
        let mut w = Stalls::new(Duration::ZERO);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        for n in 0..10 {
            assert_eq!(
                look(&mut w, t0 + s(5 * n), &[0], &[(0, 10, 90), (1, 5, 50)]),
                None
            );
        }
    }

    #[test]
    fn a_moving_or_caught_up_partition_is_not_stalled_and_the_patience_starts_over() {
        let mut w = Stalls::new(Duration::ZERO);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        w.patience = MOST_PATIENCE;
        assert_eq!(look(&mut w, t0, &[], &[(0, 10, 90), (1, 50, 50)]), None);
        assert_eq!(
            look(&mut w, t0 + s(30), &[], &[(0, 11, 90), (1, 50, 60)]),
            None
        );
        assert_eq!(
            look(&mut w, t0 + s(60), &[], &[(0, 90, 90), (1, 60, 60)]),
            None
        );
        assert_eq!(w.patience, STALLED_FOR);
        // With nothing assigned, any standing backlog counts.
        assert_eq!(
            look(&mut w, t0 + s(70), &[], &[(0, 90, 95), (1, 60, 60)]),
            None
        );
        assert_eq!(
            look(&mut w, t0 + s(90), &[], &[(0, 90, 95), (1, 60, 60)]),
            Some(0)
        );
    }

    #[test]
    fn on_a_delay_tier_a_stall_counts_once_it_outlasts_the_delay() {
        let mut w = Stalls::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // Ours (0) waits out its delay, standing still: that is no stall of ours.
        assert_eq!(look(&mut w, t0, &[0], &[(0, 10, 20), (1, 5, 50)]), None);
        assert_eq!(
            look(&mut w, t0 + s(60), &[0], &[(0, 10, 20), (1, 5, 50)]),
            None
        );
        assert_eq!(
            look(&mut w, t0 + s(70), &[0], &[(0, 20, 20), (1, 5, 50)]),
            None
        );
        assert_eq!(
            look(&mut w, t0 + s(80), &[0], &[(0, 20, 20), (1, 5, 50)]),
            Some(1)
        );
    }

    #[test]
    fn an_instance_id_is_static_unless_unset_or_none() {
        assert_eq!(static_instance_id(Some("pod-3")).as_deref(), Some("pod-3"));
        assert_eq!(static_instance_id(Some("none")), None);
        assert_eq!(static_instance_id(Some(" ")), None);
        assert_eq!(static_instance_id(None), None);
    }
}
