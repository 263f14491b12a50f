//! The local profile table.
//!
//! Disk-backed (`hookline-state-store`, fjall), partitioned like the topic, with the next table
//! offset to read kept per partition, so the table can be far larger than memory and a restart
//! reads only the tail it missed. Rows are raw JSON, parsed only when an event needs one.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, RwLock};

use hookline_kafka::table::TableSink;
use hookline_model::ProfileState;
use hookline_state_store::{StateStore, StoreError};
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

/// Shared handle to the table. Cheap to clone.
#[derive(Clone)]
pub struct ProfileStore {
    disk: StateStore,
    owned: Arc<RwLock<HashSet<i32>>>,
}

impl ProfileStore {
    /// Opens (creating) the table in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            disk: StateStore::open(dir)?,
            owned: Arc::default(),
        })
    }

    /// The profile state under `key`, if the table holds a well-formed one.
    pub fn get(&self, partition: i32, key: &str) -> Result<Option<ProfileState>, StoreError> {
        Ok(self
            .disk
            .get(partition, key.as_bytes())?
            .and_then(|raw| serde_json::from_slice(&raw).ok()))
    }

    /// A write by the stage itself (it also produces the record to the table topic).
    pub fn put(&self, partition: i32, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.disk.put(partition, key.as_bytes(), Some(value))
    }

    pub fn delete(&self, partition: i32, key: &str) -> Result<(), StoreError> {
        self.disk.put(partition, key.as_bytes(), None)
    }

    /// From now on the stage writes this partition itself (see [`TableMode::Own`]).
    pub fn mark_owned(&self, partition: i32) {
        self.owned.write().expect("owned lock").insert(partition);
    }

    /// The next table offset to read for `partition`, when the store has read it before.
    pub fn checkpoint(&self, partition: i32) -> Result<Option<i64>, StoreError> {
        self.disk.checkpoint(partition)
    }

    /// Rows held (approximate).
    pub fn len(&self) -> u64 {
        self.disk.len_approx()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes the table's writes durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.disk.flush()
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
    fn apply(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        let Some(key) = key else {
            tracing::warn!(table = %self.table, partition, offset, "table record without a key ignored");
            if let Err(e) = self.store.disk.set_checkpoint(partition, offset + 1) {
                tracing::error!(table = %self.table, partition, offset, error = %e, "writing the local table failed");
            }
            return;
        };
        let owned = self
            .store
            .owned
            .read()
            .expect("owned lock")
            .contains(&partition);
        let result = if owned {
            // Our own write, already in the store: only move the checkpoint past it.
            self.store.disk.set_checkpoint(partition, offset + 1)
        } else {
            self.store
                .disk
                .apply_table_record(partition, offset, key, value)
        };
        if let Err(e) = result {
            tracing::error!(table = %self.table, partition, offset, error = %e, "writing the local table failed");
        }
        self.metrics
            .table_records
            .with_label_values(&[self.table.as_str()])
            .inc();
    }

    /// The partition's rows and checkpoint stay: if it comes back, only the tail written while
    /// another instance owned it is read.
    fn forget_partition(&mut self, partition: i32) {
        self.store
            .owned
            .write()
            .expect("owned lock")
            .remove(&partition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_partitions_ignore_echoes_and_checkpoints_survive_reopen() {
        let dir = std::env::temp_dir().join(format!("hookline-store-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let store = ProfileStore::open(&dir).unwrap();
            let mut sink = store.sink(Metrics::new(), "profiles");
            let v1 = br#"{"account":"1","database":"12","profile":"3","fields":{"name":"A"}}"#;
            let v2 = br#"{"account":"1","database":"12","profile":"3","fields":{"name":"B"}}"#;
            sink.apply(0, 0, Some(b"12:3"), Some(v1));
            assert_eq!(store.get(0, "12:3").unwrap().unwrap().fields["name"], "A");
            store.mark_owned(0);
            store.put(0, "12:3", v2).unwrap();
            sink.apply(0, 1, Some(b"12:3"), Some(v1));
            assert_eq!(
                store.get(0, "12:3").unwrap().unwrap().fields["name"],
                "B",
                "the stage's own newer state wins"
            );
            assert_eq!(store.checkpoint(0).unwrap(), Some(2));
            sink.apply(1, 0, Some(b"12:4"), Some(v1));
            sink.apply(1, 1, Some(b"12:4"), None);
            assert!(store.get(1, "12:4").unwrap().is_none(), "tombstones delete");
            store.flush().unwrap();
        }
        let reopened = ProfileStore::open(&dir).unwrap();
        assert_eq!(
            reopened.get(0, "12:3").unwrap().unwrap().fields["name"],
            "B"
        );
        assert_eq!(reopened.checkpoint(1).unwrap(), Some(2));
        drop(reopened);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
