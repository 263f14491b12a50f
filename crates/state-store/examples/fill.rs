//! Fills a fresh store with `ROWS` profiles (default 1,000,000) of ~300-byte JSON the way a
//! table restore does, then measures point reads, and prints rates and memory.
//!
//! ```sh
//! ROWS=1000000 cargo run --release -p hookline-state-store --example fill
//! ```
//!
//! Env: `ROWS`, `PARTITIONS` (default 12), `BATCH` (records per `apply_table_batch`, default
//! 500), `READS` (default min(ROWS, 1,000,000)), `CACHE_MB` (default 64). The store lives in a
//! directory under the system temp dir, removed at the end.

use std::time::{Duration, Instant};

use hookline_state_store::{StateStore, StoreConfig, TableRecord};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.replace('_', "").parse().expect(name))
        .unwrap_or(default)
}

fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("VmRSS:") || l.starts_with("VmHWM:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// CPU seconds of the whole process (all threads, including fjall's workers).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
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

/// A profile as `hookline-profiles` writes it, ~300 bytes.
fn profile(id: u64) -> Vec<u8> {
    format!(
        r#"{{"account":"1","database":"12","profile":"{id}","created":"2024-03-01 10:00:00","modified":"2025-11-26 01:08:15","fields":{{"email":"user{id}@example.com","firstname":"First{}","lastname":"Last{}","city":"Amsterdam","country":"NL","status":"active"}},"interests":["news","offers"],"subprofiles":{{}}}}"#,
        id % 9973,
        id % 7919
    )
    .into_bytes()
}

/// Profile ids in a scattered order, like the key order of a compacted topic: multiplying by a
/// prime modulo `n` is a bijection on 0..n unless `n` is a multiple of that prime.
fn scattered(i: u64, n: u64) -> u64 {
    (u128::from(i) * 2_654_435_761 % u128::from(n)) as u64
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// What the run is asked to do (environment variables, see the top of the file).
struct Plan {
    rows: u64,
    partitions: u64,
    batch: usize,
    reads: u64,
}

fn main() {
    let rows = env("ROWS", 1_000_000);
    let plan = Plan {
        rows,
        partitions: env("PARTITIONS", 12).max(1),
        batch: env("BATCH", 500).max(1) as usize,
        reads: env("READS", rows.min(1_000_000)),
    };
    let config = StoreConfig {
        cache_bytes: env("CACHE_MB", 64) << 20,
        ..StoreConfig::default()
    };
    let dir =
        std::env::temp_dir().join(format!("hookline-state-store-fill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "fill: {} rows, {} partitions, batches of {}, cache {} MiB, in {}",
        plan.rows,
        plan.partitions,
        plan.batch,
        config.cache_bytes >> 20,
        dir.display()
    );
    let store = StateStore::open_with(&dir, &config).expect("open");
    let next_offset = write(&store, &plan);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    read_present(&store, &plan, &mut rng);
    read_absent(&store, &plan, &mut rng);
    println!(
        "disk: {:.0} MB (fjall's count {:.0} MB); len_approx {}",
        dir_size(&dir) as f64 / 1e6,
        store.disk_space().unwrap_or(0) as f64 / 1e6,
        store.len_approx()
    );
    drop(store);
    reopen(&dir, &config, &plan, &next_offset);
    std::fs::remove_dir_all(&dir).expect("removing the store directory");
}

/// Writes every row in batches per partition, as the table thread does; the next offset of
/// each partition.
fn write(store: &StateStore, plan: &Plan) -> Vec<i64> {
    let (rows, partitions, batch) = (plan.rows, plan.partitions, plan.batch);
    let mut pending: Vec<Vec<TableRecord>> =
        (0..partitions).map(|_| Vec::with_capacity(batch)).collect();
    let mut next_offset = vec![0i64; partitions as usize];
    let mut value_bytes = 0u64;
    let mut batches = 0u64;
    let cpu = cpu_seconds();
    let start = Instant::now();
    let mut last_report = Instant::now();
    for i in 0..rows {
        let id = scattered(i, rows);
        let p = (id % partitions) as usize;
        let value = profile(id);
        value_bytes += value.len() as u64;
        pending[p].push((next_offset[p], format!("12:{id}").into_bytes(), Some(value)));
        next_offset[p] += 1;
        if pending[p].len() == batch {
            store
                .apply_table_batch(p as i32, &pending[p])
                .expect("apply");
            pending[p].clear();
            batches += 1;
            // The stage flushes before it commits offsets, about once a second.
            if batches.is_multiple_of(100) {
                store.flush().expect("flush");
            }
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            last_report = Instant::now();
            println!(
                "  {i} rows, {:.0} rows/s, {}",
                i as f64 / start.elapsed().as_secs_f64(),
                memory()
            );
        }
    }
    for (p, recs) in pending.iter().enumerate() {
        store.apply_table_batch(p as i32, recs).expect("apply");
    }
    store.flush().expect("flush");
    let write = start.elapsed();
    println!(
        "write: {rows} rows ({:.0} bytes avg) in {:.1} s = {:.0} rows/s; cpu {:.1} s; {}",
        value_bytes as f64 / rows.max(1) as f64,
        write.as_secs_f64(),
        rows as f64 / write.as_secs_f64(),
        cpu_seconds() - cpu,
        memory()
    );
    next_offset
}

/// Random point reads of rows that are there, each checked.
fn read_present(store: &StateStore, plan: &Plan, rng: &mut Rng) {
    let (rows, partitions, reads) = (plan.rows, plan.partitions, plan.reads);
    let mut latencies = Vec::with_capacity(reads as usize);
    let cpu = cpu_seconds();
    let start = Instant::now();
    for _ in 0..reads {
        let id = rng.next() % rows;
        let key = format!("12:{id}");
        let t = Instant::now();
        let value = store
            .get((id % partitions) as i32, key.as_bytes())
            .expect("get");
        latencies.push(t.elapsed());
        assert_eq!(value, Some(profile(id)), "row {id}");
    }
    let read = start.elapsed();
    latencies.sort_unstable();
    println!(
        "read: {reads} random point reads in {:.1} s = {:.0} rows/s; cpu {:.1} s; \
         latency p50 {:?} p99 {:?} max {:?}; {}",
        read.as_secs_f64(),
        reads as f64 / read.as_secs_f64(),
        cpu_seconds() - cpu,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
        memory()
    );
}

/// Point reads of keys that are not there.
fn read_absent(store: &StateStore, plan: &Plan, rng: &mut Rng) {
    let (rows, partitions) = (plan.rows, plan.partitions);
    let misses = plan.reads.min(100_000);
    let start = Instant::now();
    for _ in 0..misses {
        let id = rows + rng.next() % rows;
        let key = format!("12:{id}");
        assert!(store
            .get((id % partitions) as i32, key.as_bytes())
            .expect("get")
            .is_none());
    }
    println!(
        "read: {misses} absent keys = {:.0} rows/s",
        misses as f64 / start.elapsed().as_secs_f64()
    );
}

/// Opens the store again, checks every partition's checkpoint, and drops one partition.
fn reopen(dir: &std::path::Path, config: &StoreConfig, plan: &Plan, next_offset: &[i64]) {
    let start = Instant::now();
    let store = StateStore::open_with(dir, config).expect("reopen");
    let reopen = start.elapsed();
    for p in 0..plan.partitions {
        assert_eq!(
            store.checkpoint(p as i32).expect("checkpoint"),
            Some(next_offset[p as usize]).filter(|&o| o > 0)
        );
    }
    let start = Instant::now();
    store.drop_partition(0).expect("drop");
    println!(
        "reopen: {:.2} s, checkpoints intact; drop_partition of {} rows: {:.2} s; {}",
        reopen.as_secs_f64(),
        next_offset[0],
        start.elapsed().as_secs_f64(),
        memory()
    );
}
