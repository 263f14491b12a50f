//! Bounded profile rows, on a real local broker with the real profiles stage: a profile keeps at
//! most `--max-subprofiles` subprofiles per collection (the least recently modified leave its
//! row), and a change whose row would not fit in one table record (`--max-table-record-bytes`)
//! is quarantined with reason `too-large` while the stage goes on with the next change.

use std::time::Duration;

use clap::Parser;
use hookline_integration_tests::{committed_and_end, count, produce, read_to_end};
use hookline_telemetry::{Metrics, Readiness};
use hookline_testkit::topics::json;
use hookline_testkit::{eventually, Broker, TestTopics};
use rdkafka::message::Message;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

fn change(profile: &str, minute: u32, fields: Value) -> Value {
    json!({"id": format!("chg-{profile}-{minute}"), "account": "1001", "database": "12",
           "profile": profile, "collection": null, "subprofile": null, "action": "create",
           "trigger": "rest", "timestamp": format!("2026-11-25T10:{minute:02}:00Z"),
           "parameters": {}, "fields": fields, "interests": []})
}

fn subprofile(n: u32) -> Value {
    let mut c = change("4711", n, json!({"order": format!("A-{n}")}));
    c["id"] = json!(format!("chg-sub-{n}"));
    c["collection"] = json!("3");
    c["subprofile"] = json!(n.to_string());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rows_keep_their_newest_subprofiles_and_a_row_too_large_is_quarantined() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let state =
        std::env::temp_dir().join(format!("hookline-rows-{}", t.prefix.trim_end_matches('.')));
    let args = hookline_profiles::ProfilesArgs::parse_from([
        "hookline-profiles",
        "--brokers",
        &t.settings.brokers,
        "--topic-prefix",
        &t.prefix,
        "--metrics-addr",
        "off",
        "--kafka",
        "session.timeout.ms=6000",
        "--require-https",
        "false",
        "--state-dir",
        state.to_str().unwrap(),
        "--max-record-bytes",
        "65536",
        "--max-subprofiles",
        "3",
        "--max-table-record-bytes",
        "8000",
    ]);
    let (metrics, shutdown) = (Metrics::new(), CancellationToken::new());
    let stage = tokio::spawn(hookline_profiles::run(
        args,
        metrics.clone(),
        Readiness::default(),
        shutdown.clone(),
    ));

    // A profile, five subprofiles in one collection (each modified later than the last), a
    // profile whose own fields do not fit in one table record, and one more profile after it.
    let mut records = vec![(
        "12:4711".to_owned(),
        change("4711", 0, json!({"name": "Jane"})),
    )];
    records.extend((1..=5).map(|n| ("12:4711".to_owned(), subprofile(n))));
    records.push((
        "12:5000".to_owned(),
        change("5000", 6, json!({"notes": "x".repeat(10_000)})),
    ));
    records.push((
        "12:6000".to_owned(),
        change("6000", 7, json!({"name": "Next"})),
    ));
    produce(&t, &t.topics.profile_changes, &records).await;

    // The stage moves past every change, the oversized one included.
    let group = format!("{}profiles", t.prefix);
    let done = eventually(Duration::from_secs(60), || {
        committed_and_end(&t, &group, &t.topics.profile_changes) == (8, 8)
    })
    .await;
    assert!(done, "all eight changes are committed");
    assert!(!stage.is_finished(), "the stage keeps running");

    let q = read_to_end(&t, &t.topics.quarantine);
    assert_eq!(q.len(), 1, "only the oversized change is quarantined");
    let reason = json(&q[0])["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.starts_with("too-large") && reason.contains("12:5000"),
        "{reason}"
    );
    assert_eq!(q[0].key(), Some(b"12:5000".as_slice()));
    assert_eq!(count(&metrics.quarantined, &["profiles", "too-large"]), 1);

    // The table: 4711 with its three newest subprofiles, 6000, and nothing of 5000.
    let rows = read_to_end(&t, &t.topics.profiles);
    assert_eq!(rows.len(), 7, "six rows of 4711 and one of 6000");
    assert!(rows.iter().all(|m| m.key() != Some(b"12:5000".as_slice())));
    assert!(rows.iter().any(|m| m.key() == Some(b"12:6000".as_slice())));
    let last_4711 = rows
        .iter()
        .filter(|m| m.key() == Some(b"12:4711".as_slice()))
        .max_by_key(|m| m.offset())
        .map(json)
        .unwrap();
    let mut kept: Vec<&String> = last_4711["subprofiles"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    kept.sort();
    assert_eq!(kept, ["3:3", "3:4", "3:5"]);
    assert_eq!(last_4711["fields"]["name"], "Jane");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), stage)
        .await
        .expect("the stage stops within 30 s")
        .expect("no panic")
        .expect("the stage stops cleanly");
    let _ = std::fs::remove_dir_all(&state);
}
