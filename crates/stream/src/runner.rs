//! The stage loop: consume a batch, process each record (which queues outputs), await every
//! acknowledgement, then store the batch's offsets. librdkafka commits stored offsets every
//! second, on revocation and at shutdown, so a crash re-processes at most the uncommitted tail
//! (at-least-once; deliveries carry deterministic ids for receivers to drop duplicates).
//!
//! A stage that writes its own table (`TableMode::Own`) keeps each change's previous row until
//! the group has committed its offset (`ProfileStore::apply_change`); the loop learns of
//! commits from librdkafka's commit callback and has the store forget what they passed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookline_config::Topics;
use hookline_kafka::offsets::ProcessedOffsets;
use hookline_kafka::producer::Acks;
use hookline_kafka::quarantine::quarantine;
use hookline_kafka::table::TableTail;
use hookline_kafka::{KafkaError, KafkaSettings, Producer};
use hookline_telemetry::{Metrics, Readiness};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::ClientContext;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::commits::CommittedOffsets;
use crate::eviction::Evictions;
use crate::restore::{record_caught_up, restore, restore_starts, table_retention};
use crate::store::{ProfileStore, TableMode};
use crate::validate::{reason_class, too_large_reason};

/// How long an idle stage waits for a record before it looks at rebalances again.
const IDLE_TICK: Duration = Duration::from_millis(250);

/// Room a delivery leaves below the producer's record limit, so that the sender can wrap it
/// into a retry or dead-letter record (the delivery plus attempt counts, times and the last
/// error) and still produce that.
const DELIVERY_HEADROOM: usize = 16 * 1024;

/// Kafka's default `delete.retention.ms`, assumed when the broker does not report the table
/// topic's own.
pub(crate) const DEFAULT_TABLE_RETENTION: Duration = Duration::from_secs(24 * 3_600);

/// At most this long between two records of "caught up" per held partition. The catch-up time
/// only has to be well within the tombstone retention; a quarter of it, within 1 s..1 min.
const MAX_CATCH_UP_INTERVAL: Duration = Duration::from_secs(60);
/// How long a stopping stage waits for its partitions to be revoked as it leaves its group.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a stage stopped. All of these end the process; the orchestrator restarts it and it
/// resumes from its committed offsets.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error("kafka: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Store(#[from] hookline_state_store::StoreError),
    /// An output of one input record is larger than the producer may send (for a delivery:
    /// less room for the sender's retry envelope). The runner quarantines the input (reason
    /// `too-large`) instead of stopping.
    #[error("{output} would be {size} bytes, over the limit of {max} bytes")]
    OutputTooLarge {
        output: String,
        size: usize,
        max: usize,
    },
}

/// What a stage is.
#[derive(Debug, Clone)]
pub struct StageConfig {
    /// `tracking` or `profiles`: metric label and log field.
    pub name: &'static str,
    pub group_id: String,
    pub input_topic: String,
    pub table_mode: TableMode,
    pub topics: Topics,
    pub settings: KafkaSettings,
    /// Records processed between two offset stores.
    pub max_batch: usize,
    /// Records larger than this are quarantined.
    pub max_record_bytes: usize,
    /// How long the table topic keeps tombstones (`--table-retention`). `None`: ask the broker
    /// for the topic's `delete.retention.ms`, else 24 h.
    pub table_retention: Option<Duration>,
    /// How long the store keeps the rows of a partition the stage no longer holds
    /// (`--revoked-partition-grace`; see [`crate::eviction`]).
    pub revoked_partition_grace: Duration,
}

/// The outputs side of one batch, handed to the processor for each record.
pub struct BatchContext<'a> {
    pub stage: &'static str,
    pub producer: &'a Producer,
    pub acks: &'a mut Acks,
    pub topics: &'a Topics,
    pub metrics: &'a Metrics,
    pub store: &'a ProfileStore,
    pub max_record_bytes: usize,
}

impl BatchContext<'_> {
    /// Validates and decodes one input record; a bad one is quarantined with its reason and
    /// `None` is returned, so the stage goes on with the next record.
    pub async fn decode_or_quarantine<T: serde::de::DeserializeOwned>(
        &mut self,
        msg: &BorrowedMessage<'_>,
        kind: hookline_schemas::SchemaKind,
        key_of: impl Fn(&T) -> String,
    ) -> Result<Option<T>, StageError> {
        match crate::validate::decode_input(
            kind,
            msg.key(),
            msg.payload(),
            self.max_record_bytes,
            key_of,
        ) {
            Ok(v) => Ok(Some(v)),
            Err(reason) => {
                self.quarantine(msg, &reason).await?;
                Ok(None)
            }
        }
    }

    /// Counts a lookup in the profile table as joined or unjoined.
    pub fn count_join(&self, found: bool) {
        let counter = if found {
            &self.metrics.joined
        } else {
            &self.metrics.unjoined
        };
        counter.with_label_values(&[self.stage]).inc();
    }

    /// Offers `event` to the subscriptions and queues one delivery per match (keyed by
    /// subscription id); counts the record as routed or filtered.
    pub async fn route(
        &mut self,
        subscriptions: &crate::SubscriptionsView,
        event: &hookline_enrich::Enriched,
        source: hookline_model::SourcePosition,
    ) -> Result<(), StageError> {
        let deliveries: Vec<_> = {
            let table = subscriptions.read();
            table
                .matching(event, time::OffsetDateTime::now_utc())
                .map(|s| hookline_routing::build_delivery(event, &s.sub, Some(source.clone())))
                .collect()
        };
        if deliveries.is_empty() {
            self.metrics.filtered.with_label_values(&[self.stage]).inc();
        }
        // Encode and size-check every delivery before queuing any, so an event is either routed
        // whole or (too large) quarantined, never half delivered.
        let topic = &self.topics.deliveries;
        let mut encoded = Vec::with_capacity(deliveries.len());
        for d in &deliveries {
            let key = d.subscription_id.0.as_bytes();
            let bytes = serde_json::to_vec(d).map_err(|source| KafkaError::Serialize {
                topic: topic.clone(),
                source,
            })?;
            let size = key.len() + bytes.len();
            let max = self
                .producer
                .max_record_bytes()
                .saturating_sub(DELIVERY_HEADROOM);
            if size > max {
                return Err(StageError::OutputTooLarge {
                    output: format!(
                        "the delivery to {topic} for subscription {}",
                        d.subscription_id.0
                    ),
                    size,
                    max,
                });
            }
            encoded.push((key, bytes));
        }
        for (key, bytes) in encoded {
            self.producer
                .send(self.acks, topic, Some(key), Some(&bytes))
                .await?;
            self.metrics.routed.with_label_values(&[self.stage]).inc();
        }
        Ok(())
    }

    /// Sends `msg` to the quarantine topic with `reason`.
    pub async fn quarantine(
        &mut self,
        msg: &BorrowedMessage<'_>,
        reason: &str,
    ) -> Result<(), StageError> {
        self.metrics
            .quarantined
            .with_label_values(&[self.stage, reason_class(reason).as_str()])
            .inc();
        quarantine(
            self.producer,
            self.acks,
            &self.topics.quarantine,
            self.stage,
            msg,
            reason,
        )
        .await?;
        Ok(())
    }
}

/// A stage's per-record logic. It queues outputs through the context and returns; the runner
/// awaits their acknowledgements before committing.
#[allow(async_fn_in_trait)]
pub trait Processor {
    async fn process(
        &mut self,
        ctx: &mut BatchContext<'_>,
        msg: &BorrowedMessage<'_>,
    ) -> Result<(), StageError>;

    /// Called once the outputs `process` queued for a batch are all acknowledged, before the
    /// batch's input offsets are stored; what it queues is acknowledged before they are. The
    /// profiles stage writes its table rows here, after the deliveries they led to.
    async fn after_outputs(&mut self, _ctx: &mut BatchContext<'_>) -> Result<(), StageError> {
        Ok(())
    }
}

#[derive(Debug)]
enum RebalanceEvent {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

/// Collects rebalances and commits for the loop, which acts on them between records.
struct StageContext {
    /// `tracking` or `profiles`: the metric label.
    stage: &'static str,
    topic: String,
    group: String,
    events: Arc<Mutex<Vec<RebalanceEvent>>>,
    /// Input offsets committed since the loop last looked.
    committed: CommittedOffsets,
    metrics: Metrics,
}

impl ClientContext for StageContext {
    /// librdkafka's statistics (every `statistics.interval.ms`) carry the consumer lag per
    /// partition without any extra request to the brokers.
    /// The brokers' round trip and the client's queues come with them (`hookline_kafka_*`).
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (p, lag) in hookline_kafka::lag::partition_lags(&statistics, &self.topic) {
            self.metrics.set_lag(&self.group, &self.topic, p, lag);
        }
        let client = format!("{}-consumer", self.stage);
        hookline_kafka::stats::record(&self.metrics, &client, &statistics);
    }
}

impl ConsumerContext for StageContext {
    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &rdkafka::TopicPartitionList,
    ) {
        self.committed.record(&self.topic, result, offsets);
    }

    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts: Vec<i32> = tpl
                .elements_for_topic(&self.topic)
                .iter()
                .map(|e| e.partition())
                .collect();
            tracing::info!(topic = %self.topic, partitions = ?parts, "partitions revoked");
            self.metrics.forget_lag(&self.group, &self.topic, &parts);
            self.metrics
                .rebalances
                .with_label_values(&[self.stage, "revoked"])
                .inc_by(parts.len() as u64);
            self.events
                .lock()
                .expect("events lock")
                .push(RebalanceEvent::Revoked(parts));
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let parts: Vec<i32> = tpl
                .elements_for_topic(&self.topic)
                .iter()
                .map(|e| e.partition())
                .collect();
            tracing::info!(topic = %self.topic, partitions = ?parts, "partitions assigned");
            self.metrics
                .rebalances
                .with_label_values(&[self.stage, "assigned"])
                .inc_by(parts.len() as u64);
            self.events
                .lock()
                .expect("events lock")
                .push(RebalanceEvent::Assigned(parts));
        }
    }
}

/// Runs a stage until `shutdown` is cancelled or a fatal error occurs. On shutdown it finishes
/// the batch in hand, commits, flushes and returns `Ok`.
pub async fn run_stage<P: Processor>(
    cfg: StageConfig,
    mut processor: P,
    store: ProfileStore,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), StageError> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let committed = CommittedOffsets::default();
    let ctx = StageContext {
        stage: cfg.name,
        topic: cfg.input_topic.clone(),
        group: cfg.group_id.clone(),
        events: events.clone(),
        committed: committed.clone(),
        metrics: metrics.clone(),
    };
    let consumer: StreamConsumer<StageContext> = cfg
        .settings
        .group_consumer(&cfg.group_id)
        .create_with_context(ctx)?;
    consumer.subscribe(&[cfg.input_topic.as_str()])?;
    let producer = Producer::with_stats(
        &cfg.settings,
        metrics.clone(),
        &format!("{}-producer", cfg.name),
    )?;
    let table = TableTail::spawn(
        &cfg.settings,
        &format!("{}-table", cfg.group_id),
        &cfg.topics.profiles,
        store.sink(metrics.clone(), "profiles"),
    )?;
    let retention = table_retention(&cfg).await;
    let catch_up_interval = (retention / 4).clamp(Duration::from_secs(1), MAX_CATCH_UP_INTERVAL);
    let mut last_catch_up = std::time::Instant::now();
    tracing::info!(stage = cfg.name, topic = %cfg.input_topic, group = %cfg.group_id, "stage started");

    // Partitions whose table is held, and those restored to the end and safe to process.
    let mut held: HashSet<i32> = HashSet::new();
    let mut ready: HashSet<i32> = HashSet::new();
    // Readiness waits for an assignment that stands (not one revoked again right away, as an
    // eager rebalance does), whose tables must be restored first.
    let mut settled = false;
    let mut stuck = hookline_kafka::membership::StuckGroupWatch::spawn(
        &cfg.settings,
        &cfg.group_id,
        &cfg.input_topic,
        Duration::ZERO,
    )?;
    let mut evictions = Evictions::new(cfg.revoked_partition_grace);
    let mut offsets = ProcessedOffsets::default();
    let mut acks = Acks::new();
    let result: Result<(), StageError> = async {
        loop {
            // The tick lets an idle stage act on a rebalance (restore the new partitions' tables
            // and report ready) without waiting for a record.
            let first = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                m = consumer.recv() => Some(m),
                _ = tokio::time::sleep(IDLE_TICK) => None,
            };
            let mut batch = Vec::new();
            match first {
                Some(Ok(m)) => batch.push(m),
                Some(Err(e)) => tracing::warn!(stage = cfg.name, error = %e, "consumer error"),
                None => {}
            }
            while !batch.is_empty() && batch.len() < cfg.max_batch {
                match tokio::time::timeout(Duration::from_millis(2), consumer.recv()).await {
                    Ok(Ok(m)) => batch.push(m),
                    Ok(Err(e)) => tracing::warn!(stage = cfg.name, error = %e, "consumer error"),
                    Err(_) => break,
                }
            }
            let (revoked, assigned, last) = apply_rebalances(
                cfg.name, &store, &events, &table, &mut held, &mut ready, retention,
            )
            .await?;
            settled = last.unwrap_or(settled);
            stuck.check(&consumer);
            evictions
                .step(cfg.name, &store, &held, assigned || !revoked.is_empty())
                .await?;
            // Restore every newly held partition before processing anything, so that readiness
            // means "assigned and caught up", also for partitions that have no records yet.
            let pending: Vec<i32> = held.difference(&ready).copied().collect();
            if !pending.is_empty() {
                let restored = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => None,
                    r = restore(&cfg, &table, &store, &pending, &metrics) => Some(r),
                };
                match restored {
                    None => break,
                    Some(r) => r?,
                }
                ready.extend(pending);
            }
            // Once ready, a stage stays ready through later rebalances: readiness gates rollouts,
            // and one instance's restore after a rebalance should not hold up another's.
            if settled && !readiness.is_set() && held.is_subset(&ready) {
                readiness.set(true);
                tracing::info!(stage = cfg.name, partitions = ?held, "ready");
            }
            if cfg.table_mode == TableMode::Follow {
                // Read the table up to its current end before joining this batch, so a profile
                // change that reached the table before the event was taken up is seen.
                let parts: HashSet<i32> = batch.iter().map(|m| m.partition()).collect();
                for p in parts {
                    if ready.contains(&p) && !revoked.contains(&p) {
                        match table.caught_up(p).await {
                            // Joining with a table a little behind beats not joining at all,
                            // and beats stopping the stage while the broker is away.
                            Err(
                                e @ (KafkaError::CatchUpTimeout { .. }
                                | KafkaError::Watermarks { .. }),
                            ) => {
                                tracing::warn!(stage = cfg.name, partition = p, error = %e, "table not read to its end before this batch; joining with what is read");
                            }
                            r => {
                                r?;
                            }
                        }
                    }
                }
            }
            let mut bctx = BatchContext {
                stage: cfg.name,
                producer: &producer,
                acks: &mut acks,
                topics: &cfg.topics,
                metrics: &metrics,
                store: &store,
                max_record_bytes: cfg.max_record_bytes,
            };
            for msg in &batch {
                let p = msg.partition();
                if revoked.contains(&p) || !ready.contains(&p) {
                    // Its new owner re-reads it from the committed offset.
                    continue;
                }
                metrics.consumed.with_label_values(&[cfg.name]).inc();
                let span = crate::source::span_of(cfg.name, msg);
                if let Err(e) = processor.process(&mut bctx, msg).instrument(span).await {
                    // An output too large to produce would be as large after a restart:
                    // quarantine the input and go on. Anything else stops the stage.
                    let Some(reason) = too_large_reason(&e) else {
                        return Err(e);
                    };
                    bctx.quarantine(msg, &reason).await?;
                }
                offsets.done(p, msg.offset());
            }
            bctx.acks.wait().await?;
            processor.after_outputs(&mut bctx).await?;
            bctx.acks.wait().await?;
            offsets.store(&consumer, &cfg.input_topic)?;
            // Keep the catch-up times of held tables recent, so that a restart (or a partition
            // coming back) within the tombstone retention reads only the tail.
            if last_catch_up.elapsed() >= catch_up_interval {
                let parts: Vec<i32> = ready.difference(&revoked).copied().collect();
                record_caught_up(&cfg, &table, &store, &parts).await?;
                last_catch_up = std::time::Instant::now();
            }
            if cfg.table_mode == TableMode::Own {
                committed.forget_passed(&store).await?;
            }
        }
        Ok(())
    }
    .await;

    // Commit what is processed; never commit past a batch whose outputs failed.
    if result.is_ok() {
        acks.wait().await?;
        store.flush()?;
        offsets.store(&consumer, &cfg.input_topic)?;
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(stage = cfg.name, error = %e, "final commit (nothing stored is fine)");
        }
    }
    if result.is_ok() && cfg.settings.instance.is_some() {
        // A static member does not leave on close: leave now so the partitions move at once.
        hookline_kafka::membership::leave_group(&consumer, LEAVE_TIMEOUT).await;
    }

    producer.flush(Duration::from_secs(10))?;
    readiness.set(false);
    tracing::info!(stage = cfg.name, "stage stopped");
    result
}

/// Applies queued rebalances to the table; returns the partitions revoked and not re-assigned,
/// whether an assignment (possibly empty) was among the rebalances, and whether the last of
/// them was an assignment (`None`: there were none).
async fn apply_rebalances(
    stage: &'static str,
    store: &ProfileStore,
    events: &Mutex<Vec<RebalanceEvent>>,
    table: &TableTail,
    held: &mut HashSet<i32>,
    ready: &mut HashSet<i32>,
    retention: Duration,
) -> Result<(HashSet<i32>, bool, Option<bool>), StageError> {
    let mut revoked = HashSet::new();
    let mut assigned = false;
    let mut last = None;
    let queued = std::mem::take(&mut *events.lock().expect("events lock"));
    for ev in queued {
        match ev {
            RebalanceEvent::Revoked(ps) => {
                last = Some(false);
                revoked.extend(ps)
            }
            RebalanceEvent::Assigned(ps) => {
                assigned = true;
                last = Some(true);
                let now: HashSet<i32> = ps.iter().copied().collect();
                // Eager rebalances revoke everything and assign again: keep the tables of
                // partitions that come straight back instead of restoring them anew.
                let gone: Vec<i32> = held.difference(&now).copied().collect();
                table.revoke(gone.clone());
                for p in &gone {
                    ready.remove(p);
                }
                let added: Vec<i32> = now.difference(held).copied().collect();
                let new = restore_starts(stage, store, added, retention).await?;
                table.assign(new);
                revoked.retain(|p| !now.contains(p));
                *held = now;
            }
        }
    }
    // Revoked and not (yet) re-assigned.
    for p in &revoked {
        if held.remove(p) {
            table.revoke(vec![*p]);
            ready.remove(p);
        }
    }
    Ok((revoked, assigned, last))
}
