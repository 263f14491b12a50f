//! The web console (`/console/`) in a real browser: headless Debian Chromium driven through
//! chromedriver, against the real admin API and pipeline on a real broker, with loopback web
//! sites as the customer's receiver.
//!
//! One scenario, as a customer and an operator would go through it: sign in (a wrong token is
//! refused; the session cookie is HttpOnly and SameSite=Strict); the empty list; create a
//! webhook with a condition built in the builder (the API's validation error shows at its
//! field first); its verification instructions; a failed verify that says what was fetched,
//! then a verify that activates it; a test webhook with our own body and the receiver's
//! answer; pause and resume; an event through the pipeline that dead-letters and shows in the
//! attempt log; the replay of that dead letter; a portal link for another account that opens
//! once, cannot reach the first account's webhook (404), and shows in an iframe of an allowed
//! origin with its own look; forms without the CSRF token refused; the CSP on every page;
//! labels on every field and no sideways scrolling at phone width; delete with confirmation.
//!
//! With `HOOKLINE_CONSOLE_SCREENSHOTS=<dir>` the main screens are saved there as PNG
//! (`docs/console/` holds the ones `docs/console.md` shows).

#[path = "console_driver.rs"]
mod driver;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use driver::{Browser, Driver, CHROMEDRIVER, CHROMIUM};
use hookline_admin::auth;
use hookline_integration_tests::{
    count, key_path, new_token as token, produce, read_to_end, skip_for_missing_runtime,
    start_admin, Pipeline,
};
use hookline_model::TokenRole;
use hookline_outbound::{HttpClient, HttpOptions, NetworkGuard};
use hookline_testkit::{eventually, Broker, DnsServer, StaticSite, TestTopics};
use http::{HeaderName, HeaderValue, Method};
use serde_json::{json, Value};

const WITHIN: Duration = Duration::from_secs(30);

fn client() -> HttpClient {
    HttpClient::new(
        NetworkGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
        HttpOptions {
            total_timeout: Duration::from_secs(60),
            ..HttpOptions::default()
        },
    )
}

/// A plain HTTP request to the admin (for what a browser does not show: headers, forged forms).
async fn raw(
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
async fn csp_of(base: &str) -> String {
    let page = raw(Method::GET, &format!("{base}/console/sign-in"), &[], "").await;
    page.headers
        .get("content-security-policy")
        .expect("a Content-Security-Policy")
        .to_str()
        .unwrap()
        .to_owned()
}

fn screenshots() -> Option<PathBuf> {
    std::env::var_os("HOOKLINE_CONSOLE_SCREENSHOTS").map(PathBuf::from)
}

async fn sign_in(b: &Browser<'_>, base: &str, token: &str) {
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

async fn save(b: &Browser<'_>) {
    b.click(&b.find("main form.stack > button[type=submit]").await)
        .await;
}

/// Creates a webhook in the form (no condition); returns its id.
async fn create(b: &Browser<'_>, base: &str, url: &str, database: &str, events: &[&str]) -> String {
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

fn subscription_id(url: &str) -> String {
    let path = url.split('?').next().unwrap();
    path.rsplit('/').next().unwrap().to_owned()
}

/// The verification file the page names, published on `site` beside the webhook's URL.
async fn publish_verification_file(b: &Browser<'_>, site: &StaticSite, dir: &str) {
    let link = b.text(&b.find(".verify a.button").await).await;
    let file = link.trim_start_matches("Download ").trim().to_owned();
    let token = file
        .trim_start_matches("hookline-")
        .trim_end_matches(".txt")
        .to_owned();
    site.serve(&format!("{dir}/{file}"), 200, format!("{token}\n"));
}

/// Presses "Verify now" and waits for the page that answers with `expect`.
async fn verify(b: &Browser<'_>, expect: &str) -> String {
    b.click(&b.find(".verify form button").await).await;
    b.wait_text(expect, WITHIN, false).await
}

async fn condition_json(b: &Browser<'_>) -> Value {
    let text = b
        .run(
            "return document.getElementById('f-conditions').value;",
            json!([]),
        )
        .await;
    serde_json::from_str(text.as_str().unwrap()).unwrap_or(Value::Null)
}

/// Builds `city equals Amsterdam and (interest vip)` with the builder's controls.
async fn build_condition(b: &Browser<'_>) {
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
async fn assert_accessible(b: &Browser<'_>) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_in_a_real_browser() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        skip_for_missing_runtime(
            "chromium",
            &format!("{CHROMIUM} and {CHROMEDRIVER} (Debian packages chromium, chromium-driver; .ci/run installs them)"),
        );
        return;
    }
    tokio::time::timeout(Duration::from_secs(600), scenario())
        .await
        .expect("the console scenario finishes within 10 minutes");
}

async fn scenario() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 2).await;
    let alice = token(&t, TokenRole::Account, Some("1001")).await;
    let operator = token(&t, TokenRole::Operator, None).await;
    let pipeline = Pipeline::start(&t, &key_path("console"), &["--max-attempts", "1"]).await;
    let base = format!("http://{}", pipeline.admin);
    let site = StaticSite::start().await;
    site.serve("/hooks/a.php", 200, "ok from the receiver");
    site.serve("/down.php", 500, "boom");
    let shots = screenshots();
    let shots = shots.as_deref();
    let driver = Driver::start().await;
    let b = driver.browser(1280, 900).await;

    // --- Security headers on every console page.
    let page = raw(Method::GET, &format!("{base}/console/sign-in"), &[], "").await;
    let csp = csp_of(&base).await;
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers.get("referrer-policy").unwrap(), "no-referrer");

    // --- Sign in: a wrong token is refused, the right one starts a session.
    sign_in(&b, &base, "hlt_0123456789abcdef_wrong").await;
    b.wait_text("unknown or revoked", WITHIN, false).await;
    b.screenshot(shots, "sign-in").await;
    sign_in(&b, &base, &alice).await;
    let text = b.wait_text("No webhooks yet", WITHIN, false).await;
    assert!(text.contains("account 1001"), "{text}");
    let cookie = b
        .cookies()
        .await
        .into_iter()
        .find(|c| c["name"] == "hookline_console")
        .expect("a session cookie");
    assert_eq!(cookie["httpOnly"], true);
    assert_eq!(cookie["sameSite"], "Strict");
    assert!(
        !cookie["value"].as_str().unwrap().contains(&alice[4..20]),
        "the cookie does not carry the token"
    );
    let session_cookie = format!("hookline_console={}", cookie["value"].as_str().unwrap());
    assert_accessible(&b).await;

    // --- A form without the session's CSRF token is refused, even with the cookie.
    let forged = raw(
        Method::POST,
        &format!("{base}/console/check"),
        &[
            ("cookie", session_cookie.clone()),
            ("content-type", "application/x-www-form-urlencoded".into()),
        ],
        "csrf=guessed",
    )
    .await;
    assert_eq!(forged.status, 403);
    // Nor can another site sign a browser in to an account of its choosing: the sign-in form
    // has a CSRF token of its own.
    let login = raw(
        Method::POST,
        &format!("{base}/console/sign-in"),
        &[("content-type", "application/x-www-form-urlencoded".into())],
        &format!("csrf=x&token={alice}"),
    )
    .await;
    assert_eq!(login.status, 403);
    assert!(login.headers.get("location").is_none());

    // --- Create a webhook: the API's validation error shows at its field, then the condition
    // built in the builder is saved as the JSON it shows.
    b.goto(&format!("{base}/console/subscriptions/new")).await;
    b.fill(&b.find("#f-url").await, &site.url("/hooks/a.php"))
        .await;
    b.fill(&b.find("#f-database").await, "12").await;
    build_condition(&b).await;
    let expected = json!({"all": [
        {"field": "city", "op": "equals", "value": "Amsterdam"},
        {"any": [{"interest": "vip", "op": "has"}]}
    ]});
    assert_eq!(condition_json(&b).await, expected);
    assert_accessible(&b).await;
    b.screenshot(shots, "new-webhook").await;
    save(&b).await; // no event ticked
    let err = b.text(&b.find("#err-events").await).await;
    assert!(err.contains("at least one event"), "{err}");
    assert_eq!(
        condition_json(&b).await,
        expected,
        "the form keeps what was entered"
    );
    b.click(&b.find("input[name=events][value=create]").await)
        .await;
    b.click(&b.find("input[name=events][value=update]").await)
        .await;
    save(&b).await;
    let text = b.wait_text("Webhook created", WITHIN, false).await;
    let a_id = subscription_id(&b.url().await);
    assert!(
        text.contains("unverified") && text.contains("Verify your URL"),
        "{text}"
    );
    assert!(
        text.contains(&site.url("/hooks/")),
        "where to put the file: {text}"
    );
    assert!(text.contains("\"city\""), "the condition is shown: {text}");
    b.screenshot(shots, "verify").await;

    // --- Verify: first without the file (what was fetched is said), then with it.
    let failed = verify(&b, "Not verified").await;
    assert!(failed.contains("Looked for"), "{failed}");
    b.screenshot(shots, "verify-failed").await;
    publish_verification_file(&b, &site, "/hooks").await;
    verify(&b, "Verified: the webhook is active").await;

    // --- Test webhook with our own body: the receiver's status and answer.
    b.fill(&b.find("#t-body").await, r#"{"hello": "console"}"#)
        .await;
    b.click(&b.find("form[action$='/test'] button").await).await;
    let text = b.wait_text("Delivered", WITHIN, false).await;
    assert!(
        text.contains("HTTP 200") && text.contains("ok from the receiver"),
        "{text}"
    );
    let got = site
        .received()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path_and_query == "/hooks/a.php")
        .last()
        .unwrap();
    assert_eq!(got.body, Bytes::from_static(br#"{"hello":"console"}"#));
    b.screenshot(shots, "test-webhook").await;

    // --- Pause and resume.
    b.click(&b.find("form[action$='/status'] button").await)
        .await;
    b.wait_text("Resume", WITHIN, false).await;
    assert!(b.page_text().await.contains("paused"));
    b.click(&b.find("form[action$='/status'] button").await)
        .await;
    b.wait_text("Pause", WITHIN, false).await;

    // --- Edit: the builder starts from the saved condition; a wrong limit is named at its field.
    b.goto(&format!("{base}/console/subscriptions/{a_id}/edit"))
        .await;
    assert_eq!(b.find_all("#builder .cb-leaf").await.len(), 2);
    assert_eq!(condition_json(&b).await, expected);
    b.fill(&b.find("#f-per_second").await, "lots").await;
    save(&b).await;
    let err = b.text(&b.find("#err-per_second").await).await;
    assert!(!err.is_empty(), "the API's message for per_second");
    b.fill(&b.find("#f-per_second").await, "10").await;
    save(&b).await;
    let text = b.wait_text("Saved.", WITHIN, false).await;
    assert!(text.contains("active"), "{text}");

    // --- An event through the pipeline dead-letters at the failing endpoint, shows in the
    // attempt log, and is replayed once the endpoint is back.
    let down_id = create(&b, &base, &site.url("/down.php"), "13", &["click"]).await;
    publish_verification_file(&b, &site, "").await;
    verify(&b, "Verified: the webhook is active").await;
    // The tracking stage routes by its own view of the subscriptions: the click goes in once
    // that view has read every subscription record, the verified version included.
    let records = read_to_end(&t, &t.topics.subscriptions).len() as u64;
    let m = &pipeline.tracking_metrics;
    assert!(
        eventually(WITHIN, || count(&m.table_records, &["subscriptions"])
            >= records)
        .await,
        "the tracking stage read the {records} subscription records"
    );
    produce(&t, &t.topics.tracking, &[("13:4711".into(), json!({
        "id": "clk-console", "type": "click", "account": "1001", "database": "13", "profile": "4711",
        "collection": null, "subprofile": null, "mailing": "m-1",
        "timestamp": "2026-11-25T10:15:00Z", "ip": "203.0.113.7", "tags": []}))]).await;
    b.goto(&format!("{base}/console/subscriptions/{down_id}/attempts"))
        .await;
    let text = b
        .wait_text("dead-lettered", Duration::from_secs(60), true)
        .await;
    assert!(text.contains("500"), "{text}");
    b.screenshot(shots, "attempt-log").await;
    site.serve("/down.php", 200, "back");
    b.click(&b.find("form[action$='/replay'] button[value=false]").await)
        .await;
    b.wait_text("Replayed 1 dead letters", WITHIN, false).await;
    b.goto(&format!("{base}/console/subscriptions/{down_id}/attempts"))
        .await;
    b.wait_text("delivered", Duration::from_secs(60), true)
        .await;
    let replayed = site
        .received()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path_and_query == "/down.php")
        .count();
    assert_eq!(replayed, 2, "the dead letter was sent again");

    // --- The list, at desktop and phone width.
    b.goto(&format!("{base}/console/subscriptions")).await;
    let text = b.page_text().await;
    assert!(
        text.contains("/hooks/a.php") && text.contains("/down.php"),
        "{text}"
    );
    b.screenshot(shots, "webhooks").await;
    b.resize(390, 844).await;
    assert_accessible(&b).await;
    b.screenshot(shots, "webhooks-phone").await;
    for page in [
        format!("{base}/console/subscriptions/{a_id}"),
        format!("{base}/console/subscriptions/{a_id}/edit"),
        format!("{base}/console/subscriptions/{down_id}/attempts"),
        format!("{base}/console/keys"),
    ] {
        b.goto(&page).await;
        b.find("main h1").await;
        assert_accessible(&b).await;
    }
    b.resize(1280, 900).await;
    b.goto(&format!("{base}/console/subscriptions")).await;

    // --- Delete asks first.
    b.goto(&format!("{base}/console/subscriptions/{down_id}/delete"))
        .await;
    b.wait_text("cannot be undone", WITHIN, false).await;
    b.click(&b.find("main form button.danger").await).await;
    b.wait_url("/console/subscriptions").await;
    let text = b.page_text().await;
    assert!(
        text.contains("/hooks/a.php") && !text.contains("/down.php"),
        "{text}"
    );

    // --- Check now: a test webhook to every active webhook, with a report per webhook.
    b.click(&b.find("form[action='/console/check'] button").await)
        .await;
    let text = b.wait_text("checked:", WITHIN, false).await;
    assert!(text.contains("1 checked: 1 delivered, 0 failed"), "{text}");

    // --- Sign out: the session is gone.
    b.click(&b.find("form[action='/console/sign-out'] button").await)
        .await;
    b.wait_url("/console/sign-in").await;
    b.goto(&format!("{base}/console/subscriptions")).await;
    assert!(b.url().await.ends_with("/console/sign-in"));

    // --- Revoking the token ends its sessions at once.
    sign_in(&b, &base, &alice).await;
    b.wait_url("/console/subscriptions").await;
    let (token_id, _) = auth::split(&alice).unwrap();
    hookline_tokens::revoke_token(&t.settings, &t.topics, token_id)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + WITHIN;
    loop {
        b.goto(&format!("{base}/console/subscriptions")).await;
        if b.url().await.ends_with("/console/sign-in") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session outlived its revoked token"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // --- Portal link for account 2002: opens once, and account 1001's webhook is a 404.
    let link = portal_link(
        &base,
        &operator,
        json!({"account": "2002", "product_name": "Acme Mail"}),
    )
    .await;
    b.goto(&link).await;
    let text = b.wait_text("No webhooks yet", WITHIN, false).await;
    assert!(
        text.contains("Acme Mail") && text.contains("account 2002"),
        "{text}"
    );
    assert!(
        !b.url().await.contains("link="),
        "the link leaves the address bar"
    );
    b.goto(&format!("{base}/console/subscriptions/{a_id}"))
        .await;
    let text = b.wait_text("Not found", WITHIN, false).await;
    assert!(
        text.contains(&format!("no subscription \"{a_id}\" in this account")),
        "{text}"
    );
    b.screenshot(shots, "portal-not-found").await;
    let again = raw(Method::GET, &link, &[], "").await;
    assert_eq!(again.status, 410, "a portal link opens once");

    // --- The portal in an iframe of an allowed origin, with its own look.
    embedded_portal(&driver, &t, &operator, shots).await;

    b.quit().await;
    pipeline.stop().await;
}

async fn portal_link(base: &str, operator: &str, body: Value) -> String {
    let resp = raw(
        Method::POST,
        &format!("{base}/v1/operator/portal-links"),
        &[
            ("authorization", format!("Bearer {operator}")),
            ("content-type", "application/json".into()),
        ],
        &body.to_string(),
    )
    .await;
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
    let v: Value = serde_json::from_slice(&resp.body).unwrap();
    v["url"].as_str().unwrap().to_owned()
}

/// A second admin that lets the platform's origin frame the console (and validates domains
/// with a DNS server on loopback): the platform's page shows a portal link in an iframe; the
/// portal's customer validates a domain and reads the keys; the operator's view.
async fn embedded_portal(driver: &Driver, t: &TestTopics, operator: &str, shots: Option<&Path>) {
    let platform = StaticSite::start().await;
    let dns = DnsServer::start().await;
    let dns_addr = dns.addr.to_string();
    let origin = platform.url("").trim_end_matches('/').to_owned();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let admin: SocketAddr = start_admin(
        t,
        &key_path("console"),
        &[
            "--console-frame-ancestors",
            &origin,
            "--require-https",
            "false",
            "--console-accent",
            "#6a1b9a",
            "--dns-resolver",
            &dns_addr,
        ],
        None,
        &shutdown,
    )
    .await;
    let base = format!("http://{admin}");
    let csp = csp_of(&base).await;
    assert!(csp.contains(&format!("frame-ancestors {origin}")), "{csp}");
    let link = portal_link(
        &base,
        operator,
        json!({"account": "1001", "product_name": "Acme Mail", "accent_color": "#b3261e"}),
    )
    .await;
    platform.serve_with_headers(
        "/settings/webhooks",
        200,
        vec![("content-type".into(), "text/html; charset=utf-8".into())],
        format!(
            "<!doctype html><html><head><title>Acme Mail settings</title></head><body>\
             <h1>Acme Mail: webhooks</h1><iframe id=\"portal\" src=\"{link}\" width=\"1100\" height=\"700\" \
             title=\"Webhooks\"></iframe></body></html>"
        ),
    );
    let b = driver.browser(1280, 900).await;
    b.goto(&platform.url("/settings/webhooks")).await;
    let frame = b.find("#portal").await;
    b.frame(Some(&frame)).await;
    let text = b.wait_text("Acme Mail", WITHIN, false).await;
    b.wait_text("/hooks/a.php", WITHIN, false).await;
    assert!(text.contains("account 1001"), "{text}");
    let accent = b
        .run("return getComputedStyle(document.documentElement).getPropertyValue('--accent').trim();", json!([]))
        .await;
    assert_eq!(accent, json!("#b3261e"), "the link's accent colour");
    b.frame(None).await;
    b.screenshot(shots, "portal-iframe").await;
    domains_and_keys(&b, &base, &dns, shots).await;
    b.quit().await;
    operator_view(driver, &base, operator, shots).await;
    shutdown.cancel();
}

/// The portal's customer adds a domain, sees the TXT record, fails to validate it before it is
/// published, then validates it; the keys page shows the keys and receiver examples.
async fn domains_and_keys(b: &Browser<'_>, base: &str, dns: &DnsServer, shots: Option<&Path>) {
    b.goto(&format!("{base}/console/domains")).await;
    b.wait_text("No domains yet", WITHIN, false).await;
    b.fill(&b.find("#d-name").await, "hooks.example.com").await;
    b.click(&b.find("form[action='/console/domains'] button").await)
        .await;
    b.wait_text("Publish a TXT record", WITHIN, false).await;
    let cells = b.find_all("main table tbody td code").await;
    let (name, value) = (b.text(&cells[0]).await, b.text(&cells[1]).await);
    assert!(name.contains("hooks.example.com"), "{name}");
    b.click(&b.find("form[action$='/validate'] button").await)
        .await;
    let refused = b.text(&b.find(".notice.error").await).await;
    assert!(
        !refused.is_empty(),
        "validating before the record is published fails"
    );
    dns.add_txt(&name, &value);
    b.click(&b.find("form[action$='/validate'] button").await)
        .await;
    b.wait_text("hooks.example.com is validated", WITHIN, false)
        .await;
    assert_accessible(b).await;
    b.screenshot(shots, "domains").await;
    b.goto(&format!("{base}/console/keys")).await;
    let text = b.wait_text("Receiver examples", WITHIN, false).await;
    assert!(
        text.contains("rsa-sha256") && text.contains("v=DKIM1"),
        "{text}"
    );
    b.screenshot(shots, "keys").await;
}

/// The operator signs in: accounts, the per-endpoint backlog, the tokens; opens account 1001.
async fn operator_view(driver: &Driver, base: &str, operator: &str, shots: Option<&Path>) {
    let b = driver.browser(1280, 900).await;
    sign_in(&b, base, operator).await;
    b.wait_url("/console/operator").await;
    let text = b.wait_text("Per-endpoint backlog", WITHIN, false).await;
    assert!(
        text.contains("1001") && text.contains("/hooks/a.php"),
        "{text}"
    );
    let (operator_id, _) = auth::split(operator).unwrap();
    assert!(
        text.contains(&format!("hlt_{operator_id}_")),
        "the tokens, by id: {text}"
    );
    assert!(!text.contains(&operator[21..]), "no secret is shown");
    assert_accessible(&b).await;
    b.screenshot(shots, "operator").await;
    let portal_button = b.find_all("main table form button").await;
    b.click(&portal_button[1]).await; // "Portal link" of account 1001
    let link = b.text(&b.find("#portal-link").await).await;
    assert!(link.contains("/console/portal/open?link="), "{link}");
    b.click(&b.find("main table form button").await).await; // "Open"
    b.wait_url("/console/subscriptions").await;
    let text = b.wait_text("/hooks/a.php", WITHIN, false).await;
    assert!(text.contains("operator · account 1001"), "{text}");
    b.quit().await;
}
