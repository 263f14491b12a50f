//! The attempt log of one subscription (time, attempt, result, status, latency, error class)
//! and the replay of its dead letters.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hookline_model::{Outcome, OutcomeResult};
use serde_json::json;

use super::html::{api_error, csrf_field, error_page, esc, notice, page as frame, table, url_part};
use super::session::Session;
use crate::delivery::AttemptsQuery;
use crate::extract::ApiQuery;
use crate::AppState;

/// `?cursor=` of the log's older pages.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Cursor {
    #[serde(default)]
    pub cursor: Option<String>,
}

fn row(o: &Outcome) -> String {
    let class = match o.result {
        OutcomeResult::Delivered => "active",
        OutcomeResult::Retrying => "paused",
        _ => "disabled",
    };
    let error_class = o
        .error_class
        .map(|c| {
            serde_json::to_value(c)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let replayed = if o.replayed_at.is_some() {
        " <span class=\"badge\">replayed</span>"
    } else {
        ""
    };
    format!(
        "<tr><td>{}</td><td>{}</td><td><span class=\"badge {class}\">{}</span>{replayed}</td><td>{}</td>\
         <td>{:.0} ms</td><td>{}</td><td title=\"{}\"><code>{}</code></td></tr>",
        esc(&o.started_at),
        o.attempt,
        o.result.as_str(),
        o.http_status.map_or("—".to_owned(), |s| s.to_string()),
        o.latency_ms,
        esc(&error_class),
        esc(o.error.as_deref().unwrap_or_default()),
        esc(&o.delivery_id.0),
    )
}

fn replay_form(session: &Session, id: &str) -> String {
    format!(
        "<section aria-labelledby=\"h-replay\"><h2 id=\"h-replay\">Dead letters</h2>\
         <p>Deliveries that failed every attempt are kept as dead letters. Replaying sends them \
         again, with their original delivery ids (your receiver can skip ones it already has).</p>\
         <form method=\"post\" action=\"/console/subscriptions/{}/replay\" class=\"filters\">{}\
         <div><label for=\"r-since\">From (optional)</label><input id=\"r-since\" name=\"since\" placeholder=\"2026-11-25T10:00:00Z\"></div>\
         <div><label for=\"r-until\">Until (optional)</label><input id=\"r-until\" name=\"until\" placeholder=\"2026-11-26T00:00:00Z\"></div>\
         <div><button type=\"submit\" name=\"dry_run\" value=\"true\" class=\"secondary\">Count them</button> \
         <button type=\"submit\" name=\"dry_run\" value=\"false\">Replay dead letters</button></div></form></section>",
        url_part(id),
        csrf_field(session)
    )
}

/// The log of `id` with `extra` on top.
async fn render(
    state: &AppState,
    session: &Session,
    id: &str,
    cursor: Option<String>,
    extra: &str,
    status: StatusCode,
) -> Response {
    let caller = or_return!(session.account());
    let q = AttemptsQuery {
        limit: Some(50),
        cursor,
    };
    let list = match crate::delivery::attempts(
        State(state.clone()),
        caller,
        Path(id.to_owned()),
        ApiQuery(q),
    )
    .await
    {
        Ok(l) => l.0,
        Err(e) => return error_page(session, &e),
    };
    let mut body = format!(
        "{extra}<p><a href=\"/console/subscriptions/{}\">Back to the webhook</a></p>",
        url_part(id)
    );
    if list.attempts.is_empty() {
        body.push_str(&notice("info", "No attempts yet. Attempts appear here once events are sent (test webhooks are not logged here)."));
    } else {
        let rows: Vec<String> = list.attempts.iter().map(row).collect();
        body.push_str(&table(
            "Attempts, newest first",
            &[
                "Time",
                "Attempt",
                "Result",
                "HTTP status",
                "Latency",
                "Error class",
                "Delivery",
            ],
            &rows,
        ));
        if let Some(next) = list.next_cursor {
            body.push_str(&format!(
                "<p><a href=\"/console/subscriptions/{}/attempts?cursor={}\">Older attempts</a></p>",
                url_part(id),
                url_part(&next)
            ));
        }
    }
    body.push_str(&replay_form(session, id));
    (status, frame(session, "Attempt log", &body)).into_response()
}

/// `GET /console/subscriptions/{id}/attempts`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(c): Query<Cursor>,
) -> Response {
    render(&state, &session, &id, c.cursor, "", StatusCode::OK).await
}

/// `POST /console/subscriptions/{id}/replay`: the API's replay (or its count, `dry_run`).
pub async fn replay(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (form, caller) = or_return!(session.act(&body));
    let mut req = json!({"dry_run": form.get("dry_run") == Some("true")});
    for k in ["since", "until"] {
        if let Some(v) = form.get(k).filter(|v| !v.is_empty()) {
            req[k] = json!(v);
        }
    }
    let raw = Bytes::from(req.to_string());
    let (extra, status) = match crate::replay::replay(State(state.clone()), caller, Path(id.clone()), raw).await {
        Ok(r) if r.dry_run => (notice("info", &format!("{} dead letters would be replayed.", r.matched)), StatusCode::OK),
        Ok(r) => (
            notice("ok", &format!("Replayed {} dead letters (replay <code>{}</code>); their attempts will appear below.", r.matched, esc(&r.replay_id))),
            StatusCode::OK,
        ),
        Err(e) if e.status == StatusCode::NOT_FOUND => return error_page(&session, &e),
        Err(e) => (api_error(&e), e.status),
    };
    render(&state, &session, &id, None, &extra, status).await
}
