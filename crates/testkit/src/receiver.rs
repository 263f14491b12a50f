//! A scripted webhook endpoint on loopback.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// When the request arrived (its body read), on the receiver's clock.
    pub at: Instant,
}

impl Received {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    /// Statuses (with extra headers) to answer with, in order; afterwards `default_status`.
    script: VecDeque<(u16, Vec<(String, String)>)>,
    default_status: u16,
    /// How long to wait before answering (after recording); zero answers at once.
    delay: Duration,
}

/// An HTTP server on 127.0.0.1:0 that records requests. Stops when dropped.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    _stop: Arc<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    /// Starts a receiver that answers `status` to every request.
    pub async fn start(status: u16) -> Self {
        Self::start_with("127.0.0.1:0", status, Duration::ZERO).await
    }

    /// Starts a receiver that records each request at once but answers `status` only after
    /// `delay` (for timeout tests).
    pub async fn start_delayed(status: u16, delay: Duration) -> Self {
        Self::start_with("127.0.0.1:0", status, delay).await
    }

    /// Starts a receiver on a loopback address of the caller's choice, e.g. `[::1]:0`.
    pub async fn start_on(bind: &str, status: u16) -> Self {
        Self::start_with(bind, status, Duration::ZERO).await
    }

    async fn start_with(bind: &str, status: u16, delay: Duration) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            default_status: status,
            delay,
            ..Inner::default()
        }));
        let app = Router::new().fallback(record).with_state(inner.clone());
        let (addr, _stop) = crate::serve_on_loopback(bind, app).await;
        Self { addr, inner, _stop }
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests with these statuses and headers, then the default.
    pub fn script(&self, answers: Vec<(u16, Vec<(String, String)>)>) {
        self.inner.lock().unwrap().script.extend(answers);
    }

    pub fn set_default_status(&self, status: u16) {
        self.inner.lock().unwrap().default_status = status;
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().received.len()
    }
}

async fn record(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let (status, extra, delay) = {
        let mut g = inner.lock().unwrap();
        g.received.push(Received {
            method: method.to_string(),
            path_and_query: uri.path_and_query().map_or("/".into(), |p| p.to_string()),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body,
            at,
        });
        let (status, extra) = g
            .script
            .pop_front()
            .unwrap_or((g.default_status, Vec::new()));
        (status, extra, g.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut resp = (StatusCode::from_u16(status).unwrap(), "recorded\n").into_response();
    for (k, v) in extra {
        resp.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(&v).unwrap(),
        );
    }
    resp
}
