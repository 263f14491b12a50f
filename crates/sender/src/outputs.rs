//! The records an attempt (or a deferral) causes, and writing them: `outcomes`, the retry
//! path, `dead-letter`, `subscriptions` (a disable) and `endpoint-health`.
//!
//! Every record is checked against the producer's `message.max.bytes` before it is written,
//! because librdkafka refuses a larger one at once and the stage would meet it again after a
//! restart. A retry record that does not fit becomes a dead letter with reason `too-large`; a
//! dead letter that does not fit keeps as much of the body as fits, marked as cut.

use hookline_config::Topics;
use hookline_kafka::producer::Acks;
use hookline_kafka::{KafkaError, Producer};
use hookline_model::{
    DeadLetter, DeadReason, Delivery, Outcome, OutcomeResult, RetryRecord, Subscription,
};
use serde::Serialize;

use crate::health::EndpointHealth;

/// Room left in a record for everything but the delivery body (headers, the wrapper's fields).
const WRAPPER_ROOM: usize = 16 * 1024;

/// One record to write.
#[derive(Debug)]
pub enum Output {
    Outcome(Box<Outcome>),
    /// A retry record and the retry topic (tier) it goes to.
    Retry(Box<RetryRecord>, String),
    Dead(Box<DeadLetter>),
    Disable(Box<Subscription>),
    Health(Box<EndpointHealth>),
}

/// An outcome record of `d`'s attempt number `attempt`, timed now.
pub fn outcome(
    d: &Delivery,
    attempt: u32,
    result: OutcomeResult,
    error: Option<String>,
) -> Outcome {
    let now = hookline_model::timefmt::now_rfc3339();
    Outcome {
        delivery_id: d.delivery_id.clone(),
        event_id: d.event_id.clone(),
        subscription_id: d.subscription_id.clone(),
        account: d.account.clone(),
        attempt,
        result,
        url: Some(d.url.clone()),
        http_status: None,
        error_class: None,
        error,
        response_excerpt: None,
        latency_ms: 0.0,
        started_at: now.clone(),
        finished_at: now,
        replayed_at: d.replayed_at.clone(),
        next_attempt_at: None,
    }
}

/// A dead letter of `d` after `attempts` attempts.
pub fn dead(
    d: &Delivery,
    attempts: u32,
    first_attempt_at: &str,
    reason: DeadReason,
    last_error: Option<String>,
    last_status: Option<u16>,
) -> Output {
    Output::Dead(Box::new(DeadLetter {
        delivery: d.clone(),
        attempts,
        first_attempt_at: first_attempt_at.to_owned(),
        dead_lettered_at: hookline_model::timefmt::now_rfc3339(),
        last_error,
        last_status,
        reason: Some(reason),
    }))
}

/// Writes `outputs` and waits for their acknowledgements. `max_bytes`: the producer's
/// `message.max.bytes`. Returns the dead-letter reasons written, for counting.
pub async fn write(
    producer: &Producer,
    topics: &Topics,
    max_bytes: usize,
    outputs: Vec<Output>,
) -> Result<Vec<DeadReason>, KafkaError> {
    let mut acks = Acks::new();
    let mut dead = Vec::new();
    for out in outputs {
        let out = fit(out, max_bytes);
        if let Output::Dead(d) = &out {
            dead.push(d.reason.unwrap_or(DeadReason::Exhausted));
        }
        send(producer, &mut acks, topics, out).await?;
    }
    acks.wait().await?;
    Ok(dead)
}

/// Whether a record carrying `d` may exceed `max_bytes`: JSON escapes a byte into at most six,
/// so only a body within a sixth of the limit needs the exact (serialized) size. Keeps the
/// common case free of a second serialization per record.
fn may_exceed(d: &Delivery, max_bytes: usize) -> bool {
    d.body.len().saturating_mul(6) + WRAPPER_ROOM > max_bytes
}

fn size_of<T: Serialize>(v: &T) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

/// Makes a record fit in `max_bytes` (see the module doc).
pub fn fit(out: Output, max_bytes: usize) -> Output {
    match out {
        Output::Retry(r, topic)
            if may_exceed(&r.delivery, max_bytes) && size_of(&r) > max_bytes =>
        {
            tracing::warn!(delivery = %r.delivery.delivery_id, "a retry record would exceed message.max.bytes: dead-lettered as too-large");
            let d = dead(
                &r.delivery,
                r.attempt.saturating_sub(1),
                &r.first_attempt_at,
                DeadReason::TooLarge,
                r.last_error.clone(),
                r.last_status,
            );
            let _ = topic;
            fit(d, max_bytes)
        }
        Output::Dead(mut d) if may_exceed(&d.delivery, max_bytes) && size_of(&d) > max_bytes => {
            let body = &mut d.delivery.body;
            let keep = max_bytes.saturating_sub(WRAPPER_ROOM).min(body.len());
            let mut cut = keep;
            while cut > 0 && !body.is_char_boundary(cut) {
                cut -= 1;
            }
            let original = body.len();
            body.truncate(cut);
            d.reason = Some(DeadReason::TooLarge);
            d.last_error = Some(format!(
                "body cut to {cut} of {original} bytes to fit message.max.bytes ({max_bytes}); {}",
                d.last_error.as_deref().unwrap_or("")
            ));
            Output::Dead(d)
        }
        other => other,
    }
}

async fn send(
    producer: &Producer,
    acks: &mut Acks,
    topics: &Topics,
    out: Output,
) -> Result<(), KafkaError> {
    match out {
        Output::Outcome(o) => {
            let key = o.subscription_id.0.clone();
            producer
                .send_json(acks, &topics.outcomes, key.as_bytes(), &o)
                .await
        }
        Output::Retry(r, topic) => {
            let key = r.delivery.subscription_id.0.clone();
            producer.send_json(acks, &topic, key.as_bytes(), &r).await
        }
        Output::Dead(d) => {
            let key = d.delivery.subscription_id.0.clone();
            producer
                .send_json(acks, &topics.dead_letter, key.as_bytes(), &d)
                .await
        }
        Output::Disable(s) => {
            producer
                .send_json(acks, &topics.subscriptions, s.id.0.as_bytes(), &s)
                .await
        }
        Output::Health(h) => {
            let key = h.subscription_id.0.clone();
            producer
                .send_json(acks, &topics.endpoint_health, key.as_bytes(), &h)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(body_len: usize) -> Delivery {
        serde_json::from_value(serde_json::json!({
            "delivery_id": "dlv_1", "event_id": "evt-1", "event_type": "click",
            "subscription_id": "sub-1", "account": "1001", "database": "12",
            "url": "https://example.com/", "format": "json", "body": "é".repeat(body_len / 2),
            "created_at": "2026-12-01T00:00:00Z"}))
        .unwrap()
    }

    fn retry(body_len: usize) -> Output {
        Output::Retry(
            Box::new(RetryRecord {
                delivery: delivery(body_len),
                attempt: 2,
                not_before: "2026-12-01T00:00:05Z".into(),
                first_attempt_at: "2026-12-01T00:00:00Z".into(),
                last_error: Some("500".into()),
                last_status: Some(500),
                hops: 1,
            }),
            "retries".into(),
        )
    }

    #[test]
    fn a_retry_of_a_delivery_without_optional_fields_is_schema_valid() {
        // A delivery from a foreign producer may leave out `content_type` and `source`; its
        // retry record must not write them as null (the schema wants a string / an object),
        // or the retry would be quarantined instead of attempted.
        let Output::Retry(r, _) = retry(10) else {
            unreachable!()
        };
        let value = serde_json::to_value(&r).unwrap();
        hookline_schemas::validators()
            .validate(hookline_schemas::SchemaKind::Retry, &value)
            .unwrap_or_else(|e| panic!("{e}: {value}"));
    }

    #[test]
    fn records_that_fit_are_left_alone() {
        assert!(matches!(fit(retry(1000), 100_000), Output::Retry(..)));
    }

    #[test]
    fn a_retry_too_large_becomes_a_cut_dead_letter_that_fits() {
        let max = 100_000;
        let Output::Dead(d) = fit(retry(200_000), max) else {
            panic!("dead-lettered")
        };
        assert_eq!(d.reason, Some(DeadReason::TooLarge));
        assert_eq!(d.attempts, 1);
        assert!(size_of(&d) <= max, "{} > {max}", size_of(&d));
        assert!(d.last_error.as_deref().unwrap().contains("body cut to"));
        assert!(
            !d.delivery.body.is_empty(),
            "as much of the body as fits is kept"
        );
    }
}
