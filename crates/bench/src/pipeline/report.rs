//! The pipeline section's rows, each next to what bounds it: CPU per delivery against the CPU
//! of one signature (measured in the same run), throughput against the loopback POST ceiling,
//! latency and idle cost against the targets of `docs/benchmarks.md`.

use super::{CpuUse, BURST, LEVEL_TIME, LEVEL_WARMUP, REPEATS, SECTION, SINGLE_CLICKS};
use crate::table::{fmt_num, pct, Row};
use crate::timing::quantile;

/// What the pipeline is compared with.
#[derive(Debug, Clone, Copy)]
pub struct Ceilings {
    /// Signed requests (draft-cavage, RSA-2048) per second on one core, measured just before.
    pub cavage_per_core: f64,
    pub post_per_s: Option<f64>,
    pub cores: usize,
}

pub struct Burst {
    pub count: usize,
    pub delivered: usize,
    pub complete: bool,
    pub rate: f64,
    pub cpu: CpuUse,
    pub unjoined: usize,
}

pub struct Level {
    pub level: f64,
    pub rate: f64,
    pub sent: usize,
    /// Sorted, the warm-up dropped.
    pub latencies: Vec<f64>,
    pub cpu: CpuUse,
}

#[derive(Default)]
pub struct Measured {
    pub idle: Option<CpuUse>,
    /// Sorted.
    pub single: Vec<f64>,
    pub bursts: Vec<Burst>,
    /// The 4× burst with Standard Webhooks (Ed25519) signatures.
    pub ed25519: Option<Burst>,
    pub open: Vec<Level>,
    pub duplicates: u64,
    pub peak_rss: Vec<(&'static str, Option<u64>)>,
}

pub fn rows(c: &Ceilings, m: &Measured) -> Vec<Row> {
    let mut rows = Vec::new();
    let sig_ms = 1000.0 / c.cavage_per_core;
    rows.push(
        Row::num(
            SECTION,
            "CPU per signature (draft-cavage, RSA-2048)",
            sig_ms,
            "ms",
        )
        .vs("the signing ceiling: one signature per delivery"),
    );
    if let Some(idle) = m.idle {
        rows.push(
            Row::num(
                SECTION,
                "idle: broker CPU (Tansu)",
                idle.broker / idle.wall,
                "cores",
            )
            .vs("target ≤ 0.25"),
        );
        rows.push(
            Row::num(
                SECTION,
                "idle: Hookline CPU (3 stage processes)",
                idle.hookline / idle.wall,
                "cores",
            )
            .vs("target ≤ 0.05"),
        );
    }
    let n = m.single.len();
    for (what, q) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
        let row = Row::num(
            SECTION,
            format!("single click, idle, produce → POST, {what} of {n}"),
            quantile(&m.single, q),
            "ms",
        );
        rows.push(if what == "p99" {
            row.vs("target < 25")
        } else {
            row
        });
    }
    if n < SINGLE_CLICKS {
        rows.push(Row::failed(
            SECTION,
            "single clicks",
            format!("only {n} of {SINGLE_CLICKS} arrived within 10 s each"),
        ));
    }
    for b in &m.bursts {
        rows.extend(burst_rows(c, b, sig_ms));
    }
    if let Some(b) = &m.ed25519 {
        rows.extend(ed25519_rows(b));
    }
    rows.extend(open_rows(m));
    for (stage, kib) in &m.peak_rss {
        let what = format!("peak RSS, {stage} (VmHWM)");
        rows.push(match kib {
            Some(k) => Row::num(SECTION, what, *k as f64 / 1024.0, "MiB"),
            None => Row::skipped(SECTION, what, "no /proc"),
        });
    }
    if m.duplicates > 0 {
        rows.push(Row::num(
            SECTION,
            "duplicate POSTs in the whole run",
            m.duplicates as f64,
            "",
        ));
    }
    rows
}

fn burst_rows(c: &Ceilings, b: &Burst, sig_ms: f64) -> Vec<Row> {
    let times = b.count / BURST;
    let what = |s: &str| format!("burst {}× ({} clicks): {s}", times, b.count);
    let box_signing = c.cavage_per_core * c.cores as f64;
    let mut vs = format!(
        "{} of signing on all {} cores",
        pct(b.rate, box_signing),
        c.cores
    );
    if let Some(p) = c.post_per_s {
        vs.push_str(&format!(", {} of loopback POST", pct(b.rate, p)));
    }
    if !b.complete {
        vs.push_str(&format!("; INCOMPLETE: {} of {}", b.delivered, b.count));
    }
    if b.unjoined > 0 {
        vs.push_str(&format!("; {} unjoined", b.unjoined));
    }
    let per = |secs: f64| secs * 1000.0 / b.delivered.max(1) as f64;
    let hookline_ms = per(b.cpu.hookline);
    vec![
        Row::num(
            SECTION,
            what("deliveries/s, whole box"),
            b.rate,
            "deliveries/s",
        )
        .vs(vs),
        Row::num(
            SECTION,
            what("Hookline CPU per delivery"),
            hookline_ms,
            "ms",
        )
        .vs(format!(
            "{} of the signing ceiling per Hookline core (target ≥ 70 %)",
            pct(sig_ms, hookline_ms)
        )),
        Row::num(
            SECTION,
            what("broker CPU per delivery"),
            per(b.cpu.broker),
            "ms",
        ),
        Row::num(
            SECTION,
            what("receiver CPU per delivery"),
            per(b.cpu.receiver),
            "ms",
        ),
    ]
}

/// The Ed25519 burst: deliveries per Hookline CPU-second (target ≥ 10,000) and the whole box.
fn ed25519_rows(b: &Burst) -> Vec<Row> {
    let what = |s: &str| format!("burst 4× Standard Webhooks (Ed25519): {s}");
    let mut vs = "target ≥ 10,000".to_owned();
    if !b.complete {
        vs.push_str(&format!("; INCOMPLETE: {} of {}", b.delivered, b.count));
    }
    vec![
        Row::num(
            SECTION,
            what("deliveries/s, whole box"),
            b.rate,
            "deliveries/s",
        ),
        Row::num(
            SECTION,
            what("deliveries per Hookline CPU-second"),
            b.delivered as f64 / b.cpu.hookline.max(1e-9),
            "deliveries/s",
        )
        .vs(vs),
        Row::num(
            SECTION,
            what("Hookline CPU per delivery"),
            b.cpu.hookline * 1000.0 / b.delivered.max(1) as f64,
            "ms",
        ),
    ]
}

/// Per load level: the median over the rounds of each percentile, with the rounds' range.
fn open_rows(m: &Measured) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut levels: Vec<f64> = m.open.iter().map(|l| l.level).collect();
    levels.dedup();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    for level in levels {
        let rounds: Vec<&Level> = m.open.iter().filter(|l| l.level == level).collect();
        let rate = rounds.iter().map(|l| l.rate).sum::<f64>() / rounds.len() as f64;
        let label = format!(
            "open loop {:.0} % of peak ({} /s, {}×{} s)",
            level * 100.0,
            fmt_num(rate),
            REPEATS,
            (LEVEL_TIME - LEVEL_WARMUP).as_secs()
        );
        for (what, q) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
            let mut per_round: Vec<f64> =
                rounds.iter().map(|l| quantile(&l.latencies, q)).collect();
            per_round.sort_by(f64::total_cmp);
            let median = quantile(&per_round, 0.5);
            let spread = format!(
                "rounds {}–{} ms",
                fmt_num(per_round[0]),
                fmt_num(per_round[per_round.len() - 1])
            );
            let vs = if what == "p99" && (level - 0.5).abs() < 1e-9 {
                format!("{spread}; target < 50")
            } else {
                spread
            };
            rows.push(Row::num(SECTION, format!("{label}: {what}"), median, "ms").vs(vs));
        }
        let short: usize = rounds
            .iter()
            .map(|l| {
                l.sent.saturating_sub(
                    l.latencies.len() + (l.rate * LEVEL_WARMUP.as_secs_f64()) as usize,
                )
            })
            .sum();
        if short > 0 {
            rows.push(Row::num(
                SECTION,
                format!("{label}: not delivered within 30 s"),
                short as f64,
                "clicks",
            ));
        }
        let cpu: f64 = rounds
            .iter()
            .map(|l| l.cpu.hookline / l.cpu.wall)
            .sum::<f64>()
            / rounds.len() as f64;
        rows.push(Row::num(
            SECTION,
            format!("{label}: Hookline CPU"),
            cpu,
            "cores",
        ));
    }
    rows
}
