//! Cursor pagination on the real local broker: 250 subscriptions walked in pages of 40 with no
//! gap and no repeat while another subscription is created mid-walk; domains and attempt
//! history page the same way; a wrong cursor or limit answers 400.

mod api_client;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use api_client::{new_subscription, Admin, Api};
use hookline_integration_tests::produce;
use serde_json::{json, Value};

/// Walks `path` a page of `limit` at a time; `mid_walk` runs once after the second page.
async fn walk(
    api: &Api,
    path: &str,
    field: &str,
    limit: usize,
    mut mid_walk: impl FnMut(usize) -> Option<Value>,
    created: &mut Vec<String>,
) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let a = api.call("GET", &url, None).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let got = a.body[field].as_array().unwrap();
        assert!(got.len() <= limit);
        items.extend(got.iter().cloned());
        if let Some(body) = mid_walk(page) {
            let c = api.call("POST", "/v1/subscriptions", Some(body)).await;
            assert_eq!(c.status, 201, "{}", c.text);
            created.push(c.body["id"].as_str().unwrap().to_owned());
        }
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_walk_250_subscriptions_without_gaps_or_repeats() {
    let admin = Admin::start("api-pagination", &[]).await;
    let api = admin.client(&admin.token("1001").await);

    let mut originals = BTreeSet::new();
    for batch in 0..25 {
        let calls = (0..10).map(|i| {
            api.call(
                "POST",
                "/v1/subscriptions",
                Some(new_subscription("12", &format!("p{}", batch * 10 + i))),
            )
        });
        for a in futures::future::join_all(calls).await {
            assert_eq!(a.status, 201, "{}", a.text);
            originals.insert(a.body["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(originals.len(), 250);

    // Without limit: the first 100, in id order, and a cursor.
    let first = api.call("GET", "/v1/subscriptions", None).await;
    assert_eq!(first.body["subscriptions"].as_array().unwrap().len(), 100);
    assert!(first.body["next_cursor"].is_string());

    let mut created = Vec::new();
    let seen = walk(
        &api,
        "/v1/subscriptions?database=12",
        "subscriptions",
        40,
        |page| (page == 2).then(|| new_subscription("12", "mid-walk")),
        &mut created,
    )
    .await;
    let ids: Vec<String> = seen
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "no subscription shows twice");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order");
    assert!(
        originals.is_subset(&unique),
        "missing: {:?}",
        originals.difference(&unique).collect::<Vec<_>>()
    );
    let extra: Vec<&String> = unique.difference(&originals).collect();
    assert!(
        extra.iter().all(|id| created.contains(id)),
        "only the one created mid-walk may show besides: {extra:?}"
    );
    // It shows exactly when it sorts after the cursor it was created behind.
    let last_of_page_3 = &ids[119];
    assert_eq!(
        extra.len(),
        usize::from(created[0] > *last_of_page_3),
        "created {} behind {last_of_page_3}",
        created[0]
    );

    // Wrong cursors and limits.
    api.call("GET", "/v1/subscriptions?limit=0", None)
        .await
        .assert_error(400, "invalid_request");
    api.call("GET", "/v1/subscriptions?limit=1001", None)
        .await
        .assert_error(400, "invalid_request");
    api.call("GET", "/v1/subscriptions?cursor=bm90LWEtY3Vyc29y", None)
        .await
        .assert_error(400, "invalid_request");

    // Domains page by name.
    for d in ["c.example", "a.example", "b.example"] {
        let a = api
            .call("POST", "/v1/domains", Some(json!({"domain": d})))
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
    }
    let domains = walk(&api, "/v1/domains", "domains", 2, |_| None, &mut created).await;
    let names: Vec<&str> = domains
        .iter()
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.example", "b.example", "c.example"]);

    // Attempts page newest first, and an outcome arriving mid-walk shifts nothing.
    let sub = originals.iter().next().unwrap().clone();
    let outcome = |n: u32| {
        (
            sub.clone(),
            json!({"delivery_id": format!("dlv_{n}"), "event_id": format!("evt-{n}"),
                "subscription_id": sub, "account": "1001", "attempt": 1, "result": "delivered",
                "url": "http://127.0.0.1:9999/p0", "http_status": 200,
                "started_at": "2026-12-01T00:00:00Z", "finished_at": "2026-12-01T00:00:00Z",
                "latency_ms": 1.0}),
        )
    };
    let records: Vec<(String, Value)> = (0..5).map(outcome).collect();
    produce(&admin.topics, &admin.topics.topics.outcomes, &records).await;
    let path = format!("/v1/subscriptions/{sub}/attempts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = api.call("GET", &path, None).await;
        if a.body["attempts"].as_array().unwrap().len() == 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "5 outcomes never showed: {}",
            a.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p1 = api.call("GET", &format!("{path}?limit=2"), None).await;
    let cursor = p1.body["next_cursor"].as_str().unwrap().to_owned();
    produce(&admin.topics, &admin.topics.topics.outcomes, &[outcome(5)]).await;
    let mut events: Vec<String> = p1.body["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["event_id"].as_str().unwrap().to_owned())
        .collect();
    let mut next = Some(cursor);
    while let Some(c) = next.take() {
        let a = api
            .call("GET", &format!("{path}?limit=2&cursor={c}"), None)
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        events.extend(
            a.body["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["event_id"].as_str().unwrap().to_owned()),
        );
        next = a.body["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(events, ["evt-4", "evt-3", "evt-2", "evt-1", "evt-0"]);
}
