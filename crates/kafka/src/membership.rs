//! Group membership beyond what librdkafka does by itself.
//!
//! - **Static membership** (KIP-345), opt-in: with `HOOKLINE_INSTANCE_ID` (a StatefulSet pod
//!   name, say) an instance joins its groups under that `group.instance.id`, so a restarted
//!   instance takes its predecessor's place at once, without a rebalance. A static member does
//!   not leave its group when it closes (librdkafka follows KIP-345), so a stage that stops on
//!   purpose calls [`leave_group`] first: its partitions move to the others at once instead of
//!   after the session timeout. The local broker (Tansu 0.6) never expires a static member that
//!   is gone, which is why this is not the default (`docs/reliability.md`).
//! - **A stuck group** ([`StuckGroupWatch`]): a coordinator may settle a group in which no
//!   member holds any partition — the local broker does when a member joins while the members
//!   it replaces (killed, their sessions not yet expired) still lead the group, and then stays
//!   so. A member with nothing assigned watches the group's committed offsets: when a backlog
//!   has not moved for well over a session timeout, it leaves and joins again, which starts a
//!   proper rebalance. (The local broker does not answer DescribeGroups, so the member cannot
//!   ask who holds what.) On Apache Kafka a member with nothing assigned sees the others
//!   consume, so the watch does not act; if every holder is stalled, one extra rebalance is
//!   what it costs.

use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};

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

/// How long the group must have made no progress on a backlog, with nothing assigned to this
/// member, before it rejoins (well over a session timeout, so that the sessions of killed
/// members expire and the coordinator's own rebalance comes first).
const STALLED_FOR: Duration = Duration::from_secs(20);
/// How often a member with nothing assigned looks at the group's progress.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// Notices a group that settled with no member consuming a backlog, and rejoins it.
pub struct StuckGroupWatch {
    group: String,
    topic: String,
    last_look: Option<Instant>,
    /// Since when the group's committed offsets have stood still (and their sum then).
    still_since: Option<(Instant, i64)>,
}

impl StuckGroupWatch {
    pub fn new(group: &str, topic: &str) -> Self {
        Self {
            group: group.to_owned(),
            topic: topic.to_owned(),
            last_look: None,
            still_since: None,
        }
    }

    /// Called by the consumer's loop as often as it likes: it looks at most every
    /// `LOOK_EVERY`, so a loop may call it per batch. Returns true when it made the consumer
    /// rejoin its group.
    pub fn check<C: ConsumerContext + 'static>(&mut self, consumer: &StreamConsumer<C>) -> bool {
        let now = Instant::now();
        if self.last_look.is_some_and(|t| now - t < LOOK_EVERY) {
            return false;
        }
        self.last_look = Some(now);
        if consumer.assignment().map(|a| a.count()).unwrap_or(0) > 0 {
            self.still_since = None;
            return false;
        }
        let Some((committed, end)) = progress(consumer, &self.topic) else {
            return false;
        };
        self.still_since = match self.still_since {
            _ if committed >= end => None,
            Some((since, c)) if c == committed => Some((since, c)),
            _ => Some((now, committed)),
        };
        let Some((since, _)) = self.still_since else {
            return false;
        };
        if now - since < STALLED_FOR {
            return false;
        }
        tracing::warn!(group = %self.group, topic = %self.topic, backlog = end - committed,
            "no member has consumed the group's backlog for {STALLED_FOR:?} and this one holds no partition; joining again");
        consumer.unsubscribe();
        if let Err(e) = consumer.subscribe(&[self.topic.as_str()]) {
            tracing::warn!(group = %self.group, error = %e, "subscribing again failed");
        }
        self.still_since = None;
        true
    }
}

/// The group's committed offsets and the topic's end offsets, each summed over the topic's
/// partitions (a partition without a commit counts from its start).
fn progress<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    topic: &str,
) -> Option<(i64, i64)> {
    let timeout = Duration::from_secs(1);
    let md = consumer.fetch_metadata(Some(topic), timeout).ok()?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut starts = std::collections::HashMap::new();
    let end = {
        let mut end = 0;
        for p in md.topics().first()?.partitions() {
            tpl.add_partition(topic, p.id());
            let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout).ok()?;
            starts.insert(p.id(), low);
            end += high;
        }
        end
    };
    let committed = consumer
        .committed_offsets(tpl, timeout)
        .ok()?
        .elements()
        .iter()
        .map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => o,
            _ => starts.get(&e.partition()).copied().unwrap_or(0),
        })
        .sum();
    Some((committed, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_id_is_static_unless_unset_or_none() {
        assert_eq!(static_instance_id(Some("pod-3")).as_deref(), Some("pod-3"));
        assert_eq!(static_instance_id(Some("none")), None);
        assert_eq!(static_instance_id(Some(" ")), None);
        assert_eq!(static_instance_id(None), None);
    }
}
