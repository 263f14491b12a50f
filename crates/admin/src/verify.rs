//! Proof that a subscription's callback URL belongs to its account: the file challenge
//! (`<prefix>-<token>.txt`, the prefix being `HOOKLINE_VERIFICATION_PREFIX`), its download,
//! `POST .../verify`, and validated domains that cover a URL.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hookline_model::{AccountId, Subscription, SubscriptionStatus};
use hookline_verification::{FilePrefix, VerificationToken};
use serde_json::{json, Map, Value};

use crate::auth::AccountCaller;
use crate::concurrency::check_if_match;
use crate::error::ApiError;
use crate::subscriptions::{owned, save, tagged, Tagged};
use crate::AppState;

/// A fresh file challenge for `url`, its file named with `prefix`.
pub fn file_challenge(prefix: &FilePrefix, url: &str) -> Map<String, Value> {
    let token = VerificationToken::generate();
    let name = hookline_verification::file_name(prefix, &token);
    let locations = url::Url::parse(url)
        .map(|u| {
            hookline_verification::file_locations(&u, &name)
                .into_iter()
                .map(|l| Value::String(l.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert("method".into(), json!("file"));
    m.insert("token".into(), json!(token.as_str()));
    m.insert("file".into(), json!(name));
    m.insert("locations".into(), Value::Array(locations));
    m
}

/// The token of `sub`'s file challenge and the name of its file. A challenge keeps the name
/// it was issued with (a prefix changed since does not break it); one without a valid name
/// gets the configured prefix.
fn challenge(state: &AppState, sub: &Subscription) -> Option<(VerificationToken, String)> {
    let v = &sub.verification;
    let token = VerificationToken::parse(v.get("token")?.as_str()?).ok()?;
    let name = v
        .get("file")
        .and_then(Value::as_str)
        .filter(|n| hookline_verification::prefix_of(n, &token).is_some())
        .map_or_else(
            || hookline_verification::file_name(&state.verification_prefix, &token),
            str::to_owned,
        );
    Some((token, name))
}

/// The validated domain of `account` that covers `url`'s host, if any.
pub fn covering_domain(state: &AppState, account: &AccountId, url: &str) -> Option<String> {
    let host = url::Url::parse(url).ok()?.host_str()?.to_owned();
    state
        .tables
        .domains_where(|d| {
            &d.account == account && d.status == hookline_model::DomainStatus::Validated
        })
        .into_iter()
        .find(|d| {
            hookline_verification::DomainName::parse(&d.domain)
                .is_ok_and(|name| hookline_verification::domain_covers(&name, &host))
        })
        .map(|d| d.domain)
}

/// Marks `sub` verified by `by` (a file URL or `domain:<name>`); unverified becomes active.
pub fn mark_verified(sub: &mut Subscription, by: String) {
    sub.verification
        .insert("verified_by".into(), Value::String(by));
    sub.verification.insert(
        "verified_at".into(),
        Value::String(hookline_model::timefmt::now_rfc3339()),
    );
    if sub.status == SubscriptionStatus::Unverified {
        sub.status = SubscriptionStatus::Active;
    }
}

/// Marks `sub` verified by the validated `domain` that covers its URL.
pub fn mark_verified_by_domain(sub: &mut Subscription, domain: &str) {
    sub.verification.insert("method".into(), json!("domain"));
    sub.verification.insert("domain".into(), json!(domain));
    mark_verified(sub, format!("domain:{domain}"));
}

/// Sets the verification state for a new or changed URL: covered by a validated domain means
/// verified; otherwise a new file challenge and `unverified`.
pub fn reverify(state: &AppState, sub: &mut Subscription) {
    sub.verification = Map::new();
    match covering_domain(state, &sub.account, &sub.url) {
        Some(domain) => mark_verified_by_domain(sub, &domain),
        None => {
            sub.verification = file_challenge(&state.verification_prefix, &sub.url);
            sub.status = SubscriptionStatus::Unverified;
        }
    }
}

/// `GET /v1/subscriptions/{id}/verification-file`: the file to publish, as a download
/// (`text/plain`, its content the token, `Content-Disposition: attachment` with its name).
pub async fn download(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let sub = owned(&state, &caller.account, &id)?;
    let Some((token, name)) = challenge(&state, &sub) else {
        let why = if sub.verification.get("method").and_then(Value::as_str) == Some("domain") {
            "the subscription's URL is verified by its validated domain; no file is needed"
        } else {
            "the subscription has no file challenge; POST .../verify issues one"
        };
        return Err(ApiError::conflict("no_file_challenge", why));
    };
    // The name is `<prefix>-<hex>.txt` with a checked prefix: a plain quoted-string.
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        format!("{token}\n"),
    )
        .into_response())
}

/// `POST /v1/subscriptions/{id}/verify`: a validated domain covering the URL, or the
/// verification file at the script's directory or the web root (one redirect from http to
/// https on the same host followed).
pub async fn verify(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Tagged<Subscription>, ApiError> {
    let _writing = state.write_locks.lock(&id).await;
    let mut sub = owned(&state, &caller.account, &id)?;
    check_if_match(&headers, &sub)?;
    if sub.verification.contains_key("verified_at") {
        return Ok(tagged(sub));
    }
    crate::limits::charge(&state.limits.verify, &caller.account, "verifications")?;
    if let Some(domain) = covering_domain(&state, &sub.account, &sub.url) {
        mark_verified_by_domain(&mut sub, &domain);
    } else {
        let Some((token, name)) = challenge(&state, &sub) else {
            // Written by other tooling without a challenge: issue one now.
            sub.verification = file_challenge(&state.verification_prefix, &sub.url);
            save(&state, &mut sub).await?;
            return Err(ApiError::conflict(
                "challenge_issued",
                format!(
                    "the subscription had no verification challenge; publish the file {} and \
                     call verify again",
                    sub.verification["file"].as_str().unwrap_or_default()
                ),
            ));
        };
        let url =
            url::Url::parse(&sub.url).map_err(|e| ApiError::invalid("url", format!("{e}")))?;
        match hookline_verification::verify_file(&state.client, &url, &name, &token).await {
            Ok(found) => mark_verified(&mut sub, found.to_string()),
            Err(e) => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "verification_failed",
                    e.to_string(),
                )
                .with_details(json!({
                    "file": name,
                    "locations": hookline_verification::file_locations(&url, &name)
                        .iter().map(|u| u.to_string()).collect::<Vec<_>>(),
                })))
            }
        }
    }
    sub.updated = Some(hookline_model::timefmt::now_rfc3339());
    save(&state, &mut sub).await?;
    let by = sub
        .verification
        .get("verified_by")
        .and_then(Value::as_str)
        .unwrap_or("-");
    tracing::info!(subscription = %sub.id, by, "subscription verified");
    Ok(tagged(sub))
}
