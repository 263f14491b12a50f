//! One delivery attempt: sign, POST, judge.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hookline_model::{Delivery, ErrorClass};
use hookline_outbound::{HttpClient, Response, SendError, SendErrorKind};
use hookline_signing::{sign_request, RequestToSign, SigningKey};
use http::{HeaderName, HeaderValue, Method};

use crate::policy::parse_retry_after;

/// Header carrying the delivery id, stable across attempts, for receivers to drop duplicates.
pub const DELIVERY_ID_HEADER: &str = "x-hookline-delivery";
/// Header carrying the attempt number (1 for the first).
pub const ATTEMPT_HEADER: &str = "x-hookline-attempt";
/// Header carrying the event type.
pub const EVENT_HEADER: &str = "x-hookline-event";

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Delivered,
    /// Try again (with the server's `Retry-After`, if it sent one).
    Retry {
        retry_after: Option<Duration>,
    },
    /// 410 Gone: the receiver asks to stop; the subscription is disabled.
    Gone,
    /// Trying again cannot help (invalid URL, refused by the network guard): dead-letter now.
    Permanent,
}

/// The result of one attempt, ready to become an outcome record.
#[derive(Debug)]
pub struct AttemptReport {
    pub verdict: Verdict,
    pub http_status: Option<u16>,
    pub error_class: Option<ErrorClass>,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    pub latency: Duration,
    pub started_at: String,
    pub finished_at: String,
}

/// Signs and sends `delivery` as attempt number `attempt`.
pub async fn attempt(
    client: &HttpClient,
    key: &Arc<SigningKey>,
    delivery: &Delivery,
    attempt: u32,
    copernica_id: String,
) -> AttemptReport {
    let started_at = hookline_model::timefmt::now_rfc3339();
    let started = std::time::Instant::now();
    let result = send(client, key, delivery, attempt, copernica_id).await;
    let latency = started.elapsed();
    let finished_at = hookline_model::timefmt::now_rfc3339();
    let (verdict, http_status, error_class, error, response_excerpt) = judge(&result);
    AttemptReport {
        verdict,
        http_status,
        error_class,
        error,
        response_excerpt,
        latency,
        started_at,
        finished_at,
    }
}

async fn send(
    client: &HttpClient,
    key: &Arc<SigningKey>,
    d: &Delivery,
    attempt: u32,
    copernica_id: String,
) -> Result<Response, SendError> {
    let uri = client.check_url(&d.url)?;
    let host = match (uri.host(), uri.port_u16()) {
        (Some(h), Some(p)) if !is_default_port(uri.scheme_str(), p) => format!("{h}:{p}"),
        (Some(h), _) => h.to_owned(),
        (None, _) => String::new(),
    };
    let path = uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let body = Bytes::from(d.body.clone());
    // RSA signing takes about a millisecond: keep it off the async workers.
    let signed = {
        let key = key.clone();
        let (host, path, id, body) = (
            host.clone(),
            path.clone(),
            copernica_id.clone(),
            body.clone(),
        );
        tokio::task::spawn_blocking(move || {
            sign_request(
                &key,
                &RequestToSign {
                    method: "POST",
                    path_and_query: &path,
                    host: &host,
                    copernica_id: &id,
                    body: &body,
                },
            )
        })
        .await
        .map_err(|e| SendError {
            kind: SendErrorKind::Other,
            message: format!("signing task failed: {e}"),
        })?
    };
    let content_type = d
        .content_type
        .clone()
        .unwrap_or_else(|| d.format.content_type().to_owned());
    let h = |name: &'static str, value: &str| -> Result<(HeaderName, HeaderValue), SendError> {
        let v = HeaderValue::from_str(value).map_err(|_| SendError {
            kind: SendErrorKind::InvalidUrl,
            message: format!("header {name} value is not valid"),
        })?;
        Ok((HeaderName::from_static(name), v))
    };
    let headers = vec![
        h("host", &host)?,
        h("date", &signed.date)?,
        h("content-type", &content_type)?,
        h("digest", &signed.digest)?,
        h("x-nonce", &signed.nonce)?,
        h("x-copernica-id", &copernica_id)?,
        h("signature", &signed.signature)?,
        h(DELIVERY_ID_HEADER, &d.delivery_id.0)?,
        h(ATTEMPT_HEADER, &attempt.to_string())?,
        h(EVENT_HEADER, &d.event_type)?,
    ];
    client.request(Method::POST, &d.url, headers, body).await
}

fn is_default_port(scheme: Option<&str>, port: u16) -> bool {
    matches!((scheme, port), (Some("http"), 80) | (Some("https"), 443))
}

type Judged = (
    Verdict,
    Option<u16>,
    Option<ErrorClass>,
    Option<String>,
    Option<String>,
);

/// Maps a response or error to a verdict and an error class.
pub fn judge(result: &Result<Response, SendError>) -> Judged {
    match result {
        Ok(r) => {
            let excerpt = (!r.body.is_empty())
                .then(|| String::from_utf8_lossy(&r.body[..r.body.len().min(512)]).into_owned());
            let status = Some(r.status);
            match r.status {
                200..=299 => (Verdict::Delivered, status, None, None, excerpt),
                410 => (
                    Verdict::Gone,
                    status,
                    Some(ErrorClass::Http4xx),
                    Some("410 Gone: the receiver asked to stop".into()),
                    excerpt,
                ),
                429 | 503 => {
                    let ra = r
                        .headers
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    let class = if r.status == 429 {
                        ErrorClass::Http4xx
                    } else {
                        ErrorClass::Http5xx
                    };
                    (
                        Verdict::Retry { retry_after: ra },
                        status,
                        Some(class),
                        Some(format!("HTTP {}", r.status)),
                        excerpt,
                    )
                }
                s => {
                    let class = if s >= 500 {
                        ErrorClass::Http5xx
                    } else {
                        ErrorClass::Http4xx
                    };
                    (
                        Verdict::Retry { retry_after: None },
                        status,
                        Some(class),
                        Some(format!("HTTP {s}")),
                        excerpt,
                    )
                }
            }
        }
        Err(e) => {
            let (verdict, class) = match e.kind {
                SendErrorKind::Timeout => {
                    (Verdict::Retry { retry_after: None }, ErrorClass::Timeout)
                }
                SendErrorKind::Dns => (Verdict::Retry { retry_after: None }, ErrorClass::Dns),
                SendErrorKind::Connect => {
                    (Verdict::Retry { retry_after: None }, ErrorClass::Connect)
                }
                SendErrorKind::Tls => (Verdict::Retry { retry_after: None }, ErrorClass::Tls),
                SendErrorKind::RefusedByGuard => (Verdict::Permanent, ErrorClass::RefusedByGuard),
                SendErrorKind::InvalidUrl => (Verdict::Permanent, ErrorClass::Other),
                SendErrorKind::Other => (Verdict::Retry { retry_after: None }, ErrorClass::Other),
            };
            (verdict, None, Some(class), Some(e.message.clone()), None)
        }
    }
}
