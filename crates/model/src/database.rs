//! The `databases` table: per-database settings an account manages, which the join stages
//! follow. Today: the display name, and the name of the profile field that holds the e-mail
//! address (Copernica configures it per database). A database without a row, or a row without
//! `email_field`, uses the stages' `--email-field` (default `email`).

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, DatabaseId};

/// The longest `email_field` and `name`, in characters.
pub const MAX_EMAIL_FIELD_CHARS: usize = 128;
pub const MAX_NAME_CHARS: usize = 200;

/// One database's settings, keyed `<account>:<database>` on the `databases` topic (ids never
/// contain `:`); a tombstone returns the database to the defaults. Keyed by account, so one
/// account's row never changes how another account's events are joined, whatever ids they use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseSettings {
    pub account: AccountId,
    pub database: DatabaseId,
    /// A name people recognise the database by (shown by the API, CLI and console).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The profile field holding the e-mail address; fills `recipient` of tracking events that
    /// carry none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_field: Option<String>,
    /// When the row was last written, RFC 3339.
    pub modified: String,
}

impl DatabaseSettings {
    /// The record's key on the `databases` topic.
    pub fn key(&self) -> String {
        database_key(&self.account, &self.database)
    }

    /// Whether the row is one a reader may take in under `key`: the key is its own, and the
    /// fields are within their bounds. `Err` says what is wrong.
    pub fn check(&self, key: &str) -> Result<(), String> {
        if key != self.key() {
            return Err(format!("key {key:?} is not {:?}", self.key()));
        }
        if let Some(field) = &self.email_field {
            check_email_field(field)?;
        }
        if let Some(name) = &self.name {
            check_name(name)?;
        }
        Ok(())
    }
}

/// `<account>:<database>`.
pub fn database_key(account: &AccountId, database: &DatabaseId) -> String {
    format!("{account}:{database}")
}

/// A field name: 1 to 128 characters, no control characters.
pub fn check_email_field(field: &str) -> Result<(), String> {
    bounded("email_field", field, 1, MAX_EMAIL_FIELD_CHARS)
}

/// A display name: 1 to 200 characters, no control characters.
pub fn check_name(name: &str) -> Result<(), String> {
    bounded("name", name, 1, MAX_NAME_CHARS)
}

fn bounded(what: &str, value: &str, min: usize, max: usize) -> Result<(), String> {
    let chars = value.chars().count();
    if chars < min || chars > max {
        return Err(format!("{what} must be {min} to {max} characters long"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> DatabaseSettings {
        DatabaseSettings {
            account: AccountId::new("1001").unwrap(),
            database: DatabaseId::new("12").unwrap(),
            name: Some("Newsletter NL".into()),
            email_field: Some("emailaddress".into()),
            modified: "2026-12-02T10:00:00Z".into(),
        }
    }

    #[test]
    fn keyed_by_account_and_database() {
        assert_eq!(row().key(), "1001:12");
        assert_eq!(row().check("1001:12"), Ok(()));
        assert!(row().check("1002:12").unwrap_err().contains("1001:12"));
    }

    #[test]
    fn fields_are_bounded() {
        let mut r = row();
        r.email_field = Some(String::new());
        assert!(r.check("1001:12").unwrap_err().contains("email_field"));
        r.email_field = Some("e\nmail".into());
        assert!(r.check("1001:12").unwrap_err().contains("control"));
        r.email_field = None;
        r.name = Some("x".repeat(MAX_NAME_CHARS + 1));
        assert!(r.check("1001:12").unwrap_err().contains("name"));
    }

    #[test]
    fn absent_fields_round_trip_as_absent() {
        let mut r = row();
        r.name = None;
        r.email_field = None;
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"account": "1001", "database": "12", "modified": "2026-12-02T10:00:00Z"})
        );
        assert_eq!(serde_json::from_value::<DatabaseSettings>(json).unwrap(), r);
    }
}
