//! Traces as a platform follows them: a click produced with a W3C `traceparent` header goes
//! through the tracking and sender binaries, each exporting its spans over OTLP/HTTP (JSON) to a
//! collector on loopback, configured by the standard `OTEL_*` variables only. The spans must
//! form one chain, producer → tracking's record span → the sender's attempt span → the webhook's
//! `traceparent` header, all in the producer's trace.

use std::time::{Duration, Instant};

use hookline_integration_tests::{produce, StageProcess};
use hookline_testkit::{Broker, Receiver, TestTopics};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PRODUCER_SPAN: &str = "00f067aa0ba902b7";

/// One exported span: service, name, ids.
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

/// Every span in the OTLP/JSON export requests the collector received.
fn exported(collector: &Receiver) -> Vec<Exported> {
    let mut out = Vec::new();
    for r in collector.received() {
        assert_eq!(r.path_and_query, "/v1/traces", "the OTLP traces path");
        let body: Value = serde_json::from_slice(&r.body).expect("an OTLP/JSON body");
        for rs in body["resourceSpans"].as_array().into_iter().flatten() {
            let service = rs["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["key"] == "service.name")
                .and_then(|a| a["value"]["stringValue"].as_str())
                .unwrap_or_default()
                .to_owned();
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    let text = |k: &str| s[k].as_str().unwrap_or_default().to_ascii_lowercase();
                    out.push(Exported {
                        service: service.clone(),
                        name: text("name"),
                        trace_id: text("traceId"),
                        span_id: text("spanId"),
                        parent_span_id: text("parentSpanId"),
                    });
                }
            }
        }
    }
    out
}

async fn produce_traced_click(t: &TestTopics) {
    let producer: FutureProducer = t.settings.producer().create().unwrap();
    let value = json!({"id": "evt-trace-1", "type": "click", "account": "1001",
        "database": "12", "profile": "3", "timestamp": "2026-11-25T10:15:00Z",
        "ip": "203.0.113.7", "original": "https://shop.example/offer"})
    .to_string();
    let traceparent = format!("00-{TRACE_ID}-{PRODUCER_SPAN}-01");
    let headers = OwnedHeaders::new().insert(Header {
        key: "traceparent",
        value: Some(traceparent.as_str()),
    });
    producer
        .send(
            FutureRecord::to(&t.topics.tracking)
                .key("12:3")
                .payload(&value)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .expect("the click is produced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_s_trace_runs_from_its_producer_through_both_stages_to_the_webhook() {
    let receiver = Receiver::start(200).await;
    let collector = Receiver::start(200).await;
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    let sub = json!({"id": "sub-trace", "account": "1001", "database": "12",
        "events": ["click"], "url": receiver.url("/hook"), "format": "json",
        "status": "active"});
    produce(
        &t,
        &t.topics.subscriptions,
        &[("sub-trace".to_owned(), sub)],
    )
    .await;
    let dir = std::env::temp_dir().join(format!("hookline-trace-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let endpoint = collector.url("");
    let state = dir.join("state");
    let key = dir.join("key.pem");
    let otel = [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            endpoint.trim_end_matches('/'),
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ];
    let mut tracking_env = otel.to_vec();
    tracking_env.push(("HOOKLINE_STATE_DIR", state.to_str().unwrap()));
    let mut sender_env = otel.to_vec();
    sender_env.extend([
        ("HOOKLINE_SIGNING_KEY", key.to_str().unwrap()),
        ("HOOKLINE_ALLOW_NETWORKS", "127.0.0.0/8,::1/128"),
    ]);
    let log = |n: &str| format!("trace-{}-{n}.log", std::process::id());
    let tracking = StageProcess::start(&t, "hookline-tracking", &tracking_env, &log("tracking"));
    let sender = StageProcess::start(&t, "hookline-sender", &sender_env, &log("sender"));
    produce_traced_click(&t).await;

    // The webhook, then both stages' spans (exported every 200 ms).
    let deadline = Instant::now() + Duration::from_secs(90);
    let (webhook, record, attempt) = loop {
        let spans = exported(&collector);
        let find = |service: &str, name: &str| {
            spans
                .iter()
                .find(|s| s.service == service && s.name == name && s.trace_id == TRACE_ID)
                .cloned()
        };
        let record = find("hookline-tracking", "tracking record");
        let attempt = find("hookline-sender", "webhook attempt");
        if let (Some(w), Some(r), Some(a)) = (receiver.received().first(), record, attempt) {
            break (w.clone(), r, a);
        }
        assert!(
            Instant::now() < deadline,
            "no complete trace within 90 s: webhooks {}, spans {spans:?}\ntracking log:\n{}\nsender log:\n{}",
            receiver.count(),
            tracking.log(),
            sender.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    assert_eq!(record.parent_span_id, PRODUCER_SPAN, "{record:?}");
    assert_eq!(
        attempt.parent_span_id, record.span_id,
        "{attempt:?} under {record:?}"
    );
    let header = webhook
        .header("traceparent")
        .expect("the webhook carries a traceparent");
    assert_eq!(
        header,
        format!("00-{TRACE_ID}-{}-01", attempt.span_id),
        "the receiver's parent is the exported attempt span"
    );
}
