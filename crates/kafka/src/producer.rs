//! Producing with acknowledgements the caller awaits before it stores input offsets.

use std::time::Duration;

use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use serde::Serialize;

use crate::{KafkaError, KafkaSettings};

/// An idempotent producer. Each `send_*` returns a [`Pending`] acknowledgement; a stage awaits
/// all of them (see [`Acks`]) before it stores the offsets of the inputs that caused them.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
}

/// The broker's acknowledgement of one record, not yet awaited.
pub struct Pending {
    topic: String,
    fut: DeliveryFuture,
}

impl Producer {
    pub fn new(settings: &KafkaSettings) -> Result<Self, KafkaError> {
        Ok(Self {
            inner: settings.producer().create()?,
        })
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
