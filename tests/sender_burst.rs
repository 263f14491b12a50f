//! A burst to one fast endpoint waits in memory instead of taking the retry path (issue 13).
//!
//! Moving a delivery to the retry path costs a write and a read of a record; for an endpoint
//! that answers in a millisecond it buys nothing. A burst of 3,000 deliveries for one fast
//! subscription is sent with none of them deferred, every one exactly once.

use std::time::Duration;

use hookline_integration_tests::{count, key_path, produce, Sender};
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use serde_json::json;

const BURST: usize = 3_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_to_a_fast_endpoint_is_sent_without_the_retry_path() {
    let fast = Receiver::start(200).await;
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    let url = fast.url("/fast");
    let sub = json!({"id": "sub-fast", "account": "1001", "database": "12",
        "events": ["click"], "url": url, "format": "json", "status": "active",
        "limits": {"max_in_flight": 64, "per_second": 1000}});
    produce(&t, &t.topics.subscriptions, &[("sub-fast".into(), sub)]).await;
    let burst: Vec<_> = (0..BURST)
        .map(|n| {
            let body = json!({"id": format!("evt-{n}"), "type": "click", "n": n}).to_string();
            let d = json!({"delivery_id": format!("dlv_{n}"), "event_id": format!("evt-{n}"),
                "event_type": "click", "subscription_id": "sub-fast", "account": "1001",
                "database": "12", "url": url, "format": "json", "body": body,
                "created_at": hookline_model::timefmt::now_rfc3339()});
            ("sub-fast".to_owned(), d)
        })
        .collect();
    // The whole burst is on the partition before the sender starts, so it reads it at full
    // speed, far faster than the endpoint's 64 slots send it.
    produce(&t, &t.topics.deliveries, &burst).await;
    let sender = Sender::start(&t, &key_path("burst"), &[]);
    assert!(
        eventually(Duration::from_secs(60), || fast.count() >= BURST).await,
        "{} of {BURST} delivered within 60 s",
        fast.count()
    );
    let m = sender.metrics.clone();
    for reason in ["queue-full", "rate-limited", "slow-endpoint"] {
        assert_eq!(
            count(&m.deferred, &[reason]),
            0,
            "deliveries moved to the retry path as {reason}"
        );
    }
    sender.stop(Duration::from_secs(30)).await;
    let mut ids: Vec<String> = fast
        .received()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(fast.count(), BURST, "each delivery sent exactly once");
    assert_eq!(ids.len(), BURST, "each delivery's body seen once");
}
