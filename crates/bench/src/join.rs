//! Section "join" (`make bench-full`): the join stages' own work, with tables of 1 and 10 million profiles.
//!
//! The 1-million-profile part runs in a child process (this binary, re-run with
//! [`CHILD_ARG`]), so its resident memory is measured alone, not on top of the other sections:
//!
//! - **table restore into the store**: 1M (10M) profile rows through `StoreSink`, the sink the table
//!   thread feeds record by record; it writes them in batches per partition (`apply_table_batch`:
//!   rows + checkpoint in one write batch) after each poll or every 5,000 records.
//! - **join**: on one thread, against that table, with random keys: the lookup (`get` + parsing
//!   the row) and `hookline_join::tracking::enrich`; and the whole per-record work of the
//!   tracking stage without Kafka I/O (validation against the schema, decoding, lookup, enrich,
//!   routing, building the delivery and serializing it).
//! - **RSS** of the child after the restore, and its peak after the lookups.
//!
//! The broker part runs here: [`BROKER_ROWS`] profile rows produced to a local Tansu broker and
//! restored through the real `TableTail` into a fresh store, as a join stage does on assignment.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use hookline_join_runtime::ProfileStore;
use hookline_kafka::producer::Acks;
use hookline_kafka::table::{StartAt, TableSink, TableTail};
use hookline_kafka::Producer;
use hookline_model::{SourcePosition, Subscription, TrackingEvent};
use hookline_schemas::SchemaKind;
use hookline_telemetry::Metrics;
use hookline_testkit::{Broker, TestTopics};

use crate::signing::SigningCeiling;
use crate::table::{pct, Row};
use crate::timing::{best_of, ROUNDS};

const SECTION: &str = "join";
/// The first argument that makes this binary run the table part for a number of profiles.
pub const CHILD_ARG: &str = "--join-child";
/// Table sizes of `make bench-full`.
pub const SIZES: [u64; 2] = [1_000_000, 10_000_000];
/// Partitions of the table, as a stage holding 6 of them would have it.
const PARTITIONS: u64 = 6;
const BROKER_ROWS: u64 = 100_000;
const RESULT_PREFIX: &str = "JOIN_RESULT ";

/// What the child measures.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct ChildResult {
    restore_rows_per_s: f64,
    restore_s: f64,
    rss_after_restore_kib: u64,
    lookup_enrich_per_s: f64,
    full_record_per_s: f64,
    peak_rss_kib: u64,
    disk_bytes: u64,
}

/// Runs the section; the broker part is skipped when the broker is not installed.
pub fn run(budget: Duration, ceiling: &SigningCeiling, rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let mut rows = Vec::new();
    for profiles in SIZES {
        let size = format!("{}M", profiles / 1_000_000);
        crate::progress(&format!("6 join, {size} profiles"));
        match run_child(budget, profiles) {
            Ok(r) => rows.extend(child_rows(&r, ceiling, &size)),
            Err(e) => rows.push(Row::failed(
                SECTION,
                format!("{size}-profile table"),
                format!("{e:#}"),
            )),
        }
    }
    let what = format!(
        "table restore from the broker, {}k rows (TableTail → store)",
        BROKER_ROWS / 1000
    );
    let bin = hookline_testkit::broker::tansu_bin();
    if !bin.exists() {
        rows.push(Row::skipped(
            SECTION,
            what,
            format!("no broker at {}; run `make broker`", bin.display()),
        ));
    } else {
        match rt.block_on(broker_restore()) {
            Ok(rate) => rows.push(Row::num(SECTION, what, rate, "rows/s")),
            Err(e) => rows.push(Row::failed(SECTION, what, format!("{e:#}"))),
        }
    }
    rows
}

fn child_rows(r: &ChildResult, ceiling: &SigningCeiling, size: &str) -> Vec<Row> {
    let mib = |kib: u64| kib as f64 / 1024.0;
    vec![
        Row::num(
            SECTION,
            format!("lookup + enrich, {size}-profile table, random keys"),
            r.lookup_enrich_per_s,
            "events/s/core",
        )
        .vs(format!(
            "costs {} of one signature",
            pct(ceiling.cavage_per_core, r.lookup_enrich_per_s)
        )),
        Row::num(
            SECTION,
            "whole record: validate + decode + lookup + enrich + route + delivery",
            r.full_record_per_s,
            "events/s/core",
        )
        .vs(format!(
            "costs {} of one signature",
            pct(ceiling.cavage_per_core, r.full_record_per_s)
        )),
        Row::num(
            SECTION,
            format!("table restore into the store, {size} rows (StoreSink, batched)"),
            r.restore_rows_per_s,
            "rows/s",
        )
        .vs(format!(
            "{:.0} s for {size} profiles (target ≥ 200,000 rows/s)",
            r.restore_s
        )),
        Row::num(
            SECTION,
            format!("RSS after restoring {size} profiles (child process)"),
            mib(r.rss_after_restore_kib),
            "MiB",
        ),
        Row::num(
            SECTION,
            format!("peak RSS, {size} profiles restored and joined (VmHWM)"),
            mib(r.peak_rss_kib),
            "MiB",
        ),
        Row::num(
            SECTION,
            format!("store on disk, {size} profiles"),
            r.disk_bytes as f64 / (1024.0 * 1024.0),
            "MiB",
        ),
    ]
}

/// Runs the table part for `profiles` profiles in a child process and reads its result line.
fn run_child(budget: Duration, profiles: u64) -> anyhow::Result<ChildResult> {
    let dir = std::env::temp_dir().join(format!("hookline-bench-join-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg(CHILD_ARG)
        .arg(&dir)
        .arg(budget.as_millis().to_string())
        .arg(profiles.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the join child process");
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    anyhow::ensure!(
        out.status.success(),
        "the join child failed: {}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX))
        .context("the join child printed no result")?;
    Ok(serde_json::from_str(line)?)
}

/// The child's entry point: `hookline-bench --join-child <dir> <budget ms>`.
pub fn child_main(args: &[String]) -> anyhow::Result<()> {
    let dir = PathBuf::from(args.first().context("a store folder")?);
    let budget = Duration::from_millis(args.get(1).context("a budget")?.parse()?);
    let profiles: u64 = args.get(2).context("a number of profiles")?.parse()?;
    let r = child(&dir, budget, profiles)?;
    println!("{RESULT_PREFIX}{}", serde_json::to_string(&r)?);
    Ok(())
}

fn key(i: u64) -> String {
    format!("12:{i}")
}

fn partition(i: u64) -> i32 {
    (i % PARTITIONS) as i32
}

/// A row as the `profiles` topic holds it (the bench fixtures' ten fields). Built by splicing
/// the number into a template serialized once, so that the restore rate measures the store
/// and not the fixture's JSON encoding (which cost more than the write itself).
fn row(i: u64) -> Vec<u8> {
    static TEMPLATE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    const MARK: &str = "@ID@";
    let parts = TEMPLATE.get_or_init(|| {
        let fields = crate::fixtures::profile_fields(&format!("Profile {MARK}"), "Utrecht");
        let v = serde_json::json!({"account": "1001", "database": "12",
            "profile": MARK, "created": "2026-01-01T00:00:00Z",
            "modified": "2026-11-01T00:00:00Z", "fields": fields, "interests": ["vip", "newsletter"],
            "subprofiles": {}});
        v.to_string().split(MARK).map(str::to_owned).collect()
    });
    parts.join(&i.to_string()).into_bytes()
}

/// xorshift64*: random keys without a dependency; the sequence is the same every run.
struct Keys(u64, u64);

impl Keys {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % self.1
    }
}

/// Writes `profiles` rows into the store as the table thread would; the seconds it took.
fn fill(store: &ProfileStore, profiles: u64) -> anyhow::Result<f64> {
    let mut sink = store.sink(Metrics::new(), "profiles");
    let mut offsets = [0i64; PARTITIONS as usize];
    let started = Instant::now();
    for i in 0..profiles {
        let p = partition(i);
        let value = row(i);
        sink.apply(
            p,
            offsets[p as usize],
            Some(key(i).as_bytes()),
            Some(&value),
        );
        offsets[p as usize] += 1;
    }
    // What the table thread does after each poll: the last partial batches go in.
    sink.flush();
    store.flush()?;
    Ok(started.elapsed().as_secs_f64())
}

/// The tracking stage's per-record inputs: click payloads (with their keys) for random
/// profiles among the first `profiles`.
fn clicks(profiles: u64) -> Vec<(String, Vec<u8>)> {
    let mut keys = Keys(0x9e37_79b9_7f4a_7c15, profiles);
    (0..4096)
        .map(|n| {
            let i = keys.next();
            let v = crate::fixtures::click(&format!("evt-{n}"), "12", &i.to_string());
            (key(i), serde_json::to_vec(&v).expect("click serializes"))
        })
        .collect()
}

fn child(dir: &Path, budget: Duration, profiles: u64) -> anyhow::Result<ChildResult> {
    let store = ProfileStore::open(dir)?;
    let restore_s = fill(&store, profiles)?;
    let rss_after_restore_kib = crate::procfs::status_kib("VmRSS").unwrap_or(0);
    let clicks = clicks(profiles);
    let events: Vec<TrackingEvent> = clicks
        .iter()
        .map(|(_, v)| serde_json::from_slice(v).expect("click decodes"))
        .collect();
    let subscriptions = subscription_table()?;
    let (mut n1, mut n2, mut joined, mut looked_up) = (0usize, 0usize, 0u64, 0u64);
    let mut lookup_enrich = || {
        let ev = &events[n1 % events.len()];
        n1 += 1;
        let k = ev.key().to_string();
        let i: u64 = ev.profile.to_string().parse().unwrap_or(0);
        let profile = store.get(partition(i), &k).expect("store read");
        joined += u64::from(profile.is_some());
        looked_up += 1;
        std::hint::black_box(hookline_join::tracking::enrich(
            ev,
            profile.as_ref(),
            "email",
        ));
    };
    let mut full_record = || {
        let (k, payload) = &clicks[n2 % clicks.len()];
        n2 += 1;
        let ev: TrackingEvent = hookline_join_runtime::validate::decode_input(
            SchemaKind::TrackingEvent,
            Some(k.as_bytes()),
            Some(payload),
            1 << 20,
            |e: &TrackingEvent| e.key().to_string(),
        )
        .expect("a valid click");
        let i: u64 = ev.profile.to_string().parse().unwrap_or(0);
        let profile = store.get(partition(i), k).expect("store read");
        let enriched = hookline_join::tracking::enrich(&ev, profile.as_ref(), "email");
        let source = SourcePosition {
            topic: "hookline.tracking".into(),
            partition: partition(i),
            offset: n2 as i64,
            timestamp_ms: None,
            traceparent: None,
        };
        for s in subscriptions.matching(&enriched, time::OffsetDateTime::now_utc()) {
            let d = hookline_routing::build_delivery(&enriched, &s.sub, Some(source.clone()));
            std::hint::black_box(serde_json::to_vec(&d).expect("delivery serializes"));
        }
    };
    let rates = best_of(
        ROUNDS,
        budget * 2,
        &mut [&mut lookup_enrich, &mut full_record],
    );
    anyhow::ensure!(
        joined == looked_up,
        "only {joined} of {looked_up} lookups found their profile"
    );
    Ok(ChildResult {
        restore_rows_per_s: profiles as f64 / restore_s,
        restore_s,
        rss_after_restore_kib,
        lookup_enrich_per_s: rates[0],
        full_record_per_s: rates[1],
        peak_rss_kib: crate::procfs::status_kib("VmHWM").unwrap_or(0),
        disk_bytes: dir_size(dir),
    })
}

/// One subscription on the clicks' database, with the condition the end-to-end section uses.
fn subscription_table() -> anyhow::Result<hookline_routing::SubscriptionTable> {
    let sub: Subscription = serde_json::from_value(serde_json::json!({"id": "sub-bench",
        "account": "1001", "database": "12", "events": ["click"],
        "url": "https://hooks.example.com/in", "format": "json", "status": "active",
        "conditions": {"field": "city", "op": "equals", "value": "Utrecht"}}))?;
    let mut table = hookline_routing::SubscriptionTable::new();
    table.upsert(sub, true)?;
    Ok(table)
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Produces [`BROKER_ROWS`] rows to a fresh `profiles` topic (3 partitions) and restores them
/// through `TableTail` into a new store; returns rows per second of the restore alone.
async fn broker_restore() -> anyhow::Result<f64> {
    let broker = tokio::task::spawn_blocking(Broker::start)
        .await
        .context("starting the local broker")?;
    let t = TestTopics::create(&broker.bootstrap, 3).await;
    let producer = Producer::new(&t.settings)?;
    let mut acks = Acks::new();
    for i in 0..BROKER_ROWS {
        producer
            .send(
                &mut acks,
                &t.topics.profiles,
                Some(key(i).as_bytes()),
                Some(&row(i)),
            )
            .await?;
        if acks.len() >= 10_000 {
            acks.wait().await?;
        }
    }
    acks.wait().await?;
    let dir = std::env::temp_dir().join(format!("hookline-bench-restore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rate = {
        let store = ProfileStore::open(&dir)?;
        let metrics = Metrics::new();
        let started = Instant::now();
        let tail = TableTail::spawn(
            &t.settings,
            "hookline-bench-restore",
            &t.topics.profiles,
            store.sink(metrics.clone(), "profiles"),
        )?;
        tail.assign((0..3).map(|p| (p, StartAt::Beginning)).collect());
        for p in 0..3 {
            tail.caught_up(p).await?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let read = metrics
            .table_records
            .get_metric_with_label_values(&["profiles"])
            .map(|m| m.get())
            .unwrap_or(0);
        anyhow::ensure!(read == BROKER_ROWS, "restored {read} of {BROKER_ROWS} rows");
        read as f64 / elapsed
    };
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rate)
}
