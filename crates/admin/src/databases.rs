//! `/v1/databases`: the settings of the account's databases: a display name, and the profile
//! field that holds the e-mail address (Copernica names it per database). The tracking stage
//! follows them from the compacted `databases` topic; a database without settings, or without
//! `email_field`, uses the stage's `--email-field` (default `email`).
//!
//! `PUT` replaces a database's settings (absent fields are cleared), `DELETE` returns the
//! database to the defaults. Rows are keyed by account and database, so an account only ever
//! sees and changes its own, whatever database ids other accounts use.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use hookline_model::database::{check_email_field, check_name, database_key};
use hookline_model::{DatabaseId, DatabaseSettings};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::AccountCaller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::subscriptions::parse_body;
use crate::AppState;

/// The body of `PUT /v1/databases/{database}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseBody {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email_field: Option<String>,
}

/// A database's settings as the API shows them.
#[derive(Debug, Serialize)]
pub struct DatabaseView {
    pub database: String,
    pub name: Option<String>,
    pub email_field: Option<String>,
    pub modified: String,
}

fn view(row: &DatabaseSettings) -> DatabaseView {
    DatabaseView {
        database: row.database.as_str().to_owned(),
        name: row.name.clone(),
        email_field: row.email_field.clone(),
        modified: row.modified.clone(),
    }
}

fn database_id(raw: &str) -> Result<DatabaseId, ApiError> {
    DatabaseId::new(raw).map_err(|e| ApiError::invalid("database", e.to_string()))
}

fn owned(
    state: &AppState,
    caller: &AccountCaller,
    raw: &str,
) -> Result<DatabaseSettings, ApiError> {
    let id = DatabaseId::new(raw).map_err(|_| ApiError::not_found("database settings", raw))?;
    state
        .tables
        .database(&database_key(&caller.account, &id))
        .ok_or_else(|| ApiError::not_found("database settings", raw))
}

/// `PUT /v1/databases/{database}`: sets the database's settings; 201 when it had none.
pub async fn put(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(database): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<DatabaseView>), ApiError> {
    let database = database_id(&database)?;
    let input: DatabaseBody = parse_body(body)?;
    if let Some(field) = &input.email_field {
        check_email_field(field).map_err(|m| ApiError::invalid("email_field", m))?;
    }
    if let Some(name) = &input.name {
        check_name(name).map_err(|m| ApiError::invalid("name", m))?;
    }
    let key = database_key(&caller.account, &database);
    let existed = state.tables.database(&key).is_some();
    if !existed {
        check_quota(&state, &caller)?;
    }
    let row = DatabaseSettings {
        account: caller.account.clone(),
        database,
        name: input.name,
        email_field: input.email_field,
        modified: hookline_model::timefmt::now_rfc3339(),
    };
    state
        .tables
        .put_database(&row)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view(&row))))
}

/// Every database with settings costs each tracking instance a row in memory: bounded per
/// account like subscriptions.
fn check_quota(state: &AppState, caller: &AccountCaller) -> Result<(), ApiError> {
    let held = state
        .tables
        .databases_where(|d| d.account == caller.account)
        .len();
    crate::limits::check_quota(
        held,
        state.limits.max_databases,
        "databases with settings",
        "HOOKLINE_MAX_DATABASES",
    )
}

#[derive(Debug, Serialize)]
pub struct DatabaseList {
    pub databases: Vec<DatabaseView>,
    /// The `cursor` of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// `limit` and `cursor` of `GET /v1/databases`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// `GET /v1/databases`: the account's databases with settings, by id, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiQuery(q): ApiQuery<DatabaseQuery>,
) -> Result<Json<DatabaseList>, ApiError> {
    let limit = crate::page::limit(q.limit, crate::page::DEFAULT_LIMIT, crate::page::MAX_LIMIT)?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| crate::page::decode("databases", c))
        .transpose()?;
    let all = state
        .tables
        .databases_where(|d| d.account == caller.account);
    let (rows, next_cursor) = crate::page::page(
        all,
        "databases",
        |d| d.database.as_str(),
        after.as_deref(),
        limit,
    );
    Ok(Json(DatabaseList {
        databases: rows.iter().map(view).collect(),
        next_cursor,
    }))
}

/// `GET /v1/databases/{database}`: 404 while the database has no settings (it uses the
/// defaults).
pub async fn get_one(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(database): Path<String>,
) -> Result<Json<DatabaseView>, ApiError> {
    Ok(Json(view(&owned(&state, &caller, &database)?)))
}

/// `DELETE /v1/databases/{database}`: back to the defaults.
pub async fn delete(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(database): Path<String>,
) -> Result<StatusCode, ApiError> {
    let row = owned(&state, &caller, &database)?;
    state
        .tables
        .delete_database(&row.key())
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}
