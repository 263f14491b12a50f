//! The subscription table.

use std::collections::HashMap;
use std::sync::Arc;

use hookline_conditions::{Condition, EvalContext};
use hookline_model::Enriched;
use hookline_model::{
    AccountId, DatabaseId, EventKind, Subscription, SubscriptionId, SubscriptionStatus,
};
use time::OffsetDateTime;

use crate::validate::{validate_subscription, InvalidSubscription};

/// A subscription with its condition compiled.
#[derive(Debug)]
pub struct CompiledSubscription {
    pub sub: Subscription,
    pub condition: Condition,
}

impl CompiledSubscription {
    /// Validates `sub` and compiles its condition (up to 100 regular expressions): the
    /// expensive part of taking a subscription in, done without touching any table.
    pub fn compile(sub: Subscription, require_https: bool) -> Result<Self, InvalidSubscription> {
        let condition = validate_subscription(&sub, require_https)?;
        Ok(Self { sub, condition })
    }
}

/// Every subscription, indexed by database so an event is offered only to its own database's
/// subscriptions (10,000 subscriptions over 1,000 databases means ~10 candidates per event),
/// and account-wide subscriptions (no `database`) by account, offered every event of theirs.
#[derive(Debug, Default)]
pub struct SubscriptionTable {
    by_id: HashMap<SubscriptionId, Arc<CompiledSubscription>>,
    by_database: HashMap<DatabaseId, Vec<Arc<CompiledSubscription>>>,
    account_wide: HashMap<AccountId, Vec<Arc<CompiledSubscription>>>,
}

impl SubscriptionTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a subscription. An invalid one is refused and the previous version (if
    /// any) is kept, so a bad write never silently unsubscribes anyone.
    ///
    /// This validates and compiles under `&mut self`; a table shared behind a lock should use
    /// [`CompiledSubscription::compile`] outside the lock and [`SubscriptionTable::insert`]
    /// under it.
    pub fn upsert(
        &mut self,
        sub: Subscription,
        require_https: bool,
    ) -> Result<(), InvalidSubscription> {
        self.insert(CompiledSubscription::compile(sub, require_https)?);
        Ok(())
    }

    /// Adds or replaces an already compiled subscription; returns the version it replaced, so a
    /// caller holding a lock can drop that after releasing it. Cheap: no parsing, no compiling.
    pub fn insert(&mut self, compiled: CompiledSubscription) -> Option<Arc<CompiledSubscription>> {
        let old = self.remove(&compiled.sub.id);
        let compiled = Arc::new(compiled);
        match &compiled.sub.database {
            Some(db) => self.by_database.entry(db.clone()).or_default(),
            None => self
                .account_wide
                .entry(compiled.sub.account.clone())
                .or_default(),
        }
        .push(compiled.clone());
        self.by_id.insert(compiled.sub.id.clone(), compiled);
        old
    }

    pub fn remove(&mut self, id: &SubscriptionId) -> Option<Arc<CompiledSubscription>> {
        let old = self.by_id.remove(id)?;
        match &old.sub.database {
            Some(db) => drop_from(&mut self.by_database, db, id),
            None => drop_from(&mut self.account_wide, &old.sub.account, id),
        }
        Some(old)
    }

    pub fn get(&self, id: &SubscriptionId) -> Option<&Arc<CompiledSubscription>> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<CompiledSubscription>> {
        self.by_id.values()
    }

    /// The active subscriptions that should receive `event`.
    pub fn matching<'a>(
        &'a self,
        event: &'a Enriched,
        now: OffsetDateTime,
    ) -> impl Iterator<Item = &'a Arc<CompiledSubscription>> + 'a {
        let ctx = EvalContext {
            profile_fields: &event.profile_fields,
            subprofile_fields: event.subprofile_fields.as_ref(),
            event: &event.body,
            interests: &event.interests,
            tags: &event.tags,
            previous_fields: event.previous_fields.as_ref(),
            previous_interests: event.previous_interests.as_deref(),
            is_new_profile: event.is_new_profile,
            now,
        };
        self.by_database
            .get(&event.database)
            .into_iter()
            .flatten()
            .chain(self.account_wide.get(&event.account).into_iter().flatten())
            .filter(move |s| wants(&s.sub, event) && s.condition.evaluate(&ctx))
    }
}

/// Removes subscription `id` from `key`'s list, and the list once it is empty.
fn drop_from<K: std::hash::Hash + Eq>(
    index: &mut HashMap<K, Vec<Arc<CompiledSubscription>>>,
    key: &K,
    id: &SubscriptionId,
) {
    if let Some(list) = index.get_mut(key) {
        list.retain(|s| &s.sub.id != id);
        if list.is_empty() {
            index.remove(key);
        }
    }
}

/// The filters before the condition: status, owner, collection scope, event kind, action,
/// trigger. An account-wide subscription (no database) takes every database of its account,
/// as a database-level one does within its database. The account is checked as well as the database: database ids are only unique within
/// an account, and one account's subscription must never see another account's events.
fn wants(sub: &Subscription, event: &Enriched) -> bool {
    if sub.status != SubscriptionStatus::Active
        || sub.database.as_ref().is_some_and(|d| d != &event.database)
        || sub.account != event.account
    {
        return false;
    }
    let is_profile_event = matches!(
        event.kind,
        EventKind::Create | EventKind::Update | EventKind::Delete
    );
    match (&sub.collection, &event.collection) {
        (Some(want), Some(got)) if want == got => {}
        (Some(_), _) => return false,
        // Database-level subscriptions: tracking events of the whole database, but only changes
        // of profiles; subprofile changes belong to their collection's subscriptions.
        (None, Some(_)) if is_profile_event => return false,
        (None, _) => {}
    }
    match (event.action, event.trigger) {
        (Some(action), Some(trigger)) => sub.wants_profile_change(action, trigger),
        _ => sub.events.contains(&event.kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_model::{ProfileChange, TrackingEvent};
    use serde_json::{json, Value};

    fn sub(v: Value) -> Subscription {
        let mut base = json!({"id": "s1", "account": "1001", "database": "12", "events": ["click"],
            "url": "https://hooks.example/in", "status": "active"});
        for (k, val) in v.as_object().unwrap() {
            base[k] = val.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn click(db: &str, name: &str) -> Enriched {
        let ev: TrackingEvent =
            serde_json::from_value(json!({"id": "e1", "type": "click", "account": "1001",
            "database": db, "profile": "1", "timestamp": "2026-11-25T10:15:00Z", "tags": []}))
            .unwrap();
        let p = serde_json::from_value(json!({"account": "1001", "database": db, "profile": "1",
            "fields": {"name": name}, "interests": []}))
        .unwrap();
        hookline_join::tracking::enrich(&ev, Some(&p), "email")
    }

    fn change(action: &str, trigger: &str, collection: Option<&str>) -> Enriched {
        let mut v = json!({"id": "c1", "account": "1001", "database": "12", "profile": "1", "action": action,
            "trigger": trigger, "timestamp": "2026-11-25T10:15:00Z", "fields": {"name": "Mike"}});
        if let Some(c) = collection {
            v["collection"] = json!(c);
            v["subprofile"] = json!("77");
        }
        let ch: ProfileChange = serde_json::from_value(v).unwrap();
        hookline_join::profile::apply(&ch, None).enriched
    }

    fn ids(t: &SubscriptionTable, e: &Enriched) -> Vec<String> {
        let mut v: Vec<String> = t
            .matching(e, OffsetDateTime::now_utc())
            .map(|s| s.sub.id.0.clone())
            .collect();
        v.sort();
        v
    }

    /// A subscription without a database: every database of its own account.
    fn account_wide(v: Value) -> Subscription {
        let mut s = sub(v);
        s.database = None;
        s
    }

    #[test]
    fn an_account_wide_subscription_takes_every_database_of_its_account_only() {
        let mut t = SubscriptionTable::new();
        t.upsert(account_wide(json!({"id": "everywhere"})), true)
            .unwrap();
        t.upsert(
            account_wide(json!({"id": "stranger", "account": "2002"})),
            true,
        )
        .unwrap();
        t.upsert(sub(json!({"id": "db-12"})), true).unwrap();
        assert_eq!(ids(&t, &click("12", "Jane")), vec!["db-12", "everywhere"]);
        assert_eq!(ids(&t, &click("13", "Jane")), vec!["everywhere"]);
        assert_eq!(ids(&t, &click("9999", "Jane")), vec!["everywhere"]);
        // Like a database-level one: profile changes, not subprofile changes.
        t.upsert(
            account_wide(json!({"id": "changes", "events": ["create", "update"]})),
            true,
        )
        .unwrap();
        assert_eq!(ids(&t, &change("update", "rest", None)), vec!["changes"]);
        assert!(ids(&t, &change("update", "rest", Some("5"))).is_empty());
        // Removed and re-added under the same id with a database: indexed once, there.
        t.upsert(sub(json!({"id": "everywhere", "database": "13"})), true)
            .unwrap();
        assert_eq!(ids(&t, &click("12", "Jane")), vec!["db-12"]);
        assert_eq!(ids(&t, &click("13", "Jane")), vec!["everywhere"]);
    }

    #[test]
    fn an_account_wide_subscription_names_no_collection() {
        let mut t = SubscriptionTable::new();
        let e = t
            .upsert(account_wide(json!({"id": "x", "collection": "5"})), true)
            .unwrap_err();
        assert!(e.to_string().contains("give `database` too"), "{e}");
    }

    #[test]
    fn database_status_event_and_condition_filters() {
        let mut t = SubscriptionTable::new();
        t.upsert(sub(json!({"id": "all-clicks"})), true).unwrap();
        t.upsert(sub(json!({"id": "mike", "conditions": {"field": "name", "op": "contains", "value": "Mike"}})), true)
            .unwrap();
        t.upsert(sub(json!({"id": "paused", "status": "paused"})), true)
            .unwrap();
        t.upsert(
            sub(json!({"id": "unverified", "status": "unverified"})),
            true,
        )
        .unwrap();
        t.upsert(sub(json!({"id": "opens", "events": ["open"]})), true)
            .unwrap();
        t.upsert(sub(json!({"id": "other-db", "database": "13"})), true)
            .unwrap();
        // Database 12 of another account is another database.
        t.upsert(sub(json!({"id": "other-account", "account": "2002"})), true)
            .unwrap();
        assert_eq!(
            ids(&t, &click("12", "Mike Jones")),
            vec!["all-clicks", "mike"]
        );
        assert_eq!(ids(&t, &click("12", "Jane")), vec!["all-clicks"]);
        assert_eq!(ids(&t, &click("13", "Jane")), vec!["other-db"]);
        assert_eq!(ids(&t, &click("14", "Jane")), Vec::<String>::new());
    }

    #[test]
    fn actions_triggers_and_collections() {
        let mut t = SubscriptionTable::new();
        t.upsert(
            sub(json!({"id": "updates-rest", "events": ["update"], "triggers": ["rest"]})),
            true,
        )
        .unwrap();
        t.upsert(
            sub(json!({"id": "all-changes", "events": ["create", "update", "delete"]})),
            true,
        )
        .unwrap();
        t.upsert(sub(json!({"id": "creates-only", "events": ["create", "update"], "actions": ["create"]})), true)
            .unwrap();
        t.upsert(sub(json!({"id": "coll-3", "collection": "3", "events": ["create", "update", "delete"]})), true)
            .unwrap();
        assert_eq!(
            ids(&t, &change("update", "rest", None)),
            vec!["all-changes", "updates-rest"]
        );
        assert_eq!(
            ids(&t, &change("update", "import", None)),
            vec!["all-changes"]
        );
        assert_eq!(
            ids(&t, &change("create", "soap", None)),
            vec!["all-changes", "creates-only"]
        );
        assert_eq!(
            ids(&t, &change("create", "soap", Some("3"))),
            vec!["coll-3"]
        );
        assert_eq!(
            ids(&t, &change("create", "soap", Some("4"))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn invalid_subscriptions_are_refused_and_the_old_version_kept() {
        let mut t = SubscriptionTable::new();
        t.upsert(sub(json!({"id": "s"})), true).unwrap();
        let err = t
            .upsert(sub(json!({"id": "s", "conditions": {"field": "name", "op": "contians", "value": "x"}})), true)
            .unwrap_err();
        assert!(
            err.field.starts_with("conditions") && err.message.contains("contians"),
            "{err}"
        );
        let err = t
            .upsert(
                sub(json!({"id": "s", "url": "http://hooks.example/"})),
                true,
            )
            .unwrap_err();
        assert_eq!(err.field, "url");
        assert!(t
            .get(&SubscriptionId("s".into()))
            .unwrap()
            .condition
            .is_always_true());
        assert!(t
            .upsert(sub(json!({"id": "s", "url": "http://127.0.0.1:1/"})), false)
            .is_ok());
    }

    #[test]
    fn compile_outside_insert_inside() {
        let mut t = SubscriptionTable::new();
        let first = CompiledSubscription::compile(sub(json!({"id": "s"})), true).unwrap();
        assert!(t.insert(first).is_none());
        let second = CompiledSubscription::compile(
            sub(json!({"id": "s", "database": "13", "conditions": {"field": "name", "op": "regexp", "value": "^M"}})),
            true,
        )
        .unwrap();
        let replaced = t.insert(second).expect("the first version is handed back");
        assert_eq!(
            replaced.sub.database.as_ref().map(|d| d.as_str()),
            Some("12")
        );
        assert_eq!(t.len(), 1);
        assert_eq!(ids(&t, &click("12", "Mike")), Vec::<String>::new());
        assert_eq!(ids(&t, &click("13", "Mike")), vec!["s"]);
        let err = CompiledSubscription::compile(
            sub(json!({"id": "s", "conditions": {"field": "signup", "op": "before", "value": "5日"}})),
            true,
        )
        .unwrap_err();
        assert_eq!(err.field, "conditions/value", "{err}");
    }
}
