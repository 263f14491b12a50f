//! The three stages as separate processes — the binaries built beside `hookline-bench` — so
//! that each one's CPU time is read from `/proc` on its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use hookline_testkit::TestTopics;

use crate::procfs;

pub const NAMES: [&str; 3] = ["hookline-profiles", "hookline-tracking", "hookline-sender"];

pub struct Stages {
    children: Vec<(&'static str, Child, PathBuf)>,
}

impl Stages {
    /// Starts the stages over `t`'s topics, signing with `key`, state and logs under `dir`.
    pub fn start(t: &TestTopics, key: &Path, dir: &Path) -> anyhow::Result<Self> {
        let bin_dir = std::env::current_exe()?
            .parent()
            .context("the bench binary's folder")?
            .to_owned();
        let mut children = Vec::new();
        for name in NAMES {
            let bin = bin_dir.join(name);
            anyhow::ensure!(
                bin.exists(),
                "{} is missing: build the stages first (`cargo build --release --workspace --bins`)",
                bin.display()
            );
            let log_path = dir.join(format!("{name}.log"));
            let log = std::fs::File::create(&log_path)?;
            let child = Command::new(&bin)
                .env("HOOKLINE_BROKERS", &t.settings.brokers)
                .env("HOOKLINE_TOPIC_PREFIX", &t.prefix)
                .env("HOOKLINE_METRICS_ADDR", "off")
                .env("HOOKLINE_BROKER_PROFILE", "local")
                .env("HOOKLINE_KAFKA_SESSION_TIMEOUT_MS", "6000")
                .env("HOOKLINE_REQUIRE_HTTPS", "false")
                .env("HOOKLINE_STATE_DIR", dir.join(format!("{name}-state")))
                .env("HOOKLINE_SIGNING_KEY", key)
                .env("HOOKLINE_ALLOW_NETWORKS", "127.0.0.0/8")
                .env("HOOKLINE_LOG_FORMAT", "text")
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            children.push((name, child, log_path));
        }
        Ok(Self { children })
    }

    /// CPU seconds each stage has used so far, in [`NAMES`] order.
    pub fn cpu_seconds(&self) -> Vec<Option<f64>> {
        self.children
            .iter()
            .map(|(_, c, _)| procfs::cpu_seconds(&c.id().to_string()))
            .collect()
    }

    /// Each stage's peak resident set (VmHWM) in KiB, in [`NAMES`] order.
    pub fn peak_rss_kib(&self) -> Vec<(&'static str, Option<u64>)> {
        self.children
            .iter()
            .map(|(n, c, _)| (*n, procfs::status_kib_of(&c.id().to_string(), "VmHWM")))
            .collect()
    }

    /// A stage that already exited has failed (they run until stopped).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        for (name, child, log) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                let tail = std::fs::read_to_string(&*log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(15).collect();
                anyhow::bail!(
                    "{name} exited ({status}); last lines of {}:\n{}",
                    log.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        Ok(())
    }
}

impl Drop for Stages {
    /// SIGTERM (a clean stop), then SIGKILL for any stage still running after 20 s.
    fn drop(&mut self) {
        for (_, c, _) in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        for (name, c, _) in &mut self.children {
            while matches!(c.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(c.try_wait(), Ok(None)) {
                eprintln!("bench: {name} did not stop within 20 s; killed");
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// Writes a fresh signing key where the sender expects it, so it does not announce generating
/// one.
pub fn write_key(dir: &Path) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
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
