//! Replaying dead letters: back onto `deliveries`, unchanged, so they take the normal path
//! (signature, limits, retries) and keep their delivery id for receivers' de-duplication.
//!
//! Shared by `hookline replay` and the admin API's `POST /v1/subscriptions/{id}/replay`.

use std::time::Duration;

use hookline_config::Topics;
use hookline_kafka::producer::Acks;
use hookline_kafka::{KafkaSettings, Producer};
use hookline_model::DeadLetter;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use time::OffsetDateTime;

/// Which dead letters to replay.
pub struct Filter {
    pub subscription: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

impl Filter {
    fn matches(&self, d: &DeadLetter) -> bool {
        if self
            .subscription
            .as_deref()
            .is_some_and(|s| s != d.delivery.subscription_id.0)
        {
            return false;
        }
        let at = hookline_model::timefmt::parse(&d.dead_lettered_at);
        if let (Some(since), Some(at)) = (self.since, at) {
            if at < since {
                return false;
            }
        }
        if let (Some(until), Some(at)) = (self.until, at) {
            if at >= until {
                return false;
            }
        }
        true
    }
}

/// Why a replay did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Kafka(#[from] hookline_kafka::KafkaError),
    #[error("kafka client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("could not read the dead-letter topic to its end within {0:?}")]
    Timeout(Duration),
}

/// Reads `dead-letter` up to its current end and re-produces the matching deliveries; returns
/// how many matched.
pub async fn replay(
    settings: &KafkaSettings,
    topics: &Topics,
    filter: &Filter,
    dry_run: bool,
) -> Result<usize, ReplayError> {
    replay_each(settings, topics, filter, dry_run, |_| {}).await
}

/// Like [`replay`], calling `on_match` for every matching dead letter (before it is
/// re-produced, or instead of it when `dry_run`).
pub async fn replay_each(
    settings: &KafkaSettings,
    topics: &Topics,
    filter: &Filter,
    dry_run: bool,
    mut on_match: impl FnMut(&DeadLetter),
) -> Result<usize, ReplayError> {
    let consumer: BaseConsumer = settings.table_consumer("hookline-replay").create()?;
    let partitions = hookline_kafka::table::partition_count(settings, &topics.dead_letter)?;
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in 0..partitions {
        let (low, high) =
            consumer.fetch_watermarks(&topics.dead_letter, p, Duration::from_secs(10))?;
        if high > low {
            tpl.add_partition_offset(&topics.dead_letter, p, Offset::Offset(low))?;
            ends.push((p, high));
        }
    }
    let producer = Producer::new(settings)?;
    let mut acks = Acks::new();
    let mut count = 0;
    if ends.is_empty() {
        return Ok(0);
    }
    consumer.assign(&tpl)?;
    let mut remaining: std::collections::HashMap<i32, i64> = ends.into_iter().collect();
    const READ_LIMIT: Duration = Duration::from_secs(120);
    let deadline = std::time::Instant::now() + READ_LIMIT;
    while !remaining.is_empty() && std::time::Instant::now() < deadline {
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg?;
        let p = msg.partition();
        if let Some(end) = remaining.get(&p) {
            if msg.offset() + 1 >= *end {
                remaining.remove(&p);
            }
        }
        let Some(bytes) = msg.payload() else { continue };
        let Ok(dead) = serde_json::from_slice::<DeadLetter>(bytes) else {
            tracing::warn!(
                partition = p,
                offset = msg.offset(),
                "skipping a malformed dead letter"
            );
            continue;
        };
        if !filter.matches(&dead) {
            continue;
        }
        count += 1;
        on_match(&dead);
        if !dry_run {
            let d = &dead.delivery;
            producer
                .send_json(
                    &mut acks,
                    &topics.deliveries,
                    d.subscription_id.0.as_bytes(),
                    d,
                )
                .await?;
        }
    }
    if !remaining.is_empty() {
        return Err(ReplayError::Timeout(READ_LIMIT));
    }
    acks.wait().await?;
    Ok(count)
}
