//! Producing with acknowledgements the caller awaits before it stores input offsets.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::polled::{PolledProducer, ReportContext, ReportFuture};
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use serde::Serialize;

use crate::stats::{StatsContext, STATISTICS_INTERVAL_MS};
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
    client: Arc<Client>,
    max_message_bytes: usize,
}

/// The librdkafka client, replaced by a new one (a new idempotent producer id) when the broker
/// keeps refusing the old one's records, as Tansu does after an outage that made librdkafka bump
/// the producer epoch.
struct Client {
    config: rdkafka::ClientConfig,
    /// Records librdkafka's statistics as metrics, or nothing (tools).
    context: StatsContext,
    current: RwLock<(u64, Arc<PolledProducer>)>,
}

/// The broker's acknowledgement of one record, not yet awaited, and what it takes to send the
/// record again if the broker is away for longer than `message.timeout.ms`.
pub struct Pending {
    topic: String,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    producer: Producer,
    /// The client generation the record was last sent with.
    generation: u64,
    fut: ReportFuture,
}

/// Records of this process waiting for the broker to come back (see [`Acks::wait`]).
static WAITING_FOR_BROKER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether the broker takes this process's records: no record is waiting for it to come back.
/// Stages make `/readyz` depend on it, so they report not-ready during a broker outage.
pub fn broker_takes_records() -> bool {
    WAITING_FOR_BROKER.load(std::sync::atomic::Ordering::Relaxed) == 0
}

/// Counts a record as waiting for the broker while it lives.
struct Waiting;

impl Waiting {
    fn new() -> Self {
        WAITING_FOR_BROKER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING_FOR_BROKER.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Re-sends of a record the broker answered with "unknown server error" before giving up.
const UNKNOWN_ERROR_RESENDS: u32 = 30;

/// The longest pause between two re-sends of a record while the broker is away.
const RESEND_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Whether a failed acknowledgement means "the broker is (for now) unreachable or not ready",
/// so that sending the record again later can succeed.
pub fn is_transient(e: &RdError) -> bool {
    use RDKafkaErrorCode as C;
    match e {
        RdError::MessageProduction(code) => matches!(
            code,
            C::MessageTimedOut
                | C::AllBrokersDown
                | C::BrokerTransportFailure
                | C::OperationTimedOut
                | C::RequestTimedOut
                | C::NetworkException
                | C::LeaderNotAvailable
                | C::NotLeaderForPartition
                | C::NotEnoughReplicas
                | C::NotEnoughReplicasAfterAppend
        ),
        _ => false,
    }
}

impl Producer {
    /// A producer without metrics (tools such as the CLI).
    pub fn new(settings: &KafkaSettings) -> Result<Self, KafkaError> {
        Self::with_context(settings, StatsContext::default())
    }

    /// A producer whose broker round trips and queues are exported under the label `client`
    /// (a bounded name such as `sender-producer`; [`crate::stats`]).
    pub fn with_stats(
        settings: &KafkaSettings,
        metrics: hookline_telemetry::Metrics,
        client: &str,
    ) -> Result<Self, KafkaError> {
        Self::with_context(settings, StatsContext::new(metrics, client))
    }

    fn with_context(settings: &KafkaSettings, context: StatsContext) -> Result<Self, KafkaError> {
        let mut config = settings.producer();
        if context.wants_statistics() && config.get("statistics.interval.ms").is_none() {
            config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
        }
        let inner = Arc::new(PolledProducer::create(
            &config,
            ReportContext(context.clone()),
        )?);
        Ok(Self {
            max_message_bytes: message_max_bytes(config.get("message.max.bytes")),
            client: Arc::new(Client {
                config,
                context,
                current: RwLock::new((0, inner)),
            }),
        })
    }

    /// The current client and its generation.
    fn current(&self) -> (u64, Arc<PolledProducer>) {
        let g = self
            .client
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        (g.0, g.1.clone())
    }

    /// Replaces the client if it is still `generation` (another record may have done so).
    fn renew(&self, generation: u64) {
        let mut g = self
            .client
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if g.0 != generation {
            return;
        }
        let context = self.client.context.clone();
        match PolledProducer::create(&self.client.config, ReportContext(context)) {
            Ok(p) => {
                tracing::warn!(
                    generation = generation + 1,
                    "the broker keeps refusing this producer's records: starting a new producer"
                );
                *g = (generation + 1, Arc::new(p));
            }
            Err(e) => {
                tracing::warn!(error = %e, "creating a new producer failed; trying again later")
            }
        }
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
            let (generation, inner) = self.current();
            match inner.send(topic, key, value) {
                Ok(fut) => {
                    acks.pending.push(Pending {
                        topic: topic.to_owned(),
                        key: key.map(<[u8]>::to_vec),
                        value: value.map(<[u8]>::to_vec),
                        producer: self.clone(),
                        generation,
                        fut,
                    });
                    return Ok(());
                }
                Err(RdError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    if acks.pending.is_empty() {
                        // Someone else's records fill the queue; librdkafka gives no signal for
                        // free room, so wait a delivery round-trip.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    } else {
                        acks.wait().await?;
                    }
                }
                Err(RdError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)) => {
                    // librdkafka counts more framing than RECORD_OVERHEAD allows for.
                    return Err(KafkaError::TooLarge {
                        topic: topic.to_owned(),
                        size: key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len),
                        max: self.max_record_bytes(),
                    });
                }
                Err(source) => {
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
        Ok(self.current().1.flush(timeout)?)
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
    /// settled, so nothing is left dangling). A record the broker could not take because it is
    /// away (see [`is_transient`]) is sent again, with a growing pause, until it is taken: a
    /// stage rides out a broker outage of any length instead of exiting and repeating its work.
    pub async fn wait(&mut self) -> Result<(), KafkaError> {
        let pending = std::mem::take(&mut self.pending);
        let mut first_err = None;
        for p in pending {
            if let Err(e) = p.settle().await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Pending {
    async fn settle(mut self) -> Result<(), KafkaError> {
        let mut backoff = Duration::from_millis(250);
        let mut resends = 0u32;
        let mut waiting = None;
        loop {
            let source = match (&mut self.fut).await {
                Ok(Ok(_)) => {
                    if resends > 0 {
                        tracing::info!(topic = %self.topic, resends, "the broker took a record again after an outage");
                    }
                    return Ok(());
                }
                Ok(Err(source)) => source,
                Err(_client_gone) => RdError::Canceled,
            };
            // A broker that just came back may answer "unknown server error" for a while (Tansu
            // does, until it knows the idempotent producer again): worth a bounded number of
            // further tries, not an exit.
            let unknown = matches!(
                source,
                RdError::MessageProduction(RDKafkaErrorCode::Unknown)
            );
            // A record of a client that was replaced meanwhile was purged with it.
            let replaced = self.producer.current().0 != self.generation;
            if unknown {
                self.producer.renew(self.generation);
            }
            if !(replaced || is_transient(&source) || unknown && resends < UNKNOWN_ERROR_RESENDS) {
                return Err(KafkaError::Produce {
                    topic: self.topic,
                    source,
                });
            }
            waiting.get_or_insert_with(Waiting::new);
            if resends.is_multiple_of(10) {
                tracing::warn!(topic = %self.topic, error = %source, resends, "the broker did not take a record; sending it again until it does");
            }
            resends += 1;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RESEND_MAX_BACKOFF);
            self.fut = self.resend().await?;
        }
    }

    async fn resend(&mut self) -> Result<ReportFuture, KafkaError> {
        loop {
            let (generation, inner) = self.producer.current();
            self.generation = generation;
            match inner.send(&self.topic, self.key.as_deref(), self.value.as_deref()) {
                Ok(fut) => return Ok(fut),
                Err(RdError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(source) => {
                    return Err(KafkaError::Produce {
                        topic: self.topic.clone(),
                        source,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_or_not_ready_brokers_are_transient_refusals_are_not() {
        use RDKafkaErrorCode as C;
        for c in [C::MessageTimedOut, C::AllBrokersDown, C::NotEnoughReplicas] {
            assert!(is_transient(&RdError::MessageProduction(c)), "{c:?}");
        }
        for c in [
            C::MessageSizeTooLarge,
            C::TopicAuthorizationFailed,
            C::InvalidRecord,
        ] {
            assert!(!is_transient(&RdError::MessageProduction(c)), "{c:?}");
        }
    }

    #[tokio::test]
    async fn a_record_the_broker_never_took_is_sent_again_not_given_up() {
        // No broker at all, and a message timeout of 300 ms: the acknowledgement fails with
        // MessageTimedOut again and again, and `wait` keeps the record instead of failing.
        let settings = KafkaSettings::new(
            "127.0.0.1:1",
            vec![("message.timeout.ms".into(), "300".into())],
        );
        let p = Producer::new(&settings).unwrap();
        let mut acks = Acks::new();
        p.send(&mut acks, "t", Some(b"k"), Some(b"v"))
            .await
            .unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(2_500), acks.wait()).await;
        assert!(
            waited.is_err(),
            "still waiting for the broker after several timeouts, not failed: {waited:?}"
        );
    }

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
