//! Every event type through the real pipeline on one local broker: the five tracking events
//! (click, open, bounce, failure, delivery) and the three profile changes (create, update,
//! delete), for profiles and for subprofiles of a collection, made through several triggers.
//! Each lands as a `json` POST on a loopback receiver, and the body carries the enriched fields
//! `docs/contracts.md` and `docs/events.md` document: the profile's e-mail, fields and
//! interests, the mailing's tags, subprofile fields, the tracking request's ip, user agent,
//! referer and headers, and for updates the previous values of the changed fields.
//!
//! One broker and one pipeline serve the whole scenario: the broker is the slow part.

use std::collections::HashMap;
use std::time::Duration;

use hookline_integration_tests::{
    committed_and_end, count, fixtures, key_path, produce, read_to_end, wait_quiescent, Pipeline,
};
use hookline_testkit::topics::json;
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use serde_json::{json, Value};

/// A `json` subscription on database 12; `extra` adds `collection`, `triggers`, ….
fn subscription(id: &str, url: &str, events: &[&str], extra: Value) -> (String, Value) {
    let mut fields = json!({"events": events});
    if let (Some(f), Some(extra)) = (fields.as_object_mut(), extra.as_object()) {
        f.extend(extra.clone());
    }
    fixtures::keyed_subscription(id, url, fields)
}

/// A profile change of profile `profile` (keyed by it), or of its subprofile `(collection,
/// subprofile)`.
fn change(
    id: &str,
    profile: &str,
    sub: Option<(&str, &str)>,
    action: &str,
    trigger: &str,
    minute: u32,
    fields: Value,
) -> (String, Value) {
    let c = json!({"id": id, "account": "1001", "database": "12", "profile": profile,
        "collection": sub.map(|s| s.0), "subprofile": sub.map(|s| s.1),
        "action": action, "trigger": trigger, "timestamp": format!("2026-11-25T10:{minute:02}:00Z"),
        "parameters": fields.clone(), "fields": fields});
    (format!("12:{profile}"), c)
}

/// The change with `interests` set.
fn with_interests(mut c: (String, Value), interests: Value) -> (String, Value) {
    c.1["interests"] = interests;
    c
}

/// A tracking event of `kind` for profile `profile`, with the type's own fields.
fn tracking(id: &str, kind: &str, profile: &str, own: Value) -> (String, Value) {
    let mut e = json!({"id": id, "type": kind, "account": "1001", "database": "12",
        "profile": profile, "collection": null, "subprofile": null, "mailing": "m-20261125-01",
        "timestamp": "2026-11-25T11:00:00Z", "tags": ["black-friday", "nl"]});
    for (k, v) in own.as_object().unwrap() {
        e[k] = v.clone();
    }
    (format!("12:{profile}"), e)
}

fn click_request() -> Value {
    json!({"ip": "203.0.113.7", "useragent": "Mozilla/5.0", "referer": "https://mail.example/",
           "headers": {"User-Agent": "Mozilla/5.0", "Accept-Language": "nl"},
           "original": "https://shop.example/offer"})
}

/// The bodies a receiver got, by event id; panics on a duplicate (none expected in a clean run).
fn bodies(r: &Receiver) -> HashMap<String, (Value, Option<String>)> {
    let mut out = HashMap::new();
    for post in r.received() {
        assert_eq!(
            post.header("content-type"),
            Some("application/json"),
            "json subscriptions get JSON bodies"
        );
        let body: Value = serde_json::from_slice(&post.body).unwrap();
        let id = body["id"].as_str().unwrap().to_owned();
        let event = post.header("x-hookline-event").map(str::to_owned);
        assert!(
            out.insert(id.clone(), (body, event)).is_none(),
            "one POST per event and subscription ({id})"
        );
    }
    out
}

fn assert_keys(body: &Value, keys: &[&str]) {
    let got: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(got, keys, "the documented fields, in the documented order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_type_arrives_enriched_as_documented() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    // One receiver per subscription, so each assertion also checks the routing.
    let tracking_rx = Receiver::start(200).await; // database level, all tracking events
    let coll_click_rx = Receiver::start(200).await; // collection 3, clicks only
    let profile_rx = Receiver::start(200).await; // profile changes by rest or import
    let coll_rx = Receiver::start(200).await; // collection 3, all changes
    let publisher_rx = Receiver::start(200).await; // updates by publisher or soap
    produce(
        &t,
        &t.topics.subscriptions,
        &[
            subscription(
                "sub-tracking",
                &tracking_rx.url("/tracking"),
                &["click", "open", "bounce", "failure", "delivery"],
                json!({}),
            ),
            subscription(
                "sub-coll-click",
                &coll_click_rx.url("/orders/click"),
                &["click"],
                json!({"collection": "3"}),
            ),
            subscription(
                "sub-profile",
                &profile_rx.url("/profile"),
                &["create", "update", "delete"],
                json!({"triggers": ["rest", "import"]}),
            ),
            subscription(
                "sub-coll",
                &coll_rx.url("/orders"),
                &["create", "update", "delete"],
                json!({"collection": "3"}),
            ),
            subscription(
                "sub-publisher",
                &publisher_rx.url("/publisher"),
                &["update"],
                json!({"triggers": ["publisher", "soap"]}),
            ),
        ],
    )
    .await;
    let pipeline = Pipeline::start(&t, &key_path("event-types"), &[]).await;

    let jane = json!({"email": "jane@example.com", "name": "Jane", "city": "Utrecht"});
    let jane2 = json!({"email": "jane@example.com", "name": "Jane", "city": "Amsterdam",
                       "phone": "+31 20 123 4567"});
    let mike = json!({"email": "mike@example.com", "name": "Mike", "city": "Delft"});
    let mike2 = json!({"email": "mike@example.com", "name": "Michael", "city": "Delft"});
    let mike3 = json!({"email": "mike@example.com", "name": "Michael", "city": "Leiden"});
    let changes = vec![
        // Jane (4711): created, updated by an import, with order 9 kept and order 10 made,
        // changed and removed.
        with_interests(
            change(
                "chg-jane-create",
                "4711",
                None,
                "create",
                "rest",
                0,
                jane.clone(),
            ),
            json!(["vip", "news"]),
        ),
        with_interests(
            change(
                "chg-jane-update",
                "4711",
                None,
                "update",
                "import",
                1,
                jane2.clone(),
            ),
            json!(["vip"]),
        ),
        change(
            "chg-order9-create",
            "4711",
            Some(("3", "9")),
            "create",
            "rest",
            2,
            json!({"order": "A-1001", "status": "paid"}),
        ),
        change(
            "chg-order10-create",
            "4711",
            Some(("3", "10")),
            "create",
            "publisher",
            3,
            json!({"order": "A-1002", "status": "new"}),
        ),
        change(
            "chg-order10-update",
            "4711",
            Some(("3", "10")),
            "update",
            "rest",
            4,
            json!({"order": "A-1002", "status": "shipped"}),
        ),
        change(
            "chg-order10-delete",
            "4711",
            Some(("3", "10")),
            "delete",
            "soap",
            5,
            json!({"order": "A-1002", "status": "shipped"}),
        ),
        // Mike (4712): created by an import, updated by rest and by soap, deleted.
        with_interests(
            change(
                "chg-mike-create",
                "4712",
                None,
                "create",
                "import",
                0,
                mike.clone(),
            ),
            json!(["news"]),
        ),
        change(
            "chg-mike-update",
            "4712",
            None,
            "update",
            "rest",
            1,
            mike2.clone(),
        ),
        change(
            "chg-mike-soap",
            "4712",
            None,
            "update",
            "soap",
            2,
            mike3.clone(),
        ),
        change(
            "chg-mike-delete",
            "4712",
            None,
            "delete",
            "rest",
            3,
            mike3.clone(),
        ),
        // A copy matches no subscription's triggers: filtered.
        change(
            "chg-copy",
            "4714",
            None,
            "create",
            "copy",
            0,
            json!({"email": "x@example.com"}),
        ),
    ];
    let n_changes = changes.len();
    produce(&t, &t.topics.profile_changes, &changes).await;
    // Every change has reached the table before any tracking event is produced, so the
    // tracking stage (which reads the table to its end before each batch) joins the final state.
    let n = n_changes as i64;
    let profiles_group = format!("{}profiles", t.prefix);
    let applied = eventually(Duration::from_secs(60), || {
        committed_and_end(&t, &profiles_group, &t.topics.profile_changes) == (n, n)
    })
    .await;
    assert!(applied, "the profiles stage commits every change");
    let rows = read_to_end(&t, &t.topics.profiles);
    assert_eq!(rows.len(), n_changes, "one table record per change");

    let mut to_order = tracking("evt-click-order", "click", "4711", click_request());
    to_order.1["collection"] = json!("3");
    to_order.1["subprofile"] = json!("9");
    let events = vec![
        tracking("evt-click", "click", "4711", {
            let mut c = click_request();
            c["recipient"] = json!("jane+mailing@example.com");
            c
        }),
        tracking(
            "evt-open",
            "open",
            "4711",
            json!({"ip": "198.51.100.23", "useragent": "Mail/1.0",
            "referer": "https://mail.example/inbox", "headers": {"User-Agent": "Mail/1.0", "Accept": "image/*"}}),
        ),
        tracking(
            "evt-bounce",
            "bounce",
            "4711",
            json!({"envelope": "bounce-4711@mail.example",
            "mime": "From: MAILER-DAEMON@isp.example\r\n\r\nmailbox full\r\n"}),
        ),
        tracking(
            "evt-failure",
            "failure",
            "4711",
            json!({"action": "failed", "state": "RCPT TO",
            "code": 550, "extended": "5.1.1", "description": "no such user", "mta": "mx1"}),
        ),
        tracking("evt-delivery", "delivery", "4711", json!({})),
        to_order,
        // Mike is deleted and 4799 never existed: delivered thin.
        tracking(
            "evt-open-unknown",
            "open",
            "4799",
            json!({"ip": "192.0.2.1"}),
        ),
        tracking("evt-click-deleted", "click", "4712", click_request()),
    ];
    let n_events = events.len();
    produce(&t, &t.topics.tracking, &events).await;

    // Expected POSTs per subscription.
    let expected = [
        (&tracking_rx, 8),
        (&coll_click_rx, 1),
        (&profile_rx, 5),
        (&coll_rx, 4),
        (&publisher_rx, 1),
    ];
    let total: usize = expected.iter().map(|(_, n)| n).sum();
    let settled = eventually(Duration::from_secs(60), || {
        count(&pipeline.tracking_metrics.consumed, &["tracking"]) == n_events as u64
            && count(&pipeline.profiles_metrics.consumed, &["profiles"]) == n_changes as u64
    })
    .await;
    assert!(settled, "every input record consumed");
    // The outcome is written after the POST is answered, and the sender commits a delivery
    // only after its outcome is acknowledged: once every delivery is committed, count the
    // outcomes and the POSTs.
    let sender_group = format!("{}sender", t.prefix);
    let sent = eventually(Duration::from_secs(90), || {
        let (committed, end) = committed_and_end(&t, &sender_group, &t.topics.deliveries);
        committed == end && end == total as i64
    })
    .await;
    assert!(
        sent,
        "{total} deliveries, all sent: {:?}",
        committed_and_end(&t, &sender_group, &t.topics.deliveries)
    );
    // Every stage has committed its input to the end: no delivery, outcome or POST is to come.
    wait_quiescent(&t, Duration::from_secs(60)).await;
    assert_eq!(
        committed_and_end(&t, &sender_group, &t.topics.deliveries),
        (total as i64, total as i64),
        "{total} deliveries, no more"
    );
    let outcomes = read_to_end(&t, &t.topics.outcomes);
    assert_eq!(outcomes.len(), total, "one outcome per delivery");
    assert!(outcomes.iter().all(|m| json(m)["result"] == "delivered"));
    let (tm, pm) = (&pipeline.tracking_metrics, &pipeline.profiles_metrics);
    assert_eq!(count(&tm.routed, &["tracking"]), 9);
    assert_eq!(count(&tm.joined, &["tracking"]), 6);
    assert_eq!(count(&tm.unjoined, &["tracking"]), 2);
    assert_eq!(count(&pm.routed, &["profiles"]), 10);
    assert_eq!(count(&pm.filtered, &["profiles"]), 1, "the copy");
    for (rx, n) in expected {
        assert_eq!(rx.count(), n, "POSTs at {}", rx.addr);
    }

    // --- Tracking events, database-level subscription -------------------------------------
    let tr = bodies(&tracking_rx);
    let joined_tail = ["database", "profile", "fields", "interests"];
    // Jane as the update left her.
    let jane_fields = jane2.clone();
    for (id, kind) in [
        ("evt-click", "click"),
        ("evt-open", "open"),
        ("evt-bounce", "bounce"),
        ("evt-failure", "failure"),
        ("evt-delivery", "delivery"),
    ] {
        let (b, header) = &tr[id];
        assert_eq!(header.as_deref(), Some(kind), "X-Hookline-Event of {id}");
        assert_eq!(b["type"], kind);
        assert_eq!(b["timestamp"], "2026-11-25 11:00:00");
        assert_eq!(b["time"], 1_795_604_400);
        assert_eq!(
            b["tags"],
            json!(["black-friday", "nl"]),
            "the mailing's tags"
        );
        assert_eq!(b["mailing"], "m-20261125-01");
        assert_eq!(b["database"], "12");
        assert_eq!(b["profile"], "4711");
        assert_eq!(b["fields"], jane_fields, "the profile's current fields");
        assert_eq!(
            b["interests"],
            json!(["vip"]),
            "the profile's current interests"
        );
        assert!(b.get("profile_known").is_none());
        assert!(
            b.get("account").is_none(),
            "the account travels in X-Copernica-ID"
        );
        if id != "evt-click" {
            assert_eq!(
                b["recipient"], "jane@example.com",
                "{id}: the profile's e-mail"
            );
        }
    }
    let (click, _) = &tr["evt-click"];
    assert_eq!(
        click["recipient"], "jane+mailing@example.com",
        "the event's own recipient wins"
    );
    let mut keys = vec![
        "id",
        "type",
        "timestamp",
        "time",
        "recipient",
        "tags",
        "mailing",
    ];
    keys.extend(["ip", "useragent", "referer", "headers", "original"]);
    keys.extend(joined_tail);
    assert_keys(click, &keys);
    assert_eq!(click["ip"], "203.0.113.7");
    assert_eq!(click["useragent"], "Mozilla/5.0");
    assert_eq!(click["referer"], "https://mail.example/");
    assert_eq!(
        click["headers"],
        json!({"User-Agent": "Mozilla/5.0", "Accept-Language": "nl"})
    );
    assert_eq!(click["original"], "https://shop.example/offer");

    let (open, _) = &tr["evt-open"];
    let mut keys = vec![
        "id",
        "type",
        "timestamp",
        "time",
        "recipient",
        "tags",
        "mailing",
    ];
    keys.extend(["ip", "useragent", "referer", "headers"]);
    keys.extend(joined_tail);
    assert_keys(open, &keys);
    assert_eq!(open["ip"], "198.51.100.23");
    assert_eq!(open["useragent"], "Mail/1.0");
    assert_eq!(open["referer"], "https://mail.example/inbox");
    assert_eq!(open["headers"]["Accept"], "image/*");

    let (bounce, _) = &tr["evt-bounce"];
    let mut keys = vec![
        "id",
        "type",
        "timestamp",
        "time",
        "recipient",
        "tags",
        "mailing",
    ];
    keys.extend(["envelope", "mime"]);
    keys.extend(joined_tail);
    assert_keys(bounce, &keys);
    assert_eq!(bounce["envelope"], "bounce-4711@mail.example");
    assert!(bounce["mime"].as_str().unwrap().contains("mailbox full"));

    let (failure, _) = &tr["evt-failure"];
    let mut keys = vec![
        "id",
        "type",
        "timestamp",
        "time",
        "recipient",
        "tags",
        "mailing",
    ];
    keys.extend(["action", "state", "code", "extended", "description", "mta"]);
    keys.extend(joined_tail);
    assert_keys(failure, &keys);
    assert_eq!(failure["action"], "failed");
    assert_eq!(failure["state"], "RCPT TO");
    assert_eq!(failure["code"], 550, "the code keeps its JSON type");
    assert_eq!(failure["extended"], "5.1.1");
    assert_eq!(failure["description"], "no such user");
    assert_eq!(failure["mta"], "mx1", "unknown fields pass through");

    let (delivery, _) = &tr["evt-delivery"];
    let mut keys = vec![
        "id",
        "type",
        "timestamp",
        "time",
        "recipient",
        "tags",
        "mailing",
    ];
    keys.extend(joined_tail);
    assert_keys(delivery, &keys);

    // A mailing to a subprofile: both the database-level and the collection's click
    // subscription get it, with the subprofile's fields after the parent's.
    for rx_bodies in [&tr, &bodies(&coll_click_rx)] {
        let (b, _) = &rx_bodies["evt-click-order"];
        let mut keys = vec![
            "id",
            "type",
            "timestamp",
            "time",
            "recipient",
            "tags",
            "mailing",
        ];
        keys.extend(["ip", "useragent", "referer", "headers", "original"]);
        keys.extend(joined_tail);
        keys.extend(["collection", "subprofile", "subprofile_fields"]);
        assert_keys(b, &keys);
        assert_eq!(b["recipient"], "jane@example.com");
        assert_eq!(b["fields"], jane_fields);
        assert_eq!(b["collection"], "3");
        assert_eq!(b["subprofile"], "9");
        assert_eq!(
            b["subprofile_fields"],
            json!({"order": "A-1001", "status": "paid"})
        );
        assert_eq!(b["headers"]["Accept-Language"], "nl");
    }

    // Profiles not in the table: delivered with what the event carries, and saying so.
    for id in ["evt-open-unknown", "evt-click-deleted"] {
        let (b, _) = &tr[id];
        assert_eq!(b["profile_known"], false, "{id}");
        assert_eq!(b["fields"], json!({}));
        assert_eq!(b["interests"], json!([]));
        assert_eq!(b["recipient"], Value::Null);
    }
    assert_eq!(tr["evt-click-deleted"].0["ip"], "203.0.113.7");

    // --- Profile changes ----------------------------------------------------------------------
    let pr = bodies(&profile_rx);
    let mut ids: Vec<&String> = pr.keys().collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "chg-jane-create",
            "chg-jane-update",
            "chg-mike-create",
            "chg-mike-delete",
            "chg-mike-update"
        ],
        "rest and import changes of profiles; no subprofile changes, no soap, no copy"
    );
    let profile_keys = [
        "id",
        "type",
        "trigger",
        "parameters",
        "timestamp",
        "time",
        "database",
        "profile",
        "created",
        "modified",
        "fields",
        "interests",
    ];
    let (b, header) = &pr["chg-jane-create"];
    assert_eq!(header.as_deref(), Some("create"));
    assert_keys(b, &profile_keys);
    assert_eq!(b["type"], "create");
    assert_eq!(b["trigger"], "rest");
    assert_eq!(b["parameters"], jane);
    assert_eq!(b["timestamp"], "2026-11-25 10:00:00");
    assert_eq!(b["time"], 1_795_600_800);
    assert_eq!(
        (b["database"].as_str(), b["profile"].as_str()),
        (Some("12"), Some("4711"))
    );
    assert_eq!(b["created"], "2026-11-25 10:00:00");
    assert_eq!(b["modified"], "2026-11-25 10:00:00");
    assert_eq!(b["fields"], jane);
    assert_eq!(b["interests"], json!(["vip", "news"]));

    let (b, header) = &pr["chg-jane-update"];
    assert_eq!(header.as_deref(), Some("update"));
    let mut keys = profile_keys.to_vec();
    keys.push("previous");
    assert_keys(b, &keys);
    assert_eq!(b["trigger"], "import");
    assert_eq!(b["created"], "2026-11-25 10:00:00", "kept from the table");
    assert_eq!(b["modified"], "2026-11-25 10:01:00");
    assert_eq!(b["fields"], jane2);
    assert_eq!(b["interests"], json!(["vip"]));
    assert_eq!(
        b["previous"],
        json!({"city": "Utrecht", "phone": null}),
        "previous values of the changed fields only (an added field was null)"
    );

    let (b, _) = &pr["chg-mike-update"];
    assert_eq!(b["trigger"], "rest");
    assert_eq!(b["previous"], json!({"name": "Mike"}));
    assert_eq!(b["interests"], json!(["news"]), "kept from the table");
    assert_eq!(b["created"], "2026-11-25 10:00:00");

    let (b, header) = &pr["chg-mike-delete"];
    assert_eq!(header.as_deref(), Some("delete"));
    assert_keys(b, &profile_keys);
    assert_eq!(b["fields"], mike3, "a delete carries the last state");
    assert_eq!(b["interests"], json!(["news"]));
    assert_eq!(b["created"], "2026-11-25 10:00:00");
    assert_eq!(b["modified"], "2026-11-25 10:03:00");

    // The soap update went only to the subscription that asks for soap.
    let pb = bodies(&publisher_rx);
    let (b, _) = &pb["chg-mike-soap"];
    assert_eq!(b["trigger"], "soap");
    assert_eq!(
        b["previous"],
        json!({"city": "Delft"}),
        "compared with the state the rest update left"
    );
    assert_eq!(b["fields"], mike3);

    // --- Subprofile changes: the collection's subscription, any trigger -------------------------
    let cr = bodies(&coll_rx);
    let mut ids: Vec<&String> = cr.keys().collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "chg-order10-create",
            "chg-order10-delete",
            "chg-order10-update",
            "chg-order9-create"
        ]
    );
    let sub_keys = [
        "id",
        "type",
        "trigger",
        "parameters",
        "timestamp",
        "time",
        "database",
        "profile",
        "collection",
        "subprofile",
        "created",
        "modified",
        "fields",
        "profile_fields",
    ];
    let (b, header) = &cr["chg-order10-create"];
    assert_eq!(header.as_deref(), Some("create"));
    assert_keys(b, &sub_keys);
    assert_eq!(b["trigger"], "publisher");
    assert_eq!(b["profile"], "4711", "keyed and named by the parent");
    assert_eq!(
        (b["collection"].as_str(), b["subprofile"].as_str()),
        (Some("3"), Some("10"))
    );
    assert_eq!(b["fields"], json!({"order": "A-1002", "status": "new"}));
    assert_eq!(b["profile_fields"], jane2, "the parent's fields");
    assert_eq!(b["created"], "2026-11-25 10:03:00");

    let (b, header) = &cr["chg-order10-update"];
    assert_eq!(header.as_deref(), Some("update"));
    let mut keys = sub_keys.to_vec();
    keys.push("previous");
    assert_keys(b, &keys);
    assert_eq!(b["previous"], json!({"status": "new"}));
    assert_eq!(
        b["created"], "2026-11-25 10:03:00",
        "the subprofile's own creation"
    );
    assert_eq!(b["modified"], "2026-11-25 10:04:00");

    let (b, header) = &cr["chg-order10-delete"];
    assert_eq!(header.as_deref(), Some("delete"));
    assert_keys(b, &sub_keys);
    assert_eq!(b["trigger"], "soap");
    assert_eq!(b["fields"], json!({"order": "A-1002", "status": "shipped"}));
    assert_eq!(b["created"], "2026-11-25 10:03:00");

    let (b, _) = &cr["chg-order9-create"];
    assert_eq!(b["fields"], json!({"order": "A-1001", "status": "paid"}));
    assert_eq!(b["profile_fields"], jane2);

    // The table holds what the changes left: Jane with order 9 only, Mike as a tombstone.
    let mut latest: HashMap<Vec<u8>, Option<Value>> = HashMap::new();
    for m in &rows {
        use rdkafka::message::Message;
        let v = m.payload().map(|p| serde_json::from_slice(p).unwrap());
        latest.insert(m.key().unwrap().to_vec(), v);
    }
    let jane_row = latest[b"12:4711".as_slice()].clone().unwrap();
    assert_eq!(jane_row["fields"], jane2);
    assert_eq!(
        jane_row["subprofiles"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["3:9"]
    );
    assert!(
        latest[b"12:4712".as_slice()].is_none(),
        "a delete is a tombstone"
    );

    pipeline.stop().await;
}
