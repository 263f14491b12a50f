//! The HTTP client.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::guard::NetworkGuard;

/// Limits of one client.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub connect_timeout: Duration,
    /// From sending the request to having read the (bounded) response.
    pub total_timeout: Duration,
    /// How much of a response body is read and kept; the rest is discarded unread.
    pub max_response_bytes: usize,
    pub user_agent: String,
    /// Idle keep-alive connections kept per host: at least what one endpoint may have in flight
    /// (a subscription's `max_in_flight`, 64 in the benchmark), so a burst does not close and
    /// reopen connections.
    pub pool_max_idle_per_host: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(15),
            max_response_bytes: 4096,
            user_agent: format!("Hookline/{} (+webhooks)", env!("CARGO_PKG_VERSION")),
            pool_max_idle_per_host: 128,
        }
    }
}

/// How a request failed, for retry decisions and the outcome's `error_class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendErrorKind {
    Timeout,
    Dns,
    Connect,
    Tls,
    RefusedByGuard,
    /// The URL cannot be requested at all (not http/https, no host): permanent.
    InvalidUrl,
    Other,
}

/// A failed request, with a message that says what was tried.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub kind: SendErrorKind,
    pub message: String,
}

impl SendError {
    fn new(kind: SendErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// A response: status, headers and the first bytes of the body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub latency: Duration,
}

type Inner = Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

/// A pooled HTTP/1.1 + HTTP/2 client whose every connection passes the [`NetworkGuard`].
#[derive(Clone)]
pub struct HttpClient {
    inner: Inner,
    guard: Arc<NetworkGuard>,
    opts: Arc<HttpOptions>,
}

impl HttpClient {
    pub fn new(guard: NetworkGuard, opts: HttpOptions) -> Self {
        let guard = Arc::new(guard);
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            guard: guard.clone(),
        });
        http.enforce_http(false);
        http.set_connect_timeout(Some(opts.connect_timeout));
        http.set_nodelay(true);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .expect("aws-lc-rs supports the default TLS versions")
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(opts.pool_max_idle_per_host)
            .build(https);
        Self {
            inner,
            guard,
            opts: Arc::new(opts),
        }
    }

    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    /// Checks that `url` is an absolute http(s) URL whose port and host (if an IP literal) pass
    /// the guard. (Names are checked when they resolve.)
    pub fn check_url(&self, url: &str) -> Result<http::Uri, SendError> {
        let uri: http::Uri = url.parse().map_err(|e| {
            SendError::new(
                SendErrorKind::InvalidUrl,
                format!("{url:?} is not a valid URL: {e}"),
            )
        })?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(SendError::new(
                    SendErrorKind::InvalidUrl,
                    format!("{url:?} must start with https:// or http://"),
                ))
            }
        }
        let host = uri.host().ok_or_else(|| {
            SendError::new(SendErrorKind::InvalidUrl, format!("{url:?} has no host"))
        })?;
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        self.guard
            .check_port(port)
            .map_err(|message| SendError::new(SendErrorKind::RefusedByGuard, message))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.guard.check(ip).map_err(|class| {
                SendError::new(
                    SendErrorKind::RefusedByGuard,
                    format!("refused by the network guard: {ip} is a {class} address (allow it with HOOKLINE_ALLOW_NETWORKS)"),
                )
            })?;
        }
        Ok(uri)
    }

    /// Sends one request and reads at most `max_response_bytes` of the answer. Redirects are
    /// returned as they are, never followed.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
    ) -> Result<Response, SendError> {
        let uri = self.check_url(url)?;
        let mut req = Request::builder().method(method).uri(uri);
        {
            let h = req.headers_mut().expect("builder has no error yet");
            h.insert(
                http::header::USER_AGENT,
                HeaderValue::from_str(&self.opts.user_agent).expect("ASCII user agent"),
            );
            for (k, v) in headers {
                h.insert(k, v);
            }
        }
        let req = req.body(Full::new(body)).map_err(|e| {
            SendError::new(
                SendErrorKind::InvalidUrl,
                format!("building the request: {e}"),
            )
        })?;
        let started = Instant::now();
        let max = self.opts.max_response_bytes;
        let work = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| classify(&e, url))?;
            let (parts, mut body) = resp.into_parts();
            let mut kept = Vec::with_capacity(max.min(4096));
            while kept.len() < max {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            let room = max - kept.len();
                            kept.extend_from_slice(&data[..data.len().min(room)]);
                        }
                    }
                    Some(Err(_)) | None => break,
                }
            }
            Ok::<_, SendError>((parts, kept))
        };
        match tokio::time::timeout(self.opts.total_timeout, work).await {
            Ok(Ok((parts, kept))) => Ok(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: Bytes::from(kept),
                latency: started.elapsed(),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SendError::new(
                SendErrorKind::Timeout,
                format!(
                    "no complete answer from {url} within {:?}",
                    self.opts.total_timeout
                ),
            )),
        }
    }
}

/// The reason a name could not be connected to because of the guard; travels inside the
/// resolver's `io::Error` so [`classify`] can find it.
#[derive(Debug, thiserror::Error)]
#[error("refused by the network guard: {host} resolves only to non-public addresses ({detail}); allow them with HOOKLINE_ALLOW_NETWORKS")]
struct GuardRefused {
    host: String,
    detail: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{host} does not resolve: {source}")]
struct DnsFailed {
    host: String,
    source: std::io::Error,
}

/// Resolves names and keeps only addresses the guard allows.
#[derive(Clone)]
struct GuardedResolver {
    guard: Arc<NetworkGuard>,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|source| {
                    std::io::Error::other(DnsFailed {
                        host: host.clone(),
                        source,
                    })
                })?
                .collect();
            let mut refused = Vec::new();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match guard.check(a.ip()) {
                    Ok(()) => true,
                    Err(class) => {
                        refused.push(format!("{} is {class}", a.ip()));
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                return Err(std::io::Error::other(GuardRefused {
                    host,
                    detail: refused.join(", "),
                }));
            }
            Ok(allowed.into_iter())
        })
    }
}

fn classify(e: &hyper_util::client::legacy::Error, url: &str) -> SendError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(g) = s.downcast_ref::<GuardRefused>() {
            return SendError::new(SendErrorKind::RefusedByGuard, g.to_string());
        }
        if let Some(d) = s.downcast_ref::<DnsFailed>() {
            return SendError::new(SendErrorKind::Dns, d.to_string());
        }
        if let Some(t) = s.downcast_ref::<rustls::Error>() {
            return SendError::new(SendErrorKind::Tls, format!("TLS with {url} failed: {t}"));
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            // `io::Error::source` skips the error it wraps: look inside explicitly.
            if let Some(inner) = io.get_ref() {
                if let Some(g) = inner.downcast_ref::<GuardRefused>() {
                    return SendError::new(SendErrorKind::RefusedByGuard, g.to_string());
                }
                if let Some(d) = inner.downcast_ref::<DnsFailed>() {
                    return SendError::new(SendErrorKind::Dns, d.to_string());
                }
            }
            match io.kind() {
                std::io::ErrorKind::TimedOut => {
                    return SendError::new(
                        SendErrorKind::Timeout,
                        format!("connecting to {url} timed out"),
                    )
                }
                std::io::ErrorKind::ConnectionRefused => {
                    return SendError::new(
                        SendErrorKind::Connect,
                        format!("connection to {url} refused"),
                    )
                }
                _ => {}
            }
        }
        source = s.source();
    }
    let kind = if e.is_connect() {
        SendErrorKind::Connect
    } else {
        SendErrorKind::Other
    };
    let mut msg = format!("request to {url} failed: {e}");
    let mut s = std::error::Error::source(e);
    while let Some(inner) = s {
        msg.push_str(&format!(": {inner}"));
        s = inner.source();
    }
    SendError::new(kind, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_to_disallowed_ports_are_refused_before_any_connection() {
        let c = HttpClient::new(NetworkGuard::default(), HttpOptions::default());
        let e = c.check_url("https://hooks.example.com:22/in").unwrap_err();
        assert_eq!(e.kind, SendErrorKind::RefusedByGuard);
        assert!(e.message.contains("port 22 "), "{}", e.message);
        for ok in [
            "https://hooks.example.com/in",
            "http://hooks.example.com/in",
            "https://hooks.example.com:8443/in",
        ] {
            assert!(c.check_url(ok).is_ok(), "{ok}");
        }
        let narrow = HttpClient::new(
            NetworkGuard::default().with_ports(crate::PortPolicy::parse("443").unwrap()),
            HttpOptions::default(),
        );
        let e = narrow.check_url("http://hooks.example.com/in").unwrap_err();
        assert!(e.message.contains("port 80 "), "{}", e.message);
    }
}
