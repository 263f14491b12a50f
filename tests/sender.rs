//! The sender end to end, observed only from the outside: outcome records on `outcomes`,
//! records on `retries`, `dead-letter` and `subscriptions`, and the requests real HTTP
//! receivers on loopback get. Every test runs the whole pipeline in-process against its own
//! local broker; the retry schedule is shortened with `--retry-schedule` / `--max-attempts`.
//!
//! Traffic goes to 127.0.0.1 and ::1 only. The SSRF tests point subscriptions at loopback
//! receivers with a sender whose allow-list does NOT cover loopback, and check that nothing
//! arrives.

use std::time::Duration;

use hookline_integration_tests::{
    committed_and_end, count, fixtures, key_path, produce, read_to_end, wait_quiescent, Pipeline,
};
use hookline_testkit::topics::json;
use hookline_testkit::{eventually, read_until, Broker, Receiver, TestTopics};
use serde_json::{json, Value};

/// Time allowed for the pipeline to pick an event up and answer with an outcome.
const WAIT: Duration = Duration::from_secs(25);

/// An active JSON subscription to clicks on `database`.
fn subscription(id: &str, database: &str, url: &str) -> (String, Value) {
    fixtures::keyed_subscription(id, url, json!({"database": database}))
}

/// A click on database `database` by a profile the table does not know (delivered thin).
fn click(id: &str, database: &str) -> (String, Value) {
    (
        format!("{database}:4711"),
        json!({"id": id, "type": "click", "account": "1001", "database": database, "profile": "4711",
               "collection": null, "subprofile": null, "mailing": "m-1",
               "timestamp": "2026-11-25T10:15:00Z", "ip": "203.0.113.7", "useragent": "Mozilla/5.0",
               "headers": {}, "original": "https://shop.example/offer", "tags": []}),
    )
}

/// Reads `topic` from the beginning until `enough` holds for the records read (within
/// [`WAIT`]). Returns the values read: a wait for something to arrive, not a count (for that,
/// wait for the stage to commit and use [`values`]).
fn read_json(t: &TestTopics, topic: &str, enough: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let ms = read_until(&t.settings, topic, WAIT, |ms| {
        enough(&ms.iter().map(json).collect::<Vec<_>>())
    });
    ms.iter().map(json).collect()
}

/// The outcomes of one subscription, once `enough` holds for them (a wait, not a count).
fn outcomes_of(
    t: &TestTopics,
    subscription: &str,
    enough: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let of = |vs: &[Value]| -> Vec<Value> {
        vs.iter()
            .filter(|o| o["subscription_id"] == subscription)
            .cloned()
            .collect()
    };
    let all = read_json(t, &t.topics.outcomes, |vs| enough(&of(vs)));
    of(&all)
}

/// Waits until the sender has finished with everything on `deliveries` and `retries`: its
/// groups have committed up to those topics' end offsets, and it stores an input's offset only
/// after the records its attempt causes are acknowledged. From then on the output topics hold
/// everything those inputs cause and can be read to their end and counted exactly; a retry
/// scheduled by an attempt is on `retries` before the attempt's input is committed, so it is
/// waited for too. (For schedules whose retries all go to `retries`, such as `1s`.)
async fn wait_sender_idle(t: &TestTopics) {
    let group = format!("{}sender", t.prefix);
    let retries_group = format!("{group}-retries");
    let state = || {
        (
            committed_and_end(t, &group, &t.topics.deliveries),
            committed_and_end(t, &retries_group, &t.topics.retries),
        )
    };
    let idle = eventually(WAIT, || {
        let ((committed, end), (r_committed, r_end)) = state();
        committed == end && end > 0 && r_committed == r_end
    })
    .await;
    assert!(
        idle,
        "the sender commits every delivery and retry ((committed, end) of deliveries, retries: {:?})",
        state()
    );
}

/// Every record of `topic` up to its end offsets, as JSON (see [`read_to_end`]).
fn values(t: &TestTopics, topic: &str) -> Vec<Value> {
    read_to_end(t, topic).iter().map(json).collect()
}

/// The outcomes of one subscription, all of them: call after [`wait_sender_idle`].
fn all_outcomes_of(t: &TestTopics, subscription: &str) -> Vec<Value> {
    values(t, &t.topics.outcomes)
        .into_iter()
        .filter(|o| o["subscription_id"] == subscription)
        .collect()
}

/// Starts a broker, creates the topics, writes the subscriptions and starts the pipeline.
async fn setup(
    name: &str,
    subscriptions: &[(String, Value)],
    sender_args: &[&str],
    allow_networks: Option<&str>,
) -> (Broker, TestTopics, Pipeline) {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    produce(&t, &t.topics.subscriptions, subscriptions).await;
    let key = key_path(name);
    let pipeline = match allow_networks {
        None => Pipeline::start(&t, &key, sender_args).await,
        Some(allow) => Pipeline::start_with(&t, &key, sender_args, allow).await,
    };
    (broker, t, pipeline)
}

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

fn attempt_header(r: &hookline_testkit::Received) -> Option<&str> {
    r.header("x-hookline-attempt")
}

// 1 ───────────────────────────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_2xx_answer_is_one_delivered_outcome() {
    let receiver = Receiver::start(204).await;
    let (_broker, t, pipeline) = setup(
        "2xx",
        &[subscription("sub-ok", "12", &receiver.url("/ok"))],
        &["--retry-schedule", "1s", "--max-attempts", "3"],
        None,
    )
    .await;
    produce(&t, &t.topics.tracking, &[click("evt-ok", "12")]).await;

    outcomes_of(&t, "sub-ok", |o| !o.is_empty());
    wait_sender_idle(&t).await;
    let outcomes = all_outcomes_of(&t, "sub-ok");
    assert_eq!(outcomes.len(), 1, "one attempt, one outcome: {outcomes:#?}");
    let o = &outcomes[0];
    assert_eq!(o["result"], "delivered", "{o:#}");
    assert_eq!(o["attempt"], 1);
    assert_eq!(o["http_status"], 204);
    assert_eq!(o["event_id"], "evt-ok");
    assert_eq!(o["account"], "1001");
    assert!(o["error_class"].is_null(), "{o:#}");
    assert!(o["latency_ms"].as_f64().unwrap() >= 0.0);
    // Compared as times: the text drops trailing zeros of the fraction ("…:05Z" is before
    // "…:05.1Z" but sorts after it).
    let at = |field: &str| hookline_model::timefmt::parse(o[field].as_str().unwrap()).unwrap();
    assert!(at("started_at") <= at("finished_at"), "{o:#}");

    let posts = receiver.received();
    assert_eq!(posts.len(), 1, "exactly one POST");
    assert_eq!(posts[0].method, "POST");
    assert_eq!(posts[0].path_and_query, "/ok");
    assert_eq!(
        posts[0].header("x-hookline-delivery"),
        o["delivery_id"].as_str()
    );
    assert_eq!(attempt_header(&posts[0]), Some("1"));
    assert_eq!(posts[0].header("x-hookline-event"), Some("click"));
    let body: Value = serde_json::from_slice(&posts[0].body).unwrap();
    assert_eq!(body["id"], "evt-ok");

    // A delivered attempt schedules nothing and dead-letters nothing. (Those records would be
    // acknowledged before the delivery was committed, which it is.)
    let retries = values(&t, &t.topics.retries);
    assert!(retries.is_empty(), "no retry: {retries:#?}");
    let dead = values(&t, &t.topics.dead_letter);
    assert!(dead.is_empty(), "no dead letter: {dead:#?}");
    pipeline.stop().await;
}

// 2 ───────────────────────────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_500_is_retried_with_the_same_delivery_id_and_a_fresh_nonce() {
    let receiver = Receiver::start(200).await;
    receiver.script(vec![(500, vec![])]);
    let (_broker, t, pipeline) = setup(
        "500-then-200",
        &[subscription("sub-retry", "12", &receiver.url("/hook"))],
        &["--retry-schedule", "1s", "--max-attempts", "3"],
        None,
    )
    .await;
    produce(&t, &t.topics.tracking, &[click("evt-retry", "12")]).await;

    outcomes_of(&t, "sub-retry", |o| {
        o.iter().any(|o| o["result"] == "delivered")
    });
    wait_sender_idle(&t).await;
    let outcomes = all_outcomes_of(&t, "sub-retry");
    assert_eq!(outcomes.len(), 2, "two attempts: {outcomes:#?}");
    let (first, second) = (&outcomes[0], &outcomes[1]);
    assert_eq!(first["attempt"], 1, "{first:#}");
    assert_eq!(first["result"], "retrying", "{first:#}");
    assert_eq!(first["http_status"], 500);
    assert_eq!(first["error_class"], "http_5xx");
    assert_eq!(second["attempt"], 2, "{second:#}");
    assert_eq!(second["result"], "delivered", "{second:#}");
    assert_eq!(second["http_status"], 200);
    assert!(second["error_class"].is_null());
    let delivery_id = first["delivery_id"].as_str().unwrap();
    assert_eq!(
        second["delivery_id"], delivery_id,
        "one delivery, two attempts"
    );
    assert_eq!(first["event_id"], "evt-retry");

    let retries = values(&t, &t.topics.retries);
    assert_eq!(retries.len(), 1, "one retry scheduled: {retries:#?}");
    assert_eq!(retries[0]["attempt"], 2);
    assert_eq!(retries[0]["delivery"]["delivery_id"], delivery_id);
    assert_eq!(retries[0]["last_status"], 500);

    let posts = receiver.received();
    assert_eq!(posts.len(), 2, "two POSTs");
    assert_eq!(posts[0].header("x-hookline-delivery"), Some(delivery_id));
    assert_eq!(posts[1].header("x-hookline-delivery"), Some(delivery_id));
    assert_eq!(attempt_header(&posts[0]), Some("1"));
    assert_eq!(attempt_header(&posts[1]), Some("2"));
    let (n1, n2) = (posts[0].header("x-nonce"), posts[1].header("x-nonce"));
    assert!(n1.is_some_and(|n| !n.is_empty()), "attempt 1 has a nonce");
    assert_ne!(n1, n2, "every attempt has its own nonce");
    assert_ne!(
        posts[0].header("signature"),
        posts[1].header("signature"),
        "every attempt is signed anew"
    );
    assert_eq!(posts[0].body, posts[1].body, "the same body both times");
    let dead = values(&t, &t.topics.dead_letter);
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:#?}");
    pipeline.stop().await;
}

// 3 ───────────────────────────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_with_retry_after_is_honoured() {
    let receiver = Receiver::start(200).await;
    receiver.script(vec![(429, vec![("retry-after".into(), "2".into())])]);
    // The schedule's step (1 s, jittered to 0.5–1 s) is shorter than Retry-After: only
    // honouring the header makes the gap 2 s or more.
    let (_broker, t, pipeline) = setup(
        "429",
        &[subscription("sub-429", "12", &receiver.url("/hook"))],
        &["--retry-schedule", "1s", "--max-attempts", "3"],
        None,
    )
    .await;
    produce(&t, &t.topics.tracking, &[click("evt-429", "12")]).await;

    outcomes_of(&t, "sub-429", |o| {
        o.iter().any(|o| o["result"] == "delivered")
    });
    wait_sender_idle(&t).await;
    let outcomes = all_outcomes_of(&t, "sub-429");
    assert_eq!(outcomes.len(), 2, "{outcomes:#?}");
    assert_eq!(outcomes[0]["attempt"], 1);
    assert_eq!(outcomes[0]["result"], "retrying");
    assert_eq!(outcomes[0]["http_status"], 429);
    assert_eq!(outcomes[0]["error_class"], "http_4xx");
    assert_eq!(outcomes[1]["attempt"], 2);
    assert_eq!(outcomes[1]["result"], "delivered");

    let posts = receiver.received();
    assert_eq!(posts.len(), 2, "two POSTs");
    assert_eq!(attempt_header(&posts[1]), Some("2"));
    let gap = posts[1].at - posts[0].at;
    // Timestamps on topics have millisecond precision; allow for that truncation only.
    assert!(
        gap >= Duration::from_millis(1_950),
        "the second POST came {gap:?} after the first, before Retry-After: 2 allowed"
    );
    assert!(
        gap < Duration::from_secs(15),
        "but not absurdly late: {gap:?}"
    );

    // The scheduled record says so too.
    let retries = values(&t, &t.topics.retries);
    assert_eq!(retries.len(), 1, "{retries:#?}");
    let not_before =
        hookline_model::timefmt::parse(retries[0]["not_before"].as_str().unwrap()).unwrap();
    let finished =
        hookline_model::timefmt::parse(outcomes[0]["finished_at"].as_str().unwrap()).unwrap();
    assert!(
        (not_before - finished).as_seconds_f64() >= 1.95,
        "not_before {not_before} is less than 2 s after the 429 ({finished})"
    );
    pipeline.stop().await;
}

// 4 ───────────────────────────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_410_disables_the_subscription_and_later_deliveries_are_skipped() {
    // Every answer is 410: a POST after the disable would show up as a second `disabled`.
    let receiver = Receiver::start(410).await;
    let url = receiver.url("/gone");
    let (_broker, t, pipeline) = setup(
        "410",
        &[subscription("sub-gone", "12", &url)],
        &["--retry-schedule", "1s", "--max-attempts", "3"],
        None,
    )
    .await;
    produce(&t, &t.topics.tracking, &[click("evt-gone-1", "12")]).await;

    let outcomes = outcomes_of(&t, "sub-gone", |o| !o.is_empty());
    let o = &outcomes[0];
    assert_eq!(o["result"], "disabled", "{o:#}");
    assert_eq!(o["attempt"], 1);
    assert_eq!(o["http_status"], 410);
    assert_eq!(receiver.count(), 1);

    // A new version of the subscription, disabled, on the subscriptions topic.
    let subs = read_json(&t, &t.topics.subscriptions, |s| {
        s.iter().any(|s| s["status"] == "disabled")
    });
    assert_eq!(
        subs.len(),
        2,
        "the original and the disabled version: {subs:#?}"
    );
    let disabled = &subs[1];
    assert_eq!(disabled["id"], "sub-gone");
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(
        disabled["url"],
        url.as_str(),
        "the rest of the subscription is kept"
    );
    assert_eq!(disabled["database"], "12");
    assert_eq!(disabled["events"], json!(["click"]));

    // Nothing was scheduled for a 410.
    wait_sender_idle(&t).await;
    let subs = values(&t, &t.topics.subscriptions);
    assert_eq!(subs.len(), 2, "one disabled version, no more: {subs:#?}");
    let retries = values(&t, &t.topics.retries);
    assert!(retries.is_empty(), "no retry after 410: {retries:#?}");
    // The delivery the endpoint refused is not lost: it is dead-lettered, replayable once
    // the subscription is enabled again.
    let dead = values(&t, &t.topics.dead_letter);
    assert_eq!(
        dead.len(),
        1,
        "the refused delivery is dead-lettered: {dead:#?}"
    );
    assert_eq!(dead[0]["reason"], "subscription-disabled", "{:#}", dead[0]);
    assert_eq!(dead[0]["last_status"], 410, "{:#}", dead[0]);
    assert_eq!(dead[0]["delivery"]["delivery_id"], o["delivery_id"]);

    // A second event for the subscription, once the tracking stage's routing table holds the
    // disabled version (its subscriptions counter moves after the table is updated): the
    // routing stage drops it.
    let m = &pipeline.tracking_metrics;
    assert!(
        eventually(WAIT, || count(&m.table_records, &["subscriptions"]) == 2).await,
        "the tracking stage read the disabled version ({} subscription records)",
        count(&m.table_records, &["subscriptions"])
    );
    produce(&t, &t.topics.tracking, &[click("evt-gone-2", "12")]).await;
    // And a delivery that reaches the sender anyway (built before the routing table knew, say):
    // a copy of the first with new ids. The sender must skip it.
    let deliveries = values(&t, &t.topics.deliveries);
    assert_eq!(deliveries.len(), 1, "{deliveries:#?}");
    let mut second = deliveries[0].clone();
    second["delivery_id"] = json!("dlv_after_disable");
    second["event_id"] = json!("evt-gone-manual");
    produce(&t, &t.topics.deliveries, &[("sub-gone".into(), second)]).await;

    wait_quiescent(&t, WAIT).await;
    assert_eq!(
        (
            count(&m.consumed, &["tracking"]),
            count(&m.routed, &["tracking"]),
            count(&m.filtered, &["tracking"])
        ),
        (2, 1, 1),
        "(consumed, routed, filtered): the second click is dropped by routing"
    );
    let outcomes = all_outcomes_of(&t, "sub-gone");
    assert_eq!(
        outcomes.len(),
        2,
        "the 410 and the skipped copy, nothing for the filtered click: {outcomes:#?}"
    );
    let skipped = &outcomes[1];
    assert_eq!(skipped["delivery_id"], "dlv_after_disable", "{skipped:#}");
    assert_eq!(skipped["result"], "skipped-disabled", "{skipped:#}");
    assert_eq!(skipped["attempt"], 1);
    assert!(skipped["http_status"].is_null(), "{skipped:#}");
    assert_eq!(
        receiver.count(),
        1,
        "no POST after the subscription was disabled"
    );
    pipeline.stop().await;
}

// 5 ───────────────────────────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_delivery_is_dead_lettered() {
    let receiver = Receiver::start(500).await;
    let (_broker, t, pipeline) = setup(
        "dead",
        &[subscription("sub-dead", "12", &receiver.url("/down"))],
        &["--retry-schedule", "1s", "--max-attempts", "2"],
        None,
    )
    .await;
    produce(&t, &t.topics.tracking, &[click("evt-dead", "12")]).await;

    outcomes_of(&t, "sub-dead", |o| {
        o.iter().any(|o| o["result"] == "dead-lettered")
    });
    wait_sender_idle(&t).await;
    let outcomes = all_outcomes_of(&t, "sub-dead");
    assert_eq!(outcomes.len(), 2, "{outcomes:#?}");
    assert_eq!(outcomes[0]["attempt"], 1);
    assert_eq!(outcomes[0]["result"], "retrying");
    assert_eq!(outcomes[0]["http_status"], 500);
    assert_eq!(outcomes[0]["error_class"], "http_5xx");
    assert_eq!(outcomes[1]["attempt"], 2);
    assert_eq!(outcomes[1]["result"], "dead-lettered");
    assert_eq!(outcomes[1]["http_status"], 500);
    assert_eq!(outcomes[1]["error_class"], "http_5xx");
    let delivery_id = outcomes[0]["delivery_id"].as_str().unwrap();
    assert_eq!(outcomes[1]["delivery_id"], delivery_id);

    let dead = values(&t, &t.topics.dead_letter);
    assert_eq!(dead.len(), 1, "one dead letter: {dead:#?}");
    assert_eq!(dead[0]["delivery"]["delivery_id"], delivery_id);
    assert_eq!(dead[0]["delivery"]["event_id"], "evt-dead");
    assert_eq!(dead[0]["attempts"], 2);
    assert_eq!(dead[0]["last_status"], 500);
    let retries = values(&t, &t.topics.retries);
    assert_eq!(
        retries.len(),
        1,
        "only attempt 2 was scheduled: {retries:#?}"
    );
    assert_eq!(receiver.count(), 2, "max-attempts 2 means two POSTs");
    pipeline.stop().await;
}

// 6 ───────────────────────────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_answer_is_a_timeout() {
    // The answer comes 6 s after the request, the timeout is 1 s: an attempt that gave up at
    // the timeout took about 1 s, one that waited for the answer 6 s or more. Anything below
    // 5 s is the timeout, with 4 s of tolerance for a loaded machine.
    let receiver = Receiver::start_delayed(200, Duration::from_secs(6)).await;
    let (_broker, t, pipeline) = setup(
        "timeout",
        &[subscription("sub-slow", "12", &receiver.url("/slow"))],
        &[
            "--request-timeout",
            "1s",
            "--retry-schedule",
            "1s",
            "--max-attempts",
            "2",
        ],
        None,
    )
    .await;
    produce(&t, &t.topics.tracking, &[click("evt-slow", "12")]).await;

    outcomes_of(&t, "sub-slow", |o| {
        o.iter().any(|o| o["result"] == "dead-lettered")
    });
    wait_sender_idle(&t).await;
    let outcomes = all_outcomes_of(&t, "sub-slow");
    assert_eq!(outcomes.len(), 2, "{outcomes:#?}");
    for (o, result) in outcomes.iter().zip(["retrying", "dead-lettered"]) {
        assert_eq!(o["result"], result, "{o:#}");
        assert_eq!(o["error_class"], "timeout", "{o:#}");
        assert!(o["http_status"].is_null(), "no answer, no status: {o:#}");
        let latency = o["latency_ms"].as_f64().unwrap();
        assert!(
            (950.0..5_000.0).contains(&latency),
            "gave up after about the 1 s request timeout, not after the 6 s answer: {latency} ms"
        );
    }
    assert!(receiver.count() >= 1, "the request did reach the receiver");
    pipeline.stop().await;
}

// 7 ───────────────────────────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_connection_is_a_connect_error() {
    let port = closed_port();
    let (_broker, t, pipeline) = setup(
        "refused",
        &[subscription(
            "sub-refused",
            "12",
            &format!("http://127.0.0.1:{port}/hook"),
        )],
        &["--retry-schedule", "1s", "--max-attempts", "2"],
        None,
    )
    .await;
    produce(&t, &t.topics.tracking, &[click("evt-refused", "12")]).await;

    outcomes_of(&t, "sub-refused", |o| {
        o.iter().any(|o| o["result"] == "dead-lettered")
    });
    wait_sender_idle(&t).await;
    let outcomes = all_outcomes_of(&t, "sub-refused");
    assert_eq!(outcomes.len(), 2, "{outcomes:#?}");
    for (o, result) in outcomes.iter().zip(["retrying", "dead-lettered"]) {
        assert_eq!(o["result"], result, "{o:#}");
        assert_eq!(o["error_class"], "connect", "{o:#}");
        assert!(o["http_status"].is_null(), "{o:#}");
    }
    let dead = values(&t, &t.topics.dead_letter);
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert_eq!(dead[0]["attempts"], 2);
    assert!(dead[0]["last_status"].is_null());
    pipeline.stop().await;
}

// 8 ───────────────────────────────────────────────────────────────────────────────────────────

/// Checks that each subscription's single outcome is an immediate refusal by the guard, dead-
/// lettered without retry, and that the dead letters are there. Waits for the sender to have
/// committed everything first, so the counts (and the receivers' silence) are final.
async fn assert_refused_by_guard(t: &TestTopics, subs: &[&str]) {
    read_json(t, &t.topics.outcomes, |o| {
        subs.iter()
            .all(|s| o.iter().any(|o| o["subscription_id"] == *s))
    });
    wait_sender_idle(t).await;
    let all = values(t, &t.topics.outcomes);
    for s in subs {
        let mine: Vec<&Value> = all.iter().filter(|o| o["subscription_id"] == *s).collect();
        assert_eq!(mine.len(), 1, "{s}: one attempt, no retry: {mine:#?}");
        let o = mine[0];
        assert_eq!(o["result"], "dead-lettered", "{s}: {o:#}");
        assert_eq!(o["error_class"], "refused-by-guard", "{s}: {o:#}");
        assert_eq!(o["attempt"], 1);
        assert!(o["http_status"].is_null(), "{s}: {o:#}");
    }
    let dead = values(t, &t.topics.dead_letter);
    assert_eq!(dead.len(), subs.len(), "one dead letter each: {dead:#?}");
    for s in subs {
        assert!(
            dead.iter()
                .any(|d| d["delivery"]["subscription_id"] == *s && d["attempts"] == 1),
            "{s} dead-lettered after one attempt: {dead:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_guard_refuses_loopback_ip_literals_unless_allowed() {
    let v4 = Receiver::start(200).await;
    let v6 = Receiver::start_on("[::1]:0", 200).await;
    assert!(v6.url("/").starts_with("http://[::1]:"));
    // The allow-list is empty: loopback is not opened for this sender.
    let (_broker, t, pipeline) = setup(
        "ssrf-literals",
        &[
            subscription(
                "sub-v4",
                "12",
                &format!("http://127.0.0.1:{}/", v4.addr.port()),
            ),
            subscription("sub-v6", "12", &format!("http://[::1]:{}/", v6.addr.port())),
        ],
        &["--retry-schedule", "1s", "--max-attempts", "3"],
        Some(""),
    )
    .await;
    produce(&t, &t.topics.tracking, &[click("evt-ssrf", "12")]).await;

    assert_refused_by_guard(&t, &["sub-v4", "sub-v6"]).await;
    assert_eq!(v4.count(), 0, "nothing reached 127.0.0.1");
    assert_eq!(v6.count(), 0, "nothing reached ::1");
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_guard_refuses_names_that_resolve_to_loopback() {
    let receiver = Receiver::start(200).await;
    let (_broker, t, pipeline) = setup(
        "ssrf-name",
        &[subscription(
            "sub-localhost",
            "12",
            &format!("http://localhost:{}/", receiver.addr.port()),
        )],
        &["--retry-schedule", "1s", "--max-attempts", "3"],
        Some(""),
    )
    .await;
    produce(&t, &t.topics.tracking, &[click("evt-ssrf-name", "12")]).await;

    assert_refused_by_guard(&t, &["sub-localhost"]).await;
    assert_eq!(receiver.count(), 0, "nothing reached localhost");
    pipeline.stop().await;
}

// 9 ───────────────────────────────────────────────────────────────────────────────────────────

/// How long the failing endpoint of the starvation test takes to answer its 500.
const SLOW_FAILURE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_endpoint_does_not_starve_a_healthy_one() {
    // A fails slowly: every request holds one of its slots for SLOW_FAILURE, then gets a 500.
    // An endpoint that failed at once would never hold anything up.
    let dead = Receiver::start_delayed(500, SLOW_FAILURE).await;
    let healthy = Receiver::start(200).await;
    // A listens to database 12, B to database 13.
    let (_broker, t, pipeline) = setup(
        "starve",
        &[
            subscription("sub-a-failing", "12", &dead.url("/a")),
            subscription("sub-b-healthy", "13", &healthy.url("/b")),
        ],
        &["--retry-schedule", "1s", "--max-attempts", "50"],
        None,
    )
    .await;
    let mut events = Vec::new();
    for i in 0..20 {
        events.push(click(&format!("evt-a-{i}"), "12"));
        events.push(click(&format!("evt-b-{i}"), "13"));
    }
    produce(&t, &t.topics.tracking, &events).await;

    assert!(
        eventually(WAIT, || healthy.count() >= 20).await,
        "the healthy endpoint got {} of 20 events within {WAIT:?}",
        healthy.count()
    );
    // A's deliveries keep being retried, but every delivery's first attempt is over once the
    // sender has committed all 40 on `deliveries` (an input is committed only after what its
    // attempt wrote is acknowledged): then B's outcomes can be counted.
    let group = format!("{}sender", t.prefix);
    let first_attempts_done = eventually(WAIT, || {
        committed_and_end(&t, &group, &t.topics.deliveries) == (40, 40)
    })
    .await;
    assert!(
        first_attempts_done,
        "every delivery had its first attempt: {:?}",
        committed_and_end(&t, &group, &t.topics.deliveries)
    );
    let b = all_outcomes_of(&t, "sub-b-healthy");
    assert_eq!(b.len(), 20, "{b:#?}");
    assert!(
        b.iter()
            .all(|o| o["result"] == "delivered" && o["attempt"] == 1),
        "every B event delivered at the first attempt: {b:#?}"
    );
    let mut ids: Vec<&str> = b.iter().map(|o| o["event_id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20, "20 distinct events");
    assert_eq!(healthy.count(), 20, "no duplicates at B");

    // Not starved: B's latency is its own. Every B delivery reached B before A's first
    // request could have had its answer (A's first arrival + SLOW_FAILURE), so none of them
    // waited for a slot, a queue or a partition held by A. And each B attempt took a fraction
    // of A's answer time.
    let first_at_a = dead.received().iter().map(|p| p.at).min().unwrap();
    let last_at_b = healthy.received().iter().map(|p| p.at).max().unwrap();
    assert!(
        last_at_b < first_at_a + SLOW_FAILURE,
        "B's last delivery arrived {:?} after A's first request, not before A's first answer ({SLOW_FAILURE:?})",
        last_at_b.saturating_duration_since(first_at_a)
    );
    let slowest_b = b
        .iter()
        .map(|o| o["latency_ms"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(
        slowest_b < SLOW_FAILURE.as_millis() as f64 / 2.0,
        "B's slowest attempt took {slowest_b} ms, A's take {SLOW_FAILURE:?}"
    );
    eprintln!(
        "B's last delivery {:?} after A's first request; B's slowest attempt {slowest_b} ms",
        last_at_b.saturating_duration_since(first_at_a)
    );

    // Meanwhile A is failing and being retried, not given up on or dropped.
    let a = outcomes_of(&t, "sub-a-failing", |o| {
        o.iter().filter(|o| o["attempt"] == 1).count() >= 20
    });
    let mut a_events: Vec<&str> = a
        .iter()
        .filter(|o| o["attempt"] == 1)
        .map(|o| o["event_id"].as_str().unwrap())
        .collect();
    a_events.sort_unstable();
    a_events.dedup();
    assert_eq!(a_events.len(), 20, "every A event had its first attempt");
    // Each A attempt failed and is to be tried again: either the endpoint was called and said
    // 500, or its circuit was open and it was not called at all.
    for o in &a {
        match o["result"].as_str() {
            Some("retrying") => {
                assert_eq!(o["error_class"], "http_5xx", "{o:#}");
                assert_eq!(o["http_status"], 500, "{o:#}");
                let latency = o["latency_ms"].as_f64().unwrap();
                assert!(
                    latency >= SLOW_FAILURE.as_millis() as f64 - 50.0,
                    "A answered slowly ({latency} ms): {o:#}"
                );
            }
            Some("circuit-open") => assert!(o["http_status"].is_null(), "{o:#}"),
            _ => panic!("A's attempts are retrying (or held by an open circuit): {o:#}"),
        }
    }
    assert!(
        a.iter().any(|o| o["result"] == "retrying"),
        "A's endpoint was actually tried"
    );
    assert!(dead.count() >= 1, "A's endpoint was called");
    pipeline.stop().await;
}
