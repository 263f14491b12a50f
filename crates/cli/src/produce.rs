//! `hookline produce tracking|profile-changes FILE`: JSON events onto the stages' input
//! topics, with the contract's keys, the way any Kafka client would.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use hookline_config::Topics;
use hookline_kafka::producer::Acks;
use hookline_kafka::{KafkaSettings, Producer};
use hookline_schemas::{validators, SchemaKind};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// `tracking` or `profile-changes`.
    #[arg(value_parser = ["tracking", "profile-changes"])]
    topic: String,
    file: PathBuf,
}

/// `hookline produce tracking|profile-changes FILE`: one JSON event per line, keyed
/// `<database>:<profile>`.
pub(crate) async fn run(
    settings: &KafkaSettings,
    topics: &Topics,
    args: &ProduceArgs,
) -> anyhow::Result<()> {
    let (topic, file) = (args.topic.as_str(), &args.file);
    let (name, kind) = match topic {
        "tracking" => (topics.tracking.clone(), SchemaKind::TrackingEvent),
        _ => (topics.profile_changes.clone(), SchemaKind::ProfileChange),
    };
    let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
        ))
    };
    let producer = Producer::new(settings)?;
    let mut acks = Acks::new();
    let mut n = 0;
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(&line).with_context(|| format!("line {}: not JSON", i + 1))?;
        validators()
            .validate(kind, &v)
            .map_err(|e| anyhow::anyhow!("line {}: {e}", i + 1))?;
        let key = format!(
            "{}:{}",
            v["database"].as_str().unwrap_or(""),
            v["profile"].as_str().unwrap_or("")
        );
        producer
            .send(
                &mut acks,
                &name,
                Some(key.as_bytes()),
                Some(line.as_bytes()),
            )
            .await?;
        n += 1;
    }
    acks.wait().await?;
    println!("produced {n} record(s) to {name}");
    Ok(())
}
