//! The embeddable customer portal: an operator (or the platform's backend) asks for a
//! short-lived, one-time link for one account (`POST /v1/operator/portal-links`); opening it
//! starts a portal session of that account, with the link's look (product name, logo, accent
//! colour), and no token of its own. The link is the only place a credential is ever in a URL:
//! it opens once (per instance, see `docs/console.md`) and expires after
//! `HOOKLINE_PORTAL_LINK_TTL`.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hookline_model::AccountId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::html::{bare_page, esc};
use super::session::{nonce, unix_now, Kind, Look, SessionData};
use crate::auth::OperatorCaller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::subscriptions::parse_body;
use crate::AppState;

/// The body of `POST /v1/operator/portal-links`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPortalLink {
    pub account: String,
    pub product_name: Option<String>,
    pub logo_url: Option<String>,
    pub accent_color: Option<String>,
}

/// The answer: the link to open (or show in an iframe) once.
#[derive(Debug, Serialize)]
pub struct PortalLink {
    pub url: String,
    pub account: String,
    pub expires_at: String,
}

/// What a link carries, sealed.
#[derive(Debug, Serialize, Deserialize)]
struct LinkData {
    account: AccountId,
    look: Look,
    expires: i64,
    nonce: String,
}

/// The base URL links start with: the configured public URL, else the request's host.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.console.public_url {
        return u.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{proto}://{host}")
}

/// `POST /v1/operator/portal-links`.
pub async fn create_link(
    State(state): State<AppState>,
    _op: OperatorCaller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<PortalLink>), ApiError> {
    let input: NewPortalLink = parse_body(body)?;
    let account =
        AccountId::new(&input.account).map_err(|e| ApiError::invalid("account", e.to_string()))?;
    let d = &state.console.look;
    let look = Look::checked(
        input.product_name.unwrap_or_else(|| d.name.clone()),
        input.logo_url.or_else(|| d.logo.clone()),
        input.accent_color.unwrap_or_else(|| d.accent.clone()),
    )
    .map_err(|(field, message)| ApiError::invalid(field, message))?;
    let expires = unix_now() + state.console.link_ttl.as_secs() as i64;
    let link = LinkData {
        account: account.clone(),
        look,
        expires,
        nonce: nonce(),
    };
    let sealed = state.console.seal("portal-link", &link);
    let expires_at = time::OffsetDateTime::from_unix_timestamp(expires)
        .map(hookline_model::timefmt::rfc3339)
        .unwrap_or_default();
    tracing::info!(account = %account, "portal link created");
    Ok((
        StatusCode::CREATED,
        Json(PortalLink {
            url: format!(
                "{}/console/portal/open?link={sealed}",
                base_url(&state, &headers)
            ),
            account: account.to_string(),
            expires_at,
        }),
    ))
}

/// `?link=` of the opening request.
#[derive(Debug, Deserialize)]
pub struct Opening {
    #[serde(default)]
    pub link: String,
}

/// `GET /console/portal/open?link=...`: starts the portal session, once. The answer is a page
/// that moves on to the webhooks from this origin (`console.js`, or its link without script):
/// a `SameSite=Strict` cookie set in answer to a navigation from another site is only sent
/// with requests this site starts.
pub async fn open(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Opening>,
) -> Response {
    let gone = |why: &str| {
        (
            StatusCode::GONE,
            bare_page(
                "This link cannot be opened",
                &format!("<p>{}</p><p>Portal links open once and expire after a few minutes; ask for a new one.</p>", esc(why)),
            ),
        )
            .into_response()
    };
    let Some(link) = state.console.open::<LinkData>("portal-link", &q.link) else {
        return gone("The link is not valid.");
    };
    if link.expires < unix_now() {
        return gone("The link has expired.");
    }
    if !state.console.first_opening(&link.nonce, link.expires) {
        return gone("The link was already used.");
    }
    let session = SessionData::new(
        &state.console,
        Kind::Portal,
        None,
        Some(link.account),
        link.look,
    );
    let mut resp = (
        StatusCode::OK,
        bare_page(
            &session.look.name.clone(),
            "<p><a id=\"portal-continue\" href=\"/console/subscriptions\">Continue to your webhooks</a></p>",
        ),
    )
        .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        state.console.cookie(&headers, Some(&session)),
    );
    resp
}
