//! The join stages under a changing consumer group, on the real local broker.
//!
//! - Readiness: a join stage reports ready (`/readyz` 200) only once the group has assigned it
//!   partitions and their table is restored, also when no input record has arrived yet.
//! - Rebalancing: two `hookline-tracking` processes share a 6-partition topic while a steady
//!   stream of clicks arrives; a third instance joins and leaves gracefully (SIGTERM),
//!   mid-stream. Every click's delivery appears on `deliveries`, joined with its profile (so
//!   every new owner restored its table before joining), and what is repeated is only the
//!   batch in hand at each revocation the members logged: per partition, one run of
//!   consecutive offsets per revocation, each at most one batch.
//!
//! A SIGKILLed member *within a group of several* is not covered here: on Tansu 0.6 its
//! partitions were not handed to the survivors after the session timeout in a trial run (the
//! next generation still counted the dead member). The SIGKILL-and-restart case is
//! `tests/recovery.rs`.
//!
//! (`make test` builds the binaries before the tests; after changing a stage, run
//! `cargo build --bins -p hookline-tracking` before this test.)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookline_integration_tests::{committed_and_end, count, process, produce, read_to_end};
use hookline_kafka::producer::Acks;
use hookline_kafka::Producer;
use hookline_telemetry::{Metrics, Readiness};
use hookline_testkit::{eventually, Broker, TestTopics};
use rdkafka::message::Message;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// `GET path` on a loopback HTTP server: (status, body); `None` when nothing listens (yet).
async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|x| x.1.to_owned())?;
    Some((status, body))
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A profile row as another system might seed the `profiles` table.
fn profile_row(i: usize) -> (String, Value) {
    (
        format!("12:{i}"),
        json!({"account": "1001", "database": "12", "profile": i.to_string(),
               "fields": {"email": format!("p{i}@example.com"), "name": format!("P{i}")},
               "interests": ["vip"], "subprofiles": {}}),
    )
}

fn click(n: usize, profile: usize) -> (String, Value) {
    (
        format!("12:{profile}"),
        json!({"id": format!("evt-{n}"), "type": "click", "account": "1001", "database": "12",
               "profile": profile.to_string(), "timestamp": "2026-11-25T10:15:00Z",
               "ip": "203.0.113.7", "original": "https://shop.example/offer"}),
    )
}

fn click_subscription() -> (String, Value) {
    // No sender runs in these tests: the URL is never called.
    (
        "sub-c".into(),
        json!({"id": "sub-c", "account": "1001", "database": "12", "events": ["click"],
               "url": "http://127.0.0.1:9/never", "format": "json", "status": "active"}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_stage_is_ready_only_once_its_table_is_restored() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let rows: Vec<_> = (0..5_000).map(profile_row).collect();
    produce(&t, &t.topics.profiles, &rows).await;

    let state =
        std::env::temp_dir().join(format!("hookline-ready-{}", t.prefix.trim_end_matches('.')));
    let args = hookline_integration_tests::tracking_args(&t, &state, &[]);
    let (metrics, readiness, shutdown) = (
        Metrics::new(),
        Readiness::default(),
        CancellationToken::new(),
    );
    let addr = hookline_telemetry::serve(
        "127.0.0.1:0".parse().unwrap(),
        metrics.clone(),
        readiness.clone(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        http_get(addr, "/readyz").await.map(|r| r.0),
        Some(503),
        "not ready before the stage runs"
    );
    let stage = {
        let (m, r, s) = (metrics.clone(), readiness.clone(), shutdown.clone());
        tokio::spawn(async move { hookline_tracking::run(args, m, r, s).await })
    };
    // Watch the flip closely: at the first moment the stage says ready, its whole table must be
    // in the store. (No tracking record is ever produced: an idle stage gets ready too.)
    let mut seen_not_ready = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let rows_at_ready = loop {
        if readiness.is_ready() {
            break count(&metrics.table_records, &["profiles"]);
        }
        seen_not_ready = true;
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stage got ready within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    assert!(seen_not_ready, "not ready right after the start");
    assert_eq!(
        rows_at_ready, 5_000,
        "ready only once every table row of the assigned partitions is restored"
    );
    assert_eq!(http_get(addr, "/readyz").await.map(|r| r.0), Some(200));
    shutdown.cancel();
    stage.await.unwrap().unwrap();
    assert!(!readiness.is_ready(), "a stopped stage is not ready");
    let _ = std::fs::remove_dir_all(&state);
}

fn binary(name: &str) -> PathBuf {
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        bin.exists(),
        "{} is not built: run `cargo build --workspace --bins` (make test does)",
        bin.display()
    );
    bin
}

/// One `hookline-tracking` process with its own state folder and metrics address.
struct Instance {
    child: Child,
    metrics: SocketAddr,
    log: PathBuf,
}

impl Instance {
    fn start(t: &TestTopics, state: &Path, name: &str) -> Self {
        let metrics = free_addr();
        let log = std::env::temp_dir().join(format!(
            "rebalance-{}-{name}.log",
            t.prefix.trim_end_matches('.')
        ));
        let child = Command::new(binary("hookline-tracking"))
            .env("HOOKLINE_BROKERS", &t.settings.brokers)
            .env("HOOKLINE_TOPIC_PREFIX", &t.prefix)
            .env("HOOKLINE_METRICS_ADDR", metrics.to_string())
            .env("HOOKLINE_STATE_DIR", state.join(name))
            .env("HOOKLINE_REQUIRE_HTTPS", "false")
            .env("HOOKLINE_KAFKA_SESSION_TIMEOUT_MS", "6000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self {
            child,
            metrics,
            log,
        }
    }

    async fn ready(&self) -> bool {
        http_get(self.metrics, "/readyz").await.map(|r| r.0) == Some(200)
    }

    /// Input records this instance has taken up (from its `/metrics`).
    async fn consumed(&self) -> u64 {
        let Some((_, text)) = http_get(self.metrics, "/metrics").await else {
            return 0;
        };
        text.lines()
            .find(|l| l.starts_with("hookline_stage_consumed_records_total{"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    /// Waits until the instance is ready and has processed at least one record.
    async fn wait_working(&self, what: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !(self.ready().await && self.consumed().await > 0) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} got to work within 60 s (log: {})",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM and the exit status; fails the test (instead of hanging it) if the process has
    /// not ended within `process::TERM_WAIT`.
    fn terminate(&mut self) -> std::process::ExitStatus {
        process::terminate(&mut self.child, &self.log.display().to_string())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SIGKILL, reaped within `process::KILL_WAIT`; reported rather than panicking again
        // while a failed test unwinds.
        if let Err(e) = process::try_kill(&mut self.child) {
            eprintln!("tracking instance ({}): {e}", self.log.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_instance_joining_and_leaving_mid_stream_loses_nothing() {
    let broker = Broker::start();
    let t = TestTopics::create(&broker.bootstrap, 6).await;
    const PROFILES: usize = 300;
    let rows: Vec<_> = (0..PROFILES).map(profile_row).collect();
    produce(&t, &t.topics.profiles, &rows).await;
    produce(&t, &t.topics.subscriptions, &[click_subscription()]).await;
    let state = std::env::temp_dir().join(format!(
        "hookline-rebalance-{}",
        t.prefix.trim_end_matches('.')
    ));

    let a = Instance::start(&t, &state, "a");
    let b = Instance::start(&t, &state, "b");
    let both_ready = eventually(Duration::from_secs(60), || {
        // `eventually` takes a sync closure: ask through a blocking client on this thread.
        blocking_ready(a.metrics) && blocking_ready(b.metrics)
    })
    .await;
    assert!(both_ready, "the first two instances got ready");

    // A steady stream: 10 clicks every 50 ms (about 200/s) until told to stop.
    let produced = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producer_task = {
        let (produced, stop) = (produced.clone(), stop.clone());
        let settings = t.settings.clone();
        let topic = t.topics.tracking.clone();
        tokio::spawn(async move {
            let producer = Producer::new(&settings).unwrap();
            let mut n = 0;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let mut acks = Acks::new();
                for _ in 0..10 {
                    let (key, value) = click(n, n % PROFILES);
                    producer
                        .send_json(&mut acks, &topic, key.as_bytes(), &value)
                        .await
                        .unwrap();
                    n += 1;
                }
                acks.wait().await.unwrap();
                produced.store(n, Ordering::Relaxed);
            }
            n
        })
    };
    let phase = Duration::from_secs(2);
    tokio::time::sleep(phase).await;

    // A third instance joins mid-stream, works, and leaves gracefully.
    let mut c = Instance::start(&t, &state, "c");
    c.wait_working("the third instance").await;
    tokio::time::sleep(phase).await;
    assert!(c.terminate().success(), "SIGTERM ends the stage cleanly");
    let after_c = produced.load(Ordering::Relaxed);
    tokio::time::sleep(phase).await;

    stop.store(true, Ordering::Relaxed);
    let total = producer_task.await.unwrap();
    assert!(
        total > after_c && after_c > 0,
        "the stream ran through every phase"
    );

    // Wait until the group has committed the whole stream, so every re-processing is done,
    // then read every delivery written.
    let settled = eventually(Duration::from_secs(120), || {
        let (committed, end) =
            committed_and_end(&t, &format!("{}tracking", t.prefix), &t.topics.tracking);
        committed == end && end == total as i64
    })
    .await;
    assert!(settled, "the group committed the whole stream");
    let deliveries = read_to_end(&t, &t.topics.deliveries);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in &deliveries {
        let d: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        *seen
            .entry(d["event_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let missing: Vec<usize> = (0..total)
        .filter(|n| !seen.contains_key(&format!("evt-{n}")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {total} clicks have no delivery, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );

    // Every delivery is joined: each owner restored its table before it processed a partition.
    let mut duplicates = 0;
    for m in &deliveries {
        let d: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        let body: Value = serde_json::from_str(d["body"].as_str().unwrap()).unwrap();
        let id = d["event_id"].as_str().unwrap();
        assert!(
            body.get("profile_known").is_none(),
            "{id} was joined with its profile"
        );
        assert_eq!(
            body["fields"]["name"],
            format!("P{}", body["profile"].as_str().unwrap())
        );
    }
    for (id, n) in &seen {
        assert!(*n <= 2, "{id} was delivered {n} times");
        duplicates += n - 1;
    }
    // The at-least-once window of a graceful rebalance (docs/architecture.md, "Delivery
    // guarantee"): a member commits what it processed when its partitions are revoked, so
    // nothing is processed twice except the records of the batch in hand at a revocation,
    // which its partition's next owner (maybe the same member) takes up again. On the tracking
    // topic that is, per partition, one run of consecutive offsets per revocation the members
    // logged, each run at most one batch (--max-batch, 500).
    let logs: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|i| std::fs::read_to_string(&i.log).unwrap_or_default())
        .collect();
    let revocations = revocations_by_partition(&logs, &t.topics.tracking);
    let runs = repeated_runs(&t, &seen);
    for (p, runs) in &runs {
        let allowed = revocations.get(p).copied().unwrap_or(0);
        assert!(
            runs.len() <= allowed,
            "partition {p}: {} runs of repeated clicks {runs:?}, but its partitions were revoked {allowed} times",
            runs.len()
        );
        for (first, len) in runs {
            assert!(
                *len <= 500,
                "partition {p}: {len} consecutive clicks from offset {first} repeated, more than one batch"
            );
        }
    }
    eprintln!(
        "{total} clicks, {} deliveries, {duplicates} duplicates; revocations {revocations:?}; repeated runs (first offset, length) {runs:?}",
        deliveries.len()
    );
    drop((a, b));
    let _ = std::fs::remove_dir_all(&state);
}

/// How many times each partition of `topic` was revoked from a member, from the members'
/// logs ("partitions revoked topic=<topic> partitions=[0, 1]").
fn revocations_by_partition(logs: &[String], topic: &str) -> HashMap<i32, usize> {
    let mut out = HashMap::new();
    let needle = format!("partitions revoked topic={topic} partitions=[");
    for line in logs.iter().flat_map(|l| l.lines()) {
        let Some(rest) = line.split_once(&needle).map(|x| x.1) else {
            continue;
        };
        let list = rest.split(']').next().unwrap_or_default();
        for p in list.split(',').filter_map(|p| p.trim().parse::<i32>().ok()) {
            *out.entry(p).or_default() += 1;
        }
    }
    out
}

/// The clicks delivered more than once, as runs of consecutive offsets per tracking partition:
/// `partition → [(first offset, length)]`.
fn repeated_runs(t: &TestTopics, seen: &HashMap<String, usize>) -> HashMap<i32, Vec<(i64, usize)>> {
    let mut repeated: HashMap<i32, Vec<i64>> = HashMap::new();
    for m in read_to_end(t, &t.topics.tracking) {
        let v: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        if seen.get(v["id"].as_str().unwrap()).is_some_and(|n| *n > 1) {
            repeated.entry(m.partition()).or_default().push(m.offset());
        }
    }
    repeated
        .into_iter()
        .map(|(p, mut offsets)| {
            offsets.sort_unstable();
            let mut runs: Vec<(i64, usize)> = Vec::new();
            for o in offsets {
                match runs.last_mut() {
                    Some((first, len)) if *first + *len as i64 == o => *len += 1,
                    _ => runs.push((o, 1)),
                }
            }
            (p, runs)
        })
        .collect()
}

/// `/readyz` of `addr` answers 200 (a blocking call, for `eventually`'s sync closure).
fn blocking_ready(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let req = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}
