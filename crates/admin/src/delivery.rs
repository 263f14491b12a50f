//! Sending now and looking back: the test webhook, "check now" and the attempt history (the
//! replay of dead letters is [`crate::replay`]).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use futures::StreamExt;
use hookline_model::{
    Delivery, DeliveryId, EventId, EventKind, Outcome, Subscription, SubscriptionStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::AccountCaller;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::subscriptions::{owned, parse_body};
use crate::AppState;

/// The optional body of `POST /v1/subscriptions/{id}/test`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// The event to send: a JSON object (encoded in the subscription's format) or a string (sent
    /// as is). Absent: the documented sample of `event`.
    pub body: Option<Value>,
    /// Which sample to send when `body` is absent; default: the subscription's first event type.
    pub event: Option<EventKind>,
}

/// What the endpoint answered to a test webhook.
#[derive(Debug, Serialize)]
pub struct TestReport {
    pub subscription: String,
    pub url: String,
    pub delivery_id: String,
    pub event: String,
    /// A 2xx answer within the timeout.
    pub delivered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<hookline_model::ErrorClass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The documented sample bodies (`docs/events.md`, kept current by a test of `hookline-join`).
const EVENTS_DOC: &str = include_str!("../../../docs/events.md");

/// The JSON sample named `name` in `docs/events.md`.
fn sample(name: &str) -> Option<Map<String, Value>> {
    let start_marker = format!("<!-- sample:{name}:json -->");
    let start = EVENTS_DOC.find(&start_marker)? + start_marker.len();
    let rest = &EVENTS_DOC[start..];
    let end = rest.find("<!-- /sample -->")?;
    let block = rest[..end].trim();
    let json = block.strip_prefix("```json")?.strip_suffix("```")?.trim();
    serde_json::from_str(json).ok()
}

/// A sample event of `kind` for `sub`, with the subscription's database (and collection).
fn sample_for(sub: &Subscription, kind: EventKind) -> Map<String, Value> {
    let name = match (kind, sub.collection.is_some()) {
        (EventKind::Create, false) => "profile-create",
        (EventKind::Update, false) => "profile-update",
        (EventKind::Delete, false) => "profile-delete",
        (EventKind::Create, true) => "subprofile-create",
        (EventKind::Update, true) => "subprofile-update",
        (EventKind::Delete, true) => "subprofile-delete",
        (k, _) => k.as_str(),
    };
    let mut body = sample(name).unwrap_or_default();
    let database = sub
        .database
        .as_ref()
        .map_or(hookline_model::delivery::NO_DATABASE, |d| d.as_str());
    body.insert("database".into(), Value::String(database.to_owned()));
    if let Some(c) = &sub.collection {
        if body.contains_key("collection") {
            body.insert("collection".into(), Value::String(c.to_string()));
        }
    }
    body
}

/// Signs and sends one test delivery to `sub` right away, as the sender would (same signature,
/// headers and SSRF guard); nothing goes through Kafka and no outcome is recorded, so tests do
/// not count as deliveries.
pub async fn send_test(
    state: &AppState,
    sub: &Subscription,
    req: TestRequest,
) -> Result<TestReport, ApiError> {
    let kind = req
        .event
        .or_else(|| sub.events.first().copied())
        .unwrap_or(EventKind::Click);
    let body = match req.body {
        None => String::from_utf8_lossy(&hookline_payload::encode(
            sub.format,
            &sample_for(sub, kind),
        ))
        .into_owned(),
        Some(Value::Object(map)) => {
            String::from_utf8_lossy(&hookline_payload::encode(sub.format, &map)).into_owned()
        }
        Some(Value::String(s)) => s,
        Some(_) => return Err(ApiError::invalid(
            "body",
            "must be a JSON object (encoded in the subscription's format) or a string (sent as is)",
        )),
    };
    let test_id = uuid::Uuid::new_v4().simple().to_string();
    let delivery = Delivery::to_subscription(
        sub,
        DeliveryId(format!("test_{test_id}")),
        EventId(format!("test-{test_id}")),
        kind,
        body,
    );
    let report = hookline_webhook::attempt(
        &state.client,
        &state.signers,
        &delivery,
        1,
        state.copernica_id.for_account(&sub.account),
    )
    .await;
    Ok(TestReport {
        subscription: sub.id.0.clone(),
        url: sub.url.clone(),
        delivery_id: delivery.delivery_id.0,
        event: kind.as_str().to_owned(),
        delivered: matches!(report.verdict, hookline_webhook::Verdict::Delivered),
        http_status: report.http_status,
        latency_ms: report.latency.as_secs_f64() * 1000.0,
        response_excerpt: report.response_excerpt,
        error_class: report.error_class,
        error: report.error,
    })
}

/// A JSON body that may be left out entirely (then: the defaults).
pub(crate) fn optional_body<T: Default + serde::de::DeserializeOwned>(
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not JSON: {e}"),
        )
    })?;
    parse_body(v)
}

fn refuse_unverified(sub: &Subscription) -> Result<(), ApiError> {
    if sub.status == SubscriptionStatus::Unverified {
        return Err(ApiError::conflict(
            "unverified",
            "the subscription's URL is not verified yet, and Hookline sends nothing to unverified \
             URLs (not even tests); POST .../verify first",
        ));
    }
    Ok(())
}

/// `POST /v1/subscriptions/{id}/test`.
pub async fn test(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<TestReport>, ApiError> {
    let sub = owned(&state, &caller.account, &id)?;
    let req: TestRequest = optional_body(&body)?;
    refuse_unverified(&sub)?;
    crate::limits::charge(&state.limits.test, &caller.account, "test webhooks")?;
    Ok(Json(send_test(&state, &sub, req).await?))
}

/// One line of the "check now" report.
#[derive(Debug, Serialize)]
pub struct CheckLine {
    pub subscription: String,
    pub url: String,
    pub status: SubscriptionStatus,
    /// Why nothing was sent: an unverified URL, a paused or disabled subscription, or the
    /// fan-out limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<TestReport>,
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub checked: usize,
    pub delivered: usize,
    pub failed: usize,
    pub skipped: usize,
    pub subscriptions: Vec<CheckLine>,
}

/// How many endpoints "check now" calls at once.
const CHECK_CONCURRENCY: usize = 8;

/// Why "check now" sends nothing to `sub`, if it does not.
fn check_skips(sub: &Subscription) -> Option<&'static str> {
    match sub.status {
        SubscriptionStatus::Unverified => {
            Some("unverified: nothing is sent until the URL is verified")
        }
        SubscriptionStatus::Paused => Some("paused: resume it to have it checked"),
        SubscriptionStatus::Disabled => Some("disabled: nothing is sent to it"),
        _ => None,
    }
}

/// `POST /v1/check`: a test webhook to every active subscription of the account, at most
/// `--max-check-fanout` of them (the rest are listed as skipped).
pub async fn check(
    State(state): State<AppState>,
    caller: AccountCaller,
) -> Result<Json<CheckReport>, ApiError> {
    crate::limits::charge(&state.limits.check, &caller.account, "checks")?;
    let subs = state
        .tables
        .subscriptions_where(|s| s.account == caller.account);
    let fanout = state.limits.max_check_fanout;
    let mut called = 0;
    let planned: Vec<(Subscription, Option<String>)> = subs
        .into_iter()
        .map(|sub| {
            let skip = check_skips(&sub).map(str::to_owned).or_else(|| {
                called += 1;
                (called > fanout)
                    .then(|| format!("not called: one check calls at most {fanout} endpoints"))
            });
            (sub, skip)
        })
        .collect();
    let lines: Vec<CheckLine> = futures::stream::iter(planned)
        .map(|(sub, skip)| {
            let state = state.clone();
            async move {
                let mut line = CheckLine {
                    subscription: sub.id.0.clone(),
                    url: sub.url.clone(),
                    status: sub.status,
                    skipped: None,
                    result: None,
                };
                if let Some(reason) = skip {
                    line.skipped = Some(reason);
                } else {
                    match send_test(&state, &sub, TestRequest::default()).await {
                        Ok(r) => line.result = Some(r),
                        Err(e) => line.skipped = Some(e.message.clone()),
                    }
                }
                line
            }
        })
        .buffered(CHECK_CONCURRENCY)
        .collect()
        .await;
    let delivered = lines
        .iter()
        .filter(|l| l.result.as_ref().is_some_and(|r| r.delivered))
        .count();
    let skipped = lines.iter().filter(|l| l.result.is_none()).count();
    Ok(Json(CheckReport {
        checked: lines.len() - skipped,
        delivered,
        failed: lines.len() - skipped - delivered,
        skipped,
        subscriptions: lines,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptsQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AttemptList {
    pub attempts: Vec<Outcome>,
    /// The `cursor` of the next (older) page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// An attempt's place on `outcomes` as a cursor key, `<partition>.<offset>`.
fn position_key((partition, offset): crate::tables::Position) -> String {
    format!("{partition}.{offset}")
}

fn parse_position(key: &str) -> Option<crate::tables::Position> {
    let (p, o) = key.split_once('.')?;
    Some((p.parse().ok()?, o.parse().ok()?))
}

/// `GET /v1/subscriptions/{id}/attempts`: the most recent attempts, newest first.
pub async fn attempts(
    State(state): State<AppState>,
    caller: AccountCaller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AttemptsQuery>,
) -> Result<Json<AttemptList>, ApiError> {
    let sub = owned(&state, &caller.account, &id)?;
    let limit = crate::page::limit(q.limit, 50, crate::tables::ATTEMPTS_KEPT)?;
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => {
            let key = crate::page::decode("attempts", c)?;
            Some(parse_position(&key).ok_or_else(|| {
                ApiError::invalid(
                    "cursor",
                    "not a cursor of this list; pass `next_cursor` unchanged",
                )
            })?)
        }
    };
    let (attempts, next) = state.tables.attempts_before(&sub.id, before, limit);
    Ok(Json(AttemptList {
        attempts,
        next_cursor: next.map(|p| crate::page::encode("attempts", &position_key(p))),
    }))
}
