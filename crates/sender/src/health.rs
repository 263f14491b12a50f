//! Endpoint health that survives restarts and rebalances: the compacted `endpoint-health`
//! topic, keyed by subscription id, holds each endpoint's circuit state and since when it has
//! been failing.
//!
//! A record is written on a change only (the circuit opens or closes, the endpoint starts or
//! stops failing), together with the outcome that caused it, so it is acknowledged before the
//! input offset is committed. Every sender instance reads the whole topic before it starts and
//! follows it, and a breaker created for a subscription starts from its last record. A restart
//! therefore keeps the auto-disable clock (`--disable-after`) and an open circuit open.
//!
//! A record that does not parse, or whose key is not its subscription's, is logged and skipped:
//! parsing happens before the table's lock is taken, and a poisoned lock is taken over rather
//! than propagated as a panic.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use hookline_kafka::table::{TableSink, TableTail};
use hookline_kafka::{KafkaError, KafkaSettings};
pub use hookline_model::EndpointHealth;
use hookline_model::SubscriptionId;

/// The whole `endpoint-health` table, followed continuously.
pub struct HealthView {
    table: Arc<RwLock<HashMap<SubscriptionId, EndpointHealth>>>,
    _tail: TableTail,
}

impl HealthView {
    /// Reads `topic` to its end before returning.
    pub async fn start(settings: &KafkaSettings, topic: &str) -> Result<Self, KafkaError> {
        let table = Arc::new(RwLock::new(HashMap::new()));
        let tail = TableTail::follow_all(
            settings,
            "hookline-endpoint-health-view",
            topic,
            HealthSink {
                table: table.clone(),
            },
        )
        .await?;
        tracing::info!(
            topic,
            endpoints = table.read().unwrap_or_else(PoisonError::into_inner).len(),
            "endpoint health loaded"
        );
        Ok(Self { table, _tail: tail })
    }

    /// The last record of a subscription's endpoint.
    pub fn get(&self, id: &SubscriptionId) -> Option<EndpointHealth> {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }
}

struct HealthSink {
    table: Arc<RwLock<HashMap<SubscriptionId, EndpointHealth>>>,
}

impl TableSink for HealthSink {
    fn apply(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        let Some(key) = key.map(|k| SubscriptionId(String::from_utf8_lossy(k).into_owned())) else {
            tracing::warn!(
                partition,
                offset,
                "endpoint health record without a key; ignored"
            );
            return;
        };
        let health = match value.map(serde_json::from_slice::<EndpointHealth>) {
            None => None,
            Some(Ok(h)) if h.subscription_id == key => Some(h),
            Some(Ok(_)) => {
                tracing::warn!(partition, offset, subscription = %key, "endpoint health record for another key; ignored");
                return;
            }
            Some(Err(e)) => {
                tracing::warn!(partition, offset, subscription = %key, error = %e, "unreadable endpoint health record; ignored");
                return;
            }
        };
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        match health {
            None => table.remove(&key),
            Some(h) => table.insert(key, h),
        };
    }

    fn forget_partition(&mut self, _partition: i32) {
        // Every instance keeps the whole table.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"subscription_id": id, "state": "open",
            "cool_down_ms": 1000, "updated_at": "2026-11-25T10:00:00Z"}))
        .unwrap()
    }

    #[test]
    fn hostile_records_are_skipped_and_a_poisoned_lock_is_taken_over() {
        let table = Arc::new(RwLock::new(HashMap::new()));
        let mut sink = HealthSink {
            table: table.clone(),
        };
        sink.apply(0, 0, Some(b"s1"), Some(&record("s1")));
        sink.apply(0, 1, Some(b"s1"), Some(b"\xff{not json"));
        sink.apply(0, 2, Some(b"s2"), Some(&record("s1")));
        sink.apply(0, 3, None, Some(&record("s3")));
        let poison = table.clone();
        assert!(std::thread::spawn(move || {
            let _guard = poison.write().unwrap();
            panic!("poisoning the health lock on purpose");
        })
        .join()
        .is_err());
        sink.apply(0, 4, Some(b"s4"), Some(&record("s4")));
        let rows = table.read().unwrap_or_else(PoisonError::into_inner);
        let mut ids: Vec<&str> = rows.keys().map(|k| k.0.as_str()).collect();
        ids.sort();
        assert_eq!(ids, vec!["s1", "s4"]);
        assert_eq!(rows[&SubscriptionId("s1".into())].state, "open");
    }
}
