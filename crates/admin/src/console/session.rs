//! Console sessions: the session in its signed cookie, the CSRF token inside it, and the
//! headers every console answer carries.
//!
//! The cookie holds the session itself (who, until when, the CSRF token, the portal's look),
//! sealed by [`Console`]. It never holds the API token: a token session keeps the token's id
//! and is ended as soon as the token is revoked (checked on every request).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hookline_model::{AccountId, TokenRole};
use serde::{Deserialize, Serialize};

pub use super::settings::{nonce, unix_now, Console, ConsoleArgs, Look, COOKIE};
use crate::auth::AccountCaller;
use crate::AppState;

/// Who a session is for.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Signed in with an account token.
    Account,
    /// Signed in with an operator token: every account, one at a time.
    Operator,
    /// Opened from a portal link: one account, no token.
    Portal,
}

/// What the session cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub kind: Kind,
    /// The id of the token signed in with (not for portal sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// The account the session acts for (an operator's chosen one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    pub expires: i64,
    pub csrf: String,
    pub look: Look,
}

impl SessionData {
    pub fn new(
        console: &Console,
        kind: Kind,
        token_id: Option<String>,
        account: Option<AccountId>,
        look: Look,
    ) -> Self {
        Self {
            kind,
            token_id,
            account,
            expires: unix_now() + console.session_ttl.as_secs() as i64,
            csrf: nonce(),
            look,
        }
    }
}

/// The answer instead of a page: a redirect to the sign-in page or the operator view, or a 403
/// for a form without its CSRF token (boxed: it is the rare path).
pub type Refusal = Box<Response>;

/// A signed-in request's session.
#[derive(Debug, Clone)]
pub struct Session(pub SessionData);

impl Session {
    /// The account this session acts for, as the API handlers take it; an operator who has not
    /// chosen one is sent to the operator view.
    pub fn account(&self) -> Result<AccountCaller, Refusal> {
        self.0
            .account
            .clone()
            .map(|account| AccountCaller { account })
            .ok_or_else(|| Box::new(Redirect::to("/console/operator").into_response()))
    }

    /// A submitted form of this session (its CSRF token checked) and the account it acts for.
    pub fn act(&self, body: &[u8]) -> Result<(FormData, AccountCaller), Refusal> {
        Ok((FormData::checked(self, body)?, self.account()?))
    }

    pub fn is_operator(&self) -> bool {
        self.0.kind == Kind::Operator
    }
}

/// The sealed session a request's cookie carries, if any and still valid.
pub fn from_headers(state: &AppState, headers: &HeaderMap) -> Option<SessionData> {
    let sealed = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)?;
    let s: SessionData = state.console.open("session", sealed)?;
    if s.expires < unix_now() {
        return None;
    }
    if let Some(id) = &s.token_id {
        // A revoked token ends its sessions at once.
        let record = state.tables.token(id)?;
        let same = match s.kind {
            Kind::Account => record.role == TokenRole::Account && record.account == s.account,
            Kind::Operator => record.role == TokenRole::Operator,
            Kind::Portal => false,
        };
        if !same {
            return None;
        }
    } else if s.kind != Kind::Portal {
        return None;
    }
    Some(s)
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    /// Pages without a session go to the sign-in page; forms get 403.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match from_headers(state, &parts.headers) {
            Some(s) => Ok(Session(s)),
            None if parts.method == Method::GET => Err(Redirect::to("/console/sign-in").into_response()),
            None => Err((
                StatusCode::FORBIDDEN,
                super::html::bare_page(
                    "Signed out",
                    "<p>Your session has ended. <a href=\"/console/sign-in\">Sign in again</a>.</p>",
                ),
            )
                .into_response()),
        }
    }
}

/// A submitted form, its CSRF token checked.
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// Parses `body` (`application/x-www-form-urlencoded`) and checks its `csrf` field against
    /// the session's; a mismatch answers 403.
    pub fn checked(session: &Session, body: &[u8]) -> Result<Self, Refusal> {
        let fields: Vec<(String, String)> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let form = Self(fields);
        let sent = form.get("csrf").unwrap_or_default();
        let want = session.0.csrf.as_bytes();
        let same = sent.len() == want.len()
            && sent
                .bytes()
                .zip(want)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Err(Box::new(
                (
                    StatusCode::FORBIDDEN,
                    super::html::bare_page(
                        "Form expired",
                        "<p>This form was not sent from your current session (its CSRF token \
                         does not match). Reload the page and try again.</p>",
                    ),
                )
                    .into_response(),
            ));
        }
        Ok(form)
    }

    /// The first value of `name`, trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }

    /// Every value of `name` (checkbox lists).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Adds the console's security headers to every console answer: a strict CSP (scripts and
/// styles from this origin only, no inline code), `frame-ancestors` as configured, no
/// referrer (a portal link must not leak through it) and no caching of pages.
pub async fn security_headers(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut resp = next.run(req).await;
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {}",
        state.console.frame_ancestors
    );
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// `GET /console/look.css`: the session's accent colour as a CSS variable (a stylesheet, since
/// the CSP allows no inline style).
pub async fn look_css(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let look =
        from_headers(&state, &headers).map_or_else(|| state.console.look.clone(), |s| s.look);
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        format!(":root {{ --accent: {}; }}\n", look.accent),
    )
        .into_response()
}
