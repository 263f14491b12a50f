//! The value of the compacted `subscriptions` table.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::events::{ProfileAction, TrackingKind, Trigger};
use crate::ids::{AccountId, CollectionId, DatabaseId, SubscriptionId};
use crate::Format;

/// An event kind a subscription can ask for: the five tracking kinds and the three profile
/// actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Click,
    Open,
    Bounce,
    Failure,
    Delivery,
    Create,
    Update,
    Delete,
}

impl From<TrackingKind> for EventKind {
    fn from(k: TrackingKind) -> Self {
        match k {
            TrackingKind::Click => Self::Click,
            TrackingKind::Open => Self::Open,
            TrackingKind::Bounce => Self::Bounce,
            TrackingKind::Failure => Self::Failure,
            TrackingKind::Delivery => Self::Delivery,
        }
    }
}

impl From<ProfileAction> for EventKind {
    fn from(a: ProfileAction) -> Self {
        match a {
            ProfileAction::Create => Self::Create,
            ProfileAction::Update => Self::Update,
            ProfileAction::Delete => Self::Delete,
        }
    }
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Click => "click",
            Self::Open => "open",
            Self::Bounce => "bounce",
            Self::Failure => "failure",
            Self::Delivery => "delivery",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// Whether a subscription receives anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    /// The callback URL is not yet proven to belong to the account: nothing is sent.
    #[default]
    Unverified,
    Active,
    Paused,
    /// Disabled by Hookline (410 Gone, or failing for too long) or by an operator.
    Disabled,
}

impl SubscriptionStatus {
    /// The contract's spelling (`unverified`, `active`, `paused`, `disabled`), for messages and
    /// logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unverified => "unverified",
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
        }
    }
}

/// Which signature scheme the sender applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureProfile {
    /// draft-cavage rsa-sha256 with `X-Copernica-ID`, `Digest` and `X-Nonce`, as Copernica sends.
    #[default]
    Copernica,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature` (standardwebhooks.com), asymmetric.
    StandardWebhooks,
}

/// Per-endpoint sending limits.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    #[serde(default = "Limits::default_in_flight")]
    pub max_in_flight: u32,
    #[serde(default = "Limits::default_per_second")]
    pub per_second: f64,
}

impl Limits {
    fn default_in_flight() -> u32 {
        8
    }
    fn default_per_second() -> f64 {
        50.0
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_in_flight: Self::default_in_flight(),
            per_second: Self::default_per_second(),
        }
    }
}

/// A webhook subscription of one account on one database (and optionally one collection).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub account: AccountId,
    /// The database whose events it receives; absent: every database of the account, those
    /// created later included (an account-wide subscription, which takes no `collection`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<CollectionId>,
    pub events: Vec<EventKind>,
    /// Profile actions to receive; absent means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<ProfileAction>>,
    /// Triggers to receive profile changes from; absent means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Vec<Trigger>>,
    #[serde(default)]
    pub conditions: Value,
    pub url: String,
    #[serde(default)]
    pub format: Format,
    #[serde(default)]
    pub status: SubscriptionStatus,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub verification: Map<String, Value>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub ordered: bool,
    #[serde(default)]
    pub signature: SignatureProfile,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// Counts the admin API's writes of this subscription: 1 when created, one more on every
    /// change. Records written before versions existed read as 0. The admin API's `ETag` is
    /// derived from it and the record's content, for optimistic concurrency (`If-Match`).
    #[serde(default)]
    pub version: u64,
}

impl Subscription {
    /// Does this subscription ask for profile changes with this action and trigger?
    pub fn wants_profile_change(&self, action: ProfileAction, trigger: Trigger) -> bool {
        self.events.contains(&action.into())
            && self.actions.as_ref().is_none_or(|a| a.contains(&action))
            && self.triggers.as_ref().is_none_or(|t| t.contains(&trigger))
    }
}
