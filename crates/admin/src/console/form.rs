//! Creating and editing a subscription: every setting of the API, the condition builder
//! (`console-assets/console.js`, which writes the condition's JSON into the `conditions` field
//! that works without script too), and the API's validation errors next to their field.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hookline_model::{EventKind, Subscription, Trigger};
use serde::Serialize;
use serde_json::{json, Value};

use super::html::{csrf_field, error_page, esc, notice, page as frame, url_part};
use super::session::{FormData, Session};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::AppState;

const EVENTS: [EventKind; 8] = [
    EventKind::Click,
    EventKind::Open,
    EventKind::Bounce,
    EventKind::Failure,
    EventKind::Delivery,
    EventKind::Create,
    EventKind::Update,
    EventKind::Delete,
];
const ACTIONS: [&str; 3] = ["create", "update", "delete"];

/// The form's values: from a stored subscription or from what was submitted.
#[derive(Debug, Default)]
struct Values {
    database: String,
    collection: String,
    events: Vec<String>,
    actions: Vec<String>,
    triggers: Vec<String>,
    url: String,
    format: String,
    max_in_flight: String,
    per_second: String,
    ordered: bool,
    signature: String,
    conditions: String,
    etag: String,
}

fn name_of<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Values {
    fn blank() -> Self {
        Self {
            format: "json".into(),
            max_in_flight: "8".into(),
            per_second: "50".into(),
            signature: "copernica".into(),
            ..Self::default()
        }
    }

    fn of(s: &Subscription) -> Self {
        Self {
            database: s
                .database
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or_default(),
            collection: s
                .collection
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            events: s.events.iter().map(|e| e.as_str().to_owned()).collect(),
            actions: s.actions.iter().flatten().map(name_of).collect(),
            triggers: s.triggers.iter().flatten().map(name_of).collect(),
            url: s.url.clone(),
            format: name_of(&s.format),
            max_in_flight: s.limits.max_in_flight.to_string(),
            per_second: s.limits.per_second.to_string(),
            ordered: s.ordered,
            signature: name_of(&s.signature),
            conditions: if s.conditions.is_null() {
                String::new()
            } else {
                serde_json::to_string_pretty(&s.conditions).unwrap_or_default()
            },
            etag: crate::concurrency::etag(s),
        }
    }

    fn from_form(f: &FormData) -> Self {
        let get = |n: &str| f.get(n).unwrap_or_default().to_owned();
        Self {
            database: get("database"),
            collection: get("collection"),
            events: f.all("events"),
            actions: f.all("actions"),
            triggers: f.all("triggers"),
            url: get("url"),
            format: get("format"),
            max_in_flight: get("max_in_flight"),
            per_second: get("per_second"),
            ordered: f.get("ordered") == Some("on"),
            signature: get("signature"),
            conditions: get("conditions"),
            etag: get("etag"),
        }
    }

    /// The API's request body (numbers that are not numbers are passed on as text, so the
    /// API's own message names them).
    fn body(&self, editing: bool) -> Result<Value, ApiError> {
        let number = |s: &str| match (s.parse::<u64>(), s.parse::<f64>()) {
            (Ok(u), _) => json!(u),
            (_, Ok(f)) if f.is_finite() => json!(f),
            _ => json!(s),
        };
        let list = |v: &Vec<String>| if v.is_empty() { Value::Null } else { json!(v) };
        let mut body = json!({
            "database": if self.database.is_empty() { Value::Null } else { json!(self.database) },
            "collection": if self.collection.is_empty() { Value::Null } else { json!(self.collection) },
            "events": self.events,
            "actions": list(&self.actions),
            "triggers": list(&self.triggers),
            "url": self.url,
            "format": self.format,
            "limits": {"max_in_flight": number(&self.max_in_flight), "per_second": number(&self.per_second)},
            "ordered": self.ordered,
            "signature": self.signature,
        });
        if self.conditions.trim().is_empty() {
            if editing {
                body["conditions_text"] = json!("");
            }
        } else {
            let c: Value = serde_json::from_str(&self.conditions).map_err(|e| {
                ApiError::invalid(
                    "conditions",
                    format!("the condition is not valid JSON: {e}"),
                )
            })?;
            body["conditions"] = c;
        }
        Ok(body)
    }
}

/// The field an API error is about, as the form names it (`limits.per_second` → `per_second`).
fn error_field(e: &ApiError) -> String {
    let f = e.field.as_deref().unwrap_or_default();
    let first = f.split(['.', '[']).next().unwrap_or_default();
    match first {
        "limits" => f.split('.').nth(1).unwrap_or("max_in_flight").to_owned(),
        "conditions_text" => "conditions".to_owned(),
        other => other.to_owned(),
    }
}

fn checkboxes(
    name: &str,
    legend: &str,
    help: &str,
    options: &[String],
    chosen: &[String],
    err: &str,
) -> String {
    let boxes: String = options
        .iter()
        .map(|o| {
            let checked = if chosen.contains(o) { " checked" } else { "" };
            format!(
                "<label class=\"check\"><input type=\"checkbox\" name=\"{name}\" value=\"{o}\"{checked}> {o}</label>"
            )
        })
        .collect();
    format!(
        "<fieldset aria-describedby=\"help-{name}\"><legend>{legend}</legend>{boxes}\
         <p class=\"help\" id=\"help-{name}\">{help}</p>{err}</fieldset>"
    )
}

fn select(name: &str, label: &str, options: &[&str], chosen: &str) -> String {
    let opts: String = options
        .iter()
        .map(|o| {
            let sel = if *o == chosen { " selected" } else { "" };
            format!("<option value=\"{o}\"{sel}>{o}</option>")
        })
        .collect();
    format!("<div class=\"field\"><label for=\"f-{name}\">{label}</label><select id=\"f-{name}\" name=\"{name}\">{opts}</select></div>")
}

fn input(name: &str, label: &str, value: &str, help: &str, err: &str, extra: &str) -> String {
    let invalid = if err.is_empty() {
        ""
    } else {
        " aria-invalid=\"true\""
    };
    format!(
        "<div class=\"field\"><label for=\"f-{name}\">{label}</label>\
         <input id=\"f-{name}\" name=\"{name}\" value=\"{}\" aria-describedby=\"help-{name} err-{name}\"{invalid} {extra}>\
         <p class=\"help\" id=\"help-{name}\">{help}</p>{err}</div>",
        esc(value)
    )
}

/// The form; `error` is shown at its field (and on top).
fn form_html(session: &Session, action: &str, v: &Values, error: Option<&ApiError>) -> String {
    let field = error.map(error_field).unwrap_or_default();
    let err = |name: &str| match error {
        Some(e) if field == name => format!(
            "<p class=\"error\" id=\"err-{name}\">{}</p>",
            esc(&e.message)
        ),
        _ => String::new(),
    };
    let top = match error {
        Some(e)
            if field.is_empty()
                || ![
                    "database",
                    "collection",
                    "events",
                    "actions",
                    "triggers",
                    "url",
                    "format",
                    "max_in_flight",
                    "per_second",
                    "ordered",
                    "signature",
                    "conditions",
                ]
                .contains(&field.as_str()) =>
        {
            notice("error", &esc(&e.message))
        }
        Some(_) => notice(
            "error",
            "The webhook was not saved: see the message at the field below.",
        ),
        None => String::new(),
    };
    let events: Vec<String> = EVENTS.iter().map(|e| e.as_str().to_owned()).collect();
    let actions: Vec<String> = ACTIONS.iter().map(|s| s.to_string()).collect();
    let triggers: Vec<String> = Trigger::ALL.iter().map(name_of).collect();
    let cond_invalid = if field == "conditions" {
        " aria-invalid=\"true\""
    } else {
        ""
    };
    format!(
        "{top}<form method=\"post\" action=\"{}\" class=\"stack\" novalidate>{}\
         <input type=\"hidden\" name=\"etag\" value=\"{}\">\
         {}{}{}{}{}{}{}\
         <fieldset><legend>Payload</legend>{}{}</fieldset>\
         <fieldset><legend>Limits</legend>{}{}\
         <label class=\"check\"><input type=\"checkbox\" name=\"ordered\"{}> Ordered: one event of a profile at a time, in order</label></fieldset>\
         <fieldset><legend>Condition</legend>\
         <p class=\"help\">Optional: only events that meet it are sent. Build it below; the JSON it \
         produces is what is saved (you may also edit the JSON).</p>\
         <div id=\"builder\" class=\"builder\" aria-live=\"polite\"></div>\
         <label for=\"f-conditions\">Condition as JSON</label>\
         <textarea id=\"f-conditions\" name=\"conditions\" rows=\"6\" spellcheck=\"false\" aria-describedby=\"err-conditions\"{cond_invalid}>{}</textarea>{}\
         </fieldset>\
         <button type=\"submit\">Save webhook</button></form>",
        esc(action),
        csrf_field(session),
        esc(&v.etag),
        input("url", "URL that receives the webhooks", &v.url, "An https:// URL of yours; you will prove it is yours before anything is sent.", &err("url"), "type=\"url\" required"),
        input("database", "Database id (optional)", &v.database, "The Copernica database whose events are sent; empty: every database of the account, later ones included.", &err("database"), "inputmode=\"numeric\""),
        input("collection", "Collection id (optional)", &v.collection, "Only events of this collection's subprofiles; empty: the database's profiles.", &err("collection"), "inputmode=\"numeric\""),
        checkboxes("events", "Events", "Which events are sent.", &events, &v.events, &err("events")),
        checkboxes("actions", "Action types", "For create/update/delete events; none ticked: all.", &actions, &v.actions, &err("actions")),
        checkboxes("triggers", "Triggers", "What caused a profile change; none ticked: all.", &triggers, &v.triggers, &err("triggers")),
        "",
        select("format", "Format", &["json", "form", "xml"], &v.format),
        select("signature", "Signature", &["copernica", "standard-webhooks"], &v.signature),
        input("max_in_flight", "Requests at once", &v.max_in_flight, "At most this many requests to the URL at the same time.", &err("max_in_flight"), "inputmode=\"numeric\""),
        input("per_second", "Requests per second", &v.per_second, "At most this many requests a second.", &err("per_second"), "inputmode=\"decimal\""),
        if v.ordered { " checked" } else { "" },
        esc(&v.conditions),
        if err("conditions").is_empty() { "<p class=\"error\" id=\"err-conditions\" hidden></p>".to_owned() } else { err("conditions") },
    )
}

/// `GET /console/subscriptions/new`.
pub async fn new_page(session: Session) -> Response {
    or_return!(session.account());
    let body = form_html(&session, "/console/subscriptions", &Values::blank(), None);
    frame(&session, "New webhook", &body).into_response()
}

/// `POST /console/subscriptions`: creates it through the API's own handler.
pub async fn create(State(state): State<AppState>, session: Session, body: Bytes) -> Response {
    let (form, caller) = or_return!(session.act(&body));
    let values = Values::from_form(&form);
    let result = match values.body(false) {
        Ok(body) => crate::subscriptions::create(State(state), caller, ApiJson(body)).await,
        Err(e) => Err(e),
    };
    match result {
        Ok((_, (_, sub))) => Redirect::to(&format!(
            "/console/subscriptions/{}?created=1",
            url_part(&sub.0.id.0)
        ))
        .into_response(),
        Err(e) => {
            let html = form_html(&session, "/console/subscriptions", &values, Some(&e));
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                frame(&session, "New webhook", &html),
            )
                .into_response()
        }
    }
}

/// `GET /console/subscriptions/{id}/edit`.
pub async fn edit_page(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let caller = or_return!(session.account());
    match crate::subscriptions::owned(&state, &caller.account, &id) {
        Ok(sub) => {
            let action = format!("/console/subscriptions/{}/edit", url_part(&id));
            frame(
                &session,
                "Edit webhook",
                &form_html(&session, &action, &Values::of(&sub), None),
            )
            .into_response()
        }
        Err(e) => error_page(&session, &e),
    }
}

/// `POST /console/subscriptions/{id}/edit`: the API's update, guarded by the version the form
/// was built from (`If-Match`), so two people editing at once do not overwrite each other.
pub async fn edit(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (form, caller) = or_return!(session.act(&body));
    let values = Values::from_form(&form);
    let mut headers = HeaderMap::new();
    if let Ok(tag) = HeaderValue::from_str(&values.etag) {
        headers.insert(header::IF_MATCH, tag);
    }
    let result = match values.body(true) {
        Ok(body) => {
            crate::subscriptions::update(
                State(state),
                caller,
                Path(id.clone()),
                headers,
                ApiJson(body),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Redirect::to(&format!("/console/subscriptions/{}?saved=1", url_part(&id)))
            .into_response(),
        Err(e) if e.status == StatusCode::NOT_FOUND => error_page(&session, &e),
        Err(e) => {
            let action = format!("/console/subscriptions/{}/edit", url_part(&id));
            let html = form_html(&session, &action, &values, Some(&e));
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                frame(&session, "Edit webhook", &html),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_land_at_the_form_field_they_name() {
        let at = |field: &str| error_field(&ApiError::invalid(field, "x"));
        assert_eq!(at("limits.per_second"), "per_second");
        assert_eq!(at("limits.max_in_flight"), "max_in_flight");
        assert_eq!(at("conditions_text"), "conditions");
        assert_eq!(at("conditions.all[0].op"), "conditions");
        assert_eq!(at("events[1]"), "events");
        assert_eq!(at("url"), "url");
    }

    #[test]
    fn the_body_is_what_the_api_takes() {
        let mut v = Values::blank();
        v.database = "12".into();
        v.url = "https://h.example/in".into();
        v.events = vec!["click".into()];
        v.per_second = "2.5".into();
        v.max_in_flight = "lots".into();
        let body = v.body(false).unwrap();
        assert_eq!(
            body["limits"],
            json!({"max_in_flight": "lots", "per_second": 2.5})
        );
        assert_eq!(body["actions"], Value::Null, "none ticked: all");
        assert_eq!(body["collection"], Value::Null);
        assert!(body.get("conditions").is_none() && body.get("conditions_text").is_none());
        assert_eq!(
            v.body(true).unwrap()["conditions_text"],
            "",
            "an edit clears the condition"
        );
        v.conditions = r#"{"field": "city", "op": "equals", "value": "Amsterdam"}"#.into();
        assert_eq!(v.body(false).unwrap()["conditions"]["field"], "city");
        v.conditions = "{not json".into();
        assert_eq!(error_field(&v.body(false).unwrap_err()), "conditions");
    }
}
