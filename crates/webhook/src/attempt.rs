//! One delivery attempt: build the request and its headers, sign it by the subscription's
//! signature profile, POST it, and judge the answer (see [`crate::judge`]).

use std::time::Duration;

use bytes::Bytes;
use hookline_model::trace::child_traceparent;
use hookline_model::{Delivery, ErrorClass, SignatureProfile};
use hookline_outbound::{HttpClient, Response, SendError, SendErrorKind};
use hookline_signing::{sign_request, standard_webhooks, RequestToSign, Signers};
use http::{HeaderName, HeaderValue, Method};

use crate::judge::{judge, Verdict};

/// Header carrying the delivery id, stable across attempts, for receivers to drop duplicates.
pub const DELIVERY_ID_HEADER: &str = "x-hookline-delivery";
/// Header carrying the attempt number (1 for the first).
pub const ATTEMPT_HEADER: &str = "x-hookline-attempt";
/// Header carrying the event type.
pub const EVENT_HEADER: &str = "x-hookline-event";
/// W3C Trace Context: present when the event's Kafka record carried one; the webhook is a child
/// span of it (same trace id and flags, a span id of its own per attempt).
pub const TRACEPARENT_HEADER: &str = "traceparent";

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

/// Signs `delivery` by its subscription's profile (`copernica`: draft-cavage with the RSA key;
/// `standard-webhooks`: `v1a` with the account's Ed25519 key) and sends it as attempt number
/// `attempt`.
pub async fn attempt(
    client: &HttpClient,
    signers: &Signers,
    delivery: &Delivery,
    attempt: u32,
    copernica_id: String,
) -> AttemptReport {
    traced_attempt(client, signers, delivery, attempt, copernica_id, None).await
}

/// [`attempt`] as the span `span_id` of the delivery's trace: the request's `traceparent` names
/// that span as its parent, so a receiver's own span hangs under the exported attempt span.
/// Without one (`None`), the request carries a fresh span id of the delivery's trace.
pub async fn traced_attempt(
    client: &HttpClient,
    signers: &Signers,
    delivery: &Delivery,
    attempt: u32,
    copernica_id: String,
    span_id: Option<u64>,
) -> AttemptReport {
    let started_at = hookline_model::timefmt::now_rfc3339();
    let started = std::time::Instant::now();
    let request = Request {
        attempt,
        copernica_id,
        span_id: span_id.unwrap_or_else(|| rand::random::<u64>() | 1),
    };
    let result = send(client, signers, delivery, request).await;
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

/// What one attempt adds to the delivery in its request.
struct Request {
    attempt: u32,
    copernica_id: String,
    /// The span id the request's `traceparent` names as its parent.
    span_id: u64,
}

async fn send(
    client: &HttpClient,
    signers: &Signers,
    d: &Delivery,
    request: Request,
) -> Result<Response, SendError> {
    let Request {
        attempt,
        copernica_id,
        span_id,
    } = request;
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
    let mut headers = vec![h("host", &host)?, h("content-type", &content_type)?];
    match d.signature {
        SignatureProfile::Copernica => {
            // RSA signing takes a quarter of a millisecond of a core: off the async workers, on
            // the bounded signing pool (one thread per core).
            let signed = {
                let key = signers.rsa.clone();
                let (host, path, id, body) = (
                    host.clone(),
                    path.clone(),
                    copernica_id.clone(),
                    body.clone(),
                );
                signers
                    .pool
                    .run(move || {
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
                        message: format!("signing failed: {e}"),
                    })?
            };
            headers.extend([
                h("date", &signed.date)?,
                h("digest", &signed.digest)?,
                h("x-nonce", &signed.nonce)?,
                h("x-copernica-id", &copernica_id)?,
                h("signature", &signed.signature)?,
            ]);
        }
        SignatureProfile::StandardWebhooks => {
            // Ed25519 takes tens of microseconds: no need for a blocking thread. The id is the
            // delivery id (the receiver's idempotency key, the same on every attempt); the
            // timestamp and so the signature are fresh per attempt. The key is the delivery's
            // account's, so a request signed for one account never verifies for another.
            // During an Ed25519 key rotation's overlap the retired key signs too (a second
            // `v1a` signature), so receivers that have not fetched the new key yet verify.
            let keys = signers
                .ed25519_all_for(d.account.as_str(), time::OffsetDateTime::now_utc())
                .map_err(|e| SendError {
                    kind: SendErrorKind::Other,
                    message: format!("signing: {e}"),
                })?;
            let keys: Vec<&hookline_signing::Ed25519Key> =
                keys.iter().map(|(k, _)| k.as_ref()).collect();
            let signed = standard_webhooks::sign_all(&keys, &d.delivery_id.0, &body);
            headers.extend([
                h(standard_webhooks::ID_HEADER, &signed.id)?,
                h(
                    standard_webhooks::TIMESTAMP_HEADER,
                    &signed.timestamp.to_string(),
                )?,
                h(standard_webhooks::SIGNATURE_HEADER, &signed.signature)?,
            ]);
        }
    }
    headers.extend([
        h(DELIVERY_ID_HEADER, &d.delivery_id.0)?,
        h(ATTEMPT_HEADER, &attempt.to_string())?,
        h(EVENT_HEADER, &d.event_type)?,
    ]);
    let parent = d.source.as_ref().and_then(|s| s.traceparent.as_deref());
    if let Some(child) = parent.and_then(|p| child_traceparent(p, span_id)) {
        headers.push(h(TRACEPARENT_HEADER, &child)?);
    }
    client.request(Method::POST, &d.url, headers, body).await
}

fn is_default_port(scheme: Option<&str>, port: u16) -> bool {
    matches!((scheme, port), (Some("http"), 80) | (Some("https"), 443))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_outbound::{HttpOptions, NetworkGuard};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Accepts one request on `listener`, answers 200, and returns its headers (names in lower
    /// case) and body.
    async fn capture_one(listener: tokio::net::TcpListener) -> (Vec<(String, String)>, Vec<u8>) {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the headers ended");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let headers: Vec<(String, String)> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        while buf.len() < head_end + len {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the body ended");
            buf.extend_from_slice(&chunk[..n]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        (headers, buf[head_end..head_end + len].to_vec())
    }

    /// Sends one delivery with `profile` to a loopback listener; returns what arrived.
    async fn send_with(
        signers: &Signers,
        profile: &str,
        source: serde_json::Value,
    ) -> (Delivery, Vec<(String, String)>, Vec<u8>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook?x=1", listener.local_addr().unwrap());
        let captured = tokio::spawn(capture_one(listener));
        let d: Delivery = serde_json::from_value(serde_json::json!({
            "delivery_id": "dlv_0123456789abcdef01234567", "event_id": "evt-1",
            "event_type": "click", "subscription_id": "sub-1", "account": "1001",
            "database": "12", "url": url, "format": "json", "body": "{\"id\":\"evt-1\"}",
            "signature": profile, "created_at": "2026-11-25T10:15:00Z", "source": source
        }))
        .unwrap();
        let client = HttpClient::new(
            NetworkGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
            HttpOptions::default(),
        );
        let report = attempt(&client, signers, &d, 3, "account_1001".into()).await;
        assert_eq!(report.verdict, Verdict::Delivered, "{report:?}");
        let (headers, body) = captured.await.unwrap();
        (d, headers, body)
    }

    #[tokio::test]
    async fn the_subscriptions_profile_chooses_the_signature() {
        let dir = std::env::temp_dir().join(format!("hookline-attempt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let signers = Signers::load_or_generate(&dir.join("key.pem"), Some("k1")).unwrap();

        let (d, headers, body) = send_with(&signers, "copernica", serde_json::Value::Null).await;
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        let der = signers.rsa.public_key_der().to_vec();
        let key_id = hookline_signing::verify_request("POST", "/hook?x=1", get, &body, |_| {
            Some(der.clone())
        });
        assert_eq!(key_id, Ok("k1".to_owned()));
        assert_eq!(get("x-copernica-id"), Some("account_1001"));
        assert_eq!(get(DELIVERY_ID_HEADER), Some(d.delivery_id.0.as_str()));
        assert_eq!(get(standard_webhooks::SIGNATURE_HEADER), None);

        let (d, headers, body) =
            send_with(&signers, "standard-webhooks", serde_json::Value::Null).await;
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            standard_webhooks::verify(
                get,
                &body,
                &[signers.ed25519_for("1001").unwrap().public_key_raw()],
                std::time::SystemTime::now()
            ),
            Ok(())
        );
        assert_eq!(get("webhook-id"), Some(d.delivery_id.0.as_str()));
        assert_eq!(get(DELIVERY_ID_HEADER), Some(d.delivery_id.0.as_str()));
        assert_eq!(get(ATTEMPT_HEADER), Some("3"));
        assert_eq!(get(EVENT_HEADER), Some("click"));
        assert_eq!(get("content-type"), Some("application/json"));
        assert!(get("user-agent").is_some_and(|u| u.starts_with("Hookline/")));
        for absent in [
            "signature",
            "x-copernica-id",
            "digest",
            "x-nonce",
            "traceparent",
        ] {
            assert_eq!(
                get(absent),
                None,
                "{absent} belongs to the copernica profile"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_webhook_continues_the_trace_of_the_event_record() {
        let dir = std::env::temp_dir().join(format!("hookline-trace-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let signers = Signers::load_or_generate(&dir.join("key.pem"), Some("k1")).unwrap();
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let source = serde_json::json!({"topic": "t", "partition": 0, "offset": 1,
            "timestamp_ms": 1_764_000_000_000_i64, "traceparent": parent});
        let mut spans = Vec::new();
        for _ in 0..2 {
            let (_, headers, _) = send_with(&signers, "copernica", source.clone()).await;
            let tp = headers
                .iter()
                .find(|(k, _)| k == TRACEPARENT_HEADER)
                .map(|(_, v)| v.clone())
                .expect("a traceparent header");
            assert!(hookline_model::trace::is_valid_traceparent(&tp), "{tp}");
            assert_eq!(&tp[..36], &parent[..36], "same version and trace id");
            assert_eq!(&tp[52..], "-01", "same flags");
            assert_ne!(&tp[36..52], &parent[36..52], "a span of its own");
            spans.push(tp[36..52].to_owned());
        }
        assert_ne!(spans[0], spans[1], "each attempt is a span of its own");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
