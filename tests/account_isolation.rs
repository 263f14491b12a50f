//! Two accounts on one database id, on a real local broker with the real stages: the `profiles`
//! table is keyed `<database>:<profile>`, so account 1001's profile `12:4711` and account 2002's
//! events for `12:4711` meet on one row. Every join refuses to cross accounts: 2002's click is
//! quarantined (`account-mismatch`) instead of carrying 1001's e-mail, fields and interests;
//! 2002's profile and subprofile changes are quarantined and leave 1001's row untouched; 1001's
//! own click still joins 1001's data. Each account has its own loopback receiver.

use std::time::Duration;

use hookline_integration_tests::{
    committed_and_end, count, fixtures, key_path, produce, read_to_end, wait_quiescent, Pipeline,
};
use hookline_testkit::topics::json;
use hookline_testkit::{eventually, read_until, Broker, Receiver, TestTopics};
use rdkafka::message::Message;
use serde_json::{json, Value};

const KEY: &str = "12:4711";
/// Everything of account 1001's profile that must never reach account 2002.
const SECRETS_1001: [&str; 4] = ["jane@example.com", "Jane Doe", "Utrecht", "vip-1001"];

fn subscription(account: &str, url: &str) -> Value {
    fixtures::subscription(
        &format!("sub-{account}"),
        url,
        json!({"account": account, "events": ["click", "create", "update", "delete"]}),
    )
}

/// A profile change of 12:4711; `interests` null leaves them out (the change keeps them).
fn change(id: &str, account: &str, action: &str, fields: Value, interests: Value) -> Value {
    let mut c = json!({"id": id, "account": account, "database": "12", "profile": "4711",
           "collection": null, "subprofile": null, "action": action, "trigger": "rest",
           "timestamp": "2026-11-25T10:00:00Z", "parameters": {}, "fields": fields});
    if !interests.is_null() {
        c["interests"] = interests;
    }
    c
}

fn click(id: &str, account: &str) -> Value {
    json!({"id": id, "type": "click", "account": account, "database": "12", "profile": "4711",
           "collection": null, "subprofile": null, "mailing": "m-20261125-01",
           "timestamp": "2026-11-25T10:15:00Z", "ip": "203.0.113.7",
           "original": "https://shop.example/offer", "tags": []})
}

fn bodies(r: &Receiver) -> Vec<Value> {
    r.received()
        .iter()
        .map(|p| serde_json::from_slice(&p.body).expect("JSON body"))
        .collect()
}

/// Quarantine records of `stage` whose reason is an account mismatch.
fn mismatches(t: &TestTopics, stage: &str, want: usize) -> Vec<Value> {
    let is_mismatch = |v: &Value| {
        v["stage"] == stage
            && v["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("account-mismatch"))
    };
    read_until(
        &t.settings,
        &t.topics.quarantine,
        Duration::from_secs(60),
        |ms| ms.iter().filter(|m| is_mismatch(&json(m))).count() >= want,
    )
    .iter()
    .map(json)
    .filter(is_mismatch)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_account_reaches_another_accounts_profile_on_the_same_database() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let (rx_1001, rx_2002) = (Receiver::start(200).await, Receiver::start(200).await);
    produce(
        &t,
        &t.topics.subscriptions,
        &[
            ("sub-1001".into(), subscription("1001", &rx_1001.url("/a"))),
            ("sub-2002".into(), subscription("2002", &rx_2002.url("/b"))),
        ],
    )
    .await;
    let pipeline = Pipeline::start(&t, &key_path("accounts"), &[]).await;

    // Account 1001's profile 12:4711, through the profiles stage.
    let fields_1001 = json!({"name": "Jane Doe", "email": "jane@example.com", "city": "Utrecht"});
    produce(
        &t,
        &t.topics.profile_changes,
        &[(
            KEY.into(),
            change(
                "chg-1001",
                "1001",
                "create",
                fields_1001.clone(),
                json!(["vip-1001"]),
            ),
        )],
    )
    .await;
    let rows = read_until(
        &t.settings,
        &t.topics.profiles,
        Duration::from_secs(60),
        |ms| !ms.is_empty(),
    );
    assert_eq!(rows.len(), 1, "1001's profile reached the table");

    // Account 2002 clicks on 12:4711: its stored row is 1001's.
    produce(
        &t,
        &t.topics.tracking,
        &[(KEY.into(), click("evt-2002", "2002"))],
    )
    .await;
    let q = mismatches(&t, "tracking", 1);
    assert_eq!(
        q.len(),
        1,
        "2002's click is quarantined as an account mismatch"
    );
    let reason = q[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("1001") && reason.contains("2002"),
        "{reason}"
    );
    for secret in SECRETS_1001 {
        assert!(!q[0].to_string().contains(secret), "{secret} in {q:?}");
    }

    // Account 2002 updates, adds a subprofile to, and deletes 12:4711: all refused.
    let fields_2002 = json!({"name": "Mallory", "email": "mallory@example.com"});
    let mut sub = change(
        "chg-2002-sub",
        "2002",
        "create",
        json!({"order": "B-1"}),
        Value::Null,
    );
    sub["collection"] = json!("3");
    sub["subprofile"] = json!("9");
    produce(
        &t,
        &t.topics.profile_changes,
        &[
            (
                KEY.into(),
                change(
                    "chg-2002-upd",
                    "2002",
                    "update",
                    fields_2002.clone(),
                    json!(["x"]),
                ),
            ),
            (KEY.into(), sub),
            (
                KEY.into(),
                change("chg-2002-del", "2002", "delete", fields_2002, Value::Null),
            ),
        ],
    )
    .await;
    assert_eq!(mismatches(&t, "profiles", 3).len(), 3);

    // 1001's row is untouched: once the profiles stage has committed all four changes (so
    // every output of theirs is acknowledged), the table topic still holds only 1001's create.
    let group = format!("{}profiles", t.prefix);
    let committed = eventually(Duration::from_secs(60), || {
        committed_and_end(&t, &group, &t.topics.profile_changes) == (4, 4)
    })
    .await;
    assert!(committed, "the profiles stage commits all four changes");
    assert_eq!(
        committed_and_end(&t, "reader", &t.topics.profiles).1,
        1,
        "2002 wrote nothing to the table"
    );
    let rows = read_until(
        &t.settings,
        &t.topics.profiles,
        Duration::from_secs(60),
        |ms| !ms.is_empty(),
    );
    assert_eq!(rows[0].key(), Some(KEY.as_bytes()));
    assert_eq!(json(&rows[0])["account"], "1001");

    // 1001's own click, taken up after 2002's changes were refused, carries 1001's data.
    produce(
        &t,
        &t.topics.tracking,
        &[(KEY.into(), click("evt-1001", "1001"))],
    )
    .await;
    assert!(
        eventually(Duration::from_secs(60), || bodies(&rx_1001)
            .iter()
            .any(|b| b["id"] == "evt-1001"))
        .await,
        "1001's click is delivered"
    );
    let b = bodies(&rx_1001);
    let click_1001 = b.iter().find(|b| b["id"] == "evt-1001").unwrap();
    assert_eq!(click_1001["recipient"], "jane@example.com");
    assert_eq!(click_1001["fields"], fields_1001);
    assert_eq!(click_1001["interests"], json!(["vip-1001"]));
    assert!(click_1001.get("profile_known").is_none());

    // Every routed delivery has been attempted once all outcomes are in; then the receivers
    // hold everything they will ever get.
    let (tm, pm) = (&pipeline.tracking_metrics, &pipeline.profiles_metrics);
    let routed = count(&tm.routed, &["tracking"]) + count(&pm.routed, &["profiles"]);
    assert_eq!(routed, 2, "1001's create and 1001's click");
    // The sender commits a delivery only after its outcome is acknowledged.
    let sender_group = format!("{}sender", t.prefix);
    let n = routed as i64;
    let sent = eventually(Duration::from_secs(60), || {
        committed_and_end(&t, &sender_group, &t.topics.deliveries) == (n, n)
    })
    .await;
    assert!(
        sent,
        "every routed delivery is sent: {:?}",
        committed_and_end(&t, &sender_group, &t.topics.deliveries)
    );
    // Every stage has committed its input to the end: the counts below are final.
    wait_quiescent(&t, Duration::from_secs(60)).await;
    assert_eq!(
        committed_and_end(&t, &sender_group, &t.topics.deliveries),
        (n, n),
        "no delivery beyond the two routed ones"
    );
    let outcomes = read_to_end(&t, &t.topics.outcomes);
    assert_eq!(outcomes.len() as u64, routed, "one outcome per delivery");
    assert_eq!(rx_1001.count(), 2, "1001's create and click, once each");
    assert_eq!(rx_2002.count(), 0, "2002's subscription receives nothing");
    let quarantined: Vec<Value> = read_to_end(&t, &t.topics.quarantine)
        .iter()
        .map(json)
        .collect();
    let by_stage = |stage: &str| quarantined.iter().filter(|q| q["stage"] == stage).count();
    assert_eq!(
        (by_stage("tracking"), by_stage("profiles"), quarantined.len()),
        (1, 3, 4),
        "(tracking, profiles, all) quarantined: 2002's click and its three changes, nothing else: {quarantined:#?}"
    );
    for body in bodies(&rx_2002) {
        for secret in SECRETS_1001 {
            assert!(
                !body.to_string().contains(secret),
                "{secret} reached 2002: {body}"
            );
        }
    }
    assert!(
        bodies(&rx_1001)
            .iter()
            .all(|b| !b.to_string().contains("Mallory")),
        "2002's data never reaches 1001 either"
    );
    assert_eq!(
        count(&tm.quarantined, &["tracking", "account-mismatch"]),
        1,
        "counted in the tracking stage's quarantine metric"
    );
    assert_eq!(count(&pm.quarantined, &["profiles", "account-mismatch"]), 3);
    pipeline.stop().await;
}
