//! A signing oracle closed: account 1001 has the admin API send a test webhook with a body of
//! its choosing (claiming to be about account 1002), captures the signed request at its own
//! receiver and replays it, byte for byte and with the same `Host` and path, to receivers of
//! account 1002. Under the `copernica` profile the signed `X-Copernica-ID` names 1001; under
//! `standard-webhooks` the signature is made with 1001's own Ed25519 key. So it verifies for
//! 1001 and for no receiver of 1002: the Rust verifiers with the keys `GET /v1/keys?account=`
//! publishes, the receiver examples with `EXPECTED_ACCOUNT`, and `hookline verify-signature
//! --account`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hookline_integration_tests::{binary, produce, start_admin};
use hookline_model::{AccountId, TokenRole};
use hookline_outbound::{HttpClient, HttpOptions, NetworkGuard};
use hookline_signing::standard_webhooks;
use hookline_testkit::receiver::Received;
use hookline_testkit::{Broker, Receiver, TestTopics};
use http::{HeaderName, HeaderValue, Method};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::example::{free_port, temp_dir, Example, Lang};
use super::subscription;

const FORGED: &str = r#"{"id":"evt-forged","type":"click","account":"1002","database":"12"}"#;

fn client() -> HttpClient {
    HttpClient::new(
        NetworkGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
        HttpOptions {
            total_timeout: Duration::from_secs(20),
            max_response_bytes: 1 << 20,
            ..HttpOptions::default()
        },
    )
}

/// `GET /v1/keys` with `query` and `token`: the listed keys.
async fn keys(http: &HttpClient, admin: &str, query: &str, token: Option<&str>) -> Vec<Value> {
    let headers = token
        .map(|t| {
            vec![(
                HeaderName::from_static("authorization"),
                HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
            )]
        })
        .unwrap_or_default();
    let r = http
        .request(
            Method::GET,
            &format!("{admin}/v1/keys{query}"),
            headers,
            Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    serde_json::from_slice::<Value>(&r.body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn ed25519_of(keys: &[Value]) -> Vec<u8> {
    let entry = keys
        .iter()
        .find(|k| k["algorithm"] == "ed25519")
        .unwrap_or_else(|| panic!("no ed25519 key in {keys:?}"));
    standard_webhooks::parse_whpk(entry["standard_webhooks"].as_str().unwrap()).unwrap()
}

/// Asks the admin API for a test webhook of `sub` with the body `FORGED`, retrying while the
/// admin has not read the token or the subscription yet.
async fn test_webhook(http: &HttpClient, admin: &str, token: &str, sub: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .request(
                Method::POST,
                &format!("{admin}/v1/subscriptions/{sub}/test"),
                vec![
                    (
                        HeaderName::from_static("authorization"),
                        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
                    ),
                    (
                        HeaderName::from_static("content-type"),
                        HeaderValue::from_static("application/json"),
                    ),
                ],
                Bytes::from(serde_json::to_vec(&json!({ "body": FORGED })).unwrap()),
            )
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&r.body).into_owned();
        if r.status == 200 {
            assert!(text.contains(r#""delivered":true"#), "{sub}: {text}");
            return;
        }
        assert!(
            Instant::now() < deadline && matches!(r.status, 401 | 404),
            "{sub}: the test webhook answered {}: {text}",
            r.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `captured` again, unchanged (its `Host`, path and every signed header), to `port`.
async fn resend(http: &HttpClient, captured: &Received, port: u16) -> (u16, String) {
    let headers = captured
        .headers
        .iter()
        .filter(|(k, _)| {
            !["content-length", "connection", "transfer-encoding"]
                .contains(&k.to_ascii_lowercase().as_str())
        })
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect();
    let url = format!("http://127.0.0.1:{port}{}", captured.path_and_query);
    let r = http
        .request(Method::POST, &url, headers, captured.body.clone())
        .await
        .unwrap();
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

/// `hookline verify-signature --account <account>` on `captured`: whether it exits 0, and its
/// output.
fn cli_verifies(admin: &str, captured: &Received, account: &str, dir: &Path) -> (bool, String) {
    let head = dir.join(format!("head-{account}.txt"));
    let body = dir.join(format!("body-{account}.bin"));
    let mut text = format!("POST {} HTTP/1.1\n", captured.path_and_query);
    for (k, v) in &captured.headers {
        text.push_str(&format!("{k}: {v}\n"));
    }
    std::fs::write(&head, text).unwrap();
    std::fs::write(&body, &captured.body).unwrap();
    let out = Command::new(binary("hookline"))
        .env("HOOKLINE_API_URL", admin)
        .env_remove("HOOKLINE_TOKEN")
        .args(["verify-signature", "--headers-file"])
        .arg(&head)
        .arg("--body-file")
        .arg(&body)
        .args(["--account", account])
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), shown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_test_webhook_signed_for_one_account_does_not_verify_for_another() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let tmp = temp_dir("isolation");
    let key_path = tmp.join("signing-key.pem");

    // Account 1001's receiver, where it captures what Hookline signs for it.
    let capture = Receiver::start(200).await;
    let url = capture.url("/shared/webhooks?from=hookline");
    let copernica = subscription("sub-a-copernica", &url, "json");
    let mut standard = subscription("sub-a-standard", &url, "json");
    standard["signature"] = json!("standard-webhooks");
    produce(
        &t,
        &t.topics.subscriptions,
        &[
            ("sub-a-copernica".into(), copernica),
            ("sub-a-standard".into(), standard),
        ],
    )
    .await;
    let new = hookline_admin::auth::generate(
        TokenRole::Account,
        Some(AccountId::new("1001").unwrap()),
        Some("isolation".into()),
    );
    hookline_admin::tables::write_token(&t.settings, &t.topics, &new.record)
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let admin_addr = start_admin(
        &t,
        &key_path,
        &[
            "--require-https",
            "false",
            "--allow-networks",
            "127.0.0.0/8",
        ],
        None,
        &shutdown,
    )
    .await;
    let admin = format!("http://{admin_addr}");
    let http = client();

    // The receiver examples of both accounts, started before the webhooks are signed so that
    // the copernica requests are replayed well within their 60 s Date window.
    let mut copernica_examples = Vec::new();
    for lang in [Lang::Php, Lang::Node, Lang::Python] {
        let Some(runtime) = lang.runtime() else {
            continue;
        };
        for account in ["1001", "1002"] {
            let port = free_port();
            let ex = Example::start(lang, &runtime, port, admin_addr, &tmp, account).await;
            copernica_examples.push((account, ex));
        }
    }
    let mut standard_examples = Vec::new();
    if let Some(runtime) = Lang::Python.runtime() {
        for account in ["1001", "1002"] {
            let script = "standard-webhooks-verify.py";
            let port = free_port();
            let ex = Example::start_script(
                Lang::Python,
                &runtime,
                script,
                port,
                admin_addr,
                &tmp,
                account,
            )
            .await;
            standard_examples.push((account, ex));
        }
    }

    test_webhook(&http, &admin, &new.token, "sub-a-copernica").await;
    test_webhook(&http, &admin, &new.token, "sub-a-standard").await;
    let got = capture.received();
    assert_eq!(got.len(), 2, "one test webhook per subscription");
    let by = |header: &str| {
        got.iter()
            .find(|r| r.header(header).is_some())
            .unwrap_or_else(|| panic!("no captured request has {header}"))
            .clone()
    };
    let (cop, std_req) = (by("signature"), by("webhook-signature"));
    assert_eq!(
        cop.body,
        Bytes::from_static(FORGED.as_bytes()),
        "sent as is"
    );

    // 1. The Rust verifiers, with the keys each account's receiver fetches.
    let rsa = keys(&http, &admin, "?account=1002", None).await;
    let der = hookline_signing::keys::decode_pem(rsa[0]["public_key_pem"].as_str().unwrap())
        .unwrap()
        .1;
    hookline_signing::verify_request(
        "POST",
        &cop.path_and_query,
        |h| cop.header(h),
        &cop.body,
        |_| Some(der.clone()),
    )
    .expect("the RSA signature itself is genuine");
    assert_eq!(
        cop.header("x-copernica-id"),
        Some("account_1001"),
        "the signed X-Copernica-ID names the account that asked, not account_1002"
    );
    let now = SystemTime::now();
    let get = |h: &str| std_req.header(h);
    let key_a = ed25519_of(&keys(&http, &admin, "?account=1001", None).await);
    let key_b = ed25519_of(&keys(&http, &admin, "?account=1002", None).await);
    assert_ne!(
        key_a, key_b,
        "every account has its own Standard Webhooks key"
    );
    assert_eq!(
        key_a,
        ed25519_of(&keys(&http, &admin, "", Some(&new.token)).await),
        "an account token lists its own account's key"
    );
    assert_eq!(
        standard_webhooks::verify(get, &std_req.body, &[&key_a], now),
        Ok(()),
        "verifies with account 1001's key"
    );
    assert_eq!(
        standard_webhooks::verify(get, &std_req.body, &[&key_b], now),
        Err(standard_webhooks::StandardVerifyError::BadSignature),
        "does not verify with account 1002's key"
    );

    // 2. The receiver examples: accepted by 1001's, refused by 1002's.
    for (account, ex) in copernica_examples.iter().chain(&standard_examples) {
        let req = if standard_examples.iter().any(|(_, s)| s.port == ex.port) {
            &std_req
        } else {
            &cop
        };
        let (status, text) = resend(&http, req, ex.port).await;
        let lang = ex.lang.name();
        if *account == "1001" {
            assert_eq!(
                status, 200,
                "{lang} for 1001 accepts its own request: {text}"
            );
        } else {
            assert_eq!(
                status, 401,
                "{lang} for 1002 refuses 1001's request: {text}"
            );
            let reason = if std::ptr::eq(req, &std_req) {
                "signature does not verify"
            } else {
                "X-Copernica-ID"
            };
            assert!(text.contains(reason), "{lang}: {text:?} names {reason:?}");
        }
    }

    // 3. `hookline verify-signature --account`.
    for (req, profile) in [(&cop, "copernica"), (&std_req, "standard-webhooks")] {
        let (ok, out) = cli_verifies(&admin, req, "1001", &tmp);
        assert!(ok, "{profile}: valid for 1001: {out}");
        let (ok, out) = cli_verifies(&admin, req, "1002", &tmp);
        assert!(!ok, "{profile}: invalid for 1002: {out}");
    }

    drop(copernica_examples);
    drop(standard_examples);
    shutdown.cancel();
    let _ = std::fs::remove_dir_all(&tmp);
}
