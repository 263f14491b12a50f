//! `"all"` in `actions` (the product's "Action Type: all") on the real local broker: accepted
//! on create and update, alone or in the list, and normalised on write to absent (all).

mod api_client;

use api_client::{new_subscription, Admin};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_in_actions_is_accepted_and_normalised_on_write() {
    let admin = Admin::start("api-actions", &[]).await;
    let api = admin.client(&admin.token("1001").await);

    let mut body = new_subscription("12", "all");
    body["events"] = json!(["create", "update"]);
    body["actions"] = json!("all");
    let created = api.call("POST", "/v1/subscriptions", Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(created.body.get("actions").is_none(), "{}", created.text);
    let path = format!("/v1/subscriptions/{}", created.body["id"].as_str().unwrap());

    let narrowed = api
        .call("PATCH", &path, Some(json!({"actions": ["update"]})))
        .await;
    assert_eq!(
        narrowed.body["actions"],
        json!(["update"]),
        "{}",
        narrowed.text
    );
    let widened = api
        .call("PATCH", &path, Some(json!({"actions": ["update", "all"]})))
        .await;
    assert_eq!(widened.status, 200, "{}", widened.text);
    let stored = api.call("GET", &path, None).await;
    assert!(stored.body.get("actions").is_none(), "{}", stored.text);

    let wrong = api
        .call("PATCH", &path, Some(json!({"actions": ["every"]})))
        .await;
    wrong.assert_error(400, "invalid_request");
    assert_eq!(wrong.body["error"]["field"], "actions");
}
