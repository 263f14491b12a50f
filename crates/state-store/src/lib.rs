//! The disk-backed profile table of a join stage.
//!
//! The co-partitioned `profiles` table is kept in an embedded LSM-tree ([fjall]) on local disk,
//! so the table can be far larger than memory: what is resident is a bounded block cache, one
//! write buffer (memtable) and the pinned filters and indexes of the newest levels, not the rows.
//! `docs/state-store.md` has the measurement behind the choice of fjall over redb, and the knobs.
//!
//! # Layout
//!
//! One fjall database per stage instance, holding **one keyspace**, `table`. Every key starts
//! with a tag byte and the partition as 4 big-endian bytes:
//!
//! | key | value |
//! |---|---|
//! | `r` · partition · row key (e.g. `12:4711`) | the row (raw JSON, as read from the topic) |
//! | `c` · partition | the checkpoint: the next table offset to read, `i64` big-endian |
//! | `t` · partition | when the store last caught up with the partition: unix ms, `i64` big-endian |
//! | `d` · partition | marker of a `drop_partition` that has not finished yet (empty) |
//! | `a` · partition · input offset | a change the stage applied to its own rows, with the row before it ([`changes`]) |
//!
//! Why so:
//!
//! - **Partition isolation by prefix.** The same row key in two partitions is two rows, and all
//!   rows of a partition are one contiguous range, so [`StateStore::drop_partition`] is a prefix
//!   scan. A keyspace per partition would make dropping O(1), but every keyspace has its own
//!   write buffer and journal retention, so memory and restart time would grow with the number of
//!   assigned partitions; measured with 1M rows, 12 keyspaces peaked at ~1.6× the RSS of one.
//! - **Checkpoints beside the rows, in the same keyspace.** A record and the checkpoint it moves
//!   are written in one write batch: one journal entry, recovered all or nothing. Keeping the
//!   checkpoints in the same keyspace (rather than a small side keyspace) also means that no
//!   rarely-flushed keyspace pins old journal files, so a restart replays little.
//! - **The checkpoint is the last item of every batch.** A reader in another thread that sees a
//!   partition's checkpoint at *n* also sees every row of the offsets below *n*.
//! - **LZ4 at every level.** fjall compresses only from level 2 on by default; compressing all
//!   levels made 1M JSON rows 3.5× smaller on disk at the same write and read rates.
//! - **The catch-up time is a key of its own.** A checkpoint says how far the store has read; the
//!   `t` key says when it last had read the partition *to its end* ([`StateStore::mark_caught_up`]).
//!   A stage compares its age with the topic's tombstone retention: a store away for longer may
//!   have missed tombstones that compaction has removed since. Record applies do not touch it
//!   (reading a record is not being caught up), and stores written before it existed have
//!   checkpoints without one, which [`Checkpoint::caught_up_ms`] reports as `None`: unknown age.
//! - **Interrupted drops are finished on open.** A drop removes the checkpoint and sets the `d`
//!   marker in one batch before it deletes the rows, and [`StateStore::open`] completes any drop
//!   it finds marked. A partition therefore never has a checkpoint next to partly deleted rows.
//!
//! # Durability
//!
//! Every write reaches the operating system before the method returns (it survives a crash of
//! the process); [`StateStore::flush`] fsyncs the journal so that it also survives a crash of the
//! machine. Call it before committing consumer offsets that depend on the writes.
//!
//! # Threads
//!
//! [`StateStore`] is `Clone + Send + Sync`; clones share one database. fjall synchronises
//! internally, so readers never wait for a writer. One process may open a directory only once
//! (fjall holds a lock file).

#![forbid(unsafe_code)]

pub mod changes;

pub use changes::{AppliedChange, RowWrite};

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fjall::config::CompressionPolicy;
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};

const TAG_ROW: u8 = b'r';
const TAG_CHECKPOINT: u8 = b'c';
const TAG_DROPPING: u8 = b'd';
const TAG_CAUGHT_UP: u8 = b't';
const KEYSPACE: &str = "table";
/// Deletions per write batch while dropping a partition.
const DROP_CHUNK: usize = 10_000;

/// Memory and disk knobs. The defaults bound the store's own memory to roughly
/// `cache_bytes + 2 × memtable_bytes` plus pinned filters and indexes (a few MB per million rows).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Block cache (decompressed data, index and filter blocks). Default 64 MiB.
    pub cache_bytes: u64,
    /// Size at which the write buffer is sealed and flushed to a table file. Default 16 MiB.
    pub memtable_bytes: u64,
    /// Total journal size after which fjall forces flushes so old journals can be deleted.
    /// Bounds disk use and the replay on restart. Default 128 MiB; at least 64 MiB.
    pub max_journal_bytes: u64,
    /// Background flush and compaction threads. `None`: fjall's default, min(cores, 4).
    pub worker_threads: Option<usize>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            cache_bytes: 64 << 20,
            memtable_bytes: 16 << 20,
            max_journal_bytes: 128 << 20,
            worker_threads: None,
        }
    }
}

/// Errors of the state store. Every message names the store's directory; the fjall or I/O error
/// is the source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state store directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the state store in {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: fjall::Error,
    },
    #[error("state store {path}: {op} failed")]
    Storage {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: fjall::Error,
    },
    #[error(
        "state store {path}: the checkpoint or catch-up time of partition {partition} is \
         corrupt ({len} bytes, expected 8)"
    )]
    CorruptCheckpoint {
        path: PathBuf,
        partition: i32,
        len: usize,
    },
}

/// One record of the table topic: `(offset, key, value)`, `None` being a tombstone.
pub type TableRecord = (i64, Vec<u8>, Option<Vec<u8>>);

/// A partition's checkpoint together with when the store last caught up with the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The next table offset to read.
    pub next_offset: i64,
    /// When the store had last read the partition up to its end (unix ms); `None` when unknown,
    /// as for checkpoints written before catch-up times were kept.
    pub caught_up_ms: Option<i64>,
}

struct Inner {
    path: PathBuf,
    db: Database,
    table: Keyspace,
}

/// The profile table of one stage instance, on disk. Cheap to clone.
#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

fn partition_key(tag: u8, partition: i32) -> [u8; 5] {
    let p = partition.to_be_bytes();
    [tag, p[0], p[1], p[2], p[3]]
}

fn row_key(partition: i32, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + key.len());
    k.extend_from_slice(&partition_key(TAG_ROW, partition));
    k.extend_from_slice(key);
    k
}

impl StateStore {
    /// Opens (creating) the store in `dir` with the default [`StoreConfig`]. One store per stage
    /// instance.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, &StoreConfig::default())
    }

    /// Opens (creating) the store in `dir` with explicit memory and disk knobs.
    pub fn open_with(dir: &Path, config: &StoreConfig) -> Result<Self, StoreError> {
        let path = dir.to_path_buf();
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: path.clone(),
            source,
        })?;
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let mut builder = Database::builder(dir)
            .cache_size(config.cache_bytes)
            .max_journaling_size(config.max_journal_bytes.max(64 << 20));
        if let Some(n) = config.worker_threads {
            builder = builder.worker_threads(n.max(1));
        }
        let db = builder.open().map_err(open_err)?;
        let memtable = config.memtable_bytes;
        let table = db
            .keyspace(KEYSPACE, || {
                // fjall compresses only from level 2 on by default; JSON rows shrink ~3× with
                // LZ4 at every level at no measurable cost in write or read rate.
                KeyspaceCreateOptions::default()
                    .max_memtable_size(memtable)
                    .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
            })
            .map_err(open_err)?;
        let store = Self {
            inner: Arc::new(Inner { path, db, table }),
        };
        store.finish_interrupted_drops()?;
        Ok(store)
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A write batch whose commit reaches the operating system before it returns (fjall's
    /// journal otherwise keeps its tail in a user-space buffer, which a killed process loses).
    pub(crate) fn batch(&self, capacity: usize) -> fjall::OwnedWriteBatch {
        fjall::OwnedWriteBatch::with_capacity(self.inner.db.clone(), capacity)
            .durability(Some(PersistMode::Buffer))
    }

    /// Hands the journal's buffered tail to the operating system: after a single-key write,
    /// which fjall commits without durability.
    fn to_os(&self, op: &'static str) -> Result<(), StoreError> {
        self.inner
            .db
            .persist(PersistMode::Buffer)
            .map_err(self.err(op))
    }

    fn err(&self, op: &'static str) -> impl FnOnce(fjall::Error) -> StoreError + '_ {
        move |source| StoreError::Storage {
            path: self.inner.path.clone(),
            op,
            source,
        }
    }

    /// The row under `key` in `partition`, if any.
    pub fn get(&self, partition: i32, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self
            .inner
            .table
            .get(row_key(partition, key))
            .map_err(self.err("reading a row"))?;
        // Copy out: a fjall slice keeps its whole cached block alive.
        Ok(value.map(|v| v.to_vec()))
    }

    /// Applies one table record read at `offset` (value `None` = tombstone) and moves the
    /// partition's checkpoint to `offset + 1`, atomically.
    pub fn apply_table_record(
        &self,
        partition: i32,
        offset: i64,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let t = &self.inner.table;
        let mut batch = self.batch(0);
        match value {
            Some(v) => batch.insert(t, row_key(partition, key), v),
            None => batch.remove(t, row_key(partition, key)),
        }
        batch.insert(
            t,
            partition_key(TAG_CHECKPOINT, partition),
            offset.saturating_add(1).to_be_bytes(),
        );
        batch.commit().map_err(self.err("applying a table record"))
    }

    /// Applies a batch of table records `(offset, key, value)` atomically, in one write batch,
    /// and moves the partition's checkpoint to the highest offset + 1. When a key occurs more
    /// than once, its last record wins, as it would applied one by one. An empty batch changes
    /// nothing.
    pub fn apply_table_batch(
        &self,
        partition: i32,
        records: &[TableRecord],
    ) -> Result<(), StoreError> {
        let Some(next) = records.iter().map(|r| r.0).max() else {
            return Ok(());
        };
        let t = &self.inner.table;
        let mut batch = self.batch(records.len() + 1);
        // All items of a batch share one sequence number, so a key written twice in it would be
        // ambiguous: keep only the last record per key.
        let mut seen: HashSet<&[u8]> = HashSet::with_capacity(records.len());
        for (_, key, value) in records.iter().rev() {
            if !seen.insert(key.as_slice()) {
                continue;
            }
            match value {
                Some(v) => batch.insert(t, row_key(partition, key), v.as_slice()),
                None => batch.remove(t, row_key(partition, key)),
            }
        }
        batch.insert(
            t,
            partition_key(TAG_CHECKPOINT, partition),
            next.saturating_add(1).to_be_bytes(),
        );
        batch.commit().map_err(self.err("applying a table batch"))
    }

    /// A write by the stage itself (`TableMode::Own`): `None` deletes. No checkpoint change.
    pub fn put(&self, partition: i32, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError> {
        let t = &self.inner.table;
        match value {
            Some(v) => t.insert(row_key(partition, key), v),
            None => t.remove(row_key(partition, key)),
        }
        .map_err(self.err("writing a row"))?;
        self.to_os("writing a row")
    }

    /// The next table offset to read for `partition`, if a checkpoint exists.
    pub fn checkpoint(&self, partition: i32) -> Result<Option<i64>, StoreError> {
        self.read_i64(TAG_CHECKPOINT, partition, "reading a checkpoint")
    }

    /// The checkpoint of `partition` with its catch-up time, if a checkpoint exists. A catch-up
    /// time without a checkpoint (left by an older version's drop) is ignored.
    pub fn checkpoint_with_age(&self, partition: i32) -> Result<Option<Checkpoint>, StoreError> {
        let Some(next_offset) = self.checkpoint(partition)? else {
            return Ok(None);
        };
        let caught_up_ms = self.read_i64(TAG_CAUGHT_UP, partition, "reading a catch-up time")?;
        Ok(Some(Checkpoint {
            next_offset,
            caught_up_ms,
        }))
    }

    /// Records that the store had read `partition` up to `high_watermark` (its end as seen at
    /// `at_ms`, unix ms, taken *before* the watermark was fetched), so every record written
    /// before `at_ms` has been applied. Moves the checkpoint up to `high_watermark` when it is
    /// lower (no record was read, or the last ones were compacted away), in the same batch.
    ///
    /// Call it from the thread that asked the table reader whether it is caught up. If the reader
    /// applies a newer record at the same moment, the checkpoint may end up a few offsets lower
    /// than that record: those records are read once more after a restart, with the same result.
    pub fn mark_caught_up(
        &self,
        partition: i32,
        high_watermark: i64,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let t = &self.inner.table;
        let mut batch = self.batch(0);
        if self
            .checkpoint(partition)?
            .is_none_or(|next| next < high_watermark)
        {
            batch.insert(
                t,
                partition_key(TAG_CHECKPOINT, partition),
                high_watermark.to_be_bytes(),
            );
        }
        batch.insert(
            t,
            partition_key(TAG_CAUGHT_UP, partition),
            at_ms.to_be_bytes(),
        );
        batch
            .commit()
            .map_err(self.err("recording a catch-up time"))
    }

    fn read_i64(
        &self,
        tag: u8,
        partition: i32,
        op: &'static str,
    ) -> Result<Option<i64>, StoreError> {
        let Some(raw) = self
            .inner
            .table
            .get(partition_key(tag, partition))
            .map_err(self.err(op))?
        else {
            return Ok(None);
        };
        let bytes: [u8; 8] =
            raw.as_ref()
                .try_into()
                .map_err(|_| StoreError::CorruptCheckpoint {
                    path: self.inner.path.clone(),
                    partition,
                    len: raw.len(),
                })?;
        Ok(Some(i64::from_be_bytes(bytes)))
    }

    /// The partitions the store has a checkpoint of, in ascending order.
    pub fn partitions(&self) -> Result<Vec<i32>, StoreError> {
        let mut out = Vec::new();
        for guard in self.inner.table.prefix([TAG_CHECKPOINT]) {
            let key = guard.key().map_err(self.err("listing partitions"))?;
            if let Ok(p) = <[u8; 4]>::try_from(&key[1..]) {
                out.push(i32::from_be_bytes(p));
            }
        }
        Ok(out)
    }

    /// Sets the next table offset to read for `partition`.
    pub fn set_checkpoint(&self, partition: i32, next_offset: i64) -> Result<(), StoreError> {
        self.inner
            .table
            .insert(
                partition_key(TAG_CHECKPOINT, partition),
                next_offset.to_be_bytes(),
            )
            .map_err(self.err("writing a checkpoint"))?;
        self.to_os("writing a checkpoint")
    }

    /// Drops everything of a partition (revoked and given to another instance, or to be read
    /// again from the beginning), including its checkpoint and catch-up time. Costs one deletion
    /// per row; see the crate docs for crash safety.
    pub fn drop_partition(&self, partition: i32) -> Result<(), StoreError> {
        let t = &self.inner.table;
        let mut batch = self.batch(0);
        batch.remove(t, partition_key(TAG_CHECKPOINT, partition));
        batch.remove(t, partition_key(TAG_CAUGHT_UP, partition));
        batch.insert(t, partition_key(TAG_DROPPING, partition), []);
        batch
            .commit()
            .map_err(self.err("marking a partition for dropping"))?;
        self.delete_rows(partition)?;
        t.remove(partition_key(TAG_DROPPING, partition))
            .map_err(self.err("finishing a partition drop"))?;
        self.to_os("finishing a partition drop")
    }

    fn delete_rows(&self, partition: i32) -> Result<(), StoreError> {
        let t = &self.inner.table;
        let prefix = partition_key(TAG_ROW, partition);
        let mut batch = self.batch(0);
        for guard in t.prefix(prefix) {
            let key = guard.key().map_err(self.err("scanning a partition"))?;
            batch.remove(t, key);
            if batch.len() >= DROP_CHUNK {
                let full = std::mem::replace(&mut batch, self.batch(0));
                full.commit()
                    .map_err(self.err("deleting a partition's rows"))?;
            }
        }
        batch
            .commit()
            .map_err(self.err("deleting a partition's rows"))
    }

    fn finish_interrupted_drops(&self) -> Result<(), StoreError> {
        let t = &self.inner.table;
        let mut pending = Vec::new();
        for guard in t.prefix([TAG_DROPPING]) {
            let key = guard.key().map_err(self.err("scanning drop markers"))?;
            if let Ok(p) = <[u8; 4]>::try_from(&key[1..]) {
                pending.push(i32::from_be_bytes(p));
            }
        }
        for partition in pending {
            self.delete_rows(partition)?;
            t.remove(partition_key(TAG_DROPPING, partition))
                .map_err(self.err("finishing a partition drop"))?;
            self.to_os("finishing a partition drop")?;
        }
        Ok(())
    }

    /// Roughly the number of rows, checkpoints and catch-up times: deletions not yet compacted away may still be
    /// counted.
    pub fn len_approx(&self) -> u64 {
        self.inner.table.approximate_len() as u64
    }

    /// Makes everything written so far durable (fsyncs the journal). Call it before committing
    /// offsets.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner
            .db
            .persist(PersistMode::SyncAll)
            .map_err(self.err("flushing the journal"))
    }

    /// Bytes on disk (tables, blob files and journals).
    pub fn disk_space(&self) -> Result<u64, StoreError> {
        self.inner
            .db
            .disk_space()
            .map_err(self.err("measuring disk space"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_drop_is_finished_on_open() {
        let dir = std::env::temp_dir().join(format!(
            "hookline-state-store-unit-drop-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let store = StateStore::open(&dir).unwrap();
            for p in [4, 5] {
                for i in 0..100 {
                    let key = format!("12:{i}");
                    store
                        .apply_table_record(p, i, key.as_bytes(), Some(b"v"))
                        .unwrap();
                }
            }
            // What `drop_partition` leaves behind when it dies after its first batch.
            let t = &store.inner.table;
            t.remove(partition_key(TAG_CHECKPOINT, 5)).unwrap();
            t.insert(partition_key(TAG_DROPPING, 5), []).unwrap();
        }
        let store = StateStore::open(&dir).unwrap();
        for i in 0..100 {
            let key = format!("12:{i}");
            assert_eq!(store.get(5, key.as_bytes()).unwrap(), None);
            assert_eq!(
                store.get(4, key.as_bytes()).unwrap().as_deref(),
                Some(&b"v"[..])
            );
        }
        assert_eq!(store.checkpoint(4).unwrap(), Some(100));
        assert!(store
            .inner
            .table
            .get(partition_key(TAG_DROPPING, 5))
            .unwrap()
            .is_none());
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_store_is_clone_send_sync_and_errors_are_send_sync() {
        fn check<T: Clone + Send + Sync + 'static>() {}
        fn check_error<E: std::error::Error + Send + Sync + 'static>() {}
        check::<StateStore>();
        check_error::<StoreError>();
    }

    #[test]
    fn keys_are_tagged_and_prefixed_big_endian() {
        assert_eq!(row_key(258, b"12:1"), b"r\0\0\x01\x0212:1");
        assert_eq!(partition_key(TAG_CHECKPOINT, -1), *b"c\xff\xff\xff\xff");
    }
}
