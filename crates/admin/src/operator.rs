//! Endpoints across accounts, for operator tokens only.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use hookline_model::{AccountId, DatabaseId, SubscriptionStatus};
use serde::{Deserialize, Serialize};

use crate::auth::OperatorCaller;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::subscriptions::SubscriptionList;
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorQuery {
    pub account: Option<String>,
    pub database: Option<String>,
    pub status: Option<SubscriptionStatus>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// The `account` query filter, checked.
fn account_filter(account: Option<&str>) -> Result<Option<AccountId>, ApiError> {
    account
        .map(|a| AccountId::new(a).map_err(|e| ApiError::invalid("account", e.to_string())))
        .transpose()
}

/// `GET /v1/operator/subscriptions`: every account's subscriptions, filterable.
pub async fn subscriptions(
    State(state): State<AppState>,
    _op: OperatorCaller,
    ApiQuery(q): ApiQuery<OperatorQuery>,
) -> Result<Json<SubscriptionList>, ApiError> {
    let account = account_filter(q.account.as_deref())?;
    let database = q
        .database
        .as_deref()
        .map(|d| DatabaseId::new(d).map_err(|e| ApiError::invalid("database", e.to_string())))
        .transpose()?;
    let all = state.tables.subscriptions_where(|s| {
        account.as_ref().is_none_or(|a| &s.account == a)
            && database.as_ref().is_none_or(|d| &s.database == d)
            && q.status.is_none_or(|st| s.status == st)
    });
    Ok(Json(SubscriptionList::page(
        all,
        q.limit,
        q.cursor.as_deref(),
    )?))
}

/// `GET /v1/operator/metrics`: this process's Prometheus metrics behind the operator token (the
/// unauthenticated `/metrics` listener is for scrapers inside the cluster network).
pub async fn metrics(
    State(state): State<AppState>,
    _op: OperatorCaller,
) -> Result<impl IntoResponse, ApiError> {
    let body = state.metrics.render();
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointsQuery {
    pub account: Option<String>,
    pub status: Option<SubscriptionStatus>,
    /// Only endpoints whose circuit is not closed or that are failing.
    #[serde(default)]
    pub failing: bool,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// One subscription's endpoint as the senders last reported it: what a dashboard cannot carry
/// in metric labels (bounded labels only), for an operator to look up.
#[derive(Debug, Serialize)]
pub struct EndpointView {
    pub subscription_id: String,
    pub account: String,
    pub database: String,
    pub url: String,
    pub status: SubscriptionStatus,
    /// `closed`, `open` or `half-open` (`closed` while the endpoint never failed).
    pub circuit: String,
    pub failing_since: Option<String>,
    pub open_until: Option<String>,
    /// Of the attempts the admin keeps (the last 100 per subscription), how many failed.
    pub recent_failures: usize,
    pub recent_attempts: usize,
    pub last_attempt: Option<LastAttempt>,
    /// Deliveries waiting for another attempt or parked while paused ([`crate::backlog`]).
    pub backlog: crate::backlog::BacklogView,
}

#[derive(Debug, Serialize)]
pub struct LastAttempt {
    pub at: String,
    pub result: hookline_model::OutcomeResult,
    pub http_status: Option<u16>,
    pub error_class: Option<hookline_model::ErrorClass>,
}

#[derive(Debug, Serialize)]
pub struct EndpointList {
    pub endpoints: Vec<EndpointView>,
    /// The `cursor` of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// The order of the endpoint list as one string: failing endpoints first, longest failing
/// first, then by subscription id (unique, so it can serve as a cursor).
fn endpoint_order(e: &EndpointView) -> String {
    match &e.failing_since {
        Some(since) => format!("0{since}\u{1f}{}", e.subscription_id),
        None => format!("1\u{1f}{}", e.subscription_id),
    }
}

/// `GET /v1/operator/endpoints`: per subscription, its circuit, since when it has been failing
/// and its last attempts; failing endpoints first (longest failing first).
pub async fn endpoints(
    State(state): State<AppState>,
    _op: OperatorCaller,
    ApiQuery(q): ApiQuery<EndpointsQuery>,
) -> Result<Json<EndpointList>, ApiError> {
    let account = account_filter(q.account.as_deref())?;
    let subs = state.tables.subscriptions_where(|s| {
        account.as_ref().is_none_or(|a| &s.account == a) && q.status.is_none_or(|st| s.status == st)
    });
    let limit = crate::page::limit(q.limit, crate::page::DEFAULT_LIMIT, crate::page::MAX_LIMIT)?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| crate::page::decode("endpoints", c))
        .transpose()?;
    let mut endpoints: Vec<(String, EndpointView)> = subs
        .into_iter()
        .map(|s| endpoint_view(&state, s))
        .filter(|e| !q.failing || e.circuit != "closed" || e.failing_since.is_some())
        .map(|e| (endpoint_order(&e), e))
        .collect();
    endpoints.sort_by(|a, b| a.0.cmp(&b.0));
    let (page, next_cursor) =
        crate::page::page(endpoints, "endpoints", |(k, _)| k, after.as_deref(), limit);
    Ok(Json(EndpointList {
        endpoints: page.into_iter().map(|(_, e)| e).collect(),
        next_cursor,
    }))
}

fn endpoint_view(state: &AppState, s: hookline_model::Subscription) -> EndpointView {
    let health = state.tables.endpoint_health(&s.id.0);
    let attempts = state.tables.attempts(&s.id, usize::MAX);
    let failed = |o: &&hookline_model::Outcome| {
        !matches!(o.result, hookline_model::OutcomeResult::Delivered)
    };
    let last_attempt = attempts
        .iter()
        .max_by(|a, b| a.started_at.cmp(&b.started_at));
    EndpointView {
        subscription_id: s.id.to_string(),
        account: s.account.to_string(),
        database: s.database.to_string(),
        url: s.url.clone(),
        status: s.status,
        circuit: health
            .as_ref()
            .map_or_else(|| "closed".to_owned(), |h| h.state.clone()),
        failing_since: health.as_ref().and_then(|h| h.failing_since.clone()),
        open_until: health.as_ref().and_then(|h| h.open_until.clone()),
        recent_failures: attempts.iter().filter(failed).count(),
        recent_attempts: attempts.len(),
        backlog: state.tables.backlog(&s.id),
        last_attempt: last_attempt.map(|o| LastAttempt {
            at: o.started_at.clone(),
            result: o.result,
            http_status: o.http_status,
            error_class: o.error_class,
        }),
    }
}
