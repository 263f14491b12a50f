//! Account-wide webhooks, as the product manages them: a subscription without a database takes
//! the events of every database of its account, and of no other account; the API creates one
//! without `database`, refuses one with a collection but no database, and lists it with each of
//! the account's databases.

// The admin API client and fixtures of `admin_quotas.rs`; this test uses a few of them.
#[allow(dead_code)]
#[path = "admin_quotas/support.rs"]
mod support;

use std::time::Duration;

use hookline_integration_tests::{key_path, produce, wait_quiescent, Pipeline};
use hookline_testkit::{Broker, Receiver, TestTopics};
use serde_json::{json, Value};
use support::{token, until_known, Api};

fn click(n: usize, account: &str, database: &str) -> (String, Value) {
    (
        format!("{database}:{n}"),
        json!({"id": format!("evt-aw-{account}-{database}-{n}"), "type": "click",
               "account": account, "database": database, "profile": n.to_string(),
               "timestamp": "2026-11-25T10:15:00Z"}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_wide_subscription_gets_every_database_of_its_account_and_nothing_else() {
    let receiver = Receiver::start(200).await;
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let wide = json!({"id": "wide", "account": "1001", "events": ["click"],
        "url": receiver.url("/wide"), "format": "json", "status": "active"});
    let db12 = json!({"id": "db12", "account": "1001", "database": "12", "events": ["click"],
        "url": receiver.url("/db12"), "format": "json", "status": "active"});
    produce(
        &t,
        &t.topics.subscriptions,
        &[("wide".into(), wide), ("db12".into(), db12)],
    )
    .await;
    let customer = token(&t, "1001").await;
    let pipeline = Pipeline::start(&t, &key_path("account-wide"), &[]).await;
    let api = Api::new(pipeline.admin);
    until_known(&api, "/v1/subscriptions/wide", &customer).await;

    // The database's list shows its own subscription and the account-wide one (no database).
    let list = api
        .call(
            "GET",
            "/v1/subscriptions?database=12",
            Some(&customer),
            None,
        )
        .await;
    assert_eq!(list.status, 200, "{list:?}");
    let subs = list.body["subscriptions"].as_array().unwrap();
    let mut ids: Vec<&str> = subs.iter().map(|s| s["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["db12", "wide"]);
    let wide = subs.iter().find(|s| s["id"] == "wide").unwrap();
    assert!(
        wide.get("database").is_none(),
        "marked by having no database: {wide}"
    );
    let list13 = api
        .call(
            "GET",
            "/v1/subscriptions?database=13",
            Some(&customer),
            None,
        )
        .await;
    assert_eq!(list13.body["subscriptions"][0]["id"], "wide", "{list13:?}");

    // Created through the API without a database; a collection without one is refused.
    let created = api
        .call(
            "POST",
            "/v1/subscriptions",
            Some(&customer),
            Some(json!({"events": ["open"], "url": "https://hooks.example/all-opens"})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert!(created.body.get("database").is_none(), "{created:?}");
    let refused = api
        .call(
            "POST",
            "/v1/subscriptions",
            Some(&customer),
            Some(json!({"events": ["create"], "collection": "5",
                        "url": "https://hooks.example/sub"})),
        )
        .await;
    assert_eq!(
        (refused.status, refused.body["error"]["field"].as_str()),
        (400, Some("collection")),
        "{refused:?}"
    );

    // Clicks on two databases of the account, and on another account's database 12.
    let mut clicks = vec![click(1, "1001", "12"), click(2, "1001", "13")];
    clicks.push(click(3, "2002", "12"));
    produce(&t, &t.topics.tracking, &clicks).await;
    wait_quiescent(&t, Duration::from_secs(90)).await;

    let seen = |path: &str| -> Vec<String> {
        let mut v: Vec<String> = receiver
            .received()
            .iter()
            .filter(|r| r.path_and_query == path)
            .map(|r| {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                body["database"].to_string().trim_matches('"').to_owned()
            })
            .collect();
        v.sort();
        v
    };
    // Account 2002's click on its database 12 reaches neither.
    assert_eq!(seen("/wide"), ["12", "13"]);
    assert_eq!(seen("/db12"), ["12"]);
    pipeline.stop().await;
}
