//! The console's browser test, second half: sign-out and revocation, a portal link for another
//! account, the portal in a platform's iframe (a second admin that allows that origin), domains
//! and keys in the portal, and the operator's view.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hookline_admin::auth;
use hookline_integration_tests::{key_path, start_admin};
use hookline_testkit::{DnsServer, StaticSite, TestTopics};
use http::Method;
use serde_json::{json, Value};

use crate::driver::{Browser, Driver};
use crate::helpers::*;
use crate::Run;

/// Sign-out ends the session; revoking the token ends a new one.
pub async fn sign_out_and_revoke(r: &Run<'_>, t: &TestTopics, alice: &str) {
    let (b, base) = (&r.b, &r.base);
    // --- Sign out: the session is gone.
    b.click(&b.find("form[action='/console/sign-out'] button").await)
        .await;
    b.wait_url("/console/sign-in").await;
    b.goto(&format!("{base}/console/subscriptions")).await;
    assert!(b.url().await.ends_with("/console/sign-in"));

    // --- Revoking the token ends its sessions at once.
    sign_in(b, base, alice).await;
    b.wait_url("/console/subscriptions").await;
    let (token_id, _) = auth::split(alice).unwrap();
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
}

/// A portal link for account 2002 opens once, and account 1001's webhook is a 404 there.
pub async fn another_account(r: &Run<'_>, operator: &str, a_id: &str) {
    let (b, base, shots) = (&r.b, &r.base, r.shots.as_deref());
    // --- Portal link for account 2002: opens once, and account 1001's webhook is a 404.
    let link = portal_link(
        base,
        operator,
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
pub async fn embedded_portal(
    driver: &Driver,
    t: &TestTopics,
    operator: &str,
    shots: Option<&Path>,
) {
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
    assert!(text.contains("0 waiting, 0 parked"), "the backlog: {text}");
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
