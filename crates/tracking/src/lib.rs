//! `hookline-tracking`: the tracking stage.
//!
//! Consumes `tracking` (key `<database>:<profile>`), joins each event with partition *p* of the
//! co-partitioned `profiles` table (the e-mail address from the field the `databases` table
//! names for the event's account and database, else `--email-field`), offers it to the subscriptions of its database and writes
//! one delivery per match to `deliveries` (key: subscription id). Malformed input goes to
//! `quarantine`, and so does an event whose stored profile row belongs to another account
//! (reason `account-mismatch`): no event is joined with another account's profile. Every input record ends as routed (≥1 delivery), filtered (no match) or
//! quarantined, and the counters add up (`hookline_stage_*_total{stage="tracking"}`).
//!
//! - [`TrackingArgs`] / [`run`]: configuration and the entry point `main` and tests share.
//! - [`TrackingProcessor`]: the per-record logic.

use clap::Parser;
use hookline_config::{CommonArgs, JoinStageArgs};
use hookline_join_runtime::{
    BatchContext, DatabasesView, JoinStage, Processor, StageError, SubscriptionsView, TableMode,
};
use hookline_model::TrackingEvent;
use hookline_schemas::SchemaKind;
use hookline_telemetry::{Metrics, Readiness};
use rdkafka::message::{BorrowedMessage, Message};
use tokio_util::sync::CancellationToken;

/// Joins tracking events with profiles and routes them to subscriptions.
#[derive(Debug, Clone, Parser)]
#[command(name = "hookline-tracking", version, about)]
pub struct TrackingArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub stage: JoinStageArgs,
}

/// Runs the stage until `shutdown`.
pub async fn run(
    args: TrackingArgs,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), StageError> {
    let databases =
        DatabasesView::start_for_stage("tracking", &args.common, &args.stage, metrics.clone())
            .await?;
    hookline_join_runtime::run_join_stage(
        JoinStage {
            name: "tracking",
            input_topic: |t| t.tracking.clone(),
            table_mode: TableMode::Follow,
        },
        &args.common,
        &args.stage,
        |subscriptions| TrackingProcessor {
            subscriptions,
            databases,
        },
        metrics,
        readiness,
        shutdown,
    )
    .await
}

/// Validate → join → route → queue deliveries.
pub struct TrackingProcessor {
    pub subscriptions: SubscriptionsView,
    /// Which profile field holds each database's e-mail address (`databases`, else
    /// `--email-field`).
    pub databases: DatabasesView,
}

impl Processor for TrackingProcessor {
    async fn process(
        &mut self,
        ctx: &mut BatchContext<'_>,
        msg: &BorrowedMessage<'_>,
    ) -> Result<(), StageError> {
        let Some(event) = ctx
            .decode_or_quarantine(msg, SchemaKind::TrackingEvent, |e: &TrackingEvent| {
                e.key().to_string()
            })
            .await?
        else {
            return Ok(());
        };
        let key = event.key().to_string();
        let profile = ctx.store.get(msg.partition(), &key)?;
        let email_field = self.databases.email_field(&event.account, &event.database);
        let enriched = match hookline_join::tracking::join(&event, profile.as_ref(), &email_field) {
            Ok(enriched) => enriched,
            Err(mismatch) => {
                // The row is another account's: nothing of it may reach this event's
                // subscriptions, and a thin delivery could hand this account an event that
                // concerns the other one's recipient.
                return ctx.quarantine(msg, &mismatch.reason()).await;
            }
        };
        ctx.count_join(enriched.joined);
        if !enriched.joined {
            tracing::debug!(key, event = %event.id, "profile not in the table; delivering without profile data");
        }
        let source = hookline_join_runtime::source::source_of(msg);
        ctx.route(&self.subscriptions, &enriched, source).await
    }
}
