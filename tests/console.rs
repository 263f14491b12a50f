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
#[path = "console_helpers.rs"]
mod helpers;
#[path = "console_portal.rs"]
mod portal;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use driver::{Browser, Driver, CHROMEDRIVER, CHROMIUM};
use helpers::*;
use hookline_integration_tests::{
    count, key_path, new_token as token, produce, read_to_end, skip_for_missing_runtime, Pipeline,
};
use hookline_model::TokenRole;
use hookline_testkit::{eventually, Broker, StaticSite, TestTopics};
use http::Method;
use serde_json::{json, Value};

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

/// What the steps of the scenario share: the browser, the admin's base URL, the customer's web
/// site, and where screenshots go.
struct Run<'d> {
    b: Browser<'d>,
    base: String,
    site: StaticSite,
    shots: Option<PathBuf>,
}

async fn scenario() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 2).await;
    let alice = token(&t, TokenRole::Account, Some("1001")).await;
    let operator = token(&t, TokenRole::Operator, None).await;
    let pipeline = Pipeline::start(&t, &key_path("console"), &["--max-attempts", "1"]).await;
    let site = StaticSite::start().await;
    site.serve("/hooks/a.php", 200, "ok from the receiver");
    site.serve("/down.php", 500, "boom");
    let driver = Driver::start().await;
    let r = Run {
        b: driver.browser(1280, 900).await,
        base: format!("http://{}", pipeline.admin),
        site,
        shots: screenshots(),
    };
    security_and_sign_in(&r, &alice).await;
    let (a_id, expected) = create_verify_and_test(&r).await;
    pause_resume_and_edit(&r, &a_id, &expected).await;
    let down_id = dead_letter_and_replay(&r, &t, &pipeline).await;
    list_delete_and_check(&r, &a_id, &down_id).await;
    portal::sign_out_and_revoke(&r, &t, &alice).await;
    portal::another_account(&r, &operator, &a_id).await;
    portal::embedded_portal(&driver, &t, &operator, r.shots.as_deref()).await;
    r.b.quit().await;
    pipeline.stop().await;
}

/// The security headers; sign-in (a wrong token refused); the cookie; forms without CSRF token.
async fn security_and_sign_in(r: &Run<'_>, alice: &str) {
    let (b, base, shots) = (&r.b, &r.base, r.shots.as_deref());
    // --- Security headers on every console page.
    let page = raw(Method::GET, &format!("{base}/console/sign-in"), &[], "").await;
    let csp = csp_of(base).await;
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers.get("referrer-policy").unwrap(), "no-referrer");

    // --- Sign in: a wrong token is refused, the right one starts a session.
    sign_in(b, base, "hlt_0123456789abcdef_wrong").await;
    b.wait_text("unknown or revoked", WITHIN, false).await;
    b.screenshot(shots, "sign-in").await;
    sign_in(b, base, alice).await;
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
    assert_accessible(b).await;

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
}

/// A webhook with a condition built in the builder, its verification and a test webhook;
/// returns its id and the condition.
async fn create_verify_and_test(r: &Run<'_>) -> (String, Value) {
    let (b, base, site, shots) = (&r.b, &r.base, &r.site, r.shots.as_deref());
    // --- Create a webhook: the API's validation error shows at its field, then the condition
    // built in the builder is saved as the JSON it shows.
    b.goto(&format!("{base}/console/subscriptions/new")).await;
    b.fill(&b.find("#f-url").await, &site.url("/hooks/a.php"))
        .await;
    b.fill(&b.find("#f-database").await, "12").await;
    build_condition(b).await;
    let expected = json!({"all": [
        {"field": "city", "op": "equals", "value": "Amsterdam"},
        {"any": [{"interest": "vip", "op": "has"}]}
    ]});
    assert_eq!(condition_json(b).await, expected);
    assert_accessible(b).await;
    b.screenshot(shots, "new-webhook").await;
    save(b).await; // no event ticked
    let err = b.text(&b.find("#err-events").await).await;
    assert!(err.contains("at least one event"), "{err}");
    assert_eq!(
        condition_json(b).await,
        expected,
        "the form keeps what was entered"
    );
    b.click(&b.find("input[name=events][value=create]").await)
        .await;
    b.click(&b.find("input[name=events][value=update]").await)
        .await;
    save(b).await;
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
    let failed = verify(b, "Not verified").await;
    assert!(failed.contains("Looked for"), "{failed}");
    b.screenshot(shots, "verify-failed").await;
    publish_verification_file(b, site, "/hooks").await;
    verify(b, "Verified: the webhook is active").await;

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
    (a_id, expected)
}

/// Pause, resume, and an edit.
async fn pause_resume_and_edit(r: &Run<'_>, a_id: &str, expected: &Value) {
    let (b, base) = (&r.b, &r.base);
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
    assert_eq!(condition_json(b).await, *expected);
    b.fill(&b.find("#f-per_second").await, "lots").await;
    save(b).await;
    let err = b.text(&b.find("#err-per_second").await).await;
    assert!(!err.is_empty(), "the API's message for per_second");
    b.fill(&b.find("#f-per_second").await, "10").await;
    save(b).await;
    let text = b.wait_text("Saved.", WITHIN, false).await;
    assert!(text.contains("active"), "{text}");
}

/// A webhook on a failing endpoint, an event through the pipeline that dead-letters, and its
/// replay; returns the webhook's id.
async fn dead_letter_and_replay(r: &Run<'_>, t: &TestTopics, pipeline: &Pipeline) -> String {
    let (b, base, site, shots) = (&r.b, &r.base, &r.site, r.shots.as_deref());
    // --- An event through the pipeline dead-letters at the failing endpoint, shows in the
    // attempt log, and is replayed once the endpoint is back.
    let down_id = create(b, base, &site.url("/down.php"), "13", &["click"]).await;
    publish_verification_file(b, site, "").await;
    verify(b, "Verified: the webhook is active").await;
    // The tracking stage routes by its own view of the subscriptions: the click goes in once
    // that view has read every subscription record, the verified version included.
    let records = read_to_end(t, &t.topics.subscriptions).len() as u64;
    let m = &pipeline.tracking_metrics;
    assert!(
        eventually(WITHIN, || count(&m.table_records, &["subscriptions"])
            >= records)
        .await,
        "the tracking stage read the {records} subscription records"
    );
    produce(t, &t.topics.tracking, &[("13:4711".into(), json!({
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
    down_id
}

/// The list at desktop and phone width, delete with confirmation, check now.
async fn list_delete_and_check(r: &Run<'_>, a_id: &str, down_id: &str) {
    let (b, base, shots) = (&r.b, &r.base, r.shots.as_deref());
    // --- The list, at desktop and phone width.
    b.goto(&format!("{base}/console/subscriptions")).await;
    let text = b.page_text().await;
    assert!(
        text.contains("/hooks/a.php") && text.contains("/down.php"),
        "{text}"
    );
    b.screenshot(shots, "webhooks").await;
    b.resize(390, 844).await;
    assert_accessible(b).await;
    b.screenshot(shots, "webhooks-phone").await;
    for page in [
        format!("{base}/console/subscriptions/{a_id}"),
        format!("{base}/console/subscriptions/{a_id}/edit"),
        format!("{base}/console/subscriptions/{down_id}/attempts"),
        format!("{base}/console/keys"),
    ] {
        b.goto(&page).await;
        b.find("main h1").await;
        assert_accessible(b).await;
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
}
