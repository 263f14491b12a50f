//! Topics per test.

use std::time::{Duration, Instant};

use hookline_config::Topics;
use hookline_kafka::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

/// `t<random>.`: a topic prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("t{:08x}.", rand::random::<u32>())
}

/// The topics of one test on one broker.
#[derive(Clone)]
pub struct TestTopics {
    pub prefix: String,
    pub topics: Topics,
    pub settings: KafkaSettings,
}

impl TestTopics {
    /// Creates every topic of the design under a fresh prefix.
    pub async fn create(bootstrap: &str, partitions: i32) -> Self {
        let prefix = unique_prefix();
        let topics = Topics::new(&prefix);
        // The local broker holds each fetch for its whole wait: readers use its profile.
        let settings = KafkaSettings::new(
            bootstrap,
            vec![("session.timeout.ms".into(), "6000".into())],
        )
        .with_profile(hookline_config::BrokerProfile::Local);
        hookline_kafka::topics::ensure_topics(&settings, &topics, partitions, 1)
            .await
            .expect("creating topics");
        Self {
            prefix,
            topics,
            settings,
        }
    }
}

/// Reads `topic` (all partitions, from the beginning) until `done` says the records read so far
/// suffice, or `timeout` passes. Returns everything read.
pub fn read_until(
    settings: &KafkaSettings,
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&[OwnedMessage]) -> bool,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = settings
        .table_consumer(&format!("reader-{}", rand::random::<u32>()))
        .create()
        .unwrap();
    let partitions = hookline_kafka::table::partition_count(settings, topic).unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    while started.elapsed() < timeout {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(m.detach());
            if done(&out) {
                break;
            }
        } else if done(&out) {
            break;
        }
    }
    out
}

/// The value of a record as JSON (panics on non-JSON: test topics hold JSON).
pub fn json(m: &OwnedMessage) -> serde_json::Value {
    serde_json::from_slice(m.payload().expect("a value")).expect("JSON value")
}
