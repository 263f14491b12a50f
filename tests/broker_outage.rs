//! The stages ride out a broker outage longer than the producer's `message.timeout.ms`: no stage
//! exits, what was in hand is written once the broker is back, and the pipeline goes on.
//!
//! The stages reach the broker through a relay ([`hookline_testkit::Link`]) that the test cuts
//! while the sender has attempts in flight, so their outcome records are produced into the
//! outage, and restores after more than the message timeout (shortened to 2 s here through
//! `HOOKLINE_KAFKA_*`, which every stage of this test binary reads; this file holds one test).
//! The broker itself keeps running, as it would behind a network outage. (Restarting Tansu 0.6
//! instead loses its idempotent-producer and group state.)
//!
//! And a stage asked to stop during an outage stops promptly. Both tests set the same
//! process-wide settings, so they may run in either order.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hookline_integration_tests::{key_path, produce, Pipeline};
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use serde_json::json;

fn click(n: usize) -> (String, serde_json::Value) {
    (
        "12:4711".into(),
        json!({"id": format!("evt-outage-{n}"), "type": "click", "account": "1001",
               "database": "12", "profile": "4711", "timestamp": "2026-11-25T10:15:00Z",
               "ip": "203.0.113.7", "useragent": "Mozilla/5.0", "referer": "https://mail.example/",
               "headers": {}, "original": "https://shop.example/offer", "tags": []}),
    )
}

/// The settings every stage of this test binary reads, set once before either test goes on
/// (never while the other test's stages read the environment).
fn outage_settings() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var("HOOKLINE_KAFKA_MESSAGE_TIMEOUT_MS", "2000");
        std::env::set_var("HOOKLINE_KAFKA_ENABLE_IDEMPOTENCE", "false");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stages_ride_out_a_broker_outage_longer_than_the_message_timeout() {
    outage_settings();
    // With idempotent producers the local broker itself breaks here: when a producer sends
    // again after the cut, Tansu 0.6's storage task panics (tansu-storage 0.6.0 lite.rs:503)
    // and the broker closes every connection from then on (docs/architecture.md, "Broker
    // outages"). What is under test is the stages, so their producers are not idempotent here
    // (the local broker profile's default; said again in case the profile changes).
    let (broker, link) = Broker::start_behind_link();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    // Slow answers keep attempts in flight when the broker goes.
    let receiver = Receiver::start_delayed(200, Duration::from_millis(1500)).await;
    produce(
        &t,
        &t.topics.subscriptions,
        &[(
            "sub-outage".into(),
            json!({"id": "sub-outage", "account": "1001", "database": "12", "events": ["click"],
                   "url": receiver.url("/hook"), "format": "json", "status": "active",
                   "limits": {"max_in_flight": 10}}),
        )],
    )
    .await;
    let pipeline = Pipeline::start(&t, &key_path("outage"), &[]).await;
    produce(
        &t,
        &t.topics.tracking,
        &(0..5).map(click).collect::<Vec<_>>(),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(60), || receiver.count() >= 1).await,
        "the first POSTs are on their way"
    );

    // The broker goes away for longer than the message timeout, while outcomes are pending.
    // The broker is out of reach for longer than the message timeout (and the consumers'
    // session timeout, 6 s in tests), while outcomes are pending.
    link.cut();
    tokio::time::sleep(Duration::from_secs(8)).await;
    if !pipeline.ended().is_empty() {
        // Stopping reports the error the stage ended with.
        let ended = pipeline.ended();
        pipeline.stop().await;
        panic!("{ended:?} stopped while the broker was away, without an error");
    }
    link.restore();

    produce(
        &t,
        &t.topics.tracking,
        &(5..10).map(click).collect::<Vec<_>>(),
    )
    .await;
    let distinct = || {
        let mut ids: HashMap<String, usize> = HashMap::new();
        for r in receiver.received() {
            let id = r
                .header("x-hookline-delivery")
                .unwrap_or_default()
                .to_owned();
            *ids.entry(id).or_default() += 1;
        }
        ids
    };
    let delivered = eventually(Duration::from_secs(90), || distinct().len() >= 10).await;
    if !pipeline.ended().is_empty() {
        let ended = pipeline.ended();
        pipeline.stop().await;
        panic!("{ended:?} stopped after the outage, without an error");
    }
    assert!(
        delivered,
        "every click is delivered after the outage: {} of 10",
        distinct().len()
    );
    // At least once: the sender could not commit while the broker was away, and its group
    // session ended, so what it had finished since its last commit may be sent again once; and
    // a producer that is not idempotent may write a delivery record twice when it sends a batch
    // again, which the sender sends again (receivers drop repeats by delivery id). So at most
    // three POSTs per delivery here.
    let ids = distinct();
    let repeats: usize = ids.values().map(|n| n - 1).sum();
    eprintln!("{repeats} repeated POSTs of {} deliveries", ids.len());
    assert!(
        ids.values().all(|n| *n <= 3),
        "a delivery repeated more than twice: {ids:?}"
    );
    pipeline.stop().await;
}

/// A stage told to stop while the broker is out of reach stops within 20 s (orchestrators
/// commonly allow 30 s before they kill). Today the tracking stage takes about two group
/// sessions (its final commit and its consumer's close each wait one out: 13 s with the tests'
/// 6 s session); the bound catches consumers that would wait in turn (the sender has seven).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stages_asked_to_stop_during_an_outage_stop_within_20_s() {
    outage_settings();
    let (broker, link) = Broker::start_behind_link();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    let receiver = Receiver::start(200).await;
    produce(
        &t,
        &t.topics.subscriptions,
        &[(
            "sub-outage-stop".into(),
            json!({"id": "sub-outage-stop", "account": "1001", "database": "12",
                   "events": ["click"], "url": receiver.url("/hook"), "format": "json",
                   "status": "active"}),
        )],
    )
    .await;
    let pipeline = Pipeline::start(&t, &key_path("outage-stop"), &[]).await;
    produce(&t, &t.topics.tracking, &[click(0)]).await;
    assert!(
        eventually(Duration::from_secs(60), || receiver.count() >= 1).await,
        "the pipeline delivers before the outage"
    );
    link.cut();
    // The stages notice the cut (their next requests fail) before they are asked to stop. A
    // stop asked at the very instant of a cut, before librdkafka has noticed, took the tracking
    // stage over 20 s in one run (closing note of 2026-12-02): not bounded yet.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let asked = Instant::now();
    pipeline.stop_within(Duration::from_secs(20)).await;
    eprintln!(
        "every stage stopped {:?} after being asked",
        asked.elapsed()
    );
    link.restore();
}
