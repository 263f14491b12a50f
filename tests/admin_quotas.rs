//! The admin API's limits, on a real broker and loopback endpoints:
//!
//! - `quotas_and_rate_limits_answer_429_with_retry_after`: the subscription count per account,
//!   the rates of verifications, validations, test webhooks, checks and replays per account,
//!   the fan-out of a check (only active subscriptions, at most `--max-check-fanout`), and
//!   failed authentications per source address. Each limit is per account: another account is
//!   unaffected. The 429 answers are documented in `schemas/openapi.json`.
//! - `replays_do_not_block_the_api_are_bounded_and_idempotent`: replays of three accounts read
//!   a dead-letter topic of many records at once while a fourth account lists its
//!   subscriptions, which answers within a bound every time; a fourth replay finds the
//!   instance busy, a second one of the same account finds its account busy (both 429); a
//!   repeated `replay_id` returns the first report and puts nothing on `deliveries` twice.

#[path = "admin_quotas/support.rs"]
mod support;

use std::time::{Duration, Instant};

use hookline_integration_tests::{produce, start_admin};
use hookline_testkit::{Broker, DnsServer, Receiver, TestTopics};
use serde_json::{json, Value};
use support::{assert_429, dead_letters, posts, subscription, token, topic_size, until_known, Api};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quotas_and_rate_limits_answer_429_with_retry_after() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let key = hookline_integration_tests::key_path("quotas");
    let receiver = Receiver::start(200).await;
    let url = receiver.url("/hook");
    produce(
        &t,
        &t.topics.subscriptions,
        &[
            subscription("sub-a1", "1001", &url, "active"),
            subscription("sub-a2", "1001", &url, "active"),
            subscription("sub-a3", "1001", &url, "paused"),
            subscription("sub-a4", "1001", &url, "disabled"),
            subscription("sub-b1", "1002", &url, "active"),
        ],
    )
    .await;
    let (a, b) = (token(&t, "1001").await, token(&t, "1002").await);
    let dns = DnsServer::start().await;
    let dns_addr = dns.addr.to_string();
    let shutdown = CancellationToken::new();
    let addr = start_admin(
        &t,
        &key,
        &[
            "--require-https",
            "false",
            "--dns-resolver",
            &dns_addr,
            "--allow-networks",
            "127.0.0.0/8",
            "--max-subscriptions",
            "5",
            "--max-check-fanout",
            "1",
            "--verify-rate",
            "2/h",
            "--test-rate",
            "2/h",
            "--check-rate",
            "1/h",
            "--replay-rate",
            "1/h",
            "--auth-failure-rate",
            "3/h",
        ],
        None,
        &shutdown,
    )
    .await;
    let api = Api::new(addr);
    until_known(&api, "/v1/subscriptions/sub-a4", &a).await;
    until_known(&api, "/v1/subscriptions/sub-b1", &b).await;

    // The subscription count: 1001 has four and may create one more; 1002 is unaffected.
    let elsewhere = Receiver::start(404).await;
    let new_sub = json!({"database": "12", "events": ["click"], "url": elsewhere.url("/new")});
    let created = api
        .call("POST", "/v1/subscriptions", Some(&a), Some(new_sub.clone()))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let full = api
        .call("POST", "/v1/subscriptions", Some(&a), Some(new_sub.clone()))
        .await;
    assert_429(&full, "quota_exceeded", false);
    assert!(full.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("HOOKLINE_MAX_SUBSCRIPTIONS"));
    let other = api
        .call("POST", "/v1/subscriptions", Some(&b), Some(new_sub))
        .await;
    assert_eq!(other.status, 201, "{other:?}");
    let unverified = created.body["id"].as_str().unwrap().to_owned();

    // Verifications and validations share one rate: two, then 429.
    let verify = format!("/v1/subscriptions/{unverified}/verify");
    assert_eq!(
        api.call("POST", &verify, Some(&a), None).await.status,
        422,
        "no file: not verified"
    );
    let domain = api
        .call(
            "POST",
            "/v1/domains",
            Some(&a),
            Some(json!({"domain": "quota.example.test"})),
        )
        .await;
    assert_eq!(domain.status, 201, "{domain:?}");
    let validate = "/v1/domains/quota.example.test/validate";
    let v = api.call("POST", validate, Some(&a), None).await;
    assert_eq!(v.status, 422, "{v:?}");
    assert_429(
        &api.call("POST", &verify, Some(&a), None).await,
        "rate_limited",
        true,
    );
    assert_429(
        &api.call("POST", validate, Some(&a), None).await,
        "rate_limited",
        true,
    );

    // Test webhooks: two, then 429; account 1002 still has its own.
    for _ in 0..2 {
        let r = api
            .call("POST", "/v1/subscriptions/sub-a1/test", Some(&a), None)
            .await;
        assert_eq!(
            (r.status, &r.body["delivered"]),
            (200, &json!(true)),
            "{r:?}"
        );
    }
    let limited = api
        .call("POST", "/v1/subscriptions/sub-a1/test", Some(&a), None)
        .await;
    assert_429(&limited, "rate_limited", true);
    let b_test = api
        .call("POST", "/v1/subscriptions/sub-b1/test", Some(&b), None)
        .await;
    assert_eq!(b_test.status, 200, "{b_test:?}");
    assert_eq!(posts(&receiver), 3, "the refused test sent nothing");

    // Check now: only active subscriptions, at most one called; then 429.
    let c = api.call("POST", "/v1/check", Some(&a), None).await;
    assert_eq!(c.status, 200, "{c:?}");
    assert_eq!(
        (c.body["checked"].as_u64(), c.body["skipped"].as_u64()),
        (Some(1), Some(4)),
        "{c:?}"
    );
    let reasons: Vec<(&str, &str)> = c.body["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| Some((l["subscription"].as_str()?, l["skipped"].as_str()?)))
        .collect();
    let reason = |id: &str| {
        reasons
            .iter()
            .find(|(s, _)| *s == id)
            .map_or("", |(_, r)| r)
    };
    assert!(reason("sub-a3").starts_with("paused"), "{reasons:?}");
    assert!(reason("sub-a4").starts_with("disabled"), "{reasons:?}");
    assert!(reason("sub-a2").contains("at most 1"), "{reasons:?}");
    assert!(reason(&unverified).starts_with("unverified"), "{reasons:?}");
    assert_eq!(posts(&receiver), 4, "one endpoint called");
    assert_429(
        &api.call("POST", "/v1/check", Some(&a), None).await,
        "rate_limited",
        true,
    );

    // Replays: one, then 429 (before any work); another account is unaffected.
    let r = api
        .call(
            "POST",
            "/v1/subscriptions/sub-a1/replay",
            Some(&a),
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["matched"].as_u64()),
        (200, Some(0)),
        "{r:?}"
    );
    let r = api
        .call(
            "POST",
            "/v1/subscriptions/sub-a1/replay",
            Some(&a),
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_429(&r, "rate_limited", true);
    let r = api
        .call(
            "POST",
            "/v1/subscriptions/sub-b1/replay",
            Some(&b),
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    // Failed authentications from this address: three 401s, then 429 for any token, even a
    // valid one, while requests without a token still get their 401.
    let forged = format!("{}x", &a[..a.len() - 1]);
    for bad in ["hlt_0123456789abcdef_nope", "nonsense", forged.as_str()] {
        let r = api.call("GET", "/v1/subscriptions", Some(bad), None).await;
        assert_eq!(r.status, 401, "{r:?}");
    }
    assert_429(
        &api.call("GET", "/v1/subscriptions", Some(&forged), None)
            .await,
        "too_many_auth_failures",
        true,
    );
    assert_429(
        &api.call("GET", "/v1/subscriptions", Some(&b), None).await,
        "too_many_auth_failures",
        true,
    );
    assert_eq!(
        api.call("GET", "/v1/subscriptions", None, None)
            .await
            .status,
        401
    );
    assert_eq!(
        api.call("GET", "/v1/keys", None, None).await.status,
        200,
        "public keys stay public"
    );

    // Every limited operation documents its 429.
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}{}",
            std::env::var("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
            "/../schemas/openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    for (path, method) in [
        ("/v1/subscriptions", "post"),
        ("/v1/subscriptions", "get"),
        ("/v1/subscriptions/{id}/verify", "post"),
        ("/v1/subscriptions/{id}/test", "post"),
        ("/v1/subscriptions/{id}/replay", "post"),
        ("/v1/check", "post"),
        ("/v1/domains/{domain}/validate", "post"),
    ] {
        assert!(
            doc["paths"][path][method]["responses"].get("429").is_some(),
            "{method} {path} documents 429"
        );
    }
    shutdown.cancel();
}

/// Dead letters each of the three long replays reads.
const LONG: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_do_not_block_the_api_are_bounded_and_idempotent() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let key = hookline_integration_tests::key_path("replays");
    let url = "http://127.0.0.1:9/hook";
    let accounts = ["2001", "2002", "2003", "2004", "2005"];
    let subs: Vec<(String, Value)> = accounts
        .iter()
        .map(|a| subscription(&format!("sub-{a}"), a, url, "active"))
        .collect();
    produce(&t, &t.topics.subscriptions, &subs).await;
    let at = "2026-11-25T10:00:00Z";
    let mut dead = dead_letters("sub-2004", "2004", 1, at);
    for a in &accounts[..3] {
        dead.extend(dead_letters(&format!("sub-{a}"), a, LONG, at));
    }
    produce(&t, &t.topics.dead_letter, &dead).await;
    let mut tokens = Vec::new();
    for a in accounts {
        tokens.push(token(&t, a).await);
    }
    let shutdown = CancellationToken::new();
    let addr = start_admin(
        &t,
        &key,
        &["--max-concurrent-replays", "3", "--replay-rate", "off"],
        None,
        &shutdown,
    )
    .await;
    let api = Api::new(addr);
    for (a, tok) in accounts.iter().zip(&tokens) {
        until_known(&api, &format!("/v1/subscriptions/sub-{a}"), tok).await;
    }

    // Three long replays at once, while account 2005 lists its subscriptions.
    let started = Instant::now();
    let long: Vec<_> = (0..3)
        .map(|i| {
            let (api, tok, a) = (api.clone(), tokens[i].clone(), accounts[i]);
            tokio::spawn(async move {
                let path = format!("/v1/subscriptions/sub-{a}/replay");
                let r = api
                    .call("POST", &path, Some(&tok), Some(json!({"dry_run": true})))
                    .await;
                (r, started.elapsed())
            })
        })
        .collect();
    let running = || long.iter().any(|h| !h.is_finished());
    let mut listed_while_running = 0;
    let mut slowest = Duration::ZERO;
    let (mut busy, mut account_busy) = (None, None);
    // A list every 50 ms (the pace of a busy dashboard, not a wait for anything).
    let mut pace = tokio::time::interval(Duration::from_millis(50));
    while running() {
        pace.tick().await;
        let t0 = Instant::now();
        let l = api
            .call("GET", "/v1/subscriptions", Some(&tokens[4]), None)
            .await;
        let took = t0.elapsed();
        assert_eq!(l.status, 200, "{l:?}");
        slowest = slowest.max(took);
        if running() {
            listed_while_running += 1;
        }
        // Half a second after the three were sent (each takes seconds), they hold the slots.
        if busy.is_none() && listed_while_running >= 10 {
            let r = api
                .call(
                    "POST",
                    "/v1/subscriptions/sub-2004/replay",
                    Some(&tokens[3]),
                    Some(json!({"dry_run": true})),
                )
                .await;
            busy = Some((r, running()));
            let r = api
                .call(
                    "POST",
                    "/v1/subscriptions/sub-2001/replay",
                    Some(&tokens[0]),
                    Some(json!({"dry_run": true})),
                )
                .await;
            account_busy = Some((r, running()));
        }
    }
    for h in long {
        let (r, took) = h.await.unwrap();
        assert_eq!(
            (r.status, r.body["matched"].as_u64()),
            (200, Some(LONG as u64)),
            "{r:?}"
        );
        eprintln!("a replay of {LONG} dead letters took {took:?}");
    }
    eprintln!("listed {listed_while_running} times while replays ran; slowest {slowest:?}");
    assert!(
        listed_while_running >= 3,
        "the API answered other accounts while replays ran ({listed_while_running} lists)"
    );
    assert!(
        slowest < Duration::from_secs(2),
        "GET /v1/subscriptions took {slowest:?}"
    );
    let (busy, during) = busy.unwrap();
    assert!(during, "the fourth replay was asked while three ran");
    assert_429(&busy, "replays_busy", true);
    let (account_busy, during) = account_busy.unwrap();
    assert!(
        during,
        "the second replay of 2001 was asked while its first ran"
    );
    assert_429(&account_busy, "replay_running", true);

    // Idempotent: the same replay_id twice replays once and answers the same report.
    let once = json!({"replay_id": "nightly-2026-11-25"});
    let first = api
        .call(
            "POST",
            "/v1/subscriptions/sub-2004/replay",
            Some(&tokens[3]),
            Some(once.clone()),
        )
        .await;
    assert_eq!(
        (first.status, first.body["matched"].as_u64()),
        (200, Some(1)),
        "{first:?}"
    );
    assert_eq!(first.body["replay_id"], "nightly-2026-11-25");
    let again = api
        .call(
            "POST",
            "/v1/subscriptions/sub-2004/replay",
            Some(&tokens[3]),
            Some(once),
        )
        .await;
    assert_eq!(
        (again.status, &again.body),
        (200, &first.body),
        "the first report, again"
    );
    let other = api
        .call(
            "POST",
            "/v1/subscriptions/sub-2004/replay",
            Some(&tokens[3]),
            Some(json!({"replay_id": "nightly-2026-11-25", "dry_run": true})),
        )
        .await;
    assert_eq!(
        (other.status, other.code()),
        (409, "replay_id_reused"),
        "{other:?}"
    );
    let generated = api
        .call(
            "POST",
            "/v1/subscriptions/sub-2004/replay",
            Some(&tokens[3]),
            Some(json!({"dry_run": true})),
        )
        .await;
    assert!(generated.body["replay_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("rpl_")));

    // Nothing was put on deliveries twice: only sub-2004's one dead letter, once.
    assert_eq!(topic_size(&t, &t.topics.deliveries), 1);
    shutdown.cancel();
}
