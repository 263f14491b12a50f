//! The `endpoint-health` table's value: each endpoint's circuit state and since when it has been
//! failing, written by the sender on a change and followed by every sender instance and the
//! admin's operator view.

use serde::{Deserialize, Serialize};

use crate::SubscriptionId;

/// The value on `endpoint-health` (`schemas/endpoint-health.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointHealth {
    pub subscription_id: SubscriptionId,
    /// `closed`, `open` or `half-open`.
    pub state: String,
    /// Since when every attempt has failed (RFC 3339); absent while the endpoint answers.
    #[serde(default)]
    pub failing_since: Option<String>,
    /// When the circuit last opened.
    #[serde(default)]
    pub opened_at: Option<String>,
    /// Until when an open circuit lets nothing through.
    #[serde(default)]
    pub open_until: Option<String>,
    /// The current cool-down (it doubles after each failed probe).
    pub cool_down_ms: u64,
    pub updated_at: String,
}
