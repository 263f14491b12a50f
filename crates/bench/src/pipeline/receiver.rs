//! The webhook receiver, in a process of its own so that its CPU is not counted as Hookline's:
//! `hookline-bench --receiver` prints `listening <addr>` and then records every POST.
//!
//! Each POST's body carries the event's intended produce time (`bench_sent_at_ns`); the
//! receiver takes the arrival time first and keeps `(id, latency)`. The bench reads what
//! arrived with `GET /arrivals?from=N` (one `id latency_ns unjoined` line per first arrival
//! from the N-th on) and `GET /duplicates`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use crate::timing::unix_nanos;

/// The argument that makes `hookline-bench` the receiver.
pub const CHILD_ARG: &str = "--receiver";
/// The body field with the event's intended produce time.
pub const STAMP: &str = "bench_sent_at_ns";

#[derive(Default)]
struct Seen {
    ids: std::collections::HashSet<String>,
    /// First arrivals in order: id, latency in ns, not joined with a profile.
    arrivals: Vec<(String, u64, bool)>,
    duplicates: u64,
}

type Shared = Arc<Mutex<Seen>>;

async fn receive(State(seen): State<Shared>, body: Bytes) -> &'static str {
    let now = unix_nanos();
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return "ok";
    };
    let (Some(id), Some(sent)) = (v["id"].as_str(), v[STAMP].as_u64()) else {
        return "ok";
    };
    let unjoined = v["profile_known"] == Value::Bool(false);
    let mut g = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if g.ids.insert(id.to_owned()) {
        g.arrivals
            .push((id.to_owned(), now.saturating_sub(sent), unjoined));
    } else {
        g.duplicates += 1;
    }
    "ok"
}

#[derive(serde::Deserialize)]
struct From {
    from: usize,
}

async fn arrivals(State(seen): State<Shared>, Query(q): Query<From>) -> String {
    let g = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = String::new();
    for (id, ns, unjoined) in g.arrivals.iter().skip(q.from) {
        out.push_str(&format!("{id} {ns} {}\n", u8::from(*unjoined)));
    }
    out
}

async fn duplicates(State(seen): State<Shared>) -> String {
    let g = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    g.duplicates.to_string()
}

/// The child's main: serves until its parent closes its stdin.
pub fn child_main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let seen = Shared::default();
        let app = Router::new()
            .route("/arrivals", get(arrivals))
            .route("/duplicates", get(duplicates))
            .fallback(receive)
            .with_state(seen);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening {}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stdin_closed.await;
            })
            .await?;
        anyhow::Ok(())
    })
}

/// One first arrival as the bench reads it.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub id: String,
    pub latency_ms: f64,
    pub unjoined: bool,
}

/// The receiver process, from the parent's side. Killed when dropped.
pub struct ReceiverProcess {
    child: Child,
    pub addr: SocketAddr,
    /// First arrivals read so far.
    pub seen: Vec<Arrival>,
}

impl ReceiverProcess {
    pub fn start() -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg(CHILD_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the receiver process")?;
        let stdout = child.stdout.take().context("receiver stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .with_context(|| format!("the receiver said {line:?}"))?
            .parse()?;
        Ok(Self {
            child,
            addr,
            seen: Vec::new(),
        })
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Reads the arrivals the receiver has that this side has not; returns how many are known.
    pub fn refresh(&mut self) -> anyhow::Result<usize> {
        let body = self.get(&format!("/arrivals?from={}", self.seen.len()))?;
        for line in body.lines() {
            let mut f = line.split(' ');
            let (Some(id), Some(ns), Some(u)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            self.seen.push(Arrival {
                id: id.to_owned(),
                latency_ms: ns.parse::<u64>().unwrap_or(0) as f64 / 1e6,
                unjoined: u == "1",
            });
        }
        Ok(self.seen.len())
    }

    pub fn duplicates(&self) -> anyhow::Result<u64> {
        Ok(self.get("/duplicates")?.trim().parse()?)
    }

    /// A plain HTTP/1.0 GET on loopback (the connection closes after the answer).
    fn get(&self, path: &str) -> anyhow::Result<String> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr)?;
        let mut raw = String::new();
        s.read_to_string(&mut raw)?;
        let (head, body) = raw.split_once("\r\n\r\n").context("no HTTP answer")?;
        anyhow::ensure!(head.contains(" 200 "), "receiver answered {head}");
        Ok(body.to_owned())
    }
}

impl Drop for ReceiverProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        if matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
