//! The sender's contracts: a built webhook request (`deliveries`), a scheduled re-try
//! (`retries`), the result of one attempt (`outcomes`), and an exhausted delivery
//! (`dead-letter`). All are keyed by subscription id, so one subscription's records share a
//! partition and therefore a sender instance.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, CollectionId, DatabaseId, DeliveryId, EventId, SubscriptionId};
use crate::subscription::{EventKind, SignatureProfile, Subscription};
use crate::Format;

/// Where an input record came from, for tracing a delivery back to its event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The input record's Kafka timestamp (milliseconds since the epoch): where the sender's
    /// event-to-delivery latency is measured from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<i64>,
    /// The W3C `traceparent` the input record carried in its headers, if well-formed: the
    /// sender continues that trace in the webhook it sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// One webhook request awaiting sending: everything the sender needs without looking anything
/// up, except the subscription's current status, which it checks at send time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub delivery_id: DeliveryId,
    pub event_id: EventId,
    pub event_type: String,
    pub subscription_id: SubscriptionId,
    pub account: AccountId,
    pub database: DatabaseId,
    #[serde(default)]
    pub collection: Option<CollectionId>,
    pub url: String,
    pub format: Format,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The encoded body, exactly the bytes to POST.
    pub body: String,
    #[serde(default)]
    pub ordered: bool,
    #[serde(default)]
    pub signature: SignatureProfile,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourcePosition>,
    /// Set by a replay: when this dead-lettered delivery was put back on `deliveries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_at: Option<String>,
}

/// The database a delivery names when it is built for an account-wide subscription without an
/// event (the admin API's test webhooks): 0, which no real database has (the platform's ids
/// start at 1), so a receiver can tell a test apart.
pub const NO_DATABASE: &str = "0";

impl Delivery {
    /// A delivery of one event to `sub`, `body` already encoded in the subscription's format:
    /// where it goes and how it is signed come from the subscription, the database and
    /// collection too (a delivery of an event of a collection sets its own), no source, created
    /// now. Routing and the admin API's test webhooks both build theirs here.
    pub fn to_subscription(
        sub: &Subscription,
        delivery_id: DeliveryId,
        event_id: EventId,
        kind: EventKind,
        body: String,
    ) -> Self {
        Delivery {
            delivery_id,
            event_id,
            event_type: kind.as_str().to_owned(),
            subscription_id: sub.id.clone(),
            account: sub.account.clone(),
            database: sub
                .database
                .clone()
                .unwrap_or_else(|| DatabaseId::new(NO_DATABASE).expect("a valid database id")),
            collection: sub.collection.clone(),
            url: sub.url.clone(),
            format: sub.format,
            content_type: Some(sub.format.content_type().to_owned()),
            body,
            ordered: sub.ordered,
            signature: sub.signature,
            created_at: crate::timefmt::now_rfc3339(),
            source: None,
            replayed_at: None,
        }
    }
}

/// A delivery scheduled for another attempt, on the `retries` topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryRecord {
    pub delivery: Delivery,
    /// The number of the attempt about to be made (the first attempt is 1).
    pub attempt: u32,
    pub not_before: String,
    pub first_attempt_at: String,
    pub last_error: Option<String>,
    pub last_status: Option<u16>,
    /// Records this delivery has had on the retry path so far (retries, deferrals and moves
    /// between delay tiers); bounded by the sender, so no delivery cycles forever.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hops: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A delivery that exhausted its retries, on the `dead-letter` topic; `hookline replay` sends
/// it again through the normal path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub delivery: Delivery,
    pub attempts: u32,
    pub first_attempt_at: String,
    pub dead_lettered_at: String,
    pub last_error: Option<String>,
    pub last_status: Option<u16>,
    /// Why it was dead-lettered (see [`DeadReason`]); absent on records written before it
    /// existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DeadReason>,
}

/// Why a delivery went to `dead-letter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeadReason {
    /// The retry schedule ran out: `--max-attempts` attempts made.
    Exhausted,
    /// The next attempt would come after `--max-age`.
    Expired,
    /// Trying again cannot help (invalid URL, refused by the network guard).
    Permanent,
    /// The delivery (or the record carrying it on) is larger than the producer may write.
    TooLarge,
    /// The delivery moved along the retry path more often than the sender allows.
    TooManyHops,
    /// Its subscription does not exist (deleted, or never known to the sender).
    SubscriptionUnknown,
    /// Its subscription is paused: parked here, for replay after the resume.
    SubscriptionPaused,
    /// Its subscription is disabled (410, or failing for too long).
    SubscriptionDisabled,
    /// Its subscription's URL is not verified.
    SubscriptionUnverified,
}

impl DeadReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exhausted => "exhausted",
            Self::Expired => "expired",
            Self::Permanent => "permanent",
            Self::TooLarge => "too-large",
            Self::TooManyHops => "too-many-hops",
            Self::SubscriptionUnknown => "subscription-unknown",
            Self::SubscriptionPaused => "subscription-paused",
            Self::SubscriptionDisabled => "subscription-disabled",
            Self::SubscriptionUnverified => "subscription-unverified",
        }
    }
}

/// What became of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeResult {
    Delivered,
    /// Failed; another attempt is scheduled.
    Retrying,
    /// Failed permanently without dead-lettering (e.g. 410 Gone).
    Failed,
    DeadLettered,
    SkippedDisabled,
    SkippedPaused,
    CircuitOpen,

    /// The subscription was disabled as a result of this attempt.
    Disabled,
}

impl OutcomeResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::DeadLettered => "dead-lettered",
            Self::SkippedDisabled => "skipped-disabled",
            Self::SkippedPaused => "skipped-paused",
            Self::CircuitOpen => "circuit-open",

            Self::Disabled => "disabled",
        }
    }
}

/// Why an attempt failed, coarse enough for dashboards and retry decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    Timeout,
    Dns,
    Connect,
    Tls,
    #[serde(rename = "http_4xx")]
    Http4xx,
    #[serde(rename = "http_5xx")]
    Http5xx,
    RefusedByGuard,
    Other,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Http4xx => "http_4xx",
            Self::Http5xx => "http_5xx",
            Self::RefusedByGuard => "refused-by-guard",
            Self::Other => "other",
        }
    }
}

/// One record per attempt on the `outcomes` topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub delivery_id: DeliveryId,
    pub event_id: EventId,
    pub subscription_id: SubscriptionId,
    pub account: AccountId,
    pub attempt: u32,
    pub result: OutcomeResult,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub http_status: Option<u16>,
    #[serde(default)]
    pub error_class: Option<ErrorClass>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub response_excerpt: Option<String>,
    pub latency_ms: f64,
    pub started_at: String,
    pub finished_at: String,
    /// The delivery's `replayed_at`: the attempt was of a replayed dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_at: Option<String>,
    /// For a `retrying` or `circuit-open` attempt: when the next attempt is due (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_serialize_in_contract_spelling() {
        assert_eq!(
            serde_json::to_value(OutcomeResult::DeadLettered).unwrap(),
            "dead-lettered"
        );
        assert_eq!(
            serde_json::to_value(OutcomeResult::SkippedDisabled).unwrap(),
            "skipped-disabled"
        );
        assert_eq!(
            serde_json::to_value(ErrorClass::Http4xx).unwrap(),
            "http_4xx"
        );
        assert_eq!(
            serde_json::to_value(ErrorClass::RefusedByGuard).unwrap(),
            "refused-by-guard"
        );
        for r in [
            OutcomeResult::Delivered,
            OutcomeResult::CircuitOpen,
            OutcomeResult::Retrying,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}
