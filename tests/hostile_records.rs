//! Nothing a producer writes stops a stage, on the real local broker.
//!
//! - Oversized inputs and outputs: an 800 KB value that is not JSON, and a 900 KB click that is
//!   valid (schema and all) but whose form-encoded delivery would exceed the producer's
//!   `message.max.bytes`, are both quarantined as truncated copies carrying their original size;
//!   the next ordinary click is delivered and the tracking stage keeps running and ready. Before,
//!   the base64 quarantine copy of either was refused by librdkafka (`MessageSizeTooLarge`) and
//!   the stage exited, to meet the same record again after its restart.
//!
//! Tansu 0.6 sets no record size limit of its own (it has no `max.message.bytes` and reads
//! frames of any length), so the inputs are produced to topics created as usual; the limit that
//! matters is the producer's, librdkafka's default `message.max.bytes` of 1,000,000.

use std::time::Duration;

use base64::Engine;
use hookline_integration_tests::{count, key_path, produce, produce_raw, tracking_args, Sender};
use hookline_telemetry::{Metrics, Readiness};
use hookline_testkit::topics::json;
use hookline_testkit::{eventually, read_until, Broker, Receiver, TestTopics};
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
    json!({"id": id, "account": "1001", "database": "12", "events": ["click"], "url": url,
           "format": format, "status": "active"})
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
    let got = receiver.received();
    assert_eq!(got.len(), 1, "only the ordinary click is delivered");
    assert!(String::from_utf8_lossy(&got[0].body).contains("evt-ok"));

    let quarantined = read_until(
        &t.settings,
        &t.topics.quarantine,
        Duration::from_secs(30),
        |ms| ms.len() >= 2,
    );
    assert_eq!(quarantined.len(), 2);
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
