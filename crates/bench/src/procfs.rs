//! Reading `/proc` (Linux): memory and CPU time of this process and of the processes it
//! started, steal time and CPU flags. Everything returns `None` elsewhere, and the rows that need it say so.

/// Kernel clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux on every
/// architecture Hookline targets; reading it via `sysconf` would need `unsafe`).
const USER_HZ: f64 = 100.0;

/// A `kB` field of `/proc/self/status` (e.g. `VmRSS`, `VmHWM`) in KiB.
pub fn status_kib(field: &str) -> Option<u64> {
    status_kib_of("self", field)
}

/// A `kB` field of `/proc/<pid>/status` in KiB.
pub fn status_kib_of(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// User + system CPU seconds of process `pid` (`self` for this one), all threads.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // After the name: state is field 3 of the man page, utime 14 and stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// Steal and total jiffies of all CPUs so far, from `/proc/stat`.
pub fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    Some((*v.get(7)?, v.iter().take(8).sum()))
}

/// Which of the CPU flags that matter to signing and hashing this machine has.
pub fn cpu_flags() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: Vec<&str> = info
        .lines()
        .find_map(|l| l.strip_prefix("flags")?.split_once(':').map(|(_, f)| f))
        .unwrap_or("")
        .split_whitespace()
        .collect();
    [
        "avx512ifma",
        "avx512f",
        "avx2",
        "adx",
        "bmi2",
        "sha_ni",
        "aes",
    ]
    .iter()
    .map(|f| format!("{f} {}", if flags.contains(f) { "yes" } else { "no" }))
    .collect::<Vec<_>>()
    .join(", ")
}

/// Child processes of this process whose command name is `name`.
pub fn children_named(name: &str) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut pids: Vec<String> = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == name)
        })
        .collect();
    pids.sort();
    pids.dedup();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(status_kib("VmRSS").is_some_and(|k| k > 0));
            assert!(cpu_seconds("self").is_some());
            assert!(children_named("no-such-process").is_empty());
        }
    }
}
