//! Rebalances without loss and with few duplicates: per owned partition a cancellation token,
//! the commit points ([`Finalizer`]) and the attempts in flight, shared by a loop, its jobs and
//! the consumer's rebalance callbacks.
//!
//! When partitions are revoked, the work of theirs that has not started is dropped (the next
//! owner reads it again from the commit point), the attempts in flight are waited for (up to
//! [`REVOKE_DRAIN`]), and the commit point reached is committed before the partitions go. An
//! instance therefore never keeps sending for a partition it no longer owns, which would
//! duplicate work and break an ordered subscription's order.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::finalizer::Finalizer;
use crate::Shared;

/// How long a revocation waits for the revoked partitions' attempts in flight, so their outcomes
/// are committed by this instance instead of being repeated by the next owner. Shorter than the
/// default `session.timeout.ms`; heartbeats go on meanwhile (librdkafka sends them from its own
/// thread).
pub const REVOKE_DRAIN: Duration = Duration::from_secs(5);

/// What the loop, its jobs and the rebalance callbacks share: per owned partition its
/// cancellation token, the commit points ([`Finalizer`]) and the attempts in flight.
pub struct Handover {
    pub(crate) topic: String,
    stop: CancellationToken,
    state: Mutex<HandoverState>,
    /// Signalled whenever an attempt ends, for a revocation waiting on them.
    attempt_ended: Condvar,
    /// Partitions revoked since the loop last looked (to clear its pause bookkeeping).
    revoked: Mutex<Vec<i32>>,
}

#[derive(Default)]
pub(crate) struct HandoverState {
    /// Owned partitions and the token of their work.
    owned: HashMap<i32, CancellationToken>,
    pub(crate) finalizer: Finalizer,
    /// Attempts under way per partition (past their waits, not yet published).
    attempting: HashMap<i32, usize>,
}

impl Handover {
    pub(crate) fn new(topic: String, stop: CancellationToken) -> Self {
        Self {
            topic,
            stop,
            state: Mutex::new(HandoverState::default()),
            attempt_ended: Condvar::new(),
            revoked: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HandoverState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A record read from `partition`: its token, or `None` for a record to skip: one of a
    /// partition this instance no longer owns (fetched before the revocation), or one it
    /// already finished before the partition was revoked and handed back.
    pub(crate) fn begin(&self, partition: i32, offset: i64) -> Option<CancellationToken> {
        let mut g = self.lock();
        let token = g
            .owned
            .get(&partition)
            .filter(|t| !t.is_cancelled())?
            .clone();
        g.finalizer.begin(partition, offset);
        if g.finalizer.finished_before(partition, offset) {
            g.finalizer.end(partition, offset);
            return None;
        }
        Some(token)
    }

    /// The record is done (its outputs acknowledged).
    pub(crate) fn end(&self, partition: i32, offset: i64) {
        self.lock().finalizer.end(partition, offset);
    }

    /// An attempt is about to go out; `false` if its partition was revoked (or the loop is
    /// stopping) meanwhile (checked
    /// under the lock the revocation takes, so a revocation waits for every attempt it let go).
    pub(crate) fn attempt_started(&self, partition: i32, cancel: &CancellationToken) -> bool {
        let mut g = self.lock();
        if cancel.is_cancelled() {
            return false;
        }
        *g.attempting.entry(partition).or_default() += 1;
        true
    }

    pub(crate) fn attempt_ended(&self, partition: i32) {
        let mut g = self.lock();
        if let Some(n) = g.attempting.get_mut(&partition) {
            *n = n.saturating_sub(1);
        }
        drop(g);
        self.attempt_ended.notify_all();
    }

    /// Offsets to store: moved commit points of owned partitions.
    pub(crate) fn committable(&self) -> TopicPartitionList {
        let mut g = self.lock();
        let points = g.finalizer.committable();
        let mut tpl = TopicPartitionList::new();
        for (p, o) in points {
            if g.owned.contains_key(&p) {
                let _ = tpl.add_partition_offset(&self.topic, p, Offset::Offset(o));
            }
        }
        tpl
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.lock().finalizer.in_flight()
    }

    pub(crate) fn assigned(&self, partitions: &[i32]) {
        let mut g = self.lock();
        for p in partitions {
            g.owned.insert(*p, self.stop.child_token());
        }
    }

    /// Drops the partitions' waiting work, waits (bounded) for their attempts in flight, and
    /// returns the commit points reached, to be committed before the partitions go.
    pub(crate) fn revoke(&self, partitions: &[i32]) -> TopicPartitionList {
        let mut g = self.lock();
        for p in partitions {
            if let Some(t) = g.owned.get(p) {
                t.cancel();
            }
        }
        let busy = |g: &HandoverState| {
            partitions
                .iter()
                .any(|p| g.attempting.get(p).is_some_and(|n| *n > 0))
        };
        if busy(&g) {
            let wait = |g| {
                self.attempt_ended
                    .wait_timeout_while(g, REVOKE_DRAIN, |g| busy(g))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            };
            // Waiting blocks this thread (the one polling the consumer): let the runtime move
            // its other tasks elsewhere where it can.
            g = match tokio::runtime::Handle::try_current() {
                Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(|| wait(g))
                }
                _ => wait(g),
            };
            if busy(&g) {
                tracing::warn!(topic = %self.topic, ?partitions, "attempts still in flight after {REVOKE_DRAIN:?}; the next owner repeats them");
            }
        }
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            if let Some(o) = g.finalizer.point(*p) {
                let _ = tpl.add_partition_offset(&self.topic, *p, Offset::Offset(o));
            }
        }
        for p in partitions {
            g.owned.remove(p);
            g.finalizer.forget(*p);
            g.attempting.remove(p);
        }
        drop(g);
        self.revoked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(partitions);
        tpl
    }

    pub(crate) fn take_revoked(&self) -> Vec<i32> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The consumer's context: hands partitions over at rebalances through [`Handover`].
pub(crate) struct SenderContext {
    pub(crate) handover: Arc<Handover>,
    pub(crate) shared: Arc<Shared>,
    /// The consumer group, for the lag metric.
    pub(crate) group: String,
    /// The `client` label of the librdkafka gauges (`sender-deliveries-consumer`, …).
    pub(crate) client: String,
}

impl ClientContext for SenderContext {
    /// The consumer lag per assigned partition, the brokers' round trip and the queues, from
    /// librdkafka's statistics.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let topic = &self.handover.topic;
        for (p, lag) in hookline_kafka::lag::partition_lags(&statistics, topic) {
            self.shared.metrics.set_lag(&self.group, topic, p, lag);
        }
        hookline_kafka::stats::record(&self.shared.metrics, &self.client, &statistics);
    }
}

impl ConsumerContext for SenderContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts = partitions_of(tpl, &self.handover.topic);
            tracing::info!(topic = %self.handover.topic, partitions = ?parts, "partitions revoked: finishing their attempts in flight");
            self.shared
                .metrics
                .forget_lag(&self.group, &self.handover.topic, &parts);
            self.shared
                .metrics
                .rebalances
                .with_label_values(&["sender", "revoked"])
                .inc_by(parts.len() as u64);
            let points = self.handover.revoke(&parts);
            if points.count() > 0 {
                // Committed here, while the partitions are still ours, so the next owner starts
                // after everything this instance finished.
                if let Err(e) = consumer.commit(&points, CommitMode::Sync) {
                    tracing::warn!(topic = %self.handover.topic, error = %e, "committing revoked partitions failed; the next owner repeats their tail");
                }
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let parts = partitions_of(tpl, &self.handover.topic);
            tracing::info!(topic = %self.handover.topic, partitions = ?parts, "partitions assigned");
            // librdkafka keeps a partition the application paused paused across its revocation
            // and a new assignment, while the loop forgot the pause with the revocation: every
            // assignment starts unpaused, or a partition that comes back paused is never read
            // again (tests/sender_tiers.rs).
            if let Err(e) = consumer.resume(tpl) {
                tracing::warn!(topic = %self.handover.topic, error = %e, "resuming assigned partitions failed");
            }
            self.shared
                .metrics
                .rebalances
                .with_label_values(&["sender", "assigned"])
                .inc_by(parts.len() as u64);
            self.handover.assigned(&parts);
            // Another instance may have held some of these subscriptions meanwhile and moved
            // their breakers on: forget the breakers in memory, so each starts again from the
            // last record on `endpoint-health` (which every instance follows). Only the rolling
            // window of recent results is lost, never an open circuit or a failing-since time.
            self.shared.forget_breakers();
        }
    }
}

pub(crate) fn partitions_of(tpl: &TopicPartitionList, topic: &str) -> Vec<i32> {
    tpl.elements_for_topic(topic)
        .iter()
        .map(|e| e.partition())
        .collect()
}
