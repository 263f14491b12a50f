//! Creating the design's topics, and reading a topic's configuration.

use std::time::Duration;

use hookline_config::Topics;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::{KafkaError, KafkaSettings};

/// Creates every topic that does not exist yet. All topics get the same partition count, which
/// keeps `tracking`, `profile-changes` and `profiles` co-partitioned; `profiles` and
/// `subscriptions` are compacted.
pub async fn ensure_topics(
    settings: &KafkaSettings,
    topics: &Topics,
    partitions: i32,
    replication: i32,
) -> Result<Vec<String>, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = settings.admin().create()?;
    let all = topics.all();
    let new: Vec<NewTopic<'_>> = all
        .iter()
        .map(|(name, compacted)| {
            let t = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
            if *compacted {
                t.set("cleanup.policy", "compact")
            } else {
                t.set("cleanup.policy", "delete")
            }
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin.create_topics(new.iter(), &opts).await?;
    let mut created = Vec::new();
    for r in results {
        match r {
            Ok(name) => created.push(name),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(KafkaError::CreateTopic {
                    topic,
                    reason: code.to_string(),
                })
            }
        }
    }
    Ok(created)
}

/// The value of the configuration entry `key` of `topic` (e.g. `delete.retention.ms`), as the
/// broker reports it through the admin API's DescribeConfigs; `None` when the broker does not
/// list the entry or gives it no value. An error when the broker does not answer within 5 s or
/// refuses the request (a broker that does not implement DescribeConfigs); callers fall back to
/// a default.
pub async fn topic_config(
    settings: &KafkaSettings,
    topic: &str,
    key: &str,
) -> Result<Option<String>, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = settings.admin().create()?;
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &opts)
        .await?;
    for result in results {
        let resource = result.map_err(rdkafka::error::KafkaError::AdminOp)?;
        if let Some(entry) = resource.get(key) {
            return Ok(entry.value.clone());
        }
    }
    Ok(None)
}
