//! The admin API end to end, on a real broker, real loopback web sites and a DNS server on
//! loopback: accounts and isolation, subscriptions CRUD with read-after-write, lists by database
//! and collection, file and DNS verification, "unverified receives nothing", test webhook, check
//! now, attempt history and replay.
//!
//! Every request goes through [`Api`], which checks each answer against `schemas/openapi.json`
//! (documented status, JSON body valid against the documented schema); the test ends by
//! checking that every documented operation was exercised and by throwing generated bodies at
//! the create endpoint (each must answer 201 or a documented 400).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hookline_integration_tests::openapi::{Answer, OpenApi, Seen};
use hookline_integration_tests::{
    key_path, new_token as token, produce, read_to_end, start_admin, Pipeline,
};
use hookline_model::TokenRole;
use hookline_testkit::{eventually, Broker, DnsServer, StaticSite, TestTopics};
use serde_json::{json, Value};

/// A client of the admin API that checks every answer against the OpenAPI document
/// (`hookline_integration_tests::openapi`), with the token given per call.
struct Api(OpenApi);

impl Api {
    fn new(addr: SocketAddr, doc: Arc<Value>, seen: Seen) -> Self {
        Self(OpenApi::new(addr, doc, seen))
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let raw = body.map(|b| Bytes::from(serde_json::to_vec(&b).unwrap()));
        self.call_raw(method, path, token, raw).await
    }

    async fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Bytes>,
    ) -> Answer {
        self.0.request(method, path, token, &[], body).await
    }
}

fn openapi() -> Arc<Value> {
    hookline_integration_tests::openapi::document()
}

fn profile_create(id: &str, collection: Option<&str>) -> Value {
    let mut v = json!({"id": id, "account": "1001", "database": "12", "profile": "4711", "collection": null,
           "subprofile": null, "action": "create", "trigger": "rest", "timestamp": "2026-11-25T10:00:00Z",
           "parameters": {}, "fields": {"name": "Jane Doe", "email": "jane@example.com"},
           "interests": ["vip"]});
    if let Some(c) = collection {
        v["collection"] = json!(c);
        v["subprofile"] = json!("77");
        v["fields"] = json!({"size": "M"});
    }
    v
}

fn click(id: &str, database: &str) -> Value {
    json!({"id": id, "type": "click", "account": "1001", "database": database, "profile": "4711",
           "collection": null, "subprofile": null, "mailing": "m-1",
           "timestamp": "2026-11-25T10:15:00Z", "ip": "203.0.113.7", "tags": []})
}

fn posts(site: &StaticSite, path: &str) -> Vec<hookline_testkit::receiver::Received> {
    site.received()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path_and_query == path)
        .collect()
}

fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.body["error"]["code"], code, "{}", a.text);
}

/// What every scenario uses: the broker, the pipeline with its admin API, a client checking
/// answers against the OpenAPI document, a web site on loopback and three tokens.
struct World {
    _broker: Broker,
    t: TestTopics,
    pipeline: Pipeline,
    doc: Arc<Value>,
    seen: Seen,
    api: Api,
    site: StaticSite,
    alice: String,
    bob: String,
    operator: String,
}

impl World {
    async fn start() -> Self {
        let broker = Broker::start();
        let t = TestTopics::create(&broker.bootstrap, 2).await;
        let alice = token(&t, TokenRole::Account, Some("1001")).await;
        let bob = token(&t, TokenRole::Account, Some("2002")).await;
        let operator = token(&t, TokenRole::Operator, None).await;
        let pipeline = Pipeline::start(&t, &key_path("admin"), &["--max-attempts", "1"]).await;
        let doc = openapi();
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let api = Api::new(pipeline.admin, doc.clone(), seen.clone());
        let site = StaticSite::start().await;
        for p in ["/hooks/a.php", "/hooks/b.php", "/other/c.php"] {
            site.serve(p, 200, "ok");
        }
        site.serve("/down.php", 500, "boom");
        World {
            _broker: broker,
            t,
            pipeline,
            doc,
            seen,
            api,
            site,
            alice,
            bob,
            operator,
        }
    }

    /// Alice's token (account 1001).
    fn a(&self) -> Option<&str> {
        Some(&self.alice)
    }

    /// Bob's token (account 2002).
    fn b(&self) -> Option<&str> {
        Some(&self.bob)
    }

    /// The operator's token.
    fn op(&self) -> Option<&str> {
        Some(&self.operator)
    }
}

/// The subscriptions the scenarios share: Alice's s1 (database 12, clicks), s2 (collection 3,
/// creates), s3 (database 13, the failing endpoint), s4 (never verified), and Bob's sb.
struct Subs {
    s1_id: String,
    s1_token: String,
    s2_id: String,
    s2_token: String,
    s3_id: String,
    s3_token: String,
    sb_id: String,
    s4_id: String,
}

/// A subscription to create through the API.
fn new_sub(db: &str, url: String, events: Value) -> Value {
    json!({"database": db, "url": url, "events": events, "format": "json"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_api_end_to_end() {
    let w = World::start().await;
    tokens_are_checked(&w).await;
    let mut subs = subscriptions_are_created_and_read_right_after(&w).await;
    validation_answers_400_with_the_field(&w).await;
    lists_by_database_and_collection_per_account(&w, &subs).await;
    another_account_gets_404_and_nothing_else(&w, &subs).await;
    file_verification_names_both_locations(&w, &subs).await;
    an_unverified_subscription_receives_nothing(&w).await;
    once_verified_the_next_change_arrives_once(&w, &subs).await;
    subs.s4_id = a_test_webhook_is_signed_like_a_delivery(&w, &subs).await;
    check_now_tests_every_subscription(&w, &subs).await;
    attempt_history_and_replay(&w, &subs).await;
    pause_and_resume_need_a_verified_subscription(&w, &subs).await;
    updates_change_what_is_given(&w, &subs).await;
    delete_and_metrics_by_route(&w, &subs).await;
    let (api2, shutdown, _dns) = domains_on_a_second_instance(&w).await;
    generated_bodies_get_documented_answers(&w, &api2).await;
    portal_links_are_for_operators(&w).await;
    database_settings_are_per_account(&w).await;
    every_documented_operation_was_exercised(&w).await;
    shutdown.cancel();
    w.pipeline.stop().await;
}

/// Tokens: missing, malformed, unknown, wrong kind.
async fn tokens_are_checked(w: &World) {
    let api = &w.api;
    let alice = &w.alice;
    let a = w.a();
    let op = w.op();
    assert_error(
        &api.call("GET", "/v1/subscriptions", None, None).await,
        401,
        "unauthorized",
    );
    assert_error(
        &api.call("GET", "/v1/subscriptions", Some("nonsense"), None)
            .await,
        401,
        "unauthorized",
    );
    let forged = format!("{}x", &alice[..alice.len() - 1]);
    assert_error(
        &api.call("GET", "/v1/subscriptions", Some(&forged), None)
            .await,
        401,
        "unauthorized",
    );
    assert_error(
        &api.call("GET", "/v1/subscriptions", op, None).await,
        403,
        "forbidden",
    );
    assert_error(
        &api.call("GET", "/v1/operator/subscriptions", a, None).await,
        403,
        "forbidden",
    );
    assert_error(
        &api.call("GET", "/v1/nothing-here", a, None).await,
        404,
        "no_such_endpoint",
    );
    assert_error(
        &api.call("PUT", "/v1/subscriptions", a, None).await,
        405,
        "method_not_allowed",
    );
}

/// Create, and read right after the write; Bob's subscription on *his* database 12.
async fn subscriptions_are_created_and_read_right_after(w: &World) -> Subs {
    let api = &w.api;
    let site = &w.site;
    let a = w.a();
    let b = w.b();
    let s1 = api
        .call(
            "POST",
            "/v1/subscriptions",
            a,
            Some(new_sub("12", site.url("/hooks/a.php"), json!(["click"]))),
        )
        .await;
    assert_eq!(s1.status, 201, "{}", s1.text);
    assert_eq!(s1.body["status"], "unverified");
    assert_eq!(s1.body["account"], "1001");
    let s1_id = s1.body["id"].as_str().unwrap().to_owned();
    let s1_token = s1.body["verification"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s1.body["verification"]["file"],
        format!("hookline-{s1_token}.txt")
    );
    assert_eq!(
        s1.body["verification"]["locations"],
        json!([
            site.url(&format!("/hooks/hookline-{s1_token}.txt")),
            site.url(&format!("/hookline-{s1_token}.txt"))
        ])
    );
    let got = api
        .call("GET", &format!("/v1/subscriptions/{s1_id}"), a, None)
        .await;
    assert_eq!(got.status, 200, "read after write: {}", got.text);
    assert_eq!(got.body, s1.body);

    let mut s2_body = new_sub("12", site.url("/hooks/b.php"), json!(["create"]));
    s2_body["collection"] = json!("3");
    let s2 = api
        .call("POST", "/v1/subscriptions", a, Some(s2_body))
        .await;
    assert_eq!(s2.status, 201, "{}", s2.text);
    let s2_id = s2.body["id"].as_str().unwrap().to_owned();
    let s3 = api
        .call(
            "POST",
            "/v1/subscriptions",
            a,
            Some(new_sub("13", site.url("/down.php"), json!(["click"]))),
        )
        .await;
    let s3_id = s3.body["id"].as_str().unwrap().to_owned();
    // Bob's subscription on *his* database 12, on the same URL as Alice's unverified one.
    let sb = api
        .call(
            "POST",
            "/v1/subscriptions",
            b,
            Some(new_sub(
                "12",
                site.url("/hooks/b.php"),
                json!(["click", "create"]),
            )),
        )
        .await;
    assert_eq!(sb.status, 201);
    let sb_id = sb.body["id"].as_str().unwrap().to_owned();
    Subs {
        s1_id,
        s1_token,
        s2_id,
        s2_token: s2.body["verification"]["token"]
            .as_str()
            .unwrap()
            .to_owned(),
        s3_id,
        s3_token: s3.body["verification"]["token"]
            .as_str()
            .unwrap()
            .to_owned(),
        sb_id,
        s4_id: String::new(),
    }
}

/// Validation answers 400 with the field and the reason.
async fn validation_answers_400_with_the_field(w: &World) {
    let api = &w.api;
    let site = &w.site;
    let a = w.a();
    let bad = |body: Value| async { api.call("POST", "/v1/subscriptions", a, Some(body)).await };
    let e = bad(new_sub("12", site.url("/x"), json!(["clik"]))).await;
    assert_error(&e, 400, "invalid_request");
    assert_eq!(e.body["error"]["field"], "events[0]");
    assert!(
        e.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("clik"),
        "{}",
        e.text
    );
    let e = bad(new_sub("12", "not a url".into(), json!(["click"]))).await;
    assert_eq!(e.body["error"]["field"], "url", "{}", e.text);
    let e = bad(new_sub("1:2", site.url("/x"), json!(["click"]))).await;
    assert_eq!(e.body["error"]["field"], "database", "{}", e.text);
    let mut typo = new_sub("12", site.url("/x"), json!(["click"]));
    typo["evnts"] = json!(["open"]);
    let e = bad(typo).await;
    assert!(
        e.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("evnts"),
        "{}",
        e.text
    );
    let mut cond = new_sub("12", site.url("/x"), json!(["click"]));
    cond["conditions"] = json!({"all": []});
    let e = bad(cond).await;
    assert!(
        e.body["error"]["field"]
            .as_str()
            .unwrap()
            .starts_with("conditions"),
        "{}",
        e.text
    );
    let e = api
        .call_raw(
            "POST",
            "/v1/subscriptions",
            a,
            Some(Bytes::from_static(b"{not json")),
        )
        .await;
    assert_error(&e, 400, "invalid_json");
}

/// Lists by database and by collection, per account; the operator sees all.
async fn lists_by_database_and_collection_per_account(w: &World, subs: &Subs) {
    let api = &w.api;
    let a = w.a();
    let b = w.b();
    let op = w.op();
    let s1_id = subs.s1_id.as_str();
    let s2_id = subs.s2_id.as_str();
    let s3_id = subs.s3_id.as_str();
    let sb_id = subs.sb_id.as_str();
    let ids = |ans: &Answer| -> BTreeSet<String> {
        ans.body["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        ids(&api
            .call("GET", "/v1/subscriptions?database=12", a, None)
            .await),
        set(&[s1_id, s2_id])
    );
    assert_eq!(
        ids(&api
            .call("GET", "/v1/subscriptions?collection=3", a, None)
            .await),
        set(&[s2_id])
    );
    assert_eq!(
        ids(&api.call("GET", "/v1/subscriptions", a, None).await),
        set(&[s1_id, s2_id, s3_id])
    );
    assert_eq!(
        ids(&api
            .call("GET", "/v1/subscriptions?database=12", b, None)
            .await),
        set(&[sb_id])
    );
    assert_eq!(
        ids(&api
            .call(
                "GET",
                "/v1/subscriptions?status=unverified&database=13",
                a,
                None
            )
            .await),
        set(&[s3_id])
    );
    assert_eq!(
        ids(&api
            .call("GET", "/v1/operator/subscriptions", op, None)
            .await),
        set(&[s1_id, s2_id, s3_id, sb_id])
    );
    assert_eq!(
        ids(&api
            .call("GET", "/v1/operator/subscriptions?account=2002", op, None)
            .await),
        set(&[sb_id])
    );
    // The per-endpoint view lists the same subscriptions (its own test:
    // tests/operator_endpoints.rs); here its answer is checked against the document.
    let endpoints = api.call("GET", "/v1/operator/endpoints", op, None).await;
    assert_eq!(endpoints.status, 200, "{}", endpoints.text);
    assert_eq!(
        endpoints.body["endpoints"].as_array().map(Vec::len),
        Some(4),
        "{}",
        endpoints.text
    );
    assert_error(
        &api.call("GET", "/v1/subscriptions?database=1:2", a, None)
            .await,
        400,
        "invalid_request",
    );
    assert_error(
        &api.call("GET", "/v1/subscriptions?datbase=12", a, None)
            .await,
        400,
        "invalid_query",
    );
}

/// Isolation: every subscription endpoint with the other account's token answers 404 and
/// reveals nothing.
async fn another_account_gets_404_and_nothing_else(w: &World, subs: &Subs) {
    let api = &w.api;
    let a = w.a();
    let b = w.b();
    let s1_id = subs.s1_id.as_str();
    let sb_id = subs.sb_id.as_str();
    for (who, id, secret_path) in [(b, &s1_id, "/hooks/a.php"), (a, &sb_id, "/hooks/b.php")] {
        let base = format!("/v1/subscriptions/{id}");
        let calls: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", base.clone(), None),
            ("PATCH", base.clone(), Some(json!({"ordered": true}))),
            ("DELETE", base.clone(), None),
            ("POST", format!("{base}/pause"), None),
            ("POST", format!("{base}/resume"), None),
            ("POST", format!("{base}/verify"), None),
            ("GET", format!("{base}/verification-file"), None),
            ("POST", format!("{base}/test"), None),
            ("GET", format!("{base}/attempts"), None),
            (
                "POST",
                format!("{base}/replay"),
                Some(json!({"dry_run": true})),
            ),
        ];
        for (m, p, body) in calls {
            let ans = api.call(m, &p, who, body).await;
            assert_error(&ans, 404, "not_found");
            assert!(
                !ans.text.contains(secret_path),
                "{m} {p} leaked the other account's data: {}",
                ans.text
            );
        }
    }
    let nobody = api
        .call("GET", "/v1/subscriptions/sub_does_not_exist", a, None)
        .await;
    assert_error(&nobody, 404, "not_found");
}

/// File verification: a clear failure naming both locations, then the script's directory,
/// then the web root.
async fn file_verification_names_both_locations(w: &World, subs: &Subs) {
    let s1_token = subs.s1_token.clone();
    let s3_token = subs.s3_token.clone();
    let api = &w.api;
    let site = &w.site;
    let a = w.a();
    let s1_id = subs.s1_id.as_str();
    let s3_id = subs.s3_id.as_str();
    let e = api
        .call(
            "POST",
            &format!("/v1/subscriptions/{s1_id}/verify"),
            a,
            None,
        )
        .await;
    assert_error(&e, 422, "verification_failed");
    let msg = e.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("/hooks/hookline-{s1_token}.txt"))
            && msg.contains(&format!("/hookline-{s1_token}.txt")),
        "{msg}"
    );
    assert!(msg.contains("404"), "{msg}");
    site.serve(&format!("/hookline-{s1_token}.txt"), 200, "something else");
    let e = api
        .call(
            "POST",
            &format!("/v1/subscriptions/{s1_id}/verify"),
            a,
            None,
        )
        .await;
    assert_error(&e, 422, "verification_failed");
    assert!(
        e.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("something else"),
        "{}",
        e.text
    );
    site.serve(
        &format!("/hooks/hookline-{s1_token}.txt"),
        200,
        format!("{s1_token}\n"),
    );
    let v = api
        .call(
            "POST",
            &format!("/v1/subscriptions/{s1_id}/verify"),
            a,
            None,
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.text);
    assert_eq!(v.body["status"], "active");
    assert_eq!(
        v.body["verification"]["verified_by"],
        site.url(&format!("/hooks/hookline-{s1_token}.txt"))
    );
    site.serve(&format!("/hookline-{s3_token}.txt"), 200, s3_token.clone());
    let v = api
        .call(
            "POST",
            &format!("/v1/subscriptions/{s3_id}/verify"),
            a,
            None,
        )
        .await;
    assert_eq!(
        v.body["verification"]["verified_by"],
        site.url(&format!("/hookline-{s3_token}.txt")),
        "{}",
        v.text
    );
}

/// An unverified subscription receives nothing (nor does another account's subscription on a
/// database with the same id).
async fn an_unverified_subscription_receives_nothing(w: &World) {
    let site = &w.site;
    let t = &w.t;
    let pipeline = &w.pipeline;
    produce(
        t,
        &t.topics.profile_changes,
        &[("12:4711".into(), profile_create("chg-1", None))],
    )
    .await;
    produce(
        t,
        &t.topics.profile_changes,
        &[("12:4711".into(), profile_create("chg-2", Some("3")))],
    )
    .await;
    produce(
        t,
        &t.topics.tracking,
        &[("12:4711".into(), click("clk-1", "12"))],
    )
    .await;
    assert!(
        eventually(Duration::from_secs(30), || posts(site, "/hooks/a.php")
            .len()
            == 1)
        .await,
        "the verified subscription receives the click"
    );
    // Both changes are routed to nobody: the unverified subscription and Bob's are not offered
    // them, so nothing can be on its way to /hooks/b.php either.
    let m = &pipeline.profiles_metrics;
    let both_filtered = eventually(Duration::from_secs(30), || {
        hookline_integration_tests::count(&m.filtered, &["profiles"]) == 2
    })
    .await;
    assert!(both_filtered, "the profile stage filtered both changes");
    assert_eq!(
        hookline_integration_tests::count(&m.routed, &["profiles"]),
        0
    );
    assert!(
        posts(site, "/hooks/b.php").is_empty(),
        "unverified (and foreign) subscriptions received: {:?}",
        posts(site, "/hooks/b.php").len()
    );
}

/// Once verified, the next change arrives, exactly once (Bob's subscription stays silent).
async fn once_verified_the_next_change_arrives_once(w: &World, subs: &Subs) {
    let s2_token = subs.s2_token.clone();
    let api = &w.api;
    let site = &w.site;
    let t = &w.t;
    let pipeline = &w.pipeline;
    let a = w.a();
    let s2_id = subs.s2_id.as_str();
    // Once verified, the next change arrives, exactly once (Bob's subscription stays silent).
    site.serve(
        &format!("/hooks/hookline-{s2_token}.txt"),
        200,
        s2_token.clone(),
    );
    assert_eq!(
        api.call(
            "POST",
            &format!("/v1/subscriptions/{s2_id}/verify"),
            a,
            None
        )
        .await
        .status,
        200
    );
    // The profiles stage routes by its own view of the subscriptions, which follows the topic:
    // the change goes in once that view has read every subscription record, the verified
    // version included (produced earlier, it could be routed by the unverified one).
    let records = read_to_end(t, &t.topics.subscriptions).len() as u64;
    let m = &pipeline.profiles_metrics;
    assert!(
        eventually(Duration::from_secs(30), || {
            hookline_integration_tests::count(&m.table_records, &["subscriptions"]) >= records
        })
        .await,
        "the profiles stage read the {records} subscription records"
    );
    produce(
        t,
        &t.topics.profile_changes,
        &[("12:4711".into(), profile_create("chg-3", Some("3")))],
    )
    .await;
    assert!(
        eventually(Duration::from_secs(30), || posts(site, "/hooks/b.php")
            .len()
            == 1)
        .await,
        "the verified collection subscription receives the change"
    );
    assert_eq!(
        hookline_integration_tests::count(&m.routed, &["profiles"]),
        1,
        "one delivery only: Bob's subscription on the same URL is not offered Alice's change"
    );
    assert_eq!(posts(site, "/hooks/b.php").len(), 1);
    let delivered: Value = serde_json::from_slice(&posts(site, "/hooks/b.php")[0].body).unwrap();
    assert_eq!(delivered["id"], "chg-3");
}

/// Test webhook: signed like a delivery, with the real status of the endpoint; nothing is
/// sent to an unverified URL. Returns the unverified subscription it made.
async fn a_test_webhook_is_signed_like_a_delivery(w: &World, subs: &Subs) -> String {
    let api = &w.api;
    let site = &w.site;
    let a = w.a();
    let s1_id = subs.s1_id.as_str();
    let s3_id = subs.s3_id.as_str();
    let before = posts(site, "/hooks/a.php").len();
    let r = api
        .call("POST", &format!("/v1/subscriptions/{s1_id}/test"), a, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["delivered"], true);
    assert_eq!(r.body["http_status"], 200);
    assert_eq!(r.body["response_excerpt"], "ok");
    let sent = posts(site, "/hooks/a.php");
    assert_eq!(sent.len(), before + 1);
    let test_post = sent.last().unwrap();
    assert_eq!(
        test_post.header("x-hookline-delivery"),
        r.body["delivery_id"].as_str()
    );
    let keys = api.call("GET", "/v1/keys", None, None).await;
    let published = &keys.body[0];
    assert_eq!(published["algorithm"], "rsa-sha256", "{published:#}");
    let published_id = published["key_id"].as_str().unwrap().to_owned();
    let pem = published["public_key_pem"].as_str().unwrap().to_owned();
    let der = hookline_signing::keys::decode_pem(&pem).unwrap().1;
    // The key is looked up by the keyId the request names, as a receiver does: only the
    // published key id resolves.
    let key_id = hookline_signing::verify_request(
        "POST",
        "/hooks/a.php",
        |h| test_post.header(h),
        &test_post.body,
        |id| (id == published_id).then(|| der.clone()),
    )
    .expect("the test webhook carries a valid signature by the published key id");
    assert_eq!(key_id, published_id, "signed with the published key");
    let sample: Value = serde_json::from_slice(&test_post.body).unwrap();
    assert_eq!(sample["type"], "click");
    assert_eq!(sample["database"], "12");
    let custom = api
        .call(
            "POST",
            &format!("/v1/subscriptions/{s1_id}/test"),
            a,
            Some(json!({"body": {"hello": "world"}})),
        )
        .await;
    assert_eq!(custom.body["delivered"], true, "{}", custom.text);
    assert_eq!(
        posts(site, "/hooks/a.php").last().unwrap().body,
        Bytes::from_static(br#"{"hello":"world"}"#)
    );
    let down = api
        .call("POST", &format!("/v1/subscriptions/{s3_id}/test"), a, None)
        .await;
    assert_eq!(down.body["delivered"], false, "{}", down.text);
    assert_eq!(down.body["http_status"], 500);
    assert_eq!(down.body["error_class"], "http_5xx");
    assert_eq!(down.body["response_excerpt"], "boom");
    let s4 = api
        .call(
            "POST",
            "/v1/subscriptions",
            a,
            Some(new_sub("14", site.url("/other/c.php"), json!(["open"]))),
        )
        .await;
    let s4_id = s4.body["id"].as_str().unwrap().to_owned();
    assert_error(
        &api.call("POST", &format!("/v1/subscriptions/{s4_id}/test"), a, None)
            .await,
        409,
        "unverified",
    );
    assert!(
        posts(site, "/other/c.php").is_empty(),
        "nothing is sent to an unverified URL, not even a test"
    );
    s4_id
}

/// Check now: every subscription, real statuses, the unverified one skipped.
async fn check_now_tests_every_subscription(w: &World, subs: &Subs) {
    let api = &w.api;
    let a = w.a();
    let s2_id = subs.s2_id.as_str();
    let s3_id = subs.s3_id.as_str();
    let s4_id = subs.s4_id.as_str();
    let c = api.call("POST", "/v1/check", a, None).await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(
        (
            c.body["checked"].as_u64(),
            c.body["delivered"].as_u64(),
            c.body["failed"].as_u64(),
            c.body["skipped"].as_u64()
        ),
        (Some(3), Some(2), Some(1), Some(1)),
        "{}",
        c.text
    );
    let line = |id: &str| {
        c.body["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["subscription"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(line(s3_id)["result"]["http_status"], 500);
    assert_eq!(line(s2_id)["result"]["http_status"], 200);
    assert!(line(s4_id)["skipped"]
        .as_str()
        .unwrap()
        .contains("unverified"));
}

/// Attempt history and replay: a click to the failing endpoint dead-letters (one attempt
/// allowed), shows up in the history, and is re-sent by replay once the endpoint is back.
async fn attempt_history_and_replay(w: &World, subs: &Subs) {
    let api = &w.api;
    let site = &w.site;
    let t = &w.t;
    let a = w.a();
    let s3_id = subs.s3_id.as_str();
    produce(
        t,
        &t.topics.tracking,
        &[("13:4711".into(), click("clk-2", "13"))],
    )
    .await;
    let attempts_url = format!("/v1/subscriptions/{s3_id}/attempts?limit=10");
    let mut history = Value::Null;
    for _ in 0..60 {
        history = api.call("GET", &attempts_url, a, None).await.body;
        if history["attempts"]
            .as_array()
            .is_some_and(|l| l.iter().any(|o| o["result"] == "dead-lettered"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let last = history["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["result"] == "dead-lettered")
        .cloned();
    let last = last.unwrap_or_else(|| panic!("no dead-lettered attempt in {history:#}"));
    assert_eq!(last["http_status"], 500);
    assert_eq!(last["event_id"], "clk-2");
    assert_error(
        &api.call(
            "GET",
            &format!("/v1/subscriptions/{s3_id}/attempts?limit=0"),
            a,
            None,
        )
        .await,
        400,
        "invalid_request",
    );
    site.serve("/down.php", 200, "back");
    let dry = api
        .call(
            "POST",
            &format!("/v1/subscriptions/{s3_id}/replay"),
            a,
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(
        (dry.body["matched"].as_u64(), dry.body["dry_run"].as_bool()),
        (Some(1), Some(true)),
        "{}",
        dry.text
    );
    let before = posts(site, "/down.php").len();
    let rep = api
        .call(
            "POST",
            &format!("/v1/subscriptions/{s3_id}/replay"),
            a,
            None,
        )
        .await;
    assert_eq!(rep.body["matched"], 1, "{}", rep.text);
    assert!(
        eventually(Duration::from_secs(30), || posts(site, "/down.php").len()
            > before)
        .await,
        "the replayed delivery arrives"
    );
    let replayed = posts(site, "/down.php").into_iter().last().unwrap();
    assert_eq!(
        replayed.header("x-hookline-delivery"),
        last["delivery_id"].as_str(),
        "replay keeps the delivery id"
    );
    assert_error(
        &api.call(
            "POST",
            &format!("/v1/subscriptions/{s3_id}/replay"),
            a,
            Some(json!({"since": "yesterday"})),
        )
        .await,
        400,
        "invalid_request",
    );
}

/// Pause and resume; an unverified subscription can do neither.
async fn pause_and_resume_need_a_verified_subscription(w: &World, subs: &Subs) {
    let api = &w.api;
    let a = w.a();
    let s1_id = subs.s1_id.as_str();
    let s4_id = subs.s4_id.as_str();
    let p = api
        .call("POST", &format!("/v1/subscriptions/{s1_id}/pause"), a, None)
        .await;
    assert_eq!(p.body["status"], "paused", "{}", p.text);
    let r = api
        .call(
            "POST",
            &format!("/v1/subscriptions/{s1_id}/resume"),
            a,
            None,
        )
        .await;
    assert_eq!(r.body["status"], "active");
    assert_error(
        &api.call("POST", &format!("/v1/subscriptions/{s4_id}/pause"), a, None)
            .await,
        409,
        "unverified",
    );
    assert_error(
        &api.call(
            "POST",
            &format!("/v1/subscriptions/{s4_id}/resume"),
            a,
            None,
        )
        .await,
        409,
        "unverified",
    );
}

/// Updates change what is given; a new URL must be verified again.
async fn updates_change_what_is_given(w: &World, subs: &Subs) {
    let s1_token = subs.s1_token.clone();
    let api = &w.api;
    let site = &w.site;
    let a = w.a();
    let s1_id = subs.s1_id.as_str();
    let s2_id = subs.s2_id.as_str();
    let u = api
        .call(
            "PATCH",
            &format!("/v1/subscriptions/{s1_id}"),
            a,
            Some(json!({"format": "xml", "ordered": true, "limits": {"per_second": 5}})),
        )
        .await;
    assert_eq!(
        (
            u.body["format"].as_str(),
            u.body["ordered"].as_bool(),
            u.body["status"].as_str()
        ),
        (Some("xml"), Some(true), Some("active")),
        "{}",
        u.text
    );
    let u = api
        .call(
            "PATCH",
            &format!("/v1/subscriptions/{s1_id}"),
            a,
            Some(json!({"url": site.url("/other/c.php")})),
        )
        .await;
    assert_eq!(
        u.body["status"], "unverified",
        "a new URL must be verified again: {}",
        u.text
    );
    assert_ne!(u.body["verification"]["token"], s1_token);
    let u = api
        .call(
            "PATCH",
            &format!("/v1/subscriptions/{s2_id}"),
            a,
            Some(json!({"collection": null, "actions": ["update"]})),
        )
        .await;
    assert!(
        u.body.get("collection").is_none_or(Value::is_null),
        "{}",
        u.text
    );
    assert_error(
        &api.call(
            "PATCH",
            &format!("/v1/subscriptions/{s2_id}"),
            a,
            Some(json!({"events": []})),
        )
        .await,
        400,
        "invalid_request",
    );
}

/// Delete; requests are counted by route template, ids never become label values.
async fn delete_and_metrics_by_route(w: &World, subs: &Subs) {
    let api = &w.api;
    let b = w.b();
    let op = w.op();
    let s1_id = subs.s1_id.as_str();
    let sb_id = subs.sb_id.as_str();
    assert_eq!(
        api.call("DELETE", &format!("/v1/subscriptions/{sb_id}"), b, None)
            .await
            .status,
        204
    );
    assert_error(
        &api.call("GET", &format!("/v1/subscriptions/{sb_id}"), b, None)
            .await,
        404,
        "not_found",
    );
    // Requests are counted by route template: ids never become label values.
    let m = api.call("GET", "/v1/operator/metrics", op, None).await;
    assert_eq!(m.status, 200);
    assert!(
        m.text.contains(r#"hookline_admin_requests_total{method="GET",route="/v1/subscriptions/{id}",status="404"}"#),
        "{}",
        m.text
    );
    assert!(
        !m.text.contains(s1_id),
        "a subscription id leaked into a label"
    );
}

/// Domains (DNS TXT) on a second admin instance: https required, a DNS server on loopback.
/// Subscriptions from here on are on database 99, which gets no events: their made-up hosts
/// must never be resolved (tests talk to loopback only). Returns the second instance's client
/// and the token that stops it.
async fn domains_on_a_second_instance(
    w: &World,
) -> (Api, tokio_util::sync::CancellationToken, DnsServer) {
    let api = &w.api;
    let t = &w.t;
    let doc = &w.doc;
    let seen = &w.seen;
    let a = w.a();
    let b = w.b();
    let op = w.op();
    let dns = DnsServer::start().await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let dns_addr = dns.addr.to_string();
    let addr2 = start_admin(
        t,
        &key_path("admin-dns"),
        &["--dns-resolver", &dns_addr],
        Some(hookline_telemetry::Metrics::new()),
        &shutdown,
    )
    .await;
    let api2 = Api::new(addr2, doc.clone(), seen.clone());
    let e = api2
        .call(
            "POST",
            "/v1/subscriptions",
            a,
            Some(new_sub(
                "99",
                "http://hooks.shop.example.test/cb".into(),
                json!(["click"]),
            )),
        )
        .await;
    assert_error(&e, 400, "invalid_request");
    assert!(
        e.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("https"),
        "{}",
        e.text
    );
    let early = api2
        .call(
            "POST",
            "/v1/subscriptions",
            a,
            Some(new_sub(
                "99",
                "https://eu.hooks.shop.example.test/cb.php".into(),
                json!(["click"]),
            )),
        )
        .await;
    assert_eq!(early.body["status"], "unverified");
    let lookalike = api2
        .call(
            "POST",
            "/v1/subscriptions",
            a,
            Some(new_sub(
                "99",
                "https://evilshop.example.test/cb".into(),
                json!(["click"]),
            )),
        )
        .await;
    let d = api2
        .call(
            "POST",
            "/v1/domains",
            a,
            Some(json!({"domain": "Shop.Example.Test."})),
        )
        .await;
    assert_eq!(d.status, 201, "{}", d.text);
    assert_eq!(d.body["domain"], "shop.example.test");
    assert_eq!(d.body["status"], "pending");
    let (rec_name, rec_value) = (
        d.body["record"]["name"].as_str().unwrap().to_owned(),
        d.body["record"]["value"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        api2.call(
            "POST",
            "/v1/domains",
            a,
            Some(json!({"domain": "shop.example.test"}))
        )
        .await
        .body["record"]["value"],
        rec_value.as_str(),
        "adding again answers the same record"
    );
    assert_error(
        &api2
            .call(
                "POST",
                "/v1/domains",
                a,
                Some(json!({"domain": "not a domain!"})),
            )
            .await,
        400,
        "invalid_request",
    );
    assert_error(
        &api2
            .call("GET", "/v1/domains/shop.example.test", b, None)
            .await,
        404,
        "not_found",
    );
    assert_error(
        &api2
            .call("POST", "/v1/domains/shop.example.test/validate", b, None)
            .await,
        404,
        "not_found",
    );
    assert_error(
        &api2
            .call("DELETE", "/v1/domains/shop.example.test", b, None)
            .await,
        404,
        "not_found",
    );
    assert!(
        api2.call("GET", "/v1/domains", b, None).await.body["domains"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let e = api2
        .call("POST", "/v1/domains/shop.example.test/validate", a, None)
        .await;
    assert_error(&e, 422, "validation_failed");
    assert!(
        e.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(rec_name.trim_end_matches('.')),
        "the failure names what was looked up: {}",
        e.text
    );
    dns.add_txt(&rec_name, "hookline-verification=wrong");
    let e = api2
        .call("POST", "/v1/domains/shop.example.test/validate", a, None)
        .await;
    assert!(
        e.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wrong"),
        "the failure names what was found: {}",
        e.text
    );
    dns.add_txt(&rec_name, &rec_value);
    let ok = api2
        .call("POST", "/v1/domains/shop.example.test/validate", a, None)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["status"], "validated");
    assert_eq!(
        ok.body["activated"],
        json!([early.body["id"]]),
        "the subdomain's subscription is activated, the lookalike is not"
    );
    let later = api2
        .call(
            "POST",
            "/v1/subscriptions",
            a,
            Some(new_sub(
                "99",
                "https://deep.eu.shop.example.test/x".into(),
                json!(["click"]),
            )),
        )
        .await;
    assert_eq!(later.body["status"], "active", "{}", later.text);
    assert_eq!(
        later.body["verification"]["verified_by"],
        "domain:shop.example.test"
    );
    let look = api2
        .call(
            "GET",
            &format!(
                "/v1/subscriptions/{}",
                lookalike.body["id"].as_str().unwrap()
            ),
            a,
            None,
        )
        .await;
    assert_eq!(look.body["status"], "unverified");
    // Both instances read the same tables: the first sees the second's writes.
    let later_path = format!("/v1/subscriptions/{}", later.body["id"].as_str().unwrap());
    let mut seen_by_first = false;
    for _ in 0..50 {
        if api.call("GET", &later_path, a, None).await.status == 200 {
            seen_by_first = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        seen_by_first,
        "the first instance follows the second one's writes"
    );
    assert_eq!(
        api2.call("GET", "/v1/domains", a, None).await.body["domains"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api2.call("GET", "/v1/domains/shop.example.test", a, None)
            .await
            .body["status"],
        "validated"
    );
    let m = api2.call("GET", "/v1/operator/metrics", op, None).await;
    assert_eq!(m.status, 200);
    assert_eq!(
        api2.call("DELETE", "/v1/domains/shop.example.test", a, None)
            .await
            .status,
        204
    );
    assert_eq!(api2.call("GET", "/healthz", None, None).await.status, 200);
    let served = api2.call("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(
        served.body, **doc,
        "the served document is schemas/openapi.json"
    );
    (api2, shutdown, dns)
}

/// Generated bodies: whatever is thrown at create, the answer is documented.
async fn generated_bodies_get_documented_answers(w: &World, api2: &Api) {
    let a = w.a();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let values = [
        json!(null),
        json!(1),
        json!("x"),
        json!([]),
        json!({}),
        json!(true),
        json!(["click"]),
        json!("https://a.example/"),
        json!(-3.5),
    ];
    let fields = [
        "database",
        "collection",
        "events",
        "actions",
        "triggers",
        "conditions",
        "url",
        "format",
        "limits",
        "ordered",
        "signature",
        "bogus",
    ];
    for _ in 0..40 {
        let mut body = new_sub("99", "https://a.example.test/h".into(), json!(["click"]));
        for _ in 0..(next() % 3 + 1) {
            let f = fields[(next() % fields.len() as u64) as usize];
            if next() % 4 == 0 {
                body.as_object_mut().unwrap().remove(f);
            } else {
                body[f] = values[(next() % values.len() as u64) as usize].clone();
            }
        }
        let ans = api2
            .call("POST", "/v1/subscriptions", a, Some(body.clone()))
            .await;
        assert!(
            ans.status == 201 || ans.status == 400,
            "{body} → {}: {}",
            ans.status,
            ans.text
        );
    }
}

/// Portal links (the console's customer view; opened in tests/console.rs): operator only.
async fn portal_links_are_for_operators(w: &World) {
    let (api, op, a) = (&w.api, w.op(), w.a());
    let link = api
        .call(
            "POST",
            "/v1/operator/portal-links",
            op,
            Some(json!({"account": "1001"})),
        )
        .await;
    assert_eq!(link.status, 201, "{}", link.text);
    assert!(link.body["url"]
        .as_str()
        .unwrap()
        .contains("/console/portal/open?link="));
    assert_error(
        &api.call(
            "POST",
            "/v1/operator/portal-links",
            a,
            Some(json!({"account": "1001"})),
        )
        .await,
        403,
        "forbidden",
    );
    let bad = api
        .call(
            "POST",
            "/v1/operator/portal-links",
            op,
            Some(json!({"account": "1001", "accent_color": "red"})),
        )
        .await;
    assert_error(&bad, 400, "invalid_request");
    assert_eq!(bad.body["error"]["field"], "accent_color");
}

/// Database settings: set, read, listed and deleted per account (`tests/database_settings.rs`
/// shows the tracking stage using them).
async fn database_settings_are_per_account(w: &World) {
    let api = &w.api;
    let (a, b) = (w.a(), w.b());
    let body = json!({"email_field": "emailaddress"});
    let put = api
        .call("PUT", "/v1/databases/12", a, Some(body.clone()))
        .await;
    assert_eq!(put.status, 201, "{}", put.text);
    assert_eq!(put.body["name"], Value::Null);
    // Bob's database 12 is another row.
    let bobs = json!({"email_field": "mail", "name": "Bob's 12"});
    let put = api.call("PUT", "/v1/databases/12", b, Some(bobs)).await;
    assert_eq!(put.status, 201, "{}", put.text);
    let got = api.call("GET", "/v1/databases/12", a, None).await;
    assert_eq!(got.body["email_field"], "emailaddress", "{}", got.text);
    let list = api.call("GET", "/v1/databases?limit=1", a, None).await;
    assert_eq!(
        list.body["databases"].as_array().map(Vec::len),
        Some(1),
        "{}",
        list.text
    );
    assert_eq!(list.body["next_cursor"], Value::Null);
    let bad = api.call("PUT", "/v1/databases/a%3Ab", a, Some(body)).await;
    assert_error(&bad, 400, "invalid_request");
    assert_eq!(bad.body["error"]["field"], "database", "{}", bad.text);
    assert_eq!(
        api.call("DELETE", "/v1/databases/12", a, None).await.status,
        204
    );
    assert_error(
        &api.call("DELETE", "/v1/databases/12", a, None).await,
        404,
        "not_found",
    );
    let bobs = api.call("GET", "/v1/databases/12", b, None).await;
    assert_eq!(bobs.body["email_field"], "mail", "{}", bobs.text);
}

/// Every documented operation was exercised (and so checked against the document).
async fn every_documented_operation_was_exercised(w: &World) {
    let doc = &w.doc;
    let seen = &w.seen;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in ["get", "post", "patch", "delete", "put"] {
            if item.get(m).is_some() {
                documented.insert((m.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    let missing: Vec<_> = documented
        .difference(&seen.lock().unwrap())
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "operations never exercised: {missing:?}"
    );
}
