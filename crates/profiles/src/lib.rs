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
//! The stage owns its table partitions: it restores them from `profiles` on assignment and from
//! then on keeps them current itself (see `TableMode::Own`).

use clap::Parser;
use hookline_config::{CommonArgs, JoinStageArgs};
use hookline_model::{ProfileChange, SourcePosition};
use hookline_schemas::SchemaKind;
use hookline_stream::{
    BatchContext, JoinStage, Processor, StageError, SubscriptionsView, TableMode,
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
}

/// Runs the stage until `shutdown`.
pub async fn run(
    args: ProfilesArgs,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), StageError> {
    hookline_stream::run_join_stage(
        JoinStage {
            name: "profiles",
            input_topic: |t| t.profile_changes.clone(),
            table_mode: TableMode::Own,
        },
        &args.common,
        &args.stage,
        |subscriptions| ProfilesProcessor { subscriptions },
        metrics,
        readiness,
        shutdown,
    )
    .await
}

/// Validate → apply to the table → route → queue the table write and the deliveries.
pub struct ProfilesProcessor {
    pub subscriptions: SubscriptionsView,
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
        let p = msg.partition();
        let before = ctx.store.get(p, &key)?;
        let applied = match hookline_enrich::profile::join(&change, before.as_ref()) {
            Ok(applied) => applied,
            Err(mismatch) => {
                // Another account's row: left as it is, in the store and in the topic, and the
                // change is delivered to nobody.
                return ctx.quarantine(msg, &mismatch.to_string()).await;
            }
        };
        ctx.count_join(before.is_some());
        match &applied.new_state {
            Some(state) => {
                let bytes = serde_json::to_vec(state).expect("profile state serializes");
                ctx.store.put(p, &key, &bytes)?;
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
                ctx.store.delete(p, &key)?;
                ctx.producer
                    .send(ctx.acks, &ctx.topics.profiles, Some(key.as_bytes()), None)
                    .await?;
            }
        }
        let enriched = applied.enriched;
        let source = SourcePosition {
            topic: msg.topic().to_owned(),
            partition: p,
            offset: msg.offset(),
        };
        ctx.route(&self.subscriptions, &enriched, source).await
    }
}
