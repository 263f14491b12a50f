//! The operator's per-endpoint view, `GET /v1/operator/endpoints`: what metric labels must not
//! carry (subscription ids, URLs). With the whole pipeline running, one endpoint answers 500 and
//! another 200; the view shows the failing one first, with the time it began failing (from the
//! senders' `endpoint-health` records), its failed attempts and the deliveries waiting for
//! another attempt, and the healthy one closed with its delivered attempt and nothing waiting. Only operators may read it. Every answer matches the OpenAPI document.

// The admin API client and fixtures of `admin_quotas.rs`; this test uses a few of them.
#[allow(dead_code)]
#[path = "admin_quotas/support.rs"]
mod support;

use std::time::{Duration, Instant};

use hookline_integration_tests::{key_path, produce, Pipeline};
use hookline_model::TokenRole;
use hookline_testkit::{Broker, Receiver, TestTopics};
use serde_json::{json, Value};
use support::{subscription, token, until_known, Api};

async fn operator_token(t: &TestTopics) -> String {
    let new = hookline_admin::auth::generate(TokenRole::Operator, None, Some("ops".into()));
    hookline_admin::tables::write_token(&t.settings, &t.topics, &new.record)
        .await
        .unwrap();
    new.token
}

/// The endpoints of `body` by subscription id, in the order given.
fn ids(body: &Value) -> Vec<&str> {
    body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subscription_id"].as_str().unwrap())
        .collect()
}

fn endpoint<'a>(body: &'a Value, id: &str) -> &'a Value {
    body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subscription_id"] == id)
        .unwrap_or_else(|| panic!("{id} listed: {body:#}"))
}

/// Checks `body` against the OpenAPI document's `EndpointList`.
fn matches_openapi(body: &Value) {
    let path = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
    .join("../schemas/openapi.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let text = serde_json::to_string(&doc["components"]["schemas"]).unwrap();
    let defs: Value =
        serde_json::from_str(&text.replace("#/components/schemas/", "#/$defs/")).unwrap();
    let root = json!({"$ref": "#/$defs/EndpointList", "$defs": defs});
    let v = jsonschema::validator_for(&root).expect("the OpenAPI schemas compile");
    let errors: Vec<String> = v.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{body:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_see_each_endpoints_circuit_and_failures_customers_do_not() {
    let healthy = Receiver::start(200).await;
    let failing = Receiver::start(500).await;
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let mut other = subscription("other-sub", "2002", &healthy.url("/other"), "active");
    other.1["database"] = "13".into();
    let subs = vec![
        subscription("ok-sub", "1001", &healthy.url("/ok"), "active"),
        subscription("bad-sub", "1001", &failing.url("/bad"), "active"),
        other,
    ];
    produce(&t, &t.topics.subscriptions, &subs).await;
    let (op, customer) = (operator_token(&t).await, token(&t, "1001").await);
    let pipeline = Pipeline::start(&t, &key_path("operator-endpoints"), &[]).await;
    let api = Api::new(pipeline.admin);
    until_known(&api, "/v1/operator/endpoints", &op).await;

    let clicks: Vec<(String, Value)> = (0..6)
        .map(|n| {
            (
                format!("12:{n}"),
                json!({"id": format!("evt-op-{n}"), "type": "click", "account": "1001",
                       "database": "12", "profile": n.to_string(),
                       "timestamp": "2026-11-25T10:15:00Z"}),
            )
        })
        .collect();
    produce(&t, &t.topics.tracking, &clicks).await;

    // Until the senders' health record for the failing endpoint and both endpoints' attempts
    // have reached the admin.
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let a = api
            .call("GET", "/v1/operator/endpoints", Some(&op), None)
            .await;
        assert_eq!(a.status, 200, "{a:?}");
        let ready = {
            let (bad, ok) = (endpoint(&a.body, "bad-sub"), endpoint(&a.body, "ok-sub"));
            bad["failing_since"].is_string()
                && bad["recent_failures"].as_u64() >= Some(1)
                && bad["backlog"]["waiting"].as_u64() >= Some(1)
                && ok["last_attempt"]["result"] == "delivered"
        };
        if ready {
            break a.body;
        }
        assert!(
            Instant::now() < deadline,
            "not seen within 60 s: {:#}",
            a.body
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    matches_openapi(&body);
    assert_eq!(
        ids(&body)[0],
        "bad-sub",
        "failing endpoints first: {body:#}"
    );
    let bad = endpoint(&body, "bad-sub");
    assert_eq!(bad["last_attempt"]["http_status"], 500);
    assert_eq!(bad["last_attempt"]["error_class"], "http_5xx");
    assert_eq!(bad["account"], "1001");
    let ok = endpoint(&body, "ok-sub");
    assert_eq!(
        (ok["circuit"].as_str(), ok["failing_since"].is_null()),
        (Some("closed"), true)
    );
    assert_eq!(ok["recent_failures"], 0);
    // What waits: the failing endpoint's deliveries are scheduled for another attempt (at most
    // the six clicks), the healthy one's are all delivered; nothing is parked.
    let waiting = bad["backlog"]["waiting"].as_u64().unwrap();
    assert!((1..=6).contains(&waiting), "{bad:#}");
    assert_eq!(bad["backlog"]["parked"], 0);
    assert_eq!(
        ok["backlog"],
        json!({"waiting": 0, "parked": 0, "at_least": false})
    );
    let quiet = endpoint(&body, "other-sub");
    assert!(
        quiet["last_attempt"].is_null() && quiet["recent_attempts"] == 0,
        "{quiet:#}"
    );

    // Filters: failing only; one account.
    let a = api
        .call(
            "GET",
            "/v1/operator/endpoints?failing=true",
            Some(&op),
            None,
        )
        .await;
    matches_openapi(&a.body);
    assert_eq!(ids(&a.body), vec!["bad-sub"]);
    let a = api
        .call(
            "GET",
            "/v1/operator/endpoints?account=2002",
            Some(&op),
            None,
        )
        .await;
    assert_eq!(ids(&a.body), vec!["other-sub"]);
    let a = api
        .call("GET", "/v1/operator/endpoints?acount=2002", Some(&op), None)
        .await;
    assert_eq!(a.status, 400, "a mistyped filter is refused: {a:?}");

    // A customer's token reads none of it.
    let a = api
        .call("GET", "/v1/operator/endpoints", Some(&customer), None)
        .await;
    assert_eq!((a.status, a.code()), (403, "forbidden"), "{a:?}");
    pipeline.stop().await;
}
