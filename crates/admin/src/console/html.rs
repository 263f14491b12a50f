//! The page frame and the small HTML helpers every screen uses. Everything interpolated into a
//! page goes through [`esc`].

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use hookline_model::SubscriptionStatus;

use super::session::{Kind, Session};
use crate::error::ApiError;

/// `s` escaped for HTML text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` escaped for a URL path segment or query value.
pub fn url_part(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn head(title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <link rel=\"stylesheet\" href=\"/console/look.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head>",
        esc(title)
    )
}

/// A page without a session (sign-in, errors before sign-in).
pub fn bare_page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "{}<body><main id=\"main\" class=\"narrow\"><h1>{}</h1>{body}</main></body></html>",
        head(title),
        esc(title)
    ))
}

/// A page of a signed-in session: header with the product's look and navigation, then `body`.
pub fn page(session: &Session, title: &str, body: &str) -> Html<String> {
    let s = &session.0;
    let logo = s.look.logo.as_deref().map_or_else(String::new, |l| {
        format!("<img class=\"logo\" src=\"{}\" alt=\"\">", esc(l))
    });
    let mut nav = String::new();
    if s.account.is_some() {
        for (href, label) in [
            ("/console/subscriptions", "Webhooks"),
            ("/console/domains", "Domains"),
            ("/console/keys", "Keys"),
        ] {
            nav.push_str(&format!("<li><a href=\"{href}\">{label}</a></li>"));
        }
    }
    if s.kind == Kind::Operator {
        nav.push_str("<li><a href=\"/console/operator\">Operator</a></li>");
    }
    let who = match (&s.kind, &s.account) {
        (Kind::Operator, Some(a)) => format!("operator · account {}", esc(a.as_str())),
        (Kind::Operator, None) => "operator".to_owned(),
        (_, Some(a)) => format!("account {}", esc(a.as_str())),
        (_, None) => String::new(),
    };
    let sign_out = if s.kind == Kind::Portal {
        String::new()
    } else {
        format!(
            "<form method=\"post\" action=\"/console/sign-out\" class=\"inline\">{}\
             <button type=\"submit\" class=\"link\">Sign out</button></form>",
            csrf_field(session)
        )
    };
    Html(format!(
        "{}<body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header class=\"top\"><div class=\"brand\">{logo}<span>{}</span></div>\
         <nav aria-label=\"Main\"><ul>{nav}</ul></nav>\
         <div class=\"who\"><span>{who}</span>{sign_out}</div></header>\
         <main id=\"main\"><h1>{}</h1>{body}</main></body></html>",
        head(title),
        esc(&s.look.name),
        esc(title)
    ))
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf_field(session: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&session.0.csrf)
    )
}

/// A small form that posts to `action` with one button (and hidden `fields`).
pub fn button_form(
    session: &Session,
    action: &str,
    label: &str,
    class: &str,
    fields: &[(&str, &str)],
) -> String {
    let hidden: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            )
        })
        .collect();
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\">{}{hidden}\
         <button type=\"submit\" class=\"{class}\">{}</button></form>",
        esc(action),
        csrf_field(session),
        esc(label)
    )
}

/// The status badge of a subscription; `failing_since` adds "failing since".
pub fn badge(status: SubscriptionStatus, failing_since: Option<&str>) -> String {
    let mut out = format!("<span class=\"badge {0}\">{0}</span>", status.as_str());
    if let Some(since) = failing_since {
        out.push_str(&format!(
            " <span class=\"badge failing\">failing since {}</span>",
            esc(since)
        ));
    }
    out
}

/// A notice box: `kind` is `ok`, `error` or `info`; errors are announced to screen readers.
pub fn notice(kind: &str, text_html: &str) -> String {
    let role = if kind == "error" { "alert" } else { "status" };
    format!("<div class=\"notice {kind}\" role=\"{role}\">{text_html}</div>")
}

/// An API error as a notice: its message, and the field it is about.
pub fn api_error(e: &ApiError) -> String {
    let field = e
        .field
        .as_deref()
        .filter(|f| !f.is_empty())
        .map_or_else(String::new, |f| {
            format!(" <span class=\"field\">({})</span>", esc(f))
        });
    notice("error", &format!("{}{field}", esc(&e.message)))
}

/// An API error as a whole page: 404 stays 404 (another account's id looks like none).
pub fn error_page(session: &Session, e: &ApiError) -> Response {
    let title = if e.status == StatusCode::NOT_FOUND {
        "Not found"
    } else {
        "Something went wrong"
    };
    (e.status, page(session, title, &api_error(e))).into_response()
}

/// A `<table>` with a caption and header row.
pub fn table(caption: &str, headers: &[&str], rows: &[String]) -> String {
    let th: String = headers
        .iter()
        .map(|h| format!("<th scope=\"col\">{h}</th>"))
        .collect();
    format!(
        "<div class=\"scroll\"><table><caption>{}</caption><thead><tr>{th}</tr></thead>\
         <tbody>{}</tbody></table></div>",
        esc(caption),
        rows.concat()
    )
}
