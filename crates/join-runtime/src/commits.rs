//! The group's commits, as librdkafka reports them (the consumer's commit callback).
//!
//! A stage that writes its own table keeps, for every change it applied, the row as the change
//! found it, until the change's input offset is committed (`ProfileStore::apply_change`): a
//! change read again after a crash must not take its own result for the state before it. Once
//! the group's commit has passed an offset it is not read again, and the loop has the store
//! forget what lies below ([`CommittedOffsets::forget_passed`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};

use crate::store::ProfileStore;
use crate::StageError;

/// Input offsets committed since the loop last looked, per partition. Cheap to clone; clones
/// share the offsets.
#[derive(Debug, Clone, Default)]
pub struct CommittedOffsets(Arc<Mutex<HashMap<i32, i64>>>);

impl CommittedOffsets {
    /// Records a commit of `topic`'s partitions (called from the consumer's commit callback).
    /// A failed commit moves nothing.
    pub fn record(&self, topic: &str, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if result.is_err() {
            return;
        }
        let mut committed = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for e in offsets.elements_for_topic(topic) {
            if let Offset::Offset(o) = e.offset() {
                let c = committed.entry(e.partition()).or_insert(o);
                *c = (*c).max(o);
            }
        }
    }

    fn take(&self) -> HashMap<i32, i64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Has the store forget the applied changes the commits recorded since the last call have
    /// passed (off the async workers: a range scan per partition).
    pub async fn forget_passed(&self, store: &ProfileStore) -> Result<(), StageError> {
        let passed = self.take();
        if passed.is_empty() {
            return Ok(());
        }
        let s = store.clone();
        tokio::task::spawn_blocking(move || {
            passed.into_iter().try_for_each(|(p, offset)| {
                let n = s.forget_committed(p, offset)?;
                tracing::debug!(
                    partition = p,
                    committed = offset,
                    forgotten = n,
                    "applied changes below the commit forgotten"
                );
                Ok::<_, hookline_state_store::StoreError>(())
            })
        })
        .await
        .expect("forgetting applied changes does not panic")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_state_store::RowWrite;

    fn tpl(entries: &[(&str, i32, i64)]) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for &(topic, p, o) in entries {
            tpl.add_partition_offset(topic, p, Offset::Offset(o))
                .unwrap();
        }
        tpl
    }

    #[test]
    fn commits_of_the_input_topic_are_collected_per_partition() {
        let c = CommittedOffsets::default();
        c.record(
            "in",
            Ok(()),
            &tpl(&[("in", 0, 5), ("in", 1, 9), ("other", 2, 3)]),
        );
        c.record("in", Ok(()), &tpl(&[("in", 0, 4)]));
        let failed = rdkafka::error::KafkaError::ConsumerCommit(
            rdkafka::types::RDKafkaErrorCode::RequestTimedOut,
        );
        c.record("in", Err(failed), &tpl(&[("in", 1, 20)]));
        assert_eq!(c.take(), HashMap::from([(0, 5), (1, 9)]));
        assert!(c.take().is_empty(), "taken");
    }

    #[tokio::test]
    async fn the_store_forgets_the_changes_commits_passed() {
        let dir =
            std::env::temp_dir().join(format!("hookline-commits-forget-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ProfileStore::open(&dir).unwrap();
        for offset in 0..4 {
            let before = store.before_change(1, offset, "c", "12:1").unwrap();
            store
                .apply_change(1, offset, "c", "12:1", &before, RowWrite::Keep)
                .unwrap();
        }
        let c = CommittedOffsets::default();
        c.record("in", Ok(()), &tpl(&[("in", 1, 3)]));
        c.forget_passed(&store).await.unwrap();
        let replayed = |o| store.before_change(1, o, "c", "12:1").unwrap().replayed;
        assert!(!replayed(2), "below the commit: forgotten");
        assert!(replayed(3), "at the commit: kept, it may be read again");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
