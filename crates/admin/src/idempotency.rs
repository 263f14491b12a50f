//! `Idempotency-Key` on the `POST`s that create or send: create subscription, create domain,
//! test webhook, check now, replay.
//!
//! A request with the header is remembered per account and key for [`KEY_TTL`] (24 h) once it
//! succeeded (2xx): the same key with the same request (method, path and JSON body, key order
//! and white space aside) answers the first answer again, marked `Idempotent-Replayed: true`,
//! without running anything; the same key with another request answers 422
//! `idempotency_key_reused`. While the first request still runs, a second one with its key
//! answers 409 `idempotency_in_progress` (with `Retry-After`). An error answer is not kept:
//! the key stays free, so a corrected or later retry runs.
//!
//! Keys live in the memory of one admin instance, bounded per account ([`KEYS_PER_ACCOUNT`],
//! the oldest forgotten first) and per answer ([`MAX_KEPT_ANSWER`] bytes; a larger answer is
//! not kept). A restart forgets them, and another instance behind the same load balancer does
//! not know them: `docs/admin-api.md` says how to deploy for that.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hookline_model::AccountId;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth::AccountCaller;
use crate::error::ApiError;
use crate::AppState;

/// How long a key is remembered after its request succeeded.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Keys remembered per account and instance; past it the oldest is forgotten.
pub const KEYS_PER_ACCOUNT: usize = 10_000;
/// The largest answer kept for replay; a larger one leaves its key free.
pub const MAX_KEPT_ANSWER: usize = 256 << 10;
/// The largest request body read (the JSON extractor's own limit).
const MAX_BODY: usize = 2 << 20;
/// Longest key accepted.
const MAX_KEY_LEN: usize = 255;

/// The route templates whose `POST` honours `Idempotency-Key`.
pub const ROUTES: [&str; 5] = [
    "/v1/subscriptions",
    "/v1/subscriptions/{id}/test",
    "/v1/subscriptions/{id}/replay",
    "/v1/check",
    "/v1/domains",
];

/// A kept answer.
#[derive(Clone)]
struct Kept {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

enum Progress {
    Running,
    Done(Kept),
}

struct Entry {
    fingerprint: [u8; 32],
    at: Instant,
    state: Progress,
}

#[derive(Default)]
struct AccountKeys {
    entries: HashMap<String, Entry>,
    /// Keys in the order they were taken, for expiry and the per-account bound.
    order: VecDeque<(String, Instant)>,
}

impl AccountKeys {
    fn forget_expired(&mut self, now: Instant) {
        while let Some((key, at)) = self.order.front() {
            let expired = now.duration_since(*at) >= KEY_TTL;
            if !expired && self.order.len() <= KEYS_PER_ACCOUNT {
                break;
            }
            // Only drop the entry this queue slot stands for (a retaken key has a newer slot).
            if self.entries.get(key).is_some_and(|e| e.at == *at) {
                self.entries.remove(key);
            }
            self.order.pop_front();
        }
    }
}

/// The keys this instance remembers, per account.
#[derive(Default)]
pub struct IdempotencyKeys {
    accounts: Mutex<HashMap<AccountId, AccountKeys>>,
}

/// What a request with a key should do.
enum Decision {
    Run,
    Replay(Kept),
    Reject(ApiError),
}

impl IdempotencyKeys {
    fn decide(&self, account: &AccountId, key: &str, fingerprint: [u8; 32]) -> Decision {
        let now = Instant::now();
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        let keys = accounts.entry(account.clone()).or_default();
        keys.forget_expired(now);
        match keys.entries.get(key) {
            Some(e) if e.fingerprint != fingerprint => Decision::Reject(
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used within the last 24 hours for another \
                     request (other endpoint or body); use a new key for a new request",
                )
                .with_field("Idempotency-Key"),
            ),
            Some(Entry {
                state: Progress::Done(kept),
                ..
            }) => Decision::Replay(kept.clone()),
            Some(_) => Decision::Reject(ApiError::too_soon(
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still running; ask again shortly to get \
                 its answer",
            )),
            None => {
                keys.entries.insert(
                    key.to_owned(),
                    Entry {
                        fingerprint,
                        at: now,
                        state: Progress::Running,
                    },
                );
                keys.order.push_back((key.to_owned(), now));
                keys.forget_expired(now);
                Decision::Run
            }
        }
    }

    /// Keeps the answer of the request that took `key`, or frees the key.
    fn finish(&self, account: &AccountId, key: &str, kept: Option<Kept>) {
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(keys) = accounts.get_mut(account) else {
            return;
        };
        match kept {
            Some(k) => {
                if let Some(e) = keys.entries.get_mut(key) {
                    e.state = Progress::Done(k);
                }
            }
            None => {
                if let Some(e) = keys.entries.remove(key) {
                    keys.order.retain(|(k, at)| !(k == key && *at == e.at));
                }
            }
        }
        if keys.entries.is_empty() {
            accounts.remove(account);
        }
    }
}

/// SHA-256 of the method, path and body (a JSON body with its object keys sorted).
fn fingerprint(method: &Method, path: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => h.update(canonical(&v).as_bytes()),
        Err(_) => h.update(body),
    }
    h.finalize().into()
}

/// JSON text with every object's keys sorted, so equal bodies compare equal.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw.to_str().unwrap_or_default();
    let fine =
        !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic());
    if !fine {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters, e.g. a UUID",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// The middleware: runs before the handlers of [`ROUTES`]' `POST`s.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let applies = req.method() == Method::POST
        && req
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|p| ROUTES.contains(&p.as_str()));
    if !applies {
        return next.run(req).await;
    }
    match with_key(&state, req, next).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn with_key(state: &AppState, req: Request, next: Next) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let Some(key) = key_of(&parts.headers)? else {
        return Ok(next.run(Request::from_parts(parts, body)).await);
    };
    let caller = AccountCaller::from_request_parts(&mut parts, state).await?;
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {MAX_BODY} bytes"),
        )
    })?;
    let path = parts.uri.path().to_owned();
    let print = fingerprint(&parts.method, &path, &bytes);
    let keys = &state.idempotency;
    match keys.decide(&caller.account, &key, print) {
        Decision::Reject(e) => return Err(e),
        Decision::Replay(kept) => return Ok(replayed(kept)),
        Decision::Run => {}
    }
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (head, body) = resp.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        keys.finish(&caller.account, &key, None);
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the answer could not be read",
        ));
    };
    let keep = head.status.is_success() && body.len() <= MAX_KEPT_ANSWER;
    let kept = keep.then(|| Kept {
        status: head.status,
        headers: head
            .headers
            .iter()
            .filter(|(n, _)| *n != header::CONTENT_LENGTH && *n != header::DATE)
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
        body: body.clone(),
    });
    keys.finish(&caller.account, &key, kept);
    Ok(Response::from_parts(head, Body::from(body)))
}

fn replayed(kept: Kept) -> Response {
    let mut resp = Response::new(Body::from(kept.body));
    *resp.status_mut() = kept.status;
    let headers = resp.headers_mut();
    for (n, v) in kept.headers {
        headers.append(n, v);
    }
    headers.insert(
        HeaderName::from_static("idempotent-replayed"),
        HeaderValue::from_static("true"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct() -> AccountId {
        AccountId::new("1001").unwrap()
    }

    fn done(keys: &IdempotencyKeys, key: &str) {
        keys.finish(
            &acct(),
            key,
            Some(Kept {
                status: StatusCode::CREATED,
                headers: vec![],
                body: Bytes::from_static(b"{}"),
            }),
        );
    }

    #[test]
    fn the_same_request_replays_another_is_refused_and_errors_free_the_key() {
        let keys = IdempotencyKeys::default();
        let a = fingerprint(
            &Method::POST,
            "/v1/check",
            br#"{"b": 1, "a": [1, {"y": 2, "x": 1}]}"#,
        );
        let same = fingerprint(
            &Method::POST,
            "/v1/check",
            br#"{"a":[1,{"x":1,"y":2}],"b":1}"#,
        );
        let other = fingerprint(&Method::POST, "/v1/check", br#"{"a": 2}"#);
        assert_eq!(a, same, "key order and white space do not matter");
        assert!(matches!(keys.decide(&acct(), "k1", a), Decision::Run));
        assert!(matches!(
            keys.decide(&acct(), "k1", a),
            Decision::Reject(e) if e.code == "idempotency_in_progress"
        ));
        done(&keys, "k1");
        assert!(matches!(
            keys.decide(&acct(), "k1", same),
            Decision::Replay(_)
        ));
        assert!(matches!(
            keys.decide(&acct(), "k1", other),
            Decision::Reject(e) if e.code == "idempotency_key_reused"
        ));
        // Another account has its own keys.
        let bob = AccountId::new("2002").unwrap();
        assert!(matches!(keys.decide(&bob, "k1", other), Decision::Run));
        // An error answer frees the key.
        assert!(matches!(keys.decide(&acct(), "k2", a), Decision::Run));
        keys.finish(&acct(), "k2", None);
        assert!(matches!(keys.decide(&acct(), "k2", other), Decision::Run));
    }

    #[test]
    fn keys_per_account_are_bounded_oldest_first() {
        let keys = IdempotencyKeys::default();
        let p = fingerprint(&Method::POST, "/v1/check", b"{}");
        for n in 0..=KEYS_PER_ACCOUNT {
            assert!(matches!(
                keys.decide(&acct(), &format!("k{n}"), p),
                Decision::Run
            ));
            done(&keys, &format!("k{n}"));
        }
        let accounts = keys.accounts.lock().unwrap();
        let mine = &accounts[&acct()];
        assert_eq!(mine.entries.len(), KEYS_PER_ACCOUNT);
        assert!(!mine.entries.contains_key("k0"), "the oldest went first");
        assert!(mine.entries.contains_key(&format!("k{KEYS_PER_ACCOUNT}")));
    }

    #[test]
    fn keys_are_checked() {
        let mut h = HeaderMap::new();
        assert!(key_of(&h).unwrap().is_none());
        h.insert("idempotency-key", HeaderValue::from_static("a b"));
        assert!(key_of(&h).is_err());
        h.insert("idempotency-key", HeaderValue::from_static("7f3c-0001"));
        assert_eq!(key_of(&h).unwrap().as_deref(), Some("7f3c-0001"));
    }
}
