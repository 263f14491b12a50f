//! Two sender instances in one consumer group hand work over without losing any: a second
//! instance joins mid-stream, then the first stops gracefully mid-stream, while a slow receiver
//! keeps attempts in flight the whole time.
//!
//! What must hold (`docs/architecture.md`, "Sender"):
//! - every delivery reaches the receiver at least once, and has a `delivered` outcome;
//! - every POST has its outcome (the accounting adds up per delivery);
//! - no instance sends a delivery twice; a delivery is repeated only by the next owner of its
//!   partition, for records the old owner finished past the partition's commit point: on each
//!   partition, every delivery only the old owner sent comes before every one the new owner
//!   sent.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use hookline_integration_tests::{count, produce, read_to_end, Sender};
use hookline_testkit::topics::json;
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use rdkafka::message::Message;
use serde_json::{json, Value};

const SUBSCRIPTIONS: usize = 8;
const MAX_IN_FLIGHT: usize = 2;
const PER_WAVE: usize = 15; // per subscription

fn key_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hookline-it-rebalance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sub_id(s: usize) -> String {
    format!("sub-{s}")
}

/// A built delivery, keyed by its subscription as the routing stages write it.
fn delivery(s: usize, n: usize, url: &str) -> (String, Value) {
    let sub = sub_id(s);
    let body = json!({"id": format!("evt-{s}-{n}"), "type": "click"}).to_string();
    (
        sub.clone(),
        json!({"delivery_id": format!("dlv_{s}_{n}"), "event_id": format!("evt-{s}-{n}"),
               "event_type": "click", "subscription_id": sub, "account": "1001",
               "database": "12", "url": url, "format": "json", "body": body,
               "created_at": hookline_model::timefmt::now_rfc3339()}),
    )
}

fn wave(receiver: &Receiver, range: std::ops::Range<usize>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for n in range {
        for s in 0..SUBSCRIPTIONS {
            out.push(delivery(s, n, &receiver.url(&format!("/{}", sub_id(s)))));
        }
    }
    out
}

/// Receipts per delivery id, and per id the key ids (instances) that sent them.
fn receipts(receiver: &Receiver) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in receiver.received() {
        let id = p.header("x-hookline-delivery").unwrap().to_owned();
        let sig = p.header("signature").unwrap_or_default();
        let key_id = sig
            .split("keyId=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("?")
            .to_owned();
        out.entry(id).or_default().push(key_id);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebalance_hands_over_in_flight_work_without_loss() {
    // Slow answers keep up to MAX_IN_FLIGHT attempts per subscription in flight all along.
    let receiver = Receiver::start_delayed(200, Duration::from_millis(400)).await;
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 4).await;
    let subs: Vec<(String, Value)> = (0..SUBSCRIPTIONS)
        .map(|s| {
            let id = sub_id(s);
            (
                id.clone(),
                json!({"id": id, "account": "1001", "database": "12", "events": ["click"],
                       "url": receiver.url(&format!("/{id}")), "format": "json",
                       "status": "active",
                       "limits": {"max_in_flight": MAX_IN_FLIGHT, "per_second": 50}}),
            )
        })
        .collect();
    produce(&t, &t.topics.subscriptions, &subs).await;
    let total = 2 * PER_WAVE * SUBSCRIPTIONS;

    let keys = key_dir();
    produce(&t, &t.topics.deliveries, &wave(&receiver, 0..PER_WAVE)).await;
    let a = Sender::start(
        &t,
        &keys.join("instance-a.pem"),
        &["--signing-key-id", "instance-a"],
    );
    assert!(
        eventually(Duration::from_secs(60), || receiver.count() >= 20).await,
        "instance A is sending"
    );

    // B joins mid-stream: a rebalance while A has attempts in flight and a backlog in hand.
    let b = Sender::start(
        &t,
        &keys.join("instance-b.pem"),
        &["--signing-key-id", "instance-b"],
    );
    let bm = b.metrics.clone();
    assert!(
        eventually(Duration::from_secs(60), || count(
            &bm.attempts,
            &["delivered"]
        ) >= 5)
        .await,
        "instance B took partitions over and is sending"
    );
    produce(
        &t,
        &t.topics.deliveries,
        &wave(&receiver, PER_WAVE..2 * PER_WAVE),
    )
    .await;

    // A stops gracefully mid-stream, with work of the second wave still to do.
    let am = a.metrics.clone();
    let a_before_stop = count(&am.attempts, &["delivered"]);
    let received_at_stop = receiver.count();
    assert!(
        received_at_stop < total,
        "the stop is mid-stream ({received_at_stop} of {total} received)"
    );
    a.stop(Duration::from_secs(40)).await;
    let a_after_stop = count(&am.attempts, &["delivered"]);
    eprintln!(
        "A delivered {a_before_stop} before its stop and {} while draining; {received_at_stop} of {total} received at the stop",
        a_after_stop - a_before_stop
    );

    // B finishes everything.
    assert!(
        eventually(Duration::from_secs(90), || receipts(&receiver).len()
            >= total)
        .await,
        "every delivery is received: {} of {total}",
        receipts(&receiver).len()
    );
    // A stopped: nothing more comes from it after run() returned.
    let a_final = count(&am.attempts, &["delivered"]);
    assert_eq!(a_final, a_after_stop, "A sent nothing after it stopped");
    // B stops too, so the POSTs are final: a repeat the new owner moved to the retry path (its
    // endpoint queue was busy) could otherwise still arrive after the count.
    b.stop(Duration::from_secs(40)).await;
    let posts = receiver.count() as u64;
    assert_eq!(
        a_final + count(&bm.attempts, &["delivered"]),
        posts,
        "every POST has its outcome counted"
    );

    let got = receipts(&receiver);
    let mut expected: Vec<String> = (0..SUBSCRIPTIONS)
        .flat_map(|s| (0..2 * PER_WAVE).map(move |n| format!("dlv_{s}_{n}")))
        .collect();
    expected.sort();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !got.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "lost deliveries: {missing:?}");
    assert_eq!(got.len(), total, "no unexpected delivery ids");

    // Outcome accounting: every delivery has a final `delivered` outcome, and there is one
    // outcome per POST (attempts that ended in shutdown were not sent).
    // Both instances have stopped: the topic is final, read to its end.
    let outcomes: Vec<Value> = read_to_end(&t, &t.topics.outcomes)
        .iter()
        .map(json)
        .collect();
    assert_eq!(
        outcomes.len() as u64,
        posts,
        "one outcome per POST, none without one"
    );
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for o in &outcomes {
        assert_eq!(o["result"], "delivered", "only deliveries here: {o:#}");
        *delivered
            .entry(o["delivery_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for (id, senders) in &got {
        assert_eq!(
            delivered.get(id).copied().unwrap_or(0),
            senders.len(),
            "{id}: one delivered outcome per POST ({senders:?})"
        );
    }

    // Duplicates. An instance never sends a delivery twice: work of a revoked partition that
    // has not started is dropped, its attempts in flight are waited for, and what it finished
    // past the commit point is skipped when the partition comes back. What the next owner
    // repeats is what the old one finished past its partition's commit point (records of
    // other subscriptions ahead of the partition's oldest unfinished one) — so only A then B.
    let dups: Vec<(&String, &Vec<String>)> = got.iter().filter(|(_, s)| s.len() > 1).collect();
    eprintln!("{} of {total} deliveries sent twice: {dups:?}", dups.len());
    for (id, senders) in &dups {
        assert_eq!(
            senders.as_slice(),
            ["instance-a", "instance-b"],
            "{id}: only a handover from A to B repeats a delivery, once"
        );
    }
    // Which work is repeated. Each partition moves from A to B once (when B joins, or when A
    // stops). At that handover A's commit point is its oldest unfinished record: everything
    // before it A finished, and B starts reading at it, repeating what A finished past it and
    // sending what A had not started. So on each partition of `deliveries`, in offset order,
    // the deliveries only A sent all come before every delivery B sent; the repeats are the
    // records A finished past that point and nothing else. (A delivery deferred to the retry
    // path would be finished without being sent: there must be none for this to hold.)
    let deferred: u64 = ["queue-full", "rate-limited", "slow-endpoint", "held"]
        .iter()
        .map(|r| count(&am.deferred, &[r]) + count(&bm.deferred, &[r]))
        .sum();
    assert_eq!(deferred, 0, "no delivery was deferred to the retry path");
    let mut by_partition: BTreeMap<i32, Vec<(i64, &Vec<String>)>> = BTreeMap::new();
    for m in read_to_end(&t, &t.topics.deliveries) {
        let id = json(&m)["delivery_id"].as_str().unwrap().to_owned();
        let senders = &got[&id];
        by_partition
            .entry(m.partition())
            .or_default()
            .push((m.offset(), senders));
    }
    for (p, records) in &by_partition {
        let last_a_only = records
            .iter()
            .filter(|(_, s)| s.as_slice() == ["instance-a"])
            .map(|(o, _)| *o)
            .max();
        let first_b = records
            .iter()
            .filter(|(_, s)| s.iter().any(|k| k == "instance-b"))
            .map(|(o, _)| *o)
            .min();
        if let (Some(a_only), Some(b)) = (last_a_only, first_b) {
            assert!(
                a_only < b,
                "partition {p}: offset {a_only} was sent by A alone after B took over at {b} \
                 (senders by offset: {records:?})"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&keys);
}
