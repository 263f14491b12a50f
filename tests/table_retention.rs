//! A join stage's local table and the tombstone retention of the compacted `profiles` topic, on
//! the real local broker.
//!
//! Compaction removes the records of a deleted key, and, `delete.retention.ms` later, its
//! tombstone. A store that was away for longer therefore never sees that
//! deletion when it reads only the tail after its checkpoint, and would keep joining the deleted
//! profile's data into webhooks. The stage records when each partition's table last caught up,
//! and reads a partition whose catch-up is older than the retention again from the beginning.
//!
//! Tansu does not compact, so the test builds the compacted log itself: the store is seeded from
//! one set of topics, where profile 1 exists, and comes back to a second set, with the same state
//! folder, whose `profiles` partition is what compaction would leave once profile 1 was deleted
//! and its tombstone removed: no trace of profile 1, with offsets continuing past the store's
//! checkpoint. Within the retention (`--table-retention 1h`) only the tail is read and the stale
//! row is still joined: exactly the gap this guards against, shown once so the check below is
//! known to test something. After the retention (the second topic's `delete.retention.ms` is
//! 1 s, read from the broker; two seconds later) the partition is read again from the beginning
//! and the click goes out without profile data.

use std::path::Path;
use std::time::Duration;

use hookline_integration_tests::{count, produce};
use hookline_telemetry::{Metrics, Readiness};
use hookline_testkit::{eventually, read_until, Broker, TestTopics};
use rdkafka::message::Message;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

fn profile(id: u32) -> (String, Value) {
    (
        format!("12:{id}"),
        json!({"account": "1001", "database": "12", "profile": id.to_string(),
               "fields": {"email": format!("p{id}@example.com"), "name": format!("P{id}")},
               "interests": [], "subprofiles": {}}),
    )
}

fn click(event: &str, profile: u32) -> (String, Value) {
    (
        format!("12:{profile}"),
        json!({"id": event, "type": "click", "account": "1001", "database": "12",
               "profile": profile.to_string(), "timestamp": "2026-11-25T10:15:00Z",
               "ip": "203.0.113.7", "original": "https://shop.example/offer"}),
    )
}

fn click_subscription() -> (String, Value) {
    // No sender runs: the deliveries on the topic are what the join produced.
    (
        "sub-c".into(),
        json!({"id": "sub-c", "account": "1001", "database": "12", "events": ["click"],
               "url": "http://127.0.0.1:9/never", "format": "json", "status": "active"}),
    )
}

/// One in-process `hookline-tracking` on `t`'s topics with the state folder `state`.
struct Stage {
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Stage {
    fn start(t: &TestTopics, state: &Path, retention: Option<&str>) -> Self {
        let extra: Vec<&str> = retention.map_or(vec![], |r| vec!["--table-retention", r]);
        let args = hookline_integration_tests::tracking_args(t, state, &extra);
        let (metrics, readiness, shutdown) = (
            Metrics::new(),
            Readiness::default(),
            CancellationToken::new(),
        );
        let task = {
            let (m, r, s) = (metrics.clone(), readiness.clone(), shutdown.clone());
            tokio::spawn(async move { Ok(hookline_tracking::run(args, m, r, s).await?) })
        };
        Self {
            metrics,
            readiness,
            shutdown,
            task,
        }
    }

    /// Waits for readiness; returns the table records read by then (the restore).
    async fn restored(&self, what: &str) -> u64 {
        let readiness = self.readiness.clone();
        assert!(
            eventually(Duration::from_secs(30), || readiness.is_ready()).await,
            "{what}: the stage got ready within 30 s"
        );
        count(&self.metrics.table_records, &["profiles"])
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the stage stops within 30 s")
            .unwrap()
            .unwrap();
    }
}

/// The body of the delivery for `event`, waiting for it to appear on `deliveries`.
fn delivery_body(t: &TestTopics, event: &str) -> Value {
    let found = |m: &rdkafka::message::OwnedMessage| {
        let d: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        (d["event_id"] == event).then(|| serde_json::from_str(d["body"].as_str().unwrap()).unwrap())
    };
    let read = read_until(
        &t.settings,
        &t.topics.deliveries,
        Duration::from_secs(30),
        |ms| ms.iter().any(|m| found(m).is_some()),
    );
    read.iter()
        .find_map(found)
        .unwrap_or_else(|| panic!("no delivery for {event} within 30 s"))
}

/// Like [`TestTopics::create`] with one partition, but the `profiles` topic keeps tombstones for
/// `retention_ms`, as its `delete.retention.ms` (Tansu reports a config set at creation).
async fn topics_with_tombstone_retention(bootstrap: &str, retention_ms: &str) -> TestTopics {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let prefix = hookline_testkit::unique_prefix();
    let topics = hookline_config::Topics::new(&prefix);
    let settings = hookline_kafka::KafkaSettings::new(
        bootstrap,
        vec![("session.timeout.ms".into(), "6000".into())],
    );
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        settings.admin().create().unwrap();
    let profiles = NewTopic::new(&topics.profiles, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("delete.retention.ms", retention_ms);
    let created = admin
        .create_topics([&profiles], &AdminOptions::new())
        .await
        .unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    // The rest as usual; `profiles` exists already.
    hookline_kafka::topics::ensure_topics(&settings, &topics, 1, 1)
        .await
        .unwrap();
    assert_eq!(
        hookline_kafka::topics::topic_config(&settings, &topics.profiles, "delete.retention.ms")
            .await
            .unwrap()
            .as_deref(),
        Some(retention_ms),
        "the broker reports the topic's tombstone retention"
    );
    TestTopics {
        prefix,
        topics,
        settings,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_away_longer_than_the_tombstone_retention_is_read_again_from_the_beginning() {
    let broker = Broker::start();
    // One partition, so that every profile shares one table partition and its checkpoint.
    let before = TestTopics::create(&broker.bootstrap, 1).await;
    let after = topics_with_tombstone_retention(&broker.bootstrap, "1000").await;
    let state = std::env::temp_dir().join(format!(
        "hookline-table-retention-{}",
        before.prefix.trim_end_matches('.')
    ));
    let _ = std::fs::remove_dir_all(&state);
    // The store reads profiles 1 and 2 (offsets 0 and 1; checkpoint 2) and stops.
    produce(&before, &before.topics.profiles, &[profile(1), profile(2)]).await;
    let stage = Stage::start(&before, &state, None);
    assert_eq!(stage.restored("seeding").await, 2);
    stage.stop().await;

    // Meanwhile profile 1 was deleted, and compaction removed its records and, after the
    // retention, its tombstone. What is left: profile 2 (offsets 0 and 1, standing in for the
    // surviving records before the checkpoint) and a later change of profile 3 (offset 2).
    produce(
        &after,
        &after.topics.profiles,
        &[profile(2), profile(2), profile(3)],
    )
    .await;
    produce(&after, &after.topics.subscriptions, &[click_subscription()]).await;

    // Back within the retention: only the tail is read, and the vanished profile is still joined.
    produce(&after, &after.topics.tracking, &[click("evt-1", 1)]).await;
    let stage = Stage::start(&after, &state, Some("1h"));
    assert_eq!(
        stage.restored("within the retention").await,
        1,
        "a recent checkpoint: only the record after it is read"
    );
    let stale = delivery_body(&after, "evt-1");
    assert_eq!(
        stale["fields"]["name"], "P1",
        "a tail read keeps the row whose tombstone is gone"
    );
    stage.stop().await;

    // Back after the retention: the partition is dropped and read from the beginning. No flag
    // this time: the stage takes the retention from the topic's `delete.retention.ms` (1 s).
    tokio::time::sleep(Duration::from_secs(2)).await;
    produce(
        &after,
        &after.topics.tracking,
        &[click("evt-2", 1), click("evt-3", 2)],
    )
    .await;
    let stage = Stage::start(&after, &state, None);
    assert_eq!(
        stage.restored("after the retention").await,
        3,
        "a stale checkpoint: the whole partition is read again"
    );
    let vanished = delivery_body(&after, "evt-2");
    assert_eq!(
        vanished["profile_known"], false,
        "the deleted profile is no longer joined: {vanished}"
    );
    assert!(
        vanished["fields"].as_object().is_none_or(|f| f.is_empty()),
        "no profile data in {vanished}"
    );
    let kept = delivery_body(&after, "evt-3");
    assert!(kept.get("profile_known").is_none(), "{kept}");
    assert_eq!(kept["fields"]["name"], "P2", "other profiles are restored");
    stage.stop().await;
    let _ = std::fs::remove_dir_all(&state);
}
