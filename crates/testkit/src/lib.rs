//! Test support. Integration tests talk to a real Kafka-compatible broker and real HTTP servers,
//! both on loopback, never to anything else.
//!
//! - [`broker`]: starts a Tansu broker with SQLite storage on a free port in a temp folder, one
//!   per test, killed on drop.
//! - [`link`]: a loopback TCP relay in front of a broker that a test cuts and restores (a network
//!   outage while the broker keeps its state).
//! - [`receiver`]: an HTTP endpoint on 127.0.0.1:0 that records every request and answers
//!   with scripted statuses.
//! - [`faulty`]: an HTTP endpoint on 127.0.0.1:0 switched at run time between healthy and
//!   faulty (error statuses, silence, resets, drip-fed answers, endless bodies).
//! - [`static_site`]: an HTTP server on 127.0.0.1:0 that serves a fixed status and body per
//!   path (404 elsewhere) and records every request, for tests that fetch files.
//! - [`dns`]: an authoritative DNS server on 127.0.0.1:0 (UDP and TCP) serving TXT records the
//!   test sets at run time, NXDOMAIN for every other name.
//! - [`topics`]: a unique topic prefix per test, topic creation, producing JSON, and reading a
//!   topic until a condition holds (bounded in time).

pub mod broker;
pub mod dns;
pub mod faulty;
pub mod link;
pub mod receiver;
pub mod static_site;
pub mod topics;

pub use broker::Broker;
pub use dns::{DnsQuery, DnsServer};
pub use faulty::{Fault, FaultyEndpoint};
pub use link::Link;
pub use receiver::{Received, Receiver};
pub use static_site::StaticSite;
pub use topics::{read_until, unique_prefix, TestTopics};

/// Serves `app` on `bind`, which must be a loopback address (tests talk to loopback only).
/// Returns the bound address and a handle that stops the server when the last clone is dropped.
pub(crate) async fn serve_on_loopback(
    bind: &str,
    app: axum::Router,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<tokio::sync::oneshot::Sender<()>>,
) {
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    assert!(
        addr.ip().is_loopback(),
        "test servers listen on loopback only"
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    (addr, std::sync::Arc::new(tx))
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually(timeout: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
