//! The retry path's delay tiers across a rebalance. A tier loop pauses a partition whose head is
//! not yet due and resumes it when it is; librdkafka keeps such an application pause across a
//! revocation and a new assignment of the same partition, so a partition that changes hands
//! while paused and comes back must still be read when its head is due.
//!
//! A retry whose subscription was disabled (or paused) while it waited does not wait out its
//! time on the path: it is dead-lettered with the reason when the tier loop first looks at it.
//!
//! Only the sender runs (in-process); retry records are written straight to a tier topic.

use std::time::Duration;

use hookline_integration_tests::{count, key_path, produce, Sender};
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use time::OffsetDateTime;

const PARTITIONS: i32 = 3;

fn subscription(url: &str, status: &str) -> (String, Value) {
    (
        "sub-t".into(),
        json!({"id": "sub-t", "account": "1001", "database": "12", "events": ["click"],
               "url": url, "format": "json", "status": status,
               "updated": hookline_model::timefmt::now_rfc3339()}),
    )
}

/// A retry record for attempt 2 of delivery `n`, created `age` ago, due `due_in` from now.
fn retry_record(n: i32, url: &str, age: Duration, due_in: Duration) -> Value {
    let body = json!({"id": format!("evt-t-{n}"), "type": "click"}).to_string();
    let now = OffsetDateTime::now_utc();
    json!({
        "delivery": {"delivery_id": format!("dlv_t_{n}"), "event_id": format!("evt-t-{n}"),
            "event_type": "click", "subscription_id": "sub-t", "account": "1001",
            "database": "12", "url": url, "format": "json", "body": body,
            "created_at": hookline_model::timefmt::rfc3339(now - age)},
        "attempt": 2,
        "not_before": hookline_model::timefmt::rfc3339(now + due_in),
        "first_attempt_at": hookline_model::timefmt::rfc3339(now - age),
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
    produce(&t, &t.topics.subscriptions, &[subscription(&url, "active")]).await;
    // The one-minute tier: a head due in 12 s makes its partition pause for 12 s.
    let records: Vec<Value> = (0..PARTITIONS)
        .map(|p| retry_record(p, &url, Duration::ZERO, Duration::from_secs(12)))
        .collect();
    write_to_minute_tier(&t, &records).await;

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

/// Writes `records` to the one-minute tier, the n-th to partition n (modulo the count).
async fn write_to_minute_tier(t: &TestTopics, records: &[Value]) {
    let (tier, _) = t
        .topics
        .retry_tiers()
        .into_iter()
        .find(|(_, delay)| *delay == Duration::from_secs(60))
        .expect("a one-minute tier");
    let producer: FutureProducer = t.settings.producer().create().unwrap();
    for (n, r) in records.iter().enumerate() {
        let value = r.to_string();
        producer
            .send(
                FutureRecord::to(&tier)
                    .partition(n as i32 % PARTITIONS)
                    .key("sub-t")
                    .payload(&value),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_retry_of_a_subscription_disabled_meanwhile_is_dead_lettered_at_once() {
    let receiver = Receiver::start(200).await;
    let url = receiver.url("/t");
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, PARTITIONS).await;
    produce(
        &t,
        &t.topics.subscriptions,
        &[subscription(&url, "disabled")],
    )
    .await;
    // Deferred two minutes ago (so well past the grace for a lagging view), due in 50 s: the
    // tier would pause its partition for 50 s.
    let record = retry_record(0, &url, Duration::from_secs(120), Duration::from_secs(50));
    write_to_minute_tier(&t, &[record]).await;

    let sender = Sender::start(&t, &key_path("tiers-disabled"), &[]);
    let m = sender.metrics.clone();
    let dead = eventually(Duration::from_secs(20), || {
        count(&m.dead_letters, &["subscription-disabled"]) >= 1
    })
    .await;
    sender.stop(Duration::from_secs(30)).await;
    assert!(
        dead,
        "dead-lettered within 20 s, not held until its time 50 s away"
    );
    assert_eq!(
        receiver.count(),
        0,
        "nothing is sent to a disabled subscription"
    );
}
