//! End to end on a real local broker: profile + active subscription + click → exactly one
//! signed POST with the enriched body, verified against `GET /v1/keys`, and an outcome record.
//! Malformed input lands in quarantine with reasons while good records around it are delivered,
//! and every input record is accounted for.

use std::time::Duration;

use hookline_integration_tests::{
    committed_and_end, count, fixtures, key_path, produce, produce_raw, read_to_end,
    wait_quiescent, Pipeline, RawRecord,
};
use hookline_testkit::topics::json;
use hookline_testkit::{eventually, read_until, Broker, Receiver, TestTopics};
use rdkafka::message::Message;
use serde_json::json;

fn subscription(id: &str, url: &str, events: &[&str]) -> serde_json::Value {
    fixtures::subscription(id, url, json!({"events": events}))
}

fn profile_create() -> serde_json::Value {
    json!({"id": "chg-1", "account": "1001", "database": "12", "profile": "4711", "collection": null,
           "subprofile": null, "action": "create", "trigger": "rest", "timestamp": "2026-11-25T10:00:00Z",
           "parameters": {}, "fields": {"name": "Jane Doe", "email": "jane@example.com", "city": "Utrecht"},
           "interests": ["vip", "newsletter"]})
}

fn click(id: &str) -> serde_json::Value {
    json!({"id": id, "type": "click", "account": "1001", "database": "12", "profile": "4711",
           "collection": null, "subprofile": null, "mailing": "m-20261125-01",
           "timestamp": "2026-11-25T10:15:00Z", "ip": "203.0.113.7", "useragent": "Mozilla/5.0",
           "referer": "https://mail.example/", "headers": {"User-Agent": "Mozilla/5.0", "Accept-Language": "nl"},
           "original": "https://shop.example/offer", "tags": ["black-friday"]})
}

/// Waits until the profiles stage has written the profile to the table topic.
fn wait_for_profile(t: &TestTopics) {
    let rows = read_until(
        &t.settings,
        &t.topics.profiles,
        Duration::from_secs(60),
        |ms| ms.iter().any(|m| m.key() == Some(b"12:4711".as_slice())),
    );
    assert!(
        rows.iter().any(|m| m.key() == Some(b"12:4711".as_slice())),
        "profile reached the table"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn click_becomes_one_signed_enriched_post_and_a_delivered_outcome() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let receiver = Receiver::start(200).await;
    let key = key_path("click");
    produce(
        &t,
        &t.topics.subscriptions,
        &[(
            "sub-1".into(),
            subscription("sub-1", &receiver.url("/hook.php?x=1"), &["click"]),
        )],
    )
    .await;
    produce(
        &t,
        &t.topics.profile_changes,
        &[("12:4711".into(), profile_create())],
    )
    .await;
    let pipeline = Pipeline::start(&t, &key, &[]).await;
    wait_for_profile(&t);
    produce(
        &t,
        &t.topics.tracking,
        &[("12:4711".into(), click("evt-click-1"))],
    )
    .await;

    // The outcome is written after the POST is answered, and each stage commits an input only
    // after what it wrote for it is acknowledged: once every stage has committed its input to
    // the end (the profile create and the click routed, the delivery sent), nothing more will
    // be written or POSTed. Then count the deliveries, outcomes and POSTs exactly.
    let sender_group = format!("{}sender", t.prefix);
    let sent = eventually(Duration::from_secs(60), || {
        let (committed, end) = committed_and_end(&t, &sender_group, &t.topics.deliveries);
        committed == end && end > 0
    })
    .await;
    assert!(sent, "the sender commits the delivery");
    wait_quiescent(&t, Duration::from_secs(60)).await;
    assert_eq!(
        read_to_end(&t, &t.topics.deliveries).len(),
        1,
        "one delivery: the click's (the profile create matches no click subscription)"
    );
    let outcomes = read_to_end(&t, &t.topics.outcomes);
    assert_eq!(outcomes.len(), 1, "one outcome for one attempt");
    let outcome = json(&outcomes[0]);
    assert_eq!(outcome["result"], "delivered");
    assert_eq!(outcome["attempt"], 1);
    assert_eq!(outcome["http_status"], 200);
    assert_eq!(outcome["event_id"], "evt-click-1");
    assert_eq!(
        outcomes[0].key(),
        Some(b"sub-1".as_slice()),
        "outcomes are keyed by subscription"
    );
    let posts = receiver.received();
    assert_eq!(posts.len(), 1, "exactly one POST, for the one delivery");
    let post = &posts[0];
    assert_eq!(post.method, "POST");
    assert_eq!(post.path_and_query, "/hook.php?x=1");
    assert_eq!(
        post.header("x-hookline-delivery"),
        outcome["delivery_id"].as_str()
    );
    assert_eq!(post.header("x-hookline-attempt"), Some("1"));
    assert_eq!(post.header("x-copernica-id"), Some("account_1001"));
    assert!(post.header("user-agent").unwrap().starts_with("Hookline/"));

    let body: serde_json::Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(body["id"], "evt-click-1");
    assert_eq!(body["type"], "click");
    assert_eq!(body["recipient"], "jane@example.com");
    assert_eq!(body["fields"]["name"], "Jane Doe");
    assert_eq!(body["fields"]["city"], "Utrecht");
    assert_eq!(body["interests"], json!(["vip", "newsletter"]));
    assert_eq!(body["tags"], json!(["black-friday"]));
    assert_eq!(body["ip"], "203.0.113.7");
    assert_eq!(body["headers"]["Accept-Language"], "nl");
    assert_eq!(body["original"], "https://shop.example/offer");
    assert_eq!(body["timestamp"], "2026-11-25 10:15:00");
    assert_eq!(body["database"], "12");
    assert_eq!(body["profile"], "4711");

    // The signature verifies against the key the admin API publishes.
    let client = hookline_outbound::HttpClient::new(
        hookline_outbound::NetworkGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
        hookline_outbound::HttpOptions {
            max_response_bytes: 1 << 20,
            ..Default::default()
        },
    );
    let keys = client
        .request(
            http::Method::GET,
            &format!("http://{}/v1/keys", pipeline.admin),
            vec![],
            bytes::Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(keys.status, 200);
    let keys: serde_json::Value = serde_json::from_slice(&keys.body).unwrap();
    let published = &keys[0];
    assert_eq!(published["algorithm"], "rsa-sha256");
    let (_, der) =
        hookline_signing::keys::decode_pem(published["public_key_pem"].as_str().unwrap()).unwrap();
    let key_id = hookline_signing::verify_request(
        "POST",
        &post.path_and_query,
        |n| post.header(n),
        &post.body,
        |id| (id == published["key_id"].as_str().unwrap()).then(|| der.clone()),
    )
    .expect("signature verifies with the published key");
    assert_eq!(key_id, published["key_id"].as_str().unwrap());

    // And independently of the project's verifier: RustCrypto's rsa over the documented string.
    let sig = hookline_signing::cavage::parse_signature_header(post.header("signature").unwrap())
        .unwrap();
    assert_eq!(
        sig.headers,
        [
            "(request-target)",
            "host",
            "date",
            "x-copernica-id",
            "digest",
            "x-nonce"
        ]
    );
    let signing_string = sig
        .headers
        .iter()
        .map(|h| match h.as_str() {
            "(request-target)" => format!("(request-target): post {}", post.path_and_query),
            other => format!("{other}: {}", post.header(other).unwrap()),
        })
        .collect::<Vec<_>>()
        .join("\n");
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(
        rsa::PublicKey::from_public_key_der(&der).unwrap(),
    );
    vk.verify(
        signing_string.as_bytes(),
        &rsa::pkcs1v15::Signature::try_from(sig.signature.as_slice()).unwrap(),
    )
    .expect("independent RSA verification");
    use base64::Engine;
    use sha2::Digest;
    let digest = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&post.body));
    assert_eq!(post.header("digest").unwrap(), format!("sha-256={digest}"));

    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_records_are_quarantined_and_every_record_is_accounted_for() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let receiver = Receiver::start(200).await;
    let key = key_path("quarantine");
    produce(
        &t,
        &t.topics.subscriptions,
        &[(
            "sub-q".into(),
            subscription("sub-q", &receiver.url("/in"), &["click"]),
        )],
    )
    .await;
    let pipeline = Pipeline::start(&t, &key, &[]).await;

    let good1 = serde_json::to_vec(&click("evt-good-1")).unwrap();
    let good2 = serde_json::to_vec(&click("evt-good-2")).unwrap();
    let mut other_db = click("evt-filtered");
    other_db["database"] = json!("99");
    let filtered = serde_json::to_vec(&other_db).unwrap();
    let mut wrong_type = click("evt-bad-type");
    wrong_type["type"] = json!("klik");
    let wrong_type = serde_json::to_vec(&wrong_type).unwrap();
    let mut missing = click("evt-missing");
    missing.as_object_mut().unwrap().remove("profile");
    let missing = serde_json::to_vec(&missing).unwrap();
    let mut wrong_kind = click("evt-int-db");
    wrong_kind["database"] = json!(12);
    let wrong_kind = serde_json::to_vec(&wrong_kind).unwrap();
    let oversized = {
        let mut v = click("evt-huge");
        v["referer"] = json!("x".repeat(100 * 1024));
        serde_json::to_vec(&v).unwrap()
    };
    let k: &[u8] = b"12:4711";
    let records: Vec<RawRecord<'_>> = vec![
        (Some(k), Some(&good1)),
        (Some(k), Some(b"{not json")),
        (Some(k), Some(b"\xff\xfe\x00garbage")),
        (Some(k), None),
        (Some(k), Some(&wrong_type)),
        (Some(k), Some(&missing)),
        (Some(k), Some(&wrong_kind)),
        (Some(b"12:9999"), Some(&good2)),
        (Some(k), Some(&oversized)),
        (Some(b"99:4711"), Some(&filtered)),
        (Some(k), Some(&good2)),
    ];
    produce_raw(&t, &t.topics.tracking, &records).await;

    // The tracking stage commits an input only after what it wrote for it is acknowledged.
    let tracking_group = format!("{}tracking", t.prefix);
    let handled = eventually(Duration::from_secs(60), || {
        committed_and_end(&t, &tracking_group, &t.topics.tracking) == (11, 11)
    })
    .await;
    assert!(handled, "the tracking stage commits all eleven records");
    let quarantined = read_to_end(&t, &t.topics.quarantine);
    assert_eq!(quarantined.len(), 8, "eight bad records quarantined");
    let reasons: Vec<String> = quarantined
        .iter()
        .map(|m| json(m)["reason"].as_str().unwrap().to_owned())
        .collect();
    for fragment in [
        "not JSON",
        "UTF-8",
        "null value",
        "klik",
        "profile",
        "database",
        "does not match",
        "exceeds the limit",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(fragment)),
            "a reason mentions {fragment:?}: {reasons:#?}"
        );
    }
    let q = json(&quarantined[0]);
    assert_eq!(q["stage"], "tracking");
    assert_eq!(q["source_topic"], t.topics.tracking.as_str());
    assert!(q["value_base64"].is_string() || q["value_base64"].is_null());

    // The good records around them are delivered.
    let sender_group = format!("{}sender", t.prefix);
    let sent = eventually(Duration::from_secs(60), || {
        committed_and_end(&t, &sender_group, &t.topics.deliveries) == (2, 2)
    })
    .await;
    assert!(
        sent,
        "two deliveries, both sent: {:?}",
        committed_and_end(&t, &sender_group, &t.topics.deliveries)
    );
    let outcomes = read_to_end(&t, &t.topics.outcomes);
    assert_eq!(outcomes.len(), 2, "one outcome per good record");
    assert!(
        eventually(Duration::from_secs(10), || count(
            &pipeline.tracking_metrics.consumed,
            &["tracking"]
        ) == 11)
        .await
    );
    let m = &pipeline.tracking_metrics;
    let consumed = count(&m.consumed, &["tracking"]);
    let routed = count(&m.routed, &["tracking"]);
    let filtered = count(&m.filtered, &["tracking"]);
    let quarantined_total: u64 = [
        "json",
        "utf8",
        "null",
        "schema",
        "key",
        "oversized",
        "other",
    ]
    .iter()
    .map(|r| count(&m.quarantined, &["tracking", r]))
    .sum();
    assert_eq!(
        (consumed, routed, filtered, quarantined_total),
        (11, 2, 1, 8)
    );
    assert_eq!(
        routed + filtered + quarantined_total,
        consumed,
        "every input record is accounted for"
    );
    wait_quiescent(&t, Duration::from_secs(60)).await;
    assert_eq!(receiver.count(), 2, "one POST per good record");
    // Consumer lag per partition comes from librdkafka's statistics (every 5 s).
    let lag_exported = eventually(Duration::from_secs(20), || {
        let text = pipeline.tracking_metrics.render();
        text.lines()
            .any(|l| l.starts_with("hookline_stage_consumer_lag_records{") && l.ends_with(" 0"))
    })
    .await;
    assert!(
        lag_exported,
        "lag per partition is exported and reaches 0 once everything is consumed"
    );
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_click_after_a_profile_update_joins_the_updated_profile() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let receiver = Receiver::start(200).await;
    produce(
        &t,
        &t.topics.subscriptions,
        &[(
            "sub-u".into(),
            subscription("sub-u", &receiver.url("/u"), &["click"]),
        )],
    )
    .await;
    let pipeline = Pipeline::start(&t, &key_path("update"), &[]).await;
    produce(
        &t,
        &t.topics.profile_changes,
        &[("12:4711".into(), profile_create())],
    )
    .await;
    wait_for_profile(&t);
    produce(
        &t,
        &t.topics.tracking,
        &[("12:4711".into(), click("evt-before"))],
    )
    .await;
    // The test is ordered on the tracking stage's own progress, not on the order of produce
    // calls: the update is produced only once the stage has committed evt-before (joined and
    // routed, its delivery acknowledged), so evt-before cannot be joined with the update.
    let tracking_group = format!("{}tracking", t.prefix);
    let before_done = eventually(Duration::from_secs(60), || {
        committed_and_end(&t, &tracking_group, &t.topics.tracking) == (1, 1)
    })
    .await;
    assert!(before_done, "the tracking stage commits evt-before");
    let mut update = profile_create();
    update["id"] = json!("chg-2");
    update["action"] = json!("update");
    update["fields"]["name"] = json!("Jane Smith");
    update["interests"] = json!(["vip"]);
    produce(&t, &t.topics.profile_changes, &[("12:4711".into(), update)]).await;
    // The update reaches the table; a click taken up after that must see it.
    let profiles_group = format!("{}profiles", t.prefix);
    let applied = eventually(Duration::from_secs(60), || {
        committed_and_end(&t, &profiles_group, &t.topics.profile_changes) == (2, 2)
    })
    .await;
    assert!(
        applied,
        "the profiles stage commits the create and the update"
    );
    assert_eq!(
        read_to_end(&t, &t.topics.profiles).len(),
        2,
        "one table record per change"
    );
    // And evt-after only once the tracking stage has applied both table rows to its own copy
    // of the table (its table_records counter moves after a row is applied).
    let m = &pipeline.tracking_metrics;
    let table_applied = eventually(Duration::from_secs(60), || {
        count(&m.table_records, &["profiles"]) == 2
    })
    .await;
    assert!(
        table_applied,
        "the tracking stage applies the create and the update ({} rows)",
        count(&m.table_records, &["profiles"])
    );
    produce(
        &t,
        &t.topics.tracking,
        &[("12:4711".into(), click("evt-after"))],
    )
    .await;
    wait_quiescent(&t, Duration::from_secs(60)).await;
    assert_eq!(receiver.count(), 2, "one POST per click");
    let bodies: Vec<serde_json::Value> = receiver
        .received()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let by_id = |id: &str| bodies.iter().find(|b| b["id"] == id).unwrap().clone();
    assert_eq!(by_id("evt-before")["fields"]["name"], "Jane Doe");
    assert_eq!(by_id("evt-after")["fields"]["name"], "Jane Smith");
    assert_eq!(by_id("evt-after")["interests"], json!(["vip"]));
    pipeline.stop().await;
}
