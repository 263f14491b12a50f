//! Restoring a join stage's table: the tombstone retention that decides whether a partition's
//! checkpoint can still be trusted, where each partition starts reading, and reading it up to
//! the end observed at assignment.

use std::time::Duration;

use hookline_kafka::table::{StartAt, TableTail};
use hookline_telemetry::metrics::{IntGauge, Metrics};

use crate::runner::{StageConfig, StageError, DEFAULT_TABLE_RETENTION};
use crate::store::{unix_ms_now, ProfileStore, RestoreFrom, TableMode};

/// How long the table topic keeps tombstones: `--table-retention`, else the topic's
/// `delete.retention.ms`, else Kafka's default of 24 h.
pub(crate) async fn table_retention(cfg: &StageConfig) -> Duration {
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
pub(crate) async fn restore_starts(
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
pub(crate) async fn record_caught_up(
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
pub(crate) async fn restore(
    cfg: &StageConfig,
    table: &TableTail,
    store: &ProfileStore,
    partitions: &[i32],
    metrics: &Metrics,
) -> Result<(), StageError> {
    let started = std::time::Instant::now();
    let restoring = metrics.restoring.with_label_values(&[cfg.name]);
    restoring.set(partitions.len() as i64);
    let result = restore_each(cfg, table, store, partitions, &restoring).await;
    restoring.set(0);
    result?;
    metrics
        .restore_duration
        .with_label_values(&[cfg.name])
        .observe(started.elapsed().as_secs_f64());
    tracing::info!(
        stage = cfg.name,
        partitions = ?partitions,
        rows = store.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "table restored"
    );
    Ok(())
}

/// Waits for each partition in turn (`restoring` counts those left) and marks it caught up.
async fn restore_each(
    cfg: &StageConfig,
    table: &TableTail,
    store: &ProfileStore,
    partitions: &[i32],
    restoring: &IntGauge,
) -> Result<(), StageError> {
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
        restoring.dec();
    }
    Ok(())
}
