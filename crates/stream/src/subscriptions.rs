//! The whole subscription table, tailed continuously so changes take effect within a second
//! without a restart.

use std::sync::{Arc, RwLock, RwLockReadGuard};

use hookline_kafka::table::{partition_count, StartAt, TableSink, TableTail};
use hookline_kafka::{KafkaError, KafkaSettings};
use hookline_model::{Subscription, SubscriptionId};
use hookline_routing::SubscriptionTable;
use hookline_telemetry::Metrics;

/// A live view of the `subscriptions` topic.
pub struct SubscriptionsView {
    table: Arc<RwLock<SubscriptionTable>>,
    _tail: TableTail,
}

impl SubscriptionsView {
    /// Reads the whole topic up to its end before returning, so a stage never routes against a
    /// half-loaded table. `require_https` mirrors the admin API's policy.
    pub async fn start(
        settings: &KafkaSettings,
        topic: &str,
        require_https: bool,
        metrics: Metrics,
    ) -> Result<Self, KafkaError> {
        let partitions = partition_count(settings, topic)?;
        let table = Arc::new(RwLock::new(SubscriptionTable::new()));
        let sink = SubscriptionSink {
            table: table.clone(),
            require_https,
            metrics,
        };
        let tail = TableTail::spawn(settings, "hookline-subscriptions-view", topic, sink)?;
        tail.assign((0..partitions).map(|p| (p, StartAt::Beginning)).collect());
        for p in 0..partitions {
            tail.caught_up(p).await?;
        }
        tracing::info!(
            topic,
            subscriptions = table.read().expect("lock").len(),
            "subscription table loaded"
        );
        Ok(Self { table, _tail: tail })
    }

    pub fn read(&self) -> RwLockReadGuard<'_, SubscriptionTable> {
        self.table.read().expect("subscription table lock")
    }

    pub fn shared(&self) -> Arc<RwLock<SubscriptionTable>> {
        self.table.clone()
    }
}

struct SubscriptionSink {
    table: Arc<RwLock<SubscriptionTable>>,
    require_https: bool,
    metrics: Metrics,
}

impl TableSink for SubscriptionSink {
    fn apply(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        let key = key.map(|k| String::from_utf8_lossy(k).into_owned());
        let mut table = self.table.write().expect("subscription table lock");
        match value {
            None => {
                if let Some(k) = key {
                    table.remove(&SubscriptionId(k));
                }
            }
            Some(bytes) => match serde_json::from_slice::<Subscription>(bytes) {
                Ok(sub) if key.as_deref() == Some(sub.id.0.as_str()) => {
                    let id = sub.id.clone();
                    if let Err(e) = table.upsert(sub, self.require_https) {
                        tracing::warn!(subscription = %id, partition, offset, error = %e, "subscription refused; the previous version stays in force");
                        self.metrics
                            .quarantined
                            .with_label_values(&["subscriptions", "schema"])
                            .inc();
                    }
                }
                Ok(sub) => {
                    tracing::warn!(partition, offset, key = ?key, id = %sub.id, "subscription key does not match its id; ignored");
                    self.metrics
                        .quarantined
                        .with_label_values(&["subscriptions", "key"])
                        .inc();
                }
                Err(e) => {
                    tracing::warn!(partition, offset, error = %e, "malformed subscription ignored");
                    self.metrics
                        .quarantined
                        .with_label_values(&["subscriptions", "json"])
                        .inc();
                }
            },
        }
        self.metrics.subscriptions.set(table.len() as i64);
        self.metrics
            .table_records
            .with_label_values(&["subscriptions"])
            .inc();
    }

    fn forget_partition(&mut self, _partition: i32) {}
}
