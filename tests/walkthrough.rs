//! The newcomer's path, as the README tells it: `make run`'s own script (scripts/run-local.sh)
//! starts the pipeline in a folder and on ports of the test's own, the README's "Your first
//! webhook" runs as scripts/walkthrough.sh against it, `/metrics` keeps the README's
//! identities, and a clean stop (SIGINT to the whole process group, as Ctrl-C sends it; SIGTERM
//! to the script, as the README says for a run in the background) exits 0. A second run keeps
//! the first run's demo token and seeds events with new delivery ids.
//! (`make test` builds the binaries before the tests.)

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hookline_integration_tests::binary;

/// The repository: scripts/ and README.md.
fn repo() -> PathBuf {
    Path::new(
        &std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
    .parent()
    .unwrap()
    .to_owned()
}

/// Where `hookline` was built: the script's `CARGO_TARGET_DIR`, so it builds nothing new.
fn target_dir() -> PathBuf {
    let bin = binary("hookline");
    bin.parent().unwrap().parent().unwrap().to_owned()
}

/// The ports of one playground, all free when chosen; the four metrics ports in a row.
#[derive(Clone, Copy)]
struct Ports {
    broker: u16,
    admin: u16,
    receiver: u16,
    metrics: u16,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Ports {
    fn pick() -> Self {
        let metrics = (0..200)
            .map(|i| 20_000 + (std::process::id() as u16 % 1000) * 40 + i * 4)
            .find(|base| {
                let held: Vec<_> = (0..4)
                    .filter_map(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).ok())
                    .collect();
                held.len() == 4
            })
            .expect("four free ports in a row");
        Self {
            broker: free_port(),
            admin: free_port(),
            receiver: free_port(),
            metrics,
        }
    }

    fn env(&self, run_dir: &Path) -> Vec<(&'static str, String)> {
        vec![
            ("HOOKLINE_RUN_DIR", run_dir.to_str().unwrap().to_owned()),
            ("HOOKLINE_LOCAL_PORT", self.broker.to_string()),
            ("HOOKLINE_LOCAL_ADMIN_PORT", self.admin.to_string()),
            ("HOOKLINE_LOCAL_RECEIVER_PORT", self.receiver.to_string()),
            ("HOOKLINE_LOCAL_METRICS_PORT", self.metrics.to_string()),
            (
                "CARGO_TARGET_DIR",
                target_dir().to_str().unwrap().to_owned(),
            ),
        ]
    }
}

/// scripts/run-local.sh in a process group of its own (as a shell's foreground job is), its
/// output collected line by line. Dropped without a clean stop, the whole group is killed.
struct Playground {
    child: Child,
    lines: mpsc::Receiver<String>,
    output: Vec<String>,
}

impl Playground {
    fn start(ports: Ports, run_dir: &Path) -> Self {
        let mut cmd = Command::new(repo().join("scripts/run-local.sh"));
        cmd.current_dir(repo())
            .envs(ports.env(run_dir))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for stream in [Box::new(out) as Box<dyn Read + Send>, Box::new(err)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut p = Self {
            child,
            lines,
            output: Vec::new(),
        };
        p.wait_for_line("signed POSTs arriving", Duration::from_secs(180));
        p
    }

    /// Reads output until a line contains `needle`.
    fn wait_for_line(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.output.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {within:?}; the script printed:\n{}",
                    self.output.join("\n")
                ),
            }
        }
    }

    /// Sends `signal` to the script (or, `group`, to its whole process group) and returns its
    /// exit status, which must come within 60 s.
    fn stop(mut self, signal: &str, group: bool) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let target = if group { format!("-{pid}") } else { pid };
        Command::new("kill")
            .args([&format!("-{signal}"), "--", &target])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the script did not stop within 60 s of SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // The rest of what it printed (the pipes close once every process of the run is gone).
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.output.push(line);
        }
        (status, self.output.join("\n"))
    }
}

impl Drop for Playground {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .status();
            let _ = self.child.wait();
        }
    }
}

/// The body of `GET http://127.0.0.1:<port>/metrics`.
fn metrics(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// Every sample of `name` in a Prometheus text body, by its label set (`{...}` or ``).
fn samples(text: &str, name: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let labels = series.strip_prefix(name)?;
            if !(labels.is_empty() || labels.starts_with('{')) {
                return None;
            }
            Some((labels.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of `name`'s samples whose labels contain every one of `with`.
fn sum(text: &str, name: &str, with: &[&str]) -> f64 {
    samples(text, name)
        .iter()
        .filter(|(labels, _)| with.iter().all(|w| labels.contains(w)))
        .map(|(_, v)| v)
        .sum()
}

/// The README's identities for one join stage: `(name, left, right)`, holding when left and
/// right are equal (an inequality `a >= b` is written `(min(a, b), b)`).
fn identities(text: &str, stage: &str) -> Vec<(String, f64, f64)> {
    let s = format!("stage=\"{stage}\"");
    let consumed = sum(text, "hookline_stage_consumed_records_total", &[&s]);
    let joined = sum(text, "hookline_stage_joined_records_total", &[&s]);
    let unjoined = sum(text, "hookline_stage_unjoined_records_total", &[&s]);
    let quarantined = sum(text, "hookline_stage_quarantined_records_total", &[&s]);
    let too_large = sum(
        text,
        "hookline_stage_quarantined_records_total",
        &[&s, "reason=\"too-large\""],
    );
    let skipped = sum(text, "hookline_stage_replayed_changes_skipped_total", &[&s]);
    let filtered = sum(text, "hookline_stage_filtered_records_total", &[&s]);
    let routed = sum(text, "hookline_stage_routed_deliveries_total", &[&s]);
    let offered = joined + unjoined;
    vec![
        (
            "consumed = joined + unjoined + skipped + quarantined (too-large aside)".into(),
            consumed,
            offered + skipped + quarantined - too_large,
        ),
        (
            "routed >= joined + unjoined - filtered - too-large".into(),
            routed.min(offered - filtered - too_large),
            offered - filtered - too_large,
        ),
        (
            "filtered <= joined + unjoined".into(),
            filtered.min(offered),
            filtered,
        ),
    ]
}

/// The demo receiver's `delivery=` ids of `event` POSTs, in its log.
fn delivery_ids(run_dir: &Path, event: &str) -> Vec<String> {
    let log = std::fs::read_to_string(run_dir.join("logs/receiver.log")).unwrap_or_default();
    log.lines()
        .filter(|l| l.starts_with("VERIFIED") && l.contains(&format!("event={event} ")))
        .filter_map(|l| l.split("delivery=").nth(1))
        .map(|rest| rest.split(' ').next().unwrap_or_default().to_owned())
        .collect()
}

fn until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The commands of the README's walk-through, each a line of scripts/walkthrough.sh.
#[test]
fn the_readme_walkthrough_is_the_script() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let script = std::fs::read_to_string(repo().join("scripts/walkthrough.sh")).unwrap();
    let block = readme
        .split_once("<!-- walkthrough: the commands of scripts/walkthrough.sh -->")
        .expect("the README marks its walk-through")
        .1;
    let block = block.split_once("```sh\n").unwrap().1;
    let block = block.split_once("```").unwrap().0;
    let script_lines: Vec<&str> = script.lines().map(str::trim).collect();
    let commands: Vec<&str> = block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(commands.len() >= 10, "{block}");
    for c in commands {
        assert!(
            script_lines.contains(&c),
            "the README's `{c}` is not a line of scripts/walkthrough.sh"
        );
    }
}

#[test]
fn a_newcomer_gets_a_first_webhook_from_make_runs_setup() {
    let run_dir =
        std::env::temp_dir().join(format!("hookline-it-{}-playground", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    let ports = Ports::pick();

    let run = Playground::start(ports, &run_dir);
    let walked = Command::new("timeout")
        .arg("90")
        .arg(repo().join("scripts/walkthrough.sh"))
        .current_dir(repo())
        .envs(ports.env(&run_dir))
        .env_remove("HOOKLINE_TOKEN")
        .output()
        .unwrap();
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&walked.stdout),
        String::from_utf8_lossy(&walked.stderr)
    );
    assert!(
        walked.status.success(),
        "the walk-through failed:\n{transcript}"
    );
    assert!(
        transcript.contains("VALID: signed by"),
        "the signature was checked:\n{transcript}"
    );

    // The admin API counts the subscriptions it holds: the demo's and the walk-through's.
    let admin = metrics(ports.metrics + 3);
    assert_eq!(
        samples(&admin, "hookline_routing_subscriptions").get(""),
        Some(&2.0),
        "admin /metrics:\n{admin}"
    );
    // The identities the README states hold on each join stage's /metrics once it is idle.
    for (stage, port) in [("tracking", ports.metrics), ("profiles", ports.metrics + 1)] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = metrics(port);
            let broken: Vec<_> = identities(&text, stage)
                .into_iter()
                .filter(|(_, l, r)| l != r)
                .collect();
            let consumed = sum(&text, "hookline_stage_consumed_records_total", &[]);
            if broken.is_empty() && consumed >= 1.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{stage}: {broken:?} (consumed {consumed})\n{text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // The lag gauge has every partition of the input, those no record reached included.
    until(
        "tracking's lag on partitions 0, 1 and 2",
        Duration::from_secs(20),
        || {
            let lag = samples(
                &metrics(ports.metrics),
                "hookline_stage_consumer_lag_records",
            );
            (0..3).all(|p| {
                lag.keys().any(|l| {
                    l.contains("topic=\"hookline.tracking\"")
                        && l.contains(&format!("partition=\"{p}\""))
                })
            })
        },
    );
    until(
        "the demo's create delivered",
        Duration::from_secs(30),
        || !delivery_ids(&run_dir, "create").is_empty(),
    );
    let first_creates = delivery_ids(&run_dir, "create");
    let token = std::fs::read_to_string(run_dir.join("demo-token")).unwrap();

    // Ctrl-C reaches the whole foreground group: a clean stop is exit code 0.
    let (status, output) = run.stop("INT", true);
    assert_eq!(status.code(), Some(0), "after Ctrl-C:\n{output}");
    assert!(output.contains("run: stopped"), "{output}");

    // A second run on the same folder: the same token, the demo's events with new ids.
    let run = Playground::start(ports, &run_dir);
    assert_eq!(
        std::fs::read_to_string(run_dir.join("demo-token")).unwrap(),
        token,
        "the second run keeps the first run's demo token"
    );
    // The topics exist: the broker is not asked to create them again (it logged an error for
    // each); no join stage warns about the retention the local broker does not report; and no
    // log of the run carries colour codes.
    let logs = run_dir.join("logs");
    let broker_log = std::fs::read_to_string(logs.join("broker.log")).unwrap();
    assert!(!broker_log.contains("TopicAlreadyExists"), "{broker_log}");
    for stage in ["tracking", "profiles"] {
        let log = std::fs::read_to_string(logs.join(format!("{stage}.log"))).unwrap();
        assert!(
            !log.lines()
                .any(|l| l.contains("WARN") && l.contains("retention")),
            "{stage}:\n{log}"
        );
    }
    for entry in std::fs::read_dir(&logs).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains('\u{1b}'),
            "colour codes in {}",
            path.display()
        );
    }
    let tokens = Command::new(binary("hookline"))
        .args(["tokens", "list", "--json"])
        .env("HOOKLINE_BROKERS", format!("127.0.0.1:{}", ports.broker))
        .output()
        .unwrap();
    let tokens: serde_json::Value = serde_json::from_slice(&tokens.stdout).unwrap();
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 1, "{tokens}");
    until(
        "the second demo's create delivered",
        Duration::from_secs(30),
        || !delivery_ids(&run_dir, "create").is_empty(),
    );
    for id in delivery_ids(&run_dir, "create") {
        assert!(
            !first_creates.contains(&id),
            "the second run's demo change has the first run's delivery id {id}"
        );
    }

    // In the background the script cannot trap SIGINT: SIGTERM to the pid it wrote stops it.
    let pid = std::fs::read_to_string(run_dir.join("run.pid")).unwrap();
    assert_eq!(pid.trim(), run.child.id().to_string());
    let (status, output) = run.stop("TERM", false);
    assert_eq!(status.code(), Some(0), "after SIGTERM:\n{output}");
    assert!(!run_dir.join("run.pid").exists());
    let _ = std::fs::remove_dir_all(&run_dir);
}
