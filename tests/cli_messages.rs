//! What the `hookline` command tells a newcomer when something is off: each message says what
//! is wrong and what to do, and the admin's `/metrics` counts what it holds. The built binary
//! against a live admin API on a real local broker, with a file-serving site on loopback.
//! (`make test` builds the binaries before the tests; alone: `cargo build -p hookline-cli`.)

use hookline_integration_tests::{binary, produce, start_admin, Pipeline};
use hookline_telemetry::Metrics;
use hookline_testkit::{Broker, Receiver, StaticSite, TestTopics};
use serde_json::json;

#[path = "cli/support.rs"]
mod support;
use support::{temp_dir, Cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_says_what_is_wrong_and_what_to_do() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    let dir = temp_dir("cli-messages");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let metrics = Metrics::new();
    let admin = start_admin(
        &t,
        &dir.join("signing.pem"),
        &[
            "--require-https",
            "false",
            "--allow-networks",
            "127.0.0.0/8",
        ],
        Some(metrics.clone()),
        &shutdown,
    )
    .await;
    let cli = Cli::new(&t, admin, &dir);
    let token = cli.account_token("1001").await;
    cli.until_ok(Some(&token), &["subscriptions", "list"]).await;

    // A URL the network guard will never let the sender reach is refused at creation, with
    // the reason (it was accepted, and `get` suggested `hookline domains add` for it).
    let refused = cli
        .run(
            Some(&token),
            &[
                "subscriptions",
                "create",
                "--database",
                "12",
                "--events",
                "click",
                "--url",
                "http://10.1.2.3/x.php",
            ],
        )
        .await
        .fails(1);
    assert!(
        refused.stderr.contains("10.1.2.3 is a private address")
            && refused.stderr.contains("HOOKLINE_ALLOW_NETWORKS")
            && refused.stderr.contains("would never send to this URL")
            && refused.stderr.contains("field url"),
        "{}",
        refused.stderr
    );

    // An unverified subscription on an IP address: verify by file, and no `domains add`,
    // which covers domain names only.
    let site = StaticSite::start().await;
    let created = cli
        .run(
            Some(&token),
            &[
                "subscriptions",
                "create",
                "--database",
                "12",
                "--events",
                "click",
                "--url",
                &site.url("/hooks/in.php"),
            ],
        )
        .await
        .ok()
        .stdout;
    assert!(
        created.contains("hookline subscriptions verify sub_")
            && created.contains("no domain validation covers")
            && !created.contains("domains add"),
        "{created}"
    );
    let id = created
        .split_whitespace()
        .nth(2)
        .expect("created subscription <id>")
        .to_owned();

    // A verification file that is there with the wrong content is not "not found".
    let got = cli
        .run(Some(&token), &["subscriptions", "get", &id, "--json"])
        .await
        .ok()
        .json();
    let file = got["verification"]["file"].as_str().unwrap().to_owned();
    site.serve(&format!("/hooks/{file}"), 200, "a stale token");
    let wrong = cli
        .run(Some(&token), &["subscriptions", "verify", &id])
        .await
        .fails(1);
    assert!(
        wrong
            .stderr
            .contains("the verification file was found, but its content is not the token")
            && wrong.stderr.contains("\"a stale token\""),
        "{}",
        wrong.stderr
    );

    // `get` shows the sender's circuit state of the endpoint: none recorded yet, then open
    // once the sender writes that it is (here the record the sender writes, produced as is).
    let shown = cli
        .run(Some(&token), &["subscriptions", "get", &id])
        .await
        .ok()
        .stdout;
    assert!(
        shown.contains("circuit:") && shown.contains("closed (no failure recorded)"),
        "{shown}"
    );
    produce(
        &t,
        &t.topics.endpoint_health,
        &[(
            id.clone(),
            json!({"subscription_id": id, "state": "open", "failing_since": "2026-12-02T09:58:00Z",
                   "opened_at": "2026-12-02T10:00:00Z", "open_until": "2026-12-02T10:00:30Z",
                   "cool_down_ms": 30000, "updated_at": "2026-12-02T10:00:00Z"}),
        )],
    )
    .await;
    let started = std::time::Instant::now();
    loop {
        let shown = cli
            .run(Some(&token), &["subscriptions", "get", &id])
            .await
            .ok()
            .stdout;
        if shown.contains("open until 2026-12-02T10:00:30Z") {
            assert!(
                shown.contains("failing since 2026-12-02T09:58:00Z"),
                "{shown}"
            );
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the circuit state never showed:\n{shown}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // The admin's /metrics counts the subscriptions it holds (it said 0).
    cli.run(
        Some(&token),
        &[
            "subscriptions",
            "create",
            "--database",
            "13",
            "--events",
            "open",
            "--url",
            &site.url("/other"),
        ],
    )
    .await
    .ok();
    assert_eq!(metrics.subscriptions.get(), 2);

    // `subscriptions-topic put` of an http:// URL names the flag that allows it.
    let sub_file = cli.file(
        "sub.json",
        json!({"id": "sub-http", "account": "1001", "database": "12", "events": ["click"],
               "url": "http://127.0.0.1:8080/in.php", "status": "active"})
        .to_string(),
    );
    let put = cli
        .run(None, &["subscriptions-topic", "put", &sub_file])
        .await
        .fails(1);
    assert!(
        put.stderr.contains("must use https://") && put.stderr.contains("--allow-http"),
        "{}",
        put.stderr
    );
    // Its old name, `subscription`, still works and says which name to use instead.
    let old = cli
        .run(None, &["subscription", "put", &sub_file])
        .await
        .fails(1);
    assert!(
        old.stderr.contains("`hookline subscription` is deprecated")
            && old.stderr.contains("`hookline subscriptions-topic`")
            && old.stderr.contains("must use https://"),
        "{}",
        old.stderr
    );

    // A mistyped HOOKLINE_* variable gets the closest name, as the stages do; and what goes
    // to a pipe or a file is plain text, without colour codes.
    let typo = cli
        .run_env(None, &["keys", "list"], &[("HOOKLINE_API_URLL", "x")])
        .await
        .ok();
    assert!(
        typo.stderr.contains(
            "environment variable HOOKLINE_API_URLL is not a Hookline setting; did you mean HOOKLINE_API_URL?"
        ),
        "{}",
        typo.stderr
    );
    assert!(!typo.stderr.contains('\u{1b}'), "{:?}", typo.stderr);

    shutdown.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--help` of an API command listed the Kafka options and `--metrics-addr`, and the Kafka
/// commands listed `--token`: each now shows the options it uses.
#[test]
fn each_command_lists_the_options_it_uses() {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(binary("hookline"))
            .args(args)
            .arg("--help")
            .env_remove("HOOKLINE_TOKEN")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?} --help failed");
        String::from_utf8(out.stdout).unwrap()
    };
    for api in [
        &["subscriptions", "list"][..],
        &["check"],
        &["domains", "add"],
        &["keys", "list"],
        &["verify-signature"],
    ] {
        let text = help(api);
        assert!(text.contains("--api-url"), "{api:?}:\n{text}");
        for kafka in ["--brokers", "--topic-prefix", "--kafka ", "--metrics-addr"] {
            assert!(!text.contains(kafka), "{api:?} lists {kafka}:\n{text}");
        }
    }
    for kafka in [
        &["tokens", "create"][..],
        &["topics", "create"],
        &["subscriptions-topic", "put"],
        &["produce"],
        &["replay"],
        &["demo", "seed"],
    ] {
        let text = help(kafka);
        assert!(text.contains("--brokers"), "{kafka:?}:\n{text}");
        for api in ["--token", "--api-url", "--metrics-addr"] {
            assert!(!text.contains(api), "{kafka:?} lists {api}:\n{text}");
        }
    }
    // Still accepted where they are not shown: one environment may serve every command.
    let out = std::process::Command::new(binary("hookline"))
        .args(["keys", "list", "--brokers", "127.0.0.1:1", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// A stage started with no broker to reach ended with librdkafka's `Meta data fetch error:
/// BrokerTransportFailure`, naming neither the address it tried nor the setting; and its log,
/// written to a pipe or a file, carried colour codes. Every stage, at once.
#[test]
fn a_stage_without_a_broker_names_the_address_and_the_setting() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = temp_dir("no-broker");
    let stages = [
        "hookline-tracking",
        "hookline-profiles",
        "hookline-sender",
        "hookline-admin",
    ];
    let mut children: Vec<_> = stages
        .iter()
        .map(|stage| {
            // A file, not a pipe: nobody reads while the stages run, and a full pipe would
            // block their logging.
            let log = std::fs::File::create(dir.join(format!("{stage}.log"))).unwrap();
            std::process::Command::new(binary(stage))
                .env("HOOKLINE_BROKERS", closed.to_string())
                .env("HOOKLINE_METRICS_ADDR", "off")
                .env("HOOKLINE_ADMIN_ADDR", "127.0.0.1:0")
                .env("HOOKLINE_STATE_DIR", dir.join(format!("{stage}-state")))
                .env("HOOKLINE_SIGNING_KEY", dir.join(format!("{stage}.pem")))
                .env("RUST_BACKTRACE", "0")
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        if std::time::Instant::now() > deadline {
            for c in &mut children {
                let _ = c.kill();
            }
            panic!("a stage without a broker did not give up within 90 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for (stage, mut child) in stages.iter().zip(children) {
        let status = child.wait().unwrap();
        let stderr = std::fs::read_to_string(dir.join(format!("{stage}.log"))).unwrap();
        assert_eq!(status.code(), Some(1), "{stage}: {stderr}");
        assert!(
            stderr.contains(&format!("no Kafka broker answered at {closed}"))
                && stderr.contains("check --brokers (HOOKLINE_BROKERS)"),
            "{stage}: {stderr}"
        );
        assert!(!stderr.contains('\u{1b}'), "{stage}: {stderr:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `attempts` did not say when a failed delivery would be tried again: the sender now records
/// it in the outcome (`next_attempt_at`), and the table shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_show_when_the_next_retry_is_due() {
    let f = FailingEndpoint::start(
        "sub-failing",
        "cli-next-attempt",
        &["--retry-schedule", "1h"],
    )
    .await;
    let (cli, token, pipeline, dir) = (&f.cli, f.token.clone(), f.pipeline, f.dir.clone());
    let started = std::time::Instant::now();
    let table = loop {
        let shown = cli
            .run(Some(&token), &["subscriptions", "attempts", "sub-failing"])
            .await
            .ok()
            .stdout;
        if shown.contains("retrying") {
            break shown;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no failed attempt recorded:\n{shown}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    let header = table.lines().next().unwrap();
    let column = header.find("NEXT ATTEMPT").expect("a NEXT ATTEMPT column");
    let row = table.lines().find(|l| l.contains("retrying")).unwrap();
    let next = row[column..].split_whitespace().next().unwrap();
    let next = hookline_model::timefmt::parse(next)
        .unwrap_or_else(|| panic!("{next:?} is not a time:\n{table}"));
    let now = hookline_model::timefmt::parse(&hookline_model::timefmt::now_rfc3339()).unwrap();
    let wait = (next - now).whole_minutes();
    assert!(
        (30..=90).contains(&wait),
        "the next attempt of a 1h schedule is due in {wait} min:\n{table}"
    );
    pipeline.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A replayed dead letter looked like any other delivery in `attempts`: its attempts are now
/// marked `(replayed)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_dead_letter_is_marked_in_attempts() {
    let f = FailingEndpoint::start("sub-dead", "cli-replayed", &["--max-attempts", "1"]).await;
    let (cli, token, pipeline, dir) = (&f.cli, f.token.clone(), f.pipeline, f.dir.clone());
    let attempts_until = |needle: &'static str| {
        let cli = &cli;
        let token = token.clone();
        async move {
            let started = std::time::Instant::now();
            loop {
                let shown = cli
                    .run(Some(&token), &["subscriptions", "attempts", "sub-dead"])
                    .await
                    .ok()
                    .stdout;
                if shown.contains(needle) {
                    return shown;
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(60),
                    "no {needle} attempt:\n{shown}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
        }
    };
    let dead = attempts_until("dead-lettered").await;
    assert!(!dead.contains("(replayed)"), "{dead}");

    f.endpoint.set_default_status(200);
    let replayed = cli
        .run(Some(&token), &["subscriptions", "replay", "sub-dead"])
        .await
        .ok()
        .stdout;
    assert!(replayed.contains("replayed 1"), "{replayed}");
    let table = attempts_until("delivered").await;
    let row = |result: &str| table.lines().find(|l| l.contains(result)).unwrap();
    assert!(row("delivered").contains("1 (replayed)"), "{table}");
    assert!(!row("dead-lettered").contains("(replayed)"), "{table}");
    pipeline.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// One subscription of account 1001 whose endpoint answers 500, the pipeline (sender flags
/// `sender_args`), the CLI with an account token, and one click for the subscription produced.
struct FailingEndpoint {
    _broker: Broker,
    _topics: TestTopics,
    endpoint: Receiver,
    pipeline: Pipeline,
    cli: Cli,
    token: String,
    dir: std::path::PathBuf,
}

impl FailingEndpoint {
    async fn start(sub: &str, dir: &str, sender_args: &[&str]) -> Self {
        let broker = Broker::start();
        let t = TestTopics::create(&broker.bootstrap, 1).await;
        let endpoint = Receiver::start(500).await;
        produce(
            &t,
            &t.topics.subscriptions,
            &[(
                sub.into(),
                json!({"id": sub, "account": "1001", "database": "12", "events": ["click"],
                       "url": endpoint.url("/hook"), "format": "json", "status": "active"}),
            )],
        )
        .await;
        let dir = temp_dir(dir);
        let pipeline = Pipeline::start(&t, &dir.join("signing.pem"), sender_args).await;
        let cli = Cli::new(&t, pipeline.admin, &dir);
        let token = cli.account_token("1001").await;
        cli.until_ok(Some(&token), &["subscriptions", "get", sub])
            .await;
        let event = format!("evt-{sub}-1");
        produce(
            &t,
            &t.topics.tracking,
            &[(
                "12:4711".into(),
                json!({"id": event, "type": "click", "account": "1001", "database": "12",
                       "profile": "4711", "timestamp": "2026-12-02T10:00:00Z"}),
            )],
        )
        .await;
        Self {
            _broker: broker,
            _topics: t,
            endpoint,
            pipeline,
            cli,
            token,
            dir,
        }
    }
}
