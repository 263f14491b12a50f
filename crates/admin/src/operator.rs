//! Endpoints across accounts, for operator tokens only.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use hookline_model::{AccountId, DatabaseId, SubscriptionStatus};
use serde::Deserialize;

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
}

/// `GET /v1/operator/subscriptions`: every account's subscriptions, filterable.
pub async fn subscriptions(
    State(state): State<AppState>,
    _op: OperatorCaller,
    ApiQuery(q): ApiQuery<OperatorQuery>,
) -> Result<Json<SubscriptionList>, ApiError> {
    let account = q
        .account
        .as_deref()
        .map(|a| AccountId::new(a).map_err(|e| ApiError::invalid("account", e.to_string())))
        .transpose()?;
    let database = q
        .database
        .as_deref()
        .map(|d| DatabaseId::new(d).map_err(|e| ApiError::invalid("database", e.to_string())))
        .transpose()?;
    Ok(Json(SubscriptionList {
        subscriptions: state.tables.subscriptions_where(|s| {
            account.as_ref().is_none_or(|a| &s.account == a)
                && database.as_ref().is_none_or(|d| &s.database == d)
                && q.status.is_none_or(|st| s.status == st)
        }),
    }))
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
