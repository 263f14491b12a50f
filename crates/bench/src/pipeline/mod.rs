//! Section 5, the pipeline: the local broker, the profiles, tracking and sender stages as
//! separate processes (release binaries), and the receiver in a process of its own; CPU is
//! read per process from `/proc`, so Hookline's own cost per delivery stands apart from the
//! broker's and the receiver's.
//!
//! Four databases with one subscription each and 64 profiles; a click is one signed delivery
//! (Copernica RSA signature). In order:
//!
//! 1. **Idle**: nothing produced for [`IDLE_WINDOW`]: what the idle pipeline costs the broker
//!    and the stages.
//! 2. **Single clicks**: [`SINGLE_CLICKS`] clicks one at a time on the idle pipeline: latency
//!    with nothing ahead.
//! 3. **Bursts** of 1×, 4× and 16× [`BURST`] clicks: throughput and CPU per delivery, which
//!    should stay flat as the count grows. The 16× burst's rate is the sustained peak. Then
//!    the 4× burst once more, signed with the `standard-webhooks` profile (Ed25519).
//! 4. **Open loop** at 25, 50, 75 and 100 % of that peak for [`LEVEL_TIME`] each (the first
//!    [`LEVEL_WARMUP`] dropped, for latency and CPU), [`REPEATS`] times: latency percentiles
//!    at a known load. A level starts when the previous one has been produced; the previous
//!    one's tail arrives during the warm-up.
//!
//! Latency is from the click's intended produce time to the POST's arrival at the receiver.
//! Only loopback addresses are contacted.

mod load;
pub mod receiver;
mod report;
mod stages;

use std::time::{Duration, Instant};

use anyhow::Context;
use hookline_kafka::producer::Acks;
use hookline_kafka::Producer;
use hookline_testkit::{read_until, Broker, TestTopics};
use rdkafka::message::Message;

use crate::procfs;
use crate::table::Row;
use load::Load;
use receiver::ReceiverProcess;
use stages::Stages;

pub use report::Ceilings;

const SECTION: &str = "pipeline";
const PARTITIONS: i32 = 3;
pub const IDLE_WINDOW: Duration = Duration::from_secs(10);
pub const SINGLE_CLICKS: usize = 50;
pub const BURST: usize = 2000;
pub const BURST_TIMES: [usize; 3] = [1, 4, 16];
pub const LEVELS: [f64; 4] = [0.25, 0.5, 0.75, 1.0];
pub const LEVEL_TIME: Duration = Duration::from_secs(20);
pub const LEVEL_WARMUP: Duration = Duration::from_secs(5);
pub const REPEATS: usize = 3;
const SETUP_TIMEOUT: Duration = Duration::from_secs(90);

/// How much of the section runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything.
    All,
    /// The idle cost and the single clicks (for comparing fetch settings).
    Idle,
    /// The idle cost, the single clicks and the bursts, without the open-loop rounds (for
    /// comparing CPU per delivery).
    Bursts,
}

/// Runs the section, or says why not (the broker is optional on a developer machine).
pub async fn run(c: &Ceilings, scope: Scope) -> Vec<Row> {
    let bin = hookline_testkit::broker::tansu_bin();
    if !bin.exists() {
        let why = format!("no broker at {}; run `make broker`", bin.display());
        return vec![Row::skipped(SECTION, "the whole section", why)];
    }
    match measure(c, scope).await {
        Ok(rows) => rows,
        Err(e) => vec![Row::failed(SECTION, "the whole section", format!("{e:#}"))],
    }
}

/// The processes and clients of one run. Fields drop in this order: the stages stop while the
/// broker still answers (stopped after it, a stage waits out its group session on every
/// consumer and is killed), and the broker goes last.
struct Run {
    stages: Stages,
    receiver: ReceiverProcess,
    producer: Producer,
    t: TestTopics,
    broker: Broker,
}

/// CPU seconds used so far by each process of interest.
#[derive(Clone)]
pub struct CpuSample {
    at: Instant,
    stages: Vec<Option<f64>>,
    broker: Option<f64>,
    receiver: Option<f64>,
}

/// CPU seconds used between two samples, and the wall time between them.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    pub wall: f64,
    /// The three stages together.
    pub hookline: f64,
    pub broker: f64,
    pub receiver: f64,
}

impl Run {
    /// Writes the subscriptions again with the signature profile `profile` (the Copernica
    /// one when `None`).
    async fn sign_with(&self, profile: Option<&str>) -> anyhow::Result<()> {
        let url = format!("http://{}/webhook", self.receiver.addr);
        let mut acks = Acks::new();
        for d in 0..load::DATABASES {
            let (id, mut v) = load::subscription(d, &url);
            if let Some(p) = profile {
                v["signature"] = p.into();
            }
            self.producer
                .send_json(&mut acks, &self.t.topics.subscriptions, id.as_bytes(), &v)
                .await?;
        }
        acks.wait().await?;
        Ok(())
    }

    fn sample(&self) -> CpuSample {
        let brokers = procfs::children_named("tansu");
        CpuSample {
            at: Instant::now(),
            stages: self.stages.cpu_seconds(),
            broker: brokers.iter().map(|p| procfs::cpu_seconds(p)).sum(),
            receiver: procfs::cpu_seconds(&self.receiver.pid()),
        }
    }

    fn since(&self, before: &CpuSample) -> CpuUse {
        let now = self.sample();
        let d = |a: Option<f64>, b: Option<f64>| a.zip(b).map_or(f64::NAN, |(a, b)| a - b);
        CpuUse {
            wall: (now.at - before.at).as_secs_f64(),
            hookline: now
                .stages
                .iter()
                .zip(&before.stages)
                .map(|(a, b)| d(*a, *b))
                .sum(),
            broker: d(now.broker, before.broker),
            receiver: d(now.receiver, before.receiver),
        }
    }

    fn load(&self) -> Load<'_> {
        Load {
            producer: &self.producer,
            topic: &self.t.topics.tracking,
        }
    }

    /// Waits until the receiver has `count` first arrivals whose id starts with `run-`.
    async fn wait_for(
        &mut self,
        run: &str,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<bool> {
        let prefix = format!("{run}-");
        let deadline = Instant::now() + timeout;
        let mut have = 0;
        let mut looked = 0;
        loop {
            self.receiver.refresh()?;
            have += self.receiver.seen[looked..]
                .iter()
                .filter(|a| a.id.starts_with(&prefix))
                .count();
            looked = self.receiver.seen.len();
            if have >= count {
                return Ok(true);
            }
            self.stages.check_running()?;
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Latencies (ms) of run `run`'s clicks numbered from `from` on, and how many were not joined.
    fn latencies(&self, run: &str, from: usize) -> (Vec<f64>, usize) {
        let prefix = format!("{run}-");
        let mut out = Vec::new();
        let mut unjoined = 0;
        for a in &self.receiver.seen {
            let Some(n) = a.id.strip_prefix(&prefix) else {
                continue;
            };
            if n.parse::<usize>().is_ok_and(|n| n >= from) {
                out.push(a.latency_ms);
                unjoined += usize::from(a.unjoined);
            }
        }
        out.sort_by(f64::total_cmp);
        (out, unjoined)
    }
}

async fn setup(dir: &std::path::Path) -> anyhow::Result<Run> {
    let broker = tokio::task::spawn_blocking(Broker::start)
        .await
        .context("starting the local broker")?;
    let bootstrap = broker.bootstrap.clone();
    let t = tokio::spawn(async move { TestTopics::create(&bootstrap, PARTITIONS).await })
        .await
        .context("creating topics")?;
    let receiver = ReceiverProcess::start()?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let key = stages::write_key(dir)?;

    let producer = Producer::new(&t.settings)?;
    let mut acks = Acks::new();
    let url = format!("http://{}/webhook", receiver.addr);
    for d in 0..load::DATABASES {
        let (id, v) = load::subscription(d, &url);
        producer
            .send_json(&mut acks, &t.topics.subscriptions, id.as_bytes(), &v)
            .await?;
    }
    for n in 0..load::PROFILES {
        let (key, v) = load::profile_create(n);
        producer
            .send_json(&mut acks, &t.topics.profile_changes, key.as_bytes(), &v)
            .await?;
    }
    acks.wait().await?;
    let stages = Stages::start(&t, &key, dir)?;
    let mut run = Run {
        stages,
        receiver,
        producer,
        t,
        broker,
    };
    // Every profile in the table, then one click per profile through the whole pipeline, so
    // that group joins, restores and connections are not measured.
    let (settings, table) = (run.t.settings.clone(), run.t.topics.profiles.clone());
    let rows = tokio::task::spawn_blocking(move || {
        read_until(&settings, &table, SETUP_TIMEOUT, |ms| {
            let keys: std::collections::HashSet<_> = ms.iter().filter_map(|m| m.key()).collect();
            keys.len() >= load::PROFILES
        })
    })
    .await?;
    anyhow::ensure!(
        rows.len() >= load::PROFILES,
        "the profiles did not reach the profiles topic within {SETUP_TIMEOUT:?}"
    );
    run.load().burst("warmup", load::PROFILES).await?;
    anyhow::ensure!(
        run.wait_for("warmup", load::PROFILES, SETUP_TIMEOUT)
            .await?,
        "the warm-up clicks were not delivered within {SETUP_TIMEOUT:?}"
    );
    Ok(run)
}

async fn measure(c: &Ceilings, scope: Scope) -> anyhow::Result<Vec<Row>> {
    let dir = std::env::temp_dir().join(format!("hookline-bench-{}", std::process::id()));
    let result = async {
        let mut run = setup(&dir).await?;
        phases(&mut run, c, scope).await
    }
    .await;
    // The stages' logs stay when something failed.
    match result {
        Ok(rows) => {
            let _ = std::fs::remove_dir_all(&dir);
            Ok(rows)
        }
        Err(e) => Err(e.context(format!("stage logs kept in {}", dir.display()))),
    }
}

/// The 4× burst again with every subscription on the `standard-webhooks` profile (Ed25519),
/// for deliveries per Hookline CPU-second with that signature. The subscriptions go back to
/// the Copernica profile afterwards, for the open-loop rounds.
async fn ed25519_burst(run: &mut Run) -> anyhow::Result<report::Burst> {
    crate::progress("5c burst of Standard Webhooks (Ed25519) deliveries");
    run.sign_with(Some("standard-webhooks")).await?;
    // The stages follow the subscription table within a second; a warm-up burst makes sure
    // the measured one is signed with the new profile throughout.
    tokio::time::sleep(Duration::from_secs(2)).await;
    run.load().burst("ed-warmup", load::PROFILES).await?;
    run.wait_for("ed-warmup", load::PROFILES, SETUP_TIMEOUT)
        .await?;
    let burst = measured_burst(run, "ed25519", BURST * 4).await?;
    run.sign_with(None).await?;
    // The open-loop rounds' first seconds are dropped anyway.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(burst)
}

/// `count` clicks at once as run `name`: how fast they were delivered and at what CPU.
async fn measured_burst(run: &mut Run, name: &str, count: usize) -> anyhow::Result<report::Burst> {
    let before = run.sample();
    let started = Instant::now();
    run.load().burst(name, count).await?;
    let complete = run.wait_for(name, count, Duration::from_secs(120)).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = run.since(&before);
    let (lat, unjoined) = run.latencies(name, 0);
    Ok(report::Burst {
        count,
        delivered: lat.len(),
        complete,
        rate: lat.len() as f64 / elapsed,
        cpu,
        unjoined,
    })
}

async fn phases(run: &mut Run, c: &Ceilings, scope: Scope) -> anyhow::Result<Vec<Row>> {
    let mut m = report::Measured::default();
    crate::progress("5a idle pipeline");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = run.sample();
    tokio::time::sleep(IDLE_WINDOW).await;
    m.idle = Some(run.since(&before));

    crate::progress("5b single clicks");
    for n in 0..SINGLE_CLICKS {
        tokio::time::sleep(Duration::from_millis(30)).await;
        run.load().one("single", n).await?;
        run.wait_for("single", n + 1, Duration::from_secs(10))
            .await?;
    }
    m.single = run.latencies("single", 0).0;
    if scope == Scope::Idle {
        return Ok(report::rows(c, &m));
    }

    for times in BURST_TIMES {
        crate::progress(&format!("5c burst of {}", BURST * times));
        let burst = measured_burst(run, &format!("burst{times}"), BURST * times).await?;
        m.bursts.push(burst);
    }
    let peak = m.bursts.last().map_or(0.0, |b| b.rate);
    m.ed25519 = Some(ed25519_burst(run).await?);
    if scope == Scope::Bursts {
        m.peak_rss = run.stages.peak_rss_kib();
        return Ok(report::rows(c, &m));
    }
    // Levels follow each other without waiting for the previous one's tail: that tail is
    // delivered during the next level's warm-up, which is dropped, and each level's CPU is
    // counted from the end of its warm-up. Latencies are collected at the end.
    let mut levels = Vec::new();
    for repeat in 0..REPEATS {
        for level in LEVELS {
            let rate = (peak * level).max(1.0);
            crate::progress(&format!(
                "5d open loop {:.0} % ({rate:.0}/s), round {} of {REPEATS}",
                level * 100.0,
                repeat + 1
            ));
            let name = format!("open{}x{repeat}", (level * 100.0) as u32);
            let r: &Run = run;
            let load = r.load();
            let (sent, steady) = tokio::join!(load.open_loop(&name, rate, LEVEL_TIME), async {
                tokio::time::sleep(LEVEL_WARMUP).await;
                r.sample()
            });
            let sent = sent?;
            levels.push((name, level, rate, sent, run.since(&steady)));
        }
    }
    for (name, level, rate, sent, cpu) in levels {
        run.wait_for(&name, sent, Duration::from_secs(30)).await?;
        let skip = (rate * LEVEL_WARMUP.as_secs_f64()) as usize;
        let (lat, _) = run.latencies(&name, skip);
        m.open.push(report::Level {
            level,
            rate,
            sent,
            latencies: lat,
            cpu,
        });
    }
    m.duplicates = run.receiver.duplicates()?;
    m.peak_rss = run.stages.peak_rss_kib();
    crate::progress("5e stopping the stages and the broker");
    let _ = &run.broker;
    Ok(report::rows(c, &m))
}
