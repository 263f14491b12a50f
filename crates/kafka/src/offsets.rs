//! What a stage may commit: the offset after the last input whose outputs are acknowledged.

use std::collections::BTreeMap;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

/// Highest processed offset per partition of one topic, stored into the consumer (which
/// commits stored offsets periodically, on revocation and at shutdown).
#[derive(Debug, Default)]
pub struct ProcessedOffsets {
    next: BTreeMap<i32, i64>,
}

impl ProcessedOffsets {
    /// Records that `offset` of `partition` is fully processed.
    pub fn done(&mut self, partition: i32, offset: i64) {
        let e = self.next.entry(partition).or_insert(offset + 1);
        *e = (*e).max(offset + 1);
    }

    pub fn is_empty(&self) -> bool {
        self.next.is_empty()
    }

    /// Stores the offsets into the consumer and forgets them. Partitions the consumer no longer
    /// owns are skipped: their new owner re-processes from its committed offset.
    pub fn store<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
        &mut self,
        consumer: &C,
        topic: &str,
    ) -> Result<(), rdkafka::error::KafkaError> {
        if self.next.is_empty() {
            return Ok(());
        }
        let owned = consumer.assignment()?;
        let mut tpl = TopicPartitionList::new();
        for (p, o) in std::mem::take(&mut self.next) {
            if owned.find_partition(topic, p).is_some() {
                tpl.add_partition_offset(topic, p, Offset::Offset(o))?;
            }
        }
        if tpl.count() > 0 {
            consumer.store_offsets(&tpl)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_highest_next_offset_per_partition() {
        let mut o = ProcessedOffsets::default();
        o.done(0, 5);
        o.done(0, 3);
        o.done(1, 0);
        assert_eq!(o.next.get(&0), Some(&6));
        assert_eq!(o.next.get(&1), Some(&1));
    }
}
