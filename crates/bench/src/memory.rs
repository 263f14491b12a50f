//! Section 6, memory: the bench process's resident set, read from `/proc/self/status`. The
//! end-to-end section runs all three stages in this process, so its figures bound what the
//! stages need together with their librdkafka clients (the broker is a separate process and
//! not included).

use crate::procfs::status_kib;
use crate::table::Row;

const SECTION: &str = "memory";

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Peak RSS of the whole run, and the RSS taken right after the end-to-end section.
pub fn run(rss_after_e2e: Option<u64>, e2e_ran: bool) -> Vec<Row> {
    let peak = match status_kib("VmHWM") {
        Some(k) => Row::num(SECTION, "peak RSS of the bench (VmHWM)", mib(k), "MiB"),
        None => Row::skipped(
            SECTION,
            "peak RSS of the bench (VmHWM)",
            "no /proc/self/status",
        ),
    };
    let after = match rss_after_e2e {
        Some(k) if e2e_ran => Row::num(
            SECTION,
            "RSS after end to end (stages stopped)",
            mib(k),
            "MiB",
        ),
        Some(k) => Row::num(
            SECTION,
            "RSS after section 5 (it was skipped)",
            mib(k),
            "MiB",
        ),
        None => Row::skipped(SECTION, "RSS after end to end", "no /proc/self/status"),
    };
    vec![peak, after]
}
