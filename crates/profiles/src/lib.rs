//! `hookline-profiles`: the profile-change stage, and the writer of the `profiles` table.
//!
//! Consumes `profile-changes` (key `<database>:<profile>`), applies each change to the profile's
//! state (create/update → new state, delete → tombstone, subprofile changes inside the parent's
//! state), writes the new state to the compacted `profiles` topic (same key, so the same
//! partition), and routes the change's event (with previous values for updates) to
//! `deliveries`: all in one consume → produce → commit cycle, in which a batch's rows are
//! written only once its deliveries are acknowledged. Every row records the input change that
//! produced it (`applied_change`); an instance that takes a partition over after a crash, its
//! table read from the topic, skips the changes its rows already hold (they were delivered).
//!
//! A change whose stored row (for a subprofile: the parent's) belongs to another account is
//! quarantined with reason `account-mismatch`: the row stays as it is, in the store and in the
//! topic, and nothing is delivered.
//!
//! Rows are bounded (`hookline_join::bound`): at most `--max-subprofiles` per collection, and
//! one record of `--max-table-record-bytes` at most, the least recently modified subprofiles
//! leaving first. A change whose row does not fit even so is quarantined (`too-large`), and the
//! stage goes on.
//!
//! The stage owns its table partitions: it restores them from `profiles` on assignment and from
//! then on keeps them current itself (see `TableMode::Own`).
//!
//! Each change's row write goes to the store together with the row as the change found it,
//! under the change's input offset (`ProfileStore::apply_change`). A change read again after a
//! crash that came between the store write and the offset commit is joined with that row, not
//! with its own result, so an update keeps its `previous` values and its `changed`, `gained`
//! and `lost` conditions. For tests, [`faults`] makes the process abort at a given change; it
//! is inert unless set.

use clap::Parser;
use hookline_config::{CommonArgs, JoinStageArgs};
use hookline_join::bound::{bound_subprofiles, encode_row, RowError, RowLimits};
use hookline_join_runtime::{
    BatchContext, JoinStage, Processor, RowWrite, StageError, SubscriptionsView, TableMode,
};
use hookline_model::{ProfileChange, ProfileState};
use hookline_schemas::SchemaKind;
use hookline_telemetry::{Metrics, Readiness};
use rdkafka::message::{BorrowedMessage, Message};
use tokio_util::sync::CancellationToken;

pub mod faults;
use faults::Faults;

/// Applies profile changes to the profile table and routes them to subscriptions.
#[derive(Debug, Clone, Parser)]
#[command(name = "hookline-profiles", version, about)]
pub struct ProfilesArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub stage: JoinStageArgs,

    /// Subprofiles kept per collection in a profile's table row (at least 1). Beyond it the
    /// least recently modified ones leave the row: their events are then joined without
    /// subprofile fields.
    #[arg(long, env = "HOOKLINE_MAX_SUBPROFILES", default_value_t = hookline_join::bound::DEFAULT_MAX_SUBPROFILES_PER_COLLECTION)]
    pub max_subprofiles: usize,

    /// The largest `profiles` record (key + value + framing) this stage writes; a change whose
    /// row would not fit even after dropping old subprofiles is quarantined (`too-large`).
    /// Default: the producer's `message.max.bytes` (`--kafka` / `HOOKLINE_KAFKA_MESSAGE_MAX_BYTES`),
    /// else 1000000. It is never set above the producer's limit.
    #[arg(long, env = "HOOKLINE_MAX_TABLE_RECORD_BYTES")]
    pub max_table_record_bytes: Option<usize>,
}

impl ProfilesArgs {
    /// The bounds of a profile's table row, from the flags and the producer's
    /// `message.max.bytes`.
    pub fn row_limits(&self) -> RowLimits {
        let producer = self
            .common
            .kafka_settings()
            .into_iter()
            .rev()
            .find(|(k, _)| k == "message.max.bytes")
            .and_then(|(_, v)| v.trim().parse::<usize>().ok());
        let max_record_bytes = match (self.max_table_record_bytes, producer) {
            (Some(flag), Some(producer)) => flag.min(producer),
            (Some(flag), None) => flag,
            (None, Some(producer)) => producer,
            (None, None) => hookline_join::bound::DEFAULT_MAX_RECORD_BYTES,
        };
        RowLimits {
            max_subprofiles_per_collection: self.max_subprofiles.max(1),
            max_record_bytes,
        }
    }
}

/// Runs the stage until `shutdown`.
pub async fn run(
    args: ProfilesArgs,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), StageError> {
    let limits = args.row_limits();
    tracing::info!(
        max_subprofiles_per_collection = limits.max_subprofiles_per_collection,
        max_table_record_bytes = limits.max_record_bytes,
        "profile rows bounded"
    );
    hookline_join_runtime::run_join_stage(
        JoinStage {
            name: "profiles",
            input_topic: |t| t.profile_changes.clone(),
            table_mode: TableMode::Own,
        },
        &args.common,
        &args.stage,
        |subscriptions| ProfilesProcessor {
            subscriptions,
            limits,
            faults: Faults::from_env(),
            rows: Vec::new(),
        },
        metrics,
        readiness,
        shutdown,
    )
    .await
}

/// Validate → apply to the table → route → queue the table write and the deliveries.
pub struct ProfilesProcessor {
    pub subscriptions: SubscriptionsView,
    pub limits: RowLimits,
    /// Test-only fault injection ([`faults`]); inert in production.
    pub faults: Faults,
    /// The batch's table rows (key, value or tombstone, change id), written once its
    /// deliveries are acknowledged ([`Processor::after_outputs`]).
    pub rows: Vec<(String, Option<Vec<u8>>, String)>,
}

impl ProfilesProcessor {
    /// The new row's bytes, its subprofiles bounded; refused when it does not fit in a record.
    fn bounded_row(
        &self,
        key: &str,
        change: &ProfileChange,
        state: &mut ProfileState,
    ) -> Result<Vec<u8>, RowError> {
        let keep = change.subprofile_key();
        let evicted = bound_subprofiles(state, key, keep.as_deref(), &self.limits);
        if !evicted.is_empty() {
            tracing::debug!(
                key,
                by_count = evicted.by_count.len(),
                by_size = evicted.by_size.len(),
                "least recently modified subprofiles left the row"
            );
        }
        encode_row(key, state, &self.limits)
    }
}

impl Processor for ProfilesProcessor {
    async fn process(
        &mut self,
        ctx: &mut BatchContext<'_>,
        msg: &BorrowedMessage<'_>,
    ) -> Result<(), StageError> {
        let Some(change) = ctx
            .decode_or_quarantine(msg, SchemaKind::ProfileChange, |c: &ProfileChange| {
                c.key().to_string()
            })
            .await?
        else {
            return Ok(());
        };
        let key = change.key().to_string();
        let (p, offset, id) = (msg.partition(), msg.offset(), change.id.0.as_str());
        // A change read again after a crash finds the row as it was before it, not its own
        // result (`ProfileStore::before_change`).
        let before = ctx.store.before_change(p, offset, id, &key)?;
        if before.replayed {
            tracing::debug!(
                partition = p,
                offset,
                change = id,
                "change read again after a restart; joined with the row it found the first time"
            );
        } else if holds(before.state.as_ref(), p, offset) {
            // Another instance applied it and wrote its row, which it does only after the
            // change's deliveries were acknowledged: nothing is left to do.
            tracing::debug!(
                partition = p,
                offset,
                change = id,
                "change already applied by the partition's previous owner; skipped"
            );
            ctx.metrics
                .replayed_changes_skipped
                .with_label_values(&[ctx.stage])
                .inc();
            return Ok(());
        }
        let mut applied = match hookline_join::profile::join(&change, before.state.as_ref()) {
            Ok(applied) => applied,
            Err(mismatch) => {
                // Another account's row: left as it is, in the store and in the topic, and the
                // change is delivered to nobody.
                ctx.store
                    .apply_change(p, offset, id, &key, &before, RowWrite::Keep)?;
                return ctx.quarantine(msg, &mismatch.reason()).await;
            }
        };
        ctx.count_join(before.state.is_some());
        match &mut applied.new_state {
            Some(state) => {
                state.set_applied_change(p, offset);
                let bytes = match self.bounded_row(&key, &change, state) {
                    Ok(bytes) => bytes,
                    // The previous row stays; the change is delivered to nobody.
                    Err(e) => {
                        ctx.store
                            .apply_change(p, offset, id, &key, &before, RowWrite::Keep)?;
                        return ctx.quarantine(msg, &e.reason()).await;
                    }
                };
                ctx.store
                    .apply_change(p, offset, id, &key, &before, RowWrite::Put(&bytes))?;
                self.faults.after_store_write(id);
                self.rows.push((key.clone(), Some(bytes), id.to_owned()));
            }
            None => {
                ctx.store
                    .apply_change(p, offset, id, &key, &before, RowWrite::Delete)?;
                self.faults.after_store_write(id);
                self.rows.push((key.clone(), None, id.to_owned()));
            }
        }
        let enriched = applied.enriched;
        let source = hookline_join_runtime::source::source_of(msg);
        ctx.route(&self.subscriptions, &enriched, source).await
    }

    /// Writes the batch's rows to the `profiles` topic now that their deliveries are
    /// acknowledged: a row that reached the topic means its change was delivered.
    async fn after_outputs(&mut self, ctx: &mut BatchContext<'_>) -> Result<(), StageError> {
        for (key, value, _) in &self.rows {
            ctx.producer
                .send(
                    ctx.acks,
                    &ctx.topics.profiles,
                    Some(key.as_bytes()),
                    value.as_deref(),
                )
                .await?;
        }
        if self
            .rows
            .iter()
            .any(|(_, _, id)| self.faults.crashes_after_table_write(id))
        {
            ctx.acks.wait().await?;
            for (_, _, id) in &self.rows {
                self.faults.after_table_write(id);
            }
        }
        self.rows.clear();
        Ok(())
    }
}

/// Whether `row` already holds the change read at `offset` of input partition `partition`
/// (the change or a later one of the same partition produced it).
fn holds(row: Option<&ProfileState>, partition: i32, offset: i64) -> bool {
    row.and_then(ProfileState::applied_change)
        .is_some_and(|(p, o)| p == partition && o >= offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(args: &[&str]) -> RowLimits {
        let mut all = vec!["hookline-profiles"];
        all.extend_from_slice(args);
        ProfilesArgs::parse_from(all).row_limits()
    }

    #[test]
    fn row_limits_follow_the_flags_and_never_exceed_the_producers_message_max_bytes() {
        let d = limits(&[]);
        assert_eq!(
            (d.max_subprofiles_per_collection, d.max_record_bytes),
            (1_000, 1_000_000)
        );
        let producer = ["--kafka", "message.max.bytes=2000000"];
        assert_eq!(limits(&producer).max_record_bytes, 2_000_000);
        let both = ["--kafka", "message.max.bytes=500000"];
        let l = limits(&[&both[..], &["--max-table-record-bytes", "800000"]].concat());
        assert_eq!(l.max_record_bytes, 500_000, "the producer's limit wins");
        let l = limits(&["--max-table-record-bytes", "8000", "--max-subprofiles", "0"]);
        assert_eq!(
            (l.max_record_bytes, l.max_subprofiles_per_collection),
            (8_000, 1)
        );
    }
}
