//! The whole subscription table, tailed continuously so changes take effect within a second
//! without a restart.
//!
//! Anyone who can write to the `subscriptions` topic can put anything on it, so every record is
//! parsed, validated and compiled (conditions, up to 100 regular expressions) on the table
//! thread *before* the table's lock is taken; only the swap of the compiled subscription happens
//! under the write lock, so the stages' routing never waits for a compilation and nothing that
//! can fail runs while the lock is held. A record that does not parse or validate is logged,
//! counted in `hookline_stage_quarantined_records_total{stage="subscriptions"}` and skipped (the
//! previous version stays in force). A poisoned lock is taken over, not propagated as a panic.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::{CompiledSubscription, SubscriptionTable};
use hookline_kafka::table::{TableSink, TableTail};
use hookline_kafka::{KafkaError, KafkaSettings};
use hookline_model::{Subscription, SubscriptionId};
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
        let table = Arc::new(RwLock::new(SubscriptionTable::new()));
        let sink = SubscriptionSink {
            table: table.clone(),
            require_https,
            metrics,
        };
        let tail =
            TableTail::follow_all(settings, "hookline-subscriptions-view", topic, sink).await?;
        tracing::info!(
            topic,
            subscriptions = read(&table).len(),
            "subscription table loaded"
        );
        Ok(Self { table, _tail: tail })
    }

    pub fn read(&self) -> RwLockReadGuard<'_, SubscriptionTable> {
        read(&self.table)
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

/// The table for reading. Nothing that can panic runs under the write lock, but should a panic
/// ever poison it, the table is still consistent (every change is one swap), so it is used.
fn read(table: &RwLock<SubscriptionTable>) -> RwLockReadGuard<'_, SubscriptionTable> {
    table.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(table: &RwLock<SubscriptionTable>) -> RwLockWriteGuard<'_, SubscriptionTable> {
    table.write().unwrap_or_else(PoisonError::into_inner)
}

/// What one record of the topic asks of the table, worked out before the lock is taken.
enum Change {
    Remove(SubscriptionId),
    Put(Box<CompiledSubscription>),
    /// The record is skipped: its quarantine class (`json`, `key`, `schema`).
    Skip(&'static str),
}

impl SubscriptionSink {
    fn change(
        &self,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Change {
        let key = key.map(|k| String::from_utf8_lossy(k).into_owned());
        let Some(bytes) = value else {
            return match key {
                Some(k) => Change::Remove(SubscriptionId(k)),
                None => Change::Skip("key"),
            };
        };
        let sub = match serde_json::from_slice::<Subscription>(bytes) {
            Ok(sub) => sub,
            Err(e) => {
                tracing::warn!(partition, offset, error = %e, "malformed subscription ignored");
                return Change::Skip("json");
            }
        };
        if key.as_deref() != Some(sub.id.0.as_str()) {
            tracing::warn!(partition, offset, key = key.as_deref().unwrap_or("(none)"), id = %sub.id, "subscription key does not match its id; ignored");
            return Change::Skip("key");
        }
        let id = sub.id.clone();
        match CompiledSubscription::compile(sub, self.require_https) {
            Ok(compiled) => Change::Put(Box::new(compiled)),
            Err(e) => {
                tracing::warn!(subscription = %id, partition, offset, error = %e, "subscription refused; the previous version stays in force");
                Change::Skip("schema")
            }
        }
    }
}

impl TableSink for SubscriptionSink {
    fn apply(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        let change = self.change(partition, offset, key, value);
        let (replaced, len) = {
            let mut table = write(&self.table);
            let replaced = match change {
                Change::Remove(id) => table.remove(&id),
                Change::Put(compiled) => table.insert(*compiled),
                Change::Skip(class) => {
                    self.metrics
                        .quarantined
                        .with_label_values(&["subscriptions", class])
                        .inc();
                    None
                }
            };
            (replaced, table.len())
        };
        // The replaced version (its compiled regexes) is freed outside the lock.
        drop(replaced);
        self.metrics.subscriptions.set(len as i64);
        self.metrics
            .table_records
            .with_label_values(&["subscriptions"])
            .inc();
    }

    fn forget_partition(&mut self, _partition: i32) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink() -> SubscriptionSink {
        SubscriptionSink {
            table: Arc::default(),
            require_https: false,
            metrics: Metrics::new(),
        }
    }

    fn sub(id: &str, conditions: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(
            &serde_json::json!({"id": id, "account": "1001", "database": "12",
            "events": ["click"], "url": "https://hooks.example/in", "status": "active",
            "conditions": conditions}),
        )
        .unwrap()
    }

    fn refused(s: &SubscriptionSink, class: &str) -> u64 {
        s.metrics
            .quarantined
            .with_label_values(&["subscriptions", class])
            .get()
    }

    #[test]
    fn hostile_records_are_counted_and_skipped_and_the_previous_version_stays() {
        let mut s = sink();
        s.apply(0, 0, Some(b"s1"), Some(&sub("s1", serde_json::Value::Null)));
        let bad_date = serde_json::json!({"field": "signup", "op": "before", "value": "5日"});
        s.apply(0, 1, Some(b"s1"), Some(&sub("s1", bad_date)));
        s.apply(0, 2, Some(b"s2"), Some(b"\xff{not json"));
        s.apply(
            0,
            3,
            Some(b"\xff"),
            Some(&sub("s3", serde_json::Value::Null)),
        );
        s.apply(0, 4, None, None);
        assert_eq!(refused(&s, "schema"), 1);
        assert_eq!(refused(&s, "json"), 1);
        assert_eq!(refused(&s, "key"), 2);
        let table = read(&s.table);
        assert_eq!(table.len(), 1);
        let kept = table.get(&SubscriptionId("s1".into())).expect("s1 stays");
        assert!(
            kept.condition.is_always_true(),
            "the previous version is in force"
        );
    }

    #[test]
    fn a_poisoned_lock_is_taken_over_not_propagated() {
        let mut s = sink();
        let table = s.table.clone();
        let poisoner = std::thread::spawn(move || {
            let _guard = table.write().unwrap();
            panic!("poisoning the subscription table lock on purpose");
        });
        assert!(poisoner.join().is_err());
        assert!(s.table.is_poisoned());
        s.apply(0, 0, Some(b"s1"), Some(&sub("s1", serde_json::Value::Null)));
        assert_eq!(read(&s.table).len(), 1);
    }
}
