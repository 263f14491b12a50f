//! Per-database settings, as the product has them: a database whose e-mail field is called
//! `emailaddress` gets the address in `recipient` once its settings say so, through the admin
//! API, without a restart of the tracking stage; another account's database with the same id
//! keeps the default; deleting the settings returns the database to the default. Every answer
//! is checked against `schemas/openapi.json`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookline_integration_tests::openapi::{document, OpenApi};
use hookline_integration_tests::{key_path, new_token, produce, wait_quiescent, Pipeline};
use hookline_model::TokenRole;
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use serde_json::{json, Value};

fn profile(account: &str, profile: &str, address: &str) -> (String, Value) {
    (
        format!("12:{profile}"),
        json!({"id": format!("chg-{account}-{profile}"), "account": account, "database": "12",
               "profile": profile, "action": "create", "trigger": "rest",
               "timestamp": "2026-12-02T10:00:00Z", "parameters": {},
               "fields": {"emailaddress": address, "name": "Jane"}, "interests": []}),
    )
}

fn click(n: usize, account: &str, profile: &str) -> (String, Value) {
    (
        format!("12:{profile}"),
        json!({"id": format!("evt-db-{n}"), "type": "click", "account": account,
               "database": "12", "profile": profile, "timestamp": "2026-12-02T10:15:00Z"}),
    )
}

/// `recipient` of the POST of event `id` at `path`, once it arrived.
fn recipient(receiver: &Receiver, path: &str, id: &str) -> Option<Value> {
    receiver
        .received()
        .iter()
        .filter(|r| r.path_and_query == path)
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .find(|b| b["id"] == id)
        .map(|b| b["recipient"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_with_its_own_email_field_gets_the_address_in_recipient() {
    let receiver = Receiver::start(200).await;
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let sub = |id: &str, account: &str| {
        json!({"id": id, "account": account, "database": "12", "events": ["click"],
               "url": receiver.url(&format!("/{id}")), "format": "json", "status": "active"})
    };
    produce(
        &t,
        &t.topics.subscriptions,
        &[
            ("alice".into(), sub("alice", "1001")),
            ("bob".into(), sub("bob", "2002")),
        ],
    )
    .await;
    produce(
        &t,
        &t.topics.profile_changes,
        &[
            profile("1001", "1", "jane@example.com"),
            profile("2002", "2", "bob@example.com"),
        ],
    )
    .await;
    let alice = new_token(&t, TokenRole::Account, Some("1001")).await;
    let bob = new_token(&t, TokenRole::Account, Some("2002")).await;
    let pipeline = Pipeline::start(&t, &key_path("database-settings"), &[]).await;
    let api = OpenApi::new(
        pipeline.admin,
        document(),
        Arc::new(Mutex::new(BTreeSet::new())),
    );
    let (a, b) = (Some(alice.as_str()), Some(bob.as_str()));

    // Alice names database 12's e-mail field; settings are per account.
    let body = json!({"email_field": "emailaddress", "name": "Newsletter NL"});
    let put = api
        .request("PUT", "/v1/databases/12", a, &[], Some(json_bytes(&body)))
        .await;
    assert_eq!(put.status, 201, "{}", put.text);
    assert_eq!(put.body["email_field"], "emailaddress");
    let again = api
        .request("PUT", "/v1/databases/12", a, &[], Some(json_bytes(&body)))
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    let got = api.request("GET", "/v1/databases/12", a, &[], None).await;
    assert_eq!(
        (got.body["database"].as_str(), got.body["name"].as_str()),
        (Some("12"), Some("Newsletter NL"))
    );
    api.request("GET", "/v1/databases/12", b, &[], None)
        .await
        .assert_error(404, "not_found");
    let list = api.request("GET", "/v1/databases", b, &[], None).await;
    assert_eq!(
        list.body["databases"],
        json!([]),
        "Bob sees none of Alice's settings"
    );
    let bad = json!({"email_field": ""});
    let refused = api
        .request("PUT", "/v1/databases/12", a, &[], Some(json_bytes(&bad)))
        .await;
    refused.assert_error(400, "invalid_request");
    assert_eq!(refused.body["error"]["field"], "email_field");
    let typo = json!({"emailfield": "x"});
    let refused = api
        .request("PUT", "/v1/databases/12", a, &[], Some(json_bytes(&typo)))
        .await;
    refused.assert_error(400, "invalid_request");

    // The tracking stage follows the table: two rows written so far.
    let tracking = pipeline.tracking_metrics.clone();
    let read = move || {
        tracking
            .table_records
            .with_label_values(&["databases"])
            .get()
    };
    assert!(
        eventually(Duration::from_secs(30), || read() >= 2).await,
        "tracking read {}",
        read()
    );
    produce(
        &t,
        &t.topics.tracking,
        &[click(1, "1001", "1"), click(2, "2002", "2")],
    )
    .await;
    wait_quiescent(&t, Duration::from_secs(90)).await;
    assert_eq!(
        recipient(&receiver, "/alice", "evt-db-1"),
        Some(json!("jane@example.com"))
    );
    // Bob's database 12 has no settings: the default field `email`, which his profile lacks.
    assert_eq!(recipient(&receiver, "/bob", "evt-db-2"), Some(Value::Null));

    // Deleted: back to the default, again without a restart.
    let del = api
        .request("DELETE", "/v1/databases/12", a, &[], None)
        .await;
    assert_eq!(del.status, 204, "{}", del.text);
    api.request("GET", "/v1/databases/12", a, &[], None)
        .await
        .assert_error(404, "not_found");
    assert!(
        eventually(Duration::from_secs(30), || read() >= 3).await,
        "tracking read {}",
        read()
    );
    produce(&t, &t.topics.tracking, &[click(3, "1001", "1")]).await;
    wait_quiescent(&t, Duration::from_secs(90)).await;
    assert_eq!(
        recipient(&receiver, "/alice", "evt-db-3"),
        Some(Value::Null)
    );
    pipeline.stop().await;
}

fn json_bytes(v: &Value) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(v).unwrap())
}
