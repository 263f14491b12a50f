//! `hookline replay`: dead letters back onto `deliveries`, straight on Kafka (the
//! `hookline-replay` library; the API's `subscriptions replay` is the per-account way).

use clap::Args;
use hookline_config::Topics;
use hookline_kafka::KafkaSettings;
use time::OffsetDateTime;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Only this subscription's dead letters.
    #[arg(long)]
    subscription: Option<String>,
    /// Only those dead-lettered at or after this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    since: Option<OffsetDateTime>,
    /// Only those dead-lettered before this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    until: Option<OffsetDateTime>,
    /// List what would be replayed without producing anything.
    #[arg(long)]
    dry_run: bool,
}

/// A `--since`/`--until` value.
fn rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    hookline_model::timefmt::parse(s)
        .ok_or_else(|| format!("{s:?}: expected an RFC 3339 time such as 2026-11-25T10:00:00Z"))
}

pub(crate) async fn run(
    settings: &KafkaSettings,
    topics: &Topics,
    args: ReplayArgs,
) -> anyhow::Result<()> {
    let dry_run = args.dry_run;
    let filter = hookline_replay::Filter {
        subscription: args.subscription,
        since: args.since,
        until: args.until,
    };
    let n = hookline_replay::replay_each(settings, topics, &filter, dry_run, |dead| {
        if dry_run {
            println!(
                "{}  {}  {}  attempts={}  last_error={}",
                dead.dead_lettered_at,
                dead.delivery.subscription_id,
                dead.delivery.delivery_id,
                dead.attempts,
                dead.last_error.as_deref().unwrap_or("-")
            );
        }
    })
    .await?;
    let verb = if dry_run { "would replay" } else { "replayed" };
    println!(
        "{verb} {n} dead-lettered deliver{}",
        if n == 1 { "y" } else { "ies" }
    );
    Ok(())
}
