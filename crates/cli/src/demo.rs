//! `hookline demo seed`: a demo subscription, profile and events, straight on Kafka.

use std::time::Duration;

use clap::Subcommand;
use hookline_config::Topics;
use hookline_kafka::producer::Acks;
use hookline_kafka::{KafkaSettings, Producer};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum DemoCmd {
    /// Produce a demo subscription (to RECEIVER_URL), a profile and a few events.
    Seed {
        #[arg(long, default_value = "http://127.0.0.1:8080/webhook")]
        receiver_url: String,
    },
}

pub(crate) async fn run(
    settings: &KafkaSettings,
    topics: &Topics,
    cmd: DemoCmd,
) -> anyhow::Result<()> {
    match cmd {
        DemoCmd::Seed { receiver_url } => seed(settings, topics, &receiver_url).await,
    }
}

/// `hookline demo seed`: a subscription to the demo receiver, profile 12:4711 and a click and
/// an open. Every run's change and events have ids of their own (the run's start in
/// milliseconds), so each run's deliveries have new delivery ids: a receiver that drops
/// duplicates by delivery id, as it should, does not drop the next run's.
async fn seed(settings: &KafkaSettings, topics: &Topics, receiver_url: &str) -> anyhow::Result<()> {
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
