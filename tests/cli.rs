//! The `hookline` command as people run it: the built binary, against a live admin API on a
//! real local broker, with real endpoints on loopback (a file-serving site for URL
//! verification, a recording receiver for test webhooks, a DNS server for domains).
//! (`make test` builds the binaries before the tests; alone: `cargo build -p hookline-cli`.)

use std::path::Path;
use std::time::{Duration, Instant};

use hookline_integration_tests::start_admin;
use hookline_testkit::{Broker, DnsServer, Receiver, StaticSite, TestTopics};
use serde_json::json;

#[path = "cli/support.rs"]
mod support;
use support::{temp_dir, Cli};

/// The captured request as a raw head (`POST /path HTTP/1.1` and `name: value` lines), the
/// way a receiver would dump it.
fn raw_head(r: &hookline_testkit::Received) -> String {
    let mut s = format!("{} {} HTTP/1.1\n", r.method, r.path_and_query);
    for (k, v) in &r.headers {
        s.push_str(&format!("{k}: {v}\n"));
    }
    s
}

/// The secret part of a token, split where the token format says (a base64url secret may hold
/// `_` itself, so splitting at the last `_` found only a tail of it now and then).
fn secret_of(token: &str) -> &str {
    hookline_tokens::split(token)
        .expect("a token the API made has the token format")
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_the_admin_api_and_checks_signatures() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    let dir = temp_dir("cli");
    let key_path = dir.join("signing.pem");
    let dns = DnsServer::start().await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let dns_addr = dns.addr.to_string();
    let admin = start_admin(
        &t,
        &key_path,
        &[
            "--require-https",
            "false",
            "--allow-networks",
            "127.0.0.0/8",
            "--dns-resolver",
            &dns_addr,
        ],
        None,
        &shutdown,
    )
    .await;
    let cli = Cli::new(&t, admin, &dir);

    // Public keys need no token.
    let keys = cli.run(None, &["keys", "list", "--json"]).await.ok().json();
    let key_id = keys[0]["key_id"].as_str().unwrap().to_owned();
    let table = cli.run(None, &["keys", "list"]).await.ok().stdout;
    assert!(table.starts_with("KEY ID"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&key_id) && l.contains("(current)")),
        "{table}"
    );

    // Tokens, written straight to Kafka: shown once, listed without secrets or hashes.
    let created = cli
        .run(
            None,
            &[
                "tokens",
                "create",
                "--account",
                "1001",
                "--label",
                "cli-test",
            ],
        )
        .await
        .ok();
    let token = created.stdout.trim().to_owned();
    assert!(token.starts_with("hlt_"), "{}", created.stdout);
    assert!(
        created.stderr.contains("only time it is shown")
            && created.stderr.contains("not the token in clear"),
        "{}",
        created.stderr
    );
    let operator = cli
        .run(None, &["tokens", "create", "--operator"])
        .await
        .ok()
        .stdout
        .trim()
        .to_owned();
    let doomed = cli
        .run(
            None,
            &[
                "tokens",
                "create",
                "--account",
                "1001",
                "--label",
                "to-revoke",
            ],
        )
        .await
        .ok()
        .stdout
        .trim()
        .to_owned();
    let listed = cli.run(None, &["tokens", "list"]).await.ok().stdout;
    assert!(listed.starts_with("ID"), "{listed}");
    let token_id = token.split('_').nth(1).unwrap();
    assert!(
        listed.lines().any(|l| l.starts_with(token_id)
            && l.contains("account")
            && l.contains("1001")
            && l.contains("cli-test")),
        "{listed}"
    );
    assert!(listed.contains("operator"), "{listed}");
    let listed_json = cli
        .run(None, &["tokens", "list", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(listed_json["tokens"].as_array().unwrap().len(), 3);
    for tok in [&token, &operator, &doomed] {
        let hash = {
            use sha2::Digest;
            let d = sha2::Sha256::digest(secret_of(tok).as_bytes());
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        assert!(!listed.contains(&hash) && !listed.contains(secret_of(tok)));
        assert!(!listed_json.to_string().contains(&hash));
    }
    assert!(!listed_json.to_string().contains("secret"));

    // The API sees the new token a moment later.
    let empty = cli
        .until_ok(Some(&token), &["subscriptions", "list"])
        .await
        .stdout;
    assert_eq!(empty.trim(), "no subscriptions");

    // Create through the API: database 12 (JSON answer) and 13 (readable answer).
    let site = StaticSite::start().await;
    let a = cli
        .run(
            Some(&token),
            &[
                "subscriptions",
                "create",
                "--database",
                "12",
                "--url",
                &site.url("/hooks/in.php"),
                "--events",
                "click,open",
                "--format",
                "json",
                "--json",
            ],
        )
        .await
        .ok()
        .json();
    let a_id = a["id"].as_str().unwrap().to_owned();
    assert_eq!(a["status"], "unverified");
    let b = cli
        .run(
            Some(&token),
            &[
                "subscriptions",
                "create",
                "--database",
                "13",
                "--url",
                &site.url("/other/hook"),
                "--events",
                "update",
                "--triggers",
                "rest,import",
            ],
        )
        .await
        .ok()
        .stdout;
    assert!(b.starts_with("created subscription sub_"), "{b}");
    assert!(b.contains("Publish a file named hookline-"), "{b}");
    assert!(b.contains("triggers:") && b.contains("rest,import"), "{b}");

    // An API error reads clearly, with a nonzero exit and nothing on stdout.
    let bad = cli
        .run(
            Some(&token),
            &[
                "subscriptions",
                "create",
                "--database",
                "12",
                "--url",
                &site.url("/hooks/in.php"),
                "--events",
                "click,klik",
            ],
        )
        .await
        .fails(1);
    assert!(bad.stdout.is_empty(), "{}", bad.stdout);
    assert!(
        bad.stderr.starts_with("error: ")
            && bad.stderr.contains("klik")
            && bad.stderr.contains("(code invalid_request, field events"),
        "{}",
        bad.stderr
    );
    // A mistyped flag gets clap's suggestion; an unreachable API names the URL tried.
    let typo = cli
        .run(Some(&token), &["subscriptions", "list", "--databse", "12"])
        .await
        .fails(2);
    assert!(
        typo.stderr
            .contains("a similar argument exists: '--database'"),
        "{}",
        typo.stderr
    );
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let unreachable = cli
        .run(
            Some(&token),
            &[
                "subscriptions",
                "list",
                "--api-url",
                &format!("http://{closed}"),
            ],
        )
        .await
        .fails(1);
    assert!(
        unreachable
            .stderr
            .contains(&format!("http://{closed}/v1/subscriptions"))
            && unreachable.stderr.contains("--api-url"),
        "{}",
        unreachable.stderr
    );

    // List by database: as a table and as the API's JSON.
    let listed = cli
        .run(Some(&token), &["subscriptions", "list", "--database", "12"])
        .await
        .ok()
        .stdout;
    let mut lines = listed.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("DATABASE") && header.contains("STATUS"),
        "{listed}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{listed}");
    assert!(
        rows[0].starts_with(&a_id)
            && rows[0].contains("unverified")
            && rows[0].contains("click,open"),
        "{listed}"
    );
    let status_col = header.find("STATUS").unwrap();
    assert_eq!(
        &rows[0][status_col..status_col + 10],
        "unverified",
        "columns align:\n{listed}"
    );
    let listed = cli
        .run(
            Some(&token),
            &["subscriptions", "list", "--database", "12", "--json"],
        )
        .await
        .ok()
        .json();
    let subs = listed["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["id"], a_id.as_str());

    // Verification: first without the file (a clear failure with where to put it), then with.
    let got = cli
        .run(Some(&token), &["subscriptions", "get", &a_id, "--json"])
        .await
        .ok()
        .json();
    let file = got["verification"]["file"].as_str().unwrap().to_owned();
    let challenge = got["verification"]["token"].as_str().unwrap().to_owned();
    let shown = cli
        .run(Some(&token), &["subscriptions", "get", &a_id])
        .await
        .ok()
        .stdout;
    assert!(
        shown.contains(&file)
            && shown.contains(&challenge)
            && shown.contains("subscriptions verify"),
        "{shown}"
    );
    let failed = cli
        .run(Some(&token), &["subscriptions", "verify", &a_id])
        .await
        .fails(1);
    assert!(
        failed.stderr.contains("(code verification_failed)")
            && failed.stderr.contains(&site.url(&format!("/hooks/{file}"))),
        "{}",
        failed.stderr
    );
    site.serve(&format!("/hooks/{file}"), 200, challenge.clone());
    site.serve("/hooks/in.php", 200, "ok");
    let verified = cli
        .run(Some(&token), &["subscriptions", "verify", &a_id])
        .await
        .ok()
        .stdout;
    assert!(
        verified.contains("is verified") && verified.contains("active"),
        "{verified}"
    );

    // Pause and resume.
    let paused = cli
        .run(Some(&token), &["subscriptions", "pause", &a_id])
        .await
        .ok()
        .stdout;
    assert_eq!(paused.trim(), format!("subscription {a_id} is paused"));
    let got = cli
        .run(Some(&token), &["subscriptions", "get", &a_id, "--json"])
        .await
        .ok()
        .json();
    assert_eq!(got["status"], "paused");
    let resumed = cli
        .run(Some(&token), &["subscriptions", "resume", &a_id])
        .await
        .ok()
        .stdout;
    assert_eq!(resumed.trim(), format!("subscription {a_id} is active"));

    // Update changes only what is given (limits keep the other half).
    let updated = cli
        .run(
            Some(&token),
            &[
                "subscriptions",
                "update",
                &a_id,
                "--per-second",
                "5",
                "--json",
            ],
        )
        .await
        .ok()
        .json();
    assert_eq!(
        updated["limits"],
        json!({"max_in_flight": 8, "per_second": 5.0})
    );
    assert_eq!(updated["status"], "active");

    // A subscription written the operator way (straight to Kafka), to a recording receiver.
    let receiver = Receiver::start(200).await;
    let sub_file = cli.file(
        "sub.json",
        json!({"id": "sub-cli-receiver", "account": "1001", "database": "12", "events": ["click"],
               "url": receiver.url("/hook.php?src=cli"), "format": "json", "status": "active"})
        .to_string(),
    );
    let put = cli
        .run(None, &["subscriptions-topic", "put", &sub_file, "--allow-http"])
        .await
        .ok()
        .stdout;
    assert!(
        put.contains("subscription sub-cli-receiver written"),
        "{put}"
    );
    cli.until_ok(Some(&token), &["subscriptions", "get", "sub-cli-receiver"])
        .await;

    // A real test webhook, then its signature checked from the captured request.
    let tested = cli
        .run(
            Some(&token),
            &[
                "subscriptions",
                "test",
                "sub-cli-receiver",
                "--event",
                "click",
            ],
        )
        .await
        .ok()
        .stdout;
    assert!(tested.starts_with("delivered: HTTP 200"), "{tested}");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    let head = cli.file("request.head", raw_head(request));
    let body = cli.file("request.body", &request.body);

    let valid = cli
        .run(
            None,
            &[
                "verify-signature",
                "--headers-file",
                &head,
                "--body-file",
                &body,
            ],
        )
        .await
        .ok()
        .stdout;
    for check in [
        "Signature header",
        "signed headers present",
        "digest matches body",
        "date skew",
        "keyId known",
        "signature valid",
    ] {
        assert!(
            valid
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "{check} should pass:\n{valid}"
        );
    }
    assert!(
        valid.contains(&format!("VALID: signed by {key_id}")),
        "{valid}"
    );
    assert!(valid.contains("checking POST /hook.php?src=cli"), "{valid}");

    let mut tampered = request.body.to_vec();
    let at = tampered.iter().position(|b| *b == b'c').unwrap();
    tampered[at] = b'C';
    let tampered = cli.file("tampered.body", tampered);
    let invalid = cli
        .run(
            None,
            &[
                "verify-signature",
                "--headers-file",
                &head,
                "--body-file",
                &tampered,
            ],
        )
        .await
        .fails(1)
        .stdout;
    assert!(
        invalid
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("digest matches body")),
        "{invalid}"
    );
    assert!(
        invalid.contains("INVALID: digest matches body"),
        "{invalid}"
    );

    // The signed request line counts too; and a PEM file can stand in for the key URL.
    let wrong_path = cli
        .run(
            None,
            &[
                "verify-signature",
                "--headers-file",
                &head,
                "--body-file",
                &body,
                "--path",
                "/elsewhere",
            ],
        )
        .await
        .fails(1)
        .stdout;
    assert!(
        wrong_path
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("signature valid")),
        "{wrong_path}"
    );
    let pem = cli.file("public.pem", keys[0]["public_key_pem"].as_str().unwrap());
    let with_pem = cli
        .run(
            None,
            &[
                "verify-signature",
                "--headers-file",
                &head,
                "--body-file",
                &body,
                "--public-key",
                &pem,
                "--json",
            ],
        )
        .await
        .ok()
        .json();
    assert_eq!(with_pem["valid"], true, "{with_pem}");
    assert_eq!(with_pem["checks"].as_array().unwrap().len(), 6);

    // Check now: both verified endpoints answer, the unverified one is skipped.
    let checked = cli.run(Some(&token), &["check"]).await.ok().stdout;
    assert!(
        checked.contains("checked 2: 2 delivered, 0 failed, 1 skipped"),
        "{checked}"
    );
    assert_eq!(receiver.count(), 2);

    let attempts = cli
        .run(Some(&token), &["subscriptions", "attempts", &a_id])
        .await
        .ok()
        .stdout;
    assert!(attempts.contains("no attempts recorded"), "{attempts}");
    let replay = cli
        .run(
            Some(&token),
            &["subscriptions", "replay", &a_id, "--dry-run"],
        )
        .await
        .ok()
        .stdout;
    assert_eq!(
        replay.trim(),
        format!("would replay 0 dead-lettered deliveries of {a_id}")
    );

    // Domains: the TXT record to publish, a failed and a passed validation.
    let added = cli
        .run(
            Some(&token),
            &["domains", "add", "hooks.example.com", "--json"],
        )
        .await
        .ok()
        .json();
    let (name, value) = (
        added["record"]["name"].as_str().unwrap().to_owned(),
        added["record"]["value"].as_str().unwrap().to_owned(),
    );
    let not_yet = cli
        .run(Some(&token), &["domains", "validate", "hooks.example.com"])
        .await
        .fails(1);
    assert!(
        not_yet.stderr.contains("(code validation_failed)"),
        "{}",
        not_yet.stderr
    );
    dns.add_txt(&name, &value);
    let validated = cli
        .run(Some(&token), &["domains", "validate", "hooks.example.com"])
        .await
        .ok()
        .stdout;
    assert!(
        validated.contains("domain hooks.example.com is validated"),
        "{validated}"
    );
    let domains = cli
        .run(Some(&token), &["domains", "list"])
        .await
        .ok()
        .stdout;
    assert!(
        domains
            .lines()
            .any(|l| l.starts_with("hooks.example.com") && l.contains("validated")),
        "{domains}"
    );
    cli.run(Some(&token), &["domains", "delete", "hooks.example.com"])
        .await
        .ok();

    // Operator endpoints take the operator token only.
    let all = cli
        .run(Some(&operator), &["operator", "subscriptions"])
        .await
        .ok()
        .stdout;
    assert!(
        all.contains("ACCOUNT") && all.contains("sub-cli-receiver") && all.contains(&a_id),
        "{all}"
    );
    let refused = cli
        .run(Some(&token), &["operator", "subscriptions"])
        .await
        .fails(1);
    assert!(
        refused.stderr.contains("(code forbidden)"),
        "{}",
        refused.stderr
    );

    // Delete; then the id is gone.
    let deleted = cli
        .run(Some(&token), &["subscriptions", "delete", &a_id])
        .await
        .ok()
        .stdout;
    assert_eq!(deleted.trim(), format!("deleted subscription {a_id}"));
    let gone = cli
        .run(Some(&token), &["subscriptions", "get", &a_id])
        .await
        .fails(1);
    assert!(gone.stderr.contains("(code not_found)"), "{}", gone.stderr);

    // Revoke a token: the API refuses it shortly after.
    cli.until_ok(Some(&doomed), &["subscriptions", "list"])
        .await;
    let doomed_id = doomed.split('_').nth(1).unwrap();
    let revoked = cli
        .run(None, &["tokens", "revoke", doomed_id])
        .await
        .ok()
        .stdout;
    assert_eq!(revoked.trim(), format!("revoked token {doomed_id}"));
    let started = Instant::now();
    loop {
        let r = cli.run(Some(&doomed), &["subscriptions", "list"]).await;
        if r.code == 1 && r.stderr.contains("(code unauthorized)") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the revoked token still works"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // No command printed a token it was given (only `tokens create` shows the new one).
    let outputs = cli.outputs.lock().unwrap();
    for tok in [&token, &operator, &doomed] {
        let printed = outputs
            .iter()
            .filter(|o| o.contains(secret_of(tok)))
            .count();
        assert_eq!(
            printed, 1,
            "the secret of a token was printed {printed} times"
        );
    }
    drop(outputs);

    shutdown.cancel();
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
