//! Writing input that cannot be processed to the quarantine topic, with the original bytes and a
//! reason, so that a poison record never stops a partition and is never lost.
//!
//! A quarantine record holds the original value in base64 (a third larger), so a large input
//! could not be quarantined whole: it is written as a truncated copy (a prefix of the value, the
//! original sizes, `truncated: true`) that fits the producer's `message.max.bytes`. Quarantining
//! therefore never fails for the size of what it quarantines.

use hookline_model::quarantine::TRUNCATED_KEY_BASE64_CHARS;
use hookline_model::QuarantineRecord;
use rdkafka::message::{BorrowedMessage, Message};

use crate::producer::Acks;
use crate::{KafkaError, Producer};

/// The longest Kafka key a quarantine record is produced with; a longer original key is cut to
/// this (the record itself says how long it was).
const MAX_KEY_BYTES: usize = TRUNCATED_KEY_BASE64_CHARS / 4 * 3;

/// Queues a quarantine record for `msg` (keyed by the original key) and logs why.
pub async fn quarantine(
    producer: &Producer,
    acks: &mut Acks,
    quarantine_topic: &str,
    stage: &str,
    msg: &BorrowedMessage<'_>,
    reason: &str,
) -> Result<(), KafkaError> {
    let source = Source {
        topic: msg.topic(),
        partition: msg.partition(),
        offset: msg.offset(),
        key: msg.key(),
        value: msg.payload(),
    };
    quarantine_raw(producer, acks, quarantine_topic, stage, &source, reason).await
}

/// Where a quarantined record came from, and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// [`quarantine`] for a record given by its parts.
pub async fn quarantine_raw(
    producer: &Producer,
    acks: &mut Acks,
    quarantine_topic: &str,
    stage: &str,
    src: &Source<'_>,
    reason: &str,
) -> Result<(), KafkaError> {
    let Encoded {
        key,
        value,
        truncated,
    } = encode(
        producer.max_record_bytes(),
        quarantine_topic,
        stage,
        src,
        reason,
    )?;
    tracing::warn!(
        stage,
        topic = src.topic,
        partition = src.partition,
        offset = src.offset,
        value_size = src.value.map_or(0, <[u8]>::len),
        truncated,
        reason,
        "quarantined a record"
    );
    producer
        .send(acks, quarantine_topic, key, Some(&value))
        .await
}

/// A quarantine record ready to produce.
#[derive(Debug)]
struct Encoded<'k> {
    /// The original key, cut to [`MAX_KEY_BYTES`].
    key: Option<&'k [u8]>,
    /// The record's JSON.
    value: Vec<u8>,
    truncated: bool,
}

/// The quarantine record for `src`, fitted into `max_record` bytes of key plus value.
fn encode<'k>(
    max_record: usize,
    quarantine_topic: &str,
    stage: &str,
    src: &Source<'k>,
    reason: &str,
) -> Result<Encoded<'k>, KafkaError> {
    let key = src.key.map(|k| &k[..k.len().min(MAX_KEY_BYTES)]);
    let mut record = QuarantineRecord::new(
        stage,
        src.topic,
        src.partition,
        src.offset,
        src.key,
        src.value,
        reason,
    );
    let room = max_record.saturating_sub(key.map_or(0, <[u8]>::len));
    let value = record
        .to_json_within(room)
        .ok_or_else(|| KafkaError::TooLarge {
            topic: quarantine_topic.to_owned(),
            size: record.to_json_len(),
            max: room,
        })?;
    Ok(Encoded {
        key,
        value,
        truncated: record.truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src<'a>(key: &'a [u8], value: &'a [u8]) -> Source<'a> {
        Source {
            topic: "hookline.tracking",
            partition: 1,
            offset: 9,
            key: Some(key),
            value: Some(value),
        }
    }

    #[test]
    fn a_record_too_large_to_quarantine_whole_is_truncated_to_fit() {
        let value = vec![b'<'; 800_000];
        let key = vec![b'k'; 10_000];
        let max = 1_000_000 - crate::producer::RECORD_OVERHEAD;
        let Encoded {
            key: k,
            value: bytes,
            truncated,
        } = encode(
            max,
            "q",
            "tracking",
            &src(&key, &value),
            "value is not JSON",
        )
        .unwrap();
        assert!(truncated);
        assert_eq!(k.map(<[u8]>::len), Some(MAX_KEY_BYTES));
        assert!(bytes.len() + MAX_KEY_BYTES <= max);
        let r: QuarantineRecord = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (r.value_size, r.key_size, r.truncated),
            (Some(800_000), Some(10_000), true)
        );
        assert_eq!((r.partition, r.offset), (1, 9));
    }

    #[test]
    fn a_small_record_is_quarantined_whole_under_its_own_key() {
        let Encoded {
            key: k,
            value: bytes,
            truncated,
        } = encode(1_000_000, "q", "tracking", &src(b"12:3", b"{x"), "bad").unwrap();
        assert!(!truncated);
        assert_eq!(k, Some(&b"12:3"[..]));
        let r: QuarantineRecord = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(r.value_base64.as_deref(), Some("e3g="));
    }

    #[test]
    fn an_absurdly_small_limit_is_an_error_not_a_panic() {
        let err = encode(100, "q", "tracking", &src(b"12:3", b"{x"), "bad").unwrap_err();
        assert!(matches!(err, KafkaError::TooLarge { .. }), "{err}");
    }
}
