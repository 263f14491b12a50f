//! The runtime shared by the join stages (`hookline-tracking`, `hookline-profiles`).
//!
//! - [`store`]: the local profile table: the co-partitioned `profiles` partitions this instance
//!   owns, restored from the compacted topic on assignment.
//! - [`SubscriptionsView`]: the whole `subscriptions` table, tailed continuously (it lives in
//!   `hookline-routing`, which the sender shares without this runtime).
//! - [`databases`]: the whole `databases` table (per-database settings), tailed continuously:
//!   which profile field holds a database's e-mail address.
//! - [`source`]: where an input record came from (position, timestamp, trace context), as its
//!   deliveries record it.
//! - [`validate`]: input checks (size, UTF-8, JSON, schema, key) that decide quarantine.
//! - [`commits`]: the group's commits as librdkafka reports them, for a stage that writes its
//!   own table to forget the applied changes they passed.
//! - [`eviction`]: the rows of partitions this instance no longer holds are deleted after a
//!   grace period (`--revoked-partition-grace`).
//! - [`runner`]: the consume → process → produce → await acks → store offsets loop, with
//!   rebalance handling and graceful shutdown; [`batch`]: what a processor gets for one batch.
//! - [`run_join_stage`]: the start-up both stages share (subscriptions, state store, group),
//!   given what sets the stage apart ([`JoinStage`]) and its processor.

pub mod batch;
pub mod commits;
pub mod databases;
pub mod eviction;
mod restore;
pub mod runner;
pub mod source;
pub mod store;
pub mod validate;

pub use databases::DatabasesView;
pub use hookline_routing::SubscriptionsView;
pub use hookline_state_store::RowWrite;
pub use runner::{run_stage, BatchContext, Processor, StageConfig, StageError};
pub use store::{Before, ProfileStore, TableMode};

/// What sets one join stage apart from the other; everything else about starting one is
/// [`run_join_stage`].
pub struct JoinStage {
    /// `tracking` or `profiles`: metric label, default group suffix, state sub-folder.
    pub name: &'static str,
    /// The topic the stage consumes.
    pub input_topic: fn(&hookline_config::Topics) -> String,
    /// Whether the stage follows the table (tracking) or writes it (profiles).
    pub table_mode: TableMode,
}

/// Starts a join stage: loads the subscription table, opens the stage's state store under
/// `--state-dir`, and runs [`run_stage`] with the processor `make` builds, until `shutdown`.
pub async fn run_join_stage<P: Processor>(
    stage: JoinStage,
    common: &hookline_config::CommonArgs,
    args: &hookline_config::JoinStageArgs,
    make: impl FnOnce(SubscriptionsView) -> P,
    metrics: hookline_telemetry::Metrics,
    readiness: hookline_telemetry::Readiness,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), StageError> {
    // Not ready while the broker does not take the stage's records (an outage).
    readiness.also_require(hookline_kafka::producer::broker_takes_records);
    let topics = common.topics();
    let group_id = args
        .group_id
        .clone()
        .unwrap_or_else(|| format!("{}{}", common.topic_prefix, stage.name));
    let settings = hookline_kafka::KafkaSettings::from_common(common)
        .with_client_id(&format!("hookline-{}", stage.name));
    let subscriptions = SubscriptionsView::start(
        &settings,
        &topics.subscriptions,
        args.require_https,
        metrics.clone(),
    )
    .await?;
    let cfg = StageConfig {
        name: stage.name,
        group_id,
        input_topic: (stage.input_topic)(&topics),
        table_mode: stage.table_mode,
        topics,
        settings,
        max_batch: args.max_batch.max(1),
        max_record_bytes: args.max_record_bytes,
        table_retention: args.table_retention,
        revoked_partition_grace: args.revoked_partition_grace,
    };
    let store = ProfileStore::open(&args.state_dir.join(stage.name))?;
    run_stage(
        cfg,
        make(subscriptions),
        store,
        metrics,
        readiness,
        shutdown,
    )
    .await
}
