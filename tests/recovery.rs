//! Stage processes as operators run them: the real `hookline-profiles` binary, killed with
//! SIGKILL and restarted, and two instances sharing the partitions of one consumer group.
//! (`make test` builds the binaries before the tests.)

use std::collections::HashMap;
use std::time::Duration;

use hookline_integration_tests::{committed_and_end, produce, read_to_end, StageProcess};
use hookline_testkit::{Broker, TestTopics};
use rdkafka::message::Message;
use serde_json::{json, Value};

/// A `hookline-profiles` process with its table in `state_dir`.
fn start_profiles(t: &TestTopics, state_dir: &std::path::Path, log: &str) -> StageProcess {
    let dir = state_dir.to_str().unwrap();
    StageProcess::start(t, "hookline-profiles", &[("HOOKLINE_STATE_DIR", dir)], log)
}

/// Waits until the profiles stage's group has committed `changes` records of
/// `profile-changes` and that is the topic's end: everything the stage will write for them is
/// then in the table topic.
async fn wait_committed(t: &TestTopics, changes: i64) {
    let group = format!("{}profiles", t.prefix);
    let done = hookline_testkit::eventually(Duration::from_secs(60), || {
        committed_and_end(t, &group, &t.topics.profile_changes) == (changes, changes)
    })
    .await;
    let now = committed_and_end(t, &group, &t.topics.profile_changes);
    assert!(
        done,
        "the stage commits all {changes} changes (committed, end: {now:?})"
    );
}

fn change(i: usize, action: &str, name: &str) -> (String, Value) {
    (
        format!("12:{i}"),
        json!({"id": format!("chg-{action}-{i}-{name}"), "account": "1001", "database": "12", "profile": i.to_string(),
               "action": action, "trigger": "import", "timestamp": format!("2026-11-25T10:{:02}:00Z", if action == "create" { 0 } else { 30 }),
               "parameters": {}, "fields": {"name": name, "email": format!("p{i}@example.com")}, "interests": []}),
    )
}

/// The latest state per key in the profiles topic, and the number of records: the whole
/// topic, read once the stage has committed every change.
fn table(t: &TestTopics) -> (HashMap<String, Value>, usize) {
    let rows = read_to_end(t, &t.topics.profiles);
    let mut latest = HashMap::new();
    for m in &rows {
        let k = String::from_utf8_lossy(m.key().unwrap()).into_owned();
        latest.insert(k, serde_json::from_slice(m.payload().unwrap()).unwrap());
    }
    (latest, rows.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_stage_resumes_after_sigkill_from_its_offsets_and_state() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let state = std::env::temp_dir().join(format!(
        "hookline-recovery-{}",
        t.prefix.trim_end_matches('.')
    ));
    let mut stage = start_profiles(&t, &state, "recovery-1.log");
    let creates: Vec<_> = (0..20).map(|i| change(i, "create", "First")).collect();
    produce(&t, &t.topics.profile_changes, &creates).await;
    // Offsets are committed every second: wait until the group's commit covers all 20, then
    // kill without mercy.
    wait_committed(&t, 20).await;
    let (_, n) = table(&t);
    assert_eq!(n, 20, "one table record per create");
    stage.kill();

    let updates: Vec<_> = (0..20).map(|i| change(i, "update", "Second")).collect();
    produce(&t, &t.topics.profile_changes, &updates).await;
    let _stage = start_profiles(&t, &state, "recovery-2.log");
    wait_committed(&t, 40).await;
    let (latest, n) = table(&t);
    assert_eq!(
        n, 40,
        "the creates are not processed again after the restart"
    );
    for i in 0..20 {
        let s = &latest[&format!("12:{i}")];
        assert_eq!(s["fields"]["name"], "Second");
        assert_eq!(
            s["created"], "2026-11-25T10:00:00Z",
            "the update was applied to the known state"
        );
        assert_eq!(s["modified"], "2026-11-25T10:30:00Z");
    }
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_partitions_and_one_takes_over_when_the_other_stops() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let base =
        std::env::temp_dir().join(format!("hookline-split-{}", t.prefix.trim_end_matches('.')));
    let mut a = start_profiles(
        &t,
        &base.join("a"),
        &format!("split-a-{}.log", std::process::id()),
    );
    let _b = start_profiles(
        &t,
        &base.join("b"),
        &format!("split-b-{}.log", std::process::id()),
    );
    // Both instances get partitions of the group (the second joins a moment later).
    let log =
        |name: &str| std::fs::read_to_string(std::env::temp_dir().join(name)).unwrap_or_default();
    let split = hookline_testkit::eventually(Duration::from_secs(20), || {
        log(&format!("split-a-{}.log", std::process::id())).contains("partitions assigned")
            && log(&format!("split-b-{}.log", std::process::id())).contains("partitions assigned")
    })
    .await;
    assert!(split, "both instances were assigned partitions");
    let first: Vec<_> = (0..60).map(|i| change(i, "create", "First")).collect();
    produce(&t, &t.topics.profile_changes, &first).await;
    wait_committed(&t, 60).await;
    let (latest, n) = table(&t);
    assert_eq!(latest.len(), 60, "every change processed");
    assert_eq!(n, 60, "each change processed once");

    assert!(
        a.terminate().success(),
        "SIGTERM ends a stage with exit code 0"
    );
    let second: Vec<_> = (0..60).map(|i| change(i, "update", "Second")).collect();
    produce(&t, &t.topics.profile_changes, &second).await;
    wait_committed(&t, 120).await;
    let (latest, n) = table(&t);
    // A clean stop commits what the stopping instance processed before its partitions go, and
    // a new owner skips changes its rows already hold: one row per change, none lost, none
    // repeated.
    assert_eq!(n, 120, "each of the 120 changes once in the table");
    assert!(
        (0..60).all(|i| latest[&format!("12:{i}")]["fields"]["name"] == "Second"),
        "the survivor took over every partition"
    );
    let _ = std::fs::remove_dir_all(&base);
}
