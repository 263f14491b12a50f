//! What the console's browser test does again and again: plain HTTP requests (for what a
//! browser does not show), signing in, filling in and saving the webhook form, verifying, the
//! condition builder, and the accessibility check of a page.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use hookline_outbound::{HttpClient, HttpOptions, NetworkGuard};
use hookline_testkit::StaticSite;
use http::{HeaderName, HeaderValue, Method};
use serde_json::{json, Value};

use crate::driver::Browser;

pub const WITHIN: Duration = Duration::from_secs(30);

pub fn client() -> HttpClient {
    HttpClient::new(
        NetworkGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
        HttpOptions {
            total_timeout: Duration::from_secs(60),
            ..HttpOptions::default()
        },
    )
}

/// A plain HTTP request to the admin (for what a browser does not show: headers, forged forms).
pub async fn raw(
    method: Method,
    url: &str,
    headers: &[(&'static str, String)],
    body: &str,
) -> hookline_outbound::client::Response {
    let headers = headers
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect();
    client()
        .request(method, url, headers, Bytes::from(body.to_owned()))
        .await
        .unwrap()
}

/// The Content-Security-Policy of the sign-in page.
pub async fn csp_of(base: &str) -> String {
    let page = raw(Method::GET, &format!("{base}/console/sign-in"), &[], "").await;
    page.headers
        .get("content-security-policy")
        .expect("a Content-Security-Policy")
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn screenshots() -> Option<PathBuf> {
    std::env::var_os("HOOKLINE_CONSOLE_SCREENSHOTS").map(PathBuf::from)
}

pub async fn sign_in(b: &Browser<'_>, base: &str, token: &str) {
    b.goto(&format!("{base}/console/")).await;
    assert!(
        b.url().await.ends_with("/console/sign-in"),
        "signed out, the console asks to sign in"
    );
    let field = b.find("#token").await;
    b.fill(&field, token).await;
    b.click(&b.find("main form button[type=submit]").await)
        .await;
}

pub async fn save(b: &Browser<'_>) {
    b.click(&b.find("main form.stack > button[type=submit]").await)
        .await;
}

/// Creates a webhook in the form (no condition); returns its id.
pub async fn create(
    b: &Browser<'_>,
    base: &str,
    url: &str,
    database: &str,
    events: &[&str],
) -> String {
    b.goto(&format!("{base}/console/subscriptions/new")).await;
    b.fill(&b.find("#f-url").await, url).await;
    b.fill(&b.find("#f-database").await, database).await;
    for e in events {
        b.click(&b.find(&format!("input[name=events][value={e}]")).await)
            .await;
    }
    save(b).await;
    b.wait_text("Webhook created", WITHIN, false).await;
    subscription_id(&b.url().await)
}

pub fn subscription_id(url: &str) -> String {
    let path = url.split('?').next().unwrap();
    path.rsplit('/').next().unwrap().to_owned()
}

/// The verification file the page names, published on `site` beside the webhook's URL.
pub async fn publish_verification_file(b: &Browser<'_>, site: &StaticSite, dir: &str) {
    let link = b.text(&b.find(".verify a.button").await).await;
    let file = link.trim_start_matches("Download ").trim().to_owned();
    let token = file
        .trim_start_matches("hookline-")
        .trim_end_matches(".txt")
        .to_owned();
    site.serve(&format!("{dir}/{file}"), 200, format!("{token}\n"));
}

/// Presses "Verify now" and waits for the page that answers with `expect`.
pub async fn verify(b: &Browser<'_>, expect: &str) -> String {
    b.click(&b.find(".verify form button").await).await;
    b.wait_text(expect, WITHIN, false).await
}

pub async fn condition_json(b: &Browser<'_>) -> Value {
    let text = b
        .run(
            "return document.getElementById('f-conditions').value;",
            json!([]),
        )
        .await;
    serde_json::from_str(text.as_str().unwrap()).unwrap_or(Value::Null)
}

/// Builds `city equals Amsterdam and (interest vip)` with the builder's controls.
pub async fn build_condition(b: &Browser<'_>) {
    b.click(&b.find("#builder .cb-group > .cb-head button").await)
        .await; // + condition
    b.fill(&b.find("#builder .cb-leaf input.cb-name").await, "city")
        .await;
    b.fill(
        &b.find("#builder .cb-leaf input.cb-operand").await,
        "Amsterdam",
    )
    .await;
    let add_group = b.find_all("#builder .cb-group > .cb-head button").await;
    b.click(&add_group[1]).await; // + group
    b.click(
        &b.find("#builder .cb-group .cb-group > .cb-head button")
            .await,
    )
    .await;
    let leaves = b.find_all("#builder .cb-leaf").await;
    assert_eq!(leaves.len(), 2);
    b.click(
        &b.find("#builder .cb-group .cb-group .cb-leaf select option[value=interest]")
            .await,
    )
    .await;
    b.fill(
        &b.find("#builder .cb-group .cb-group .cb-leaf input.cb-name")
            .await,
        "vip",
    )
    .await;
    b.click(
        &b.find("#builder .cb-group .cb-group > .cb-head select option[value=any]")
            .await,
    )
    .await;
}

/// Every form field has a label and the page does not scroll sideways at this width.
pub async fn assert_accessible(b: &Browser<'_>) {
    let unlabelled = b
        .run(
            "return [...document.querySelectorAll('input:not([type=hidden]),select,textarea')]\
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))\
             .map(e => e.name || e.id || e.outerHTML);",
            json!([]),
        )
        .await;
    assert_eq!(
        unlabelled,
        json!([]),
        "fields without a label on {}",
        b.url().await
    );
    let fits = b
        .run(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            json!([]),
        )
        .await;
    assert_eq!(fits, json!(true), "{} scrolls sideways", b.url().await);
}
