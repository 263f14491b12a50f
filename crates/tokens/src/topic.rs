//! The `tokens` topic for operator tooling: one record written (a token, or a tombstone that
//! revokes it) and acknowledged, or the whole topic read once to its end.
//!
//! A record whose key is not UTF-8 or whose value does not parse as a token is logged (without
//! its content: it may hold a hash) and skipped, the previous value staying.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hookline_config::Topics;
use hookline_kafka::table::{TableSink, TableTail};
use hookline_kafka::{KafkaError, KafkaSettings};
use hookline_model::TokenRecord;
use rdkafka::producer::{FutureProducer, FutureRecord};

const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a write to or a read of the `tokens` topic did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TokenTopicError {
    #[error("serializing the token record: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("kafka did not take the write to {topic}: {reason}")]
    Produce { topic: String, reason: String },
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

/// Writes a token record (keyed by its id) and waits for the broker's acknowledgement.
pub async fn write_token(
    settings: &KafkaSettings,
    topics: &Topics,
    token: &TokenRecord,
) -> Result<(), TokenTopicError> {
    let value = serde_json::to_vec(token)?;
    write_once(settings, &topics.tokens, &token.id, Some(&value)).await
}

/// Revokes a token: a tombstone for its id on `tokens`.
pub async fn revoke_token(
    settings: &KafkaSettings,
    topics: &Topics,
    id: &str,
) -> Result<(), TokenTopicError> {
    write_once(settings, &topics.tokens, id, None).await
}

async fn write_once(
    settings: &KafkaSettings,
    topic: &str,
    key: &str,
    value: Option<&[u8]>,
) -> Result<(), TokenTopicError> {
    let producer: FutureProducer = settings.producer().create().map_err(KafkaError::from)?;
    let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(key);
    if let Some(v) = value {
        record = record.payload(v);
    }
    producer
        .send(record, WRITE_TIMEOUT)
        .await
        .map_err(|(e, _)| TokenTopicError::Produce {
            topic: topic.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(())
}

/// Reads the `tokens` topic once to its end; the live tokens, oldest first.
pub async fn read_tokens(
    settings: &KafkaSettings,
    topics: &Topics,
) -> Result<Vec<TokenRecord>, KafkaError> {
    let rows: Rows = Arc::default();
    let sink = TokenSink {
        rows: rows.clone(),
        topic: topics.tokens.clone(),
    };
    let tail = TableTail::follow_all(settings, "hookline-tokens", &topics.tokens, sink).await?;
    drop(tail);
    let mut out: Vec<TokenRecord> = rows
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .cloned()
        .collect();
    out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    Ok(out)
}

type Rows = Arc<Mutex<HashMap<String, TokenRecord>>>;

/// Token records by key; a tombstone removes one.
struct TokenSink {
    rows: Rows,
    topic: String,
}

impl TableSink for TokenSink {
    fn apply(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        let Some(key) = key.and_then(|k| std::str::from_utf8(k).ok()) else {
            tracing::warn!(topic = %self.topic, partition, offset, "record without a UTF-8 key ignored");
            return;
        };
        let row = match value.map(serde_json::from_slice::<TokenRecord>) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                tracing::warn!(topic = %self.topic, partition, offset, error = %e, "malformed record ignored; the previous value stays");
                return;
            }
        };
        let mut rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        match row {
            None => rows.remove(key),
            Some(v) => rows.insert(key.to_owned(), v),
        };
    }

    fn forget_partition(&mut self, _partition: i32) {}
}
