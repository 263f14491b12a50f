//! Kafka plumbing shared by every stage.
//!
//! - [`settings`]: one place that turns the configuration contract into librdkafka settings for
//!   consumers, producers and the admin client (idempotent producer, `murmur2_random`
//!   partitioner, manual offset store).
//! - [`topics`]: creates the design's topics (co-partitioned counts, compaction where needed).
//! - [`producer`]: [`producer::Producer`], which hands back delivery futures so that a stage
//!   stores an input offset only after every output it caused is acknowledged; [`polled`] is
//!   the librdkafka client under it, with a report thread that does not spin when idle.
//! - [`table`]: [`table::TableTail`], a thread that reads chosen partitions of a (compacted)
//!   topic into a sink and answers "am I caught up to the end?" (by position, within a bound).
//! - [`quarantine`]: writes malformed input to the quarantine topic.
//! - [`offsets`]: per-partition bookkeeping of what may be committed.
//! - [`lag`]: consumer lag per assigned partition, from librdkafka's statistics.
//! - [`stats`]: the brokers' round trip, waiting requests and the client queues, from the same
//!   statistics, as `hookline_kafka_*` gauges.
//! - [`membership`]: static group membership (a stable `group.instance.id` per instance) and
//!   leaving a group on purpose.

pub mod lag;
pub mod membership;
pub mod offsets;
pub mod polled;
pub mod producer;
pub mod quarantine;
pub mod settings;
pub mod stats;
pub mod table;
pub mod topics;

pub use producer::Producer;
pub use settings::KafkaSettings;

/// Errors of the Kafka layer. All are retriable by restarting the stage (which resumes from the
/// committed offsets) unless said otherwise.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("producing to {topic} failed: {source}")]
    Produce {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("creating topic {topic} failed: {reason}")]
    CreateTopic { topic: String, reason: String },
    /// A topic the client needs is not on the broker.
    #[error("topic {topic} does not exist (run `hookline topics create`)")]
    MissingTopic { topic: String },
    #[error("table reader for {topic} stopped")]
    TableStopped { topic: String },
    /// A table partition was not read to its end within the bound (`TableTail`'s catch-up
    /// timeout): what was read and where the end is say what is missing.
    #[error("table {topic} partition {partition} not read to its end within {waited:?}: read up to offset {position}, the end (high watermark) is {high}; is the broker reachable and the partition readable?")]
    CatchUpTimeout {
        topic: String,
        partition: i32,
        position: i64,
        high: i64,
        waited: std::time::Duration,
    },
    /// A table partition could not be caught up: not assigned, revoked meanwhile, or its
    /// watermarks could not be read.
    #[error("catching up table {topic}: {reason}")]
    CatchUp { topic: String, reason: String },
    #[error("table {topic} partition {partition}: {source}")]
    Watermarks {
        topic: String,
        partition: i32,
        source: rdkafka::error::KafkaError,
    },
    /// A record larger than the producer may send (`message.max.bytes`), found before
    /// producing or reported by librdkafka. Not retriable: the same record is as large next time,
    /// so a stage quarantines the input that caused it instead of stopping.
    #[error("a record of {size} bytes for {topic} exceeds the producer's limit of {max} bytes (message.max.bytes less framing)")]
    TooLarge {
        topic: String,
        size: usize,
        max: usize,
    },
    #[error("serializing a record for {topic}: {source}")]
    Serialize {
        topic: String,
        source: serde_json::Error,
    },
}
