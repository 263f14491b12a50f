//! The sender under failure: ordered delivery across a failure, retries surviving a restart,
//! dead letters and replay, and the circuit breaker's open → half-open → closed cycle.

use std::time::Duration;

use hookline_integration_tests::{
    committed_and_end, count, fixtures, produce, read_to_end, wait_quiescent, Pipeline,
};
use hookline_testkit::topics::json;
use hookline_testkit::{eventually, read_until, Broker, Receiver, TestTopics};
use serde_json::{json, Value};

fn key(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("hookline-it-{}-{name}.pem", std::process::id()))
}

fn subscription(id: &str, url: &str, extra: Value) -> (String, Value) {
    fixtures::keyed_subscription(id, url, extra)
}

fn clicks(ids: &[String]) -> Vec<(String, Value)> {
    ids.iter()
        .map(|id| {
            (
                "12:4711".to_owned(),
                json!({"id": id, "type": "click", "account": "1001", "database": "12", "profile": "4711",
                       "timestamp": "2026-11-25T10:15:00Z", "tags": []}),
            )
        })
        .collect()
}

fn event_ids(r: &Receiver) -> Vec<String> {
    r.received()
        .iter()
        .map(|p| {
            serde_json::from_slice::<Value>(&p.body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Every outcome up to the topic's end offsets: call once [`wait_quiescent`] returned.
fn outcomes_to_end(t: &TestTopics) -> Vec<Value> {
    read_to_end(t, &t.topics.outcomes)
        .iter()
        .map(json)
        .collect()
}

/// The outcomes read until there are `at_least`: a wait for them, not a count.
fn results(t: &TestTopics, at_least: usize) -> Vec<Value> {
    read_until(
        &t.settings,
        &t.topics.outcomes,
        Duration::from_secs(60),
        |ms| ms.len() >= at_least,
    )
    .iter()
    .map(json)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ordered_subscription_keeps_order_across_a_failure() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let receiver = Receiver::start(200).await;
    receiver.script(vec![(500, vec![])]);
    produce(
        &t,
        &t.topics.subscriptions,
        &[subscription(
            "ordered",
            &receiver.url("/o"),
            json!({"ordered": true}),
        )],
    )
    .await;
    let pipeline = Pipeline::start(&t, &key("ordered"), &["--retry-schedule", "1s"]).await;
    let ids: Vec<String> = (1..=5).map(|i| format!("evt-{i}")).collect();
    produce(&t, &t.topics.tracking, &clicks(&ids)).await;
    // Once every stage has committed its input, every POST and outcome is in: count exactly.
    wait_quiescent(&t, Duration::from_secs(60)).await;
    assert_eq!(
        event_ids(&receiver),
        ["evt-1", "evt-1", "evt-2", "evt-3", "evt-4", "evt-5"],
        "the failed first delivery is retried before anything after it is sent, once each"
    );
    let outcomes = outcomes_to_end(&t);
    let results: Vec<&str> = outcomes
        .iter()
        .map(|o| o["result"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        results,
        [
            "retrying",
            "delivered",
            "delivered",
            "delivered",
            "delivered",
            "delivered"
        ],
        "one outcome per POST: {outcomes:#?}"
    );
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduled_retry_survives_a_sender_restart() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let receiver = Receiver::start(200).await;
    receiver.script(vec![(503, vec![("retry-after".into(), "4".into())])]);
    produce(
        &t,
        &t.topics.subscriptions,
        &[subscription("restart", &receiver.url("/r"), json!({}))],
    )
    .await;
    let k = key("restart");
    let first = Pipeline::start(&t, &k, &[]).await;
    produce(&t, &t.topics.tracking, &clicks(&["evt-restart".to_owned()])).await;
    let outcomes = results(&t, 1);
    assert_eq!(outcomes[0]["result"], "retrying");
    assert_eq!(outcomes[0]["http_status"], 503);
    // Stop while the retry waits for its Retry-After, then start a fresh sender.
    first.stop().await;
    assert_eq!(receiver.count(), 1);
    let second = Pipeline::start(&t, &k, &[]).await;
    results(&t, 2);
    wait_quiescent(&t, Duration::from_secs(60)).await;
    let outcomes = outcomes_to_end(&t);
    assert_eq!(
        outcomes.len(),
        2,
        "two attempts, two outcomes: {outcomes:#?}"
    );
    assert_eq!(outcomes[1]["result"], "delivered", "{outcomes:#?}");
    assert_eq!(outcomes[1]["attempt"], 2);
    assert_eq!(receiver.count(), 2, "one POST per attempt");
    let posts = receiver.received();
    assert_eq!(
        posts[0].header("x-hookline-delivery"),
        posts[1].header("x-hookline-delivery")
    );
    assert_eq!(posts[1].header("x-hookline-attempt"), Some("2"));
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letters_are_replayed_through_the_normal_path() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let receiver = Receiver::start(500).await;
    produce(
        &t,
        &t.topics.subscriptions,
        &[subscription("dl", &receiver.url("/dl"), json!({}))],
    )
    .await;
    let pipeline = Pipeline::start(
        &t,
        &key("dl"),
        &["--retry-schedule", "1s", "--max-attempts", "2"],
    )
    .await;
    produce(
        &t,
        &t.topics.tracking,
        &clicks(&["evt-dl-1".to_owned(), "evt-dl-2".to_owned()]),
    )
    .await;
    // The counter moves once a dead letter is acknowledged by the broker, after the outcome of
    // the attempt that caused it: at two, everything of the first round is written.
    let exhausted = eventually(Duration::from_secs(60), || {
        count(&pipeline.sender_metrics.dead_letters, &["exhausted"]) == 2
    })
    .await;
    assert!(exhausted, "both deliveries exhaust their attempts");
    let dead = read_to_end(&t, &t.topics.dead_letter);
    assert_eq!(dead.len(), 2, "one dead letter per delivery");
    let d = json(&dead[0]);
    assert_eq!(d["attempts"], 2);
    assert_eq!(d["last_status"], 500);

    receiver.set_default_status(200);
    let filter = hookline_replay::Filter {
        subscription: Some("other".into()),
        since: None,
        until: None,
    };
    assert_eq!(
        hookline_replay::replay(&t.settings, &t.topics, &filter, false)
            .await
            .unwrap(),
        0
    );
    let filter = hookline_replay::Filter {
        subscription: Some("dl".into()),
        since: None,
        until: None,
    };
    assert_eq!(
        hookline_replay::replay(&t.settings, &t.topics, &filter, false)
            .await
            .unwrap(),
        2
    );
    // The replayed deliveries succeed at their first attempt, and the sender commits a delivery
    // only after its outcome is acknowledged: once all four are committed, count exactly.
    let sender_group = format!("{}sender", t.prefix);
    let replayed = eventually(Duration::from_secs(60), || {
        committed_and_end(&t, &sender_group, &t.topics.deliveries) == (4, 4)
    })
    .await;
    assert!(
        replayed,
        "the replayed deliveries are sent: {:?}",
        committed_and_end(&t, &sender_group, &t.topics.deliveries)
    );
    let outcomes: Vec<Value> = read_to_end(&t, &t.topics.outcomes)
        .iter()
        .map(json)
        .collect();
    assert_eq!(
        outcomes.len(),
        6,
        "two attempts each, then the replay: {outcomes:#?}"
    );
    let delivered: Vec<&Value> = outcomes
        .iter()
        .filter(|o| o["result"] == "delivered")
        .collect();
    assert_eq!(delivered.len(), 2, "{outcomes:#?}");
    let dead_ids: Vec<&str> = dead
        .iter()
        .map(|m| {
            json(m)["delivery"]["delivery_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .map(|s| Box::leak(s.into_boxed_str()) as &str)
        .collect();
    for o in delivered {
        assert!(
            dead_ids.contains(&o["delivery_id"].as_str().unwrap()),
            "replay keeps the delivery id"
        );
    }
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn circuit_opens_probes_and_closes() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let receiver = Receiver::start(500).await;
    produce(
        &t,
        &t.topics.subscriptions,
        &[subscription(
            "cb",
            &receiver.url("/cb"),
            json!({"limits": {"max_in_flight": 1, "per_second": 50}}),
        )],
    )
    .await;
    let pipeline = Pipeline::start(
        &t,
        &key("cb"),
        &[
            "--retry-schedule",
            "1s",
            "--max-attempts",
            "20",
            "--breaker-cool-down",
            "2s",
        ],
    )
    .await;
    let ids: Vec<String> = (1..=12).map(|i| format!("evt-cb-{i}")).collect();
    produce(&t, &t.topics.tracking, &clicks(&ids)).await;
    let m = &pipeline.sender_metrics;
    assert!(
        eventually(Duration::from_secs(60), || count(
            &m.circuit_transitions,
            &["open"]
        ) >= 1)
        .await,
        "the breaker opens after 10 failed attempts"
    );
    // The probe comes a cool-down (2 s) later: it finds the endpoint recovered.
    receiver.set_default_status(200);
    let settled = eventually(Duration::from_secs(60), || {
        count(&m.attempts, &["delivered"]) == 12
    })
    .await;
    assert!(settled, "every delivery arrives once the endpoint recovers");
    wait_quiescent(&t, Duration::from_secs(60)).await;
    assert_eq!(
        ["open", "half-open", "closed"].map(|to| count(&m.circuit_transitions, &[to])),
        [1, 1, 1],
        "one cycle: open, half-open, closed"
    );
    assert!(
        count(&m.attempts, &["circuit-open"]) >= 1,
        "deliveries were held back while open"
    );

    // The attempts that reached the endpoint (an HTTP status), in the order they started,
    // against the circuit's open period as persisted on `endpoint-health`. Times are the
    // sender's own clock, with millisecond precision: 50 ms of tolerance.
    let tolerance = time::Duration::milliseconds(50);
    let at = |o: &Value, field: &str| {
        hookline_model::timefmt::parse(o[field].as_str().unwrap()).unwrap()
    };
    let mut posted: Vec<Value> = outcomes_to_end(&t)
        .into_iter()
        .filter(|o| !o["http_status"].is_null())
        .collect();
    posted.sort_by_key(|o| at(o, "started_at"));
    assert_eq!(posted.len(), receiver.count(), "one outcome per POST");
    assert!(posted.len() > 11, "{posted:#?}");
    assert!(
        posted[..10]
            .iter()
            .all(|o| o["http_status"] == 500 && o["result"] == "retrying"),
        "ten failures open the circuit: {posted:#?}"
    );
    let health = health_records(&t, "cb", |h| h.iter().any(|h| h["state"] == "open"));
    let open = health.iter().find(|h| h["state"] == "open").unwrap();
    let (opened_at, open_until) = (at(open, "opened_at"), at(open, "open_until"));
    let (tenth, probe, after) = (&posted[9], &posted[10], &posted[11]);
    assert!(
        at(tenth, "finished_at") <= opened_at + tolerance,
        "the tenth failure opened the circuit at {opened_at}: {tenth:#}"
    );
    // Nothing is sent while the circuit is open: the next POST after the tenth failure is the
    // probe, at the end of the cool-down.
    assert!(
        at(probe, "started_at") >= open_until - tolerance,
        "a POST at {} while the circuit was open until {open_until}: {probe:#}",
        at(probe, "started_at")
    );
    assert_eq!(
        probe["result"], "delivered",
        "the probe closed it: {probe:#}"
    );
    // Half-open sends exactly one probe: the next POST starts only once the probe is answered.
    assert!(
        at(after, "started_at") >= at(probe, "finished_at") - tolerance,
        "a second POST while the probe was out: {after:#}, probe {probe:#}"
    );
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_keeps_the_old_key_published_until_it_expires() {
    let dir = std::env::temp_dir().join(format!("hookline-it-{}-rotation", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("signing.pem");
    let old = hookline_signing::SigningKey::load_or_generate(&path, None).unwrap();
    let old_sig = old.sign(b"signed before the switch");
    let new =
        hookline_signing::rotation::rotate(&path, None, None, Duration::from_secs(3_600)).unwrap();

    // The admin API reads its tables from Kafka, so it needs a broker even to publish keys.
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let addr = hookline_integration_tests::start_admin(&t, &path, &[], None, &shutdown).await;
    let client = hookline_outbound::HttpClient::new(
        hookline_outbound::NetworkGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
        hookline_outbound::HttpOptions {
            max_response_bytes: 1 << 20,
            ..Default::default()
        },
    );
    let resp = client
        .request(
            http::Method::GET,
            &format!("http://{addr}/v1/keys"),
            vec![],
            bytes::Bytes::new(),
        )
        .await
        .unwrap();
    let keys: Vec<Value> = serde_json::from_slice(&resp.body).unwrap();
    // The RSA keys (the Ed25519 key of the Standard Webhooks profile is listed after them).
    let ids: Vec<&str> = keys
        .iter()
        .filter(|k| k["algorithm"] == "rsa-sha256")
        .map(|k| k["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [new.key_id(), old.key_id()],
        "new key first, the retired one still published"
    );
    assert!(keys[1]["expires_at"].is_string());
    let (_, der) =
        hookline_signing::keys::decode_pem(keys[1]["public_key_pem"].as_str().unwrap()).unwrap();
    verify_independently(&der, b"signed before the switch", &old_sig);
    shutdown.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Verifies with RustCrypto's rsa, independently of the project's own verifier.
fn verify_independently(spki_der: &[u8], msg: &[u8], sig: &[u8]) {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(
        rsa::PublicKey::from_public_key_der(spki_der).unwrap(),
    );
    vk.verify(msg, &rsa::pkcs1v15::Signature::try_from(sig).unwrap())
        .expect("old signature verifies");
}

/// The endpoint's health records (`endpoint-health`) of `subscription`, once `enough` holds.
fn health_records(
    t: &TestTopics,
    subscription: &str,
    enough: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let of = |ms: &[rdkafka::message::OwnedMessage]| -> Vec<Value> {
        ms.iter()
            .map(json)
            .filter(|h| h["subscription_id"] == subscription)
            .collect()
    };
    of(&read_until(
        &t.settings,
        &t.topics.endpoint_health,
        Duration::from_secs(60),
        |ms| enough(&of(ms)),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn breaker_state_and_failing_since_survive_a_restart() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let receiver = Receiver::start(500).await;
    produce(
        &t,
        &t.topics.subscriptions,
        &[subscription(
            "health",
            &receiver.url("/h"),
            json!({"limits": {"max_in_flight": 1, "per_second": 50}}),
        )],
    )
    .await;
    let k = key("health");
    let first = Pipeline::start(
        &t,
        &k,
        &[
            "--retry-schedule",
            "1s",
            "--max-attempts",
            "50",
            "--breaker-cool-down",
            "2s",
            "--disable-after",
            "1h",
        ],
    )
    .await;
    let ids: Vec<String> = (1..=12).map(|i| format!("evt-h-{i}")).collect();
    produce(&t, &t.topics.tracking, &clicks(&ids)).await;

    // The breaker opens; the change is persisted with since when the endpoint has failed.
    let opened = health_records(&t, "health", |h| h.iter().any(|h| h["state"] == "open"));
    let open = opened.iter().find(|h| h["state"] == "open").unwrap();
    let failing_since = open["failing_since"]
        .as_str()
        .expect("failing since")
        .to_owned();
    assert!(
        open["open_until"].is_string() && open["opened_at"].is_string(),
        "{open:#}"
    );
    assert_eq!(
        opened[0]["failing_since"], failing_since,
        "the first record is the endpoint starting to fail: {opened:#?}"
    );
    first.stop().await;
    let posts_before = receiver.count();
    // Everything the first sender wrote (it has stopped: nothing more comes).
    let outcomes_before = read_to_end(&t, &t.topics.outcomes).len();

    // Restart with a disable-after that has already passed since the first failure. Only a
    // preserved clock disables at the first attempt after the restart; a reset one would start
    // counting from that attempt and retry.
    let since = hookline_model::timefmt::parse(&failing_since).unwrap();
    let now = hookline_model::timefmt::parse(&hookline_model::timefmt::now_rfc3339()).unwrap();
    let passed = now - since;
    let disable_after = 3.0;
    if passed.as_seconds_f64() < disable_after {
        tokio::time::sleep(Duration::from_secs_f64(
            disable_after - passed.as_seconds_f64() + 0.2,
        ))
        .await;
    }
    let second = Pipeline::start(
        &t,
        &k,
        &[
            "--retry-schedule",
            "1s",
            "--max-attempts",
            "50",
            "--breaker-cool-down",
            "2s",
            "--disable-after",
            "3s",
        ],
    )
    .await;
    let all = read_until(
        &t.settings,
        &t.topics.outcomes,
        Duration::from_secs(60),
        |ms| {
            ms.iter()
                .skip(outcomes_before)
                .any(|m| json(m)["result"] == "disabled")
        },
    );
    let after: Vec<Value> = all.iter().skip(outcomes_before).map(json).collect();
    let first_tried = after
        .iter()
        .find(|o| !o["http_status"].is_null())
        .unwrap_or_else(|| panic!("an attempt after the restart: {after:#?}"));
    assert_eq!(
        first_tried["result"], "disabled",
        "the first attempt after the restart finds the endpoint failing for longer than 3 s: {after:#?}"
    );
    assert!(
        after
            .iter()
            .take_while(|o| o["http_status"].is_null())
            .all(|o| o["result"] == "circuit-open"),
        "until then the restored circuit stayed open: {after:#?}"
    );
    // "Then nothing": counted once the sender has finished with every delivery and retry (the
    // rest of the backlog is skipped as disabled), not right after the disable was seen.
    wait_quiescent(&t, Duration::from_secs(90)).await;
    let after: Vec<Value> = outcomes_to_end(&t)
        .into_iter()
        .skip(outcomes_before)
        .collect();
    assert_eq!(
        after.iter().filter(|o| !o["http_status"].is_null()).count(),
        1,
        "one POST after the restart, the probe that disabled: {after:#?}"
    );
    assert_eq!(
        receiver.count(),
        posts_before + 1,
        "one probe after the restart, then nothing"
    );
    let records = health_records(&t, "health", |h| h.len() > opened.len());
    assert!(
        records
            .iter()
            .all(|h| h["failing_since"] == failing_since.as_str()),
        "every record after the first failure keeps its time: {records:#?}"
    );
    second.stop().await;
}
