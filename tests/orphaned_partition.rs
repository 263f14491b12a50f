//! A member that leaves a settled group must not take its partitions with it: of two
//! `hookline-sender` processes sharing the `deliveries` partitions, one stops (a clean leave),
//! and the other must go on to deliver the records of *every* partition.
//!
//! Before, on the local broker, the survivor kept only its own share: the coordinator answered
//! its rejoin from the group's stored assignment, so the leaver's partition was held by nobody
//! and its deliveries waited for the next member to join (`hookline_kafka::membership`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hookline_integration_tests::{produce, StageProcess};
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use serde_json::{json, Value};

const PARTITIONS: i32 = 3;
/// Per partition, before and after the leave.
const PER_PARTITION: usize = 30;

fn subscription(receiver: &Receiver) -> (String, Value) {
    (
        "sub-0".into(),
        json!({"id": "sub-0", "account": "100", "database": "12", "events": ["click"],
               "url": receiver.url("/sub-0"), "format": "json", "status": "active"}),
    )
}

/// A delivery under `key` (which picks its partition).
fn delivery(n: usize, key: &str, receiver: &Receiver) -> (String, Value) {
    let body = json!({"id": format!("evt-{n}"), "type": "click"}).to_string();
    (
        key.to_owned(),
        json!({"delivery_id": format!("dlv_{n}"), "event_id": format!("evt-{n}"),
               "event_type": "click", "subscription_id": "sub-0", "account": "100",
               "database": "12", "url": receiver.url("/sub-0"), "format": "json",
               "body": body, "created_at": hookline_model::timefmt::now_rfc3339()}),
    )
}

/// One key per partition, found with the producers' partitioner (murmur2, as Kafka's).
fn key_per_partition() -> Vec<String> {
    let mut keys = vec![String::new(); PARTITIONS as usize];
    for n in 0.. {
        let key = format!("k{n}");
        let p = hookline_replay::partition_for_key(key.as_bytes(), PARTITIONS) as usize;
        if keys[p].is_empty() {
            keys[p] = key;
        }
        if keys.iter().all(|k| !k.is_empty()) {
            break;
        }
    }
    keys
}

/// Whether the last assignment of `topic` a sender logged holds any partition.
fn holds_some(log: &str, topic: &str) -> bool {
    let plain = strip_ansi(log);
    let wanted = format!("topic={topic} ");
    plain
        .lines()
        .rfind(|l| l.contains(&wanted) && l.contains("partitions "))
        .is_some_and(|l| l.contains("partitions assigned") && !l.ends_with("partitions=[]"))
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escape = false;
    for c in s.chars() {
        match (escape, c) {
            (false, '\x1b') => escape = true,
            (true, 'm') => escape = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

fn delivered(receiver: &Receiver) -> HashSet<String> {
    receiver
        .received()
        .iter()
        .filter_map(|p| p.header("x-hookline-delivery").map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_leaves_hands_its_partitions_to_the_one_that_stays() {
    let receiver = Receiver::start(200).await;
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, PARTITIONS).await;
    produce(&t, &t.topics.subscriptions, &[subscription(&receiver)]).await;
    let keys = key_per_partition();
    let batch = |from: usize| -> Vec<(String, Value)> {
        (from..from + PER_PARTITION * keys.len())
            .map(|n| delivery(n, &keys[n % keys.len()], &receiver))
            .collect()
    };

    let dir = std::env::temp_dir().join(format!("hookline-orphan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("signing-key.pem");
    let env = [
        ("HOOKLINE_SIGNING_KEY", key.to_str().unwrap()),
        ("HOOKLINE_ALLOW_NETWORKS", "127.0.0.0/8,::1/128"),
    ];
    let start = |n: usize| {
        StageProcess::start(
            &t,
            "hookline-sender",
            &env,
            &format!("orphan-{}-{n}.log", std::process::id()),
        )
    };
    let stays = start(1);
    let mut leaves = start(2);
    let topic = t.topics.deliveries.clone();
    let both_hold = || {
        [&stays, &leaves]
            .iter()
            .all(|p| holds_some(&p.log(), &topic))
    };
    assert!(
        eventually(Duration::from_secs(60), both_hold).await,
        "both members hold partitions of {topic}:\n{}\n{}",
        stays.log(),
        leaves.log()
    );

    // Both members consume: the first batch reaches every partition and is delivered.
    let first = batch(0);
    produce(&t, &t.topics.deliveries, &first).await;
    assert!(
        eventually(Duration::from_secs(60), || delivered(&receiver).len()
            >= first.len())
        .await,
        "the first batch is delivered by the two members"
    );

    leaves.kill();
    let left = Instant::now();
    let second = batch(first.len());
    produce(&t, &t.topics.deliveries, &second).await;
    let all = first.len() + second.len();
    let ok = eventually(Duration::from_secs(90), || {
        delivered(&receiver).len() >= all
    })
    .await;
    assert!(
        ok,
        "after one member left, {} of {all} deliveries arrived in {:?}; the remaining member's log:\n{}",
        delivered(&receiver).len(),
        left.elapsed(),
        stays.log()
    );
    eprintln!("all {all} delivered {:?} after the leave", left.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}
