//! A delivery the sender cannot send is never dropped: when its subscription is paused while
//! deliveries are still on their way, each of them ends delivered or dead-lettered with reason
//! `subscription-paused` (replayable after the resume), exactly once.
//!
//! Only the sender runs (in-process); deliveries are written straight to `deliveries`.

use std::collections::HashMap;
use std::time::Duration;

use hookline_integration_tests::{count, key_path, produce, read_to_end, Sender};
use hookline_testkit::topics::json;
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use serde_json::{json, Value};

const N: usize = 40;

fn subscription(url: &str, status: &str) -> (String, Value) {
    (
        "sub-p".into(),
        json!({"id": "sub-p", "account": "1001", "database": "12", "events": ["click"],
               "url": url, "format": "json", "status": status,
               "limits": {"per_second": 2},
               "updated": hookline_model::timefmt::now_rfc3339()}),
    )
}

fn delivery(n: usize, url: &str) -> (String, Value) {
    let body = json!({"id": format!("evt-p-{n}"), "type": "click"}).to_string();
    (
        "sub-p".into(),
        json!({"delivery_id": format!("dlv_p_{n}"), "event_id": format!("evt-p-{n}"),
               "event_type": "click", "subscription_id": "sub-p", "account": "1001",
               "database": "12", "url": url, "format": "json", "body": body,
               "created_at": hookline_model::timefmt::now_rfc3339()}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_of_a_subscription_paused_meanwhile_are_dead_lettered_not_dropped() {
    let receiver = Receiver::start(200).await;
    let url = receiver.url("/p");
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    produce(&t, &t.topics.subscriptions, &[subscription(&url, "active")]).await;
    let records: Vec<_> = (0..N).map(|n| delivery(n, &url)).collect();
    produce(&t, &t.topics.deliveries, &records).await;
    let sender = Sender::start(&t, &key_path("parking"), &[]);
    assert!(
        eventually(Duration::from_secs(30), || receiver.count() >= 4).await,
        "sending started"
    );
    tokio::time::sleep(Duration::from_millis(1)).await; // `updated` after the deliveries' creation
    produce(&t, &t.topics.subscriptions, &[subscription(&url, "paused")]).await;

    // Everything not delivered by the pause ends on `dead-letter`, with its reason. Once every
    // delivery has its end, the sender stops (committing what it finished), and the topic is
    // read to its end offsets, so a repeat would be seen.
    let m = sender.metrics.clone();
    let ended = || {
        count(&m.attempts, &["delivered"]) + count(&m.dead_letters, &["subscription-paused"])
            >= N as u64
    };
    assert!(
        eventually(Duration::from_secs(60), ended).await,
        "every delivery ended"
    );
    sender.stop(Duration::from_secs(30)).await;
    let dead: Vec<Value> = read_to_end(&t, &t.topics.dead_letter)
        .iter()
        .map(json)
        .collect();

    let mut seen: HashMap<String, Vec<&str>> = HashMap::new();
    for r in receiver.received() {
        let id = r.header("x-hookline-delivery").unwrap().to_owned();
        seen.entry(id).or_default().push("delivered");
    }
    for d in &dead {
        assert_eq!(d["reason"], "subscription-paused", "{d:#}");
        let id = d["delivery"]["delivery_id"].as_str().unwrap().to_owned();
        seen.entry(id).or_default().push("dead-lettered");
    }
    let missing: Vec<String> = (0..N)
        .map(|n| format!("dlv_p_{n}"))
        .filter(|id| !seen.contains_key(id))
        .collect();
    assert!(missing.is_empty(), "vanished: {missing:?}");
    let twice: Vec<_> = seen.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(twice.is_empty(), "each ends once: {twice:?}");
    assert!(!dead.is_empty(), "the pause parked some deliveries");
}
