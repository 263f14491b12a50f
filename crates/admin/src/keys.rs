//! `GET /v1/keys`: the public keys receivers verify with.
//!
//! The `copernica` profile signs with the instance's RSA key, the same for every account; its
//! signature covers `X-Copernica-ID` (`account_<id>`), which a receiver compares with its own
//! account. The `standard-webhooks` profile signs with a key per account, derived from the
//! instance's Ed25519 key (`hookline_signing::account_keys`), so what is listed depends on who
//! asks:
//!
//! | request | answer |
//! |---|---|
//! | `?account=ID` (with or without a token) | the RSA keys, then account `ID`'s Ed25519 key |
//! | an account token | the RSA keys, then that account's Ed25519 key |
//! | an operator token | the RSA keys, then the master Ed25519 key (it verifies no webhook) |
//! | no token | the RSA keys |
//!
//! Public keys are public: anyone may ask for any account's key, which tells nothing about
//! whether that account exists (every id derives a key). A token that is sent must be valid.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hookline_model::{AccountId, TokenRole};
use hookline_signing::PublicKeyInfo;
use serde::Deserialize;

use crate::auth::OptionalCaller;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysQuery {
    /// The account whose Standard Webhooks key to list.
    pub account: Option<String>,
}

/// `GET /v1/keys`. The current RSA key and the retired RSA keys still within their overlap,
/// checked per request so an expired key disappears without a restart, then the Ed25519 key as
/// the module documentation says. A bare array, as receivers written against earlier releases
/// expect; they pick keys by `key_id` and `algorithm`.
pub async fn list(
    State(state): State<AppState>,
    OptionalCaller(caller): OptionalCaller,
    ApiQuery(q): ApiQuery<KeysQuery>,
) -> Result<Json<Vec<PublicKeyInfo>>, ApiError> {
    let now = time::OffsetDateTime::now_utc();
    let account = match q.account {
        Some(raw) => {
            Some(AccountId::new(raw).map_err(|e| ApiError::invalid("account", e.to_string()))?)
        }
        None => caller.as_ref().and_then(|c| c.account.clone()),
    };
    let keys = match (account, caller.map(|c| c.role)) {
        (Some(account), _) => state
            .signers
            .published_for_account(account.as_str(), &state.retired, now)
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })?,
        (None, Some(TokenRole::Operator)) => state.signers.published(&state.retired, now),
        (None, _) => state.signers.published_rsa(&state.retired, now),
    };
    Ok(Json(keys))
}
