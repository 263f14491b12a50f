//! Endpoint health that survives restarts and rebalances: the compacted `endpoint-health`
//! topic, keyed by subscription id, holds each endpoint's circuit state and since when it has
//! been failing.
//!
//! A record is written on a change only (the circuit opens or closes, the endpoint starts or
//! stops failing), together with the outcome that caused it, so it is acknowledged before the
//! input offset is committed. Every sender instance reads the whole topic before it starts and
//! follows it, and a breaker created for a subscription starts from its last record. A restart
//! therefore keeps the auto-disable clock (`--disable-after`) and an open circuit open.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use hookline_kafka::table::{partition_count, StartAt, TableSink, TableTail};
use hookline_kafka::{KafkaError, KafkaSettings};
use hookline_model::SubscriptionId;
use serde::{Deserialize, Serialize};

/// The value on `endpoint-health` (`schemas/endpoint-health.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointHealth {
    pub subscription_id: SubscriptionId,
    /// `closed`, `open` or `half-open`.
    pub state: String,
    /// Since when every attempt has failed (RFC 3339); absent while the endpoint answers.
    #[serde(default)]
    pub failing_since: Option<String>,
    /// When the circuit last opened.
    #[serde(default)]
    pub opened_at: Option<String>,
    /// Until when an open circuit lets nothing through.
    #[serde(default)]
    pub open_until: Option<String>,
    /// The current cool-down (it doubles after each failed probe).
    pub cool_down_ms: u64,
    pub updated_at: String,
}

/// The whole `endpoint-health` table, followed continuously.
pub struct HealthView {
    table: Arc<RwLock<HashMap<SubscriptionId, EndpointHealth>>>,
    _tail: TableTail,
}

impl HealthView {
    /// Reads `topic` to its end before returning.
    pub async fn start(settings: &KafkaSettings, topic: &str) -> Result<Self, KafkaError> {
        let partitions = partition_count(settings, topic)?;
        let table = Arc::new(RwLock::new(HashMap::new()));
        let tail = TableTail::spawn(
            settings,
            "hookline-endpoint-health-view",
            topic,
            HealthSink {
                table: table.clone(),
            },
        )?;
        tail.assign((0..partitions).map(|p| (p, StartAt::Beginning)).collect());
        for p in 0..partitions {
            tail.caught_up(p).await?;
        }
        tracing::info!(
            topic,
            endpoints = table.read().expect("health lock").len(),
            "endpoint health loaded"
        );
        Ok(Self { table, _tail: tail })
    }

    /// The last record of a subscription's endpoint.
    pub fn get(&self, id: &SubscriptionId) -> Option<EndpointHealth> {
        self.table.read().expect("health lock").get(id).cloned()
    }
}

struct HealthSink {
    table: Arc<RwLock<HashMap<SubscriptionId, EndpointHealth>>>,
}

impl TableSink for HealthSink {
    fn apply(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        let Some(key) = key.map(|k| SubscriptionId(String::from_utf8_lossy(k).into_owned())) else {
            return;
        };
        let mut table = self.table.write().expect("health lock");
        match value.map(serde_json::from_slice::<EndpointHealth>) {
            None => {
                table.remove(&key);
            }
            Some(Ok(h)) if h.subscription_id == key => {
                table.insert(key, h);
            }
            Some(Ok(_)) => {
                tracing::warn!(partition, offset, subscription = %key, "endpoint health record for another key; ignored");
            }
            Some(Err(e)) => {
                tracing::warn!(partition, offset, subscription = %key, error = %e, "unreadable endpoint health record; ignored");
            }
        }
    }

    fn forget_partition(&mut self, _partition: i32) {
        // Every instance keeps the whole table.
    }
}
