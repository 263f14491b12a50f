//! Optimistic concurrency on subscriptions, on the real local broker: every answer about one
//! subscription carries its `ETag`; `PATCH`, `DELETE`, pause and resume with a stale
//! `If-Match` answer 412 `version_mismatch` and change nothing; a current one applies; no
//! `If-Match` applies to the current version (last writer wins, as documented).

mod api_client;

use api_client::{new_subscription, Admin};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_if_match_answers_412_and_changes_nothing() {
    let admin = Admin::start("api-concurrency", &[]).await;
    let api = admin.client(&admin.token("1001").await);

    let created = api
        .call(
            "POST",
            "/v1/subscriptions",
            Some(new_subscription("12", "a")),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["version"], 1);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/subscriptions/{id}");
    let first = created
        .header("etag")
        .expect("create answers an ETag")
        .to_owned();
    let read = api.call("GET", &path, None).await;
    assert_eq!(
        read.header("etag"),
        Some(first.as_str()),
        "GET shows the same ETag"
    );

    // Writer A changes the format with the ETag it read.
    let a = api
        .call_with(
            "PATCH",
            &path,
            &[("if-match", &first)],
            Some(json!({"format": "xml"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["version"], 2);
    let second = a.header("etag").unwrap().to_owned();
    assert_ne!(second, first);

    // Writer B still holds the first ETag: every write it tries is refused.
    let stale = [("if-match", first.as_str())];
    let b = api
        .call_with(
            "PATCH",
            &path,
            &stale,
            Some(json!({"format": "form", "ordered": true})),
        )
        .await;
    b.assert_error(412, "version_mismatch");
    assert_eq!(b.body["error"]["details"]["etag"], second.as_str());
    assert_eq!(b.body["error"]["details"]["version"], 2);
    api.call_with("DELETE", &path, &stale, None)
        .await
        .assert_error(412, "version_mismatch");
    api.call_with("POST", &format!("{path}/pause"), &stale, None)
        .await
        .assert_error(412, "version_mismatch");
    let weak = format!("W/{second}");
    api.call_with(
        "PATCH",
        &path,
        &[("if-match", &weak)],
        Some(json!({"ordered": true})),
    )
    .await
    .assert_error(412, "version_mismatch");

    // Nothing changed: same ETag, same content, still there.
    let after = api.call("GET", &path, None).await;
    assert_eq!(after.status, 200, "{}", after.text);
    assert_eq!(after.header("etag"), Some(second.as_str()));
    assert_eq!(after.body["format"], "xml");
    assert_eq!(after.body["ordered"], false);
    assert_eq!(after.body["version"], 2);

    // A list of tags matches when one is current; `*` matches any version.
    let listed = format!("{first}, {second}");
    let c = api
        .call_with(
            "PATCH",
            &path,
            &[("if-match", &listed)],
            Some(json!({"ordered": true})),
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.body["version"], 3);
    let d = api
        .call_with(
            "PATCH",
            &path,
            &[("if-match", "*")],
            Some(json!({"format": "json"})),
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text);

    // Without If-Match the write applies to whatever is current.
    let e = api
        .call("PATCH", &path, Some(json!({"format": "form"})))
        .await;
    assert_eq!(e.status, 200, "{}", e.text);
    assert_eq!(e.body["version"], 5);
    let current = e.header("etag").unwrap().to_owned();

    // A delete with the current ETag deletes.
    let gone = api
        .call_with("DELETE", &path, &[("if-match", &current)], None)
        .await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    api.call("GET", &path, None)
        .await
        .assert_error(404, "not_found");
}
