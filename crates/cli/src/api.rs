//! The admin API's HTTP client for the `hookline` commands that go through the API.
//!
//! The API URL is the operator's own setting, not a customer's, so the SSRF guard of
//! `hookline-outbound` does not apply here: loopback and private addresses are what an operator
//! points the CLI at. The token goes in the `Authorization` header and nowhere else (it is
//! never printed, logged or shown in `Debug` output).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Default time allowed for one API call; slow calls (check, replay) pass their own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest answer read from the API.
const MAX_RESPONSE_BYTES: usize = 32 << 20;

/// A bearer token. Its `Debug` and `Display` hide the value, so an accidental `{:?}` of the
/// parsed command line cannot print it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

impl FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the token is empty".into());
        }
        Ok(Secret(s.to_owned()))
    }
}

/// Why an API call did not give an answer to show.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API answered with its JSON error.
    #[error("{}{}", .0.message, suffix(&.0.code, .0.field.as_deref()))]
    Api(Box<ErrorBody>),
    #[error(
        "cannot reach the admin API at {url}: {reason}; check --api-url (or HOOKLINE_API_URL) \
         and that hookline-admin is running"
    )]
    Connect { url: String, reason: String },
    #[error(
        "the admin API at {url} did not answer within {} s; check --api-url (or HOOKLINE_API_URL)",
        timeout.as_secs()
    )]
    Timeout { url: String, timeout: Duration },
    #[error(
        "the admin API at {url} answered {status} with something that is not its JSON: {excerpt}"
    )]
    Unexpected {
        url: String,
        status: StatusCode,
        excerpt: String,
    },
    #[error("--api-url {url:?} is not an http(s) URL: {reason}")]
    BadBaseUrl { url: String, reason: String },
    #[error(
        "this command needs an account token: pass --token or set HOOKLINE_TOKEN (an operator \
         creates one with `hookline tokens create --account ID`)"
    )]
    NoToken,
}

/// The API's error answer: `{"error": {"code", "message", "field"?, "details"?}}`.
#[derive(Debug)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    pub details: Option<Value>,
}

fn suffix(code: &str, field: Option<&str>) -> String {
    match field {
        Some(f) if !f.is_empty() => format!(" (code {code}, field {f})"),
        _ => format!(" (code {code})"),
    }
}

/// A successful answer of the API: its JSON body (`Null` for an empty body, e.g. 204, or a
/// text one) and its raw bytes.
#[derive(Debug)]
pub struct Answer {
    pub body: Value,
    pub raw: Bytes,
}

type Inner = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client of one admin API.
#[derive(Clone)]
pub struct Api {
    base: url::Url,
    token: Option<Secret>,
    client: Inner,
    user_agent: Arc<str>,
}

impl Api {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:9400`, or a URL with a path prefix
    /// behind a proxy).
    pub fn new(base: &str, token: Option<Secret>) -> Result<Self, ApiError> {
        let bad = |reason: String| ApiError::BadBaseUrl {
            url: base.to_owned(),
            reason,
        };
        let url = url::Url::parse(base).map_err(|e| bad(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(bad("expected http://host:port or https://host".into()));
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| bad(format!("TLS setup: {e}")))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        Ok(Self {
            base: url,
            token,
            client: Client::builder(TokioExecutor::new()).build(https),
            user_agent: format!("hookline-cli/{}", env!("CARGO_PKG_VERSION")).into(),
        })
    }

    /// The URL of the path made of `segments` (each percent-encoded as one segment).
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> url::Url {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("checked in new: the base URL has a path");
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// Calls the API. `auth` adds the bearer token (and fails without one); `body` is sent as
    /// JSON. An error answer becomes [`ApiError::Api`].
    pub async fn call(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&Value>,
        auth: bool,
        timeout: Duration,
    ) -> Result<Answer, ApiError> {
        let mut req = Request::builder()
            .method(method)
            .uri(url.as_str())
            .header(header::USER_AGENT, &*self.user_agent)
            .header(header::ACCEPT, "application/json");
        if auth {
            let token = self.token.as_ref().ok_or(ApiError::NoToken)?;
            req = req.header(header::AUTHORIZATION, format!("Bearer {}", token.expose()));
        }
        let payload = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(v).expect("a JSON value serializes"))
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(payload))
            .map_err(|e| ApiError::BadBaseUrl {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let shown = url.to_string();
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| ApiError::Connect {
                    url: shown.clone(),
                    reason: error_chain(&e),
                })?;
            let status = resp.status();
            let raw = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| ApiError::Connect {
                    url: shown.clone(),
                    reason: format!("reading the answer: {e}"),
                })?
                .to_bytes();
            Ok::<_, ApiError>((status, raw))
        };
        let (status, raw) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ApiError::Timeout {
                url: shown.clone(),
                timeout,
            })??;
        answer(shown, status, raw)
    }

    /// `GET` with the token.
    pub async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, ApiError> {
        let url = self.url(segments, query);
        Ok(self
            .call(Method::GET, url, None, true, DEFAULT_TIMEOUT)
            .await?
            .body)
    }

    /// `GET` of a paginated list, every page (1000 items at a time, following `next_cursor`):
    /// the first page's answer with `field` holding all the items and `next_cursor` null.
    pub async fn get_all(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        field: &str,
    ) -> Result<Value, ApiError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        let mut first: Option<Value> = None;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("limit", "1000".to_owned()));
            if let Some(c) = cursor.take() {
                q.push(("cursor", c));
            }
            let mut page = self.get(segments, &q).await?;
            if let Some(items) = page.get_mut(field).and_then(Value::as_array_mut) {
                all.append(items);
            }
            cursor = page
                .get("next_cursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            first.get_or_insert(page);
            if cursor.is_none() {
                break;
            }
        }
        let mut answer = first.unwrap_or_default();
        if let Value::Object(m) = &mut answer {
            m.insert(field.to_owned(), Value::Array(all));
            m.insert("next_cursor".to_owned(), Value::Null);
        }
        Ok(answer)
    }

    /// A call with the token and an optional JSON body.
    pub async fn send(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        let url = self.url(segments, &[]);
        Ok(self.call(method, url, body, true, timeout).await?.body)
    }
}

/// The error and its causes, as hyper's errors say little at the top level.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}

/// The API's answer: its JSON body on success, [`ApiError::Api`] for an error it explains, and
/// [`ApiError::Unexpected`] for anything else.
fn answer(shown: String, status: http::StatusCode, raw: Bytes) -> Result<Answer, ApiError> {
    let body = if raw.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(&raw) {
            Ok(v) => v,
            // Some answers are plain text on purpose (operator metrics).
            Err(_) if status.is_success() => Value::Null,
            Err(_) => {
                return Err(ApiError::Unexpected {
                    url: shown,
                    status,
                    excerpt: excerpt(&raw),
                })
            }
        }
    };
    if status.is_success() {
        return Ok(Answer { body, raw });
    }
    let error = &body["error"];
    match (error["code"].as_str(), error["message"].as_str()) {
        (Some(code), Some(message)) => Err(ApiError::Api(Box::new(ErrorBody {
            code: code.to_owned(),
            message: message.to_owned(),
            field: error["field"].as_str().map(str::to_owned),
            details: error.get("details").cloned(),
        }))),
        _ => Err(ApiError::Unexpected {
            url: shown,
            status,
            excerpt: excerpt(&raw),
        }),
    }
}

fn excerpt(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let s: Secret = "hlt_0123456789abcdef_topsecret".parse().unwrap();
        assert!(!format!("{s:?}").contains("topsecret"));
        assert_eq!(s.expose(), "hlt_0123456789abcdef_topsecret");
    }

    #[test]
    fn urls_keep_a_path_prefix_and_encode_segments() {
        let api = Api::new("http://127.0.0.1:9400/hookline/", None).unwrap();
        let url = api.url(
            &["v1", "subscriptions", "a b/c"],
            &[("database", "12".into()), ("status", "active".into())],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9400/hookline/v1/subscriptions/a%20b%2Fc?database=12&status=active"
        );
        let api = Api::new("http://127.0.0.1:9400", None).unwrap();
        assert_eq!(
            api.url(&["v1", "keys"], &[]).as_str(),
            "http://127.0.0.1:9400/v1/keys"
        );
    }

    #[test]
    fn api_errors_read_like_the_brief() {
        let e = ApiError::Api(Box::new(ErrorBody {
            code: "invalid_request".into(),
            message: "unknown variant `klik`".into(),
            field: Some("events[0]".into()),
            details: None,
        }));
        assert_eq!(
            e.to_string(),
            "unknown variant `klik` (code invalid_request, field events[0])"
        );
        assert!(matches!(
            Api::new("ftp://x", None),
            Err(ApiError::BadBaseUrl { .. })
        ));
    }
}
