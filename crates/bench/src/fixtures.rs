//! The event and profile every section works on: the click of `docs/contracts.md` and a profile
//! of the kind Copernica databases hold, so sizes and condition work are realistic.

use hookline_model::Enriched;
use hookline_model::{ProfileState, TrackingEvent};
use serde_json::{json, Value};

/// The design's click, for `database` and `profile`, as produced to `tracking`.
pub fn click(id: &str, database: &str, profile: &str) -> Value {
    json!({"id": id, "type": "click", "account": "1001", "database": database, "profile": profile,
           "collection": null, "subprofile": null, "mailing": "m-20261125-01",
           "timestamp": "2026-11-25T10:15:00Z", "ip": "203.0.113.7",
           "useragent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
           "referer": "https://mail.example/",
           "headers": {"User-Agent": "Mozilla/5.0", "Accept-Language": "nl-NL,nl;q=0.9,en;q=0.8",
                       "Accept": "text/html,application/xhtml+xml", "DNT": "1"},
           "original": "https://shop.example/offer?utm_source=copernica&utm_campaign=black-friday",
           "tags": ["black-friday", "newsletter-nl"]})
}

/// A profile's fields: what `profile-changes` creates and the table holds.
pub fn profile_fields(name: &str, city: &str) -> Value {
    json!({"name": name, "email": "mike@example.com", "city": city, "home_city": "Utrecht",
           "zip": "3511 AB", "birthdate": "1985-04-12", "customer_no": "100234",
           "phone": "+31 30 123 4567", "newsletter": "yes", "last_order": "2026-10-30 14:02:11"})
}

/// A profile state as the `profiles` table holds it.
pub fn profile(database: &str, profile: &str, name: &str, city: &str, vip: bool) -> ProfileState {
    let interests = if vip {
        json!(["vip", "newsletter"])
    } else {
        json!(["newsletter"])
    };
    serde_json::from_value(json!({
        "account": "1001", "database": database, "profile": profile,
        "created": "2026-01-01T00:00:00Z", "modified": "2026-11-01T00:00:00Z",
        "fields": profile_fields(name, city), "interests": interests, "subprofiles": {}}))
    .expect("fixture profile matches the model")
}

/// The click joined with its profile: the body a subscription receives.
pub fn enriched(database: &str, name: &str, city: &str, vip: bool) -> Enriched {
    let ev: TrackingEvent = serde_json::from_value(click("evt-7f3a", database, "4711"))
        .expect("fixture click matches the model");
    let p = profile(database, "4711", name, city, vip);
    hookline_join::tracking::enrich(&ev, Some(&p), "email")
}
