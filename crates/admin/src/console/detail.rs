//! One subscription: its settings, verification (the file to download, where to put it, the
//! verify button, and exactly what was fetched when it fails), the test webhook with a body of
//! your own, and pause, resume and delete (with confirmation).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hookline_model::{Subscription, SubscriptionStatus};
use serde_json::{json, Value};

use super::html::{
    api_error, badge, button_form, csrf_field, error_page, esc, notice, page as frame, url_part,
};
use super::list::events_summary;
use super::session::Session;
use crate::delivery::TestReport;
use crate::error::ApiError;
use crate::AppState;

/// `?created=1` and the like: what the previous step did.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Done {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub saved: Option<String>,
    #[serde(default)]
    pub verified: Option<String>,
}

fn verification_html(session: &Session, sub: &Subscription) -> String {
    let v = &sub.verification;
    let id = url_part(&sub.id.0);
    if let Some(by) = v.get("verified_by").and_then(Value::as_str) {
        let at = v
            .get("verified_at")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return format!(
            "<section aria-labelledby=\"h-verify\"><h2 id=\"h-verify\">Verification</h2>\
             <p>Verified {} by <code>{}</code>.</p></section>",
            esc(at),
            esc(by)
        );
    }
    let file = v.get("file").and_then(Value::as_str).unwrap_or_default();
    let locations: String = v
        .get("locations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|l| format!("<li><code>{}</code></li>", esc(l)))
        .collect();
    format!(
        "<section aria-labelledby=\"h-verify\" class=\"verify\"><h2 id=\"h-verify\">Verify your URL</h2>\
         <p>Nothing is sent to this webhook until you prove the URL is yours:</p>\
         <ol><li><a class=\"button secondary\" href=\"/console/subscriptions/{id}/verification-file\" download>Download {}</a></li>\
         <li>Put the file on your web server so that it is served at one of:<ul>{locations}</ul></li>\
         <li>{}</li></ol>\
         <p class=\"help\">A domain validated on the <a href=\"/console/domains\">Domains</a> page verifies every URL on it.</p></section>",
        esc(file),
        button_form(session, &format!("/console/subscriptions/{id}/verify"), "Verify now", "", &[])
    )
}

fn test_html(session: &Session, sub: &Subscription, result: &str) -> String {
    let id = url_part(&sub.id.0);
    let options: String = sub
        .events
        .iter()
        .map(|e| format!("<option value=\"{0}\">{0}</option>", e.as_str()))
        .collect();
    format!(
        "<section aria-labelledby=\"h-test\"><h2 id=\"h-test\">Test webhook</h2>{result}\
         <form method=\"post\" action=\"/console/subscriptions/{id}/test\" class=\"stack\">{}\
         <div class=\"field\"><label for=\"t-event\">Event</label><select id=\"t-event\" name=\"event\">{options}</select></div>\
         <label for=\"t-body\">Body (optional)</label>\
         <textarea id=\"t-body\" name=\"body\" rows=\"4\" spellcheck=\"false\" aria-describedby=\"t-help\"></textarea>\
         <p class=\"help\" id=\"t-help\">A JSON object is encoded in the webhook's format; other text is sent as is; \
         empty sends a sample event. The request is signed like every webhook.</p>\
         <button type=\"submit\">Send test webhook</button></form></section>",
        csrf_field(session)
    )
}

fn actions_html(session: &Session, sub: &Subscription) -> String {
    let id = url_part(&sub.id.0);
    let path = format!("/console/subscriptions/{id}/status");
    let toggle = match sub.status {
        SubscriptionStatus::Active => {
            button_form(session, &path, "Pause", "secondary", &[("to", "pause")])
        }
        SubscriptionStatus::Paused | SubscriptionStatus::Disabled => {
            button_form(session, &path, "Resume", "secondary", &[("to", "resume")])
        }
        SubscriptionStatus::Unverified => String::new(),
    };
    format!(
        "<div class=\"actions\"><a class=\"button secondary\" href=\"/console/subscriptions/{id}/edit\">Edit</a> \
         <a class=\"button secondary\" href=\"/console/subscriptions/{id}/attempts\">Attempt log</a> {toggle} \
         <a class=\"button danger\" href=\"/console/subscriptions/{id}/delete\">Delete…</a></div>"
    )
}

/// The page of `sub`, with `extra` (a result or error) under the heading.
fn render(
    state: &AppState,
    session: &Session,
    sub: &Subscription,
    extra: &str,
    test_result: &str,
) -> String {
    let failing = state
        .tables
        .endpoint_health(&sub.id.0)
        .and_then(|h| h.failing_since);
    let condition = if sub.conditions.is_null() {
        "none (every event)".to_owned()
    } else {
        format!("<code>{}</code>", esc(&sub.conditions.to_string()))
    };
    format!(
        "{extra}<p class=\"url\"><code>{}</code> {}</p>{}\
         <dl class=\"facts\"><dt>Database</dt><dd>{}</dd><dt>Collection</dt><dd>{}</dd>\
         <dt>Events</dt><dd>{}</dd><dt>Condition</dt><dd>{condition}</dd><dt>Id</dt><dd><code>{}</code></dd></dl>\
         {}{}",
        esc(&sub.url),
        badge(sub.status, failing.as_deref()),
        actions_html(session, sub),
        sub.database
            .as_ref()
            .map_or("every database of the account".to_owned(), |d| esc(d.as_str())),
        sub.collection.as_ref().map_or("—".to_owned(), |c| esc(c.as_str())),
        esc(&events_summary(sub)),
        esc(&sub.id.0),
        verification_html(session, sub),
        if sub.status == SubscriptionStatus::Unverified { String::new() } else { test_html(session, sub, test_result) },
    )
}

fn show(
    state: &AppState,
    session: &Session,
    id: &str,
    status: StatusCode,
    extra: &str,
    test_result: &str,
) -> Response {
    let caller = or_return!(session.account());
    match crate::subscriptions::owned(state, &caller.account, id) {
        Ok(sub) => (
            status,
            frame(
                session,
                "Webhook",
                &render(state, session, &sub, extra, test_result),
            ),
        )
            .into_response(),
        Err(e) => error_page(session, &e),
    }
}

/// `GET /console/subscriptions/{id}`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let extra = if done.created.is_some() {
        notice("ok", "Webhook created.")
    } else if done.saved.is_some() {
        notice("ok", "Saved.")
    } else if done.verified.is_some() {
        notice("ok", "Verified: the webhook is active.")
    } else {
        String::new()
    };
    show(&state, &session, &id, StatusCode::OK, &extra, "")
}

/// `GET /console/subscriptions/{id}/verification-file`: the API's download.
pub async fn download(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let caller = or_return!(session.account());
    match crate::verify::download(State(state), caller, Path(id)).await {
        Ok(r) => r,
        Err(e) => error_page(&session, &e),
    }
}

/// A failed verification: the message (what was fetched and found) and where the file belongs.
fn verify_failure(e: &ApiError) -> String {
    let mut html = format!("<p><strong>Not verified.</strong> {}</p>", esc(&e.message));
    if let Some(d) = &e.details {
        let tried: String = d["locations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|l| format!("<li><code>{}</code></li>", esc(l)))
            .collect();
        html.push_str(&format!(
            "<p>Looked for <code>{}</code> at:</p><ul>{tried}</ul>",
            esc(d["file"].as_str().unwrap_or_default())
        ));
    }
    notice("error", &html)
}

/// `POST /console/subscriptions/{id}/verify`.
pub async fn verify(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (_, caller) = or_return!(session.act(&body));
    match crate::verify::verify(
        State(state.clone()),
        caller,
        Path(id.clone()),
        HeaderMap::new(),
    )
    .await
    {
        Ok(_) => Redirect::to(&format!(
            "/console/subscriptions/{}?verified=1",
            url_part(&id)
        ))
        .into_response(),
        Err(e) if e.status == StatusCode::NOT_FOUND => error_page(&session, &e),
        Err(e) => show(&state, &session, &id, e.status, &verify_failure(&e), ""),
    }
}

/// The test's answer: status, latency and the first bytes of the endpoint's answer.
fn test_report(r: &TestReport) -> String {
    let status = r
        .http_status
        .map_or("no answer".to_owned(), |s| format!("HTTP {s}"));
    let verdict = if r.delivered {
        ("ok", "Delivered")
    } else {
        ("error", "Not delivered")
    };
    let excerpt = r.response_excerpt.as_deref().map_or_else(String::new, |x| {
        format!(
            "<p>First bytes of the answer:</p><pre class=\"excerpt\">{}</pre>",
            esc(x)
        )
    });
    let error = r
        .error
        .as_deref()
        .map_or_else(String::new, |e| format!("<p>{}</p>", esc(e)));
    notice(
        verdict.0,
        &format!(
            "<p><strong>{}</strong>: <span class=\"test-status\">{status}</span> in {:.0} ms \
             (delivery <code>{}</code>).</p>{error}{excerpt}",
            verdict.1,
            r.latency_ms,
            esc(&r.delivery_id)
        ),
    )
}

/// `POST /console/subscriptions/{id}/test`.
pub async fn test(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (form, caller) = or_return!(session.act(&body));
    let mut req = json!({});
    if let Some(event) = form.get("event").filter(|e| !e.is_empty()) {
        req["event"] = json!(event);
    }
    if let Some(text) = form.get("body").filter(|b| !b.is_empty()) {
        req["body"] = match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => v,
            _ => json!(text),
        };
    }
    let raw = Bytes::from(req.to_string());
    match crate::delivery::test(State(state.clone()), caller, Path(id.clone()), raw).await {
        Ok(report) => show(
            &state,
            &session,
            &id,
            StatusCode::OK,
            "",
            &test_report(&report),
        ),
        Err(e) if e.status == StatusCode::NOT_FOUND => error_page(&session, &e),
        Err(e) => show(&state, &session, &id, e.status, "", &api_error(&e)),
    }
}

/// `POST /console/subscriptions/{id}/status` with `to` = `pause` or `resume`.
pub async fn set_status(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (form, caller) = or_return!(session.act(&body));
    let (s, p, h) = (State(state.clone()), Path(id.clone()), HeaderMap::new());
    let result = match form.get("to") {
        Some("pause") => crate::subscriptions::pause(s, caller, p, h).await,
        _ => crate::subscriptions::resume(s, caller, p, h).await,
    };
    match result {
        Ok(_) => Redirect::to(&format!("/console/subscriptions/{}", url_part(&id))).into_response(),
        Err(e) if e.status == StatusCode::NOT_FOUND => error_page(&session, &e),
        Err(e) => show(&state, &session, &id, e.status, &api_error(&e), ""),
    }
}

/// `GET /console/subscriptions/{id}/delete`: asks first.
pub async fn confirm_delete(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let caller = or_return!(session.account());
    match crate::subscriptions::owned(&state, &caller.account, &id) {
        Ok(sub) => {
            let path = format!("/console/subscriptions/{}/delete", url_part(&id));
            let body = format!(
                "<p>Delete the webhook to <code>{}</code>? Events are no longer sent to it, and \
                 this cannot be undone.</p><div class=\"actions\">{} \
                 <a class=\"button secondary\" href=\"/console/subscriptions/{}\">Keep it</a></div>",
                esc(&sub.url),
                button_form(&session, &path, "Delete webhook", "danger", &[]),
                url_part(&id)
            );
            frame(&session, "Delete webhook?", &body).into_response()
        }
        Err(e) => error_page(&session, &e),
    }
}

/// `POST /console/subscriptions/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (_, caller) = or_return!(session.act(&body));
    match crate::subscriptions::delete(State(state), caller, Path(id), HeaderMap::new()).await {
        Ok(_) => Redirect::to("/console/subscriptions").into_response(),
        Err(e) => error_page(&session, &e),
    }
}
