//! The receiver examples of `docs/receivers/` as child processes: which runtimes are here, and
//! starting, addressing and reading one.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookline_testkit::eventually;
use serde_json::Value;

pub fn examples_dir() -> PathBuf {
    Path::new(
        &std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
    )
    .join("../docs/receivers")
}

/// A fresh folder per test (the tests of this file run at the same time).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookline-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A free port for an example to listen on, chosen *below* the kernel's ephemeral range.
///
/// The examples start seconds after their port is chosen (the subscriptions name it first).
/// A port from `bind(0)` is an ephemeral one, which in the meantime another test's listener on
/// port 0, or any outgoing connection, may be given: the example then fails to bind and the
/// test talks to a stranger. The kernel never hands out a port outside its ephemeral range on
/// its own, so only another caller of this function could take it, and each checks it is free.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (from, to) = (10_000u16, low.max(12_000));
    for _ in 0..1000 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(0);
        let port = from + (h.finish() % u64::from(to - from)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {from} and {to} on 127.0.0.1");
}

/// Whether `program args` exits with success within 30 s (a runtime probe).
fn succeeds(program: &str, args: &[&str]) -> bool {
    let Ok(mut child) = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Php,
    Node,
    Python,
}

impl Lang {
    pub fn name(self) -> &'static str {
        match self {
            Lang::Php => "php",
            Lang::Node => "node",
            Lang::Python => "python",
        }
    }

    /// The command that runs this language's example, or `None` when the runtime is not
    /// installed here: the skip is then reported by name for the `make test` summary (and fails
    /// the test under `HOOKLINE_REQUIRE_RUNTIMES=1`, as in CI).
    pub fn runtime(self) -> Option<Vec<&'static str>> {
        let found = match self {
            Lang::Php => {
                let probe = "exit(function_exists('openssl_verify') ? 0 : 1);";
                // `-n`: no php.ini, so the test does not depend on the machine's settings;
                // fall back to the ini files where openssl is a shared extension they load.
                if succeeds("php", &["-n", "-r", probe]) {
                    Ok(vec!["php", "-n"])
                } else if succeeds("php", &["-r", probe]) {
                    Ok(vec!["php"])
                } else if succeeds("php", &["-v"]) {
                    Err("php found, but without the openssl extension")
                } else {
                    Err("php not found (apt-get install php-cli)")
                }
            }
            Lang::Node => succeeds("node", &["-e", "process.exit(0)"])
                .then(|| vec!["node"])
                .ok_or("node not found (apt-get install nodejs)"),
            Lang::Python => {
                if succeeds("python3", &["-c", "import cryptography"]) {
                    Ok(vec!["python3"])
                } else if succeeds("python3", &["-c", "pass"]) {
                    Err("python3 found, but without the cryptography package (pip install cryptography)")
                } else {
                    Err("python3 not found (apt-get install python3)")
                }
            }
        };
        found
            .inspect_err(|why| {
                hookline_integration_tests::skip_for_missing_runtime(self.name(), why)
            })
            .ok()
    }
}

/// A receiver example running as a child process; killed on drop.
pub struct Example {
    pub lang: Lang,
    pub port: u16,
    child: Child,
    pub stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// Collects the lines of a child's pipe (and echoes them, for the test's captured output).
fn collect(pipe: impl std::io::Read + Send + 'static, tag: String) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            eprintln!("[{tag}] {line}");
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl Example {
    /// Starts the copernica-profile example for `lang` on `127.0.0.1:port`, verifying with the
    /// keys of `admin` for `account` (its `EXPECTED_ACCOUNT`), and waits until it accepts
    /// connections.
    pub async fn start(
        lang: Lang,
        runtime: &[&str],
        port: u16,
        admin: SocketAddr,
        tmp: &Path,
        account: &str,
    ) -> Self {
        let script = match lang {
            Lang::Php => "verify.php",
            Lang::Node => "verify.mjs",
            Lang::Python => "verify.py",
        };
        Self::start_script(lang, runtime, script, port, admin, tmp, account).await
    }

    /// Like [`Example::start`], with the example `script` of `docs/receivers/`.
    pub async fn start_script(
        lang: Lang,
        runtime: &[&str],
        script: &str,
        port: u16,
        admin: SocketAddr,
        tmp: &Path,
        account: &str,
    ) -> Self {
        let listen = format!("127.0.0.1:{port}");
        let admin_url = format!("http://{admin}");
        let mut args: Vec<String> = runtime[1..].iter().map(|s| s.to_string()).collect();
        match lang {
            Lang::Php => args.extend(["-S".into(), listen, script.into()]),
            Lang::Node | Lang::Python => args.extend([script.into(), listen, admin_url.clone()]),
        }
        let mut child = Command::new(runtime[0])
            .args(&args)
            .current_dir(examples_dir())
            .env("HOOKLINE_ADMIN_URL", &admin_url)
            .env("EXPECTED_ACCOUNT", account)
            // The PHP example caches the keys in the temp folder: keep that in the test's.
            .env("TMPDIR", tmp)
            .env_remove("PUBLIC_KEY_FILE")
            .env_remove("WEBHOOK_PUBLIC_KEY")
            .env_remove("TOLERANCE")
            .env_remove("MAX_DATE_SKEW")
            .env_remove("LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} {args:?}: {e}", runtime[0]));
        let stdout = collect(child.stdout.take().unwrap(), lang.name().into());
        let stderr = collect(
            child.stderr.take().unwrap(),
            format!("{} stderr", lang.name()),
        );
        let mut example = Self {
            lang,
            port,
            child,
            stdout,
            stderr,
        };
        example.wait_ready().await;
        example
    }

    /// Waits until the example accepts connections on its port *and* is still running: a
    /// connection alone could reach another program on that port while the example dies of
    /// "address in use", and the test would then wait for lines it never prints.
    async fn wait_ready(&mut self) {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let listening = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok();
            // The examples print a line once they listen (PHP's server: "Development Server
            // (...) started"; ours: "verifying ... on http://..."); until then a connection
            // that succeeds is someone else's.
            let announced = self
                .stderr()
                .iter()
                .chain(self.stdout.lock().unwrap().iter())
                .any(|l| l.contains("started") || l.contains("verifying"));
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the {} example exited ({status}) instead of listening on {addr}; stderr: {:#?}",
                    self.lang.name(),
                    self.stderr()
                );
            }
            if listening && announced {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the {} example did not listen on {addr} within 30 s; stderr: {:#?}",
                self.lang.name(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The JSON line the example printed for `delivery`, waiting up to `timeout` for it.
    pub async fn printed(&self, delivery: &str, timeout: Duration) -> Option<Value> {
        self.printed_where(|v| v["delivery"] == delivery, timeout)
            .await
    }

    /// The first JSON line the example printed that matches `wanted`, waiting up to `timeout`.
    pub async fn printed_where(
        &self,
        wanted: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Option<Value> {
        let find = || {
            self.stdout
                .lock()
                .unwrap()
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| wanted(v))
        };
        eventually(timeout, || find().is_some()).await;
        find()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
