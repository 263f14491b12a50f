//! The `hookline` command as people run it: the built binary, against a live admin API on a
//! real local broker, with real endpoints on loopback (a file-serving site for URL
//! verification, a recording receiver for test webhooks, a DNS server for domains).
//! (`make test` builds the binaries before the tests; alone: `cargo build -p hookline-cli`.)
//!
//! One broker and admin API serve a sequence of named scenarios, in the order a person meets
//! them; a scenario hands what the next ones need (tokens, ids, the captured request) on.

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

/// What every scenario uses: the broker, the admin API, a DNS server on loopback and the CLI.
struct World {
    _broker: Broker,
    dir: std::path::PathBuf,
    dns: DnsServer,
    shutdown: tokio_util::sync::CancellationToken,
    cli: Cli,
}

impl World {
    async fn start() -> Self {
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
        World {
            _broker: broker,
            dir,
            dns,
            shutdown,
            cli,
        }
    }

    fn stop(self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(Path::new(&self.dir));
    }
}

/// The tokens `tokens create` made: an account's, an operator's, and one to revoke.
struct Tokens {
    account: String,
    operator: String,
    doomed: String,
}

/// A test webhook as the receiver got it, saved for `verify-signature`.
struct Captured {
    head: String,
    body: String,
    request_body: Vec<u8>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_the_admin_api_and_checks_signatures() {
    let w = World::start().await;
    let cli = &w.cli;
    let keys = public_keys_need_no_token(cli).await;
    let key_id = keys[0]["key_id"].as_str().unwrap().to_owned();
    let tokens = tokens_are_shown_once_and_listed_without_secrets(cli).await;
    let token = tokens.account.as_str();
    the_api_sees_a_new_token_a_moment_later(cli, token).await;
    let site = StaticSite::start().await;
    let a_id = subscriptions_are_created_through_the_api(cli, token, &site).await;
    an_api_error_reads_clearly(cli, token, &site).await;
    a_mistyped_flag_or_an_unreachable_api_says_what_to_fix(cli, token).await;
    lists_by_database_as_a_table_and_as_json(cli, token, &a_id).await;
    verification_fails_clearly_then_passes_with_the_file(cli, token, &site, &a_id).await;
    pause_and_resume(cli, token, &a_id).await;
    update_changes_only_what_is_given(cli, token, &a_id).await;
    let receiver = Receiver::start(200).await;
    a_subscription_written_straight_to_kafka(cli, token, &receiver).await;
    let captured =
        a_test_webhook_verifies_from_the_captured_request(cli, token, &receiver, &key_id).await;
    a_tampered_body_fails_the_digest(cli, &captured).await;
    the_request_line_is_signed_and_a_pem_can_stand_in(cli, &captured, &keys).await;
    check_now_attempts_and_replay(cli, token, &receiver, &a_id).await;
    domains_are_validated_by_their_txt_record(cli, token, &w.dns).await;
    operator_endpoints_take_the_operator_token_only(cli, &tokens, &a_id).await;
    a_deleted_subscription_is_gone(cli, token, &a_id).await;
    a_revoked_token_is_refused_shortly_after(cli, &tokens.doomed).await;
    no_command_printed_a_token_it_was_given(cli, &tokens);
    w.stop();
}

/// Public keys need no token.
async fn public_keys_need_no_token(cli: &Cli) -> serde_json::Value {
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
    keys
}

/// Tokens, written straight to Kafka: shown once, listed without secrets or hashes.
async fn tokens_are_shown_once_and_listed_without_secrets(cli: &Cli) -> Tokens {
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
    Tokens {
        account: token,
        operator,
        doomed,
    }
}

async fn the_api_sees_a_new_token_a_moment_later(cli: &Cli, token: &str) {
    let empty = cli
        .until_ok(Some(token), &["subscriptions", "list"])
        .await
        .stdout;
    assert_eq!(empty.trim(), "no subscriptions");
}

/// Create through the API: database 12 (JSON answer) and 13 (readable answer).
async fn subscriptions_are_created_through_the_api(
    cli: &Cli,
    token: &str,
    site: &StaticSite,
) -> String {
    let a = cli
        .run(
            Some(token),
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
            Some(token),
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
    a_id
}

/// An API error reads clearly, with a nonzero exit and nothing on stdout.
async fn an_api_error_reads_clearly(cli: &Cli, token: &str, site: &StaticSite) {
    let bad = cli
        .run(
            Some(token),
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
}

/// A mistyped flag gets clap's suggestion; an unreachable API names the URL tried.
async fn a_mistyped_flag_or_an_unreachable_api_says_what_to_fix(cli: &Cli, token: &str) {
    let typo = cli
        .run(Some(token), &["subscriptions", "list", "--databse", "12"])
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
            Some(token),
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
}

/// List by database: as a table and as the API's JSON.
async fn lists_by_database_as_a_table_and_as_json(cli: &Cli, token: &str, a_id: &str) {
    let listed = cli
        .run(Some(token), &["subscriptions", "list", "--database", "12"])
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
        rows[0].starts_with(a_id)
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
            Some(token),
            &["subscriptions", "list", "--database", "12", "--json"],
        )
        .await
        .ok()
        .json();
    let subs = listed["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["id"], a_id);
}

/// Verification: first without the file (a clear failure with where to put it), then with.
async fn verification_fails_clearly_then_passes_with_the_file(
    cli: &Cli,
    token: &str,
    site: &StaticSite,
    a_id: &str,
) {
    let got = cli
        .run(Some(token), &["subscriptions", "get", a_id, "--json"])
        .await
        .ok()
        .json();
    let file = got["verification"]["file"].as_str().unwrap().to_owned();
    let challenge = got["verification"]["token"].as_str().unwrap().to_owned();
    let shown = cli
        .run(Some(token), &["subscriptions", "get", a_id])
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
        .run(Some(token), &["subscriptions", "verify", a_id])
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
        .run(Some(token), &["subscriptions", "verify", a_id])
        .await
        .ok()
        .stdout;
    assert!(
        verified.contains("is verified") && verified.contains("active"),
        "{verified}"
    );
}

async fn pause_and_resume(cli: &Cli, token: &str, a_id: &str) {
    let paused = cli
        .run(Some(token), &["subscriptions", "pause", a_id])
        .await
        .ok()
        .stdout;
    assert_eq!(paused.trim(), format!("subscription {a_id} is paused"));
    let got = cli
        .run(Some(token), &["subscriptions", "get", a_id, "--json"])
        .await
        .ok()
        .json();
    assert_eq!(got["status"], "paused");
    let resumed = cli
        .run(Some(token), &["subscriptions", "resume", a_id])
        .await
        .ok()
        .stdout;
    assert_eq!(resumed.trim(), format!("subscription {a_id} is active"));
}

/// Update changes only what is given (limits keep the other half).
async fn update_changes_only_what_is_given(cli: &Cli, token: &str, a_id: &str) {
    let updated = cli
        .run(
            Some(token),
            &[
                "subscriptions",
                "update",
                a_id,
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
}

/// A subscription written the operator way (straight to Kafka), to a recording receiver.
async fn a_subscription_written_straight_to_kafka(cli: &Cli, token: &str, receiver: &Receiver) {
    let sub_file = cli.file(
        "sub.json",
        json!({"id": "sub-cli-receiver", "account": "1001", "database": "12", "events": ["click"],
               "url": receiver.url("/hook.php?src=cli"), "format": "json", "status": "active"})
        .to_string(),
    );
    let put = cli
        .run(
            None,
            &["subscriptions-topic", "put", &sub_file, "--allow-http"],
        )
        .await
        .ok()
        .stdout;
    assert!(
        put.contains("subscription sub-cli-receiver written"),
        "{put}"
    );
    cli.until_ok(Some(token), &["subscriptions", "get", "sub-cli-receiver"])
        .await;
}

/// A real test webhook, then its signature checked from the captured request.
async fn a_test_webhook_verifies_from_the_captured_request(
    cli: &Cli,
    token: &str,
    receiver: &Receiver,
    key_id: &str,
) -> Captured {
    let tested = cli
        .run(
            Some(token),
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
    Captured {
        head,
        body,
        request_body: request.body.to_vec(),
    }
}

/// A body changed after signing fails the digest check.
async fn a_tampered_body_fails_the_digest(cli: &Cli, captured: &Captured) {
    let mut tampered = captured.request_body.clone();
    let at = tampered.iter().position(|b| *b == b'c').unwrap();
    tampered[at] = b'C';
    let tampered = cli.file("tampered.body", tampered);
    let invalid = cli
        .run(
            None,
            &[
                "verify-signature",
                "--headers-file",
                &captured.head,
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
}

/// The signed request line counts too; and a PEM file can stand in for the key URL.
async fn the_request_line_is_signed_and_a_pem_can_stand_in(
    cli: &Cli,
    captured: &Captured,
    keys: &serde_json::Value,
) {
    let wrong_path = cli
        .run(
            None,
            &[
                "verify-signature",
                "--headers-file",
                &captured.head,
                "--body-file",
                &captured.body,
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
                &captured.head,
                "--body-file",
                &captured.body,
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
}

/// Check now: both verified endpoints answer, the unverified one is skipped; no attempts
/// and nothing to replay for the first subscription.
async fn check_now_attempts_and_replay(cli: &Cli, token: &str, receiver: &Receiver, a_id: &str) {
    let checked = cli.run(Some(token), &["check"]).await.ok().stdout;
    assert!(
        checked.contains("checked 2: 2 delivered, 0 failed, 1 skipped"),
        "{checked}"
    );
    assert_eq!(receiver.count(), 2);

    let attempts = cli
        .run(Some(token), &["subscriptions", "attempts", a_id])
        .await
        .ok()
        .stdout;
    assert!(attempts.contains("no attempts recorded"), "{attempts}");
    let replay = cli
        .run(Some(token), &["subscriptions", "replay", a_id, "--dry-run"])
        .await
        .ok()
        .stdout;
    assert_eq!(
        replay.trim(),
        format!("would replay 0 dead-lettered deliveries of {a_id}")
    );
}

/// Domains: the TXT record to publish, a failed and a passed validation.
async fn domains_are_validated_by_their_txt_record(cli: &Cli, token: &str, dns: &DnsServer) {
    let added = cli
        .run(
            Some(token),
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
        .run(Some(token), &["domains", "validate", "hooks.example.com"])
        .await
        .fails(1);
    assert!(
        not_yet.stderr.contains("(code validation_failed)"),
        "{}",
        not_yet.stderr
    );
    dns.add_txt(&name, &value);
    let validated = cli
        .run(Some(token), &["domains", "validate", "hooks.example.com"])
        .await
        .ok()
        .stdout;
    assert!(
        validated.contains("domain hooks.example.com is validated"),
        "{validated}"
    );
    let domains = cli.run(Some(token), &["domains", "list"]).await.ok().stdout;
    assert!(
        domains
            .lines()
            .any(|l| l.starts_with("hooks.example.com") && l.contains("validated")),
        "{domains}"
    );
    cli.run(Some(token), &["domains", "delete", "hooks.example.com"])
        .await
        .ok();
}

/// Operator endpoints take the operator token only.
async fn operator_endpoints_take_the_operator_token_only(cli: &Cli, tokens: &Tokens, a_id: &str) {
    let all = cli
        .run(Some(&tokens.operator), &["operator", "subscriptions"])
        .await
        .ok()
        .stdout;
    assert!(
        all.contains("ACCOUNT") && all.contains("sub-cli-receiver") && all.contains(a_id),
        "{all}"
    );
    let refused = cli
        .run(Some(&tokens.account), &["operator", "subscriptions"])
        .await
        .fails(1);
    assert!(
        refused.stderr.contains("(code forbidden)"),
        "{}",
        refused.stderr
    );
}

/// Delete; then the id is gone.
async fn a_deleted_subscription_is_gone(cli: &Cli, token: &str, a_id: &str) {
    let deleted = cli
        .run(Some(token), &["subscriptions", "delete", a_id])
        .await
        .ok()
        .stdout;
    assert_eq!(deleted.trim(), format!("deleted subscription {a_id}"));
    let gone = cli
        .run(Some(token), &["subscriptions", "get", a_id])
        .await
        .fails(1);
    assert!(gone.stderr.contains("(code not_found)"), "{}", gone.stderr);
}

/// Revoke a token: the API refuses it shortly after.
async fn a_revoked_token_is_refused_shortly_after(cli: &Cli, doomed: &str) {
    cli.until_ok(Some(doomed), &["subscriptions", "list"]).await;
    let doomed_id = doomed.split('_').nth(1).unwrap();
    let revoked = cli
        .run(None, &["tokens", "revoke", doomed_id])
        .await
        .ok()
        .stdout;
    assert_eq!(revoked.trim(), format!("revoked token {doomed_id}"));
    let started = Instant::now();
    loop {
        let r = cli.run(Some(doomed), &["subscriptions", "list"]).await;
        if r.code == 1 && r.stderr.contains("(code unauthorized)") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the revoked token still works"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// No command printed a token it was given (only `tokens create` shows the new one).
fn no_command_printed_a_token_it_was_given(cli: &Cli, tokens: &Tokens) {
    let outputs = cli.outputs.lock().unwrap();
    for tok in [&tokens.account, &tokens.operator, &tokens.doomed] {
        let printed = outputs
            .iter()
            .filter(|o| o.contains(secret_of(tok)))
            .count();
        assert_eq!(
            printed, 1,
            "the secret of a token was printed {printed} times"
        );
    }
}
