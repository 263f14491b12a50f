//! What the join hands to routing: an event ready for routing, with the body to send and the
//! facts conditions read. Built by `hookline-join`, read by `hookline-routing`.

use serde_json::{Map, Value};

use crate::{AccountId, CollectionId, DatabaseId, EventId, EventKind, ProfileAction, Trigger};

/// An event ready for routing: the body to send and the facts conditions read.
#[derive(Debug, Clone, PartialEq)]
pub struct Enriched {
    pub event_id: EventId,
    pub kind: EventKind,
    pub account: AccountId,
    pub database: DatabaseId,
    pub collection: Option<CollectionId>,
    /// Set for profile changes.
    pub action: Option<ProfileAction>,
    pub trigger: Option<Trigger>,
    /// Whether the profile was found in the table (always true for profile changes).
    pub joined: bool,
    /// The webhook body, in Copernica's field names.
    pub body: Map<String, Value>,
    /// The profile's fields (for subprofile changes: the parent profile's).
    pub profile_fields: Map<String, Value>,
    pub subprofile_fields: Option<Map<String, Value>>,
    pub interests: Vec<String>,
    pub tags: Vec<String>,
    pub previous_fields: Option<Map<String, Value>>,
    pub previous_interests: Option<Vec<String>>,
    pub is_new_profile: bool,
}
