//! The `hookline` command for what the API gained: the verification file downloaded under
//! its configured name and published to verify; conditions sent and shown in their text form;
//! database settings; shell completions and manual pages. The built binary against a live admin API on
//! the real local broker (`cargo build -p hookline-cli` first).

use hookline_integration_tests::{key_path, start_admin};
use hookline_testkit::{Broker, StaticSite, TestTopics};

#[path = "cli/support.rs"]
mod support;
use support::{temp_dir, Cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_downloads_the_verification_file_and_speaks_conditions_as_text() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let admin = start_admin(
        &t,
        &key_path("api-cli"),
        &[
            "--require-https",
            "false",
            "--allow-networks",
            "127.0.0.0/8",
            "--verification-prefix",
            "acme",
        ],
        None,
        &shutdown,
    )
    .await;
    let dir = temp_dir("api-cli");
    let cli = Cli::new(&t, admin, &dir);
    let token = cli.account_token("1001").await;
    let tok = Some(token.as_str());
    let site = StaticSite::start().await;
    let url = site.url("/hooks/in.php");

    let created = cli
        .until_ok(
            tok,
            &[
                "--json",
                "subscriptions",
                "create",
                "--database",
                "12",
                "--events",
                "click",
                "--url",
                &url,
            ],
        )
        .await
        .json();
    let id = created["id"].as_str().unwrap();
    let name = created["verification"]["file"].as_str().unwrap();
    assert!(
        name.starts_with("acme-") && name.ends_with(".txt"),
        "{name}"
    );

    let dl = dir.join("download");
    std::fs::create_dir_all(&dl).unwrap();
    let run = cli
        .run(
            tok,
            &[
                "subscriptions",
                "verification-file",
                id,
                "--dir",
                dl.to_str().unwrap(),
            ],
        )
        .await
        .ok();
    let path = dl.join(name);
    assert!(
        run.stdout.contains(&path.display().to_string()),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&site.url(&format!("/hooks/{name}"))),
        "{}",
        run.stdout
    );
    let content = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        content.trim(),
        created["verification"]["token"].as_str().unwrap()
    );

    site.serve(&format!("/hooks/{name}"), 200, content);
    let verified = cli.run(tok, &["subscriptions", "verify", id]).await.ok();
    assert!(
        verified.stdout.contains("is verified"),
        "{}",
        verified.stdout
    );
    // Conditions are sent in their text form and shown in it.
    let text = r#"name contains "Mike" and (interest vip or signup after -30d)"#;
    cli.run(tok, &["subscriptions", "update", id, "--condition", text])
        .await
        .ok();
    let shown = cli.run(tok, &["subscriptions", "get", id]).await.ok();
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.starts_with("conditions:") && l.ends_with(text)),
        "{}",
        shown.stdout
    );
    let wrong = cli
        .run(
            tok,
            &[
                "subscriptions",
                "update",
                id,
                "--condition",
                "name contians x",
            ],
        )
        .await
        .fails(1);
    assert!(
        wrong
            .stderr
            .contains("line 1, column 6: unknown operator `contians`"),
        "{}",
        wrong.stderr
    );

    // Database settings: set, shown, listed, removed; a bad field name says which option.
    let set = cli
        .run(
            tok,
            &[
                "databases",
                "set",
                "12",
                "--email-field",
                "emailaddress",
                "--name",
                "Newsletter NL",
            ],
        )
        .await
        .ok();
    assert!(
        set.stdout
            .lines()
            .any(|l| l.starts_with("e-mail field:") && l.ends_with("emailaddress")),
        "{}",
        set.stdout
    );
    let listed = cli.run(tok, &["databases", "list"]).await.ok();
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.starts_with("12 ") && l.contains("Newsletter NL")),
        "{}",
        listed.stdout
    );
    let bad = cli
        .run(tok, &["databases", "set", "12", "--email-field", ""])
        .await
        .fails(1);
    assert!(bad.stderr.contains("field email_field"), "{}", bad.stderr);
    cli.run(tok, &["databases", "delete", "12"]).await.ok();
    let gone = cli.run(tok, &["databases", "get", "12"]).await.fails(1);
    assert!(gone.stderr.contains("not_found"), "{}", gone.stderr);

    // Past `tokens create`, which prints it once, no output shows the token.
    for out in cli.outputs.lock().unwrap().iter().skip(2) {
        assert!(!out.contains(&token), "the token leaked: {out}");
    }
    shutdown.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn completions_and_manual_pages_describe_every_command() {
    let bin = hookline_integration_tests::binary("hookline");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&bin)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "hookline {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = run(&["completions", shell]);
        assert!(
            script.contains("verification-file") && script.contains("condition-file"),
            "{shell}: the script knows the newest subcommand and option"
        );
    }
    let page = run(&["man"]);
    assert!(page.contains(".TH hookline 1"), "{page}");
    let dir = temp_dir("api-cli-man");
    let said = run(&["man", "--dir", dir.to_str().unwrap()]);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert!(
        said.contains(&format!("wrote {} manual pages", pages.len())),
        "{said}"
    );
    for expected in [
        "hookline.1",
        "hookline-subscriptions.1",
        "hookline-subscriptions-create.1",
        "hookline-subscriptions-verification-file.1",
        "hookline-completions.1",
    ] {
        assert!(
            pages.contains(&expected.to_owned()),
            "{expected} missing: {pages:?}"
        );
    }
    let create = std::fs::read_to_string(dir.join("hookline-subscriptions-create.1")).unwrap();
    assert!(
        create.contains("condition"),
        "the create page lists its options"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
