//! A real local broker per test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Link;

/// A running Tansu broker; killed and its data removed on drop.
pub struct Broker {
    pub bootstrap: String,
    child: Child,
    dir: PathBuf,
    port: u16,
    advertised: u16,
}

/// Where the broker binary is: `HOOKLINE_TANSU_BIN`, else the cache `make broker` fills.
pub fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("HOOKLINE_TANSU_BIN") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/hookline/tansu-0.6.0/bin/tansu")
}

impl Broker {
    /// Starts a broker on a free loopback port and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_advertising(None)
    }

    /// Starts a broker behind a [`Link`] that the test can cut and restore: the broker
    /// advertises the link's address, so every client connection goes through it.
    pub fn start_behind_link() -> (Self, Link) {
        let relay = TcpListener::bind("127.0.0.1:0").unwrap();
        let advertised = relay.local_addr().unwrap().port();
        let mut broker = Self::start_advertising(Some(advertised));
        let direct: std::net::SocketAddr = format!("127.0.0.1:{}", broker.port).parse().unwrap();
        let link = Link::start(relay, direct);
        broker.bootstrap = link.addr.to_string();
        (broker, link)
    }

    fn start_advertising(advertised: Option<u16>) -> Self {
        let bin = tansu_bin();
        assert!(
            bin.exists(),
            "the local broker is not installed at {}: run `make broker` (or set HOOKLINE_TANSU_BIN)",
            bin.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!(
            "hookline-test-broker-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let advertised = advertised.unwrap_or(port);
        let child = spawn(&bin, &dir, port, advertised);
        let bootstrap = format!("127.0.0.1:{port}");
        wait_for(&bootstrap, &dir);
        Self {
            bootstrap,
            child,
            dir,
            port,
            advertised,
        }
    }

    /// Starts the broker again on the same port and data folder after [`Broker::kill`] (a
    /// broker restart: what it stored is kept).
    pub fn restart(&mut self) {
        self.child = spawn(&tansu_bin(), &self.dir, self.port, self.advertised);
        wait_for(&format!("127.0.0.1:{}", self.port), &self.dir);
    }

    /// Stops the broker the hard way (SIGKILL), keeping its data folder.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(bin: &std::path::Path, dir: &std::path::Path, port: u16, advertised: u16) -> Child {
    let url = format!("tcp://127.0.0.1:{port}");
    let advertised = format!("tcp://127.0.0.1:{advertised}");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("broker.log"))
        .unwrap();
    Command::new(bin)
        .current_dir(dir)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised,
        ])
        .args(["--storage-engine", "sqlite://data/tansu.db"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()))
}

fn wait_for(bootstrap: &str, dir: &std::path::Path) {
    let started = Instant::now();
    while std::net::TcpStream::connect(bootstrap).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "broker did not start; see {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
