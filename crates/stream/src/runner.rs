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
use hookline_kafka::table::{StartAt, TableTail};
use hookline_kafka::{KafkaError, KafkaSettings, Producer};
use hookline_telemetry::{Metrics, Readiness};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::ClientContext;
use tokio_util::sync::CancellationToken;

use crate::commits::CommittedOffsets;
use crate::eviction::Evictions;
use crate::store::{unix_ms_now, ProfileStore, RestoreFrom, TableMode};
use crate::validate::{reason_class, too_large_reason};

/// How long an idle stage waits for a record before it looks at rebalances again.
const IDLE_TICK: Duration = Duration::from_millis(250);

/// Room a delivery leaves below the producer's record limit, so that the sender can wrap it
/// into a retry or dead-letter record (the delivery plus attempt counts, times and the last
/// error) and still produce that.
const DELIVERY_HEADROOM: usize = 16 * 1024;

/// Kafka's default `delete.retention.ms`, assumed when the broker does not report the table
/// topic's own.
const DEFAULT_TABLE_RETENTION: Duration = Duration::from_secs(24 * 3_600);

/// At most this long between two records of "caught up" per held partition. The catch-up time
/// only has to be well within the tombstone retention; a quarter of it, within 1 s..1 min.
const MAX_CATCH_UP_INTERVAL: Duration = Duration::from_secs(60);

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
}

#[derive(Debug)]
enum RebalanceEvent {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

/// Collects rebalances and commits for the loop, which acts on them between records.
struct StageContext {
    topic: String,
    events: Arc<Mutex<Vec<RebalanceEvent>>>,
    /// Input offsets committed since the loop last looked.
    committed: CommittedOffsets,
    metrics: Metrics,
}

impl ClientContext for StageContext {
    /// librdkafka's statistics (every `statistics.interval.ms`) carry the consumer lag per
    /// partition without any extra request to the brokers.
    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Some(topic) = statistics.topics.get(&self.topic) {
            for (p, part) in &topic.partitions {
                if *p >= 0 && part.consumer_lag >= 0 {
                    self.metrics
                        .lag
                        .with_label_values(&[self.topic.as_str(), &p.to_string()])
                        .set(part.consumer_lag);
                }
            }
        }
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
        topic: cfg.input_topic.clone(),
        events: events.clone(),
        committed: committed.clone(),
        metrics: metrics.clone(),
    };
    let mut consumer_config = cfg.settings.group_consumer(&cfg.group_id);
    if consumer_config.get("statistics.interval.ms").is_none() {
        consumer_config.set("statistics.interval.ms", "5000");
    }
    let consumer: StreamConsumer<StageContext> = consumer_config.create_with_context(ctx)?;
    consumer.subscribe(&[cfg.input_topic.as_str()])?;
    let producer = Producer::new(&cfg.settings)?;
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
    // Readiness waits for the group's first assignment, whose tables must be restored first.
    let mut assigned_once = false;
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
            let (revoked, assigned) = apply_rebalances(
                cfg.name, &store, &events, &table, &mut held, &mut ready, retention,
            )
            .await?;
            assigned_once |= assigned;
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
                    r = restore(&cfg, &table, &store, &pending) => Some(r),
                };
                match restored {
                    None => break,
                    Some(r) => r?,
                }
                ready.extend(pending);
            }
            // Once ready, a stage stays ready through later rebalances: readiness gates rollouts,
            // and one instance's restore after a rebalance should not hold up another's.
            if assigned_once && !readiness.is_set() && held.is_subset(&ready) {
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
                            // Joining with a table a little behind beats not joining at all.
                            Err(e @ KafkaError::CatchUpTimeout { .. }) => {
                                tracing::warn!(stage = cfg.name, partition = p, error = %e, "table not read to its end before this batch; joining with what is read");
                            }
                            r => {
                                r?;
                            }
                        }
                    }
                }
            }
            for msg in &batch {
                let p = msg.partition();
                if revoked.contains(&p) || !ready.contains(&p) {
                    // Its new owner re-reads it from the committed offset.
                    continue;
                }
                metrics.consumed.with_label_values(&[cfg.name]).inc();
                let mut bctx = BatchContext {
                    stage: cfg.name,
                    producer: &producer,
                    acks: &mut acks,
                    topics: &cfg.topics,
                    metrics: &metrics,
                    store: &store,
                    max_record_bytes: cfg.max_record_bytes,
                };
                if let Err(e) = processor.process(&mut bctx, msg).await {
                    // An output too large to produce would be as large after a restart:
                    // quarantine the input and go on. Anything else stops the stage.
                    let Some(reason) = too_large_reason(&e) else {
                        return Err(e);
                    };
                    bctx.quarantine(msg, &reason).await?;
                }
                offsets.done(p, msg.offset());
            }
            acks.wait().await?;
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
    producer.flush(Duration::from_secs(10))?;
    readiness.set(false);
    tracing::info!(stage = cfg.name, "stage stopped");
    result
}

/// Applies queued rebalances to the table; returns the partitions revoked and not re-assigned,
/// and whether an assignment (possibly empty) was among the rebalances.
async fn apply_rebalances(
    stage: &'static str,
    store: &ProfileStore,
    events: &Mutex<Vec<RebalanceEvent>>,
    table: &TableTail,
    held: &mut HashSet<i32>,
    ready: &mut HashSet<i32>,
    retention: Duration,
) -> Result<(HashSet<i32>, bool), StageError> {
    let mut revoked = HashSet::new();
    let mut assigned = false;
    let queued = std::mem::take(&mut *events.lock().expect("events lock"));
    for ev in queued {
        match ev {
            RebalanceEvent::Revoked(ps) => revoked.extend(ps),
            RebalanceEvent::Assigned(ps) => {
                assigned = true;
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
    Ok((revoked, assigned))
}

/// How long the table topic keeps tombstones: `--table-retention`, else the topic's
/// `delete.retention.ms`, else Kafka's default of 24 h.
async fn table_retention(cfg: &StageConfig) -> Duration {
    let topic = cfg.topics.profiles.as_str();
    if let Some(r) = cfg.table_retention {
        tracing::info!(
            stage = cfg.name,
            topic,
            retention_s = r.as_secs_f64(),
            "tombstone retention of the table from --table-retention"
        );
        return r;
    }
    let fallback = DEFAULT_TABLE_RETENTION;
    match hookline_kafka::topics::topic_config(&cfg.settings, topic, "delete.retention.ms").await {
        Ok(Some(raw)) => match raw.trim().parse::<u64>() {
            Ok(ms) => {
                let r = Duration::from_millis(ms);
                tracing::info!(
                    stage = cfg.name,
                    topic,
                    retention_s = r.as_secs_f64(),
                    "tombstone retention of the table from the topic's delete.retention.ms"
                );
                r
            }
            Err(_) => {
                tracing::warn!(stage = cfg.name, topic, value = %raw, fallback_s = fallback.as_secs(), "the topic's delete.retention.ms is not a number; assuming 24 h (set --table-retention)");
                fallback
            }
        },
        Ok(None) => {
            tracing::warn!(stage = cfg.name, topic, fallback_s = fallback.as_secs(), "the broker does not report the topic's delete.retention.ms; assuming 24 h (set --table-retention)");
            fallback
        }
        Err(e) => {
            // Tansu 0.6, for one, does not implement DescribeConfigs.
            tracing::warn!(stage = cfg.name, topic, error = %e, fallback_s = fallback.as_secs(), "the broker did not describe the topic's config; assuming a tombstone retention of 24 h (set --table-retention)");
            fallback
        }
    }
}

/// Where each newly held partition's table is read from: after its checkpoint if the store
/// caught up with it within the tombstone retention, else from the beginning, its rows dropped
/// first (off the async workers: a drop costs one deletion per row).
async fn restore_starts(
    stage: &'static str,
    store: &ProfileStore,
    partitions: Vec<i32>,
    retention: Duration,
) -> Result<Vec<(i32, StartAt)>, StageError> {
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    let s = store.clone();
    let plans = tokio::task::spawn_blocking(move || {
        partitions
            .into_iter()
            .map(|p| s.prepare_restore(p, retention).map(|from| (p, from)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .expect("planning a table restore does not panic")?;
    let retention_s = retention.as_secs_f64();
    Ok(plans
        .into_iter()
        .map(|(p, from)| match from {
            RestoreFrom::Checkpoint { next_offset, age } => {
                tracing::info!(stage, partition = p, next_offset, age_s = age.as_secs_f64(), retention_s, "table partition: reading the tail after the checkpoint");
                (p, StartAt::Offset(next_offset))
            }
            RestoreFrom::Beginning(why) => {
                let age_s = match why {
                    crate::store::FullRestore::Stale { age } => Some(age.as_secs_f64()),
                    _ => None,
                };
                tracing::info!(stage, partition = p, age_s, retention_s, reason = %why, "table partition: reading it from the beginning (local rows dropped)");
                (p, StartAt::Beginning)
            }
        })
        .collect())
}

/// Asks the table reader whether each partition is read to its end, and records for each when
/// that was (the time before the end was looked up), so a later restore can tell whether it
/// may have missed tombstones. A partition revoked meanwhile is skipped.
async fn record_caught_up(
    cfg: &StageConfig,
    table: &TableTail,
    store: &ProfileStore,
    partitions: &[i32],
) -> Result<(), StageError> {
    for &p in partitions {
        let at = unix_ms_now();
        match table.caught_up(p).await {
            Ok(high) => store.mark_caught_up(p, high, at)?,
            Err(e) => {
                tracing::debug!(stage = cfg.name, partition = p, error = %e, "catch-up time not recorded")
            }
        }
    }
    Ok(())
}

/// Reads the table of newly held partitions up to the high watermark seen now. A partition not
/// read to its end within the table's bound is logged (what is missing) and waited for again:
/// its records must not be processed before, and the stage is not ready until then.
async fn restore(
    cfg: &StageConfig,
    table: &TableTail,
    store: &ProfileStore,
    partitions: &[i32],
) -> Result<(), StageError> {
    let started = std::time::Instant::now();
    // The table thread reads all assigned partitions at once; awaiting them in turn costs no
    // more than the slowest.
    for &p in partitions {
        let at = unix_ms_now();
        let high = table.wait_caught_up(p).await?;
        store.mark_caught_up(p, high, at)?;
        if cfg.table_mode == TableMode::Own {
            store.mark_owned(p);
        }
        tracing::info!(
            stage = cfg.name,
            partition = p,
            table_end = high,
            "table partition restored"
        );
    }
    tracing::info!(
        stage = cfg.name,
        partitions = ?partitions,
        rows = store.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "table restored"
    );
    Ok(())
}
