//! File verification against a real web server on loopback, through the real outbound client.

use std::time::Duration;

use hookline_outbound::{HttpClient, HttpOptions, NetworkGuard};
use hookline_testkit::{Receiver, StaticSite};
use hookline_verification::{FileOutcome, FilePrefix, FileVerificationError, VerificationToken};
use url::Url;

/// The file name under the default prefix (`hookline-<token>.txt`).
fn file_name(token: &VerificationToken) -> String {
    hookline_verification::file_name(&FilePrefix::default(), token)
}

/// Verification of the file under the default prefix.
async fn verify_file(
    client: &HttpClient,
    callback: &Url,
    token: &VerificationToken,
) -> Result<Url, FileVerificationError> {
    hookline_verification::verify_file(client, callback, &file_name(token), token).await
}

/// A client like the admin's, with loopback allowed as `HOOKLINE_ALLOW_NETWORKS` does in tests.
fn loopback_client() -> HttpClient {
    client(
        NetworkGuard::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]),
        Duration::from_secs(5),
    )
}

fn client(guard: NetworkGuard, total_timeout: Duration) -> HttpClient {
    HttpClient::new(
        guard,
        HttpOptions {
            connect_timeout: Duration::from_secs(2),
            total_timeout,
            ..HttpOptions::default()
        },
    )
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn not_found(e: FileVerificationError) -> Vec<hookline_verification::FileAttempt> {
    match e {
        FileVerificationError::NotFound { attempts } => attempts,
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn the_file_in_the_script_directory_verifies() {
    let site = StaticSite::start().await;
    let token = VerificationToken::generate();
    let dir_file = format!("/dir/{}", file_name(&token));
    site.serve(&dir_file, 200, format!("{token}\n"));

    let matched = verify_file(
        &loopback_client(),
        &url(&site.url("/dir/hook.php?account=7#x")),
        &token,
    )
    .await
    .unwrap();

    assert_eq!(matched.as_str(), site.url(&dir_file));
    // Found at the first location: the root is not asked.
    assert_eq!(site.requested_paths(), [dir_file]);
    let req = &site.received()[0];
    assert_eq!(req.method, "GET");
    assert_eq!(req.header("cache-control"), Some("no-cache"));
}

#[tokio::test]
async fn the_file_at_the_web_root_verifies_after_the_directory_misses() {
    let site = StaticSite::start().await;
    let token = VerificationToken::generate();
    let root_file = format!("/{}", file_name(&token));
    // Windows editors write a byte-order mark and CRLF; both are tolerated.
    site.serve(&root_file, 200, format!("\u{feff}  {token}\r\n"));

    let matched = verify_file(&loopback_client(), &url(&site.url("/a/b/hook")), &token)
        .await
        .unwrap();

    assert_eq!(matched.as_str(), site.url(&root_file));
    assert_eq!(
        site.requested_paths(),
        [format!("/a/b/{}", file_name(&token)), root_file]
    );
}

#[tokio::test]
async fn a_missing_file_and_a_wrong_body_are_both_reported() {
    let site = StaticSite::start().await;
    let token = VerificationToken::generate();
    let name = file_name(&token);
    site.serve(&format!("/{name}"), 200, "xyz\n");

    let err = verify_file(&loopback_client(), &url(&site.url("/dir/hook.php")), &token)
        .await
        .unwrap_err();

    let base = format!("http://{}", site.addr);
    assert_eq!(
        err.to_string(),
        format!(
            "the verification file was found, but its content is not the token: \
             GET {base}/dir/{name} answered 404; \
             GET {base}/{name} answered 200 but the body was \"xyz\" (expected the token)"
        )
    );
    let attempts = not_found(err);
    assert!(matches!(
        attempts[0].outcome,
        FileOutcome::Status { status: 404, .. }
    ));
    assert!(matches!(
        attempts[1].outcome,
        FileOutcome::WrongBody { status: 200, .. }
    ));
}

#[tokio::test]
async fn another_subscriptions_token_or_an_error_page_does_not_verify() {
    let site = StaticSite::start().await;
    let token = VerificationToken::generate();
    let other = VerificationToken::generate();
    let name = file_name(&token);
    site.serve(&format!("/dir/{name}"), 200, other.to_string());
    // The right token, but on an error page: only a 2xx answer counts.
    site.serve(&format!("/{name}"), 500, token.to_string());

    let err = verify_file(&loopback_client(), &url(&site.url("/dir/")), &token)
        .await
        .unwrap_err();

    let msg = err.to_string();
    assert!(
        msg.contains(&format!("answered 200 but the body was \"{other}\"")),
        "{msg}"
    );
    assert!(
        msg.ends_with(&format!("GET http://{}/{name} answered 500", site.addr)),
        "{msg}"
    );
}

#[tokio::test]
async fn other_redirects_are_reported_not_followed() {
    let site = StaticSite::start().await;
    let token = VerificationToken::generate();
    let name = file_name(&token);
    // The redirect target does serve the token: following it would let any open redirect on
    // the customer's site vouch for a file elsewhere.
    site.serve(&format!("/elsewhere/{name}"), 200, token.to_string());
    site.serve_with_headers(
        &format!("/{name}"),
        301,
        vec![("location".into(), format!("/elsewhere/{name}"))],
        "",
    );

    let err = verify_file(&loopback_client(), &url(&site.url("/hook")), &token)
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        format!(
            "the verification file was not found: GET http://{}/{name} answered 301 redirecting \
             to \"/elsewhere/{name}\" (only a redirect from http to https on the same host is \
             followed, once; serve the file at this address)",
            site.addr
        )
    );
    assert_eq!(site.requested_paths(), [format!("/{name}")]);
}

#[tokio::test]
async fn connection_refused_is_reported_for_each_location() {
    // A port that was just free and is now closed again.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let token = VerificationToken::generate();
    let name = file_name(&token);

    let err = verify_file(
        &loopback_client(),
        &url(&format!("http://127.0.0.1:{port}/dir/hook.php")),
        &token,
    )
    .await
    .unwrap_err();

    let msg = err.to_string();
    for u in [
        format!("http://127.0.0.1:{port}/dir/{name}"),
        format!("http://127.0.0.1:{port}/{name}"),
    ] {
        assert!(
            msg.contains(&format!("GET {u} failed: connection to {u} refused")),
            "{msg}"
        );
    }
    let attempts = not_found(err);
    assert_eq!(attempts.len(), 2);
    for a in attempts {
        let FileOutcome::Failed(e) = a.outcome else {
            panic!("{a}");
        };
        assert_eq!(e.kind, hookline_outbound::SendErrorKind::Connect);
    }
}

#[tokio::test]
async fn the_ssrf_guard_refuses_loopback_unless_allowed() {
    let site = StaticSite::start().await;
    let token = VerificationToken::generate();
    let name = file_name(&token);
    site.serve(&format!("/{name}"), 200, token.to_string());
    let guarded = client(NetworkGuard::default(), Duration::from_secs(5));

    // An IP literal is refused before connecting…
    let err = verify_file(&guarded, &url(&site.url("/dir/hook.php")), &token)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "GET {} failed: refused by the network guard: 127.0.0.1 is a loopback address",
            site.url(&format!("/dir/{name}"))
        )),
        "{msg}"
    );
    assert_eq!(
        msg.matches("refused by the network guard").count(),
        2,
        "{msg}"
    );

    // …and so is a name that resolves to loopback, when it resolves.
    let err = verify_file(
        &guarded,
        &url(&format!("http://localhost:{}/hook.php", site.addr.port())),
        &token,
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "GET http://localhost:{}/{name} failed: refused by the network guard: localhost resolves only to non-public addresses",
            site.addr.port()
        )),
        "{msg}"
    );
    let attempts = not_found(err);
    assert!(matches!(&attempts[0].outcome, FileOutcome::Failed(e)
        if e.kind == hookline_outbound::SendErrorKind::RefusedByGuard));

    assert!(site.received().is_empty(), "nothing reached the server");
}

#[tokio::test]
async fn a_server_that_does_not_answer_in_time_is_reported_as_a_timeout() {
    let slow = Receiver::start_delayed(200, Duration::from_secs(5)).await;
    let token = VerificationToken::generate();
    let impatient = client(
        NetworkGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
        Duration::from_millis(300),
    );

    let err = verify_file(&impatient, &url(&slow.url("/hook.php")), &token)
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        format!(
            "the verification file could not be fetched: GET {u} failed: no complete answer from {u} within 300ms",
            u = slow.url(&format!("/{}", file_name(&token)))
        )
    );
    assert_eq!(slow.count(), 1);
}

#[tokio::test]
async fn an_ipv6_loopback_site_verifies() {
    let site = StaticSite::start_on("[::1]:0").await;
    let token = VerificationToken::generate();
    let path = format!("/x/{}", file_name(&token));
    site.serve(&path, 200, token.to_string());

    let matched = verify_file(&loopback_client(), &url(&site.url("/x/y.php")), &token)
        .await
        .unwrap();
    assert_eq!(matched.as_str(), site.url(&path));
}

#[tokio::test]
async fn only_http_urls_can_be_verified_by_file() {
    let token = VerificationToken::generate();
    let err = verify_file(&loopback_client(), &url("ftp://d.example/dir/hook"), &token)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ftp://d.example/dir/hook cannot be verified with a file: only http:// and https:// URLs can serve a file"
    );
}

/// A loopback port that takes connections and reports whether one opened with a TLS
/// handshake record (so a test sees the client went to https there), then closes them.
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

#[tokio::test]
async fn an_http_to_https_redirect_on_the_same_host_is_followed_once_through_the_guard() {
    let site = StaticSite::start().await;
    let token = VerificationToken::generate();
    let name = file_name(&token);
    let (tls_port, mut hellos) = tls_door().await;
    let https = format!("https://127.0.0.1:{tls_port}/{name}");
    site.serve_with_headers(
        &format!("/{name}"),
        301,
        vec![("location".into(), https.clone())],
        "",
    );

    let err = verify_file(&loopback_client(), &url(&site.url("/hook")), &token)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "GET http://{}/{name} redirected to https, then GET {https} failed",
            site.addr
        )),
        "{msg}"
    );
    assert_eq!(
        hellos.recv().await,
        Some(true),
        "a TLS handshake reached the https port"
    );
    let attempts = not_found(err);
    assert_eq!(attempts[0].url.as_str(), https);
    assert_eq!(
        attempts[0].redirected_from.as_ref().map(Url::as_str),
        Some(site.url(&format!("/{name}")).as_str())
    );

    // The guard checks the new address: a port it does not allow is refused before connecting.
    let port_policy = hookline_outbound::PortPolicy::parse(&site.addr.port().to_string()).unwrap();
    let strict = client(
        NetworkGuard::new(vec!["127.0.0.0/8".parse().unwrap()]).with_ports(port_policy),
        Duration::from_secs(5),
    );
    let msg = verify_file(&strict, &url(&site.url("/hook")), &token)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(&format!(
            "then GET {https} failed: refused by the network guard"
        )),
        "{msg}"
    );
    assert!(hellos.try_recv().is_err(), "nothing reached the https port");
}

#[tokio::test]
async fn a_redirect_to_https_on_another_host_is_not_followed() {
    let site = StaticSite::start().await;
    let token = VerificationToken::generate();
    let name = file_name(&token);
    let (tls_port, mut hellos) = tls_door().await;
    let elsewhere = format!("https://localhost:{tls_port}/{name}");
    site.serve_with_headers(
        &format!("/{name}"),
        302,
        vec![("location".into(), elsewhere.clone())],
        "",
    );

    let msg = verify_file(&loopback_client(), &url(&site.url("/hook")), &token)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(&format!(
            "answered 302 redirecting to {elsewhere:?} (only a redirect"
        )),
        "{msg}"
    );
    assert!(hellos.try_recv().is_err(), "the other host was not asked");
}

#[tokio::test]
async fn a_configured_prefix_names_the_file() {
    let site = StaticSite::start().await;
    let token = VerificationToken::generate();
    let prefix = FilePrefix::parse("acme").unwrap();
    let name = hookline_verification::file_name(&prefix, &token);
    assert_eq!(name, format!("acme-{token}.txt"));
    site.serve(&format!("/{name}"), 200, token.to_string());
    let found = hookline_verification::verify_file(
        &loopback_client(),
        &url(&site.url("/hook.php")),
        &name,
        &token,
    )
    .await
    .unwrap();
    assert_eq!(found.as_str(), site.url(&format!("/{name}")));
}
