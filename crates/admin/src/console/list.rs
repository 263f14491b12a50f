//! The subscriptions of the session's account by database and collection, with status badges
//! and filters; "check now" for all of them.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use hookline_model::{Subscription, SubscriptionStatus};
use serde::Deserialize;

use super::html::{api_error, badge, button_form, esc, notice, page as frame, table, url_part};
use super::session::Session;
use crate::delivery::CheckReport;
use crate::extract::ApiQuery;
use crate::subscriptions::ListQuery;
use crate::AppState;

/// The list's filters, as the form sends them (empty means any).
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub database: String,
    #[serde(default)]
    pub collection: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub cursor: String,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// What a subscription receives, in a few words.
pub fn events_summary(s: &Subscription) -> String {
    s.events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn row(state: &AppState, s: &Subscription) -> String {
    let failing = state
        .tables
        .endpoint_health(&s.id.0)
        .and_then(|h| h.failing_since);
    format!(
        "<tr><td><a href=\"/console/subscriptions/{id}\">{url}</a></td><td>{db}</td><td>{coll}</td>\
         <td>{events}</td><td>{badge}</td></tr>",
        id = url_part(&s.id.0),
        url = esc(&s.url),
        db = s
            .database
            .as_ref()
            .map_or("every database".to_owned(), |d| esc(d.as_str())),
        coll = s.collection.as_ref().map_or("—".to_owned(), |c| esc(c.as_str())),
        events = esc(&events_summary(s)),
        badge = badge(s.status, failing.as_deref()),
    )
}

fn filter_form(f: &Filters) -> String {
    let option = |v: &str, label: &str| {
        let sel = if f.status == v { " selected" } else { "" };
        format!("<option value=\"{v}\"{sel}>{label}</option>")
    };
    let statuses: String = [
        ("", "any"),
        ("unverified", "unverified"),
        ("active", "active"),
        ("paused", "paused"),
        ("disabled", "disabled"),
    ]
    .iter()
    .map(|(v, l)| option(v, l))
    .collect();
    format!(
        "<form method=\"get\" action=\"/console/subscriptions\" class=\"filters\" role=\"search\">\
         <div><label for=\"f-db\">Database</label><input id=\"f-db\" name=\"database\" value=\"{}\" inputmode=\"numeric\"></div>\
         <div><label for=\"f-coll\">Collection</label><input id=\"f-coll\" name=\"collection\" value=\"{}\" inputmode=\"numeric\"></div>\
         <div><label for=\"f-status\">Status</label><select id=\"f-status\" name=\"status\">{statuses}</select></div>\
         <div><button type=\"submit\">Filter</button></div></form>",
        esc(&f.database),
        esc(&f.collection)
    )
}

/// `GET /console/subscriptions`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(f): Query<Filters>,
) -> Response {
    let caller = or_return!(session.account());
    let status =
        some(&f.status).and_then(|s| serde_json::from_value::<SubscriptionStatus>(s.into()).ok());
    let q = ListQuery {
        database: some(&f.database),
        collection: some(&f.collection),
        status,
        limit: Some(100),
        cursor: some(&f.cursor),
    };
    let mut body = String::from(
        "<div class=\"actions\"><a class=\"button\" href=\"/console/subscriptions/new\">New webhook</a> ",
    );
    body.push_str(&button_form(
        &session,
        "/console/check",
        "Check now: test every webhook",
        "secondary",
        &[],
    ));
    body.push_str("</div>");
    body.push_str(&filter_form(&f));
    match crate::subscriptions::list(State(state.clone()), caller, ApiQuery(q)).await {
        Err(e) => body.push_str(&api_error(&e)),
        Ok(list) if list.subscriptions.is_empty() => {
            let filtered =
                some(&f.database).is_some() || some(&f.collection).is_some() || status.is_some();
            body.push_str(&notice(
                "info",
                if filtered {
                    "No webhook matches these filters."
                } else {
                    "No webhooks yet. <a href=\"/console/subscriptions/new\">Create the first one</a>: \
                     pick the events, the URL that receives them, and optionally a condition."
                },
            ));
        }
        Ok(list) => {
            let mut subs = list.0.subscriptions;
            subs.sort_by(|a, b| {
                (
                    a.database.as_ref().map(|d| d.as_str()),
                    a.collection.as_ref().map(|c| c.as_str()),
                    &a.id.0,
                )
                    .cmp(&(
                        b.database.as_ref().map(|d| d.as_str()),
                        b.collection.as_ref().map(|c| c.as_str()),
                        &b.id.0,
                    ))
            });
            let rows: Vec<String> = subs.iter().map(|s| row(&state, s)).collect();
            body.push_str(&table(
                "Webhooks by database and collection",
                &["URL", "Database", "Collection", "Events", "Status"],
                &rows,
            ));
            if let Some(next) = list.0.next_cursor {
                body.push_str(&format!(
                    "<p><a href=\"/console/subscriptions?database={}&amp;collection={}&amp;status={}&amp;cursor={}\">Next page</a></p>",
                    url_part(&f.database), url_part(&f.collection), url_part(&f.status), url_part(&next)
                ));
            }
        }
    }
    frame(&session, "Webhooks", &body).into_response()
}

fn check_rows(report: &CheckReport) -> Vec<String> {
    report
        .subscriptions
        .iter()
        .map(|l| {
            let (result, detail) = match (&l.skipped, &l.result) {
                (Some(why), _) => ("skipped".to_owned(), esc(why)),
                (None, Some(r)) if r.delivered => (
                    "<span class=\"badge active\">delivered</span>".to_owned(),
                    format!("HTTP {} in {:.0} ms", r.http_status.unwrap_or(0), r.latency_ms),
                ),
                (None, Some(r)) => (
                    "<span class=\"badge disabled\">failed</span>".to_owned(),
                    esc(&r.error.clone().unwrap_or_else(|| format!("HTTP {}", r.http_status.unwrap_or(0)))),
                ),
                (None, None) => (String::new(), String::new()),
            };
            format!(
                "<tr><td><a href=\"/console/subscriptions/{}\">{}</a></td><td>{result}</td><td>{detail}</td></tr>",
                url_part(&l.subscription),
                esc(&l.url)
            )
        })
        .collect()
}

/// `POST /console/check`: a test webhook to every active subscription, and the report.
pub async fn check_now(State(state): State<AppState>, session: Session, body: Bytes) -> Response {
    let (_, caller) = or_return!(session.act(&body));
    let body = match crate::delivery::check(State(state), caller).await {
        Err(e) => api_error(&e),
        Ok(report) => format!(
            "{}{}",
            notice(
                "info",
                &format!(
                    "{} checked: {} delivered, {} failed, {} skipped.",
                    report.checked, report.delivered, report.failed, report.skipped
                )
            ),
            table(
                "Check report",
                &["Webhook", "Result", "Detail"],
                &check_rows(&report)
            )
        ),
    };
    frame(
        &session,
        "Check now",
        &format!("{body}<p><a href=\"/console/subscriptions\">Back to the webhooks</a></p>"),
    )
    .into_response()
}
