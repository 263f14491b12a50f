//! Replaying dead letters: back onto `deliveries`, unchanged but for `replayed_at` (when the
//! replay put them back, which their attempts' outcomes carry, so the history shows them as
//! replayed), so they take the normal path (signature, limits, retries) and keep their
//! delivery id for receivers' de-duplication.
//!
//! Shared by `hookline replay` and the admin API's `POST /v1/subscriptions/{id}/replay`.
//!
//! - **Off the async runtime.** Reading is librdkafka's blocking poll loop; it runs on a
//!   blocking thread (`spawn_blocking`), so replays never stall the runtime's workers (and with
//!   them every other request of the admin API).
//! - **All or nothing.** The matching dead letters are read first, up to the end the topic had
//!   when the replay started, within a deadline ([`Options::deadline`]) and a memory bound
//!   ([`Options::max_bytes`]). Only a complete read is re-produced: a replay that runs out of
//!   time has sent nothing ([`ReplayError::nothing_sent`]), so trying again cannot duplicate.
//! - **One partition when possible.** Dead letters are keyed by subscription id and produced
//!   with the Java client's partitioner (`murmur2_random`, `crates/kafka/src/settings.rs`), so a
//!   replay for one subscription reads only partition
//!   `(murmur2(subscription id) & 0x7fffffff) % partitions`. It reads every partition when no
//!   subscription is given or the operator chose another partitioner (`--kafka partitioner=…`).
//!   Dead letters written before the topic's partition count was raised may sit elsewhere; a
//!   replay without `--subscription` (the CLI) reads them all.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hookline_config::Topics;
use hookline_kafka::producer::Acks;
use hookline_kafka::{KafkaSettings, Producer};
use hookline_model::DeadLetter;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use time::OffsetDateTime;

/// Which dead letters to replay.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub subscription: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

impl Filter {
    fn matches(&self, d: &DeadLetter) -> bool {
        if self
            .subscription
            .as_deref()
            .is_some_and(|s| s != d.delivery.subscription_id.0)
        {
            return false;
        }
        let at = hookline_model::timefmt::parse(&d.dead_lettered_at);
        if let (Some(since), Some(at)) = (self.since, at) {
            if at < since {
                return false;
            }
        }
        if let (Some(until), Some(at)) = (self.until, at) {
            if at >= until {
                return false;
            }
        }
        true
    }
}

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Count what would be replayed without sending anything.
    pub dry_run: bool,
    /// How long reading the dead letters may take; past it nothing is sent.
    pub deadline: Duration,
    /// How many bytes of matching dead letters one replay may hold; past it nothing is sent.
    pub max_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dry_run: false,
            deadline: Duration::from_secs(120),
            max_bytes: 256 << 20,
        }
    }
}

/// Why a replay did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Kafka(#[from] hookline_kafka::KafkaError),
    #[error("kafka client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("could not read the dead letters within {0:?}; nothing was replayed (narrow the time range with since/until, or try again)")]
    Timeout(Duration),
    #[error("the matching dead letters exceed {0} bytes; nothing was replayed (narrow the time range with since/until)")]
    TooLarge(usize),
    #[error("the reading thread failed: {0}")]
    Thread(String),
    #[error("{sent} of {matched} dead letters were put back before producing failed: {source}")]
    Partial {
        sent: usize,
        matched: usize,
        source: Box<hookline_kafka::KafkaError>,
    },
}

impl ReplayError {
    /// Whether nothing was put back on `deliveries`, so trying again cannot duplicate.
    pub fn nothing_sent(&self) -> bool {
        !matches!(self, ReplayError::Partial { .. })
    }
}

/// Reads `dead-letter` up to its current end and re-produces the matching deliveries; returns
/// how many matched. Default [`Options`].
pub async fn replay(
    settings: &KafkaSettings,
    topics: &Topics,
    filter: &Filter,
    dry_run: bool,
) -> Result<usize, ReplayError> {
    replay_each(settings, topics, filter, dry_run, |_| {}).await
}

/// Like [`replay`], calling `on_match` for every matching dead letter (before it is
/// re-produced, or instead of it when `dry_run`).
pub async fn replay_each(
    settings: &KafkaSettings,
    topics: &Topics,
    filter: &Filter,
    dry_run: bool,
    on_match: impl FnMut(&DeadLetter),
) -> Result<usize, ReplayError> {
    let opts = Options {
        dry_run,
        ..Options::default()
    };
    replay_with(settings, topics, filter, &opts, on_match).await
}

/// The replay with explicit [`Options`]: reads on a blocking thread, then produces.
pub async fn replay_with(
    settings: &KafkaSettings,
    topics: &Topics,
    filter: &Filter,
    opts: &Options,
    mut on_match: impl FnMut(&DeadLetter),
) -> Result<usize, ReplayError> {
    let (s, t, f, o) = (
        settings.clone(),
        topics.clone(),
        filter.clone(),
        opts.clone(),
    );
    let matched = tokio::task::spawn_blocking(move || read_matches(&s, &t, &f, &o))
        .await
        .map_err(|e| ReplayError::Thread(e.to_string()))??;
    for dead in &matched {
        on_match(dead);
    }
    if opts.dry_run || matched.is_empty() {
        return Ok(matched.len());
    }
    let producer = Producer::new(settings)?;
    let mut acks = Acks::new();
    let partial = |sent, source| ReplayError::Partial {
        sent,
        matched: matched.len(),
        source: Box::new(source),
    };
    let replayed_at = hookline_model::timefmt::now_rfc3339();
    for (i, dead) in matched.iter().enumerate() {
        let mut d = dead.delivery.clone();
        d.replayed_at = Some(replayed_at.clone());
        producer
            .send_json(
                &mut acks,
                &topics.deliveries,
                d.subscription_id.0.as_bytes(),
                &d,
            )
            .await
            .map_err(|e| partial(i, e))?;
    }
    acks.wait().await.map_err(|e| partial(matched.len(), e))?;
    Ok(matched.len())
}

/// Kafka's `murmur2` (the Java client's `Utils.murmur2`, librdkafka's `murmur2_random` for
/// keyed records).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the default partitioner gives `key` among `partitions`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// The partitions to read for `filter`: the subscription's own, when the producers' partitioner
/// is the default one; else all.
fn partitions_to_read(settings: &KafkaSettings, filter: &Filter, count: i32) -> Vec<i32> {
    let custom = settings
        .overrides
        .iter()
        .any(|(k, v)| k == "partitioner" && v != "murmur2_random" && v != "murmur2");
    match (&filter.subscription, custom) {
        (Some(sub), false) => vec![partition_for_key(sub.as_bytes(), count)],
        _ => (0..count).collect(),
    }
}

/// Reads the matching dead letters up to the end the topic had at the start. Blocking.
fn read_matches(
    settings: &KafkaSettings,
    topics: &Topics,
    filter: &Filter,
    opts: &Options,
) -> Result<Vec<DeadLetter>, ReplayError> {
    let started = Instant::now();
    let consumer: BaseConsumer = settings.table_consumer("hookline-replay").create()?;
    let count = hookline_kafka::table::partition_count(settings, &topics.dead_letter)?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining = HashMap::new();
    for p in partitions_to_read(settings, filter, count) {
        let (low, high) =
            consumer.fetch_watermarks(&topics.dead_letter, p, Duration::from_secs(10))?;
        if high > low {
            tpl.add_partition_offset(&topics.dead_letter, p, Offset::Offset(low))?;
            remaining.insert(p, high);
        }
    }
    let mut matched = Vec::new();
    if remaining.is_empty() {
        return Ok(matched);
    }
    consumer.assign(&tpl)?;
    let (mut bytes, deadline) = (0usize, started + opts.deadline);
    while !remaining.is_empty() {
        if Instant::now() >= deadline {
            return Err(ReplayError::Timeout(opts.deadline));
        }
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg?;
        let p = msg.partition();
        if remaining
            .get(&p)
            .is_some_and(|end| msg.offset() + 1 >= *end)
        {
            remaining.remove(&p);
        }
        let Some(payload) = msg.payload() else {
            continue;
        };
        let Ok(dead) = serde_json::from_slice::<DeadLetter>(payload) else {
            tracing::warn!(
                partition = p,
                offset = msg.offset(),
                "skipping a malformed dead letter"
            );
            continue;
        };
        if filter.matches(&dead) {
            bytes += payload.len();
            if bytes > opts.max_bytes {
                return Err(ReplayError::TooLarge(opts.max_bytes));
            }
            matched.push(dead);
        }
    }
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The known answers of Kafka's own test of `Utils.murmur2` (`UtilsTest.testMurmur2`).
    #[test]
    fn murmur2_matches_the_java_client() {
        for (key, hash) in [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ] {
            assert_eq!(murmur2(key.as_bytes()), hash, "{key}");
        }
        for p in 1..8 {
            let got = partition_for_key(b"sub-1", p);
            assert!((0..p).contains(&got));
        }
    }

    #[test]
    fn one_partition_for_a_subscription_unless_the_partitioner_is_custom() {
        let filter = Filter {
            subscription: Some("sub-1".into()),
            ..Filter::default()
        };
        let default = KafkaSettings::new("127.0.0.1:9092", vec![]);
        assert_eq!(
            partitions_to_read(&default, &filter, 6),
            [partition_for_key(b"sub-1", 6)]
        );
        assert_eq!(
            partitions_to_read(&default, &Filter::default(), 3),
            [0, 1, 2]
        );
        let custom = KafkaSettings::new(
            "127.0.0.1:9092",
            vec![("partitioner".into(), "consistent".into())],
        );
        assert_eq!(partitions_to_read(&custom, &filter, 3), [0, 1, 2]);
    }
}
