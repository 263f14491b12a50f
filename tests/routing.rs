//! Routing end to end: three subscriptions on one database with different actions, triggers and
//! conditions receive exactly the events they should; a subscription on another database
//! receives none.

use std::collections::BTreeMap;
use std::time::Duration;

use hookline_integration_tests::{
    committed_and_end, count, produce, read_to_end, wait_quiescent, Pipeline,
};
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use rdkafka::message::Message;
use serde_json::{json, Value};

fn sub(id: &str, database: &str, url: String, extra: Value) -> (String, Value) {
    let mut s = json!({"id": id, "account": "1001", "database": database, "url": url,
                       "format": "json", "status": "active", "events": []});
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    (id.to_owned(), s)
}

fn change(
    id: &str,
    profile: &str,
    action: &str,
    trigger: &str,
    fields: Value,
    interests: Value,
) -> (String, Value) {
    (
        format!("12:{profile}"),
        json!({"id": id, "account": "1001", "database": "12", "profile": profile, "action": action,
               "trigger": trigger, "timestamp": "2026-11-25T10:00:00Z", "parameters": {}, "fields": fields,
               "interests": interests}),
    )
}

fn click(id: &str, profile: &str) -> (String, Value) {
    (
        format!("12:{profile}"),
        json!({"id": id, "type": "click", "account": "1001", "database": "12", "profile": profile,
               "timestamp": "2026-11-25T10:15:00Z", "ip": "203.0.113.7", "original": "https://shop.example/",
               "headers": {}, "tags": []}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_subscription_receives_exactly_its_events() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let receiver = Receiver::start(200).await;
    let subs = vec![
        // A: updates made through the REST API only.
        sub(
            "a-rest-updates",
            "12",
            receiver.url("/a"),
            json!({"events": ["update"], "triggers": ["rest"]}),
        ),
        // B: profile creations only (actions), whose name contains "Mike".
        sub(
            "b-mike-creates",
            "12",
            receiver.url("/b"),
            json!({"events": ["create", "update", "delete"], "actions": ["create"],
                   "conditions": {"field": "name", "op": "contains", "value": "mike"}}),
        ),
        // C: clicks and updates of profiles with the interest "vip".
        sub(
            "c-vip",
            "12",
            receiver.url("/c"),
            json!({"events": ["click", "update"], "conditions": {"all": [{"interest": "vip", "op": "has"}]}}),
        ),
        // D: everything, but on another database.
        sub(
            "d-other-db",
            "13",
            receiver.url("/d"),
            json!({"events": ["click", "open", "bounce", "failure", "delivery", "create", "update", "delete"]}),
        ),
    ];
    produce(&t, &t.topics.subscriptions, &subs).await;
    let key = std::env::temp_dir().join(format!("hookline-it-{}-routing.pem", std::process::id()));
    let pipeline = Pipeline::start(&t, &key, &[]).await;

    let mike = json!({"name": "Mike Jones", "email": "mike@example.com", "city": "Utrecht"});
    let mike2 = json!({"name": "Mike Jones", "email": "mike@example.com", "city": "Delft"});
    let mike3 = json!({"name": "Mike Jones", "email": "mike@example.com", "city": "Leiden"});
    let jane = json!({"name": "Jane", "email": "jane@example.com"});
    let mut subprofile = change(
        "chg-sub",
        "1",
        "create",
        "rest",
        json!({"order": "A-1"}),
        json!(null),
    );
    subprofile.1["collection"] = json!("5");
    subprofile.1["subprofile"] = json!("9");
    subprofile.1.as_object_mut().unwrap().remove("interests");
    produce(
        &t,
        &t.topics.profile_changes,
        &[
            change(
                "chg-create-mike",
                "1",
                "create",
                "import",
                mike,
                json!(["vip"]),
            ),
            change(
                "chg-update-rest",
                "1",
                "update",
                "rest",
                mike2,
                json!(["vip"]),
            ),
            change(
                "chg-update-soap",
                "1",
                "update",
                "soap",
                mike3,
                json!(["vip"]),
            ),
            change(
                "chg-create-jane",
                "2",
                "create",
                "rest",
                jane.clone(),
                json!([]),
            ),
            change("chg-delete-jane", "2", "delete", "rest", jane, json!([])),
            subprofile,
        ],
    )
    .await;
    // The clicks join against the table: wait until the profiles stage has written it.
    let profiles_group = format!("{}profiles", t.prefix);
    let applied = eventually(Duration::from_secs(60), || {
        committed_and_end(&t, &profiles_group, &t.topics.profile_changes) == (6, 6)
    })
    .await;
    assert!(applied, "the profiles stage commits all six changes");
    let rows = read_to_end(&t, &t.topics.profiles);
    let seen: Vec<(String, bool)> = rows
        .iter()
        .map(|m| {
            (
                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                m.payload().is_some(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 6, "one table record per change: {seen:?}");
    produce(
        &t,
        &t.topics.tracking,
        &[click("evt-click-mike", "1"), click("evt-click-jane", "2")],
    )
    .await;

    let settled = eventually(Duration::from_secs(60), || {
        count(&pipeline.profiles_metrics.consumed, &["profiles"]) == 6
            && count(&pipeline.tracking_metrics.consumed, &["tracking"]) == 2
    })
    .await;
    assert!(settled, "all input consumed");
    // The sender commits a delivery only after its outcome is acknowledged.
    let sender_group = format!("{}sender", t.prefix);
    let sent = eventually(Duration::from_secs(60), || {
        committed_and_end(&t, &sender_group, &t.topics.deliveries) == (5, 5)
    })
    .await;
    assert!(
        sent,
        "five deliveries, all sent: {:?}",
        committed_and_end(&t, &sender_group, &t.topics.deliveries)
    );
    // Every stage has committed its input to the end: no delivery, outcome or POST is to come.
    wait_quiescent(&t, Duration::from_secs(60)).await;
    assert_eq!(
        committed_and_end(&t, &sender_group, &t.topics.deliveries),
        (5, 5),
        "five deliveries, no more"
    );
    let outcomes = read_to_end(&t, &t.topics.outcomes);
    assert_eq!(outcomes.len(), 5, "one outcome per delivery");
    assert!(outcomes
        .iter()
        .all(
            |m| serde_json::from_slice::<Value>(m.payload().unwrap()).unwrap()["result"]
                == "delivered"
        ));
    assert_eq!(receiver.count(), 5, "one POST per delivery");

    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in receiver.received() {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        got.entry(r.path_and_query.clone())
            .or_default()
            .push(body["id"].as_str().unwrap().to_owned());
    }
    for ids in got.values_mut() {
        ids.sort();
    }
    let expected: BTreeMap<String, Vec<String>> = [
        ("/a", vec!["chg-update-rest"]),
        ("/b", vec!["chg-create-mike"]),
        (
            "/c",
            vec!["chg-update-rest", "chg-update-soap", "evt-click-mike"],
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        got, expected,
        "each subscription got exactly its events; database 13 got none"
    );

    let routed = count(&pipeline.profiles_metrics.routed, &["profiles"])
        + count(&pipeline.tracking_metrics.routed, &["tracking"]);
    let filtered = count(&pipeline.profiles_metrics.filtered, &["profiles"])
        + count(&pipeline.tracking_metrics.filtered, &["tracking"]);
    assert_eq!(routed, 5);
    assert_eq!(
        filtered, 4,
        "jane's create, delete, the subprofile change and jane's click matched nothing"
    );
    pipeline.stop().await;
}
