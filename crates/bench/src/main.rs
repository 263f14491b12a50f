//! `hookline-bench`: what bounds Hookline's throughput on this machine, as one table.
//!
//! Sections, each in its own module and each bounded in time:
//!
//! 1. [`signing`]: RSA-2048 signatures per second per core (aws-lc-rs, RustCrypto `rsa` as the
//!    reference) and full draft-cavage signing: the per-core bound of the pipeline.
//! 2. [`payload`]: encoding an enriched click as form, json and xml.
//! 3. [`routing`]: 10,000 subscriptions over 1,000 databases, events routed per second.
//! 4. [`loopback`]: POSTs per second through Hookline's HTTP client to a trivial local server.
//! 5. [`pipeline`]: the stages as separate processes on a local broker, the receiver in its
//!    own process: idle cost, single-click latency, bursts, open-loop latency at fractions of
//!    the peak, CPU per delivery per process (skipped when the broker is not installed).
//! 6. [`join`], with `--full` only (`make bench-full`): the join stages' work against tables
//!    of 1 and 10 million profiles (lookup + enrich per core, restore rows/s, RSS), in a child
//!    process; and a table restore from the local broker.
//!
//! Only loopback addresses are ever contacted. `docs/benchmarks.md` explains every row and
//! records a run. The stages' logs go to files in a temporary folder (removed afterwards).

mod fixtures;
mod join;
mod loopback;
mod payload;
mod pipeline;
mod procfs;
mod record;
mod routing;
mod signing;
mod table;
mod timing;

use std::time::{Duration, Instant};

use table::Row;

/// Time per measured row of the CPU sections.
const CPU_BUDGET: Duration = Duration::from_secs(1);
/// Time per payload format (encoding is fast; half a second gives hundreds of thousands of
/// samples).
const PAYLOAD_BUDGET: Duration = Duration::from_millis(500);
const POST_WARMUP: Duration = Duration::from_millis(500);
const POST_BUDGET: Duration = Duration::from_millis(1500);
const POST_CONCURRENCY: usize = 64;

/// The stages' allocator, so that what the bench measures in its own process (the join child's
/// store and lookups, the receiver, encoding and routing) runs as it does in a stage.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some(join::CHILD_ARG) => return join::child_main(&args[1..]),
        Some(pipeline::receiver::CHILD_ARG) => return pipeline::receiver::child_main(),
        _ => {}
    }
    let full = args.iter().any(|a| a == "--full");
    // Only the pipeline's idle cost and single-click latency: for comparing fetch settings
    // (`HOOKLINE_KAFKA_FETCH_WAIT_MAX_MS=…` reaches the stages).
    if args.iter().any(|a| a == "--idle") {
        return pipeline_only(pipeline::Scope::Idle);
    }
    // The pipeline up to its bursts (CPU per delivery), without the open-loop rounds.
    if args.iter().any(|a| a == "--bursts") {
        return pipeline_only(pipeline::Scope::Bursts);
    }
    if std::env::var_os("RUST_LOG").is_some() {
        hookline_telemetry::init_logging("text");
    }
    let write_to = write_target(&args)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut report = header(cores);
    print!("{report}");
    let steal_before = procfs::cpu_jiffies();
    let started = Instant::now();
    let rows = run_sections(full, cores)?;
    let tail = summary(&rows, steal_before, started);
    print!("{tail}");
    report += &tail;
    if let Some(file) = write_to {
        let command = if full {
            "make bench-full"
        } else {
            "make bench"
        };
        record::write(std::path::Path::new(&file), command, &report)?;
        eprintln!("bench: the table is recorded in {file}");
    }
    Ok(())
}

/// `--write FILE`: the report also replaces the recorded run in FILE (`record`).
fn write_target(args: &[String]) -> anyhow::Result<Option<String>> {
    args.iter()
        .position(|a| a == "--write")
        .map(|i| args.get(i + 1).cloned())
        .map(|f| {
            f.ok_or_else(|| {
                anyhow::anyhow!("--write needs a file, e.g. --write docs/benchmarks.md")
            })
        })
        .transpose()
}

/// Every section in turn (the join section with `full`), as table rows.
fn run_sections(full: bool, cores: usize) -> anyhow::Result<Vec<Row>> {
    let mut rows: Vec<Row> = Vec::new();
    let sections = if full { 6 } else { 5 };
    let event = fixtures::enriched("12", "Mike Jansen", "Utrecht", true);
    let json_body = hookline_payload::encode(hookline_payload::Format::Json, &event.body);

    progress(&format!("1/{sections} signing"));
    let (r, ceiling) = signing::run(CPU_BUDGET, &json_body)?;
    rows.extend(r);
    progress(&format!("2/{sections} payload"));
    rows.extend(payload::run(PAYLOAD_BUDGET, &event, &ceiling));
    progress(&format!("3/{sections} routing"));
    rows.extend(routing::run(CPU_BUDGET, &ceiling)?);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    progress(&format!("4/{sections} loopback POST"));
    let post = rt.block_on(loopback::run(
        POST_WARMUP,
        POST_BUDGET,
        POST_CONCURRENCY,
        json_body.clone().into(),
        &ceiling,
    ));
    let post_per_s = match post {
        Ok((r, rate)) => {
            rows.extend(r);
            Some(rate)
        }
        Err(e) => {
            rows.push(Row::failed(
                "loopback POST",
                "HttpClient POST",
                format!("{e:#}"),
            ));
            None
        }
    };
    progress(&format!(
        "5/{sections} pipeline (local broker, separate processes)"
    ));
    let ceilings = pipeline::Ceilings {
        cavage_per_core: ceiling.cavage_per_core,
        post_per_s,
        cores,
    };
    rows.extend(rt.block_on(pipeline::run(&ceilings, pipeline::Scope::All)));
    if full {
        progress("6/6 join (1M and 10M profiles, child process; restore from the local broker)");
        rows.extend(join::run(CPU_BUDGET, &ceiling, &rt));
    }
    rt.shutdown_timeout(Duration::from_secs(5));
    Ok(rows)
}

/// The table, the steal time during the run and the run's length.
fn summary(rows: &[Row], steal_before: Option<(u64, u64)>, started: Instant) -> String {
    let mut tail = format!("{}\n", table::render(rows));
    if let (Some((s0, t0)), Some((s1, t1))) = (steal_before, procfs::cpu_jiffies()) {
        let steal = (s1 - s0) as f64 / (t1 - t0).max(1) as f64;
        tail += &format!(
            "steal time during the run: {:.1} % of all CPU time\n",
            steal * 100.0
        );
    }
    tail += &format!(
        "total bench time: {:.0} s\n",
        started.elapsed().as_secs_f64()
    );
    tail
}

/// `hookline-bench --idle` or `--bursts`: part of the pipeline section only.
fn pipeline_only(scope: pipeline::Scope) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    print_header(cores);
    let event = fixtures::enriched("12", "Mike Jansen", "Utrecht", true);
    let json_body = hookline_payload::encode(hookline_payload::Format::Json, &event.body);
    let (_, ceiling) = signing::run(CPU_BUDGET / 4, &json_body)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    let ceilings = pipeline::Ceilings {
        cavage_per_core: ceiling.cavage_per_core,
        post_per_s: None,
        cores,
    };
    let rows = rt.block_on(pipeline::run(&ceilings, scope));
    println!("{}", table::render(&rows));
    Ok(())
}

/// Machine, build profile and load: the context every number depends on.
fn print_header(cores: usize) {
    print!("{}", header(cores));
}

fn header(cores: usize) -> String {
    let profile = if cfg!(debug_assertions) {
        "debug (numbers are not meaningful; use --release)"
    } else {
        "release"
    };
    let date = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "n/a".into());
    format!(
        "hookline-bench {} — {date}\ncores: {cores} ({cpu}); build profile: {profile}; load average (1 min) at start: {load}\ncpu flags: {}\n\n",
        env!("CARGO_PKG_VERSION"),
        procfs::cpu_flags()
    )
}

/// Section progress on stderr, so stdout holds only the report.
pub(crate) fn progress(section: &str) {
    eprintln!("bench: {section} …");
}
