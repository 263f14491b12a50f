//! Fixed data the targets run fuzzed input against: a subscription table that routes the seeds'
//! account and database in every format, a stored profile row, and a fixed "now" so a run is
//! reproducible.

use std::sync::OnceLock;

use hookline_model::Enriched;
use hookline_model::{
    AccountId, CollectionId, DatabaseId, ProfileChange, ProfileId, ProfileState, Subscription,
    TrackingEvent,
};
use hookline_routing::{CompiledSubscription, SubscriptionTable};
use serde_json::{json, Map, Value};
use time::macros::datetime;
use time::OffsetDateTime;

/// The account and database of the sample subscriptions (and of the seeds).
pub(crate) const ACCOUNT: &str = "1001";
pub(crate) const DATABASE: &str = "12";

/// The moment relative dates in conditions are measured from.
pub(crate) fn now() -> OffsetDateTime {
    datetime!(2026-11-25 12:00 UTC)
}

/// Subscriptions of [`ACCOUNT`] on [`DATABASE`]: every event kind, each payload format, a
/// collection scope, and conditions over fields, events, interests, tags and dates.
fn subscriptions() -> Value {
    let all =
        json!(["click", "open", "bounce", "failure", "delivery", "create", "update", "delete"]);
    json!([
        {"id": "all-form", "events": all, "format": "form"},
        {"id": "changes-json", "events": ["create", "update", "delete"], "format": "json",
         "conditions": {"any": [
            {"field": "email", "op": "changed"},
            {"interest": "vip", "op": "gained"},
            {"interest": "vip", "op": "lost"},
            {"op": "new_profile"}]}},
        {"id": "tracking-xml", "events": ["click", "open", "bounce", "failure", "delivery"],
         "format": "xml", "signature": "standard-webhooks",
         "conditions": {"all": [
            {"not": {"field": "email", "op": "is_empty"}},
            {"any": [
                {"event": "original", "op": "regexp", "value": "^https?://[^/]+/"},
                {"tag": "bf-", "op": "starts_with"},
                {"field": "signup", "op": "after", "value": "-30d"},
                {"field": "age", "op": "more", "value": 17}]}]}},
        {"id": "orders-form", "collection": "7", "events": all, "format": "form",
         "conditions": {"any": [
            {"subprofile_field": "total", "op": "more", "value": "3", "numeric": true},
            {"field": "birthdate", "op": "after", "value": "-1d", "ignore_year": true},
            {"field": "city", "op": "equals", "other_field": "home_city"}]}}
    ])
}

/// The sample subscriptions, validated and compiled once.
pub(crate) fn table() -> &'static SubscriptionTable {
    static TABLE: OnceLock<SubscriptionTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = SubscriptionTable::new();
        let Value::Array(subs) = subscriptions() else {
            unreachable!("the sample subscriptions are a list")
        };
        for mut sub in subs {
            sub["account"] = json!(ACCOUNT);
            sub["database"] = json!(DATABASE);
            sub["url"] = json!("https://hooks.example/in");
            sub["status"] = json!("active");
            let sub: Subscription = serde_json::from_value(sub).expect("a sample subscription");
            let compiled = CompiledSubscription::compile(sub, true).expect("a valid sample");
            table.insert(compiled);
        }
        table
    })
}

/// A stored profile row under the key of (`database`, `profile`), of `account`: fields the
/// sample conditions read, interests, and one subprofile of collection 7.
pub(crate) fn profile_row(
    account: &AccountId,
    database: &DatabaseId,
    profile: &ProfileId,
) -> ProfileState {
    ProfileState {
        account: account.clone(),
        database: database.clone(),
        profile: profile.clone(),
        created: Some("2026-01-02T03:04:05Z".into()),
        modified: Some("2026-11-20T08:00:00Z".into()),
        fields: object(
            json!({"email": "jane@example.com", "name": "Jane", "age": 31,
            "signup": "2026-11-01", "birthdate": "1990-11-25", "city": "Utrecht",
            "home_city": "Utrecht"}),
        ),
        interests: vec!["vip".into(), "news".into()],
        subprofiles: object(json!({"7:1": {"created": "2026-02-01T00:00:00Z",
            "modified": "2026-11-24T00:00:00Z", "fields": {"total": "5", "sku": "A-1"}}})),
        rest: Map::new(),
    }
}

/// The object inside `v` (sample data is always one).
pub(crate) fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(map) => map,
        other => unreachable!("sample data {other} is an object"),
    }
}

/// Another account than `account`, for the checks that a row of another account is refused.
pub(crate) fn other_account(account: &AccountId) -> AccountId {
    let other = if account.as_str() == "2002" {
        "3003"
    } else {
        "2002"
    };
    AccountId::new(other).expect("a valid id")
}

/// Events of `account` on `database` as routing sees them: a click, and a create, an update and
/// a delete of a profile joined with its stored row; with `collection`, the click went to a
/// subprofile of it and the changes concern that subprofile.
pub(crate) fn events(
    account: &AccountId,
    database: &DatabaseId,
    collection: Option<&CollectionId>,
) -> Vec<Enriched> {
    let profile = ProfileId::new("4711").expect("a valid id");
    let row = profile_row(account, database, &profile);
    let scope = |mut v: Value| {
        v["account"] = json!(account);
        v["database"] = json!(database);
        v["profile"] = json!(profile);
        if let Some(c) = collection {
            v["collection"] = json!(c);
            v["subprofile"] = json!("1");
        }
        v
    };
    let click: TrackingEvent = serde_json::from_value(scope(json!({"id": "e-1", "type": "click",
        "timestamp": "2026-11-25T10:15:00Z", "tags": ["bf-2026"],
        "original": "https://shop.example/offer", "ip": "203.0.113.7"})))
    .expect("a sample event");
    let mut out = vec![hookline_join::tracking::enrich(&click, Some(&row), "email")];
    for (action, interests) in [
        ("create", json!(["vip"])),
        ("update", json!(["news"])),
        ("delete", Value::Null),
    ] {
        let change: ProfileChange =
            serde_json::from_value(scope(json!({"id": format!("c-{action}"),
            "action": action, "trigger": "rest", "timestamp": "2026-11-25T10:16:00Z",
            "fields": {"email": "mike@example.com", "total": "9", "city": "Delft"},
            "interests": interests})))
            .expect("a sample change");
        out.push(hookline_join::profile::apply(&change, Some(&row)).enriched);
    }
    out
}
