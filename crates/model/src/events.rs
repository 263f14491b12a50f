//! The input contracts: tracking events, profile changes, and the profile table's state.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::{
    AccountId, CollectionId, DatabaseId, EventId, ProfileId, ProfileKey, SubprofileId,
};

/// The kind of a tracking event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackingKind {
    Click,
    Open,
    Bounce,
    Failure,
    Delivery,
}

impl TrackingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Click => "click",
            Self::Open => "open",
            Self::Bounce => "bounce",
            Self::Failure => "failure",
            Self::Delivery => "delivery",
        }
    }
}

/// A tracking event on the `tracking` topic. Type-specific fields are optional here; the schema
/// in `schemas/tracking-event.schema.json` is the authority on what is required.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackingEvent {
    pub id: EventId,
    #[serde(rename = "type")]
    pub kind: TrackingKind,
    pub account: AccountId,
    pub database: DatabaseId,
    pub profile: ProfileId,
    #[serde(default)]
    pub collection: Option<CollectionId>,
    #[serde(default)]
    pub subprofile: Option<SubprofileId>,
    pub timestamp: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Everything else the producer sent (`mailing`, `recipient`, `ip`, `headers`, `original`,
    /// `envelope`, `code`, ... and unknown extras), passed on unchanged.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl TrackingEvent {
    pub fn key(&self) -> ProfileKey {
        ProfileKey::new(self.database.clone(), self.profile.clone())
    }
}

/// What happened to a profile or subprofile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileAction {
    Create,
    Update,
    Delete,
}

impl ProfileAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// Through which channel a profile change was made (Copernica's trigger filters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Publisher,
    Rest,
    Soap,
    Click,
    Open,
    Failure,
    Bounce,
    Import,
    Copy,
}

impl Trigger {
    pub const ALL: [Trigger; 9] = [
        Self::Publisher,
        Self::Rest,
        Self::Soap,
        Self::Click,
        Self::Open,
        Self::Failure,
        Self::Bounce,
        Self::Import,
        Self::Copy,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publisher => "publisher",
            Self::Rest => "rest",
            Self::Soap => "soap",
            Self::Click => "click",
            Self::Open => "open",
            Self::Failure => "failure",
            Self::Bounce => "bounce",
            Self::Import => "import",
            Self::Copy => "copy",
        }
    }
}

/// A change on the `profile-changes` topic. `fields` is the full new state (for a delete: the
/// last state); `parameters` what the action was performed with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileChange {
    pub id: EventId,
    pub account: AccountId,
    pub database: DatabaseId,
    pub profile: ProfileId,
    #[serde(default)]
    pub collection: Option<CollectionId>,
    #[serde(default)]
    pub subprofile: Option<SubprofileId>,
    pub action: ProfileAction,
    pub trigger: Trigger,
    pub timestamp: String,
    #[serde(default)]
    pub parameters: Map<String, Value>,
    #[serde(default)]
    pub fields: Map<String, Value>,
    #[serde(default)]
    pub interests: Option<Vec<String>>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl ProfileChange {
    pub fn key(&self) -> ProfileKey {
        ProfileKey::new(self.database.clone(), self.profile.clone())
    }

    /// The `<collection>:<subprofile>` key inside [`ProfileState::subprofiles`], when this change
    /// concerns a subprofile.
    pub fn subprofile_key(&self) -> Option<String> {
        match (&self.collection, &self.subprofile) {
            (Some(c), Some(s)) => Some(format!("{c}:{s}")),
            _ => None,
        }
    }
}

/// One subprofile inside its parent's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubprofileState {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub modified: Option<String>,
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// The value of the compacted `profiles` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileState {
    pub account: AccountId,
    pub database: DatabaseId,
    pub profile: ProfileId,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub modified: Option<String>,
    #[serde(default)]
    pub fields: Map<String, Value>,
    #[serde(default)]
    pub interests: Vec<String>,
    #[serde(default)]
    pub subprofiles: Map<String, Value>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// The row field that records which input change produced the row (see
/// [`ProfileState::applied_change`]).
pub const APPLIED_CHANGE_FIELD: &str = "applied_change";

impl ProfileState {
    pub fn key(&self) -> ProfileKey {
        ProfileKey::new(self.database.clone(), self.profile.clone())
    }

    /// The `profile-changes` partition and offset of the change that produced this row, as the
    /// profiles stage records them in every row it writes. An instance that takes a partition
    /// over, its table read from the `profiles` topic, knows from it which changes the row
    /// already holds: their deliveries were written before the row.
    pub fn applied_change(&self) -> Option<(i32, i64)> {
        let v = self.rest.get(APPLIED_CHANGE_FIELD)?;
        let partition = i32::try_from(v.get("partition")?.as_i64()?).ok()?;
        Some((partition, v.get("offset")?.as_i64()?))
    }

    /// Records the change that produced this row ([`ProfileState::applied_change`]).
    pub fn set_applied_change(&mut self, partition: i32, offset: i64) {
        self.rest.insert(
            APPLIED_CHANGE_FIELD.into(),
            serde_json::json!({"partition": partition, "offset": offset}),
        );
    }

    /// The subprofile `<collection>:<subprofile>`, if the state holds it in the documented shape.
    pub fn subprofile(
        &self,
        collection: &CollectionId,
        subprofile: &SubprofileId,
    ) -> Option<SubprofileState> {
        let v = self
            .subprofiles
            .get(&format!("{collection}:{subprofile}"))?;
        serde_json::from_value(v.clone()).ok()
    }

    /// The e-mail address: the field named `email_field` (Copernica: configured per database,
    /// default `email`).
    pub fn email(&self, email_field: &str) -> Option<&str> {
        self.fields.get(email_field).and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_examples_parse_and_keep_extra_fields() {
        let t: TrackingEvent = serde_json::from_str(
            r#"{"id": "evt-7f3a", "type": "click", "account": "1001", "database": "12", "profile": "4711",
 "collection": null, "subprofile": null, "mailing": "m-20261125-01", "recipient": "jane@example.com",
 "timestamp": "2026-11-25T10:15:00Z", "ip": "203.0.113.7",
 "useragent": "Mozilla/5.0", "referer": "https://mail.example/",
 "headers": {"User-Agent": "Mozilla/5.0", "Accept-Language": "nl"},
 "original": "https://shop.example/offer", "tags": ["black-friday"], "x-extra": 1}"#,
        )
        .unwrap();
        assert_eq!(t.kind, TrackingKind::Click);
        assert_eq!(t.key().to_string(), "12:4711");
        assert_eq!(t.rest["ip"], "203.0.113.7");
        assert_eq!(t.rest["x-extra"], 1);
        assert_eq!(t.tags, vec!["black-friday"]);

        let c: ProfileChange = serde_json::from_str(
            r#"{"id": "chg-91b2", "account": "1001", "database": "12", "profile": "4711", "collection": null, "subprofile": null,
 "action": "update", "trigger": "rest", "timestamp": "2026-11-25T10:16:00Z",
 "parameters": {"name": "Mike"}, "fields": {"name": "Mike", "email": "mike@example.com"}, "interests": ["vip"]}"#,
        )
        .unwrap();
        assert_eq!(c.action, ProfileAction::Update);
        assert_eq!(c.trigger, Trigger::Rest);
        assert_eq!(c.subprofile_key(), None);
        assert_eq!(c.fields["name"], "Mike");
    }

    #[test]
    fn ids_are_checked_while_parsing() {
        let err = serde_json::from_str::<TrackingEvent>(
            r#"{"id":"e","type":"open","account":"1","database":"1:2","profile":"3","timestamp":"x"}"#,
        );
        assert!(err.is_err(), "a ':' in a database id must be rejected");
    }
}
