//! Writing input that cannot be processed to the quarantine topic, with the original bytes and a
//! reason, so that a poison record never stops a partition and is never lost.

use hookline_model::QuarantineRecord;
use rdkafka::message::{BorrowedMessage, Message};

use crate::producer::Acks;
use crate::{KafkaError, Producer};

/// Queues a quarantine record for `msg` (keyed by the original key) and logs why.
pub async fn quarantine(
    producer: &Producer,
    acks: &mut Acks,
    quarantine_topic: &str,
    stage: &str,
    msg: &BorrowedMessage<'_>,
    reason: &str,
) -> Result<(), KafkaError> {
    let record = QuarantineRecord::new(
        stage,
        msg.topic(),
        msg.partition(),
        msg.offset(),
        msg.key(),
        msg.payload(),
        reason,
    );
    tracing::warn!(
        stage,
        topic = msg.topic(),
        partition = msg.partition(),
        offset = msg.offset(),
        reason,
        "quarantined a record"
    );
    let bytes = serde_json::to_vec(&record).map_err(|source| KafkaError::Serialize {
        topic: quarantine_topic.to_owned(),
        source,
    })?;
    producer
        .send(acks, quarantine_topic, msg.key(), Some(&bytes))
        .await
}
