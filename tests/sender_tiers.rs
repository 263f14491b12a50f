//! The retry path's delay tiers across a rebalance. A tier loop pauses a partition whose head is
//! not yet due and resumes it when it is; librdkafka keeps such an application pause across a
//! revocation and a new assignment of the same partition, so a partition that changes hands
//! while paused and comes back must still be read when its head is due.
//!
//! Only the sender runs (in-process); retry records are written straight to a tier topic, one
//! per partition.

use std::time::Duration;

use hookline_integration_tests::{count, key_path, produce, Sender};
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use time::OffsetDateTime;

const PARTITIONS: i32 = 3;

fn subscription(url: &str) -> (String, Value) {
    (
        "sub-t".into(),
        json!({"id": "sub-t", "account": "1001", "database": "12", "events": ["click"],
               "url": url, "format": "json", "status": "active",
               "updated": hookline_model::timefmt::now_rfc3339()}),
    )
}

/// A retry record for attempt 2 of delivery `n`, due `due_in` from now.
fn retry_record(n: i32, url: &str, due_in: Duration) -> Value {
    let body = json!({"id": format!("evt-t-{n}"), "type": "click"}).to_string();
    let now = OffsetDateTime::now_utc();
    json!({
        "delivery": {"delivery_id": format!("dlv_t_{n}"), "event_id": format!("evt-t-{n}"),
            "event_type": "click", "subscription_id": "sub-t", "account": "1001",
            "database": "12", "url": url, "format": "json", "body": body,
            "created_at": hookline_model::timefmt::rfc3339(now)},
        "attempt": 2,
        "not_before": hookline_model::timefmt::rfc3339(now + due_in),
        "first_attempt_at": hookline_model::timefmt::rfc3339(now),
        "last_error": "HTTP 500",
        "last_status": 500,
        "hops": 1
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_tier_partition_that_changes_hands_and_comes_back_is_read_when_due() {
    let receiver = Receiver::start(200).await;
    let url = receiver.url("/t");
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, PARTITIONS).await;
    produce(&t, &t.topics.subscriptions, &[subscription(&url)]).await;
    // The one-minute tier: a head due in 12 s makes its partition pause for 12 s.
    let (tier, _) = t
        .topics
        .retry_tiers()
        .into_iter()
        .find(|(_, delay)| *delay == Duration::from_secs(60))
        .expect("a one-minute tier");
    let producer: FutureProducer = t.settings.producer().create().unwrap();
    for p in 0..PARTITIONS {
        let value = retry_record(p, &url, Duration::from_secs(12)).to_string();
        producer
            .send(
                FutureRecord::to(&tier)
                    .partition(p)
                    .key("sub-t")
                    .payload(&value),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }

    // A holds every partition and has read every head: each partition is paused.
    let a = Sender::start(&t, &key_path("tiers-a"), &[]);
    let read = |m: &hookline_telemetry::metrics::Metrics| count(&m.consumed, &["sender-retries"]);
    assert!(
        eventually(Duration::from_secs(30), || read(&a.metrics)
            >= PARTITIONS as u64)
        .await,
        "the first sender read every head"
    );
    // B joins (every partition of A is revoked, some come back), reads a head, and leaves: A
    // gets every partition back, the ones it had paused among them.
    let b = Sender::start(&t, &key_path("tiers-b"), &[]);
    assert!(
        eventually(Duration::from_secs(30), || read(&b.metrics) >= 1).await,
        "the second sender took a partition and read its head"
    );
    b.stop(Duration::from_secs(30)).await;

    // Every record is attempted once due (12 s after it was written).
    let delivered = || count(&a.metrics.attempts, &["delivered"]) >= PARTITIONS as u64;
    let ok = eventually(Duration::from_secs(60), delivered).await;
    a.stop(Duration::from_secs(30)).await;
    let mut ids: Vec<String> = receiver
        .received()
        .iter()
        .filter_map(|r| r.header("x-hookline-delivery").map(str::to_owned))
        .collect();
    ids.sort();
    ids.dedup();
    assert!(
        ok && ids.len() == PARTITIONS as usize,
        "every due retry was sent after the partitions came back; received {ids:?}"
    );
}
