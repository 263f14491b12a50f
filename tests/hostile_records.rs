//! Nothing a producer writes stops a stage, on the real local broker.
//!
//! - Oversized inputs and outputs: an 800 KB value that is not JSON, and a 900 KB click that is
//!   valid (schema and all) but whose form-encoded delivery would exceed the producer's
//!   `message.max.bytes`, are both quarantined as truncated copies carrying their original size;
//!   the next ordinary click is delivered and the tracking stage keeps running and ready. Before,
//!   the base64 quarantine copy of either was refused by librdkafka (`MessageSizeTooLarge`) and
//!   the stage exited, to meet the same record again after its restart.
//! - Hostile subscriptions: records written straight to the `subscriptions` topic (a condition
//!   `"5日"` for `before`, which panicked the table thread, a value that is not JSON, a key that
//!   is not UTF-8) are skipped by every follower (tracking, sender, admin), before and after the
//!   stages start, and a valid click is still routed and delivered.
//! - A table sink that panics on a record: the follower skips the record and keeps following.
//!
//! Tansu 0.6 sets no record size limit of its own (it has no `max.message.bytes` and reads
//! frames of any length), so the inputs are produced to topics created as usual; the limit that
//! matters is the producer's, librdkafka's default `message.max.bytes` of 1,000,000.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hookline_integration_tests::{
    committed_and_end, count, fixtures, key_path, produce, produce_raw, read_to_end, tracking_args,
    Sender,
};
use hookline_kafka::table::{StartAt, TableSink, TableTail};
use hookline_kafka::KafkaError;
use hookline_telemetry::{Metrics, Readiness};
use hookline_testkit::topics::json;
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use rdkafka::message::Message;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

fn click(id: &str) -> Value {
    json!({"id": id, "type": "click", "account": "1001", "database": "12", "profile": "1",
           "timestamp": "2026-11-25T10:15:00Z", "ip": "203.0.113.7",
           "original": "https://shop.example/offer"})
}

fn subscription(id: &str, url: &str, format: &str) -> Value {
    fixtures::subscription(id, url, json!({"format": format}))
}

/// One in-process `hookline-tracking` with the default `--max-record-bytes` (1 MiB).
struct Tracking {
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Tracking {
    async fn start(t: &TestTopics, name: &str) -> Self {
        let state = std::env::temp_dir().join(format!(
            "hookline-hostile-{}-{name}-{}",
            std::process::id(),
            t.prefix.trim_end_matches('.')
        ));
        let args = tracking_args(t, &state, &[]);
        let (metrics, readiness, shutdown) = (
            Metrics::new(),
            Readiness::default(),
            CancellationToken::new(),
        );
        let task = {
            let (m, r, s) = (metrics.clone(), readiness.clone(), shutdown.clone());
            tokio::spawn(async move { Ok(hookline_tracking::run(args, m, r, s).await?) })
        };
        let stage = Self {
            metrics,
            readiness,
            shutdown,
            task,
        };
        let ready = eventually(Duration::from_secs(60), || {
            stage.readiness.is_ready() || stage.task.is_finished()
        })
        .await;
        assert!(ready && !stage.task.is_finished(), "tracking gets ready");
        stage
    }

    fn quarantined(&self, class: &str) -> u64 {
        count(&self.metrics.quarantined, &["tracking", class])
    }

    async fn stop(self) {
        assert!(
            !self.task.is_finished(),
            "the tracking stage is still running"
        );
        assert!(
            self.readiness.is_ready(),
            "the tracking stage is still ready"
        );
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("tracking stops within 30 s")
            .expect("no panic")
            .expect("tracking stops cleanly");
    }
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_records_are_quarantined_truncated_and_the_stage_goes_on() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    let receiver = Receiver::start(200).await;
    // Form encoding triples every '/' of the event, so the big click's delivery outgrows the
    // producer's limit while the click itself does not.
    produce(
        &t,
        &t.topics.subscriptions,
        &[(
            "sub-form".into(),
            subscription("sub-form", &receiver.url("/in"), "form"),
        )],
    )
    .await;
    let tracking = Tracking::start(&t, "oversized").await;
    let key = key_path("hostile-oversized");
    let sender = Sender::start(&t, &key, &[]);

    let not_json = vec![b'<'; 800_000];
    let mut big = click("evt-big");
    big["referer"] = json!(format!("https://shop.example/{}", "/a".repeat(450_000)));
    let big = serde_json::to_vec(&big).unwrap();
    assert!(
        big.len() > 900_000 && big.len() < 1_000_000,
        "{}",
        big.len()
    );
    let ok = serde_json::to_vec(&click("evt-ok")).unwrap();
    let k: &[u8] = b"12:1";
    produce_raw(
        &t,
        &t.topics.tracking,
        &[
            (Some(k), Some(&not_json)),
            (Some(k), Some(&big)),
            (Some(k), Some(&ok)),
        ],
    )
    .await;

    assert!(
        eventually(Duration::from_secs(60), || receiver.count() >= 1).await,
        "the ordinary click after the oversized records is delivered"
    );
    // Both stages commit an input only after what they wrote for it is acknowledged: once
    // tracking has committed the three records and the sender every delivery, nothing more
    // comes, and the POSTs and the quarantine can be counted.
    let (tracking_group, sender_group) = (
        format!("{}tracking", t.prefix),
        format!("{}sender", t.prefix),
    );
    let settled = eventually(Duration::from_secs(60), || {
        let (committed, end) = committed_and_end(&t, &sender_group, &t.topics.deliveries);
        committed_and_end(&t, &tracking_group, &t.topics.tracking) == (3, 3) && committed == end
    })
    .await;
    assert!(settled, "tracking and sender commit everything");
    let got = receiver.received();
    assert_eq!(got.len(), 1, "only the ordinary click is delivered");
    assert!(String::from_utf8_lossy(&got[0].body).contains("evt-ok"));

    let quarantined = read_to_end(&t, &t.topics.quarantine);
    assert_eq!(
        quarantined.len(),
        2,
        "the two oversized records are quarantined"
    );
    for (m, (offset, original, fragment)) in quarantined.iter().zip([
        (0, &not_json, "value is not JSON"),
        (1, &big, "too-large: the delivery to"),
    ]) {
        assert!(m.payload().unwrap().len() < 1_000_000);
        let q = json(m);
        let reason = q["reason"].as_str().unwrap();
        assert!(reason.contains(fragment), "{reason}");
        assert_eq!(q["truncated"], json!(true), "{reason}");
        assert_eq!(q["value_size"], json!(original.len()));
        assert_eq!(q["source_topic"], json!(t.topics.tracking));
        assert_eq!((&q["partition"], &q["offset"]), (&json!(0), &json!(offset)));
        let prefix = b64(q["value_base64"].as_str().unwrap());
        assert!(
            prefix.len() > 500_000,
            "most of the value is kept: {}",
            prefix.len()
        );
        assert_eq!(&prefix[..], &original[..prefix.len()]);
    }
    let big_reason = json(&quarantined[1])["reason"].as_str().unwrap().to_owned();
    assert!(
        big_reason.contains("subscription sub-form") && big_reason.contains("bytes"),
        "the reason names the output and its size: {big_reason}"
    );
    assert_eq!(tracking.quarantined("json"), 1);
    assert_eq!(tracking.quarantined("too-large"), 1);

    sender.stop(Duration::from_secs(30)).await;
    tracking.stop().await;
}

/// A subscription whose condition has a multibyte date operand (`before "5日"`), which
/// panicked the subscriptions table thread of every stage.
fn with_bad_date(mut sub: Value, op: &str, value: &str) -> Value {
    sub["conditions"] = json!({"field": "signup", "op": op, "value": value});
    sub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_subscription_records_are_skipped_by_every_follower() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    let receiver = Receiver::start(200).await;
    let url = receiver.url("/in");
    // Straight to the topic, not through the admin API (which would refuse them).
    let good = subscription("sub-ok", &url, "json");
    let bad_date = with_bad_date(subscription("sub-bad-date", &url, "json"), "before", "5日");
    let mut wrong_key = subscription("sub-wrong-key", &url, "json");
    wrong_key["id"] = json!("sub-other");
    let good_bytes = serde_json::to_vec(&good).unwrap();
    let bad_date_bytes = serde_json::to_vec(&bad_date).unwrap();
    let wrong_key_bytes = serde_json::to_vec(&wrong_key).unwrap();
    produce_raw(
        &t,
        &t.topics.subscriptions,
        &[
            (Some(b"sub-ok"), Some(&good_bytes)),
            (Some(b"sub-bad-date"), Some(&bad_date_bytes)),
            (Some(b"sub-garbage"), Some(b"\xff{not json")),
            (Some(b"\xff\xfe"), Some(&wrong_key_bytes)),
            (Some(b"sub-wrong-key"), Some(&wrong_key_bytes)),
        ],
    )
    .await;

    let tracking = Tracking::start(&t, "subscriptions").await;
    let key = key_path("hostile-subscriptions");
    let sender = Sender::start(&t, &key, &[]);
    let admin = hookline_admin::Tables::start(&t.settings, &t.topics)
        .await
        .expect("the admin's tables load");

    // While every follower runs: a new hostile subscription, and a hostile version of the good
    // one (the previous version must stay in force), then a valid marker.
    let late_bad = with_bad_date(subscription("sub-late-bad", &url, "json"), "after", "日");
    let bad_version = with_bad_date(good.clone(), "before", "+5日");
    let marker = subscription("sub-marker", &receiver.url("/marker"), "json");
    produce(
        &t,
        &t.topics.subscriptions,
        &[
            ("sub-late-bad".into(), late_bad),
            ("sub-ok".into(), bad_version),
            ("sub-marker".into(), marker),
        ],
    )
    .await;
    // Refused as invalid: sub-bad-date, sub-late-bad and the bad version of sub-ok.
    let sender_metrics = sender.metrics.clone();
    let refused = |m: &Metrics| count(&m.quarantined, &["subscriptions", "schema"]);
    assert!(
        eventually(Duration::from_secs(30), || {
            refused(&tracking.metrics) == 3 && refused(&sender_metrics) == 3
        })
        .await,
        "tracking refused {}, sender {}",
        refused(&tracking.metrics),
        refused(&sender_metrics)
    );
    for m in [&tracking.metrics, &sender_metrics] {
        assert_eq!(count(&m.quarantined, &["subscriptions", "json"]), 1);
        assert_eq!(count(&m.quarantined, &["subscriptions", "key"]), 2);
    }
    assert!(
        eventually(Duration::from_secs(30), || admin
            .subscription("sub-marker")
            .is_some())
        .await,
        "the admin follows the topic past the hostile records"
    );
    for id in ["sub-bad-date", "sub-late-bad", "sub-garbage"] {
        assert!(admin.subscription(id).is_none(), "the admin skipped {id}");
    }
    let in_force = admin
        .subscription("sub-ok")
        .expect("sub-ok is known to the admin");
    assert!(
        in_force.conditions.is_null(),
        "the admin keeps the valid version of sub-ok"
    );

    produce(
        &t,
        &t.topics.tracking,
        &[("12:1".into(), click("evt-after"))],
    )
    .await;
    assert!(
        eventually(Duration::from_secs(60), || receiver.count() >= 2).await,
        "the click is delivered to sub-ok (its valid version) and sub-marker"
    );
    let mut paths: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.path_and_query.clone())
        .collect();
    paths.sort();
    assert_eq!(paths, vec!["/in", "/marker"]);
    sender.stop(Duration::from_secs(30)).await;
    tracking.stop().await;
}

/// Counts what it applies and panics on the value `boom`: a bug in a sink.
struct PanickingSink {
    applied: Arc<AtomicUsize>,
}

impl TableSink for PanickingSink {
    fn apply(&mut self, _partition: i32, _offset: i64, _key: Option<&[u8]>, value: Option<&[u8]>) {
        assert_ne!(value, Some(&b"boom"[..]), "a sink bug");
        self.applied.fetch_add(1, Ordering::SeqCst);
    }

    fn forget_partition(&mut self, _partition: i32) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_follower_survives_a_record_its_sink_panics_on() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    let topic = t.topics.domains.clone();
    produce_raw(
        &t,
        &topic,
        &[
            (Some(b"a"), Some(b"1")),
            (Some(b"b"), Some(b"boom")),
            (Some(b"c"), Some(b"3")),
        ],
    )
    .await;
    let applied = Arc::new(AtomicUsize::new(0));
    let sink = PanickingSink {
        applied: applied.clone(),
    };
    let tail = TableTail::spawn(&t.settings, "hostile-sink", &topic, sink).unwrap();
    tail.assign(vec![(0, StartAt::Beginning)]);
    let high = tail
        .caught_up(0)
        .await
        .expect("the follower survives the panic");
    assert_eq!(high, 3);
    assert_eq!(applied.load(Ordering::SeqCst), 2);
    // And it keeps following.
    produce_raw(&t, &topic, &[(Some(b"d"), Some(b"4"))]).await;
    assert_eq!(tail.caught_up(0).await.expect("still following"), 4);
    assert_eq!(applied.load(Ordering::SeqCst), 3);
}

/// Takes `delay` per record: a table that cannot be read to its end within a short bound.
struct SlowSink {
    applied: Arc<AtomicUsize>,
    delay: Duration,
}

impl TableSink for SlowSink {
    fn apply(&mut self, _: i32, _: i64, _: Option<&[u8]>, _: Option<&[u8]>) {
        std::thread::sleep(self.delay);
        self.applied.fetch_add(1, Ordering::SeqCst);
    }

    fn forget_partition(&mut self, _partition: i32) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_catch_up_is_bounded_and_says_what_is_missing() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    let topic = t.topics.profiles.clone();
    let records: Vec<(String, Value)> = (0..40).map(|i| (format!("12:{i}"), json!({}))).collect();
    produce(&t, &topic, &records).await;
    let applied = Arc::new(AtomicUsize::new(0));
    let sink = SlowSink {
        applied: applied.clone(),
        delay: Duration::from_millis(50),
    };
    let tail = TableTail::spawn(&t.settings, "hostile-slow", &topic, sink)
        .unwrap()
        .with_catch_up_timeout(Duration::from_millis(500));
    tail.assign(vec![(0, StartAt::Beginning)]);
    let started = std::time::Instant::now();
    match tail.caught_up(0).await {
        Err(KafkaError::CatchUpTimeout {
            partition,
            position,
            high,
            ..
        }) => {
            assert_eq!((partition, high), (0, 40));
            assert!((0..40).contains(&position), "read up to {position}");
        }
        other => panic!("expected a catch-up timeout, got {other:?}"),
    }
    // The bound is kept even while the sink is busy (the thread looks up every 100 ms).
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // A reader that must not go on keeps waiting, and gets there.
    assert_eq!(
        tail.wait_caught_up(0).await.expect("caught up in the end"),
        40
    );
    assert_eq!(applied.load(Ordering::SeqCst), 40);
}
