//! Producing with acknowledgements the caller awaits before it stores input offsets.

use std::time::Duration;

use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use serde::Serialize;

use crate::{KafkaError, KafkaSettings};

/// librdkafka's default `message.max.bytes`.
pub const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// Bytes a record needs beyond its key and value on the wire: librdkafka counts at most 36 for
/// a v2 record's own framing, the batch header takes 61; rounded up generously.
pub const RECORD_OVERHEAD: usize = 256;

/// An idempotent producer. Each `send_*` returns a [`Pending`] acknowledgement; a stage awaits
/// all of them (see [`Acks`]) before it stores the offsets of the inputs that caused them.
///
/// Every send checks the record's size first: a record librdkafka would refuse
/// (`message.max.bytes`) is reported as [`KafkaError::TooLarge`] without being queued, so the
/// caller can quarantine its input instead of stopping.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    max_message_bytes: usize,
}

/// The broker's acknowledgement of one record, not yet awaited.
pub struct Pending {
    topic: String,
    fut: DeliveryFuture,
}

impl Producer {
    pub fn new(settings: &KafkaSettings) -> Result<Self, KafkaError> {
        let config = settings.producer();
        Ok(Self {
            max_message_bytes: message_max_bytes(config.get("message.max.bytes")),
            inner: config.create()?,
        })
    }

    /// The `message.max.bytes` this producer was built with (librdkafka's default 1,000,000
    /// unless an operator override sets it).
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// The most bytes of key plus value one record may have: `message.max.bytes` less
    /// [`RECORD_OVERHEAD`].
    pub fn max_record_bytes(&self) -> usize {
        self.max_message_bytes.saturating_sub(RECORD_OVERHEAD)
    }

    /// [`KafkaError::TooLarge`] when a record with this key and value could not be produced.
    pub fn check_size(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<(), KafkaError> {
        let size = key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len);
        let max = self.max_record_bytes();
        if size > max {
            return Err(KafkaError::TooLarge {
                topic: topic.to_owned(),
                size,
                max,
            });
        }
        Ok(())
    }

    /// Queues one record. When librdkafka's local queue is full, waits for the acknowledgements
    /// already in `acks` (which frees room) instead of dropping or spinning.
    pub async fn send(
        &self,
        acks: &mut Acks,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<(), KafkaError> {
        self.check_size(topic, key, value)?;
        loop {
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
            if let Some(k) = key {
                record = record.key(k);
            }
            if let Some(v) = value {
                record = record.payload(v);
            }
            match self.inner.send_result(record) {
                Ok(fut) => {
                    acks.pending.push(Pending {
                        topic: topic.to_owned(),
                        fut,
                    });
                    return Ok(());
                }
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if acks.pending.is_empty() {
                        // Someone else's records fill the queue; librdkafka gives no signal for
                        // free room, so wait a delivery round-trip.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    } else {
                        acks.wait().await?;
                    }
                }
                Err((RdError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                    // librdkafka counts more framing than RECORD_OVERHEAD allows for.
                    return Err(KafkaError::TooLarge {
                        topic: topic.to_owned(),
                        size: key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len),
                        max: self.max_record_bytes(),
                    });
                }
                Err((source, _)) => {
                    return Err(KafkaError::Produce {
                        topic: topic.to_owned(),
                        source,
                    })
                }
            }
        }
    }

    /// Serializes `value` as JSON and queues it.
    pub async fn send_json<T: Serialize>(
        &self,
        acks: &mut Acks,
        topic: &str,
        key: &[u8],
        value: &T,
    ) -> Result<(), KafkaError> {
        let bytes = serde_json::to_vec(value).map_err(|source| KafkaError::Serialize {
            topic: topic.to_owned(),
            source,
        })?;
        self.send(acks, topic, Some(key), Some(&bytes)).await
    }

    /// Waits until everything queued is delivered or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        Ok(self.inner.flush(timeout)?)
    }

    pub fn inner(&self) -> &FutureProducer {
        &self.inner
    }
}

/// `message.max.bytes` as configured, else librdkafka's default. librdkafka itself refuses a
/// value it cannot parse when the producer is created, so a bad one never gets this far.
fn message_max_bytes(configured: Option<&str>) -> usize {
    configured
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES)
}

/// A set of outstanding acknowledgements.
#[derive(Default)]
pub struct Acks {
    pending: Vec<Pending>,
}

impl Acks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Awaits every outstanding acknowledgement; the first failure is returned (after all have
    /// settled, so nothing is left dangling).
    pub async fn wait(&mut self) -> Result<(), KafkaError> {
        let pending = std::mem::take(&mut self.pending);
        let mut first_err = None;
        for p in pending {
            let res = match p.fut.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((source, _))) => Err(KafkaError::Produce {
                    topic: p.topic,
                    source,
                }),
                Err(_canceled) => Err(KafkaError::Produce {
                    topic: p.topic,
                    source: RdError::Canceled,
                }),
            };
            if let Err(e) = res {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_comes_from_the_settings_or_the_default() {
        assert_eq!(message_max_bytes(None), DEFAULT_MESSAGE_MAX_BYTES);
        assert_eq!(message_max_bytes(Some("2000000")), 2_000_000);
        let overridden = KafkaSettings::new(
            "127.0.0.1:1",
            vec![("message.max.bytes".into(), "5000".into())],
        );
        let p = Producer::new(&overridden).expect("a producer needs no broker to be built");
        assert_eq!(p.max_message_bytes(), 5_000);
        assert_eq!(p.max_record_bytes(), 5_000 - RECORD_OVERHEAD);
        let default = Producer::new(&KafkaSettings::new("127.0.0.1:1", vec![])).unwrap();
        assert_eq!(default.max_message_bytes(), DEFAULT_MESSAGE_MAX_BYTES);
    }

    #[tokio::test]
    async fn an_oversized_record_is_refused_before_it_is_queued() {
        let settings = KafkaSettings::new(
            "127.0.0.1:1",
            vec![("message.max.bytes".into(), "5000".into())],
        );
        let p = Producer::new(&settings).unwrap();
        let mut acks = Acks::new();
        let value = vec![b'x'; 5_000];
        let err = p
            .send(&mut acks, "t", Some(b"key"), Some(&value))
            .await
            .expect_err("too large");
        match err {
            KafkaError::TooLarge { topic, size, max } => {
                assert_eq!(
                    (topic.as_str(), size, max),
                    ("t", 5_003, 5_000 - RECORD_OVERHEAD)
                );
            }
            other => panic!("expected TooLarge, got {other}"),
        }
        assert!(acks.is_empty());
        assert!(p.check_size("t", None, Some(&value[..4_000])).is_ok());
    }
}
