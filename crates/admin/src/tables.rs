//! The admin API's view of its Kafka tables, and its writes to them.
//!
//! Kafka is the only store: `subscriptions`, `tokens`, `domains` and `databases` are compacted
//! topics, each tailed into memory by a [`TableTail`]. A write is produced, acknowledged, and
//! then awaited on the tail (up to the high watermark seen after the acknowledgement), so a read
//! after a write — on this instance — sees it. Recent `outcomes` are tailed into a bounded per-subscription
//! history for `GET /v1/subscriptions/{id}/attempts`, and the sender's `endpoint-health`
//! (circuit state per subscription) is followed for `GET /v1/subscriptions/{id}`.
//!
//! The topics are writable by more than this API, so the followers take nothing on trust: a
//! record whose key is not UTF-8, whose value does not parse, or (for `subscriptions`) that
//! fails validation is logged and skipped, the previous value staying. Parsing and validation
//! happen before a table's lock is taken, and a poisoned lock is taken over rather than
//! propagated as a panic.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use hookline_config::Topics;
use hookline_kafka::polled::{PolledProducer, ReportContext};
use hookline_kafka::table::{partition_count, StartAt, TableSink, TableTail};
use hookline_kafka::{KafkaError, KafkaSettings};
use hookline_model::{
    DatabaseSettings, DomainRecord, EndpointHealth, Outcome, Subscription, SubscriptionId,
    TokenRecord,
};
use hookline_telemetry::metrics::IntGauge;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::de::DeserializeOwned;

/// Operator tooling's one-off access to `tokens` (there is no token yet to call the API with);
/// it lives in `hookline-tokens`, shared with the CLI.
pub use hookline_tokens::{read_tokens, revoke_token, write_token};

/// How many attempts are kept per subscription for the history endpoint.
pub const ATTEMPTS_KEPT: usize = 100;

mod history;
use history::{older_than, Histories, OutcomesSink};
pub use history::{Position, HISTORIES_KEPT};
/// How far back (records per partition) the history starts reading `outcomes` at start.
const OUTCOMES_LOOKBACK: i64 = 50_000;

type Rows<T> = Arc<RwLock<HashMap<String, T>>>;

/// A table for reading; see the module docs on poisoning.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Checks a parsed row against its key before it is taken in; `Err` says why it is skipped.
type Check<T> = fn(&str, &T) -> Result<(), String>;

/// Reads a compacted topic of JSON values into a map by key.
struct JsonSink<T> {
    rows: Rows<T>,
    topic: String,
    check: Check<T>,
    /// Set to the number of rows after every change, when given.
    count: Option<IntGauge>,
}

impl<T: DeserializeOwned + Send + Sync + 'static> TableSink for JsonSink<T> {
    fn apply(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        let Some(key) = key.and_then(|k| std::str::from_utf8(k).ok()) else {
            tracing::warn!(topic = %self.topic, partition, offset, "record without a UTF-8 key ignored");
            return;
        };
        let row = match value.map(serde_json::from_slice::<T>) {
            None => None,
            Some(Ok(v)) => match (self.check)(key, &v) {
                Ok(()) => Some(v),
                Err(reason) => {
                    tracing::warn!(topic = %self.topic, partition, offset, key, reason, "invalid record ignored; the previous value stays");
                    return;
                }
            },
            Some(Err(e)) => {
                tracing::warn!(topic = %self.topic, partition, offset, error = %e, "malformed record ignored; the previous value stays");
                return;
            }
        };
        let mut rows = write(&self.rows);
        match row {
            None => rows.remove(key),
            Some(v) => rows.insert(key.to_owned(), v),
        };
        if let Some(count) = &self.count {
            count.set(i64::try_from(rows.len()).unwrap_or(i64::MAX));
        }
    }

    fn forget_partition(&mut self, _partition: i32) {}
}

/// Any row that parses.
fn any_row<T>(_key: &str, _row: &T) -> Result<(), String> {
    Ok(())
}

/// An `endpoint-health` row: for the subscription its key names, with a known state.
fn health_of_key(key: &str, h: &EndpointHealth) -> Result<(), String> {
    if h.subscription_id.0 != key {
        return Err(format!(
            "key {key} is not its subscription {}",
            h.subscription_id
        ));
    }
    match h.state.as_str() {
        "closed" | "open" | "half-open" => Ok(()),
        _ => Err("state is not closed, open or half-open".into()),
    }
}

/// A `databases` row as the tracking stage takes it: under its own `<account>:<database>` key,
/// its fields within bounds.
fn valid_database(key: &str, row: &DatabaseSettings) -> Result<(), String> {
    row.check(key)
}

/// A subscription as the stages take it: keyed by its id, and valid (the URL scheme aside:
/// whether http:// is allowed is each stage's `--require-https`), so the API shows the version
/// the stages route with and a hostile record never reaches a handler.
fn valid_subscription(key: &str, sub: &Subscription) -> Result<(), String> {
    if sub.id.0 != key {
        return Err(format!("key {key:?} does not match the id {:?}", sub.id.0));
    }
    hookline_routing::validate_subscription(sub, false)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// One followed topic.
struct Followed<T> {
    rows: Rows<T>,
    tail: TableTail,
}

impl<T: DeserializeOwned + Send + Sync + 'static> Followed<T> {
    async fn start(
        settings: &KafkaSettings,
        topic: &str,
        check: Check<T>,
        count: Option<IntGauge>,
    ) -> Result<Self, KafkaError> {
        let rows: Rows<T> = Arc::default();
        let sink = JsonSink {
            rows: rows.clone(),
            topic: topic.to_owned(),
            check,
            count,
        };
        let tail = TableTail::follow_all(settings, "hookline-admin", topic, sink).await?;
        Ok(Self { rows, tail })
    }
}

/// Why a write did not land.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("serializing the record: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("kafka did not take the write to {topic}: {reason}")]
    Produce { topic: String, reason: String },
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

/// The followed tables and the producer that writes them.
pub struct Tables {
    topics: Topics,
    producer: PolledProducer,
    subscriptions: Followed<Subscription>,
    tokens: Followed<TokenRecord>,
    domains: Followed<DomainRecord>,
    databases: Followed<DatabaseSettings>,
    health: Followed<EndpointHealth>,
    attempts: Histories,
    backlog: Arc<RwLock<crate::backlog::Backlog>>,
    _outcomes: TableTail,
}

impl Tables {
    /// Loads every table to its end before returning, so the API never answers from a
    /// half-read table.
    pub async fn start(settings: &KafkaSettings, topics: &Topics) -> Result<Self, KafkaError> {
        Self::start_counted(settings, topics, None).await
    }

    /// Like [`Tables::start`]; `subscriptions` (the `hookline_routing_subscriptions` gauge of
    /// the admin's `/metrics`) follows the number of subscriptions held.
    pub async fn start_counted(
        settings: &KafkaSettings,
        topics: &Topics,
        subscriptions: Option<IntGauge>,
    ) -> Result<Self, KafkaError> {
        let producer = PolledProducer::create(
            &settings.producer(),
            ReportContext(hookline_kafka::stats::StatsContext::default()),
        )?;
        let subscriptions = Followed::start(
            settings,
            &topics.subscriptions,
            valid_subscription,
            subscriptions,
        )
        .await?;
        let tokens = Followed::start(settings, &topics.tokens, any_row, None).await?;
        let domains = Followed::start(settings, &topics.domains, any_row, None).await?;
        let databases = Followed::start(settings, &topics.databases, valid_database, None).await?;
        let health =
            Followed::start(settings, &topics.endpoint_health, health_of_key, None).await?;
        let attempts = Arc::default();
        let backlog = Arc::default();
        let outcomes = TableTail::spawn(
            settings,
            "hookline-admin-outcomes",
            &topics.outcomes,
            OutcomesSink::new(Arc::clone(&attempts), Arc::clone(&backlog), HISTORIES_KEPT),
        )?;
        let consumer: BaseConsumer = settings
            .table_consumer("hookline-admin-watermarks")
            .create()?;
        let mut starts = Vec::new();
        for p in 0..partition_count(settings, &topics.outcomes)? {
            let (low, high) = consumer
                .fetch_watermarks(&topics.outcomes, p, Duration::from_secs(10))
                .map_err(|source| KafkaError::Watermarks {
                    topic: topics.outcomes.clone(),
                    partition: p,
                    source,
                })?;
            starts.push((p, StartAt::Offset(low.max(high - OUTCOMES_LOOKBACK))));
        }
        outcomes.assign(starts);
        tracing::info!(
            subscriptions = read(&subscriptions.rows).len(),
            tokens = read(&tokens.rows).len(),
            domains = read(&domains.rows).len(),
            databases = read(&databases.rows).len(),
            "admin tables loaded"
        );
        Ok(Self {
            topics: topics.clone(),
            producer,
            subscriptions,
            tokens,
            domains,
            databases,
            health,
            attempts,
            backlog,
            _outcomes: outcomes,
        })
    }

    pub fn token(&self, id: &str) -> Option<TokenRecord> {
        read(&self.tokens.rows).get(id).cloned()
    }

    pub fn subscription(&self, id: &str) -> Option<Subscription> {
        read(&self.subscriptions.rows).get(id).cloned()
    }

    /// Every subscription for which `keep` is true, ordered by id.
    pub fn subscriptions_where(&self, keep: impl Fn(&Subscription) -> bool) -> Vec<Subscription> {
        let mut out: Vec<Subscription> = read(&self.subscriptions.rows)
            .values()
            .filter(|s| keep(s))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.id.0.cmp(&b.id.0));
        out
    }

    /// The last `endpoint-health` record of subscription `id` (none while it never failed).
    /// The deliveries of a subscription waiting for another attempt or parked
    /// ([`crate::backlog`]).
    pub fn backlog(&self, id: &SubscriptionId) -> crate::backlog::BacklogView {
        read(&self.backlog).view(id)
    }

    pub fn endpoint_health(&self, id: &str) -> Option<EndpointHealth> {
        read(&self.health.rows).get(id).cloned()
    }

    pub fn domain(&self, key: &str) -> Option<DomainRecord> {
        read(&self.domains.rows).get(key).cloned()
    }

    pub fn domains_where(&self, keep: impl Fn(&DomainRecord) -> bool) -> Vec<DomainRecord> {
        let mut out: Vec<DomainRecord> = read(&self.domains.rows)
            .values()
            .filter(|d| keep(d))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.domain.cmp(&b.domain));
        out
    }

    /// The settings of the database `key` (`<account>:<database>`), if any were written.
    pub fn database(&self, key: &str) -> Option<DatabaseSettings> {
        read(&self.databases.rows).get(key).cloned()
    }

    /// Every database row for which `keep` is true, ordered by database id.
    pub fn databases_where(
        &self,
        keep: impl Fn(&DatabaseSettings) -> bool,
    ) -> Vec<DatabaseSettings> {
        let mut out: Vec<DatabaseSettings> = read(&self.databases.rows)
            .values()
            .filter(|d| keep(d))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.database.cmp(&b.database));
        out
    }

    /// The most recent attempts of a subscription, newest first.
    pub fn attempts(&self, id: &SubscriptionId, limit: usize) -> Vec<Outcome> {
        read(&self.attempts)
            .get(id)
            .map(|l| l.iter().rev().take(limit).map(|(_, o)| o.clone()).collect())
            .unwrap_or_default()
    }

    /// Up to `limit` attempts of a subscription older than the one at `before` (all when
    /// `None`), newest first, and the position of the last one when older ones remain. Empty
    /// when `before` is no longer kept (it was among the oldest, and has been dropped).
    pub fn attempts_before(
        &self,
        id: &SubscriptionId,
        before: Option<Position>,
        limit: usize,
    ) -> (Vec<Outcome>, Option<Position>) {
        read(&self.attempts)
            .get(id)
            .map_or((Vec::new(), None), |list| older_than(list, before, limit))
    }

    pub async fn put_subscription(&self, sub: &Subscription) -> Result<(), WriteError> {
        let value = serde_json::to_vec(sub)?;
        let topic = self.topics.subscriptions.clone();
        self.write(&self.subscriptions.tail, &topic, &sub.id.0, Some(&value))
            .await
    }

    pub async fn delete_subscription(&self, id: &SubscriptionId) -> Result<(), WriteError> {
        let topic = self.topics.subscriptions.clone();
        self.write(&self.subscriptions.tail, &topic, &id.0, None)
            .await
    }

    pub async fn put_token(&self, token: &TokenRecord) -> Result<(), WriteError> {
        let value = serde_json::to_vec(token)?;
        let topic = self.topics.tokens.clone();
        self.write(&self.tokens.tail, &topic, &token.id, Some(&value))
            .await
    }

    pub async fn put_domain(&self, domain: &DomainRecord) -> Result<(), WriteError> {
        let value = serde_json::to_vec(domain)?;
        let topic = self.topics.domains.clone();
        self.write(&self.domains.tail, &topic, &domain.key(), Some(&value))
            .await
    }

    pub async fn delete_domain(&self, key: &str) -> Result<(), WriteError> {
        let topic = self.topics.domains.clone();
        self.write(&self.domains.tail, &topic, key, None).await
    }

    pub async fn put_database(&self, row: &DatabaseSettings) -> Result<(), WriteError> {
        let value = serde_json::to_vec(row)?;
        let topic = self.topics.databases.clone();
        self.write(&self.databases.tail, &topic, &row.key(), Some(&value))
            .await
    }

    pub async fn delete_database(&self, key: &str) -> Result<(), WriteError> {
        let topic = self.topics.databases.clone();
        self.write(&self.databases.tail, &topic, key, None).await
    }

    /// Produces one record, waits for the broker's acknowledgement, then for the tail to read
    /// up to it: after this returns, this instance's reads include the write.
    async fn write(
        &self,
        tail: &TableTail,
        topic: &str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), WriteError> {
        let partition = produce_one(&self.producer, topic, key, value).await?;
        tail.caught_up(partition).await?;
        Ok(())
    }
}

/// Produces one record and waits for the broker's acknowledgement; returns its partition.
async fn produce_one(
    producer: &PolledProducer,
    topic: &str,
    key: &str,
    value: Option<&[u8]>,
) -> Result<i32, WriteError> {
    let failed = |reason: String| WriteError::Produce {
        topic: topic.to_owned(),
        reason,
    };
    let report = producer
        .send(topic, Some(key.as_bytes()), value)
        .map_err(|e| failed(e.to_string()))?;
    // librdkafka's `message.timeout.ms` bounds the wait for the answer.
    match report.await {
        Ok(Ok((partition, _offset))) => Ok(partition),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_client_gone) => Err(failed("the producer stopped".into())),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, conditions: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(
            &serde_json::json!({"id": id, "account": "1001", "database": "12",
            "events": ["click"], "url": "https://hooks.example/in", "status": "active",
            "conditions": conditions}),
        )
        .unwrap()
    }

    #[test]
    fn the_subscription_follower_skips_hostile_records_and_survives_a_poisoned_lock() {
        let rows: Rows<Subscription> = Arc::default();
        let count = IntGauge::new("subscriptions", "rows").unwrap();
        let mut sink = JsonSink {
            rows: rows.clone(),
            topic: "subscriptions".into(),
            check: valid_subscription,
            count: Some(count.clone()),
        };
        sink.apply(0, 0, Some(b"s1"), Some(&sub("s1", serde_json::Value::Null)));
        let bad_date = serde_json::json!({"field": "signup", "op": "before", "value": "5日"});
        sink.apply(0, 1, Some(b"s1"), Some(&sub("s1", bad_date.clone())));
        sink.apply(0, 2, Some(b"s2"), Some(&sub("s2", bad_date)));
        sink.apply(0, 3, Some(b"s3"), Some(b"\xff{not json"));
        sink.apply(
            0,
            4,
            Some(b"\xff"),
            Some(&sub("s4", serde_json::Value::Null)),
        );
        sink.apply(0, 5, Some(b"s5"), Some(&sub("s6", serde_json::Value::Null)));
        let poison = rows.clone();
        assert!(std::thread::spawn(move || {
            let _guard = poison.write().unwrap();
            panic!("poisoning the table lock on purpose");
        })
        .join()
        .is_err());
        sink.apply(0, 6, Some(b"s7"), Some(&sub("s7", serde_json::Value::Null)));
        let rows = read(&rows);
        let mut ids: Vec<&str> = rows.keys().map(String::as_str).collect();
        ids.sort();
        assert_eq!(ids, vec!["s1", "s7"]);
        assert!(rows["s1"].conditions.is_null(), "the valid version stays");
        assert_eq!(count.get(), 2, "the gauge counts the rows taken in");
        drop(rows);
        sink.apply(0, 7, Some(b"s1"), None);
        assert_eq!(count.get(), 1, "a tombstone removes one");
    }
}
