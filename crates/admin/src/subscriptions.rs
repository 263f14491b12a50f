//! `/v1/subscriptions`: create, read, list by database or collection, update, pause/resume,
//! delete (URL ownership verification is [`crate::verify`]).
//!
//! Every handler scopes to the caller's account: a subscription of another account answers 404
//! exactly like one that does not exist.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::Json;
use hookline_model::{
    AccountId, CollectionId, DatabaseId, EventKind, Limits, ProfileAction, SignatureProfile,
    Subscription, SubscriptionId, SubscriptionStatus, Trigger,
};
use hookline_payload::Format;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

use crate::auth::AccountCaller;
use crate::concurrency::{check_if_match, etag_header};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::verify::reverify;
pub use crate::verify::{covering_domain, mark_verified, mark_verified_by_domain};
use crate::AppState;

/// The body of `POST /v1/subscriptions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Absent: an account-wide subscription (every database of the account).
    #[serde(default)]
    pub database: Option<String>,
    #[serde(default)]
    pub collection: Option<String>,
    pub events: Vec<EventKind>,
    #[serde(default, deserialize_with = "actions")]
    pub actions: Option<Vec<ProfileAction>>,
    #[serde(default)]
    pub triggers: Option<Vec<Trigger>>,
    #[serde(default)]
    pub conditions: Value,
    /// The condition in its text form (`docs/conditions.md`), instead of `conditions`.
    #[serde(default)]
    pub conditions_text: Option<String>,
    pub url: String,
    #[serde(default)]
    pub format: Format,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub ordered: bool,
    #[serde(default)]
    pub signature: SignatureProfile,
}

/// The body of `PATCH /v1/subscriptions/{id}`: only the fields present change; `null` clears
/// `collection`, `actions` and `triggers` (back to "all").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionPatch {
    /// `null` makes the subscription account-wide.
    #[serde(default, deserialize_with = "present")]
    pub database: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub collection: Option<Option<String>>,
    pub events: Option<Vec<EventKind>>,
    #[serde(default, deserialize_with = "present_actions")]
    pub actions: Option<Option<Vec<ProfileAction>>>,
    #[serde(default, deserialize_with = "present")]
    pub triggers: Option<Option<Vec<Trigger>>>,
    pub conditions: Option<Value>,
    /// The condition in its text form, instead of `conditions`; empty text clears it.
    pub conditions_text: Option<String>,
    pub url: Option<String>,
    pub format: Option<Format>,
    pub limits: Option<Limits>,
    pub ordered: Option<bool>,
    pub signature: Option<SignatureProfile>,
}

/// Distinguishes a field set to `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `actions` as the API takes it: a list of `create`, `update`, `delete`; `"all"` (the
/// product's "Action Type: all"), alone or in the list, is normalised to absent, which means
/// all; `null` too.
fn actions<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<ProfileAction>>, D::Error> {
    use serde::de::Error;
    let all = |v: &Value| v.as_str() == Some("all");
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v if all(&v) => Ok(None),
        Value::Array(items) if items.iter().any(all) => Ok(None),
        v @ Value::Array(_) => serde_json::from_value(v).map(Some).map_err(|e| {
            D::Error::custom(format!(
                "{e}; actions are create, update and delete, or \"all\""
            ))
        }),
        other => Err(D::Error::custom(format!(
            "expected a list of create, update and delete, or \"all\", got {other}"
        ))),
    }
}

/// [`actions`] for a patch: absent stays absent.
fn present_actions<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Vec<ProfileAction>>>, D::Error> {
    actions(d).map(Some)
}

/// The condition a request gives: `conditions` (JSON) or `conditions_text` (parsed into the
/// same JSON tree), not both; `None` when it gives neither.
fn condition_of(json: Option<Value>, text: Option<&str>) -> Result<Option<Value>, ApiError> {
    match (json, text) {
        (Some(j), Some(_)) if !j.is_null() => Err(ApiError::invalid(
            "conditions_text",
            "give either conditions (JSON) or conditions_text, not both",
        )),
        (_, Some(text)) => hookline_conditions::parse_text(text)
            .map(Some)
            .map_err(|e| {
                ApiError::invalid("conditions_text", e.to_string())
                    .with_details(json!({"line": e.line, "column": e.column}))
            }),
        (json, None) => Ok(json),
    }
}

/// Deserializes a request body, naming the field that is wrong.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        let message = e.into_inner().to_string();
        ApiError::invalid(field, message)
    })
}

fn database_id(field: &str, raw: &str) -> Result<DatabaseId, ApiError> {
    DatabaseId::new(raw).map_err(|e| ApiError::invalid(field, e.to_string()))
}

fn collection_id(field: &str, raw: &str) -> Result<CollectionId, ApiError> {
    CollectionId::new(raw).map_err(|e| ApiError::invalid(field, e.to_string()))
}

/// Filters of `GET /v1/subscriptions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub database: Option<String>,
    pub collection: Option<String>,
    pub status: Option<SubscriptionStatus>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// A subscription of `account`, or 404.
pub fn owned(state: &AppState, account: &AccountId, id: &str) -> Result<Subscription, ApiError> {
    state
        .tables
        .subscription(id)
        .filter(|s| &s.account == account)
        .ok_or_else(|| ApiError::not_found("subscription", id))
}

/// Checks a subscription as the routing stages will, so the API never writes one they refuse,
/// and its URL as the sender's network guard will: a port outside the allowed ones or an IP
/// literal in a non-public network (`http://10.1.2.3/x.php`) would never be sent to, and no
/// verification could prove it, so it is refused now with the reason.
fn validate(state: &AppState, sub: &Subscription) -> Result<(), ApiError> {
    hookline_routing::validate_subscription(sub, state.require_https)
        .map_err(|e| ApiError::invalid(e.field, e.message))?;
    state.client.check_url(&sub.url).map(drop).map_err(|e| {
        ApiError::invalid(
            "url",
            format!("{e}; Hookline would never send to this URL, so it cannot be subscribed"),
        )
    })
}

/// A subscription answer: the JSON body and its `ETag`.
pub type Tagged<T> = ([(HeaderName, HeaderValue); 1], Json<T>);

pub fn tagged(sub: Subscription) -> Tagged<Subscription> {
    ([etag_header(&sub)], Json(sub))
}

/// Writes `sub` as its next version. Callers hold the subscription's write lock
/// (`state.write_locks`) from the read the change is based on until this returns.
pub async fn save(state: &AppState, sub: &mut Subscription) -> Result<(), ApiError> {
    sub.version += 1;
    state
        .tables
        .put_subscription(sub)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))
}

pub async fn create(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Tagged<Subscription>), ApiError> {
    let input: NewSubscription = parse_body(body)?;
    let held = state
        .tables
        .subscriptions_where(|s| s.account == caller.account)
        .len();
    crate::limits::check_quota(
        held,
        state.limits.max_subscriptions,
        "subscriptions",
        "HOOKLINE_MAX_SUBSCRIPTIONS",
    )?;
    let now = hookline_model::timefmt::now_rfc3339();
    let mut sub = Subscription {
        id: SubscriptionId(format!("sub_{}", uuid::Uuid::new_v4().simple())),
        account: caller.account,
        database: input
            .database
            .as_deref()
            .map(|d| database_id("database", d))
            .transpose()?,
        collection: input
            .collection
            .as_deref()
            .map(|c| collection_id("collection", c))
            .transpose()?,
        events: input.events,
        actions: input.actions,
        triggers: input.triggers,
        conditions: condition_of(Some(input.conditions), input.conditions_text.as_deref())?
            .unwrap_or_default(),
        url: input.url,
        format: input.format,
        status: SubscriptionStatus::Unverified,
        verification: Map::new(),
        limits: input.limits,
        ordered: input.ordered,
        signature: input.signature,
        created: Some(now.clone()),
        updated: Some(now),
        version: 0,
    };
    validate(&state, &sub)?;
    reverify(&state, &mut sub);
    save(&state, &mut sub).await?;
    tracing::info!(subscription = %sub.id, account = %sub.account, status = sub.status.as_str(), "subscription created");
    Ok((StatusCode::CREATED, tagged(sub)))
}

/// One subscription, with the sender's circuit state of its endpoint (`endpoint_health`) once
/// the sender has recorded one.
pub async fn get_one(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(id): Path<String>,
) -> Result<Tagged<Value>, ApiError> {
    let sub = owned(&state, &caller.account, &id)?;
    let tag = etag_header(&sub);
    let mut answer = serde_json::to_value(&sub)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let health = state.tables.endpoint_health(&sub.id.0);
    if let (Some(health), Value::Object(fields)) = (health, &mut answer) {
        let health = serde_json::to_value(health).map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })?;
        fields.insert("endpoint_health".into(), health);
    }
    Ok(([tag], Json(answer)))
}

/// The list answer: one page, in the order of the ids.
#[derive(Debug, serde::Serialize)]
pub struct SubscriptionList {
    pub subscriptions: Vec<Subscription>,
    /// The `cursor` of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

impl SubscriptionList {
    /// The page of `all` (sorted by id) that `limit` and `cursor` ask for.
    pub fn page(
        all: Vec<Subscription>,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> Result<Self, ApiError> {
        let limit = crate::page::limit(limit, crate::page::DEFAULT_LIMIT, crate::page::MAX_LIMIT)?;
        let after = cursor
            .map(|c| crate::page::decode("subscriptions", c))
            .transpose()?;
        let (subscriptions, next_cursor) =
            crate::page::page(all, "subscriptions", |s| &s.id.0, after.as_deref(), limit);
        Ok(Self {
            subscriptions,
            next_cursor,
        })
    }
}

pub async fn list(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<SubscriptionList>, ApiError> {
    let database = q
        .database
        .as_deref()
        .map(|d| database_id("database", d))
        .transpose()?;
    let collection = q
        .collection
        .as_deref()
        .map(|c| collection_id("collection", c))
        .transpose()?;
    let all = state.tables.subscriptions_where(|s| {
        s.account == caller.account
            // A database's list includes the account-wide subscriptions, which cover it too.
            && database
                .as_ref()
                .is_none_or(|d| s.database.as_ref().is_none_or(|own| own == d))
            && collection
                .as_ref()
                .is_none_or(|c| s.collection.as_ref() == Some(c))
            && q.status.is_none_or(|st| s.status == st)
    });
    Ok(Json(SubscriptionList::page(
        all,
        q.limit,
        q.cursor.as_deref(),
    )?))
}

pub async fn update(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Tagged<Subscription>, ApiError> {
    let patch: SubscriptionPatch = parse_body(body)?;
    let _writing = state.write_locks.lock(&id).await;
    let mut sub = owned(&state, &caller.account, &id)?;
    check_if_match(&headers, &sub)?;
    if let Some(d) = patch.database {
        sub.database = d
            .as_deref()
            .map(|d| database_id("database", d))
            .transpose()?;
    }
    if let Some(c) = patch.collection {
        sub.collection = c
            .as_deref()
            .map(|c| collection_id("collection", c))
            .transpose()?;
    }
    if let Some(e) = patch.events {
        sub.events = e;
    }
    if let Some(a) = patch.actions {
        sub.actions = a;
    }
    if let Some(t) = patch.triggers {
        sub.triggers = t;
    }
    if let Some(c) = condition_of(patch.conditions, patch.conditions_text.as_deref())? {
        sub.conditions = c;
    }
    if let Some(f) = patch.format {
        sub.format = f;
    }
    if let Some(l) = patch.limits {
        sub.limits = l;
    }
    if let Some(o) = patch.ordered {
        sub.ordered = o;
    }
    if let Some(s) = patch.signature {
        sub.signature = s;
    }
    let url_changed = patch.url.as_ref().is_some_and(|u| *u != sub.url);
    if let Some(u) = patch.url {
        sub.url = u;
    }
    validate(&state, &sub)?;
    if url_changed {
        // A new URL must be proven again; a paused subscription stays paused once it is.
        let was = sub.status;
        reverify(&state, &mut sub);
        if sub.status == SubscriptionStatus::Active && was == SubscriptionStatus::Paused {
            sub.status = SubscriptionStatus::Paused;
        }
    }
    sub.updated = Some(hookline_model::timefmt::now_rfc3339());
    save(&state, &mut sub).await?;
    Ok(tagged(sub))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let _writing = state.write_locks.lock(&id).await;
    let sub = owned(&state, &caller.account, &id)?;
    check_if_match(&headers, &sub)?;
    state
        .tables
        .delete_subscription(&sub.id)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    tracing::info!(subscription = %sub.id, "subscription deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Pausing stops sending; events routed meanwhile are not delivered.
pub async fn pause(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Tagged<Subscription>, ApiError> {
    set_status(&state, &caller, &id, &headers, SubscriptionStatus::Paused).await
}

/// Resumes a paused subscription, or re-enables one Hookline disabled (410 Gone, or failing for
/// too long) once its owner says the endpoint is back.
pub async fn resume(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Tagged<Subscription>, ApiError> {
    set_status(&state, &caller, &id, &headers, SubscriptionStatus::Active).await
}

/// Moves a verified subscription to `to` (idempotent); an unverified one cannot be paused or
/// resumed: only verification makes it active.
async fn set_status(
    state: &AppState,
    caller: &AccountCaller,
    id: &str,
    headers: &HeaderMap,
    to: SubscriptionStatus,
) -> Result<Tagged<Subscription>, ApiError> {
    let _writing = state.write_locks.lock(id).await;
    let mut sub = owned(state, &caller.account, id)?;
    check_if_match(headers, &sub)?;
    if sub.status == SubscriptionStatus::Unverified {
        return Err(ApiError::conflict(
            "unverified",
            "the subscription is not verified yet, so it receives nothing; POST .../verify first",
        ));
    }
    if sub.status != to {
        sub.status = to;
        sub.updated = Some(hookline_model::timefmt::now_rfc3339());
        save(state, &mut sub).await?;
    }
    Ok(tagged(sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_with(actions: Value) -> Result<NewSubscription, ApiError> {
        parse_body(json!({"database": "12", "events": ["update"],
            "url": "https://h.example/in", "actions": actions}))
    }

    #[test]
    fn all_in_actions_is_normalised_to_absent() {
        for all in [
            json!("all"),
            json!(["all"]),
            json!(["create", "all"]),
            json!(null),
        ] {
            assert_eq!(new_with(all.clone()).unwrap().actions, None, "{all}");
        }
        assert_eq!(
            new_with(json!(["create"])).unwrap().actions,
            Some(vec![ProfileAction::Create])
        );
        let e = new_with(json!(["everything"])).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("actions"));
        assert!(e.message.contains("\"all\""), "{}", e.message);
        assert!(new_with(json!(3)).is_err());
        let patch: SubscriptionPatch = parse_body(json!({"actions": "all"})).unwrap();
        assert_eq!(patch.actions, Some(None), "a patch to all clears the list");
        let patch: SubscriptionPatch = parse_body(json!({})).unwrap();
        assert_eq!(patch.actions, None, "absent leaves it as it is");
    }
}
