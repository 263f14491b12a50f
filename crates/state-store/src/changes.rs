//! Changes the stage applied to its rows, kept until their input offsets are committed.
//!
//! A stage that writes its own rows (`hookline-profiles`) writes a change's new row before the
//! change's input offset is committed. If the process dies in between, the change is read again
//! after the restart, and the row it finds is its own result, not the state before it: an update
//! would look like no change at all. So every change is applied together with an entry, in the
//! same write batch (one journal entry, recovered all or nothing):
//!
//! | key | value |
//! |---|---|
//! | `a` · partition · input offset (`i64` BE) | version `1`, the change id and the row key (each with a `u32` BE length), `1` and the row as it was before the change, or `0` when there was none |
//!
//! A change read again whose entry holds the same id and key takes the entry's previous row as
//! its `before` ([`StateStore::applied_change`]), so it means what it meant the first time. The
//! entries of a partition are dropped once the consumer group has committed past them
//! ([`StateStore::forget_changes_below`]): those offsets are not read again.

use crate::{partition_key, StateStore, StoreError};

const TAG_CHANGE: u8 = b'a';
const VERSION: u8 = 1;

/// What a change does to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowWrite<'a> {
    /// Leaves the row as it is (the change was refused, e.g. quarantined).
    Keep,
    /// Writes the row.
    Put(&'a [u8]),
    /// Deletes the row.
    Delete,
}

/// A change as the store kept it: which change, which row, and the row before the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedChange {
    pub change_id: Vec<u8>,
    pub key: Vec<u8>,
    /// The row as it was before the change; `None` when there was none.
    pub previous: Option<Vec<u8>>,
}

fn change_key(partition: i32, input_offset: i64) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..5].copy_from_slice(&partition_key(TAG_CHANGE, partition));
    k[5..].copy_from_slice(&input_offset.to_be_bytes());
    k
}

fn encode(change_id: &[u8], key: &[u8], previous: Option<&[u8]>) -> Vec<u8> {
    let len = 1 + 8 + change_id.len() + key.len() + 1 + previous.map_or(0, <[u8]>::len);
    let mut v = Vec::with_capacity(len);
    v.push(VERSION);
    for part in [change_id, key] {
        v.extend_from_slice(&(part.len() as u32).to_be_bytes());
        v.extend_from_slice(part);
    }
    match previous {
        Some(p) => {
            v.push(1);
            v.extend_from_slice(p);
        }
        None => v.push(0),
    }
    v
}

fn decode(raw: &[u8]) -> Option<AppliedChange> {
    let (&version, mut rest) = raw.split_first()?;
    if version != VERSION {
        return None;
    }
    let mut part = || -> Option<Vec<u8>> {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return None;
        }
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        Some(bytes.to_vec())
    };
    let change_id = part()?;
    let key = part()?;
    let previous = match rest.split_first()? {
        (0, []) => None,
        (1, p) => Some(p.to_vec()),
        _ => return None,
    };
    Some(AppliedChange {
        change_id,
        key,
        previous,
    })
}

impl StateStore {
    /// Applies the change read at `input_offset` of `partition` to the row under `key`
    /// (`row`), and keeps the row's state before it (`previous`) under the input offset, in one
    /// atomic write batch. Writing a change again at the same offset replaces its entry.
    pub fn apply_change(
        &self,
        partition: i32,
        input_offset: i64,
        change_id: &[u8],
        key: &[u8],
        previous: Option<&[u8]>,
        row: RowWrite<'_>,
    ) -> Result<(), StoreError> {
        let t = &self.inner.table;
        let mut batch = self.batch(0);
        match row {
            RowWrite::Keep => {}
            RowWrite::Put(v) => batch.insert(t, crate::row_key(partition, key), v),
            RowWrite::Delete => batch.remove(t, crate::row_key(partition, key)),
        }
        batch.insert(
            t,
            change_key(partition, input_offset),
            encode(change_id, key, previous),
        );
        batch.commit().map_err(self.err("applying a change"))
    }

    /// The change the store applied at `input_offset` of `partition`, if it still keeps it. An
    /// entry that cannot be decoded reads as absent.
    pub fn applied_change(
        &self,
        partition: i32,
        input_offset: i64,
    ) -> Result<Option<AppliedChange>, StoreError> {
        let raw = self
            .inner
            .table
            .get(change_key(partition, input_offset))
            .map_err(self.err("reading an applied change"))?;
        Ok(raw.and_then(|r| decode(&r)))
    }

    /// Forgets the changes of `partition` at input offsets below `committed` (the consumer
    /// group's committed offset: they are not read again). Returns how many were forgotten.
    pub fn forget_changes_below(
        &self,
        partition: i32,
        committed: i64,
    ) -> Result<usize, StoreError> {
        let t = &self.inner.table;
        let from = change_key(partition, 0);
        let to = change_key(partition, committed.max(0));
        let mut batch = self.batch(0);
        let mut n = 0;
        for guard in t.range(from..to) {
            let key = guard.key().map_err(self.err("scanning applied changes"))?;
            batch.remove(t, key);
            n += 1;
            if batch.len() >= crate::DROP_CHUNK {
                let full = std::mem::replace(&mut batch, self.batch(0));
                full.commit()
                    .map_err(self.err("forgetting applied changes"))?;
            }
        }
        batch
            .commit()
            .map_err(self.err("forgetting applied changes"))?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_refuse_what_they_cannot_read() {
        for previous in [None, Some(&b""[..]), Some(&br#"{"a":1}"#[..])] {
            let raw = encode(b"chg-1", b"12:4711", previous);
            assert_eq!(
                decode(&raw),
                Some(AppliedChange {
                    change_id: b"chg-1".to_vec(),
                    key: b"12:4711".to_vec(),
                    previous: previous.map(<[u8]>::to_vec),
                })
            );
        }
        let raw = encode(b"chg-1", b"12:4711", None);
        assert_eq!(decode(&raw[..raw.len() - 1]), None, "truncated");
        assert_eq!(decode(&[2]), None, "unknown version");
        assert_eq!(decode(&[]), None);
        let mut trailing = raw.clone();
        trailing.push(7);
        assert_eq!(decode(&trailing), None, "bytes after `none`");
    }

    #[test]
    fn entry_keys_sort_by_partition_then_offset() {
        assert!(change_key(1, 255) < change_key(1, 256));
        assert!(change_key(1, i64::MAX) < change_key(2, 0));
        assert_eq!(&change_key(258, 1)[..5], b"a\0\0\x01\x02");
    }
}
