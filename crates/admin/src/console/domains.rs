//! Validated domains: add one, see the TXT record to publish, validate it. A validated domain
//! verifies every callback URL on it and its subdomains.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use super::html::{
    api_error, button_form, csrf_field, error_page, esc, notice, page as frame, table, url_part,
};
use super::session::Session;
use crate::domains::{DomainQuery, DomainView};
use crate::extract::{ApiJson, ApiQuery};
use crate::AppState;

fn row(session: &Session, d: &DomainView) -> String {
    let path = url_part(&d.domain);
    let status = serde_json::to_value(d.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let class = if status == "validated" {
        "active"
    } else {
        "unverified"
    };
    let validate = if status == "validated" {
        String::new()
    } else {
        button_form(
            session,
            &format!("/console/domains/{path}/validate"),
            "Validate",
            "",
            &[],
        )
    };
    format!(
        "<tr><td>{}</td><td><span class=\"badge {class}\">{}</span></td><td><code>{}</code></td>\
         <td><code class=\"wrap\">{}</code></td><td>{validate} {}</td></tr>",
        esc(&d.domain),
        esc(&status),
        esc(&d.record.name),
        esc(&d.record.value),
        button_form(
            session,
            &format!("/console/domains/{path}/delete"),
            "Remove",
            "secondary",
            &[]
        )
    )
}

async fn render(state: &AppState, session: &Session, extra: &str, status: StatusCode) -> Response {
    let caller = or_return!(session.account());
    let q = DomainQuery {
        limit: Some(100),
        cursor: None,
    };
    let list = match crate::domains::list(State(state.clone()), caller, ApiQuery(q)).await {
        Ok(l) => l.0,
        Err(e) => return error_page(session, &e),
    };
    let mut body = format!(
        "{extra}<p>Validate a domain once with a DNS TXT record, and every webhook URL on it (and \
         its subdomains) is verified without a file.</p>\
         <form method=\"post\" action=\"/console/domains\" class=\"filters\">{}\
         <div><label for=\"d-name\">Domain</label><input id=\"d-name\" name=\"domain\" placeholder=\"hooks.example.com\" required></div>\
         <div><button type=\"submit\">Add domain</button></div></form>",
        csrf_field(session)
    );
    if list.domains.is_empty() {
        body.push_str(&notice("info", "No domains yet."));
    } else {
        let rows: Vec<String> = list.domains.iter().map(|d| row(session, d)).collect();
        body.push_str(&table(
            "Domains: publish each TXT record, then validate",
            &[
                "Domain",
                "Status",
                "TXT record name",
                "TXT record value",
                "",
            ],
            &rows,
        ));
    }
    (status, frame(session, "Domains", &body)).into_response()
}

/// `GET /console/domains`.
pub async fn page(State(state): State<AppState>, session: Session) -> Response {
    render(&state, &session, "", StatusCode::OK).await
}

/// `POST /console/domains`.
pub async fn add(State(state): State<AppState>, session: Session, body: Bytes) -> Response {
    let (form, caller) = or_return!(session.act(&body));
    let body = json!({"domain": form.get("domain").unwrap_or_default()});
    match crate::domains::create(State(state.clone()), caller, ApiJson(body)).await {
        Ok((_, d)) => {
            let msg = format!(
                "Publish a TXT record named <code>{}</code> with the value <code>{}</code>, then press Validate.",
                esc(&d.record.name),
                esc(&d.record.value)
            );
            render(&state, &session, &notice("info", &msg), StatusCode::OK).await
        }
        Err(e) => render(&state, &session, &api_error(&e), e.status).await,
    }
}

/// `POST /console/domains/{domain}/validate`.
pub async fn validate(
    State(state): State<AppState>,
    session: Session,
    Path(domain): Path<String>,
    body: Bytes,
) -> Response {
    let (_, caller) = or_return!(session.act(&body));
    match crate::domains::validate(State(state.clone()), caller, Path(domain)).await {
        Ok(d) => {
            let n = d.activated.as_ref().map_or(0, Vec::len);
            let msg = format!(
                "{} is validated; {n} webhooks on it became active.",
                esc(&d.domain)
            );
            render(&state, &session, &notice("ok", &msg), StatusCode::OK).await
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => error_page(&session, &e),
        Err(e) => render(&state, &session, &api_error(&e), e.status).await,
    }
}

/// `POST /console/domains/{domain}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    Path(domain): Path<String>,
    body: Bytes,
) -> Response {
    let (_, caller) = or_return!(session.act(&body));
    match crate::domains::delete(State(state), caller, Path(domain)).await {
        Ok(_) => Redirect::to("/console/domains").into_response(),
        Err(e) => error_page(&session, &e),
    }
}
