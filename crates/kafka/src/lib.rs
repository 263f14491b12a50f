//! Kafka plumbing shared by every stage.
//!
//! - [`settings`]: one place that turns the configuration contract into librdkafka settings for
//!   consumers, producers and the admin client (idempotent producer, `murmur2_random`
//!   partitioner, manual offset store).
//! - [`topics`]: creates the design's topics (co-partitioned counts, compaction where needed).
//! - [`producer`]: [`producer::Producer`], which hands back delivery futures so that a stage
//!   stores an input offset only after every output it caused is acknowledged.
//! - [`table`]: [`table::TableTail`], a thread that reads chosen partitions of a (compacted)
//!   topic into a sink and answers "am I caught up to the end?".
//! - [`quarantine`]: writes malformed input to the quarantine topic.
//! - [`offsets`]: per-partition bookkeeping of what may be committed.

pub mod offsets;
pub mod producer;
pub mod quarantine;
pub mod settings;
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
    #[error("table reader for {topic} stopped")]
    TableStopped { topic: String },
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
