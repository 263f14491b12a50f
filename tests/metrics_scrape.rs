//! What an SRE scrapes: the stage binaries run as processes, each serving `/metrics` on
//! loopback, while 10,000 subscriptions are loaded and events flow end to end. Once the pipeline
//! is quiescent, the scrapes alone must show the accounting identities, every consumer group's
//! lag (the sender's included) for every partition it holds, the event-to-delivery latency
//! histogram, the broker round trips librdkafka measured, nothing queued at rest, and a label
//! cardinality that does not grow with the number of subscriptions.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hookline_integration_tests::{produce, produce_raw, StageProcess};
use hookline_testkit::{Broker, Receiver, TestTopics};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PARTITIONS: i32 = 3;
const SUBSCRIPTIONS: usize = 10_000;
/// Subscriptions that match the clicks below (the rest belong to other databases and accounts).
const MATCHING: usize = 2;
const CLICKS: usize = 200;
const UNSUBSCRIBED_CLICKS: usize = 20;
const HOSTILE: usize = 10;

/// Clients whose librdkafka statistics must reach `/metrics`: a group consumer and a producer
/// of a join stage and of the sender.
const KAFKA_CLIENTS: [(&str, &str); 4] = [
    ("hookline-tracking", "tracking-consumer"),
    ("hookline-tracking", "tracking-producer"),
    ("hookline-sender", "sender-deliveries-consumer"),
    ("hookline-sender", "sender-producer"),
];

fn subscriptions(url: &str) -> Vec<(String, Value)> {
    (0..SUBSCRIPTIONS)
        .map(|n| {
            let (account, database) = if n < MATCHING {
                ("1001".to_owned(), "12".to_owned())
            } else {
                (format!("{}", 5000 + n), format!("{}", 100 + n))
            };
            let id = format!("sub-{n}");
            (
                id.clone(),
                json!({"id": id, "account": account, "database": database, "events": ["click"],
                       "url": url, "format": "json", "status": "active",
                       "limits": {"per_second": 1000, "max_in_flight": 16}}),
            )
        })
        .collect()
}

fn click(n: usize, database: &str) -> (String, Value) {
    let profile = n % 7;
    (
        format!("{database}:{profile}"),
        json!({"id": format!("evt-m-{n}"), "type": "click", "account": "1001",
               "database": database, "profile": profile.to_string(),
               "timestamp": "2026-11-25T10:15:00Z", "ip": "203.0.113.7",
               "original": "https://shop.example/offer"}),
    )
}

/// A free loopback port for a stage's metrics server.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /metrics` over plain HTTP/1.1; the body, or `None` while the server is not up.
async fn scrape(port: u16) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let req =
        format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8(buf).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// The samples of a scrape: series (name with labels) → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of the samples of `name` whose labels contain every one of `labels`.
fn sum(s: &BTreeMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    s.iter()
        .filter(|(k, _)| {
            (k.as_str() == name || k.starts_with(&format!("{name}{{")))
                && labels.iter().all(|l| k.contains(l))
        })
        .map(|(_, v)| v)
        .sum()
}

struct Stage {
    name: &'static str,
    port: u16,
    _process: StageProcess,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_stage_scrape_adds_up_with_ten_thousand_subscriptions() {
    let receiver = Receiver::start(200).await;
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, PARTITIONS).await;
    produce(
        &t,
        &t.topics.subscriptions,
        &subscriptions(&receiver.url("/m")),
    )
    .await;
    let dir = std::env::temp_dir().join(format!("hookline-scrape-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let stages: Vec<Stage> = ["hookline-profiles", "hookline-tracking", "hookline-sender"]
        .into_iter()
        .map(|name| {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let state = dir.join(name);
            let key = dir.join("key.pem");
            let env = [
                ("HOOKLINE_METRICS_ADDR", addr.as_str()),
                ("HOOKLINE_STATE_DIR", state.to_str().unwrap()),
                ("HOOKLINE_SIGNING_KEY", key.to_str().unwrap()),
                ("HOOKLINE_ALLOW_NETWORKS", "127.0.0.0/8,::1/128"),
            ];
            let env: Vec<(&str, &str)> = env
                .into_iter()
                .filter(|(k, _)| {
                    name == "hookline-sender"
                        || matches!(*k, "HOOKLINE_METRICS_ADDR" | "HOOKLINE_STATE_DIR")
                })
                .collect();
            let log = format!("scrape-{}-{name}.log", std::process::id());
            Stage {
                name,
                port,
                _process: StageProcess::start(&t, name, &env, &log),
            }
        })
        .collect();

    let mut clicks: Vec<(String, Value)> = (0..CLICKS).map(|n| click(n, "12")).collect();
    clicks.extend((CLICKS..CLICKS + UNSUBSCRIBED_CLICKS).map(|n| click(n, "14")));
    produce(&t, &t.topics.tracking, &clicks).await;
    let hostile: Vec<Vec<u8>> = (0..HOSTILE)
        .map(|n| format!("{{\"id\": \"evt-h-{n}\", ").into_bytes())
        .collect();
    let raw: Vec<hookline_integration_tests::RawRecord<'_>> = hostile
        .iter()
        .map(|b| (Some(&b"12:0"[..]), Some(b.as_slice())))
        .collect();
    produce_raw(&t, &t.topics.tracking, &raw).await;

    let deliveries = (CLICKS * MATCHING) as f64;
    let tracking_in = (CLICKS + UNSUBSCRIBED_CLICKS + HOSTILE) as f64;
    // Quiescent: every delivery answered and every group's lag reported as 0 for all of its
    // partitions (statistics come every 5 s, so wait for them rather than for the offsets).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut scrapes: BTreeMap<&str, BTreeMap<String, f64>> = BTreeMap::new();
    loop {
        scrapes.clear();
        for s in &stages {
            if let Some(text) = scrape(s.port).await {
                scrapes.insert(s.name, samples(&text));
            }
        }
        let done = scrapes.len() == stages.len() && {
            let sender = &scrapes["hookline-sender"];
            let tracking = &scrapes["hookline-tracking"];
            let lag = "hookline_stage_consumer_lag_records";
            sum(
                sender,
                "hookline_sender_attempts_total",
                &["result=\"delivered\""],
            ) >= deliveries
                && sum(tracking, "hookline_stage_consumed_records_total", &[]) >= tracking_in
                && lag_partitions(tracking, lag, ".tracking\"") == PARTITIONS as usize
                && lag_partitions(sender, lag, ".deliveries\"") == PARTITIONS as usize
                && sum(tracking, lag, &[]) == 0.0
                && sum(sender, lag, &["deliveries"]) == 0.0
                && KAFKA_CLIENTS.iter().all(|(stage, client)| {
                    scrapes[stage].keys().any(|k| {
                        k.starts_with("hookline_kafka_broker_rtt_seconds{")
                            && k.contains(&format!("client=\"{client}\""))
                    })
                })
        };
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not quiescent within 120 s; scrapes: {scrapes:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let tracking = &scrapes["hookline-tracking"];
    let sender = &scrapes["hookline-sender"];
    let consumed = "hookline_stage_consumed_records_total";
    // The tracking stage: every record read ended routed, filtered or quarantined.
    assert_eq!(
        sum(tracking, consumed, &["stage=\"tracking\""]),
        tracking_in
    );
    assert_eq!(
        sum(tracking, "hookline_stage_quarantined_records_total", &[]),
        HOSTILE as f64
    );
    assert_eq!(
        sum(tracking, "hookline_stage_filtered_records_total", &[]),
        UNSUBSCRIBED_CLICKS as f64
    );
    assert_eq!(
        sum(tracking, "hookline_stage_routed_deliveries_total", &[]),
        deliveries
    );
    assert_eq!(
        sum(tracking, "hookline_routing_subscriptions", &[]),
        SUBSCRIPTIONS as f64
    );
    // The sender: every delivery read was delivered (the endpoint answers 200), each once, and
    // each delivered attempt is in the latency histogram; nothing is in flight at rest.
    assert_eq!(sum(sender, consumed, &["stage=\"sender\""]), deliveries);
    assert_eq!(
        sum(
            sender,
            "hookline_sender_attempts_total",
            &["result=\"delivered\""]
        ),
        deliveries
    );
    assert_eq!(
        sum(sender, "hookline_sender_attempts_total", &[]),
        deliveries,
        "no attempt other than the delivered ones"
    );
    assert_eq!(
        sum(
            sender,
            "hookline_sender_event_to_delivery_seconds_count",
            &["attempt=\"first\""]
        ),
        deliveries
    );
    assert_eq!(sum(sender, "hookline_sender_queued_deliveries", &[]), 0.0);
    assert!(sender.contains_key("hookline_sender_queued_deliveries"));
    // librdkafka's view of the broker, per client: a round trip was measured, and nothing is
    // left waiting at rest.
    for (stage, client) in KAFKA_CLIENTS {
        let c = format!("client=\"{client}\"");
        let s = &scrapes[stage];
        assert!(
            sum(
                s,
                "hookline_kafka_broker_rtt_seconds",
                &[&c, "quantile=\"0.99\""]
            ) > 0.0,
            "{client}: no round trip measured"
        );
        assert_eq!(
            sum(
                s,
                "hookline_kafka_client_queue_messages",
                &[&c, "queue=\"producer\""]
            ),
            0.0,
            "{client}"
        );
    }
    assert_eq!(sum(sender, "hookline_sender_attempts_in_flight", &[]), 0.0);
    assert_eq!(sum(sender, "hookline_sender_open_circuits", &[]), 0.0);
    assert_eq!(
        sum(sender, "hookline_sender_retries_scheduled_total", &[]),
        0.0
    );
    // Rebalances and restores: each join stage was assigned every partition and restored it.
    for (name, stage) in [
        ("hookline-tracking", "tracking"),
        ("hookline-profiles", "profiles"),
    ] {
        let s = &scrapes[name];
        let assigned = format!("stage=\"{stage}\"");
        assert!(
            sum(
                s,
                "hookline_stage_rebalances_total",
                &[&assigned, "event=\"assigned\""]
            ) >= PARTITIONS as f64,
            "{name}"
        );
        assert!(
            sum(s, "hookline_table_restore_duration_seconds_count", &[]) >= 1.0,
            "{name}"
        );
        assert_eq!(
            sum(s, "hookline_table_restoring_partitions", &[]),
            0.0,
            "{name}"
        );
    }
    let received = receiver.count() as f64;
    assert!(received >= deliveries, "the receiver saw {received} POSTs");
    // Every stage says what it is and how much it costs.
    for (name, s) in &scrapes {
        assert_eq!(sum(s, "hookline_build_info", &[]), 1.0, "{name}");
        assert!(sum(s, "process_resident_memory_bytes", &[]) > 0.0, "{name}");
    }

    // Cardinality: bounded labels only, never a subscription id or a URL, however many
    // subscriptions there are.
    for (name, s) in &scrapes {
        assert!(s.len() < 400, "{name} exports {} series", s.len());
        let leaking: Vec<&String> = s
            .keys()
            .filter(|k| k.contains("sub-") || k.contains("http://") || k.contains("1001"))
            .collect();
        assert!(leaking.is_empty(), "{name}: unbounded labels {leaking:?}");
    }
    drop(stages);
    let _ = std::fs::remove_dir_all(&dir);
}

/// How many partitions of the topic ending in `topic_suffix` have a `name` series.
fn lag_partitions(s: &BTreeMap<String, f64>, name: &str, topic_suffix: &str) -> usize {
    s.keys()
        .filter(|k| k.starts_with(&format!("{name}{{")) && k.contains(topic_suffix))
        .count()
}
