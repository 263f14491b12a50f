//! One tenant cannot stall another in the sender: on a single `deliveries` partition, a
//! subscription limited to 1 delivery a second with a backlog of 1,500 does not hold up another
//! account's deliveries, and an ordered subscription whose queue is full blocks only itself.
//!
//! Only the sender runs (in-process); the deliveries are written straight to `deliveries`, one
//! partition, so every subscription shares it.

use std::time::{Duration, Instant};

use hookline_integration_tests::{count, fixtures, key_path, produce, Sender};
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use serde_json::{json, Value};

fn subscription(id: &str, account: &str, url: &str, extra: Value) -> (String, Value) {
    let mut fields = json!({"account": account});
    if let (Some(f), Some(extra)) = (fields.as_object_mut(), extra.as_object()) {
        f.extend(extra.clone());
    }
    fixtures::keyed_subscription(id, url, fields)
}

fn delivery(n: usize, sub: &str, account: &str, url: &str) -> (String, Value) {
    let body = json!({"id": format!("evt-{sub}-{n}"), "type": "click", "n": n}).to_string();
    (
        sub.to_owned(),
        json!({"delivery_id": format!("dlv_{sub}_{n}"), "event_id": format!("evt-{sub}-{n}"),
               "event_type": "click", "subscription_id": sub, "account": account,
               "database": "12", "url": url, "format": "json", "body": body,
               "created_at": hookline_model::timefmt::now_rfc3339()}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limited_backlog_does_not_delay_another_accounts_deliveries() {
    const BACKLOG: usize = 1_500;
    const OTHER: usize = 20;
    let slow = Receiver::start(200).await;
    let other = Receiver::start(200).await;
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    produce(
        &t,
        &t.topics.subscriptions,
        &[
            subscription(
                "sub-slow",
                "1001",
                &slow.url("/slow"),
                json!({"limits": {"per_second": 1}}),
            ),
            subscription("sub-other", "2002", &other.url("/other"), json!({})),
        ],
    )
    .await;
    let backlog: Vec<_> = (0..BACKLOG)
        .map(|n| delivery(n, "sub-slow", "1001", &slow.url("/slow")))
        .collect();
    produce(&t, &t.topics.deliveries, &backlog).await;
    let sender = Sender::start(&t, &key_path("isolation"), &[]);
    assert!(
        eventually(Duration::from_secs(30), || slow.count() >= 1).await,
        "the sender started on the backlog"
    );

    // The other account's deliveries come after the whole backlog on the same partition.
    let produced = Instant::now();
    let records: Vec<_> = (0..OTHER)
        .map(|n| delivery(n, "sub-other", "2002", &other.url("/other")))
        .collect();
    produce(&t, &t.topics.deliveries, &records).await;
    let arrived = eventually(Duration::from_secs(20), || other.count() >= OTHER).await;
    let took = produced.elapsed();
    assert!(
        arrived,
        "the other account got {} of {OTHER} in 20 s behind a backlog of {BACKLOG} at 1/s",
        other.count()
    );
    assert!(
        took < Duration::from_secs(5),
        "the other account's {OTHER} deliveries took {took:?} behind the backlog"
    );

    // The limited endpoint is held to its rate meanwhile, and what it cannot take soon went to
    // the retry path instead of waiting in memory in front of everyone else.
    let m = sender.metrics.clone();
    let deferred = count(&m.deferred, &["rate-limited"]) + count(&m.deferred, &["queue-full"]);
    assert!(
        deferred >= (BACKLOG - 20) as u64,
        "the backlog beyond ~10 s of the rate moved to the retry path: {deferred}"
    );
    let first = slow.received().iter().map(|r| r.at).min().unwrap();
    let span = first.elapsed().as_secs_f64();
    assert!(
        (slow.count() as f64) <= 1.0 + span + 1.5,
        "the 1/s endpoint got {} requests in {span:.1} s",
        slow.count()
    );
    sender.stop(Duration::from_secs(30)).await;
    assert_eq!(other.count(), OTHER, "no duplicates at the other endpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ordered_subscription_with_a_full_queue_blocks_only_itself() {
    const ORDERED: usize = 40;
    const OTHER: usize = 20;
    let ord = Receiver::start(200).await;
    let other = Receiver::start(200).await;
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    produce(
        &t,
        &t.topics.subscriptions,
        &[
            subscription(
                "sub-ord",
                "1001",
                &ord.url("/ord"),
                json!({"ordered": true, "limits": {"per_second": 5}}),
            ),
            subscription("sub-other", "2002", &other.url("/other"), json!({})),
        ],
    )
    .await;
    // The ordered backlog first, then the other account's deliveries, on one partition.
    let mut records: Vec<_> = (0..ORDERED)
        .map(|n| delivery(n, "sub-ord", "1001", &ord.url("/ord")))
        .collect();
    records.extend((0..OTHER).map(|n| delivery(n, "sub-other", "2002", &other.url("/other"))));
    produce(&t, &t.topics.deliveries, &records).await;
    if std::env::var("DEBUG_LOG").is_ok() {
        hookline_telemetry::init_logging("text");
    }
    // A queue of 5 per endpoint: the ordered subscription is held most of the time.
    let sender = Sender::start(
        &t,
        &key_path("isolation-ordered"),
        &["--endpoint-queue-records", "5"],
    );
    assert!(
        eventually(Duration::from_secs(20), || other.count() >= OTHER).await,
        "the other account got {} of {OTHER}",
        other.count()
    );
    assert!(
        eventually(Duration::from_secs(60), || ord.count() >= ORDERED).await,
        "the ordered subscription got {} of {ORDERED}",
        ord.count()
    );
    // The other account's deliveries, behind the ordered backlog on the partition, all
    // arrived before the ordered subscription was halfway through it.
    let mut got = ord.received();
    got.sort_by_key(|r| r.at);
    let other_last = other.received().iter().map(|r| r.at).max().unwrap();
    assert!(
        other_last < got[ORDERED / 2].at,
        "the other account waited for the ordered backlog"
    );
    let m = sender.metrics.clone();
    assert!(
        count(&m.deferred, &["held"]) > 0,
        "the ordered subscription was held"
    );
    sender.stop(Duration::from_secs(30)).await;
    let got = {
        let mut g = ord.received();
        g.sort_by_key(|r| r.at);
        g
    };
    let order: Vec<u64> = got
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["n"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        order,
        (0..ORDERED as u64).collect::<Vec<_>>(),
        "in order, each once"
    );
}
