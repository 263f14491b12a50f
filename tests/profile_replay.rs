//! A profile change replayed after a crash keeps its meaning, on a real local broker with the
//! real `hookline-profiles` binary, a sender and a loopback receiver.
//!
//! The profiles stage writes a change's new row to its local store before the change's input
//! offset is committed. A process killed in between (SIGKILL, OOM, a node lost) reads the change
//! again after its restart, and must not take the row it had already written for the state
//! *before* the change: an update would then seem to change nothing, and a subscription with a
//! `changed` condition would never hear of it.
//!
//! The crash is placed deterministically with the stage's test-only fault-injection hook
//! (`HOOKLINE_TEST_CRASH_AFTER_STORE_WRITE=<change id>`): the process aborts right after the
//! store write of that change, before its table record, its deliveries and its offset.
//!
//! The same local table lets go of a partition that went to another instance once it has not
//! come back within `--revoked-partition-grace`, so instances do not drift toward a full copy of
//! the table; when the partition does come back later, it is read from the beginning.
//! (`make test` builds the binaries before the tests.)

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hookline_integration_tests::{binary, key_path, produce, Sender};
use hookline_testkit::topics::json;
use hookline_testkit::{eventually, Broker, Receiver, TestTopics};
use serde_json::{json, Value};

const CRASH_ENV: &str = "HOOKLINE_TEST_CRASH_AFTER_STORE_WRITE";
const CRASH_AFTER_TABLE_ENV: &str = "HOOKLINE_TEST_CRASH_AFTER_TABLE_WRITE";

/// The real `hookline-profiles` binary with `env` set, its log (JSON lines) in the temp folder.
fn start_stage(t: &TestTopics, state: &Path, log: &str, env: &[(&str, &str)]) -> Child {
    let log = std::fs::File::create(std::env::temp_dir().join(log)).unwrap();
    let mut cmd = Command::new(binary("hookline-profiles"));
    cmd.env("HOOKLINE_BROKERS", &t.settings.brokers)
        .env("HOOKLINE_TOPIC_PREFIX", &t.prefix)
        .env("HOOKLINE_METRICS_ADDR", "off")
        .env("HOOKLINE_STATE_DIR", state)
        .env("HOOKLINE_REQUIRE_HTTPS", "false")
        .env("HOOKLINE_KAFKA_SESSION_TIMEOUT_MS", "6000")
        .env("HOOKLINE_LOG_FORMAT", "json")
        .env("HOOKLINE_BROKER_PROFILE", "local")
        .env_remove(CRASH_ENV)
        .env_remove(CRASH_AFTER_TABLE_ENV)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    cmd.spawn().unwrap()
}

/// The fields of the log events in `log` whose message starts with `message`.
fn log_events(log: &str, message: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(std::env::temp_dir().join(log)).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| e["fields"].clone())
        .filter(|f| {
            f["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
        })
        .collect()
}

/// The profiles group's committed offsets on `profile-changes` and the topic's end offsets,
/// each summed over the partitions.
fn committed_and_end(t: &TestTopics) -> (i64, i64) {
    let group = format!("{}profiles", t.prefix);
    hookline_integration_tests::committed_and_end(t, &group, &t.topics.profile_changes)
}

/// Every record of `topic` up to its current end offsets, as JSON.
fn read_to_end(t: &TestTopics, topic: &str) -> Vec<Value> {
    hookline_integration_tests::read_to_end(t, topic)
        .iter()
        .map(json)
        .collect()
}

/// Stops a stage with SIGTERM, as an orchestrator does (the test fails if it has not stopped
/// within `process::TERM_WAIT`).
fn terminate(child: &mut Child) -> std::process::ExitStatus {
    hookline_integration_tests::process::terminate(child, "profiles stage")
}

/// SIGKILL, reaped within `process::KILL_WAIT` (the test fails instead of hanging).
fn kill(child: &mut Child) {
    hookline_integration_tests::process::kill(child, "profiles stage");
}

fn change(id: &str, action: &str, minute: u32, name: &str) -> (String, Value) {
    (
        "12:4711".into(),
        json!({"id": id, "account": "1001", "database": "12", "profile": "4711",
               "collection": null, "subprofile": null, "action": action, "trigger": "rest",
               "timestamp": format!("2026-11-25T10:{minute:02}:00Z"), "parameters": {},
               "fields": {"name": name, "email": "jane@example.com"}, "interests": ["news"]}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_update_replayed_after_a_crash_between_store_write_and_commit_is_delivered_with_its_previous_values(
) {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    let state = std::env::temp_dir().join(format!(
        "hookline-replay-{}",
        t.prefix.trim_end_matches('.')
    ));
    let receiver = Receiver::start(200).await;
    // Only updates that change the name: a replay that sees no change sends nothing.
    subscribe_to_name_changes(&t, &receiver).await;
    let key = key_path("profile-replay");
    let sender = Sender::start(&t, &key, &[]);

    // The create is processed and committed by the first process.
    let (log1, log2) = (
        format!("{}replay-1.log", t.prefix),
        format!("{}replay-2.log", t.prefix),
    );
    let mut stage = start_stage(&t, &state, &log1, &[(CRASH_ENV, "chg-update")]);
    produce(
        &t,
        &t.topics.profile_changes,
        &[change("chg-create", "create", 0, "Jane")],
    )
    .await;
    let committed = eventually(Duration::from_secs(60), || committed_and_end(&t) == (1, 1)).await;
    assert!(committed, "the create is committed");

    // The update: the process dies right after writing it to its store.
    produce(
        &t,
        &t.topics.profile_changes,
        &[change("chg-update", "update", 5, "Jane Doe")],
    )
    .await;
    let died = eventually(Duration::from_secs(60), || {
        matches!(stage.try_wait(), Ok(Some(_)))
    })
    .await;
    assert!(died, "the fault injection ended the first process");
    assert!(!stage.wait().unwrap().success());
    let log1 = std::fs::read_to_string(std::env::temp_dir().join(&log1)).unwrap();
    assert!(
        log1.contains("aborting after the store write of change chg-update"),
        "the process died where the test put the crash"
    );
    assert_eq!(committed_and_end(&t), (1, 2), "the update is not committed");

    // The restarted process reads the update again.
    let mut stage = start_stage(&t, &state, &log2, &[]);
    let done = eventually(Duration::from_secs(60), || committed_and_end(&t) == (2, 2)).await;
    assert!(done, "the restarted stage commits the update");

    let deliveries: Vec<Value> = read_to_end(&t, &t.topics.deliveries)
        .into_iter()
        .filter(|d| d["event_id"] == "chg-update")
        .collect();
    assert_eq!(
        deliveries.len(),
        1,
        "exactly one delivery of the update, with its previous values"
    );
    let body: Value = serde_json::from_str(deliveries[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["previous"], json!({"name": "Jane"}));
    assert_eq!(body["fields"]["name"], "Jane Doe");

    let posted = eventually(Duration::from_secs(60), || receiver.count() >= 1).await;
    assert!(posted, "the receiver gets the update's webhook");
    for post in receiver.received() {
        let b: Value = serde_json::from_slice(&post.body).unwrap();
        assert_eq!(b["id"], "chg-update");
        assert_eq!(b["previous"], json!({"name": "Jane"}));
        assert_eq!(
            post.header("X-Hookline-Delivery"),
            deliveries[0]["delivery_id"].as_str()
        );
    }

    // The table holds the update once more (the crash came before its record).
    let table = read_to_end(&t, &t.topics.profiles);
    assert_eq!(table.last().unwrap()["fields"]["name"], "Jane Doe");

    kill(&mut stage);
    sender.stop(Duration::from_secs(30)).await;
    let _ = std::fs::remove_dir_all(&state);
}

/// One subscription to updates that change the name: a replay that sees no change sends
/// nothing.
async fn subscribe_to_name_changes(t: &TestTopics, receiver: &Receiver) {
    produce(
        t,
        &t.topics.subscriptions,
        &[(
            "sub-name".into(),
            json!({"id": "sub-name", "account": "1001", "database": "12", "events": ["update"],
                   "conditions": {"field": "name", "op": "changed"},
                   "url": receiver.url("/hook"), "format": "json", "status": "active"}),
        )],
    )
    .await;
}

/// The update's deliveries on the `deliveries` topic.
fn deliveries_of(t: &TestTopics, change: &str) -> Vec<Value> {
    read_to_end(t, &t.topics.deliveries)
        .into_iter()
        .filter(|d| d["event_id"] == change)
        .collect()
}

/// Another instance takes over a change whose new row reached the `profiles` topic before the
/// instance that wrote it died: the new owner's table, read from that topic, already holds the
/// change's result. Before, the new owner joined the change with that row, saw no change and
/// delivered nothing (the chaos suite lost profile changes this way when partitions moved).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_update_whose_row_was_written_before_a_crash_is_delivered_once_when_another_instance_takes_over(
) {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 1).await;
    let base = std::env::temp_dir().join(format!(
        "hookline-handover-{}",
        t.prefix.trim_end_matches('.')
    ));
    let (state1, state2) = (base.join("first"), base.join("second"));
    let receiver = Receiver::start(200).await;
    subscribe_to_name_changes(&t, &receiver).await;
    let key = key_path("profile-handover");
    let sender = Sender::start(&t, &key, &[]);
    let (log1, log2) = (
        format!("{}handover-1.log", t.prefix),
        format!("{}handover-2.log", t.prefix),
    );
    let mut first = start_stage(&t, &state1, &log1, &[(CRASH_AFTER_TABLE_ENV, "chg-update")]);
    produce(
        &t,
        &t.topics.profile_changes,
        &[change("chg-create", "create", 0, "Jane")],
    )
    .await;
    let committed = eventually(Duration::from_secs(60), || committed_and_end(&t) == (1, 1)).await;
    assert!(committed, "the create is committed");
    produce(
        &t,
        &t.topics.profile_changes,
        &[change("chg-update", "update", 5, "Jane Doe")],
    )
    .await;
    let died = eventually(Duration::from_secs(60), || {
        matches!(first.try_wait(), Ok(Some(_)))
    })
    .await;
    assert!(died, "the fault injection ended the first instance");
    let log = std::fs::read_to_string(std::env::temp_dir().join(&log1)).unwrap();
    assert!(
        log.contains("aborting after the table write of change chg-update"),
        "{log}"
    );
    assert_eq!(committed_and_end(&t), (1, 2), "the update is not committed");
    let table = read_to_end(&t, &t.topics.profiles);
    assert_eq!(
        table.last().unwrap()["fields"]["name"],
        "Jane Doe",
        "the row got out"
    );

    // Another instance, with a table of its own read from the topic, takes the partition.
    let mut second = start_stage(&t, &state2, &log2, &[]);
    let done = eventually(Duration::from_secs(60), || committed_and_end(&t) == (2, 2)).await;
    assert!(done, "the second instance commits the update");
    let posted = eventually(Duration::from_secs(60), || receiver.count() >= 1).await;
    let deliveries = deliveries_of(&t, "chg-update");
    assert!(
        posted && deliveries.len() == 1,
        "exactly one delivery of the update: {deliveries:?}"
    );
    let body: Value = serde_json::from_str(deliveries[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["previous"], json!({"name": "Jane"}));
    assert_eq!(body["fields"]["name"], "Jane Doe");

    kill(&mut second);
    sender.stop(Duration::from_secs(30)).await;
    let _ = std::fs::remove_dir_all(&base);
}

fn create(i: usize, name: &str) -> (String, Value) {
    let (_, mut c) = change(&format!("chg-{name}-{i}"), "create", 0, name);
    c["profile"] = json!(i.to_string());
    (format!("12:{i}"), c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_that_stays_away_longer_than_the_grace_period_is_dropped_and_later_read_from_the_beginning(
) {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 2).await;
    let base =
        std::env::temp_dir().join(format!("hookline-evict-{}", t.prefix.trim_end_matches('.')));
    let (log_a, log_b) = (
        format!("{}evict-a.log", t.prefix),
        format!("{}evict-b.log", t.prefix),
    );
    let grace = [("HOOKLINE_REVOKED_PARTITION_GRACE", "3s")];
    let mut a = start_stage(&t, &base.join("a"), &log_a, &grace);
    let creates: Vec<_> = (0..10).map(|i| create(i, "First")).collect();
    produce(&t, &t.topics.profile_changes, &creates).await;
    let done = eventually(Duration::from_secs(60), || {
        committed_and_end(&t) == (10, 10)
    })
    .await;
    assert!(done, "instance a processed every create (both partitions)");

    // b joins: a keeps one partition and lets go of the other's rows 3 s later.
    let mut b = start_stage(&t, &base.join("b"), &log_b, &[]);
    const DROPPED: &str = "table partition dropped";
    let dropped = eventually(Duration::from_secs(60), || {
        !log_events(&log_a, DROPPED).is_empty()
    })
    .await;
    assert!(dropped, "a dropped the partition it lost");
    let gone = log_events(&log_a, DROPPED);
    assert_eq!(gone.len(), 1, "only the partition that went to b");
    let x = gone[0]["partition"].as_i64().unwrap();
    let b_holds = log_events(&log_b, "partitions assigned")
        .iter()
        .any(|e| e["partitions"].as_str() == Some(&format!("[{x}]")));
    assert!(b_holds, "b holds partition {x}");

    // b leaves: a gets the partition back and, its rows gone, reads it from the beginning.
    assert!(terminate(&mut b).success(), "b stops cleanly on SIGTERM");
    const FULL: &str = "table partition: reading it from the beginning";
    let restored = eventually(Duration::from_secs(60), || {
        log_events(&log_a, FULL)
            .iter()
            .filter(|e| e["partition"].as_i64() == Some(x) && e["reason"] == "no checkpoint")
            .count()
            == 2
    })
    .await;
    assert!(
        restored,
        "a read partition {x} from the beginning again (its first start was the other time)"
    );

    // Its profiles are known again: updates apply to the restored state.
    let updates: Vec<_> = (0..10)
        .map(|i| {
            let (k, mut c) = create(i, "Second");
            c["action"] = json!("update");
            c["timestamp"] = json!("2026-11-25T10:30:00Z");
            (k, c)
        })
        .collect();
    produce(&t, &t.topics.profile_changes, &updates).await;
    let done = eventually(Duration::from_secs(60), || {
        committed_and_end(&t) == (20, 20)
    })
    .await;
    assert!(done, "a processed every update");
    let mut latest = std::collections::HashMap::new();
    for row in read_to_end(&t, &t.topics.profiles) {
        latest.insert(format!("12:{}", row["profile"].as_str().unwrap()), row);
    }
    for i in 0..10 {
        let row = &latest[&format!("12:{i}")];
        assert_eq!(row["fields"]["name"], "Second");
        assert_eq!(
            row["created"], "2026-11-25T10:00:00Z",
            "12:{i}: the update was applied to the restored row"
        );
    }
    kill(&mut a);
    let _ = std::fs::remove_dir_all(&base);
}
