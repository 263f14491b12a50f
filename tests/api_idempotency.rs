//! `Idempotency-Key` on the real local broker: a repeated key creates one subscription and
//! answers the first answer again; the same key with another body answers 422; concurrent
//! requests with one key create one subscription; keys are per account; an error answer leaves
//! its key free.

mod api_client;

use api_client::{new_subscription, Admin};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_creates_one_subscription() {
    let admin = Admin::start("api-idempotency", &[]).await;
    let alice = admin.client(&admin.token("1001").await);
    let bob = admin.client(&admin.token("2002").await);
    let key = [("idempotency-key", "create-7f3c")];
    let body = new_subscription("12", "once");

    let first = alice
        .call_with("POST", "/v1/subscriptions", &key, Some(body.clone()))
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    // The same body with its keys in another order is the same request.
    let mut reordered = serde_json::Map::new();
    for (k, v) in body.as_object().unwrap().iter().rev() {
        reordered.insert(k.clone(), v.clone());
    }
    let again = alice
        .call_with("POST", "/v1/subscriptions", &key, Some(reordered.into()))
        .await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body, "the first answer, unchanged");
    assert_eq!(again.header("etag"), first.header("etag"));

    // Another body with the same key is refused, and creates nothing.
    alice
        .call_with(
            "POST",
            "/v1/subscriptions",
            &key,
            Some(new_subscription("12", "other")),
        )
        .await
        .assert_error(422, "idempotency_key_reused");
    // The same key on another endpoint is another request too.
    alice
        .call_with("POST", "/v1/check", &key, Some(json!({})))
        .await
        .assert_error(422, "idempotency_key_reused");

    // Another account has keys of its own.
    let theirs = bob
        .call_with("POST", "/v1/subscriptions", &key, Some(body.clone()))
        .await;
    assert_eq!(theirs.status, 201, "{}", theirs.text);
    assert_ne!(theirs.body["id"], first.body["id"]);

    // Eight concurrent requests with one new key: one subscription.
    let burst = [("idempotency-key", "burst-1")];
    let body = new_subscription("13", "burst");
    let answers = futures_join(&alice, &burst, &body).await;
    let created: Vec<_> = answers.iter().filter(|a| a.0 == 201).collect();
    assert!(!created.is_empty(), "{answers:?}");
    assert!(
        created.iter().all(|a| a.1 == created[0].1),
        "every 201 is the same subscription: {answers:?}"
    );
    assert!(
        answers.iter().all(|a| a.0 == 201 || a.0 == 409),
        "the others were told the first still runs: {answers:?}"
    );

    // An error answer is not kept: the key stays free for a corrected request.
    let fix = [("idempotency-key", "fix-me")];
    let mut wrong = new_subscription("14", "fixed");
    wrong["events"] = json!(["klick"]);
    alice
        .call_with("POST", "/v1/subscriptions", &fix, Some(wrong))
        .await
        .assert_error(400, "invalid_request");
    let fixed = alice
        .call_with(
            "POST",
            "/v1/subscriptions",
            &fix,
            Some(new_subscription("14", "fixed")),
        )
        .await;
    assert_eq!(fixed.status, 201, "{}", fixed.text);

    // A key that is not a key is refused.
    alice
        .call_with(
            "POST",
            "/v1/subscriptions",
            &[("idempotency-key", &"x".repeat(256))],
            Some(new_subscription("15", "long")),
        )
        .await
        .assert_error(400, "invalid_request");

    // Exactly one subscription per database of alice's: 12, 13 and 14.
    let list = alice.call("GET", "/v1/subscriptions", None).await;
    let mut dbs: Vec<&str> = list.body["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["database"].as_str().unwrap())
        .collect();
    dbs.sort();
    assert_eq!(dbs, vec!["12", "13", "14"], "{}", list.text);
}

/// Sends the same keyed create eight times at once; (status, subscription id) of each.
async fn futures_join(
    api: &api_client::Api,
    key: &[(&str, &str)],
    body: &serde_json::Value,
) -> Vec<(u16, String)> {
    let calls = (0..8).map(|_| api.call_with("POST", "/v1/subscriptions", key, Some(body.clone())));
    let mut out = Vec::new();
    for a in futures::future::join_all(calls).await {
        out.push((
            a.status,
            a.body["id"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    out
}
