//! `hookline subscriptions-topic put|delete`: the subscription table written straight on
//! Kafka, validated the way the stages validate, without the admin API (no URL verification:
//! the operator vouches for the URL). `hookline subscription` is its old, deprecated name.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use hookline_config::Topics;
use hookline_kafka::producer::Acks;
use hookline_kafka::{KafkaSettings, Producer};
use hookline_model::Subscription;
use hookline_routing::InvalidSubscription;
use hookline_schemas::{validators, SchemaKind};
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum SubscriptionsTopicCmd {
    /// Validate a subscription JSON file and write it.
    Put {
        file: PathBuf,
        /// Accept plain http:// URLs (local runs only).
        #[arg(long)]
        allow_http: bool,
    },
    /// Remove a subscription (writes a tombstone).
    Delete { id: String },
}

pub(crate) async fn run(
    settings: &KafkaSettings,
    topics: &Topics,
    cmd: SubscriptionsTopicCmd,
) -> anyhow::Result<()> {
    match cmd {
        SubscriptionsTopicCmd::Put { file, allow_http } => {
            put(settings, topics, &file, allow_http).await
        }
        SubscriptionsTopicCmd::Delete { id } => delete(settings, topics, &id).await,
    }
}

/// `hookline subscriptions-topic put FILE [--allow-http]`: validate the file and write it.
async fn put(
    settings: &KafkaSettings,
    topics: &Topics,
    file: &Path,
    allow_http: bool,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    validators()
        .validate(SchemaKind::Subscription, &value)
        .map_err(|v| anyhow::anyhow!("{}: {v}", file.display()))?;
    let sub: Subscription = serde_json::from_value(value)?;
    hookline_routing::validate_subscription(&sub, !allow_http)
        .map_err(|e| anyhow::anyhow!("{}: {e}{}", file.display(), put_hint(&sub, &e)))?;
    let producer = Producer::new(settings)?;
    let mut acks = Acks::new();
    producer
        .send_json(&mut acks, &topics.subscriptions, sub.id.0.as_bytes(), &sub)
        .await?;
    acks.wait().await?;
    let scope = sub.database.as_ref().map_or_else(
        || "every database of its account".to_owned(),
        |d| format!("database {d}"),
    );
    println!(
        "subscription {} written ({} on {scope})",
        sub.id,
        sub.status.as_str()
    );
    Ok(())
}

/// The way out of a refused `subscriptions-topic put`, where there is one: an `http://` URL is
/// accepted with `--allow-http` (the stages must then run with `HOOKLINE_REQUIRE_HTTPS=false`).
fn put_hint(sub: &Subscription, e: &InvalidSubscription) -> &'static str {
    if e.field == "url" && sub.url.starts_with("http://") {
        "; for a local http:// receiver add --allow-http (the stages must run with \
         HOOKLINE_REQUIRE_HTTPS=false, as `make run` does)"
    } else {
        ""
    }
}

/// `hookline subscriptions-topic delete ID`: a tombstone for the subscription.
async fn delete(settings: &KafkaSettings, topics: &Topics, id: &str) -> anyhow::Result<()> {
    let producer = Producer::new(settings)?;
    let mut acks = Acks::new();
    producer
        .send(&mut acks, &topics.subscriptions, Some(id.as_bytes()), None)
        .await?;
    acks.wait().await?;
    println!("subscription {id} removed");
    Ok(())
}
