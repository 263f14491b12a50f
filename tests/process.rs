//! Stage binaries as operators run them: separate processes, killed with SIGKILL or stopped
//! with SIGTERM. (`make test` builds the binaries before the tests.)

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};

use hookline_testkit::TestTopics;

/// One running stage binary; killed (SIGKILL) when dropped.
pub struct StageProcess {
    child: Child,
    log: PathBuf,
}

impl StageProcess {
    /// Starts the workspace binary `name` over the test's topics with loopback test settings
    /// (`HOOKLINE_*` variables), `env` added last, stdout and stderr written to `log` in the temp folder.
    pub fn start(t: &TestTopics, name: &str, env: &[(&str, &str)], log: &str) -> Self {
        let log = std::env::temp_dir().join(log);
        let log_file = std::fs::File::create(&log).unwrap();
        let log_out = log_file.try_clone().unwrap();
        let mut cmd = Command::new(crate::binary(name));
        cmd.env("HOOKLINE_BROKERS", &t.settings.brokers)
            .env("HOOKLINE_TOPIC_PREFIX", &t.prefix)
            .env("HOOKLINE_METRICS_ADDR", "off")
            .env("HOOKLINE_REQUIRE_HTTPS", "false")
            .env("HOOKLINE_KAFKA_SESSION_TIMEOUT_MS", "6000")
            .env("HOOKLINE_BROKER_PROFILE", "local");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log_out)
            .stderr(log_file)
            .spawn()
            .unwrap();
        Self { child, log }
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and the exit status once the process ends.
    pub fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }

    /// The process's peak resident set (VmHWM) so far, in KiB; 0 once it has ended.
    pub fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// What the process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for StageProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
