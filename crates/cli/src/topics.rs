//! `hookline topics create`: the design's topics, straight on Kafka.

use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use hookline_config::Topics;
use hookline_kafka::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};

#[derive(Debug, Subcommand)]
pub enum TopicsCmd {
    /// Create every topic of the design that does not exist yet.
    Create {
        /// Partitions per topic (equal everywhere, so the join topics are co-partitioned).
        #[arg(long, env = "HOOKLINE_PARTITIONS", default_value_t = 6)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication: i32,
    },
}

pub(crate) async fn run(
    settings: &KafkaSettings,
    topics: &Topics,
    cmd: TopicsCmd,
) -> anyhow::Result<()> {
    match cmd {
        TopicsCmd::Create {
            partitions,
            replication,
        } => create(settings, topics, partitions, replication).await,
    }
}

/// `hookline topics create`: every topic of the design that does not exist yet. The broker is
/// asked only when one is missing: creating topics that exist makes it log an error for each
/// (seventeen on every `make run` after the first).
async fn create(
    settings: &KafkaSettings,
    topics: &Topics,
    partitions: i32,
    replication: i32,
) -> anyhow::Result<()> {
    if partitions < 1 {
        anyhow::bail!("--partitions must be at least 1");
    }
    let existing = existing_topics(settings)
        .with_context(|| format!("listing the topics on {}", settings.brokers))?;
    let all = topics.all();
    let created = if all.iter().all(|(name, _)| existing.contains(name)) {
        Vec::new()
    } else {
        hookline_kafka::topics::ensure_topics(settings, topics, partitions, replication)
            .await
            .with_context(|| format!("creating topics on {}", settings.brokers))?
    };
    for (name, _) in all {
        let state = if created.contains(&name) {
            "created"
        } else {
            "exists"
        };
        println!("{state:8} {name}");
    }
    Ok(())
}

/// The names of the topics the broker has.
fn existing_topics(settings: &KafkaSettings) -> anyhow::Result<Vec<String>> {
    let consumer: BaseConsumer = settings.table_consumer("hookline-cli-topics").create()?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .collect())
}
