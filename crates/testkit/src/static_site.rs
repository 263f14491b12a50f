//! A small web site on loopback that serves fixed answers per path, for tests that fetch files
//! (ownership checks) rather than post webhooks. Unlike [`crate::Receiver`], which answers
//! every path alike, each path here has its own status, body and headers; unknown paths
//! answer 404.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::receiver::Received;

/// What one path answers.
#[derive(Debug, Clone)]
struct Page {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

#[derive(Default)]
struct Inner {
    pages: HashMap<String, Page>,
    received: Vec<Received>,
}

/// An HTTP server on loopback serving a map path → (status, headers, body), recording every
/// request. Stops when dropped.
#[derive(Clone)]
pub struct StaticSite {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    _stop: Arc<tokio::sync::oneshot::Sender<()>>,
}

impl StaticSite {
    /// Starts an empty site on 127.0.0.1:0 (every path answers 404 until served).
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    /// Starts an empty site on a loopback address of the caller's choice, e.g. `[::1]:0`.
    pub async fn start_on(bind: &str) -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(serve).with_state(inner.clone());
        let (addr, _stop) = crate::serve_on_loopback(bind, app).await;
        Self { addr, inner, _stop }
    }

    /// The URL of `path` (starting with `/`) on this site.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Serves `body` with `status` at `path` (matched exactly, without the query).
    pub fn serve(&self, path: &str, status: u16, body: impl Into<Bytes>) {
        self.serve_with_headers(path, status, Vec::new(), body);
    }

    /// Like [`Self::serve`], with extra response headers (e.g. `Location` for a redirect).
    pub fn serve_with_headers(
        &self,
        path: &str,
        status: u16,
        headers: Vec<(String, String)>,
        body: impl Into<Bytes>,
    ) {
        self.inner.lock().unwrap().pages.insert(
            path.to_owned(),
            Page {
                status,
                headers,
                body: body.into(),
            },
        );
    }

    /// Stops serving `path`; it answers 404 again.
    pub fn remove(&self, path: &str) {
        self.inner.lock().unwrap().pages.remove(path);
    }

    /// Every request so far, in order of arrival.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// The paths (with query) requested so far, in order.
    pub fn requested_paths(&self) -> Vec<String> {
        self.inner
            .lock()
            .unwrap()
            .received
            .iter()
            .map(|r| r.path_and_query.clone())
            .collect()
    }
}

async fn serve(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let page = {
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
            at: Instant::now(),
        });
        g.pages.get(uri.path()).cloned()
    };
    let Some(page) = page else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let mut resp = (StatusCode::from_u16(page.status).unwrap(), page.body).into_response();
    for (k, v) in page.headers {
        resp.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    resp
}
