//! Profile changes applied to the profile table.

use hookline_model::{EventKind, ProfileAction, ProfileChange, ProfileState};
use serde_json::{Map, Value};

use crate::account::{self, AccountMismatch};
use crate::{times, Enriched};

/// What one change does: the table's new state for the key (`None`: a tombstone) and the event
/// to route.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub new_state: Option<ProfileState>,
    pub enriched: Enriched,
}

/// Applies `change` to `before` (the table's stored row for the key, if any), refusing a row of
/// another account: the change must then neither read nor replace it (the stage quarantines the
/// change and writes nothing; see [`crate::account`]). A subprofile change is checked against
/// its parent's row, which holds it.
pub fn join(
    change: &ProfileChange,
    before: Option<&ProfileState>,
) -> Result<Applied, AccountMismatch> {
    let before = account::check(&change.account, before)?;
    Ok(apply(change, before))
}

/// Applies `change` to `before` (the table's current state for the key, if any).
///
/// A `before` of another account is never read: it counts as no state. The stage calls
/// [`join`], which refuses such a change instead, so that the other account's row stays.
///
/// - profile create/update: the change's `fields` are the full new state; interests are the
///   change's when given, else kept; subprofiles are kept.
/// - profile delete: tombstone.
/// - subprofile create/update/delete: the subprofile entry inside the parent's state changes; a
///   parent not yet in the table is created with empty fields (it may arrive later).
pub fn apply(change: &ProfileChange, before: Option<&ProfileState>) -> Applied {
    let before = before.filter(|b| b.account == change.account);
    let sub_key = change.subprofile_key();
    let state = before.cloned().unwrap_or_else(|| ProfileState {
        account: change.account.clone(),
        database: change.database.clone(),
        profile: change.profile.clone(),
        created: None,
        modified: None,
        fields: Map::new(),
        interests: Vec::new(),
        subprofiles: Map::new(),
        rest: Map::new(),
    });
    let t = match &sub_key {
        None => profile_transition(change, before, state),
        Some(key) => subprofile_transition(change, key, state),
    };
    let interests: Vec<String> = match &sub_key {
        None => change
            .interests
            .clone()
            .or_else(|| before.map(|b| b.interests.clone()))
            .unwrap_or_default(),
        Some(_) => before.map(|b| b.interests.clone()).unwrap_or_default(),
    };
    let body = body(change, before, sub_key.is_some(), &t, &interests);
    let profile_fields = match &sub_key {
        None => change.fields.clone(),
        Some(_) => before.map(|b| b.fields.clone()).unwrap_or_default(),
    };
    Applied {
        new_state: t.new_state,
        enriched: Enriched {
            event_id: change.id.clone(),
            kind: EventKind::from(change.action),
            account: change.account.clone(),
            database: change.database.clone(),
            collection: change.collection.clone(),
            action: Some(change.action),
            trigger: Some(change.trigger),
            joined: true,
            body,
            profile_fields,
            subprofile_fields: t.subprofile_fields,
            interests,
            tags: Vec::new(),
            previous_fields: t.previous_fields,
            previous_interests: t.previous_interests,
            is_new_profile: change.action == ProfileAction::Create && sub_key.is_none(),
        },
    }
}

/// What a change does to the row, and what the webhook says about it.
struct Transition {
    new_state: Option<ProfileState>,
    previous_fields: Option<Map<String, Value>>,
    previous_interests: Option<Vec<String>>,
    subprofile_fields: Option<Map<String, Value>>,
    created: Option<String>,
    modified: Option<String>,
}

/// A profile create, update or delete: `state` is the row before (or a new one).
fn profile_transition(
    change: &ProfileChange,
    before: Option<&ProfileState>,
    mut state: ProfileState,
) -> Transition {
    let now_ts = &change.timestamp;
    let update = change.action == ProfileAction::Update;
    let previous_fields = before
        .filter(|_| update)
        .map(|b| changed_previous(&b.fields, &change.fields));
    let previous_interests = before.filter(|_| update).map(|b| b.interests.clone());
    if change.action == ProfileAction::Delete {
        return Transition {
            new_state: None,
            previous_fields,
            previous_interests,
            subprofile_fields: None,
            created: state.created.clone(),
            modified: Some(now_ts.clone()),
        };
    }
    if state.created.is_none() || change.action == ProfileAction::Create {
        state.created = Some(now_ts.clone());
    }
    state.modified = Some(now_ts.clone());
    state.fields = change.fields.clone();
    if let Some(i) = &change.interests {
        state.interests = i.clone();
    }
    Transition {
        created: state.created.clone(),
        modified: state.modified.clone(),
        new_state: Some(state),
        previous_fields,
        previous_interests,
        subprofile_fields: None,
    }
}

/// A subprofile create, update or delete: the entry `key` inside the parent's row changes.
fn subprofile_transition(change: &ProfileChange, key: &str, mut state: ProfileState) -> Transition {
    let now_ts = &change.timestamp;
    let entry = state.subprofiles.get(key);
    let old: Option<Map<String, Value>> = entry
        .and_then(|v| v.get("fields"))
        .and_then(Value::as_object)
        .cloned();
    let old_created = entry.and_then(|v| v.get("created")).cloned();
    let previous_fields = match (change.action, &old) {
        (ProfileAction::Update, Some(o)) => Some(changed_previous(o, &change.fields)),
        _ => None,
    };
    let created = if change.action == ProfileAction::Delete {
        state.subprofiles.remove(key);
        old_created.and_then(|v| v.as_str().map(str::to_owned))
    } else {
        let c = match (&old_created, change.action) {
            (Some(Value::String(s)), ProfileAction::Update) => s.clone(),
            _ => now_ts.clone(),
        };
        state.subprofiles.insert(
            key.to_owned(),
            serde_json::json!({"created": c, "modified": now_ts, "fields": change.fields}),
        );
        Some(c)
    };
    Transition {
        new_state: Some(state),
        previous_fields,
        previous_interests: None,
        subprofile_fields: Some(change.fields.clone()),
        created,
        modified: Some(now_ts.clone()),
    }
}

/// The webhook body of a change: its own fields, the row's times, and what changed.
fn body(
    change: &ProfileChange,
    before: Option<&ProfileState>,
    is_subprofile: bool,
    t: &Transition,
    interests: &[String],
) -> Map<String, Value> {
    let (timestamp, time) = times(&change.timestamp);
    let mut body = Map::with_capacity(change.rest.len() + 16);
    body.insert("id".into(), Value::String(change.id.0.clone()));
    body.insert("type".into(), Value::String(change.action.as_str().into()));
    body.insert(
        "trigger".into(),
        Value::String(change.trigger.as_str().into()),
    );
    body.insert(
        "parameters".into(),
        Value::Object(change.parameters.clone()),
    );
    body.insert("timestamp".into(), Value::String(timestamp));
    body.insert("time".into(), Value::from(time));
    body.insert(
        "database".into(),
        Value::String(change.database.to_string()),
    );
    body.insert("profile".into(), Value::String(change.profile.to_string()));
    if let (Some(c), Some(s)) = (&change.collection, &change.subprofile) {
        body.insert("collection".into(), Value::String(c.to_string()));
        body.insert("subprofile".into(), Value::String(s.to_string()));
    }
    let time_of = |t: &Option<String>| {
        t.as_ref()
            .map(|t| Value::String(times(t).0))
            .unwrap_or(Value::Null)
    };
    body.insert("created".into(), time_of(&t.created));
    body.insert("modified".into(), time_of(&t.modified));
    body.insert("fields".into(), Value::Object(change.fields.clone()));
    if is_subprofile {
        body.insert(
            "profile_fields".into(),
            Value::Object(before.map(|b| b.fields.clone()).unwrap_or_default()),
        );
    } else {
        body.insert(
            "interests".into(),
            Value::Array(interests.iter().cloned().map(Value::String).collect()),
        );
    }
    if let Some(p) = &t.previous_fields {
        body.insert("previous".into(), Value::Object(p.clone()));
    }
    for (k, v) in &change.rest {
        if !body.contains_key(k) {
            body.insert(k.clone(), v.clone());
        }
    }
    body
}

/// The previous values of fields whose value differs between `old` and `new` (absent → null).
fn changed_previous(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in new {
        let before = old.get(k).unwrap_or(&Value::Null);
        if before != v {
            out.insert(k.clone(), before.clone());
        }
    }
    for (k, v) in old {
        if !new.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(v: Value) -> ProfileChange {
        let mut base = json!({"id": "chg-1", "account": "1001", "database": "12", "profile": "4711",
            "action": "create", "trigger": "rest", "timestamp": "2026-11-25T10:16:00Z",
            "parameters": {}, "fields": {"name": "Mike", "email": "mike@example.com"}, "interests": ["vip"]});
        for (k, val) in v.as_object().unwrap() {
            base[k] = val.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn create_then_update_records_previous_values() {
        let created = apply(&change(json!({})), None);
        let s1 = created.new_state.clone().unwrap();
        assert_eq!(s1.fields["name"], "Mike");
        assert_eq!(s1.created.as_deref(), Some("2026-11-25T10:16:00Z"));
        assert!(created.enriched.is_new_profile);
        assert_eq!(created.enriched.body["type"], "create");
        assert!(!created.enriched.body.contains_key("previous"));

        let upd = apply(
            &change(
                json!({"id": "chg-2", "action": "update", "timestamp": "2026-11-25T11:00:00Z",
                "parameters": {"name": "Michael"}, "fields": {"name": "Michael", "email": "mike@example.com"}, "interests": null}),
            ),
            Some(&s1),
        );
        let s2 = upd.new_state.unwrap();
        assert_eq!(s2.fields["name"], "Michael");
        assert_eq!(
            s2.interests,
            vec!["vip"],
            "interests kept when the change carries none"
        );
        assert_eq!(s2.created, s1.created);
        assert_eq!(upd.enriched.body["previous"], json!({"name": "Mike"}));
        assert_eq!(upd.enriched.body["created"], "2026-11-25 10:16:00");
        assert_eq!(upd.enriched.body["modified"], "2026-11-25 11:00:00");
        assert_eq!(
            upd.enriched.previous_interests.as_deref(),
            Some(&["vip".to_owned()][..])
        );
    }

    #[test]
    fn a_change_of_another_account_is_refused_for_profiles_and_subprofiles() {
        let s1 = apply(&change(json!({})), None).new_state.unwrap();
        let foreign = |v: Value| {
            let mut c = change(v);
            c.account = hookline_model::AccountId::new("2002").unwrap();
            c
        };
        for (what, v) in [
            ("create", json!({"id": "x-1"})),
            (
                "update",
                json!({"id": "x-2", "action": "update", "fields": {"name": "Mallory"}}),
            ),
            ("delete", json!({"id": "x-3", "action": "delete"})),
            (
                "subprofile create",
                json!({"id": "x-4", "collection": "3", "subprofile": "9"}),
            ),
            (
                "subprofile delete",
                json!({"id": "x-5", "action": "delete", "collection": "3", "subprofile": "9"}),
            ),
        ] {
            let err = join(&foreign(v), Some(&s1)).unwrap_err();
            assert_eq!(
                (err.input.as_str(), err.stored.as_str()),
                ("2002", "1001"),
                "{what}"
            );
        }
        // The same account joins; no row at all is the other account's to create.
        assert!(join(&change(json!({"id": "y-1", "action": "update"})), Some(&s1)).is_ok());
        let fresh = join(&foreign(json!({"id": "y-2"})), None).unwrap();
        assert_eq!(fresh.new_state.unwrap().account.as_str(), "2002");

        // Called directly, `apply` never reads the foreign row: no previous values, no parent
        // fields, none of its interests.
        let upd = apply(
            &foreign(
                json!({"id": "z-1", "action": "update", "fields": {"name": "Mallory"}, "interests": null}),
            ),
            Some(&s1),
        );
        let text = serde_json::to_string(&upd.enriched.body).unwrap();
        for secret in ["mike@example.com", "Mike", "vip"] {
            assert!(!text.contains(secret), "{secret} leaked into {text}");
        }
        let sub = apply(
            &foreign(json!({"id": "z-2", "collection": "3", "subprofile": "9"})),
            Some(&s1),
        );
        assert_eq!(sub.enriched.body["profile_fields"], json!({}));
        assert!(sub.enriched.profile_fields.is_empty());
    }

    #[test]
    fn delete_is_a_tombstone_and_subprofiles_live_inside_the_parent() {
        let s1 = apply(&change(json!({})), None).new_state.unwrap();
        let sub = apply(
            &change(
                json!({"id": "chg-3", "collection": "3", "subprofile": "9", "fields": {"order": "A-1"}}),
            ),
            Some(&s1),
        );
        let s2 = sub.new_state.unwrap();
        assert_eq!(s2.subprofiles["3:9"]["fields"]["order"], "A-1");
        assert_eq!(
            s2.fields["name"], "Mike",
            "the parent's fields are untouched"
        );
        assert_eq!(sub.enriched.body["collection"], "3");
        assert_eq!(sub.enriched.body["profile_fields"]["name"], "Mike");
        assert_eq!(
            sub.enriched.subprofile_fields.as_ref().unwrap()["order"],
            "A-1"
        );
        assert!(!sub.enriched.is_new_profile);

        let subdel = apply(
            &change(
                json!({"id": "chg-4", "action": "delete", "collection": "3", "subprofile": "9", "fields": {"order": "A-1"}}),
            ),
            Some(&s2),
        );
        assert!(subdel.new_state.unwrap().subprofiles.is_empty());

        let del = apply(
            &change(json!({"id": "chg-5", "action": "delete"})),
            Some(&s2),
        );
        assert!(del.new_state.is_none());
        assert_eq!(del.enriched.body["type"], "delete");
        assert_eq!(
            del.enriched.body["fields"]["name"], "Mike",
            "a delete carries the last state"
        );
    }
}
