//! Bearer tokens: `hlt_<id>_<secret>`.
//!
//! The id (16 hex digits) finds the record on the `tokens` topic; only the SHA-256 of the secret
//! (256 random bits) is stored, and it is compared in constant time. A token is shown once, when
//! an operator creates it (`hookline tokens create`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use hookline_model::{AccountId, TokenRecord, TokenRole};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::AppState;

const PREFIX: &str = "hlt_";

/// A freshly generated token: the string to hand out once, and the record to store.
pub struct NewToken {
    pub token: String,
    pub record: TokenRecord,
}

/// Generates a token for `account` (or an operator token when `account` is `None`).
pub fn generate(role: TokenRole, account: Option<AccountId>, label: Option<String>) -> NewToken {
    use rand::RngCore;
    let mut rng = rand::rng();
    let mut id = [0u8; 8];
    rng.fill_bytes(&mut id);
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let id = hex(&id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    NewToken {
        token: format!("{PREFIX}{id}_{secret}"),
        record: TokenRecord {
            id,
            role,
            account,
            secret_sha256: hex(&Sha256::digest(secret.as_bytes())),
            label,
            created: hookline_model::timefmt::now_rfc3339(),
        },
    }
}

/// Splits a presented token into id and secret; `None` when it is not shaped like one.
pub fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
        .then_some((id, secret))
}

/// Does `secret` hash to the stored digest? Constant time in the digest comparison.
pub fn secret_matches(record: &TokenRecord, secret: &str) -> bool {
    let presented = hex(&Sha256::digest(secret.as_bytes()));
    let (a, b) = (presented.as_bytes(), record.secret_sha256.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

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

    /// Checks the bearer token. Failed attempts are counted per source address (IPv6: per /64,
    /// `HOOKLINE_AUTH_FAILURE_RATE`); an address past the limit gets 429 with `Retry-After`
    /// for every token it presents, valid or not, until its bucket refills.
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
            .map(|c| crate::limits::source_key(c.0.ip()));
        let failures = &state.limits.auth_failures;
        if let Some(Err(wait)) = source.map(|ip| failures.peek(&ip)) {
            return Err(ApiError::too_many(
                "too_many_auth_failures",
                format!(
                    "too many failed authentications from this address; try again in {} s",
                    crate::limits::retry_secs(wait)
                ),
                wait,
            ));
        }
        let checked = check_token(header, state);
        if let (Err(_), Some(ip)) = (&checked, source) {
            let _ = failures.take(&ip);
        }
        checked
    }
}

/// The caller a presented `Authorization` header names, or 401.
fn check_token(header: &axum::http::HeaderValue, state: &AppState) -> Result<Caller, ApiError> {
    let value = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))?
        .trim();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_check_against_their_record_only() {
        let a = generate(
            TokenRole::Account,
            Some(AccountId::new("1001").unwrap()),
            None,
        );
        let b = generate(
            TokenRole::Account,
            Some(AccountId::new("1001").unwrap()),
            None,
        );
        let (id, secret) = split(&a.token).expect("well formed");
        assert_eq!(id, a.record.id);
        assert!(secret_matches(&a.record, secret));
        assert!(!secret_matches(&b.record, secret));
        assert!(
            !a.token.contains(&a.record.secret_sha256),
            "the hash is not the secret"
        );
    }

    #[test]
    fn malformed_tokens_are_not_split() {
        for t in [
            "",
            "hlt_",
            "hlt_abc_def",
            "xyz_0123456789abcdef_s",
            "hlt_0123456789abcdeg_s",
            "hlt_0123456789abcdef_",
        ] {
            assert!(split(t).is_none(), "{t:?}");
        }
    }
}
