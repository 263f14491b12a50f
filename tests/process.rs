//! Stage binaries as operators run them: separate processes, killed with SIGKILL or stopped
//! with SIGTERM. (`make test` builds the binaries before the tests.)

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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

    /// SIGKILL, and waits (at most [`KILL_WAIT`]) for the process to be gone; panics if the
    /// signal cannot be sent or the process outlives the wait.
    pub fn kill(&mut self) {
        kill(&mut self.child, &self.log.display().to_string());
    }

    /// SIGTERM, and the exit status once the process ends; panics if it has not ended within
    /// [`TERM_WAIT`] (the stages' own watchdog ends them 25 s after the signal).
    pub fn terminate(&mut self) -> ExitStatus {
        terminate(&mut self.child, &self.log.display().to_string())
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
        // No second panic while a failed test unwinds: a process that cannot be ended is
        // reported and left.
        if let Err(e) = try_kill(&mut self.child) {
            eprintln!(
                "stage process {} ({}): {e}",
                self.child.id(),
                self.log.display()
            );
        }
    }
}

/// How long a SIGKILLed process may take to be gone.
pub const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long a SIGTERMed stage may take to stop (its watchdog ends it after 25 s).
pub const TERM_WAIT: Duration = Duration::from_secs(40);

/// Waits at most `within` for `child` to exit; `None` if it is still running then.
pub fn wait_timeout(child: &mut Child, within: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILL and reap within [`KILL_WAIT`]: `Err` says what went wrong (a process already gone
/// is fine).
pub fn try_kill(child: &mut Child) -> Result<ExitStatus, String> {
    if let Some(status) = child.try_wait().map_err(|e| format!("cannot poll: {e}"))? {
        return Ok(status);
    }
    if let Err(e) = child.kill() {
        // It may have exited between the poll and the signal.
        if let Ok(Some(status)) = child.try_wait() {
            return Ok(status);
        }
        return Err(format!("SIGKILL failed: {e}"));
    }
    match wait_timeout(child, KILL_WAIT) {
        Ok(Some(status)) => Ok(status),
        Ok(None) => Err(format!("still running {KILL_WAIT:?} after SIGKILL")),
        Err(e) => Err(format!("cannot wait for it: {e}")),
    }
}

/// SIGKILL and reap, panicking (naming `what`) if that fails or takes longer than
/// [`KILL_WAIT`]: a test fails instead of hanging.
pub fn kill(child: &mut Child, what: &str) -> ExitStatus {
    try_kill(child).unwrap_or_else(|e| panic!("killing process {} ({what}): {e}", child.id()))
}

/// SIGTERM and wait for the exit, panicking (naming `what`) if the signal cannot be sent or the
/// process has not ended within [`TERM_WAIT`] (it is then SIGKILLed).
pub fn terminate(child: &mut Child, what: &str) -> ExitStatus {
    let pid = child.id();
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap_or_else(|e| panic!("running kill -TERM {pid} ({what}): {e}"));
    assert!(sent.success(), "kill -TERM {pid} ({what}) failed: {sent}");
    match wait_timeout(child, TERM_WAIT) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = try_kill(child);
            panic!("process {pid} ({what}) did not stop within {TERM_WAIT:?} of SIGTERM");
        }
        Err(e) => panic!("waiting for process {pid} ({what}): {e}"),
    }
}
