//! `hookline-profiles`: the profile-change stage, and the writer of the `profiles` table.
//!
//! Consumes `profile-changes` (key `<database>:<profile>`), applies each change to the profile's
//! state (create/update → new state, delete → tombstone, subprofile changes inside the parent's
//! state), writes the new state to the compacted `profiles` topic (same key, so the same
//! partition), and routes the change's event (with previous values for updates) to
//! `deliveries`: all in one consume → produce → commit cycle.
//!
//! A change whose stored row (for a subprofile: the parent's) belongs to another account is
//! quarantined with reason `account-mismatch`: the row stays as it is, in the store and in the
//! topic, and nothing is delivered.
//!
//! Rows are bounded (`hookline_enrich::bound`): at most `--max-subprofiles` per collection, and
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
//! and `lost` conditions. For tests, [`CRASH_AFTER_STORE_WRITE_ENV`] makes the process abort
//! right after the store write of a given change; it is inert unless set.

use clap::Parser;
use hookline_config::{CommonArgs, JoinStageArgs};
use hookline_enrich::bound::{bound_subprofiles, encode_row, RowError, RowLimits};
use hookline_model::{ProfileChange, ProfileState, SourcePosition};
use hookline_schemas::SchemaKind;
use hookline_stream::{
    BatchContext, JoinStage, Processor, RowWrite, StageError, SubscriptionsView, TableMode,
};
use hookline_telemetry::{Metrics, Readiness};
use rdkafka::message::{BorrowedMessage, Message};
use tokio_util::sync::CancellationToken;

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
    #[arg(long, env = "HOOKLINE_MAX_SUBPROFILES", default_value_t = hookline_enrich::bound::DEFAULT_MAX_SUBPROFILES_PER_COLLECTION)]
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
            (None, None) => hookline_enrich::bound::DEFAULT_MAX_RECORD_BYTES,
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
    hookline_stream::run_join_stage(
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
            crash_after_store_write: crash_after_store_write(),
        },
        metrics,
        readiness,
        shutdown,
    )
    .await
}

/// Fault injection for tests: the environment variable naming a change id after whose store
/// write the process aborts (before the table record, the deliveries and the input offset).
pub const CRASH_AFTER_STORE_WRITE_ENV: &str = "HOOKLINE_TEST_CRASH_AFTER_STORE_WRITE";

/// The change id of [`CRASH_AFTER_STORE_WRITE_ENV`], when set and not empty. Inert otherwise.
fn crash_after_store_write() -> Option<String> {
    let id = std::env::var(CRASH_AFTER_STORE_WRITE_ENV).ok()?;
    if id.is_empty() {
        return None;
    }
    tracing::warn!(
        change = %id,
        "fault injection is on ({CRASH_AFTER_STORE_WRITE_ENV}): the process aborts after writing this change to its store; never set this outside tests"
    );
    Some(id)
}

/// Validate → apply to the table → route → queue the table write and the deliveries.
pub struct ProfilesProcessor {
    pub subscriptions: SubscriptionsView,
    pub limits: RowLimits,
    /// Test-only fault injection ([`CRASH_AFTER_STORE_WRITE_ENV`]); `None` in production.
    pub crash_after_store_write: Option<String>,
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

    /// Fault injection for tests: dies like a SIGKILL (no unwinding, no commit, no flush) right
    /// after `change` reached the store, when [`CRASH_AFTER_STORE_WRITE_ENV`] names it.
    fn maybe_crash(&self, change: &ProfileChange) {
        if self.crash_after_store_write.as_deref() == Some(change.id.0.as_str()) {
            eprintln!(
                "fault injection: aborting after the store write of change {}",
                change.id.0
            );
            std::process::abort();
        }
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
        }
        let mut applied = match hookline_enrich::profile::join(&change, before.state.as_ref()) {
            Ok(applied) => applied,
            Err(mismatch) => {
                // Another account's row: left as it is, in the store and in the topic, and the
                // change is delivered to nobody.
                ctx.store
                    .apply_change(p, offset, id, &key, &before, RowWrite::Keep)?;
                return ctx.quarantine(msg, &mismatch.to_string()).await;
            }
        };
        ctx.count_join(before.state.is_some());
        match &mut applied.new_state {
            Some(state) => {
                let bytes = match self.bounded_row(&key, &change, state) {
                    Ok(bytes) => bytes,
                    // The previous row stays; the change is delivered to nobody.
                    Err(e) => {
                        ctx.store
                            .apply_change(p, offset, id, &key, &before, RowWrite::Keep)?;
                        return ctx.quarantine(msg, &e.to_string()).await;
                    }
                };
                ctx.store
                    .apply_change(p, offset, id, &key, &before, RowWrite::Put(&bytes))?;
                self.maybe_crash(&change);
                ctx.producer
                    .send(
                        ctx.acks,
                        &ctx.topics.profiles,
                        Some(key.as_bytes()),
                        Some(&bytes),
                    )
                    .await?;
            }
            None => {
                ctx.store
                    .apply_change(p, offset, id, &key, &before, RowWrite::Delete)?;
                self.maybe_crash(&change);
                ctx.producer
                    .send(ctx.acks, &ctx.topics.profiles, Some(key.as_bytes()), None)
                    .await?;
            }
        }
        let enriched = applied.enriched;
        let source = SourcePosition {
            topic: msg.topic().to_owned(),
            partition: p,
            offset,
        };
        ctx.route(&self.subscriptions, &enriched, source).await
    }
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
