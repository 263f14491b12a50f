//! The web console and embeddable customer portal at `/console/` (`docs/console.md`).
//!
//! Server-rendered HTML with a little JavaScript of its own (the condition builder), every asset
//! built into the binary and served from `/console/assets/`. Each screen calls the same
//! functions the JSON API's handlers are ([`crate::subscriptions`], [`crate::verify`],
//! [`crate::delivery`], ...), with the account of the signed-in session, so validation and
//! account isolation live in one place: another account's id answers 404 here as it does there.
//!
//! - [`settings`]: the console's flags, its look, and the key that seals sessions and links.
//! - [`session`]: the signed session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` over
//!   TLS), sign-in with an account or operator token through [`crate::auth::authenticate`],
//!   CSRF tokens on every form, and the security headers (a strict Content-Security-Policy).
//! - [`html`]: the page frame, escaping, badges and form helpers.
//! - [`signin`]: sign-in and sign-out.
//! - [`list`]: subscriptions by database and collection with status badges; check now.
//! - [`form`]: create and edit, with the condition builder (`console-assets/console.js`).
//! - [`detail`]: one subscription: verification, test webhook, pause/resume/delete.
//! - [`log`]: the attempt log and the replay of dead letters.
//! - [`domains`] and [`keys`]: validated domains; the public keys.
//! - [`portal`]: one-time portal links (`POST /v1/operator/portal-links`) and their opening.
//! - [`operator`]: accounts, the per-endpoint backlog and the tokens, for operator sessions.

/// The `Ok` value of a `Result<T, session::Refusal>`, or returns the refusal's answer (the
/// sign-in redirect, a 403 for a form without its CSRF token, ...).
macro_rules! or_return {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(refusal) => return *refusal,
        }
    };
}

pub mod detail;
pub mod domains;
pub mod form;
pub mod html;
pub mod keys;
pub mod list;
pub mod log;
pub mod operator;
pub mod portal;
pub mod session;
pub mod settings;
pub mod signin;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

pub use settings::{Console, ConsoleArgs};

/// The console's routes (merged into the API's router, same origin).
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/subscriptions") }),
        )
        .route("/console/assets/{file}", get(asset))
        .route("/console/look.css", get(session::look_css))
        .route("/console/sign-in", get(signin::page).post(signin::submit))
        .route("/console/sign-out", post(signin::sign_out))
        .route("/console/subscriptions", get(list::page).post(form::create))
        .route("/console/subscriptions/new", get(form::new_page))
        .route("/console/check", post(list::check_now))
        .route("/console/subscriptions/{id}", get(detail::page))
        .route(
            "/console/subscriptions/{id}/edit",
            get(form::edit_page).post(form::edit),
        )
        .route("/console/subscriptions/{id}/verify", post(detail::verify))
        .route(
            "/console/subscriptions/{id}/verification-file",
            get(detail::download),
        )
        .route("/console/subscriptions/{id}/test", post(detail::test))
        .route(
            "/console/subscriptions/{id}/status",
            post(detail::set_status),
        )
        .route(
            "/console/subscriptions/{id}/delete",
            get(detail::confirm_delete).post(detail::delete),
        )
        .route("/console/subscriptions/{id}/attempts", get(log::page))
        .route("/console/subscriptions/{id}/replay", post(log::replay))
        .route("/console/domains", get(domains::page).post(domains::add))
        .route(
            "/console/domains/{domain}/validate",
            post(domains::validate),
        )
        .route("/console/domains/{domain}/delete", post(domains::delete))
        .route("/console/keys", get(keys::page))
        .route("/console/operator", get(operator::page))
        .route("/console/operator/act", post(operator::act))
        .route("/console/portal/open", get(portal::open))
        .layer(axum::middleware::from_fn_with_state(
            state,
            session::security_headers,
        ))
}

/// The embedded assets: (name, content type, bytes).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../../console-assets/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console-assets/console.js"),
    ),
];

/// `GET /console/assets/{file}`: an embedded asset (nothing is read from disk).
async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
