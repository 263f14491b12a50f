//! The stage processes of a chaos run: several instances per consumer group, killed, restarted,
//! added and removed by the driver; their peak memory is sampled before each one ends.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hookline_integration_tests::StageProcess;
use hookline_testkit::TestTopics;

pub const KINDS: [&str; 3] = ["hookline-profiles", "hookline-tracking", "hookline-sender"];

pub struct Fleet {
    t: TestTopics,
    dir: PathBuf,
    /// (binary, instance number) → the running process.
    running: BTreeMap<(&'static str, usize), StageProcess>,
    starts: usize,
    /// Peak resident set per binary, in KiB.
    pub peak_rss_kib: BTreeMap<&'static str, u64>,
}

impl Fleet {
    pub fn new(t: &TestTopics, dir: PathBuf) -> Self {
        Self {
            t: t.clone(),
            dir,
            running: BTreeMap::new(),
            starts: 0,
            peak_rss_kib: BTreeMap::new(),
        }
    }

    /// Starts instance `n` of `kind` (its own state folder and key, kept across restarts).
    pub fn start(&mut self, kind: &'static str, n: usize) {
        let state = self.dir.join(format!("{kind}-{n}"));
        let key = self.dir.join(format!("{kind}-{n}.pem"));
        let (state, key) = (state.to_str().unwrap(), key.to_str().unwrap());
        let env = [
            ("HOOKLINE_STATE_DIR", state),
            ("HOOKLINE_SIGNING_KEY", key),
            ("HOOKLINE_ALLOW_NETWORKS", "127.0.0.0/8,::1/128"),
            ("HOOKLINE_RETRY_SCHEDULE", "1s,2s,3s"),
            ("HOOKLINE_MAX_ATTEMPTS", "5"),
            ("HOOKLINE_REQUEST_TIMEOUT", "2s"),
            ("HOOKLINE_BREAKER_COOL_DOWN", "2s"),
        ];
        let env: Vec<(&str, &str)> = env
            .into_iter()
            .filter(|(k, _)| kind == "hookline-sender" || *k == "HOOKLINE_STATE_DIR")
            .collect();
        self.starts += 1;
        let log = format!(
            "chaos-{}-{kind}-{n}-{}.log",
            std::process::id(),
            self.starts
        );
        let p = StageProcess::start(&self.t, kind, &env, &log);
        self.running.insert((kind, n), p);
    }

    fn sample(&mut self, kind: &'static str, p: &StageProcess) {
        note_peak(&mut self.peak_rss_kib, kind, p);
    }

    /// SIGKILL; returns false when that instance is not running.
    pub fn kill(&mut self, kind: &'static str, n: usize) -> bool {
        let Some(mut p) = self.running.remove(&(kind, n)) else {
            return false;
        };
        self.sample(kind, &p);
        p.kill();
        true
    }

    /// SIGTERM (a clean stop, as a scale-down does).
    pub fn stop(&mut self, kind: &'static str, n: usize) {
        if let Some(mut p) = self.running.remove(&(kind, n)) {
            self.sample(kind, &p);
            p.terminate();
        }
    }

    /// Samples every running instance's peak memory.
    pub fn sample_all(&mut self) {
        for ((kind, _), p) in &self.running {
            note_peak(&mut self.peak_rss_kib, kind, p);
        }
    }

    /// Starts whichever of instances `0..instances` of each kind is not running.
    pub fn complete(&mut self, instances: usize) {
        for kind in KINDS {
            for n in 0..instances {
                if !self.running.contains_key(&(kind, n)) {
                    self.start(kind, n);
                }
            }
        }
    }

    pub fn running(&self) -> Vec<(&'static str, usize)> {
        self.running.keys().copied().collect()
    }
}

/// Raises `kind`'s recorded peak to `p`'s peak resident set so far.
fn note_peak(peaks: &mut BTreeMap<&'static str, u64>, kind: &'static str, p: &StageProcess) {
    let peak = peaks.entry(kind).or_default();
    *peak = (*peak).max(p.peak_rss_kib());
}
