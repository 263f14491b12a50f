//! `/v1/domains`: DNS TXT validation of a domain, after which callback URLs on it and its
//! subdomains need no verification file.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use hookline_model::{DomainRecord, DomainStatus, SubscriptionStatus};
use hookline_verification::{DomainName, VerificationToken};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::AccountCaller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::subscriptions::{covering_domain, mark_verified_by_domain, parse_body};
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDomain {
    pub domain: String,
}

/// A domain as the API shows it: the record plus the TXT record to publish.
#[derive(Debug, Serialize)]
pub struct DomainView {
    pub domain: String,
    pub status: DomainStatus,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validated: Option<String>,
    pub record: TxtRecord,
    /// Subscriptions this validation activated (only in the answer to `validate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activated: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub struct TxtRecord {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    pub value: String,
}

fn view(d: &DomainRecord) -> Result<DomainView, ApiError> {
    let name = DomainName::parse(&d.domain)
        .map_err(|e| ApiError::unavailable(format!("stored domain is invalid: {e}")))?;
    let token = VerificationToken::parse(&d.token)
        .map_err(|e| ApiError::unavailable(format!("stored token is invalid: {e}")))?;
    let challenge = hookline_verification::dns_challenge(&name, &token);
    Ok(DomainView {
        domain: d.domain.clone(),
        status: d.status,
        created: d.created.clone(),
        validated: d.validated.clone(),
        record: TxtRecord {
            kind: "TXT",
            name: challenge.name,
            value: challenge.value,
        },
        activated: None,
    })
}

fn parse_domain(field: &str, raw: &str) -> Result<DomainName, ApiError> {
    DomainName::parse(raw).map_err(|e| ApiError::invalid(field, e.to_string()))
}

fn owned(state: &AppState, caller: &AccountCaller, raw: &str) -> Result<DomainRecord, ApiError> {
    let name = DomainName::parse(raw).map_err(|_| ApiError::not_found("domain", raw))?;
    state
        .tables
        .domain(&hookline_model::access::domain_key(
            &caller.account,
            name.as_str(),
        ))
        .ok_or_else(|| ApiError::not_found("domain", raw))
}

/// `POST /v1/domains`: hands out the TXT record to publish. Adding a domain that exists answers
/// the existing challenge (idempotent), so a retried request does not invalidate a published
/// record.
pub async fn create(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<DomainView>), ApiError> {
    let input: NewDomain = parse_body(body)?;
    let name = parse_domain("domain", &input.domain)?;
    let key = hookline_model::access::domain_key(&caller.account, name.as_str());
    if let Some(existing) = state.tables.domain(&key) {
        return Ok((StatusCode::OK, Json(view(&existing)?)));
    }
    let record = DomainRecord {
        account: caller.account.clone(),
        domain: name.as_str().to_owned(),
        token: VerificationToken::generate().as_str().to_owned(),
        status: DomainStatus::Pending,
        created: hookline_model::timefmt::now_rfc3339(),
        validated: None,
    };
    state
        .tables
        .put_domain(&record)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok((StatusCode::CREATED, Json(view(&record)?)))
}

#[derive(Debug, Serialize)]
pub struct DomainList {
    pub domains: Vec<DomainView>,
    /// The `cursor` of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// `limit` and `cursor` of `GET /v1/domains`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// The account's domains, by name, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiQuery(q): ApiQuery<DomainQuery>,
) -> Result<Json<DomainList>, ApiError> {
    let limit = crate::page::limit(q.limit, crate::page::DEFAULT_LIMIT, crate::page::MAX_LIMIT)?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| crate::page::decode("domains", c))
        .transpose()?;
    let all = state.tables.domains_where(|d| d.account == caller.account);
    let (records, next_cursor) =
        crate::page::page(all, "domains", |d| &d.domain, after.as_deref(), limit);
    let domains = records.iter().map(view).collect::<Result<_, _>>()?;
    Ok(Json(DomainList {
        domains,
        next_cursor,
    }))
}

pub async fn get_one(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(domain): Path<String>,
) -> Result<Json<DomainView>, ApiError> {
    Ok(Json(view(&owned(&state, &caller, &domain)?)?))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    let record = owned(&state, &caller, &domain)?;
    state
        .tables
        .delete_domain(&record.key())
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/domains/{domain}/validate`: looks the TXT record up; on success the domain is
/// validated and the account's unverified subscriptions on it become active.
pub async fn validate(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(domain): Path<String>,
) -> Result<Json<DomainView>, ApiError> {
    let mut record = owned(&state, &caller, &domain)?;
    let name = parse_domain("domain", &record.domain)?;
    let token = VerificationToken::parse(&record.token)
        .map_err(|e| ApiError::unavailable(format!("stored token is invalid: {e}")))?;
    if record.status != DomainStatus::Validated {
        crate::limits::charge(&state.limits.verify, &caller.account, "validations")?;
        if let Err(e) = hookline_verification::validate_domain(&state.resolver, &name, &token).await
        {
            let challenge = hookline_verification::dns_challenge(&name, &token);
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                e.to_string(),
            )
            .with_details(serde_json::json!({
                "record": {"type": "TXT", "name": challenge.name, "value": challenge.value}
            })));
        }
        record.status = DomainStatus::Validated;
        record.validated = Some(hookline_model::timefmt::now_rfc3339());
        state
            .tables
            .put_domain(&record)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        tracing::info!(account = %caller.account, domain = %record.domain, "domain validated");
    }
    let mut activated = Vec::new();
    for candidate in state.tables.subscriptions_where(|s| {
        s.account == caller.account && s.status == SubscriptionStatus::Unverified
    }) {
        // Re-read under the write lock, so an edit made meanwhile is kept.
        let _writing = state.write_locks.lock(&candidate.id.0).await;
        let Some(mut sub) = state
            .tables
            .subscription(&candidate.id.0)
            .filter(|s| s.account == caller.account && s.status == SubscriptionStatus::Unverified)
        else {
            continue;
        };
        if let Some(by) = covering_domain(&state, &caller.account, &sub.url) {
            mark_verified_by_domain(&mut sub, &by);
            sub.updated = Some(hookline_model::timefmt::now_rfc3339());
            crate::subscriptions::save(&state, &mut sub).await?;
            activated.push(sub.id.0);
        }
    }
    let mut v = view(&record)?;
    v.activated = Some(activated);
    Ok(Json(v))
}
