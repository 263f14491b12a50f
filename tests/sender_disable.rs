//! When the sender disables a subscription (a 410), it writes the status change onto the
//! subscription's current version, not the copy it started the attempt with: an edit an admin
//! made while the attempt was under way survives, and a subscription deleted meanwhile is not
//! brought back.
//!
//! Only the sender runs (in-process); the delivery is written straight to `deliveries`.

use std::time::Duration;

use hookline_integration_tests::{
    committed_and_end, count, key_path, produce, produce_raw, read_to_end, RawRecord, Sender,
};
use hookline_testkit::topics::json;
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use serde_json::{json, Value};

fn subscription(url: &str, events: &[&str]) -> (String, Value) {
    (
        "sub-gone".into(),
        json!({"id": "sub-gone", "account": "1001", "database": "12", "events": events,
               "url": url, "format": "json", "status": "active",
               "updated": hookline_model::timefmt::now_rfc3339()}),
    )
}

fn delivery(url: &str) -> (String, Value) {
    (
        "sub-gone".into(),
        json!({"delivery_id": "dlv_gone_1", "event_id": "evt-gone-1", "event_type": "click",
               "subscription_id": "sub-gone", "account": "1001", "database": "12", "url": url,
               "format": "json", "body": "{}",
               "created_at": hookline_model::timefmt::now_rfc3339()}),
    )
}

/// Once the sender has finished the delivery (its offset committed, so everything the attempt
/// caused is written), the subscription records on the topic, oldest first (values; `None` for
/// a tombstone).
async fn versions(t: &TestTopics) -> Vec<Option<Value>> {
    let group = format!("{}sender", t.prefix);
    assert!(
        eventually(Duration::from_secs(30), || committed_and_end(
            t,
            &group,
            &t.topics.deliveries
        ) == (1, 1))
        .await,
        "the sender finished the delivery"
    );
    read_to_end(t, &t.topics.subscriptions)
        .iter()
        .map(|m| rdkafka::Message::payload(m).map(|_| json(m)))
        .collect()
}

/// A subscription, a sender, and one delivery whose attempt is under way: the endpoint answers
/// 410, 2 s after the request arrives (time for an edit or a deletion meanwhile).
async fn attempt_under_way(name: &str) -> (Broker, TestTopics, Receiver, Sender) {
    let receiver = Receiver::start_delayed(410, Duration::from_secs(2)).await;
    let url = receiver.url("/gone");
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    produce(
        &t,
        &t.topics.subscriptions,
        &[subscription(&url, &["click"])],
    )
    .await;
    let sender = Sender::start(&t, &key_path(name), &[]);
    produce(&t, &t.topics.deliveries, &[delivery(&url)]).await;
    assert!(
        eventually(Duration::from_secs(30), || receiver.count() >= 1).await,
        "the attempt is under way"
    );
    (broker, t, receiver, sender)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disable_keeps_an_edit_made_during_the_attempt() {
    let (_broker, t, receiver, sender) = attempt_under_way("disable-edit").await;
    let url = receiver.url("/gone");
    produce(
        &t,
        &t.topics.subscriptions,
        &[subscription(&url, &["click", "open"])],
    )
    .await;
    let m = sender.metrics.clone();
    assert!(
        eventually(Duration::from_secs(30), || count(
            &m.attempts,
            &["disabled"]
        ) == 1)
        .await,
        "the 410 disabled the subscription"
    );
    let all = versions(&t).await;
    sender.stop(Duration::from_secs(30)).await;
    let last = all.last().cloned().flatten().expect("a disabled version");
    assert_eq!(last["status"], "disabled", "{all:#?}");
    assert_eq!(
        last["events"],
        json!(["click", "open"]),
        "the edit made during the attempt is kept: {all:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disable_does_not_bring_back_a_deleted_subscription() {
    let (_broker, t, _receiver, sender) = attempt_under_way("disable-delete").await;
    let tombstone: RawRecord<'_> = (Some(b"sub-gone".as_slice()), None);
    produce_raw(&t, &t.topics.subscriptions, &[tombstone]).await;
    let m = sender.metrics.clone();
    assert!(
        eventually(Duration::from_secs(30), || count(
            &m.attempts,
            &["disabled"]
        ) + count(
            &m.attempts,
            &["dead-lettered"]
        ) >= 1)
        .await,
        "the 410 was judged"
    );
    let all = versions(&t).await;
    sender.stop(Duration::from_secs(30)).await;
    assert!(
        all.last().is_some_and(Option::is_none),
        "the deletion stays the last word: {all:#?}"
    );
}
