//! `hookline-bench`: what bounds Hookline's throughput on this machine, as one table.
//!
//! Sections, each in its own module and each bounded to a few seconds:
//!
//! 1. [`signing`]: RSA-2048 signatures per second per core (aws-lc-rs, RustCrypto `rsa` as the
//!    reference) and full draft-cavage signing: the per-core bound of the pipeline.
//! 2. [`payload`]: encoding an enriched click as form, json and xml.
//! 3. [`routing`]: 10,000 subscriptions over 1,000 databases, events routed per second.
//! 4. [`loopback`]: POSTs per second through Hookline's HTTP client to a trivial local server.
//! 5. [`e2e`]: the real stages on a local broker, clicks in, signed POSTs out (skipped when the
//!    broker is not installed).
//! 6. [`join`]: the join stages' work against a table of 1 million profiles (lookup + enrich
//!    per core, table restore rows/s, RSS), in a child process; and a table restore from the
//!    local broker.
//! 7. [`memory`]: peak and post-pipeline RSS of this process (before section 6, which runs its
//!    large table in a child process of its own).
//!
//! Only loopback addresses are ever contacted. `docs/benchmarks.md` explains every row and
//! records a run. Set `RUST_LOG` to see the stages' logs during section 5.

mod e2e;
mod fixtures;
mod join;
mod loopback;
mod memory;
mod payload;
mod procfs;
mod routing;
mod signing;
mod table;
mod timing;

use std::time::{Duration, Instant};

use table::Row;

/// Time per measured row of the CPU sections.
const CPU_BUDGET: Duration = Duration::from_secs(2);
/// Time per payload format (encoding is fast; a second gives millions of samples).
const PAYLOAD_BUDGET: Duration = Duration::from_secs(1);
const POST_WARMUP: Duration = Duration::from_millis(500);
const POST_BUDGET: Duration = Duration::from_secs(3);
const POST_CONCURRENCY: usize = 64;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(join::CHILD_ARG) {
        return join::child_main(&args[1..]);
    }
    if std::env::var_os("RUST_LOG").is_some() {
        hookline_telemetry::init_logging("text");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    print_header(cores);
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();

    let event = fixtures::enriched("12", "Mike Jansen", "Utrecht", true);
    let json_body = hookline_payload::encode(hookline_payload::Format::Json, &event.body);

    progress("1/7 signing");
    let (r, ceiling) = signing::run(CPU_BUDGET, &json_body)?;
    rows.extend(r);
    progress("2/7 payload");
    rows.extend(payload::run(PAYLOAD_BUDGET, &event, &ceiling));
    progress("3/7 routing");
    rows.extend(routing::run(CPU_BUDGET, &ceiling)?);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    progress("4/7 loopback POST");
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
    progress("5/7 end to end (local broker)");
    let ceilings = e2e::Ceilings {
        signing: ceiling,
        post_per_s,
        cores,
    };
    let (r, e2e_ran) = rt.block_on(e2e::run(&ceilings));
    rows.extend(r);
    let rss_after_e2e = procfs::status_kib("VmRSS");
    // Taken before the join section, whose broker part would otherwise add to the peak.
    let memory_rows = memory::run(rss_after_e2e, e2e_ran);
    progress("6/7 join (1M profiles, child process; table restore from the local broker)");
    rows.extend(join::run(CPU_BUDGET, &ceiling, &rt));
    rt.shutdown_timeout(Duration::from_secs(5));
    progress("7/7 memory");
    rows.extend(memory_rows);

    println!("{}", table::render(&rows));
    println!("total bench time: {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Machine, build profile and load: the context every number depends on.
fn print_header(cores: usize) {
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
    println!("hookline-bench {} — {date}", env!("CARGO_PKG_VERSION"));
    println!(
        "cores: {cores} ({cpu}); build profile: {profile}; load average (1 min) at start: {load}"
    );
    println!();
}

/// Section progress on stderr, so stdout holds only the report.
fn progress(section: &str) {
    eprintln!("bench: {section} …");
}
