//! When the pipeline has finished with everything written so far: every stage's consumer
//! group has committed its input up to the end offsets ([`wait_quiescent`]). Counting what the
//! stages wrote is exact from then on (`read_to_end`; docs/testing.md).

use hookline_testkit::TestTopics;

/// Each consumer group of the pipeline with the topic it reads: the profiles and tracking
/// stages, the sender's `deliveries` loop and each of its retry loops (`<group>-retries`,
/// `<group>-retries.5s`, …). Group names are the defaults, `<prefix><stage>`.
pub fn stage_inputs(t: &TestTopics) -> Vec<(String, String)> {
    let p = &t.prefix;
    let mut inputs = vec![
        (format!("{p}profiles"), t.topics.profile_changes.clone()),
        (format!("{p}tracking"), t.topics.tracking.clone()),
        (format!("{p}sender"), t.topics.deliveries.clone()),
    ];
    for (topic, _) in t.topics.retry_tiers() {
        let suffix = &topic[t.topics.retries.len()..];
        inputs.push((format!("{p}sender-retries{suffix}"), topic));
    }
    inputs
}

/// The first stage input whose group has not committed up to the topic's end offsets, as
/// `(group, topic, committed, end)`; `None` when every stage is done with everything written.
pub fn stage_behind(t: &TestTopics) -> Option<(String, String, i64, i64)> {
    StageWatch::new(t).behind()
}

/// One consumer per stage group (see [`stage_inputs`]), kept for repeated looks: creating the
/// clients costs about 100 ms each, a look with them a few milliseconds.
struct StageWatch {
    inputs: Vec<(String, String, rdkafka::consumer::BaseConsumer, i32)>,
}

impl StageWatch {
    fn new(t: &TestTopics) -> Self {
        use rdkafka::consumer::Consumer;
        let inputs = stage_inputs(t)
            .into_iter()
            .map(|(group, topic)| {
                let consumer: rdkafka::consumer::BaseConsumer =
                    t.settings.table_consumer(&group).create().unwrap();
                let partitions = consumer
                    .fetch_metadata(Some(&topic), std::time::Duration::from_secs(5))
                    .ok()
                    .and_then(|m| m.topics().first().map(|t| t.partitions().len() as i32))
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| {
                        hookline_kafka::table::partition_count(&t.settings, &topic).unwrap()
                    });
                (group, topic, consumer, partitions)
            })
            .collect();
        Self { inputs }
    }

    /// Like [`stage_behind`], with these clients.
    fn behind(&self) -> Option<(String, String, i64, i64)> {
        use rdkafka::consumer::Consumer;
        let timeout = std::time::Duration::from_secs(5);
        self.inputs
            .iter()
            .find_map(|(group, topic, consumer, partitions)| {
                let mut tpl = rdkafka::TopicPartitionList::new();
                let mut end = 0;
                for p in 0..*partitions {
                    tpl.add_partition(topic, p);
                    end += consumer
                        .fetch_watermarks(topic, p, timeout)
                        .map_or(0, |(_, high)| high);
                }
                // A committed offset that cannot be read counts as behind (-1).
                let committed = consumer.committed_offsets(tpl, timeout).map_or(-1, |c| {
                    c.elements()
                        .iter()
                        .map(|e| e.offset().to_raw().filter(|o| *o >= 0).unwrap_or(0))
                        .sum()
                });
                (committed != end).then(|| (group.clone(), topic.clone(), committed, end))
            })
    }
}

/// Waits until the pipeline is quiescent: every stage's group (see [`stage_inputs`]) has
/// committed its input up to the end offsets, and stays so on a second look. Every stage
/// stores an input's offset only after the broker acknowledged what it wrote for it, so from
/// then on the output topics hold everything the inputs cause, and [`crate::read_to_end`] can be
/// counted exactly. A retry still waiting on its tier keeps the pipeline busy, as it should.
/// Panics, naming the group behind, if that does not happen within `within`.
pub async fn wait_quiescent(t: &TestTopics, within: std::time::Duration) {
    let watch = StageWatch::new(t);
    // Two looks in a row: a record written by one stage for the next between the looks at the
    // two groups would otherwise pass unseen.
    let quiet = hookline_testkit::eventually(within, || {
        watch.behind().is_none() && watch.behind().is_none()
    })
    .await;
    assert!(
        quiet,
        "the pipeline did not go quiet within {within:?}: (group, topic, committed, end) {:?}",
        watch.behind()
    );
}
