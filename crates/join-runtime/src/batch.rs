//! What a stage's processor gets for one batch: [`BatchContext`], the outputs side (decode or
//! quarantine an input, route an event to its deliveries, count joins), and the [`Processor`]
//! trait the runner drives.

use hookline_config::Topics;
use hookline_kafka::producer::Acks;
use hookline_kafka::quarantine::quarantine;
use hookline_kafka::{KafkaError, Producer};
use hookline_telemetry::Metrics;
use rdkafka::message::{BorrowedMessage, Message};

use crate::runner::StageError;
use crate::store::ProfileStore;
use crate::validate::QuarantineReason;

/// Room a delivery leaves below the producer's record limit, so that the sender can wrap it
/// into a retry or dead-letter record (the delivery plus attempt counts, times and the last
/// error) and still produce that.
const DELIVERY_HEADROOM: usize = 16 * 1024;

/// The outputs side of one batch, handed to the processor for each record.
pub struct BatchContext<'a> {
    pub stage: &'static str,
    pub producer: &'a Producer,
    pub acks: &'a mut Acks,
    pub topics: &'a Topics,
    pub metrics: &'a Metrics,
    pub store: &'a ProfileStore,
    pub max_record_bytes: usize,
}

impl BatchContext<'_> {
    /// Validates and decodes one input record; a bad one is quarantined with its reason and
    /// `None` is returned, so the stage goes on with the next record.
    pub async fn decode_or_quarantine<T: serde::de::DeserializeOwned>(
        &mut self,
        msg: &BorrowedMessage<'_>,
        kind: hookline_schemas::SchemaKind,
        key_of: impl Fn(&T) -> String,
    ) -> Result<Option<T>, StageError> {
        match crate::validate::decode_input(
            kind,
            msg.key(),
            msg.payload(),
            self.max_record_bytes,
            key_of,
        ) {
            Ok(v) => Ok(Some(v)),
            Err(reason) => {
                self.quarantine(msg, &reason).await?;
                Ok(None)
            }
        }
    }

    /// Counts a lookup in the profile table as joined or unjoined.
    pub fn count_join(&self, found: bool) {
        let counter = if found {
            &self.metrics.joined
        } else {
            &self.metrics.unjoined
        };
        counter.with_label_values(&[self.stage]).inc();
    }

    /// Offers `event` to the subscriptions and queues one delivery per match (keyed by
    /// subscription id); counts the record as routed or filtered.
    pub async fn route(
        &mut self,
        subscriptions: &crate::SubscriptionsView,
        event: &hookline_model::Enriched,
        source: hookline_model::SourcePosition,
    ) -> Result<(), StageError> {
        let deliveries: Vec<_> = {
            let table = subscriptions.read();
            table
                .matching(event, time::OffsetDateTime::now_utc())
                .map(|s| hookline_routing::build_delivery(event, &s.sub, Some(source.clone())))
                .collect()
        };
        if deliveries.is_empty() {
            self.metrics.filtered.with_label_values(&[self.stage]).inc();
        }
        // Encode and size-check every delivery before queuing any, so an event is either routed
        // whole or (too large) quarantined, never half delivered.
        let topic = &self.topics.deliveries;
        let mut encoded = Vec::with_capacity(deliveries.len());
        for d in &deliveries {
            let key = d.subscription_id.0.as_bytes();
            let bytes = serde_json::to_vec(d).map_err(|source| KafkaError::Serialize {
                topic: topic.clone(),
                source,
            })?;
            let size = key.len() + bytes.len();
            let max = self
                .producer
                .max_record_bytes()
                .saturating_sub(DELIVERY_HEADROOM);
            if size > max {
                return Err(StageError::OutputTooLarge {
                    output: format!(
                        "the delivery to {topic} for subscription {}",
                        d.subscription_id.0
                    ),
                    size,
                    max,
                });
            }
            encoded.push((key, bytes));
        }
        for (key, bytes) in encoded {
            self.producer
                .send(self.acks, topic, Some(key), Some(&bytes))
                .await?;
            self.metrics.routed.with_label_values(&[self.stage]).inc();
        }
        Ok(())
    }

    /// Sends `msg` to the quarantine topic with `reason`, counted under its class.
    pub async fn quarantine(
        &mut self,
        msg: &BorrowedMessage<'_>,
        reason: &QuarantineReason,
    ) -> Result<(), StageError> {
        self.metrics
            .quarantined
            .with_label_values(&[self.stage, reason.class.as_str()])
            .inc();
        quarantine(
            self.producer,
            self.acks,
            &self.topics.quarantine,
            self.stage,
            msg,
            &reason.text,
        )
        .await?;
        Ok(())
    }
}

/// A stage's per-record logic. It queues outputs through the context and returns; the runner
/// awaits their acknowledgements before committing.
#[allow(async_fn_in_trait)]
pub trait Processor {
    async fn process(
        &mut self,
        ctx: &mut BatchContext<'_>,
        msg: &BorrowedMessage<'_>,
    ) -> Result<(), StageError>;

    /// Called once the outputs `process` queued for a batch are all acknowledged, before the
    /// batch's input offsets are stored; what it queues is acknowledged before they are. The
    /// profiles stage writes its table rows here, after the deliveries they led to.
    async fn after_outputs(&mut self, _ctx: &mut BatchContext<'_>) -> Result<(), StageError> {
        Ok(())
    }
}
