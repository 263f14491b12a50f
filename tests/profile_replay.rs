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
//! (`make test` builds the binaries before the tests.)

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hookline_integration_tests::{binary, key_path, produce, Sender};
use hookline_testkit::topics::json;
use hookline_testkit::{eventually, read_until, Broker, Receiver, TestTopics};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{json, Value};

const CRASH_ENV: &str = "HOOKLINE_TEST_CRASH_AFTER_STORE_WRITE";

/// The real `hookline-profiles` binary, its log in the temp folder.
fn start_stage(
    t: &TestTopics,
    state: &std::path::Path,
    log: &str,
    crash_at: Option<&str>,
) -> Child {
    let log = std::fs::File::create(std::env::temp_dir().join(log)).unwrap();
    let mut cmd = Command::new(binary("hookline-profiles"));
    cmd.env("HOOKLINE_BROKERS", &t.settings.brokers)
        .env("HOOKLINE_TOPIC_PREFIX", &t.prefix)
        .env("HOOKLINE_METRICS_ADDR", "off")
        .env("HOOKLINE_STATE_DIR", state)
        .env("HOOKLINE_REQUIRE_HTTPS", "false")
        .env("HOOKLINE_KAFKA_SESSION_TIMEOUT_MS", "6000")
        .env_remove(CRASH_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(id) = crash_at {
        cmd.env(CRASH_ENV, id);
    }
    cmd.spawn().unwrap()
}

/// The profiles group's committed offset on `profile-changes` and the topic's end (one
/// partition).
fn committed_and_end(t: &TestTopics) -> (i64, i64) {
    let group = format!("{}profiles", t.prefix);
    let consumer: BaseConsumer = t.settings.table_consumer(&group).create().unwrap();
    let topic = &t.topics.profile_changes;
    let end = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(5))
        .map_or(-1, |(_, high)| high);
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(5))
        .ok()
        .and_then(|c| c.elements().first().and_then(|e| e.offset().to_raw()))
        .unwrap_or(-1);
    (committed, end)
}

/// Every record of `topic` (one partition), read up to its current end offset.
fn read_to_end(t: &TestTopics, topic: &str) -> Vec<Value> {
    let consumer: BaseConsumer = t.settings.table_consumer("end-reader").create().unwrap();
    let (_, end) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(5))
        .unwrap();
    let records = read_until(&t.settings, topic, Duration::from_secs(60), |ms| {
        ms.len() as i64 >= end
    });
    assert_eq!(records.len() as i64, end, "{topic} read to its end");
    records.iter().map(json).collect()
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
    produce(
        &t,
        &t.topics.subscriptions,
        &[(
            "sub-name".into(),
            json!({"id": "sub-name", "account": "1001", "database": "12", "events": ["update"],
                   "conditions": {"field": "name", "op": "changed"},
                   "url": receiver.url("/hook"), "format": "json", "status": "active"}),
        )],
    )
    .await;
    let key = key_path("profile-replay");
    let sender = Sender::start(&t, &key, &[]);

    // The create is processed and committed by the first process.
    let mut stage = start_stage(&t, &state, "replay-1.log", Some("chg-update"));
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
    let log1 = std::fs::read_to_string(std::env::temp_dir().join("replay-1.log")).unwrap();
    assert!(
        log1.contains("aborting after the store write of change chg-update"),
        "the process died where the test put the crash"
    );
    assert_eq!(committed_and_end(&t), (1, 2), "the update is not committed");

    // The restarted process reads the update again.
    let mut stage = start_stage(&t, &state, "replay-2.log", None);
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

    let _ = stage.kill();
    let _ = stage.wait();
    sender.stop(Duration::from_secs(30)).await;
    let _ = std::fs::remove_dir_all(&state);
}
