//! The local profile table.
//!
//! Held in memory, partitioned like the topic, as raw JSON so a row costs its bytes and is
//! parsed only when an event needs it. The table is rebuilt from the compacted topic when a
//! partition is assigned, so nothing here needs to survive a restart.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use hookline_kafka::table::TableSink;
use hookline_model::ProfileState;
use hookline_telemetry::Metrics;

/// How a stage uses the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableMode {
    /// Read the topic continuously: another stage writes it (`hookline-tracking`).
    Follow,
    /// Restore from the topic, then this stage is the writer and keeps the store current itself
    /// (`hookline-profiles`); echoes of its own writes are ignored so an older echo can never
    /// overwrite a newer local state.
    Own,
}

#[derive(Default)]
struct Partition {
    rows: HashMap<Box<str>, Box<[u8]>>,
    owned: bool,
}

/// Shared handle to the table. Cheap to clone.
#[derive(Clone, Default)]
pub struct ProfileStore {
    parts: Arc<RwLock<HashMap<i32, Partition>>>,
}

impl ProfileStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The profile state under `key`, if the table holds a well-formed one.
    pub fn get(&self, partition: i32, key: &str) -> Option<ProfileState> {
        let parts = self.parts.read().expect("store lock");
        let raw = parts.get(&partition)?.rows.get(key)?;
        serde_json::from_slice(raw).ok()
    }

    pub fn put(&self, partition: i32, key: &str, value: &[u8]) {
        let mut parts = self.parts.write().expect("store lock");
        parts
            .entry(partition)
            .or_default()
            .rows
            .insert(key.into(), value.into());
    }

    pub fn delete(&self, partition: i32, key: &str) {
        let mut parts = self.parts.write().expect("store lock");
        if let Some(p) = parts.get_mut(&partition) {
            p.rows.remove(key);
        }
    }

    /// From now on the stage writes this partition itself (see [`TableMode::Own`]).
    pub fn mark_owned(&self, partition: i32) {
        self.parts
            .write()
            .expect("store lock")
            .entry(partition)
            .or_default()
            .owned = true;
    }

    pub fn len(&self) -> usize {
        self.parts
            .read()
            .expect("store lock")
            .values()
            .map(|p| p.rows.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sink that feeds this store from the table topic.
    pub fn sink(&self, metrics: Metrics, table: &str) -> StoreSink {
        StoreSink {
            store: self.clone(),
            metrics,
            table: table.to_owned(),
        }
    }
}

/// Applies table records to a [`ProfileStore`].
pub struct StoreSink {
    store: ProfileStore,
    metrics: Metrics,
    table: String,
}

impl TableSink for StoreSink {
    fn apply(&mut self, partition: i32, _offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        let Some(key) = key.and_then(|k| std::str::from_utf8(k).ok()) else {
            tracing::warn!(table = %self.table, partition, "table record without a UTF-8 key ignored");
            return;
        };
        let mut parts = self.store.parts.write().expect("store lock");
        let part = parts.entry(partition).or_default();
        if part.owned {
            return;
        }
        match value {
            Some(v) => {
                part.rows.insert(key.into(), v.into());
            }
            None => {
                part.rows.remove(key);
            }
        }
        self.metrics
            .table_records
            .with_label_values(&[self.table.as_str()])
            .inc();
    }

    fn forget_partition(&mut self, partition: i32) {
        self.store
            .parts
            .write()
            .expect("store lock")
            .remove(&partition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_partitions_ignore_echoes_and_forgotten_ones_are_dropped() {
        let store = ProfileStore::new();
        let mut sink = store.sink(Metrics::new(), "profiles");
        let v1 = br#"{"account":"1","database":"12","profile":"3","fields":{"name":"A"}}"#;
        let v2 = br#"{"account":"1","database":"12","profile":"3","fields":{"name":"B"}}"#;
        sink.apply(0, 0, Some(b"12:3"), Some(v1));
        assert_eq!(store.get(0, "12:3").unwrap().fields["name"], "A");
        store.mark_owned(0);
        store.put(0, "12:3", v2);
        sink.apply(0, 1, Some(b"12:3"), Some(v1));
        assert_eq!(
            store.get(0, "12:3").unwrap().fields["name"],
            "B",
            "the stage's own newer state wins"
        );
        sink.apply(1, 0, Some(b"12:4"), Some(v1));
        sink.apply(1, 1, Some(b"12:4"), None);
        assert!(store.get(1, "12:4").is_none(), "tombstones delete");
        sink.forget_partition(0);
        assert!(store.is_empty());
    }
}
