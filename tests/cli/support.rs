//! The harness of the CLI tests: runs the built `hookline` against a test's broker, topics and
//! admin API, and keeps every output so a test can check that no token leaked.
// Each test file that includes this module uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

/// What one run of `hookline` printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn fails(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit code {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `hookline` with the test's broker, topics and API, and `token` (if any) in
/// `HOOKLINE_TOKEN`; every output is kept to check that no token leaks.
pub struct Cli {
    pub bin: PathBuf,
    pub brokers: String,
    pub prefix: String,
    pub api_url: String,
    pub dir: PathBuf,
    pub outputs: std::sync::Mutex<Vec<String>>,
}

impl Cli {
    /// The workspace's `hookline` binary against the test's topics and the admin API at
    /// `admin`, writing its files under `dir`.
    pub fn new(
        t: &hookline_testkit::TestTopics,
        admin: impl std::fmt::Display,
        dir: &std::path::Path,
    ) -> Self {
        Self {
            bin: hookline_integration_tests::binary("hookline"),
            brokers: t.settings.brokers.clone(),
            prefix: t.prefix.clone(),
            api_url: format!("http://{admin}"),
            dir: dir.to_path_buf(),
            outputs: Default::default(),
        }
    }

    /// A new API token of `account`, created straight on the tokens topic.
    pub async fn account_token(&self, account: &str) -> String {
        self.run(None, &["tokens", "create", "--account", account])
            .await
            .ok()
            .stdout
            .trim()
            .to_owned()
    }

    pub async fn run(&self, token: Option<&str>, args: &[&str]) -> Run {
        self.run_env(token, args, &[]).await
    }

    /// Like [`Cli::run`], with `env` set as well.
    pub async fn run_env(&self, token: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .env_remove("HOOKLINE_TOKEN")
            .env("HOOKLINE_BROKERS", &self.brokers)
            .env("HOOKLINE_TOPIC_PREFIX", &self.prefix)
            .env("HOOKLINE_API_URL", &self.api_url)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null());
        if let Some(t) = token {
            cmd.env("HOOKLINE_TOKEN", t);
        }
        cmd.envs(env.iter().copied());
        let Output {
            status,
            stdout,
            stderr,
        } = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("hookline {args:?} did not finish within 120 s"))
            .unwrap();
        let run = Run {
            code: status.code().expect("exited, not killed"),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        };
        // Shown by the test harness when the test fails: the transcript of the session.
        eprintln!(
            "$ hookline {}  [exit {}]\n{}{}",
            args.join(" "),
            run.code,
            run.stdout,
            run.stderr
        );
        let mut all = self.outputs.lock().unwrap();
        all.push(run.stdout.clone());
        all.push(run.stderr.clone());
        run
    }

    pub fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// Retries `args` until it succeeds: the admin API follows the topics that `tokens create`
    /// and `subscriptions-topic put` write, and sees those writes a moment later.
    pub async fn until_ok(&self, token: Option<&str>, args: &[&str]) -> Run {
        let started = Instant::now();
        loop {
            let run = self.run(token, args).await;
            if run.code == 0 || started.elapsed() > Duration::from_secs(20) {
                return run.ok();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookline-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
