//! The operator's view: the accounts that have webhooks, the per-endpoint backlog (failing
//! endpoints first, from the data of `GET /v1/operator/endpoints`), choosing an account to act
//! for, and portal links.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hookline_model::AccountId;
use serde_json::json;

use super::html::{api_error, badge, csrf_field, esc, notice, page as frame, table};
use super::session::{FormData, Session, SessionData};
use crate::auth::OperatorCaller;
use crate::extract::{ApiJson, ApiQuery};
use crate::operator::{EndpointView, EndpointsQuery};
use crate::AppState;

/// `?failing=1` shows failing endpoints only.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub failing: Option<String>,
}

fn accounts_html(state: &AppState, session: &Session) -> String {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for s in state.tables.subscriptions_where(|_| true) {
        let e = counts.entry(s.account.to_string()).or_default();
        e.0 += 1;
        if s.status == hookline_model::SubscriptionStatus::Active {
            e.1 += 1;
        }
    }
    let rows: Vec<String> = counts
        .iter()
        .map(|(a, (n, active))| {
            format!(
                "<tr><td>{}</td><td>{n}</td><td>{active}</td><td><form method=\"post\" action=\"/console/operator/act\" class=\"inline\">{}\
                 <input type=\"hidden\" name=\"account\" value=\"{}\"><button type=\"submit\" class=\"secondary\">Open</button></form> \
                 <form method=\"post\" action=\"/console/operator/act\" class=\"inline\">{}\
                 <input type=\"hidden\" name=\"account\" value=\"{}\"><input type=\"hidden\" name=\"portal\" value=\"1\">\
                 <button type=\"submit\" class=\"secondary\">Portal link</button></form></td></tr>",
                esc(a),
                csrf_field(session),
                esc(a),
                csrf_field(session),
                esc(a)
            )
        })
        .collect();
    let list = if rows.is_empty() {
        notice("info", "No account has webhooks yet.")
    } else {
        table(
            "Accounts with webhooks",
            &["Account", "Webhooks", "Active", ""],
            &rows,
        )
    };
    format!(
        "<section aria-labelledby=\"h-accounts\"><h2 id=\"h-accounts\">Accounts</h2>{list}\
         <form method=\"post\" action=\"/console/operator/act\" class=\"filters\">{}\
         <div><label for=\"o-account\">Open any account</label><input id=\"o-account\" name=\"account\" required></div>\
         <div><button type=\"submit\">Open</button></div></form></section>",
        csrf_field(session)
    )
}

/// The live tokens (never their secrets): id, role, account, label, created.
async fn tokens_html(state: &AppState) -> String {
    let tokens = match hookline_tokens::read_tokens(&state.settings, &state.topics).await {
        Ok(t) => t,
        Err(e) => {
            return notice(
                "error",
                &format!("The tokens could not be read: {}", esc(&e.to_string())),
            )
        }
    };
    let rows: Vec<String> = tokens
        .iter()
        .map(|t| {
            let role = serde_json::to_value(t.role).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            format!(
                "<tr><td><code>hlt_{}_…</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.id),
                esc(&role),
                t.account.as_ref().map_or("—".to_owned(), |a| esc(a.as_str())),
                esc(t.label.as_deref().unwrap_or_default()),
                esc(&t.created)
            )
        })
        .collect();
    format!(
        "<section aria-labelledby=\"h-tokens\"><h2 id=\"h-tokens\">Tokens</h2>\
         <p class=\"help\">Create and revoke them with <code>hookline tokens create</code> and \
         <code>hookline tokens revoke</code>; a revoked token's console sessions end at once.</p>{}</section>",
        table("API tokens", &["Token", "Role", "Account", "Label", "Created"], &rows)
    )
}

fn endpoint_row(e: &EndpointView) -> String {
    let last = e.last_attempt.as_ref().map_or("—".to_owned(), |l| {
        format!(
            "{} {} {}",
            esc(&l.at),
            l.result.as_str(),
            l.http_status.map_or(String::new(), |s| s.to_string())
        )
    });
    let at_least = if e.backlog.at_least { "at least " } else { "" };
    format!(
        "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>\
         <td>{at_least}{} waiting, {} parked</td><td>{}/{}</td><td>{last}</td></tr>",
        esc(&e.account),
        esc(&e.url),
        badge(e.status, e.failing_since.as_deref()),
        esc(&e.circuit),
        e.backlog.waiting,
        e.backlog.parked,
        e.recent_failures,
        e.recent_attempts
    )
}

async fn render(state: &AppState, session: &Session, failing: bool, extra: &str) -> Response {
    if !session.is_operator() {
        return Redirect::to("/console/subscriptions").into_response();
    }
    let q = EndpointsQuery {
        account: None,
        status: None,
        failing,
        limit: Some(200),
        cursor: None,
    };
    let endpoints =
        match crate::operator::endpoints(State(state.clone()), OperatorCaller, ApiQuery(q)).await {
            Ok(l) => {
                let rows: Vec<String> = l.0.endpoints.iter().map(endpoint_row).collect();
                if rows.is_empty() {
                    notice("info", "No endpoints.")
                } else {
                    table(
                        "Endpoints, failing first",
                        &[
                            "Account",
                            "URL",
                            "Status",
                            "Circuit",
                            "Backlog",
                            "Failed / kept attempts",
                            "Last attempt",
                        ],
                        &rows,
                    )
                }
            }
            Err(e) => api_error(&e),
        };
    let toggle = if failing {
        "<a href=\"/console/operator\">Show all endpoints</a>"
    } else {
        "<a href=\"/console/operator?failing=1\">Show failing endpoints only</a>"
    };
    let body = format!(
        "{extra}{}<section aria-labelledby=\"h-backlog\"><h2 id=\"h-backlog\">Per-endpoint backlog</h2><p>{toggle}</p>{endpoints}</section>{}",
        accounts_html(state, session),
        tokens_html(state).await
    );
    frame(session, "Operator", &body).into_response()
}

/// `GET /console/operator`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(f): Query<Filter>,
) -> Response {
    render(&state, &session, f.failing.is_some(), "").await
}

/// `POST /console/operator/act`: act for `account` (the session now shows its webhooks), or
/// with `portal=1`, make a portal link for it.
pub async fn act(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = or_return!(FormData::checked(&session, &body));
    if !session.is_operator() {
        return (StatusCode::FORBIDDEN, "operators only").into_response();
    }
    let raw = form.get("account").unwrap_or_default().to_owned();
    let account = match AccountId::new(&raw) {
        Ok(a) => a,
        Err(e) => {
            let msg = notice(
                "error",
                &format!("Account {}: {}", esc(&raw), esc(&e.to_string())),
            );
            return render(&state, &session, false, &msg).await;
        }
    };
    if form.get("portal").is_some() {
        let body = json!({"account": account.to_string()});
        let msg = match super::portal::create_link(State(state.clone()), OperatorCaller, headers, ApiJson(body)).await {
            Ok((_, link)) => notice(
                "ok",
                &format!(
                    "A portal link for account {} (opens once, until {}):<br><code class=\"wrap\" id=\"portal-link\">{}</code>",
                    esc(&link.account),
                    esc(&link.expires_at),
                    esc(&link.url)
                ),
            ),
            Err(e) => api_error(&e),
        };
        return render(&state, &session, false, &msg).await;
    }
    let mut data: SessionData = session.0.clone();
    data.account = Some(account);
    let mut resp = Redirect::to("/console/subscriptions").into_response();
    resp.headers_mut().insert(
        axum::http::header::SET_COOKIE,
        state.console.cookie(&headers, Some(&data)),
    );
    resp
}
