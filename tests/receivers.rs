//! The receiver examples in `docs/receivers/` (PHP, Node.js, Python) against the real pipeline:
//! each runs as a child process on loopback, fetches the keys from the admin API, and must
//! verify the signed POSTs Hookline sends it (PHP in both the `form` and the `json` format)
//! and print the delivery. Then each gets signed POSTs straight from the test: an untouched
//! one (accepted) and three forgeries (rejected with 401): a body changed after signing, a
//! changed body with a matching `Digest`, and a stale `Date`.
//!
//! The Standard Webhooks example (`standard-webhooks-verify.py`) gets POSTs from a
//! `"signature": "standard-webhooks"` subscription straight from the sender, and the two attempts
//! (500, then 200) of a second one, captured and then replayed to it: same `webhook-id`, fresh
//! timestamp and signature, both verified; a changed body and a stale timestamp are rejected.
//!
//! `receivers/isolation.rs`: a test webhook made by one account, captured and replayed to a
//! receiver of another account, verifies for neither profile there (and does for its own).
//!
//! A language whose runtime is missing here is skipped, reported by name in the `make test`
//! summary (`SKIPPED-RUNTIME:` lines, `hookline_integration_tests::skip_for_missing_runtime`):
//! `php` with the openssl extension, `node`, `python3` with `cryptography`. CI sets
//! `HOOKLINE_REQUIRE_RUNTIMES=1`, which makes a missing runtime fail the test instead.

#[path = "receivers/example.rs"]
mod example;
#[path = "receivers/isolation.rs"]
mod isolation;

use std::time::{Duration, SystemTime};

use example::{free_port, temp_dir, Example, Lang};

use hookline_integration_tests::{fixtures, produce, read_to_end, wait_quiescent, Pipeline};
use hookline_signing::cavage::{digest_header, new_nonce, sign_request_at};
use hookline_signing::standard_webhooks;
use hookline_signing::{RequestToSign, SigningKey};
use hookline_testkit::topics::json;
use hookline_testkit::{read_until, Broker, Receiver, TestTopics};
use http::{HeaderName, HeaderValue};
use rdkafka::message::Message;
use serde_json::{json, Value};

const CLICK_ID: &str = "evt-receiver-click";

fn subscription(id: &str, url: &str, format: &str) -> Value {
    fixtures::subscription(id, url, json!({"format": format}))
}

fn profile_create() -> Value {
    json!({"id": "chg-rcv-1", "account": "1001", "database": "12", "profile": "4711", "collection": null,
           "subprofile": null, "action": "create", "trigger": "rest", "timestamp": "2026-11-25T10:00:00Z",
           "parameters": {}, "fields": {"name": "Jane Doe", "email": "jane@example.com"},
           "interests": ["vip"]})
}

fn click() -> Value {
    json!({"id": CLICK_ID, "type": "click", "account": "1001", "database": "12", "profile": "4711",
           "collection": null, "subprofile": null, "mailing": "m-20261125-01",
           "timestamp": "2026-11-25T10:15:00Z", "ip": "203.0.113.7", "useragent": "Mozilla/5.0",
           "referer": "https://mail.example/", "headers": {"User-Agent": "Mozilla/5.0"},
           "original": "https://shop.example/offer?a=1&b=2", "tags": ["black-friday"]})
}

/// How a direct POST is forged.
#[derive(Debug, Clone, Copy)]
enum Forgery {
    /// None: signed as Hookline signs.
    Genuine,
    /// One body byte changed after signing.
    AlteredBody,
    /// One body byte changed and `Digest` recomputed for it: only the signature can tell.
    AlteredBodyNewDigest,
    /// Signed five minutes ago.
    StaleDate,
}

/// Signs a JSON body for `example` with `key` as the sender does, forges it as asked, POSTs
/// it, and returns the status and the answer's text.
async fn post_direct(
    client: &hookline_outbound::HttpClient,
    key: &SigningKey,
    example: &Example,
    forgery: Forgery,
    delivery: &str,
) -> (u16, String) {
    let path = format!("/direct?case={forgery:?}");
    let host = format!("127.0.0.1:{}", example.port);
    let body = format!(
        r#"{{"id":"evt-direct-{}","type":"click"}}"#,
        example.lang.name()
    );
    let at = match forgery {
        Forgery::StaleDate => SystemTime::now() - Duration::from_secs(300),
        _ => SystemTime::now(),
    };
    let signed = sign_request_at(
        key,
        &RequestToSign {
            method: "POST",
            path_and_query: &path,
            host: &host,
            copernica_id: "account_1001",
            body: body.as_bytes(),
        },
        at,
        &new_nonce(),
    );
    let mut sent = body.into_bytes();
    let mut digest = signed.digest.clone();
    if matches!(
        forgery,
        Forgery::AlteredBody | Forgery::AlteredBodyNewDigest
    ) {
        let i = sent.windows(3).position(|w| w == b"evt").unwrap();
        sent[i] = b'E';
    }
    if matches!(forgery, Forgery::AlteredBodyNewDigest) {
        digest = digest_header(&sent);
    }
    let h = |name: &'static str, value: &str| {
        (
            HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        )
    };
    let headers = vec![
        h("host", &host),
        h("date", &signed.date),
        h("content-type", "application/json"),
        h("digest", &digest),
        h("x-nonce", &signed.nonce),
        h("x-copernica-id", "account_1001"),
        h("signature", &signed.signature),
        h("x-hookline-delivery", delivery),
        h("x-hookline-attempt", "1"),
        h("x-hookline-event", "click"),
    ];
    let resp = client
        .request(
            http::Method::POST,
            &example.url(&path),
            headers,
            bytes::Bytes::from(sent),
        )
        .await
        .unwrap_or_else(|e| panic!("POST to the {} example: {e}", example.lang.name()));
    (
        resp.status,
        String::from_utf8_lossy(&resp.body).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receiver_examples_verify_real_deliveries_and_reject_forgeries() {
    let langs: Vec<(Lang, Vec<&str>)> = [Lang::Php, Lang::Node, Lang::Python]
        .into_iter()
        .filter_map(|l| l.runtime().map(|r| (l, r)))
        .collect();
    if langs.is_empty() {
        return;
    }

    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let tmp = temp_dir("receivers");
    let key_path = tmp.join("signing-key.pem");

    // Ports first: the subscriptions name them before the examples (which need the admin
    // API's address) can start.
    let ports: Vec<u16> = langs.iter().map(|_| free_port()).collect();
    // (subscription id, index into `langs`)
    let mut subs: Vec<(String, usize)> = Vec::new();
    let mut records = Vec::new();
    for (i, (lang, _)) in langs.iter().enumerate() {
        let base = format!("http://127.0.0.1:{}", ports[i]);
        let formats: &[&str] = match lang {
            Lang::Php => &["form", "json"],
            Lang::Node | Lang::Python => &["json"],
        };
        for format in formats {
            let id = format!("sub-{}-{format}", lang.name());
            let url = match lang {
                Lang::Php => format!("{base}/hook.php?format={format}"),
                _ => format!("{base}/webhooks/hookline?lang={}", lang.name()),
            };
            records.push((id.clone(), subscription(&id, &url, format)));
            subs.push((id, i));
        }
    }
    produce(&t, &t.topics.subscriptions, &records).await;
    produce(
        &t,
        &t.topics.profile_changes,
        &[("12:4711".into(), profile_create())],
    )
    .await;
    let pipeline = Pipeline::start(&t, &key_path, &[]).await;

    let mut examples = Vec::new();
    for (i, (lang, runtime)) in langs.iter().enumerate() {
        examples.push(Example::start(*lang, runtime, ports[i], pipeline.admin, &tmp, "1001").await);
    }

    let profile = read_until(
        &t.settings,
        &t.topics.profiles,
        Duration::from_secs(60),
        |ms| ms.iter().any(|m| m.key() == Some(b"12:4711".as_slice())),
    );
    assert!(
        profile
            .iter()
            .any(|m| m.key() == Some(b"12:4711".as_slice())),
        "profile reached the table"
    );
    produce(&t, &t.topics.tracking, &[("12:4711".into(), click())]).await;

    // One outcome per subscription: written once the example has answered. Counted once the
    // pipeline is quiet, so a second attempt would show.
    read_until(
        &t.settings,
        &t.topics.outcomes,
        Duration::from_secs(90),
        |ms| ms.len() >= subs.len(),
    );
    wait_quiescent(&t, Duration::from_secs(90)).await;
    let outcomes = read_to_end(&t, &t.topics.outcomes);
    assert_eq!(
        outcomes.len(),
        subs.len(),
        "one outcome per subscription: {:#?}",
        outcomes.iter().map(json).collect::<Vec<_>>()
    );
    let key = SigningKey::load_or_generate(&key_path, None).unwrap();
    for (sub, i) in &subs {
        let example = &examples[*i];
        let outcome = outcomes
            .iter()
            .find(|m| m.key() == Some(sub.as_bytes()))
            .map(json)
            .unwrap_or_else(|| {
                panic!(
                    "no outcome for {sub} within 90 s; {} stderr: {:#?}",
                    example.lang.name(),
                    example.stderr()
                )
            });
        assert_eq!(
            (outcome["result"].as_str(), outcome["http_status"].as_u64()),
            (Some("delivered"), Some(200)),
            "{sub}: the {} example accepted the delivery: {outcome}; stderr: {:#?}",
            example.lang.name(),
            example.stderr()
        );
        let delivery = outcome["delivery_id"].as_str().unwrap();
        let line = example
            .printed(delivery, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "{sub}: the {} example printed nothing for delivery {delivery}; stdout: {:#?}",
                    example.lang.name(),
                    example.stdout.lock().unwrap()
                )
            });
        assert_eq!(line["verified"], true, "{sub}: {line}");
        assert_eq!(line["event"], CLICK_ID, "{sub}: {line}");
        assert_eq!(line["key_id"], key.key_id(), "{sub}: {line}");
    }

    // Signed straight from the test with the pipeline's key: accepted as is, rejected forged.
    let client = hookline_outbound::HttpClient::new(
        hookline_outbound::NetworkGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
        hookline_outbound::HttpOptions {
            total_timeout: Duration::from_secs(20),
            ..Default::default()
        },
    );
    for example in &examples {
        let lang = example.lang.name();
        let delivery = format!("dlv-direct-{lang}");
        let (status, text) = post_direct(&client, &key, example, Forgery::Genuine, &delivery).await;
        assert_eq!(
            status, 200,
            "{lang}: a genuine direct POST is accepted: {text}"
        );
        let line = example
            .printed(&delivery, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{lang}: nothing printed for {delivery}"));
        assert_eq!(line["event"], format!("evt-direct-{lang}"), "{line}");
        assert_eq!(line["verified"], true, "{line}");

        for (forgery, reason) in [
            (Forgery::AlteredBody, "digest"),
            (Forgery::AlteredBodyNewDigest, "signature"),
            (Forgery::StaleDate, "date"),
        ] {
            let delivery = format!("dlv-forged-{lang}-{forgery:?}");
            let (status, text) = post_direct(&client, &key, example, forgery, &delivery).await;
            assert_eq!(status, 401, "{lang}: {forgery:?} is rejected: {text}");
            assert!(
                text.to_ascii_lowercase().contains(reason),
                "{lang}: the reason for {forgery:?} mentions {reason:?}: {text:?}"
            );
        }
        assert!(
            !example
                .stdout
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("dlv-forged-")),
            "{lang}: no forged request was printed as verified"
        );
    }

    drop(examples);
    pipeline.stop().await;
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Sends `received` (a POST as the sender made it) again to the example, with its body changed
/// by `edit`, and returns the status and the answer's text.
async fn replay(
    client: &hookline_outbound::HttpClient,
    example: &Example,
    received: &hookline_testkit::Received,
    replace_headers: &[(&'static str, String)],
    edit: impl FnOnce(&mut Vec<u8>),
) -> (u16, String) {
    let mut headers: Vec<(HeaderName, HeaderValue)> = received
        .headers
        .iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            (k.starts_with("webhook-") || k.starts_with("x-hookline-") || k == "content-type")
                && !replace_headers.iter().any(|(r, _)| *r == k)
        })
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect();
    headers.push((
        HeaderName::from_static("host"),
        HeaderValue::from_str(&format!("127.0.0.1:{}", example.port)).unwrap(),
    ));
    headers.extend(replace_headers.iter().map(|(k, v)| {
        (
            HeaderName::from_static(k),
            HeaderValue::from_str(v).unwrap(),
        )
    }));
    let mut body = received.body.to_vec();
    edit(&mut body);
    let resp = client
        .request(
            http::Method::POST,
            &example.url("/webhooks/replayed"),
            headers,
            bytes::Bytes::from(body),
        )
        .await
        .expect("POST to the Standard Webhooks example");
    (
        resp.status,
        String::from_utf8_lossy(&resp.body).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standard_webhooks_deliveries_verify_with_the_python_example_across_retries() {
    let Some(runtime) = Lang::Python.runtime() else {
        return;
    };
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let tmp = temp_dir("standard-webhooks");
    let key_path = tmp.join("signing-key.pem");

    let port = free_port();
    // Captures the POSTs of the second subscription: 500 to the first attempt, then 200.
    let capture = Receiver::start(200).await;
    capture.script(vec![(500, vec![])]);
    let mut direct = subscription(
        "sub-sw-direct",
        &format!("http://127.0.0.1:{port}/webhooks/standard"),
        "json",
    );
    direct["signature"] = json!("standard-webhooks");
    let mut retried = subscription("sub-sw-retried", &capture.url("/hook"), "json");
    retried["signature"] = json!("standard-webhooks");
    produce(
        &t,
        &t.topics.subscriptions,
        &[
            ("sub-sw-direct".into(), direct),
            ("sub-sw-retried".into(), retried),
        ],
    )
    .await;
    produce(
        &t,
        &t.topics.profile_changes,
        &[("12:4711".into(), profile_create())],
    )
    .await;
    // Retries 1–2 s later (full jitter above half the step): a later webhook-timestamp.
    let pipeline = Pipeline::start(&t, &key_path, &["--retry-schedule", "2s"]).await;
    let example = Example::start_script(
        Lang::Python,
        &runtime,
        "standard-webhooks-verify.py",
        port,
        pipeline.admin,
        &tmp,
        "1001",
    )
    .await;

    let profile = read_until(
        &t.settings,
        &t.topics.profiles,
        Duration::from_secs(60),
        |ms| ms.iter().any(|m| m.key() == Some(b"12:4711".as_slice())),
    );
    assert!(
        profile
            .iter()
            .any(|m| m.key() == Some(b"12:4711".as_slice())),
        "profile reached the table"
    );
    produce(&t, &t.topics.tracking, &[("12:4711".into(), click())]).await;

    // Three outcomes: the direct delivery, and the retried one's 500 and 200 (all of them, once
    // the pipeline is quiet).
    read_until(
        &t.settings,
        &t.topics.outcomes,
        Duration::from_secs(90),
        |ms| ms.len() >= 3,
    );
    wait_quiescent(&t, Duration::from_secs(90)).await;
    let outcomes: Vec<Value> = read_to_end(&t, &t.topics.outcomes)
        .iter()
        .map(json)
        .collect();
    let of = |sub: &str| -> Vec<&Value> {
        outcomes
            .iter()
            .filter(|o| o["subscription_id"] == sub)
            .collect()
    };
    let direct = of("sub-sw-direct");
    assert_eq!(
        direct
            .iter()
            .map(|o| (o["result"].as_str(), o["http_status"].as_u64()))
            .collect::<Vec<_>>(),
        [(Some("delivered"), Some(200))],
        "the Python example accepted the direct delivery: {direct:?}; stderr: {:#?}",
        example.stderr()
    );
    let delivery = direct[0]["delivery_id"].as_str().unwrap();
    let line = example
        .printed(delivery, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| {
            panic!(
                "nothing printed for {delivery}; stderr: {:#?}",
                example.stderr()
            )
        });
    assert_eq!(line["verified"], true, "{line}");
    assert_eq!(
        line["webhook_id"], delivery,
        "webhook-id is the delivery id: {line}"
    );
    assert_eq!(line["event"], CLICK_ID, "{line}");

    let retried = of("sub-sw-retried");
    assert_eq!(
        retried
            .iter()
            .map(|o| (
                o["attempt"].as_u64(),
                o["result"].as_str(),
                o["http_status"].as_u64()
            ))
            .collect::<Vec<_>>(),
        [
            (Some(1), Some("retrying"), Some(500)),
            (Some(2), Some("delivered"), Some(200))
        ],
        "{retried:?}"
    );
    let got = capture.received();
    assert_eq!(got.len(), 2, "two attempts reached the endpoint");
    let header = |i: usize, name: &str| -> String {
        got[i]
            .header(name)
            .unwrap_or_else(|| {
                panic!(
                    "attempt {} has no {name} header: {:?}",
                    i + 1,
                    got[i].headers
                )
            })
            .to_owned()
    };
    let retried_delivery = retried[0]["delivery_id"].as_str().unwrap();
    for (i, received) in got.iter().enumerate() {
        assert_eq!(header(i, "webhook-id"), retried_delivery);
        assert_eq!(header(i, "x-hookline-delivery"), retried_delivery);
        assert_eq!(header(i, "x-hookline-attempt"), (i + 1).to_string());
        assert_eq!(header(i, "x-hookline-event"), "click");
        assert!(header(i, "content-type").starts_with("application/json"));
        assert!(header(i, "user-agent").starts_with("Hookline/"));
        assert!(header(i, "webhook-signature").starts_with("v1a,"));
        for absent in ["signature", "x-copernica-id", "x-nonce", "digest"] {
            assert!(
                received.header(absent).is_none(),
                "the copernica profile's {absent} header is not sent"
            );
        }
    }
    // Whole seconds: the retry schedule of this test (2s, jittered to no less than 1 s) puts
    // the second signing at least a second after the first, so its second is later whatever
    // the fraction of the first one was.
    let ts = |i: usize| header(i, "webhook-timestamp").parse::<u64>().unwrap();
    assert!(ts(1) > ts(0), "the retry carries a later webhook-timestamp");

    assert_ne!(
        header(0, "webhook-signature"),
        header(1, "webhook-signature"),
        "the retry is signed anew"
    );
    assert_eq!(got[0].body, got[1].body, "the same body both times");

    // Both captured attempts, replayed untouched, verify with the Python example.
    let client = hookline_outbound::HttpClient::new(
        hookline_outbound::NetworkGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
        hookline_outbound::HttpOptions {
            total_timeout: Duration::from_secs(20),
            ..Default::default()
        },
    );
    for (i, received) in got.iter().enumerate() {
        let (status, text) = replay(&client, &example, received, &[], |_| {}).await;
        assert_eq!(status, 200, "attempt {} verifies: {text}", i + 1);
        let attempt = (i + 1).to_string();
        let line = example
            .printed_where(
                |v| v["delivery"] == retried_delivery && v["attempt"] == attempt.as_str(),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|| panic!("nothing printed for attempt {attempt}"));
        assert_eq!(line["webhook_id"], retried_delivery, "{line}");
        assert_eq!(line["timestamp"], ts(i), "{line}");
    }

    // Forged: a body changed after signing, and a genuine signature from 400 s ago.
    let (status, text) = replay(&client, &example, &got[1], &[], |b| {
        let i = b.windows(3).position(|w| w == b"evt").unwrap();
        b[i] = b'E';
    })
    .await;
    assert_eq!(status, 401, "a changed body is rejected: {text}");
    assert!(text.contains("signature"), "{text}");
    let key = hookline_signing::Signers::load_or_generate(&key_path, None)
        .unwrap()
        .ed25519_for("1001")
        .unwrap();
    let stale = standard_webhooks::sign_at(
        &key,
        "dlv-stale",
        SystemTime::now() - Duration::from_secs(400),
        &got[1].body,
    );
    let (status, text) = replay(
        &client,
        &example,
        &got[1],
        &[
            ("webhook-id", stale.id.clone()),
            ("webhook-timestamp", stale.timestamp.to_string()),
            ("webhook-signature", stale.signature.clone()),
            ("x-hookline-delivery", "dlv-stale".into()),
        ],
        |_| {},
    )
    .await;
    assert_eq!(status, 401, "a stale timestamp is rejected: {text}");
    assert!(text.contains("timestamp"), "{text}");
    let verified = example
        .stdout
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["verified"] == true)
        .count();
    assert_eq!(
        verified, 3,
        "the direct delivery and the two replayed attempts, no forgery, were printed as verified"
    );

    drop(example);
    pipeline.stop().await;
    let _ = std::fs::remove_dir_all(&tmp);
}
