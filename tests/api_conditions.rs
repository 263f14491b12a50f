//! `conditions_text` on the real local broker: the text form is accepted on create and update,
//! stored as the JSON tree, refused with the line and column of the mistake, and not allowed
//! together with `conditions`.

mod api_client;

use api_client::{new_subscription, Admin};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_text_is_parsed_into_the_stored_tree() {
    let admin = Admin::start("api-conditions", &[]).await;
    let api = admin.client(&admin.token("1001").await);

    let mut body = new_subscription("12", "text");
    body["conditions_text"] = json!(
        r#"name contains "Mike" and (interest vip or signup after -30d) and not email is_email"#
    );
    let created = api.call("POST", "/v1/subscriptions", Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let tree = json!({"all": [
        {"field": "name", "op": "contains", "value": "Mike"},
        {"any": [{"interest": "vip", "op": "has"},
                 {"field": "signup", "op": "after", "value": "-30d"}]},
        {"not": {"field": "email", "op": "is_email"}}]});
    assert_eq!(created.body["conditions"], tree);
    assert!(
        created.body.get("conditions_text").is_none(),
        "only the tree is stored"
    );
    let path = format!("/v1/subscriptions/{}", created.body["id"].as_str().unwrap());
    assert_eq!(api.call("GET", &path, None).await.body["conditions"], tree);

    // A mistake names the line and column.
    let wrong = api
        .call(
            "PATCH",
            &path,
            Some(json!({"conditions_text": "city equals \"Utrecht\" and\n  zip regexp \"[\""})),
        )
        .await;
    wrong.assert_error(400, "invalid_request");
    assert_eq!(wrong.body["error"]["field"], "conditions_text");
    assert_eq!(
        wrong.body["error"]["details"],
        json!({"line": 2, "column": 14})
    );
    assert!(
        wrong.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 2, column 14: "),
        "{}",
        wrong.text
    );
    assert_eq!(
        api.call("GET", &path, None).await.body["conditions"],
        tree,
        "unchanged"
    );

    // Both forms at once are refused.
    api.call(
        "PATCH",
        &path,
        Some(json!({"conditions_text": "a is_empty", "conditions": {"field": "b", "op": "is_empty"}})),
    )
    .await
    .assert_error(400, "invalid_request");

    let changed = api
        .call(
            "PATCH",
            &path,
            Some(json!({"conditions_text": "interest vip gained"})),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(
        changed.body["conditions"],
        json!({"interest": "vip", "op": "gained"})
    );
    let cleared = api
        .call("PATCH", &path, Some(json!({"conditions_text": ""})))
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    assert!(cleared.body["conditions"].is_null(), "{}", cleared.text);
}
