//! Section 5, end to end: a local broker, the profiles, tracking and sender stages started
//! in-process the way `tests/support.rs` starts them (same `run` functions, same flags), one
//! active json subscription on database 12 pointing at a receiver on loopback, and clicks.
//!
//! Each click carries its produce time in an extra field (`bench_sent_at_ns`); extra fields pass
//! through the join into the POST body, so the receiver computes the latency from produce to
//! POST received without any bookkeeping on the sending side.
//!
//! - A warm-up click goes first, so consumer-group joins, table restores and connection set-up
//!   are not counted.
//! - The burst: [`EVENTS`] clicks produced as fast as possible. Throughput is their number over
//!   the time from the first produce to the last POST received; their latencies include the
//!   queueing a burst causes.
//! - Then single clicks, one at a time on the drained pipeline: the latency of one event when
//!   nothing waits ahead of it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::Router;
use clap::Parser;
use hookline_kafka::producer::Acks;
use hookline_kafka::Producer;
use hookline_telemetry::{Metrics, Readiness};
use hookline_testkit::{read_until, Broker, TestTopics};
use rdkafka::message::Message;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::fixtures;
use crate::procfs;
use crate::signing::SigningCeiling;
use crate::table::{pct, Row};
use crate::timing::{quantile, unix_nanos};

const SECTION: &str = "end to end";
/// Clicks in the measured burst.
pub const EVENTS: usize = 2000;
const DATABASE: &str = "12";
const PROFILE: &str = "4711";
/// Partitions per topic, as the integration tests use.
const PARTITIONS: i32 = 3;
/// In-flight limit of the subscription: the loopback ceiling's concurrency, so the two compare.
const MAX_IN_FLIGHT: u32 = 64;
const STAMP: &str = "bench_sent_at_ns";
const WARMUP_ID: &str = "evt-warmup";
/// Id prefix of the measured burst.
const BURST: &str = "evt-burst-";
/// Id prefix of the single clicks sent one at a time after the burst.
const IDLE: &str = "evt-idle-";
const IDLE_CLICKS: usize = 20;
/// Pause before each single click, so the previous one's outcome and commit are done.
const IDLE_PAUSE: Duration = Duration::from_millis(100);
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// The ceilings measured before, to compare the pipeline with.
#[derive(Debug, Clone, Copy)]
pub struct Ceilings {
    pub signing: SigningCeiling,
    pub post_per_s: Option<f64>,
    pub cores: usize,
}

/// Runs the section, or explains why not: the broker is optional on a developer machine.
/// Returns the rows and whether the pipeline ran.
pub async fn run(ceilings: &Ceilings) -> (Vec<Row>, bool) {
    let bin = hookline_testkit::broker::tansu_bin();
    if !bin.exists() {
        let why = format!("no broker at {}; run `make broker`", bin.display());
        let rows = [
            "burst: deliveries, first produce → last POST",
            "burst: produced → POST received, p50",
            "burst: produced → POST received, p99",
            "single click, idle pipeline, p50",
        ]
        .into_iter()
        .map(|what| Row::skipped(SECTION, what, why.clone()))
        .collect();
        return (rows, false);
    }
    match measure(ceilings).await {
        Ok(rows) => (rows, true),
        Err(e) => (
            vec![Row::failed(
                SECTION,
                "burst: deliveries, first produce → last POST",
                format!("{e:#}"),
            )],
            true,
        ),
    }
}

/// One POST as the receiver saw it.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: Instant,
    latency_ms: f64,
    /// The body says the profile was not in the table (`"profile_known": false`).
    thin: bool,
}

/// What the receiver has seen, by event id (the first POST of each; repeats are counted).
#[derive(Default)]
struct Arrivals {
    by_id: HashMap<String, Arrival>,
    /// How many distinct clicks of the burst arrived.
    burst: usize,
    duplicates: u64,
}

type Shared = Arc<Mutex<Arrivals>>;

/// Takes the arrival time first, then reads the stamp from the body.
async fn receive(State(seen): State<Shared>, body: Bytes) -> &'static str {
    let (at, now_ns) = (Instant::now(), unix_nanos());
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return "ok";
    };
    let (Some(id), Some(sent)) = (v["id"].as_str(), v[STAMP].as_u64()) else {
        return "ok";
    };
    let arrival = Arrival {
        at,
        latency_ms: now_ns.saturating_sub(sent) as f64 / 1e6,
        thin: v["profile_known"] == json!(false),
    };
    let mut g = seen.lock().expect("receiver lock");
    if g.by_id.contains_key(id) {
        g.duplicates += 1;
    } else {
        g.burst += usize::from(id.starts_with(BURST));
        g.by_id.insert(id.to_owned(), arrival);
    }
    "ok"
}

/// The webhook endpoint on 127.0.0.1:0; stops when `stop` is cancelled.
async fn start_receiver(stop: CancellationToken) -> anyhow::Result<(SocketAddr, Shared)> {
    let seen = Shared::default();
    let app = Router::new().fallback(receive).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    Ok((addr, seen))
}

/// The three stages, running in this process.
struct Stages {
    shutdown: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

fn common_args(t: &TestTopics) -> Vec<String> {
    [
        "--brokers",
        t.settings.brokers.as_str(),
        "--topic-prefix",
        t.prefix.as_str(),
        "--metrics-addr",
        "off",
        "--kafka",
        "session.timeout.ms=6000",
        "--require-https",
        "false",
    ]
    .map(str::to_owned)
    .to_vec()
}

impl Stages {
    /// Starts profiles, tracking and sender as `tests/support.rs` does, with loopback allowed
    /// for outbound calls and http:// subscriptions accepted.
    fn start(t: &TestTopics, key: &Path) -> Self {
        let shutdown = CancellationToken::new();
        let args = |name: &str| {
            let mut a = vec![name.to_owned()];
            a.extend(common_args(t));
            a
        };
        let mut tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)> = Vec::new();
        let profiles = hookline_profiles::ProfilesArgs::parse_from(args("hookline-profiles"));
        let s = shutdown.clone();
        tasks.push((
            "profiles",
            tokio::spawn(async move {
                Ok(
                    hookline_profiles::run(profiles, Metrics::new(), Readiness::default(), s)
                        .await?,
                )
            }),
        ));
        let tracking = hookline_tracking::TrackingArgs::parse_from(args("hookline-tracking"));
        let s = shutdown.clone();
        tasks.push((
            "tracking",
            tokio::spawn(async move {
                Ok(
                    hookline_tracking::run(tracking, Metrics::new(), Readiness::default(), s)
                        .await?,
                )
            }),
        ));
        let mut a = args("hookline-sender");
        a.extend([
            "--signing-key".to_owned(),
            key.display().to_string(),
            "--allow-networks".to_owned(),
            "127.0.0.0/8".to_owned(),
        ]);
        let sender = hookline_sender::SenderArgs::parse_from(a);
        let s = shutdown.clone();
        tasks.push((
            "sender",
            tokio::spawn(async move {
                Ok(hookline_sender::run(sender, Metrics::new(), Readiness::default(), s).await?)
            }),
        ));
        Self { shutdown, tasks }
    }

    /// Cancels the stages and waits for each; problems are reported on stderr, since the
    /// measurement is already taken.
    async fn stop(self) {
        self.shutdown.cancel();
        for (name, task) in self.tasks {
            match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => eprintln!("bench: {name} stage failed: {e:#}"),
                Ok(Err(e)) => eprintln!("bench: {name} stage panicked: {e}"),
                Err(_) => eprintln!("bench: {name} stage did not stop within 30 s"),
            }
        }
    }

    /// A stage that already ended has failed (they run until cancelled).
    fn check_running(&self) -> anyhow::Result<()> {
        match self.tasks.iter().find(|(_, t)| t.is_finished()) {
            Some((name, _)) => {
                anyhow::bail!("the {name} stage stopped early; run with RUST_LOG=info")
            }
            None => Ok(()),
        }
    }
}

/// A directory under the system temp dir, removed (with its key) when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: String) -> Self {
        let dir = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a fresh key where the sender expects it, so it does not announce generating one.
fn write_key(dir: &Path) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("signing-key.pem");
    let pem = hookline_signing::keys::generate_pem()?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?
        .write_all(pem.as_bytes())?;
    Ok(path)
}

fn click(id: &str) -> Value {
    let mut v = fixtures::click(id, DATABASE, PROFILE);
    v[STAMP] = json!(unix_nanos());
    v
}

/// Polls until `cond` holds on what the receiver saw, or `timeout` passes.
async fn wait_for(
    seen: &Shared,
    stages: &Stages,
    timeout: Duration,
    cond: impl Fn(&Arrivals) -> bool,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond(&seen.lock().expect("receiver lock")) {
            return Ok(true);
        }
        stages.check_running()?;
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn measure(ceilings: &Ceilings) -> anyhow::Result<Vec<Row>> {
    let broker = tokio::task::spawn_blocking(Broker::start)
        .await
        .context("starting the local broker")?;
    let bootstrap = broker.bootstrap.clone();
    let t = tokio::spawn(async move { TestTopics::create(&bootstrap, PARTITIONS).await })
        .await
        .context("creating topics")?;
    let stop_receiver = CancellationToken::new();
    let (addr, seen) = start_receiver(stop_receiver.clone()).await?;
    let key_dir = TempDir::new(format!("hookline-bench-{}", std::process::id()));
    let key = write_key(&key_dir.0)?;

    let producer = Producer::new(&t.settings)?;
    let mut acks = Acks::new();
    let subscription = json!({"id": "sub-bench", "account": "1001", "database": DATABASE,
        "events": ["click"], "url": format!("http://{addr}/webhook"), "format": "json",
        "status": "active", "conditions": {"field": "name", "op": "contains", "value": "Mike"},
        "limits": {"max_in_flight": MAX_IN_FLIGHT, "per_second": 10000}});
    producer
        .send_json(
            &mut acks,
            &t.topics.subscriptions,
            b"sub-bench",
            &subscription,
        )
        .await?;
    let profile_key = format!("{DATABASE}:{PROFILE}");
    let create = json!({"id": "chg-bench-1", "account": "1001", "database": DATABASE,
        "profile": PROFILE, "collection": null, "subprofile": null, "action": "create",
        "trigger": "rest", "timestamp": "2026-11-25T10:00:00Z", "parameters": {},
        "fields": fixtures::profile_fields("Mike Jansen", "Utrecht"),
        "interests": ["vip", "newsletter"]});
    producer
        .send_json(
            &mut acks,
            &t.topics.profile_changes,
            profile_key.as_bytes(),
            &create,
        )
        .await?;
    acks.wait().await?;

    let stages = Stages::start(&t, &key);
    let result = async {
        // The profile must be in the table before clicks can be joined with it.
        let (settings, table) = (t.settings.clone(), t.topics.profiles.clone());
        let wanted = profile_key.clone().into_bytes();
        let rows = tokio::task::spawn_blocking(move || {
            read_until(&settings, &table, SETUP_TIMEOUT, |ms| {
                ms.iter().any(|m| m.key() == Some(wanted.as_slice()))
            })
        })
        .await?;
        anyhow::ensure!(
            rows.iter().any(|m| m.key() == Some(profile_key.as_bytes())),
            "the profile did not reach the profiles topic within {SETUP_TIMEOUT:?}"
        );

        producer
            .send_json(
                &mut acks,
                &t.topics.tracking,
                profile_key.as_bytes(),
                &click(WARMUP_ID),
            )
            .await?;
        acks.wait().await?;
        anyhow::ensure!(
            wait_for(&seen, &stages, SETUP_TIMEOUT, |a| a
                .by_id
                .contains_key(WARMUP_ID))
            .await?,
            "the warm-up click was not delivered within {SETUP_TIMEOUT:?}"
        );

        let brokers = procfs::children_named("tansu");
        let cpu_before = CpuSample::take(&brokers);
        let first_produce = Instant::now();
        for i in 0..EVENTS {
            let id = format!("{BURST}{i:05}");
            producer
                .send_json(
                    &mut acks,
                    &t.topics.tracking,
                    profile_key.as_bytes(),
                    &click(&id),
                )
                .await?;
        }
        acks.wait().await?;
        let produced = first_produce.elapsed();
        let complete = wait_for(&seen, &stages, RUN_TIMEOUT, |a| a.burst >= EVENTS).await?;
        let cpu = CpuSample::take(&brokers).since(&cpu_before);

        // Then single clicks on the drained pipeline: latency without queueing.
        let mut idle_ms = Vec::with_capacity(IDLE_CLICKS);
        for i in 0..IDLE_CLICKS {
            tokio::time::sleep(IDLE_PAUSE).await;
            let id = format!("{IDLE}{i:02}");
            producer
                .send_json(
                    &mut acks,
                    &t.topics.tracking,
                    profile_key.as_bytes(),
                    &click(&id),
                )
                .await?;
            acks.wait().await?;
            if !wait_for(&seen, &stages, IDLE_TIMEOUT, |a| a.by_id.contains_key(&id)).await? {
                break;
            }
            idle_ms.push(seen.lock().expect("receiver lock").by_id[&id].latency_ms);
        }

        let g = seen.lock().expect("receiver lock");
        let burst: Vec<Arrival> = g
            .by_id
            .iter()
            .filter(|(id, _)| id.starts_with(BURST))
            .map(|(_, a)| *a)
            .collect();
        Ok(report(
            ceilings,
            &Measured {
                first_produce,
                produced,
                burst,
                complete,
                duplicates: g.duplicates,
                idle_ms,
                cpu,
            },
        ))
    }
    .await;
    stages.stop().await;
    stop_receiver.cancel();
    drop(broker);
    result
}

/// What the section observed.
struct Measured {
    first_produce: Instant,
    /// From the first produce until every click of the burst was acknowledged.
    produced: Duration,
    burst: Vec<Arrival>,
    /// Whether every click of the burst arrived within [`RUN_TIMEOUT`].
    complete: bool,
    duplicates: u64,
    /// Latencies of the single clicks sent after the burst.
    idle_ms: Vec<f64>,
    cpu: CpuUse,
}

/// CPU time used so far, by this process (stages, producer, receiver) and by the broker.
struct CpuSample {
    at: Instant,
    own: Option<f64>,
    broker: Option<f64>,
}

/// Average cores kept busy between two samples.
struct CpuUse {
    own: Option<f64>,
    broker: Option<f64>,
}

impl CpuSample {
    fn take(brokers: &[String]) -> Self {
        let broker = (!brokers.is_empty())
            .then(|| {
                brokers
                    .iter()
                    .map(|p| procfs::cpu_seconds(p))
                    .sum::<Option<f64>>()
            })
            .flatten();
        Self {
            at: Instant::now(),
            own: procfs::cpu_seconds("self"),
            broker,
        }
    }

    fn since(&self, before: &Self) -> CpuUse {
        let wall = (self.at - before.at).as_secs_f64();
        let cores = |a: Option<f64>, b: Option<f64>| Some((a? - b?) / wall);
        CpuUse {
            own: cores(self.own, before.own),
            broker: cores(self.broker, before.broker),
        }
    }
}

/// The section's rows from what the receiver saw.
fn report(c: &Ceilings, m: &Measured) -> Vec<Row> {
    let last = m
        .burst
        .iter()
        .map(|a| a.at)
        .max()
        .unwrap_or(m.first_produce);
    let rate = m.burst.len() as f64 / (last - m.first_produce).as_secs_f64();
    let mut latencies: Vec<f64> = m.burst.iter().map(|a| a.latency_ms).collect();
    latencies.sort_by(f64::total_cmp);
    let mut idle = m.idle_ms.clone();
    idle.sort_by(f64::total_cmp);
    let thin = m.burst.iter().filter(|a| a.thin).count();

    let signing_all = c.signing.cavage_per_core * c.cores as f64;
    let mut vs = format!("{} of signing ({} cores)", pct(rate, signing_all), c.cores);
    if let Some(post) = c.post_per_s {
        vs.push_str(&format!(", {} of loopback POST", pct(rate, post)));
    }
    if !m.complete {
        vs.push_str(&format!(
            "; INCOMPLETE: {}/{EVENTS} within {RUN_TIMEOUT:?}",
            m.burst.len()
        ));
    }
    if thin > 0 {
        vs.push_str(&format!("; {thin} unjoined"));
    }
    if m.duplicates > 0 {
        vs.push_str(&format!("; {} duplicate POSTs", m.duplicates));
    }
    let burst_latency = |what: &str, q: f64| {
        Row::num(
            SECTION,
            format!("burst: produced → POST received, {what}"),
            quantile(&latencies, q),
            "ms",
        )
    };
    let idle_latency = |what: &str, q: f64| {
        Row::num(
            SECTION,
            format!("single click, idle pipeline, {what} of {}", idle.len()),
            quantile(&idle, q),
            "ms",
        )
    };
    vec![
        Row::num(
            SECTION,
            format!("burst: {EVENTS} clicks produced (acked), one key"),
            EVENTS as f64 / m.produced.as_secs_f64(),
            "events/s",
        ),
        Row::num(
            SECTION,
            "burst: deliveries, first produce → last POST",
            rate,
            "deliveries/s",
        )
        .vs(vs),
        burst_latency("p50", 0.5),
        burst_latency("p99", 0.99),
        Row::num(
            SECTION,
            "burst: CPU busy, this process (3 stages, producer, receiver)",
            m.cpu.own.unwrap_or(f64::NAN),
            "cores",
        )
        .vs(format!(
            "signing needs {:.2} cores of it",
            rate / c.signing.cavage_per_core
        )),
        Row::num(
            SECTION,
            "burst: CPU busy, broker (Tansu, separate process)",
            m.cpu.broker.unwrap_or(f64::NAN),
            "cores",
        ),
        idle_latency("p50", 0.5),
        idle_latency("max", 1.0),
    ]
}
