//! An HTTP endpoint on 127.0.0.1:0 whose behaviour the test switches at run time between a
//! healthy answer and the faults real endpoints show: error statuses, no answer at all,
//! connection resets, drip-fed answers and endless bodies. Written on plain TCP, since those
//! faults are below what an HTTP framework lets a handler do.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the endpoint answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 200 with an empty body.
    Healthy,
    /// This status with an empty body (e.g. 500, or 410 to have the subscription disabled).
    Status(u16),
    /// Reads the request and never answers (the sender's request timeout ends it).
    Silent,
    /// Reads the request and resets the connection.
    Reset,
    /// Answers 200 with a 64-byte body sent one byte every 500 ms.
    Drip,
    /// Answers 200 with a chunked body that never ends.
    Endless,
}

/// One request as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `X-Hookline-Delivery`, if sent.
    pub delivery: Option<String>,
    /// The fault it was answered with.
    pub answer: Fault,
}

#[derive(Clone)]
pub struct FaultyEndpoint {
    pub addr: std::net::SocketAddr,
    fault: Arc<Mutex<Fault>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    _stop: Arc<tokio::sync::oneshot::Sender<()>>,
}

impl FaultyEndpoint {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fault = Arc::new(Mutex::new(Fault::Healthy));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let (f, s) = (fault.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    a = listener.accept() => if let Ok((conn, _)) = a {
                        tokio::spawn(serve(conn, f.clone(), s.clone()));
                    },
                }
            }
        });
        Self {
            addr,
            fault,
            seen,
            _stop: Arc::new(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves one connection: requests one after another (keep-alive) until a fault ends it.
async fn serve(mut conn: TcpStream, fault: Arc<Mutex<Fault>>, seen: Arc<Mutex<Vec<Seen>>>) {
    loop {
        let Some(delivery) = read_request(&mut conn).await else {
            return;
        };
        let answer = *fault.lock().unwrap();
        seen.lock().unwrap().push(Seen { delivery, answer });
        let kept = match answer {
            Fault::Healthy => reply(&mut conn, 200).await,
            Fault::Status(s) => reply(&mut conn, s).await,
            Fault::Silent => {
                tokio::time::sleep(Duration::from_secs(600)).await;
                false
            }
            Fault::Reset => {
                // A zero linger makes the close a reset (and does not block on drop).
                #[allow(deprecated)]
                let _ = conn.set_linger(Some(Duration::ZERO));
                false
            }
            Fault::Drip => drip(&mut conn).await,
            Fault::Endless => endless(&mut conn).await,
        };
        if !kept {
            return;
        }
    }
}

/// Reads one request's head and body; returns its delivery id header (`None` inside when
/// absent), or `None` when the peer closed or sent something unreadable.
async fn read_request(conn: &mut TcpStream) -> Option<Option<String>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(header("x-hookline-delivery"))
}

async fn reply(conn: &mut TcpStream, status: u16) -> bool {
    let head = format!("HTTP/1.1 {status} Fault\r\ncontent-length: 0\r\n\r\n");
    conn.write_all(head.as_bytes()).await.is_ok()
}

async fn drip(conn: &mut TcpStream) -> bool {
    if conn
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 64\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    for _ in 0..64 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if conn.write_all(b".").await.is_err() {
            return false;
        }
    }
    true
}

async fn endless(conn: &mut TcpStream) -> bool {
    if conn
        .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let chunk = format!("{:x}\r\n{}\r\n", 4096, "x".repeat(4096));
    // Until the sender gives up on the body (its size limit or timeout) and closes.
    while conn.write_all(chunk.as_bytes()).await.is_ok() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
