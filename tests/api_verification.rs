//! The verification file on the real local broker: a configured prefix names the file, the
//! file downloads with that name and the token as content, publishing it verifies; a
//! redirect from http to https on the same host is followed once (and reported); a prefix
//! that cannot be a file name stops the admin API at start.

mod api_client;

use api_client::Admin;
use clap::Parser;
use hookline_testkit::StaticSite;
use serde_json::json;

/// A loopback port that reports whether a connection opened with a TLS handshake record.
async fn tls_door() -> (u16, tokio::sync::mpsc::UnboundedReceiver<bool>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut first = [0u8; 1];
            let read = conn.read_exact(&mut first).await.is_ok();
            let _ = tx.send(read && first[0] == 0x16);
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verification_file_downloads_with_the_configured_prefix_and_verifies() {
    let admin = Admin::start("api-verification", &["--verification-prefix", "acme"]).await;
    let api = admin.client(&admin.token("1001").await);
    let site = StaticSite::start().await;

    let created = api
        .call(
            "POST",
            "/v1/subscriptions",
            Some(json!({"database": "12", "events": ["click"],
                        "url": site.url("/hooks/in.php")})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let token = created.body["verification"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let name = format!("acme-{token}.txt");
    assert_eq!(created.body["verification"]["file"], name.as_str());
    assert_eq!(
        created.body["verification"]["locations"],
        json!([
            site.url(&format!("/hooks/{name}")),
            site.url(&format!("/{name}"))
        ])
    );

    let file = api
        .call(
            "GET",
            &format!("/v1/subscriptions/{id}/verification-file"),
            None,
        )
        .await;
    assert_eq!(file.status, 200, "{}", file.text);
    assert_eq!(file.text, format!("{token}\n"));
    assert_eq!(
        file.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        file.header("content-disposition").map(str::to_owned),
        Some(format!("attachment; filename=\"{name}\""))
    );

    // Published as downloaded, it verifies.
    site.serve(&format!("/hooks/{name}"), 200, file.text.clone());
    let verified = api
        .call("POST", &format!("/v1/subscriptions/{id}/verify"), None)
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    assert_eq!(verified.body["status"], "active");
    assert_eq!(
        verified.body["verification"]["verified_by"],
        site.url(&format!("/hooks/{name}")).as_str()
    );

    // Another account cannot download it.
    let bob = admin.client(&admin.token("2002").await);
    bob.call(
        "GET",
        &format!("/v1/subscriptions/{id}/verification-file"),
        None,
    )
    .await
    .assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_follows_one_redirect_from_http_to_https_on_the_same_host() {
    let admin = Admin::start("api-verification-redirect", &[]).await;
    let api = admin.client(&admin.token("1001").await);
    let site = StaticSite::start().await;
    let (tls_port, mut hellos) = tls_door().await;

    let created = api
        .call(
            "POST",
            "/v1/subscriptions",
            Some(json!({"database": "12", "events": ["click"], "url": site.url("/in.php")})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap();
    let name = created.body["verification"]["file"].as_str().unwrap();
    assert!(name.starts_with("hookline-"), "the default prefix: {name}");
    let https = format!("https://127.0.0.1:{tls_port}/{name}");
    site.serve_with_headers(
        &format!("/{name}"),
        301,
        vec![("location".into(), https.clone())],
        "",
    );

    let failed = api
        .call("POST", &format!("/v1/subscriptions/{id}/verify"), None)
        .await;
    failed.assert_error(422, "verification_failed");
    let msg = failed.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "GET {} redirected to https, then GET {https} failed",
            site.url(&format!("/{name}"))
        )),
        "{msg}"
    );
    assert_eq!(
        hellos.recv().await,
        Some(true),
        "the admin API went on to the https address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_that_cannot_name_a_file_stops_the_start() {
    let args = hookline_admin::AdminArgs::parse_from([
        "hookline-admin",
        "--brokers",
        "127.0.0.1:1",
        "--metrics-addr",
        "off",
        "--verification-prefix",
        "../etc",
    ]);
    let err = hookline_admin::serve(&args, None, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("HOOKLINE_VERIFICATION_PREFIX") && err.contains("\"../etc\""),
        "{err}"
    );
}
