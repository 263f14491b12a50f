//! Domain identifiers. Copernica's ids are numeric, but the contracts carry them as strings so that
//! other platforms can use their own; the only rule is that an id is non-empty, at most 128 bytes,
//! and contains no `:` (the separator of the `<database>:<profile>` key).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than 128 bytes")]
    TooLong { kind: &'static str },
    #[error("{kind} {value:?} must not contain ':'")]
    Colon { kind: &'static str, value: String },
}

fn check(kind: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > 128 {
        return Err(IdError::TooLong { kind });
    }
    if value.contains(':') {
        return Err(IdError::Colon {
            kind,
            value: value.to_owned(),
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl $name {
            /// Checks the id rules and wraps the value.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check($kind, &value)?;
                Ok(Self(value))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(/// The customer account that owns databases and subscriptions.
    AccountId, "account");
id_type!(/// A database of profiles.
    DatabaseId, "database");
id_type!(/// A profile inside a database.
    ProfileId, "profile");
id_type!(/// A collection (table of subprofiles) inside a database.
    CollectionId, "collection");
id_type!(/// A subprofile inside a collection.
    SubprofileId, "subprofile");

/// A subscription id. Any non-empty string up to 128 bytes (colons allowed: it is never part of a
/// composite key).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscriptionId(pub String);

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of an input event (tracking event or profile change), as its producer set it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub String);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of one (event, subscription) delivery, derived deterministically so that re-processing
/// an event after a crash yields the same id and receivers can drop the duplicate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(pub String);

impl DeliveryId {
    /// `dlv_` + the first 24 hex digits of SHA-256(event id, NUL, subscription id).
    pub fn derive(event: &EventId, subscription: &SubscriptionId) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(event.0.as_bytes());
        h.update([0u8]);
        h.update(subscription.0.as_bytes());
        let digest = h.finalize();
        let mut out = String::with_capacity(4 + 24);
        out.push_str("dlv_");
        for b in &digest[..12] {
            out.push_str(&format!("{b:02x}"));
        }
        Self(out)
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key of the co-partitioned topics `tracking`, `profile-changes` and `profiles`:
/// `<database>:<profile>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProfileKey {
    pub database: DatabaseId,
    pub profile: ProfileId,
}

impl ProfileKey {
    pub fn new(database: DatabaseId, profile: ProfileId) -> Self {
        Self { database, profile }
    }

    /// Parses `<database>:<profile>`.
    pub fn parse(key: &str) -> Result<Self, IdError> {
        let (db, profile) = key.split_once(':').ok_or(IdError::Colon {
            kind: "key (expected <database>:<profile>)",
            value: key.to_owned(),
        })?;
        Ok(Self {
            database: DatabaseId::new(db)?,
            profile: ProfileId::new(profile)?,
        })
    }
}

impl fmt::Display for ProfileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.database, self.profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_key_round_trips_and_rejects_bad_keys() {
        let k = ProfileKey::parse("12:4711").unwrap();
        assert_eq!(k.database.as_str(), "12");
        assert_eq!(k.profile.as_str(), "4711");
        assert_eq!(k.to_string(), "12:4711");
        assert!(ProfileKey::parse("12").is_err());
        assert!(ProfileKey::parse(":4711").is_err());
        assert!(ProfileKey::parse("12:47:11").is_err());
    }

    #[test]
    fn delivery_id_is_deterministic_and_distinct() {
        let e = EventId("evt-1".into());
        let a = DeliveryId::derive(&e, &SubscriptionId("sub-a".into()));
        let b = DeliveryId::derive(&e, &SubscriptionId("sub-b".into()));
        assert_eq!(a, DeliveryId::derive(&e, &SubscriptionId("sub-a".into())));
        assert_ne!(a, b);
        assert!(a.0.starts_with("dlv_") && a.0.len() == 28);
        // the separator matters: ("ab","c") and ("a","bc") must differ
        let x = DeliveryId::derive(&EventId("ab".into()), &SubscriptionId("c".into()));
        let y = DeliveryId::derive(&EventId("a".into()), &SubscriptionId("bc".into()));
        assert_ne!(x, y);
    }
}
