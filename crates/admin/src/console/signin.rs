//! Sign-in with an account or operator token, and sign-out.
//!
//! The token is checked by [`crate::auth::authenticate`], the API's own check (with its limit
//! on failed attempts per address). The sign-in form itself carries a CSRF token too, kept in a
//! short-lived cookie of its own (no session exists yet), so another site cannot sign a
//! browser in to an account of its choosing.

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hookline_model::TokenRole;

use super::html::{bare_page, esc, notice};
use super::session::{from_headers, nonce, FormData, Kind, Session, SessionData};
use crate::AppState;

const SIGNIN_COOKIE: &str = "hookline_signin";

fn form(csrf: &str, error: Option<&str>) -> String {
    let error = error.map_or_else(String::new, |e| notice("error", &esc(e)));
    format!(
        "{error}<p>Sign in with an API token: an account token shows that account's webhooks, an \
         operator token every account's. The token is checked once and never stored in your \
         browser.</p>\
         <form method=\"post\" action=\"/console/sign-in\" class=\"stack\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"token\">API token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" \
         required placeholder=\"hlt_…\" aria-describedby=\"token-help\">\
         <p id=\"token-help\" class=\"help\">Tokens look like <code>hlt_&lt;id&gt;_&lt;secret&gt;</code>; \
         <code>hookline tokens create</code> makes one.</p>\
         <button type=\"submit\">Sign in</button></form>",
        esc(csrf)
    )
}

fn with_signin_cookie(csrf: &str, status: StatusCode, body: String) -> Response {
    let cookie = format!(
        "{SIGNIN_COOKIE}={csrf}; Path=/console/sign-in; Max-Age=1800; HttpOnly; SameSite=Strict"
    );
    let mut resp = (status, bare_page("Sign in", &body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /console/sign-in`.
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if from_headers(&state, &headers).is_some() {
        return Redirect::to("/console/subscriptions").into_response();
    }
    let csrf = nonce();
    with_signin_cookie(&csrf, StatusCode::OK, form(&csrf, None))
}

/// The sign-in form's CSRF token, from its cookie.
fn signin_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SIGNIN_COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// `POST /console/sign-in`: checks the token and starts a session.
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |n: &str| {
        fields
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let fresh = nonce();
    match signin_cookie(&headers) {
        Some(c) if !c.is_empty() && c == field("csrf") => {}
        _ => {
            return with_signin_cookie(
                &fresh,
                StatusCode::FORBIDDEN,
                form(
                    &fresh,
                    Some("This sign-in form has expired; please try again."),
                ),
            )
        }
    }
    let caller = match crate::auth::authenticate(&state, Some(peer.ip()), &field("token")) {
        Ok(c) => c,
        Err(e) => return with_signin_cookie(&fresh, e.status, form(&fresh, Some(&e.message))),
    };
    tracing::info!(token = %caller.token_id, account = ?caller.account, "console sign-in");
    let kind = match caller.role {
        TokenRole::Account => Kind::Account,
        TokenRole::Operator => Kind::Operator,
    };
    let session = SessionData::new(
        &state.console,
        kind,
        Some(caller.token_id),
        caller.account,
        state.console.look.clone(),
    );
    let to = if kind == Kind::Operator {
        "/console/operator"
    } else {
        "/console/subscriptions"
    };
    let mut resp = Redirect::to(to).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        state.console.cookie(&headers, Some(&session)),
    );
    resp
}

/// `POST /console/sign-out`: ends the session (the cookie is cleared).
pub async fn sign_out(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    or_return!(FormData::checked(&session, &body));
    let mut resp = Redirect::to("/console/sign-in").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, state.console.cookie(&headers, None));
    resp
}
