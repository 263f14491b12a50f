//! Tracking events joined with the profile table.

use hookline_model::{ProfileState, TrackingEvent};
use serde_json::{Map, Value};

use crate::account::{self, AccountMismatch};
use crate::{times, Enriched};

/// Joins a tracking event with its stored profile row, refusing a row of another account (the
/// stage quarantines the event then; see [`crate::account`]).
pub fn join(
    ev: &TrackingEvent,
    profile: Option<&ProfileState>,
    email_field: &str,
) -> Result<Enriched, AccountMismatch> {
    let profile = account::check(&ev.account, profile)?;
    Ok(enrich(ev, profile, email_field))
}

/// Builds the webhook body of a tracking event. `email_field` names the profile field holding
/// the e-mail address (Copernica: per database, default `email`); it fills `recipient` when the
/// event has none.
///
/// A row of another account is never read: it counts as no row. The stages call [`join`],
/// which refuses such an event instead of delivering it thin.
pub fn enrich(ev: &TrackingEvent, profile: Option<&ProfileState>, email_field: &str) -> Enriched {
    let profile = profile.filter(|p| p.account == ev.account);
    let (timestamp, time) = times(&ev.timestamp);
    let mut body = Map::with_capacity(ev.rest.len() + 12);
    body.insert("id".into(), Value::String(ev.id.0.clone()));
    body.insert("type".into(), Value::String(ev.kind.as_str().into()));
    body.insert("timestamp".into(), Value::String(timestamp));
    body.insert("time".into(), Value::from(time));
    let recipient = ev
        .rest
        .get("recipient")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            profile
                .and_then(|p| p.email(email_field))
                .map(str::to_owned)
        });
    body.insert(
        "recipient".into(),
        recipient.map_or(Value::Null, Value::String),
    );
    body.insert(
        "tags".into(),
        Value::Array(ev.tags.iter().cloned().map(Value::String).collect()),
    );
    // The event's own fields (ip, useragent, referer, original, headers, envelope, mime, action,
    // state, code, extended, description, mailing, and unknown extras) pass through as sent.
    for (k, v) in &ev.rest {
        if k != "recipient" && k != "account" && !body.contains_key(k) {
            body.insert(k.clone(), v.clone());
        }
    }
    body.insert("database".into(), Value::String(ev.database.to_string()));
    body.insert("profile".into(), Value::String(ev.profile.to_string()));
    let fields = profile.map(|p| p.fields.clone()).unwrap_or_default();
    let interests: Vec<String> = profile.map(|p| p.interests.clone()).unwrap_or_default();
    body.insert("fields".into(), Value::Object(fields.clone()));
    body.insert(
        "interests".into(),
        Value::Array(interests.iter().cloned().map(Value::String).collect()),
    );
    let mut subprofile_fields = None;
    if let (Some(c), Some(s)) = (&ev.collection, &ev.subprofile) {
        body.insert("collection".into(), Value::String(c.to_string()));
        body.insert("subprofile".into(), Value::String(s.to_string()));
        let sf = profile
            .and_then(|p| p.subprofile(c, s))
            .map(|sp| sp.fields)
            .unwrap_or_default();
        body.insert("subprofile_fields".into(), Value::Object(sf.clone()));
        subprofile_fields = Some(sf);
    }
    if profile.is_none() {
        body.insert("profile_known".into(), Value::Bool(false));
    }
    Enriched {
        event_id: ev.id.clone(),
        kind: ev.kind.into(),
        account: ev.account.clone(),
        database: ev.database.clone(),
        collection: ev.collection.clone(),
        action: None,
        trigger: None,
        joined: profile.is_some(),
        body,
        profile_fields: fields,
        subprofile_fields,
        interests,
        tags: ev.tags.clone(),
        previous_fields: None,
        previous_interests: None,
        is_new_profile: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click() -> TrackingEvent {
        serde_json::from_str(
            r#"{"id": "evt-7f3a", "type": "click", "account": "1001", "database": "12", "profile": "4711",
 "collection": null, "subprofile": null, "mailing": "m-20261125-01",
 "timestamp": "2026-11-25T10:15:00Z", "ip": "203.0.113.7",
 "useragent": "Mozilla/5.0", "referer": "https://mail.example/",
 "headers": {"User-Agent": "Mozilla/5.0", "Accept-Language": "nl"},
 "original": "https://shop.example/offer", "tags": ["black-friday"]}"#,
        )
        .unwrap()
    }

    fn jane() -> ProfileState {
        serde_json::from_str(
            r#"{"account":"1001","database":"12","profile":"4711","created":"2026-01-01T00:00:00Z","modified":"2026-11-01T00:00:00Z",
                "fields":{"email":"jane@example.com","name":"Jane"},"interests":["vip"],
                "subprofiles":{"3:9":{"created":null,"modified":null,"fields":{"order":"A-1"}}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn click_joined_with_profile_carries_everything_in_design_names() {
        let e = enrich(&click(), Some(&jane()), "email");
        let b = &e.body;
        assert_eq!(b["id"], "evt-7f3a");
        assert_eq!(b["type"], "click");
        assert_eq!(b["timestamp"], "2026-11-25 10:15:00");
        assert_eq!(b["time"], 1_795_601_700);
        assert_eq!(
            b["recipient"], "jane@example.com",
            "taken from the profile when the event has none"
        );
        assert_eq!(b["tags"], serde_json::json!(["black-friday"]));
        assert_eq!(b["ip"], "203.0.113.7");
        assert_eq!(b["original"], "https://shop.example/offer");
        assert_eq!(b["headers"]["Accept-Language"], "nl");
        assert_eq!(b["database"], "12");
        assert_eq!(b["profile"], "4711");
        assert_eq!(b["fields"]["name"], "Jane");
        assert_eq!(b["interests"], serde_json::json!(["vip"]));
        assert!(!b.contains_key("profile_known"));
        assert!(
            !b.contains_key("account"),
            "the account travels in X-Copernica-ID, not the body"
        );
        assert!(e.joined);
    }

    #[test]
    fn unknown_profile_is_delivered_thin_and_says_so() {
        let e = enrich(&click(), None, "email");
        assert!(!e.joined);
        assert_eq!(e.body["profile_known"], false);
        assert_eq!(e.body["fields"], serde_json::json!({}));
        assert_eq!(e.body["recipient"], Value::Null);
    }

    #[test]
    fn another_accounts_row_is_refused_and_never_read() {
        let mut ev = click();
        ev.account = hookline_model::AccountId::new("2002").unwrap();
        let err = join(&ev, Some(&jane()), "email").unwrap_err();
        assert_eq!(err.stored.as_str(), "1001");
        assert_eq!(err.input.as_str(), "2002");

        // Called directly, the body builder treats the foreign row as no row at all.
        let e = enrich(&ev, Some(&jane()), "email");
        assert!(!e.joined);
        let text = serde_json::to_string(&e.body).unwrap();
        for secret in ["jane@example.com", "Jane", "vip", "A-1"] {
            assert!(!text.contains(secret), "{secret} leaked into {text}");
        }
        assert!(e.profile_fields.is_empty() && e.interests.is_empty());

        let own = join(&click(), Some(&jane()), "email").unwrap();
        assert!(own.joined);
        assert_eq!(own.body["recipient"], "jane@example.com");
    }

    #[test]
    fn subprofile_recipients_get_subprofile_fields() {
        let mut ev = click();
        ev.collection = Some(hookline_model::CollectionId::new("3").unwrap());
        ev.subprofile = Some(hookline_model::SubprofileId::new("9").unwrap());
        let e = enrich(&ev, Some(&jane()), "email");
        assert_eq!(e.body["collection"], "3");
        assert_eq!(e.body["subprofile_fields"]["order"], "A-1");
        assert_eq!(e.subprofile_fields.unwrap()["order"], "A-1");
    }
}
