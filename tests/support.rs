//! Starting Hookline's stages in-process for end-to-end tests: the same `run` functions the
//! binaries call, configured through the same flags.

use std::net::SocketAddr;
use std::path::Path;

use clap::Parser;
use hookline_kafka::producer::Acks;
use hookline_kafka::Producer;
use hookline_telemetry::{Metrics, Readiness};
use hookline_testkit::TestTopics;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod fixtures;
pub mod openapi;
pub mod process;
pub use process::StageProcess;
pub mod quiescence;
pub use quiescence::{stage_behind, stage_inputs, wait_quiescent};

/// The running pipeline of one test.
pub struct Pipeline {
    pub shutdown: CancellationToken,
    pub admin: SocketAddr,
    pub tracking_metrics: Metrics,
    pub profiles_metrics: Metrics,
    pub sender_metrics: Metrics,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

fn common(t: &TestTopics) -> Vec<String> {
    vec![
        "--brokers".into(),
        t.settings.brokers.clone(),
        "--topic-prefix".into(),
        t.prefix.clone(),
        "--metrics-addr".into(),
        "off".into(),
        "--kafka".into(),
        "session.timeout.ms=6000".into(),
        "--broker-profile".into(),
        "local".into(),
    ]
}

impl Pipeline {
    /// Starts admin, profiles, tracking and sender against the test's topics. Loopback is
    /// allowed for outbound calls (tests only) and http:// subscriptions are accepted.
    pub async fn start(t: &TestTopics, key_path: &Path, extra_sender_args: &[&str]) -> Self {
        Self::start_with(t, key_path, extra_sender_args, "127.0.0.0/8,::1/128").await
    }

    /// Like [`Pipeline::start`], but the sender's `--allow-networks` is `allow_networks`
    /// (e.g. `""` to test the SSRF guard against loopback targets).
    pub async fn start_with(
        t: &TestTopics,
        key_path: &Path,
        extra_sender_args: &[&str],
        allow_networks: &str,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let key = key_path.to_str().unwrap().to_owned();
        // One table folder per test's topics, kept across a restart within the test.
        let state_dir =
            std::env::temp_dir().join(format!("hookline-state-{}", t.prefix.trim_end_matches('.')));
        let mut admin_args = vec!["hookline-admin".to_owned()];
        admin_args.extend(common(t));
        admin_args.extend([
            "--admin-addr".into(),
            "127.0.0.1:0".into(),
            "--signing-key".into(),
            key.clone(),
            "--require-https".into(),
            "false".into(),
            "--allow-networks".into(),
            allow_networks.into(),
        ]);
        let admin = hookline_admin::serve(
            &hookline_admin::AdminArgs::parse_from(admin_args),
            None,
            shutdown.clone(),
        )
        .await
        .expect("admin starts");

        let stage_args = |name: &str| {
            let mut a = vec![name.to_owned()];
            a.extend(common(t));
            a.extend(["--require-https".into(), "false".into()]);
            if name != "hookline-sender" {
                a.extend(["--max-record-bytes".into(), "65536".into()]);
                a.extend(["--state-dir".into(), state_dir.to_str().unwrap().to_owned()]);
            }
            a
        };
        let (tm, pm, sm) = (Metrics::new(), Metrics::new(), Metrics::new());
        let mut tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)> = Vec::new();
        {
            let args = hookline_profiles::ProfilesArgs::parse_from(stage_args("hookline-profiles"));
            let (m, s) = (pm.clone(), shutdown.clone());
            tasks.push((
                "profiles",
                tokio::spawn(async move {
                    Ok(hookline_profiles::run(args, m, Readiness::default(), s).await?)
                }),
            ));
        }
        {
            let args = hookline_tracking::TrackingArgs::parse_from(stage_args("hookline-tracking"));
            let (m, s) = (tm.clone(), shutdown.clone());
            tasks.push((
                "tracking",
                tokio::spawn(async move {
                    Ok(hookline_tracking::run(args, m, Readiness::default(), s).await?)
                }),
            ));
        }
        {
            let mut a = stage_args("hookline-sender");
            a.extend([
                "--signing-key".into(),
                key,
                "--allow-networks".into(),
                allow_networks.to_owned(),
            ]);
            a.extend(extra_sender_args.iter().map(|s| s.to_string()));
            let args = hookline_sender::SenderArgs::parse_from(a);
            let (m, s) = (sm.clone(), shutdown.clone());
            tasks.push((
                "sender",
                tokio::spawn(async move {
                    Ok(hookline_sender::run(args, m, Readiness::default(), s).await?)
                }),
            ));
        }
        Self {
            shutdown,
            admin,
            tracking_metrics: tm,
            profiles_metrics: pm,
            sender_metrics: sm,
            tasks,
        }
    }

    /// The stages whose task has ended (they should run until [`Pipeline::stop`]).
    pub fn ended(&self) -> Vec<&'static str> {
        self.tasks
            .iter()
            .filter(|(_, t)| t.is_finished())
            .map(|(n, _)| *n)
            .collect()
    }

    /// Stops every stage and checks that each stopped cleanly.
    pub async fn stop(self) {
        self.stop_within(std::time::Duration::from_secs(30)).await;
    }

    /// Stops every stage and checks that each stopped cleanly, all within `within` of being
    /// asked (they stop together).
    pub async fn stop_within(mut self, within: std::time::Duration) {
        self.shutdown.cancel();
        let asked = tokio::time::Instant::now();
        let deadline = asked + within;
        for (name, task) in std::mem::take(&mut self.tasks) {
            let r = tokio::time::timeout_at(deadline, task)
                .await
                .unwrap_or_else(|_| panic!("{name} did not stop within {within:?}"));
            eprintln!("{name} stopped {:?} after being asked", asked.elapsed());
            r.expect("task panicked")
                .unwrap_or_else(|e| panic!("{name} failed: {e:#}"));
        }
    }
}

/// A pipeline dropped without [`Pipeline::stop`] (a test failed, or returned early) stops its
/// stages here, while the runtime still runs them: dropped mid-flight by the runtime's own
/// shutdown, a stage's consumer close can wait forever for callbacks that no longer run, and the
/// failed test would hang instead of failing. Each stage gets 30 s; one that takes longer is
/// reported and left to the runtime.
impl Drop for Pipeline {
    fn drop(&mut self) {
        stop_on_drop(&self.shutdown, std::mem::take(&mut self.tasks));
    }
}

/// Cancels `shutdown` and waits (30 s each, blocking this thread but not the runtime's workers)
/// for the tasks still running: see `impl Drop for Pipeline`.
fn stop_on_drop<T: Send + 'static>(
    shutdown: &CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<T>)>,
) {
    if tasks.iter().all(|(_, t)| t.is_finished()) {
        return;
    }
    shutdown.cancel();
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return;
    }
    tokio::task::block_in_place(|| {
        handle.block_on(async {
            for (name, task) in tasks {
                let within = std::time::Duration::from_secs(30);
                if tokio::time::timeout(within, task).await.is_err() {
                    eprintln!("{name} did not stop within {within:?} after its test ended");
                }
            }
        })
    });
}

/// Produces JSON values with the contract's keys.
pub async fn produce(t: &TestTopics, topic: &str, records: &[(String, serde_json::Value)]) {
    let producer = Producer::new(&t.settings).unwrap();
    let mut acks = Acks::new();
    for (key, value) in records {
        producer
            .send_json(&mut acks, topic, key.as_bytes(), value)
            .await
            .unwrap();
    }
    acks.wait().await.unwrap();
}

/// A raw record: key and value bytes, either may be absent.
pub type RawRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Produces raw bytes (for malformed-input tests).
pub async fn produce_raw(t: &TestTopics, topic: &str, records: &[RawRecord<'_>]) {
    let producer = Producer::new(&t.settings).unwrap();
    let mut acks = Acks::new();
    for (key, value) in records {
        producer.send(&mut acks, topic, *key, *value).await.unwrap();
    }
    acks.wait().await.unwrap();
}

/// A counter's value for `label` (0 when never incremented).
pub fn count(c: &hookline_telemetry::metrics::CounterVec, label: &[&str]) -> u64 {
    c.get_metric_with_label_values(label)
        .map(|m| m.get())
        .unwrap_or(0)
}

/// A fresh folder for one test's signing key; returns the key's path (generated on first use).
pub fn key_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hookline-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("signing-key.pem")
}

/// One `hookline-sender` instance on its own, in-process (loopback allowed, http accepted).
pub struct Sender {
    pub shutdown: CancellationToken,
    pub metrics: Metrics,
    /// `None` once [`Sender::stop`] has taken it.
    task: Option<JoinHandle<Result<(), hookline_sender::SenderError>>>,
}

/// Like a [`Pipeline`], a sender dropped without [`Sender::stop`] is stopped here.
impl Drop for Sender {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            stop_on_drop(&self.shutdown, vec![("sender", task)]);
        }
    }
}

impl Sender {
    /// Starts a sender signing with the key at `key`; `extra` flags are appended.
    pub fn start(t: &TestTopics, key: &Path, extra: &[&str]) -> Self {
        let mut args = vec![
            "hookline-sender",
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
            "--broker-profile",
            "local",
            "--signing-key",
            key.to_str().unwrap(),
            "--allow-networks",
            "127.0.0.0/8,::1/128",
        ];
        args.extend_from_slice(extra);
        let args = hookline_sender::SenderArgs::parse_from(args);
        let (shutdown, metrics) = (CancellationToken::new(), Metrics::new());
        let task = tokio::spawn(hookline_sender::run(
            args,
            metrics.clone(),
            Readiness::default(),
            shutdown.clone(),
        ));
        Self {
            shutdown,
            metrics,
            task: Some(task),
        }
    }

    /// Stops the sender and checks that it stopped cleanly within `within`.
    pub async fn stop(mut self, within: std::time::Duration) {
        self.shutdown.cancel();
        let task = self.task.take().expect("a sender is stopped once");
        tokio::time::timeout(within, task)
            .await
            .unwrap_or_else(|_| panic!("the sender stops within {within:?}"))
            .expect("no panic")
            .expect("the sender stops cleanly");
    }
}

/// A built binary of the workspace, next to the test executable's folder
/// (`target/<profile>/deps/<test>` → `target/<profile>/<name>`).
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is not built: run `cargo build --workspace --bins` (make test does)",
        bin.display()
    );
    bin
}

/// A new API token for `account` (an operator token with `None`), written to the test's
/// `tokens` topic as `hookline tokens create` does; returns the token to present.
pub async fn new_token(
    t: &TestTopics,
    role: hookline_model::TokenRole,
    account: Option<&str>,
) -> String {
    let new = hookline_admin::auth::generate(
        role,
        account.map(|a| hookline_model::AccountId::new(a).unwrap()),
        Some("test".into()),
    );
    hookline_admin::tables::write_token(&t.settings, &t.topics, &new.record)
        .await
        .unwrap();
    new.token
}

/// Starts an admin API on 127.0.0.1:0 over the test's topics, signing with the key at `key`;
/// `extra` flags are appended. Returns its address; it stops when `shutdown` is cancelled.
pub async fn start_admin(
    t: &TestTopics,
    key: &Path,
    extra: &[&str],
    metrics: Option<Metrics>,
    shutdown: &CancellationToken,
) -> SocketAddr {
    let mut args = vec![
        "hookline-admin",
        "--brokers",
        &t.settings.brokers,
        "--topic-prefix",
        &t.prefix,
        "--admin-addr",
        "127.0.0.1:0",
        "--metrics-addr",
        "off",
        "--broker-profile",
        "local",
        "--signing-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    hookline_admin::serve(
        &hookline_admin::AdminArgs::parse_from(args),
        metrics,
        shutdown.clone(),
    )
    .await
    .expect("admin starts")
}

/// Flags of an in-process `hookline-tracking` over the test's topics with its table in `state`
/// (loopback test settings); `extra` flags are appended.
pub fn tracking_args(
    t: &TestTopics,
    state: &Path,
    extra: &[&str],
) -> hookline_tracking::TrackingArgs {
    let mut args = vec![
        "hookline-tracking",
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
        "--broker-profile",
        "local",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    hookline_tracking::TrackingArgs::parse_from(args)
}

/// The committed offsets of `group` on `topic` and the topic's end offsets, each summed over
/// the partitions: a stage has finished with everything written so far once they are equal.
pub fn committed_and_end(t: &TestTopics, group: &str, topic: &str) -> (i64, i64) {
    let at = committed_by_partition(t, group, topic);
    let committed = if at.iter().any(|(c, _)| *c < 0) {
        -1
    } else {
        at.iter().map(|(c, _)| c).sum()
    };
    (committed, at.iter().map(|(_, e)| e).sum())
}

/// `group`'s committed offset (0 when none) and the end offset of each partition of `topic`,
/// in partition order; every committed offset is -1 when they cannot be read.
pub fn committed_by_partition(t: &TestTopics, group: &str, topic: &str) -> Vec<(i64, i64)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use std::time::Duration;
    let consumer: BaseConsumer = t.settings.table_consumer(group).create().unwrap();
    // The partition count from this consumer's own metadata: a client of its own per call made
    // each look cost about 100 ms more.
    let partitions = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()
        .and_then(|m| m.topics().first().map(|t| t.partitions().len() as i32))
        .filter(|n| *n > 0)
        .unwrap_or_else(|| hookline_kafka::table::partition_count(&t.settings, topic).unwrap());
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut end = Vec::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
        end.push(
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
                .map_or(0, |(_, high)| high),
        );
    }
    let committed: Vec<i64> = consumer
        .committed_offsets(tpl, Duration::from_secs(5))
        .map_or(vec![-1; end.len()], |c| {
            c.elements()
                .iter()
                .map(|e| e.offset().to_raw().filter(|o| *o >= 0).unwrap_or(0))
                .collect()
        });
    committed.into_iter().zip(end).collect()
}

/// Every record of `topic` up to its end offsets as they are when called: each partition is
/// read from its beginning up to the high watermark fetched at the start, records written
/// later are left out. Call it once whatever writes `topic` is quiescent (a stage's committed
/// offsets reached its input's end offsets, or its counters say every input was handled) and
/// count exactly: unlike reading until `n` records arrived, this sees duplicates and records
/// that should not be there.
///
/// "Read up to" compares the consumer's position, which also moves past offsets that are never
/// delivered (transaction markers, aborted records). Panics, naming how far each partition was
/// read, if the records cannot be read within 60 s.
pub fn read_to_end(t: &TestTopics, topic: &str) -> Vec<rdkafka::message::OwnedMessage> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};
    static READERS: AtomicU32 = AtomicU32::new(0);
    let group = format!(
        "end-reader-{}-{}",
        std::process::id(),
        READERS.fetch_add(1, Ordering::Relaxed)
    );
    let consumer: BaseConsumer = t.settings.table_consumer(&group).create().unwrap();
    let partitions = hookline_kafka::table::partition_count(&t.settings, topic).unwrap();
    let mut ends = BTreeMap::new();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("the end offsets of {topic}/{p}: {e}"));
        if high > low {
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(low))
                .unwrap();
            ends.insert(p, high);
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return out;
    }
    consumer.assign(&tpl).unwrap();
    // Per partition, the offset after the last record read.
    let mut read: BTreeMap<i32, i64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let positions = consumer.position().unwrap();
        let done = ends.iter().all(|(p, high)| {
            let position = positions
                .find_partition(topic, *p)
                .and_then(|e| e.offset().to_raw())
                .unwrap_or(-1);
            position.max(read.get(p).copied().unwrap_or(-1)) >= *high
        });
        if done {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} was not read to its end offsets {ends:?} within 60 s (read up to {read:?})"
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let (p, offset) = (m.partition(), m.offset());
            if ends.get(&p).is_some_and(|high| offset < *high) {
                out.push(m.detach());
            }
            read.insert(p, offset + 1);
        }
    }
}

/// The variable that turns a skip for a missing runtime into a failure (CI sets it: `.ci/run`
/// installs every runtime, so a skip there means the installation went wrong).
pub const REQUIRE_RUNTIMES: &str = "HOOKLINE_REQUIRE_RUNTIMES";

/// Reports that the running test skips (part of) its work because `runtime` is missing here,
/// `why` saying what was looked for. The line goes straight to the process's stderr, past
/// libtest's capture, as `SKIPPED-RUNTIME: <binary>::<test> (<runtime>): <why>`, which
/// `scripts/test-summary.sh` collects into the `make test` summary by name. With
/// `HOOKLINE_REQUIRE_RUNTIMES=1` it panics instead: the test fails rather than skips.
pub fn skip_for_missing_runtime(runtime: &str, why: &str) {
    use std::io::Write as _;
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, _hash)) => name.to_owned(),
            None => stem,
        })
        .unwrap_or_default();
    assert!(
        std::env::var(REQUIRE_RUNTIMES).as_deref() != Ok("1"),
        "{test} needs {runtime}, and {REQUIRE_RUNTIMES}=1 forbids skipping it: {why}"
    );
    let line = format!("SKIPPED-RUNTIME: {binary}::{test} ({runtime}): {why}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
