//! The records the end-to-end tests write, in one place: what a subscription record looks like
//! on the `subscriptions` topic. Each test states only what it changes.

use serde_json::{json, Value};

/// A subscription record as the `subscriptions` topic holds it: account 1001, database 12,
/// clicks, JSON bodies, active, to `url`. Each field of `fields` (a JSON object) replaces or
/// adds one, e.g. `json!({"events": ["create"], "limits": {"per_second": 5}})`.
pub fn subscription(id: &str, url: &str, fields: Value) -> Value {
    let mut s = json!({"id": id, "account": "1001", "database": "12", "events": ["click"],
                       "url": url, "format": "json", "status": "active"});
    if let (Some(s), Some(fields)) = (s.as_object_mut(), fields.as_object()) {
        s.extend(fields.clone());
    }
    s
}

/// [`subscription`] keyed by its id, as the topic keys it.
pub fn keyed_subscription(id: &str, url: &str, fields: Value) -> (String, Value) {
    (id.to_owned(), subscription(id, url, fields))
}
