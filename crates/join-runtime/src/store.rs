//! The local profile table.
//!
//! Disk-backed (`hookline-state-store`, fjall), partitioned like the topic, with the next table
//! offset to read kept per partition, so the table can be far larger than memory and a restart
//! reads only the tail it missed. Rows are raw JSON, parsed only when an event needs one.
//!
//! The tail is enough only while the topic still holds every tombstone written since the store
//! last caught up: compaction removes tombstones after the topic's `delete.retention.ms`. So the
//! store keeps, per partition, when it last caught up ([`ProfileStore::mark_caught_up`]), and
//! [`ProfileStore::prepare_restore`] drops a partition whose catch-up is older than that (or
//! unknown) and has it read from the beginning.
//!
//! A stage that writes its own rows (`hookline-profiles`) applies each change with
//! [`ProfileStore::apply_change`]: the row write and the row as the change found it go in one
//! atomic batch, under the change's input offset. A change read again after a crash (its row
//! written, its offset not yet committed) finds that entry in [`ProfileStore::before_change`]
//! and is joined with the row as it was before it, not with its own result; the entries are
//! forgotten once the group's commit passes them ([`ProfileStore::forget_committed`]).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookline_kafka::table::TableSink;
use hookline_model::ProfileState;
use hookline_state_store::{RowWrite, StateStore, StoreError, TableRecord};
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

/// Where a newly assigned partition's table is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreFrom {
    /// The store caught up with the partition `age` ago, within the tombstone retention: read
    /// only the tail after the checkpoint.
    Checkpoint { next_offset: i64, age: Duration },
    /// Read the partition from its beginning. Its rows were dropped first.
    Beginning(FullRestore),
}

/// Why a partition is read from the beginning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullRestore {
    /// The store has not read the partition before (or dropped it).
    NoCheckpoint,
    /// The checkpoint has no catch-up time (an older version wrote it), so its age is unknown.
    UnknownAge,
    /// The store last caught up `age` ago, longer than the topic keeps tombstones: deletions
    /// may have been compacted away unseen.
    Stale { age: Duration },
}

impl std::fmt::Display for FullRestore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoCheckpoint => f.write_str("no checkpoint"),
            Self::UnknownAge => {
                f.write_str("the checkpoint has no catch-up time, so its age is unknown")
            }
            Self::Stale { .. } => f.write_str(
                "the store last caught up longer ago than the topic keeps tombstones; \
                 deletions may have been compacted away unseen",
            ),
        }
    }
}

/// Now, in unix milliseconds.
pub fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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
    ///
    /// A row that does not parse, such as one without an `account` (so it cannot be told whose
    /// it is), reads as absent: no join uses anything of it, and the profiles stage replaces it
    /// on the key's next create or update (`hookline_join::account`).
    pub fn get(&self, partition: i32, key: &str) -> Result<Option<ProfileState>, StoreError> {
        Ok(self
            .disk
            .get(partition, key.as_bytes())?
            .and_then(|raw| serde_json::from_slice(&raw).ok()))
    }

    /// A write by the stage itself, outside any change (it also produces the record to the
    /// table topic). A stage applying input changes uses [`ProfileStore::apply_change`].
    pub fn put(&self, partition: i32, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.disk.put(partition, key.as_bytes(), Some(value))
    }

    /// The row under `key` as the change `change_id`, read at `input_offset` of `partition`,
    /// finds it. That is the current row, unless the store already applied this very change
    /// (same offset, id and key): it was read again after a crash that came before its offset
    /// was committed, and the current row is its own result. Then it is the row as it was before
    /// the change, kept by [`ProfileStore::apply_change`].
    pub fn before_change(
        &self,
        partition: i32,
        input_offset: i64,
        change_id: &str,
        key: &str,
    ) -> Result<Before, StoreError> {
        if let Some(applied) = self.disk.applied_change(partition, input_offset)? {
            if applied.change_id == change_id.as_bytes() && applied.key == key.as_bytes() {
                return Ok(Before::new(applied.previous, true));
            }
        }
        Ok(Before::new(
            self.disk.get(partition, key.as_bytes())?,
            false,
        ))
    }

    /// Applies a change to the row under `key` (`row`; [`RowWrite::Keep`] for a refused
    /// change) and keeps `before`, the row as the change found it, under the change's input
    /// offset: one atomic write, so a crash leaves either neither or both.
    pub fn apply_change(
        &self,
        partition: i32,
        input_offset: i64,
        change_id: &str,
        key: &str,
        before: &Before,
        row: RowWrite<'_>,
    ) -> Result<(), StoreError> {
        self.disk.apply_change(
            partition,
            input_offset,
            change_id.as_bytes(),
            key.as_bytes(),
            before.raw.as_deref(),
            row,
        )
    }

    /// Forgets the applied changes of `partition` below `committed`, the group's committed
    /// input offset: they are not read again. Blocking (a range scan).
    pub fn forget_committed(&self, partition: i32, committed: i64) -> Result<usize, StoreError> {
        self.disk.forget_changes_below(partition, committed)
    }

    /// From now on the stage writes this partition itself (see [`TableMode::Own`]).
    pub fn mark_owned(&self, partition: i32) {
        self.owned.write().expect("owned lock").insert(partition);
    }

    /// The next table offset to read for `partition`, when the store has read it before.
    pub fn checkpoint(&self, partition: i32) -> Result<Option<i64>, StoreError> {
        self.disk.checkpoint(partition)
    }

    /// Decides where to restore `partition` from, given how long the table topic keeps
    /// tombstones, and drops the partition's rows when it must be read from the beginning. Runs
    /// before the partition is assigned to the table reader. Blocking: a drop costs one deletion
    /// per row.
    pub fn prepare_restore(
        &self,
        partition: i32,
        tombstone_retention: Duration,
    ) -> Result<RestoreFrom, StoreError> {
        self.prepare_restore_at(partition, tombstone_retention, unix_ms_now())
    }

    fn prepare_restore_at(
        &self,
        partition: i32,
        tombstone_retention: Duration,
        now_ms: i64,
    ) -> Result<RestoreFrom, StoreError> {
        let why = match self.disk.checkpoint_with_age(partition)? {
            None => FullRestore::NoCheckpoint,
            Some(cp) => match cp.caught_up_ms {
                None => FullRestore::UnknownAge,
                Some(at) => {
                    // A clock that went back makes the age negative; count that as just now.
                    let age = Duration::from_millis(now_ms.saturating_sub(at).max(0) as u64);
                    if age < tombstone_retention {
                        return Ok(RestoreFrom::Checkpoint {
                            next_offset: cp.next_offset,
                            age,
                        });
                    }
                    FullRestore::Stale { age }
                }
            },
        };
        // Also without a checkpoint: rows may be left from the stage's own writes.
        self.disk.drop_partition(partition)?;
        Ok(RestoreFrom::Beginning(why))
    }

    /// Records that the table of `partition` was read up to `high_watermark`, the end seen at
    /// `at_ms` (unix ms, taken before the watermark was fetched).
    pub fn mark_caught_up(
        &self,
        partition: i32,
        high_watermark: i64,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.disk.mark_caught_up(partition, high_watermark, at_ms)
    }

    /// The partitions the store has a table checkpoint of.
    pub fn partitions(&self) -> Result<Vec<i32>, StoreError> {
        self.disk.partitions()
    }

    /// Deletes everything the store has of `partition`: rows, checkpoint, catch-up time and
    /// applied changes (the partition went to another instance for good; see
    /// [`crate::eviction`]). A later assignment reads it from the beginning. Blocking: one
    /// deletion per row.
    pub fn evict(&self, partition: i32) -> Result<(), StoreError> {
        self.disk.drop_partition(partition)?;
        self.disk.forget_changes_below(partition, i64::MAX)?;
        Ok(())
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
            pending: HashMap::new(),
            pending_len: 0,
            store: self.clone(),
            records: metrics.table_records.with_label_values(&[table]),
            table: table.to_owned(),
        }
    }
}

/// The row a change found ([`ProfileStore::before_change`]).
#[derive(Debug, Clone)]
pub struct Before {
    raw: Option<Vec<u8>>,
    /// The row as a profile state; `None` when there is none or it is not well-formed (see
    /// [`ProfileStore::get`]).
    pub state: Option<ProfileState>,
    /// The change was applied before and is read again: `state` is the row it found then.
    pub replayed: bool,
}

impl Before {
    fn new(raw: Option<Vec<u8>>, replayed: bool) -> Self {
        let state = raw.as_deref().and_then(|r| serde_json::from_slice(r).ok());
        Self {
            raw,
            state,
            replayed,
        }
    }
}

/// Records a [`StoreSink`] holds before it writes them without waiting for a flush.
const SINK_BATCH: usize = 5_000;

/// Applies table records to a [`ProfileStore`], one write batch per partition per poll
/// (`apply_table_batch`: rows and checkpoint together), which restores several times faster
/// than a write per record (docs/benchmarks.md, the join section).
pub struct StoreSink {
    store: ProfileStore,
    /// `hookline_table_records_read_total{table}`, looked up once (per record it would hash
    /// the label on every row of a restore).
    records: hookline_telemetry::metrics::IntCounter,
    table: String,
    /// Records read and not yet written, per partition, in offset order.
    pending: HashMap<i32, Vec<TableRecord>>,
    pending_len: usize,
}

impl StoreSink {
    /// Writes what is pending for `partition`.
    fn write(&mut self, partition: i32) {
        let Some(records) = self.pending.remove(&partition) else {
            return;
        };
        self.pending_len -= records.len();
        if let Err(e) = self.store.disk.apply_table_batch(partition, &records) {
            let (first, last) = (records[0].0, records[records.len() - 1].0);
            tracing::error!(table = %self.table, partition, first, last, error = %e, "writing the local table failed");
        }
    }

    /// Moves the partition's checkpoint past `offset`, after what is pending for it.
    fn checkpoint(&mut self, partition: i32, offset: i64) {
        self.write(partition);
        if let Err(e) = self.store.disk.set_checkpoint(partition, offset + 1) {
            tracing::error!(table = %self.table, partition, offset, error = %e, "writing the local table failed");
        }
    }
}

impl TableSink for StoreSink {
    fn apply(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        self.records.inc();
        let Some(key) = key else {
            tracing::warn!(table = %self.table, partition, offset, "table record without a key ignored");
            return self.checkpoint(partition, offset);
        };
        let owned = self
            .store
            .owned
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&partition);
        if owned {
            // Our own write, already in the store: only move the checkpoint past it.
            return self.checkpoint(partition, offset);
        }
        self.pending.entry(partition).or_default().push((
            offset,
            key.to_vec(),
            value.map(<[u8]>::to_vec),
        ));
        self.pending_len += 1;
        if self.pending_len >= SINK_BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let parts: Vec<i32> = self.pending.keys().copied().collect();
        for p in parts {
            self.write(p);
        }
    }

    /// The partition's rows and checkpoint stay for the grace period ([`crate::eviction`]): if
    /// it comes back within it, only the tail written while another instance owned it is read.
    fn forget_partition(&mut self, partition: i32) {
        self.write(partition);
        self.store
            .owned
            .write()
            .unwrap_or_else(PoisonError::into_inner)
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
            sink.flush();
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
            sink.flush();
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

    #[test]
    fn the_sink_writes_per_partition_batches_on_flush_and_every_few_thousand_records() {
        let dir = std::env::temp_dir().join(format!("hookline-store-batch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ProfileStore::open(&dir).unwrap();
        let mut sink = store.sink(Metrics::new(), "profiles");
        let row = |name: &str| {
            format!(
                r#"{{"account":"1","database":"12","profile":"3","fields":{{"name":"{name}"}}}}"#
            )
        };
        sink.apply(0, 0, Some(b"12:3"), Some(row("A").as_bytes()));
        sink.apply(0, 1, Some(b"12:3"), Some(row("B").as_bytes()));
        sink.apply(2, 7, Some(b"12:5"), Some(row("C").as_bytes()));
        assert_eq!(
            store.checkpoint(0).unwrap(),
            None,
            "buffered until the flush"
        );
        sink.flush();
        assert_eq!(store.get(0, "12:3").unwrap().unwrap().fields["name"], "B");
        assert_eq!(store.get(2, "12:5").unwrap().unwrap().fields["name"], "C");
        assert_eq!(store.checkpoint(0).unwrap(), Some(2));
        assert_eq!(store.checkpoint(2).unwrap(), Some(8));
        // A record without a key moves the checkpoint past what came before it, written first.
        sink.apply(0, 2, Some(b"12:3"), Some(row("D").as_bytes()));
        sink.apply(0, 3, None, Some(b"junk"));
        assert_eq!(store.get(0, "12:3").unwrap().unwrap().fields["name"], "D");
        assert_eq!(store.checkpoint(0).unwrap(), Some(4));
        // A long poll is written in batches without waiting for its end.
        for o in 4..(4 + SINK_BATCH as i64) {
            sink.apply(
                1,
                o,
                Some(format!("12:{o}").as_bytes()),
                Some(row("E").as_bytes()),
            );
        }
        assert_eq!(store.checkpoint(1).unwrap(), Some(4 + SINK_BATCH as i64));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_row_without_an_account_reads_as_absent() {
        let dir = std::env::temp_dir().join(format!("hookline-store-acct-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ProfileStore::open(&dir).unwrap();
        let old = br#"{"database":"12","profile":"3","fields":{"email":"a@example.com"}}"#;
        store.put(0, "12:3", old).unwrap();
        assert!(store.get(0, "12:3").unwrap().is_none());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_change_read_again_finds_the_row_it_found_the_first_time() {
        let dir =
            std::env::temp_dir().join(format!("hookline-store-replay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ProfileStore::open(&dir).unwrap();
        let (v1, v2) = (profile("1"), profile("2"));
        let name = |b: &Before| b.state.as_ref().map(|s| s.fields["name"].clone());

        let first = store.before_change(0, 7, "chg-a", "12:1").unwrap();
        assert!(!first.replayed && first.state.is_none());
        store
            .apply_change(0, 7, "chg-a", "12:1", &first, RowWrite::Put(&v1))
            .unwrap();
        let update = store.before_change(0, 8, "chg-b", "12:1").unwrap();
        assert_eq!(name(&update), Some("P1".into()));
        store
            .apply_change(0, 8, "chg-b", "12:1", &update, RowWrite::Put(&v2))
            .unwrap();

        // After a crash before the commit, both are read again: each finds what it found.
        let again = store.before_change(0, 7, "chg-a", "12:1").unwrap();
        assert!(again.replayed && again.state.is_none());
        let again = store.before_change(0, 8, "chg-b", "12:1").unwrap();
        assert!(again.replayed);
        assert_eq!(name(&again), Some("P1".into()));
        // Another change at that offset (the topic was recreated) is not taken for it.
        let other = store.before_change(0, 8, "chg-x", "12:1").unwrap();
        assert!(!other.replayed);
        assert_eq!(name(&other), Some("P2".into()));

        // Once the group commits past them, they are new changes again (never read again).
        assert_eq!(store.forget_committed(0, 9).unwrap(), 2);
        let after = store.before_change(0, 8, "chg-b", "12:1").unwrap();
        assert!(!after.replayed);
        assert_eq!(name(&after), Some("P2".into()));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_evicted_partition_is_restored_from_the_beginning() {
        let dir = std::env::temp_dir().join(format!("hookline-store-evict-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ProfileStore::open(&dir).unwrap();
        let mut sink = store.sink(Metrics::new(), "profiles");
        let now = unix_ms_now();
        for p in [0, 1] {
            sink.apply(p, 0, Some(b"12:1"), Some(&profile("1")));
            sink.flush();
            store.mark_caught_up(p, 1, now).unwrap();
            let before = store.before_change(p, 4, "chg", "12:1").unwrap();
            store
                .apply_change(p, 4, "chg", "12:1", &before, RowWrite::Keep)
                .unwrap();
        }
        assert_eq!(store.partitions().unwrap(), vec![0, 1]);
        store.evict(1).unwrap();
        assert_eq!(store.partitions().unwrap(), vec![0]);
        assert!(store.get(1, "12:1").unwrap().is_none());
        assert!(!store.before_change(1, 4, "chg", "12:1").unwrap().replayed);
        let day = Duration::from_secs(86_400);
        assert_eq!(
            store.prepare_restore_at(1, day, now).unwrap(),
            RestoreFrom::Beginning(FullRestore::NoCheckpoint)
        );
        // The partition it still holds is untouched.
        assert!(store.get(0, "12:1").unwrap().is_some());
        assert!(store.before_change(0, 4, "chg", "12:1").unwrap().replayed);
        assert!(matches!(
            store.prepare_restore_at(0, day, now).unwrap(),
            RestoreFrom::Checkpoint { next_offset: 1, .. }
        ));
        drop(sink);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn profile(id: &str) -> Vec<u8> {
        format!(r#"{{"account":"1","database":"12","profile":"{id}","fields":{{"name":"P{id}"}}}}"#)
            .into_bytes()
    }

    /// The compacted topic the store comes back to: `12:1` and its tombstone are gone, offsets
    /// are kept, and one record was written after the store's checkpoint.
    fn read_compacted(sink: &mut StoreSink, from: i64) {
        for (offset, key, id) in [(1, "12:2", "2"), (2, "12:3", "3")] {
            if offset >= from {
                sink.apply(0, offset, Some(key.as_bytes()), Some(&profile(id)));
            }
        }
        sink.flush();
    }

    #[test]
    fn a_stale_checkpoint_restores_the_partition_from_the_beginning() {
        let dir = std::env::temp_dir().join(format!("hookline-store-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ProfileStore::open(&dir).unwrap();
        let metrics = Metrics::new();
        let mut sink = store.sink(metrics.clone(), "profiles");
        let retention = Duration::from_secs(24 * 3_600);
        let now = unix_ms_now();
        let seed = |sink: &mut StoreSink| {
            sink.apply(0, 0, Some(b"12:1"), Some(&profile("1")));
            sink.apply(0, 1, Some(b"12:2"), Some(&profile("2")));
            sink.flush();
        };
        let read = || metrics.table_records.with_label_values(&["profiles"]).get();

        // Away for less than the retention: only the tail is read, and the row whose deletion
        // is no longer in the topic stays (the topic would still hold its tombstone then).
        seed(&mut sink);
        store.mark_caught_up(0, 2, now - 3_600_000).unwrap();
        let from = store.prepare_restore_at(0, retention, now).unwrap();
        assert_eq!(
            from,
            RestoreFrom::Checkpoint {
                next_offset: 2,
                age: Duration::from_secs(3_600)
            }
        );
        let before = read();
        read_compacted(&mut sink, 2);
        assert_eq!(
            read() - before,
            1,
            "only the tail after the checkpoint is read"
        );
        assert!(store.get(0, "12:1").unwrap().is_some());

        // Away for longer than the retention: dropped and read from the beginning, so the
        // profile whose tombstone was compacted away is gone.
        store.mark_caught_up(0, 3, now - 25 * 3_600_000).unwrap();
        let from = store.prepare_restore_at(0, retention, now).unwrap();
        assert_eq!(
            from,
            RestoreFrom::Beginning(FullRestore::Stale {
                age: Duration::from_secs(25 * 3_600)
            })
        );
        assert_eq!(
            store.checkpoint(0).unwrap(),
            None,
            "the partition was dropped"
        );
        let before = read();
        read_compacted(&mut sink, 0);
        assert_eq!(read() - before, 2, "the whole partition is read");
        assert!(
            store.get(0, "12:1").unwrap().is_none(),
            "the deleted profile is gone"
        );
        assert_eq!(store.get(0, "12:2").unwrap().unwrap().fields["name"], "P2");
        assert_eq!(store.get(0, "12:3").unwrap().unwrap().fields["name"], "P3");

        // A checkpoint from before catch-up times were kept: age unknown, so read it all.
        store.disk.drop_partition(1).unwrap();
        sink.apply(1, 0, Some(b"12:5"), Some(&profile("5")));
        sink.flush();
        assert_eq!(
            store.prepare_restore_at(1, retention, now).unwrap(),
            RestoreFrom::Beginning(FullRestore::UnknownAge)
        );
        assert!(store.get(1, "12:5").unwrap().is_none());
        // No checkpoint at all, but rows of the stage's own writes: dropped too.
        store.put(2, "12:6", &profile("6")).unwrap();
        assert_eq!(
            store.prepare_restore_at(2, retention, now).unwrap(),
            RestoreFrom::Beginning(FullRestore::NoCheckpoint)
        );
        assert!(store.get(2, "12:6").unwrap().is_none());
        drop(sink);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
