//! Bearer tokens on requests: `Authorization: Bearer hlt_<id>_<secret>` checked against the
//! followed `tokens` table, and the callers it yields (account, operator, optional).
//!
//! The token format, its generation and the constant-time secret check live in
//! `hookline-tokens` (shared with the `hookline tokens` command), re-exported here.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use hookline_model::{AccountId, TokenRole};
pub use hookline_tokens::{generate, secret_matches, split, NewToken};

use crate::error::ApiError;
use crate::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub role: TokenRole,
    pub account: Option<AccountId>,
}

/// A caller holding an account token; the account every handler scopes its work to.
#[derive(Debug, Clone)]
pub struct AccountCaller {
    pub account: AccountId,
}

/// A caller holding an operator token.
#[derive(Debug, Clone)]
pub struct OperatorCaller;

/// The caller of an endpoint open to everyone: `None` without an `Authorization` header; a
/// header that is sent must hold a valid token (else 401).
#[derive(Debug, Clone)]
pub struct OptionalCaller(pub Option<Caller>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// Checks the bearer token with [`authenticate`].
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized("send the header `Authorization: Bearer <token>`")
            })?;
        let source = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let token = header
            .to_str()
            .map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
                    .ok_or_else(|| {
                        ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
                    })
            });
        match token {
            Ok(token) => authenticate(state, source, token.trim()),
            Err(e) => authenticate_failed(state, source, e),
        }
    }
}

/// The caller a presented token (`hlt_<id>_<secret>`) names, or 401: the one check behind the
/// API's bearer tokens and the console's sign-in. Failed attempts are counted per source
/// address (IPv6: per /64, `HOOKLINE_AUTH_FAILURE_RATE`); an address past the limit gets 429
/// with `Retry-After` for every token it presents, valid or not, until its bucket refills.
pub fn authenticate(
    state: &AppState,
    source: Option<std::net::IpAddr>,
    token: &str,
) -> Result<Caller, ApiError> {
    let source = source.map(crate::limits::source_key);
    if let Some(Err(wait)) = source.map(|ip| state.limits.auth_failures.peek(&ip)) {
        return Err(ApiError::too_many(
            "too_many_auth_failures",
            format!(
                "too many failed authentications from this address; try again in {} s",
                crate::limits::retry_secs(wait)
            ),
            wait,
        ));
    }
    let checked = check_token(token, state);
    if let (Err(_), Some(ip)) = (&checked, source) {
        let _ = state.limits.auth_failures.take(&ip);
    }
    checked
}

/// A request whose credentials could not even be read: counted like a wrong token.
fn authenticate_failed(
    state: &AppState,
    source: Option<std::net::IpAddr>,
    error: ApiError,
) -> Result<Caller, ApiError> {
    match authenticate(state, source, "") {
        Err(e) if e.status == axum::http::StatusCode::TOO_MANY_REQUESTS => Err(e),
        _ => Err(error),
    }
}

/// The caller `token` names, or 401.
fn check_token(token: &str, state: &AppState) -> Result<Caller, ApiError> {
    let (id, secret) = split(token).ok_or_else(|| {
        ApiError::unauthorized("this is not a Hookline token (they look like hlt_<id>_<secret>)")
    })?;
    let record = state.tables.token(id);
    match record {
        Some(r) if secret_matches(&r, secret) => Ok(Caller {
            token_id: r.id,
            role: r.role,
            account: r.account,
        }),
        // One answer for unknown, revoked and wrong: nothing to learn from the difference.
        _ => Err(ApiError::unauthorized("the token is unknown or revoked")),
    }
}

impl FromRequestParts<AppState> for AccountCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match (caller.role, caller.account) {
            (TokenRole::Account, Some(account)) => Ok(AccountCaller { account }),
            _ => Err(ApiError::forbidden(
                "this endpoint acts for one account: use that account's token (operator tokens \
                 only reach /v1/operator/...)",
            )),
        }
    }
}

impl FromRequestParts<AppState> for OptionalCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            return Ok(Self(None));
        }
        Ok(Self(Some(Caller::from_request_parts(parts, state).await?)))
    }
}

impl FromRequestParts<AppState> for OperatorCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.role {
            TokenRole::Operator => Ok(OperatorCaller),
            TokenRole::Account => Err(ApiError::forbidden("this endpoint needs an operator token")),
        }
    }
}
