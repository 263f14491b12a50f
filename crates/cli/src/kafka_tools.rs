//! Operator tooling straight on Kafka: `topics create`, `subscription put`, `produce` and
//! `demo seed`.
//!
//! These write the topics the stages read, validated the way the stages validate, without the
//! admin API (no URL verification: the operator vouches for the URL).

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use hookline_config::Topics;
use hookline_kafka::producer::Acks;
use hookline_kafka::{KafkaSettings, Producer};
use hookline_model::Subscription;
use hookline_routing::InvalidSubscription;
use hookline_schemas::{validators, SchemaKind};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{json, Value};

/// `hookline topics create`: every topic of the design that does not exist yet. The broker is
/// asked only when one is missing: creating topics that exist makes it log an error for each
/// (seventeen on every `make run` after the first).
pub async fn topics_create(
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

/// `hookline subscription put FILE [--allow-http]`: validate the file and write it.
pub async fn subscription_put(
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

/// The way out of a refused `subscription put`, where there is one: an `http://` URL is
/// accepted with `--allow-http` (the stages must then run with `HOOKLINE_REQUIRE_HTTPS=false`).
fn put_hint(sub: &Subscription, e: &InvalidSubscription) -> &'static str {
    if e.field == "url" && sub.url.starts_with("http://") {
        "; for a local http:// receiver add --allow-http (the stages must run with \
         HOOKLINE_REQUIRE_HTTPS=false, as `make run` does)"
    } else {
        ""
    }
}

/// `hookline produce tracking|profile-changes FILE`: one JSON event per line, keyed
/// `<database>:<profile>`.
pub async fn produce(
    settings: &KafkaSettings,
    topics: &Topics,
    topic: &str,
    file: &Path,
) -> anyhow::Result<()> {
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

/// `hookline demo seed`: a subscription to the demo receiver, profile 12:4711 and a click and
/// an open. Every run's change and events have ids of their own (the run's start in
/// milliseconds), so each run's deliveries have new delivery ids: a receiver that drops
/// duplicates by delivery id, as it should, does not drop the next run's.
pub async fn demo_seed(
    settings: &KafkaSettings,
    topics: &Topics,
    receiver_url: &str,
) -> anyhow::Result<()> {
    let run = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let producer = Producer::new(settings)?;
    let mut acks = Acks::new();
    let sub = json!({
        "id": "demo-all-events", "account": "1001", "database": "12",
        "events": ["click", "open", "bounce", "failure", "delivery", "create", "update", "delete"],
        "url": receiver_url, "format": "json", "status": "active",
        "conditions": null, "created": hookline_model::timefmt::now_rfc3339()
    });
    producer
        .send_json(&mut acks, &topics.subscriptions, b"demo-all-events", &sub)
        .await?;
    acks.wait().await?;
    // Stages pick up subscription changes within a second: let this one arrive before the
    // events it should receive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mike = json!({"id": format!("chg-demo-{run}"), "account": "1001", "database": "12",
        "profile": "4711", "action": "create", "trigger": "rest",
        "timestamp": hookline_model::timefmt::now_rfc3339(), "parameters": {"name": "Mike"},
        "fields": {"name": "Mike", "email": "mike@example.com", "city": "Amsterdam"},
        "interests": ["vip", "newsletter"]});
    producer
        .send_json(&mut acks, &topics.profile_changes, b"12:4711", &mike)
        .await?;
    acks.wait().await?;
    println!("seeded subscription demo-all-events → {receiver_url} and profile 12:4711 (Mike)");
    // Let the profile reach the table before events that join against it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let now = hookline_model::timefmt::now_rfc3339();
    let click = json!({"id": format!("evt-demo-click-{run}"), "type": "click", "account": "1001",
        "database": "12", "profile": "4711", "collection": null, "subprofile": null,
        "mailing": "m-demo-01", "timestamp": now, "ip": "203.0.113.7", "useragent": "Mozilla/5.0",
        "referer": "https://mail.example/",
        "headers": {"User-Agent": "Mozilla/5.0", "Accept-Language": "nl"},
        "original": "https://shop.example/offer", "tags": ["black-friday"]});
    let open = json!({"id": format!("evt-demo-open-{run}"), "type": "open", "account": "1001",
        "database": "12", "profile": "4711", "mailing": "m-demo-01", "timestamp": now,
        "ip": "203.0.113.7", "useragent": "Mozilla/5.0", "referer": "",
        "headers": {"User-Agent": "Mozilla/5.0"}, "tags": ["black-friday"]});
    producer
        .send_json(&mut acks, &topics.tracking, b"12:4711", &click)
        .await?;
    producer
        .send_json(&mut acks, &topics.tracking, b"12:4711", &open)
        .await?;
    acks.wait().await?;
    println!("seeded a click and an open for 12:4711 (run {run})");
    Ok(())
}
