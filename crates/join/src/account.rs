//! No join crosses accounts.
//!
//! The `profiles` table is keyed `<database>:<profile>` (the co-partitioning contract with
//! producers), and database ids are only unique within an account, so one row can be asked for
//! by the input of two accounts. The row records the account it belongs to; [`check`] refuses
//! any join of one account's input with another account's row. The stages quarantine the
//! refused record with reason [`REASON`] and use nothing from the row.
//!
//! A stored row without an account (or otherwise unreadable) never reaches this check: the
//! store treats it as absent, so nothing of it is joined into anyone's webhook, and the next
//! profile change of the key replaces it.

use hookline_model::{AccountId, ProfileKey, ProfileState, QuarantineReason, ReasonClass};

/// The quarantine reason (and metric label) of a refused cross-account join.
pub const REASON: &str = "account-mismatch";

/// A record of one account that would have joined another account's profile row.
///
/// Its text names the key and both account ids, never anything from the row itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "account-mismatch: input of account {input} for profile {profile} of database {database}, \
     but the stored row belongs to account {stored}; refused so that no account reads or \
     changes another account's profile data"
)]
pub struct AccountMismatch {
    /// The account of the event or change.
    pub input: AccountId,
    /// The account of the stored row.
    pub stored: AccountId,
    pub database: hookline_model::DatabaseId,
    pub profile: hookline_model::ProfileId,
}

impl AccountMismatch {
    /// The quarantine reason: this message, counted as `account-mismatch`.
    pub fn reason(&self) -> QuarantineReason {
        QuarantineReason::new(ReasonClass::AccountMismatch, self.to_string())
    }

    /// The table key both records concern.
    pub fn key(&self) -> ProfileKey {
        ProfileKey::new(self.database.clone(), self.profile.clone())
    }
}

/// Lets `stored` join input of account `input`: `Ok` with the row when it belongs to `input`
/// (or there is none), `Err` when it belongs to another account.
pub fn check<'a>(
    input: &AccountId,
    stored: Option<&'a ProfileState>,
) -> Result<Option<&'a ProfileState>, AccountMismatch> {
    match stored {
        Some(row) if row.account != *input => Err(AccountMismatch {
            input: input.clone(),
            stored: row.account.clone(),
            database: row.database.clone(),
            profile: row.profile.clone(),
        }),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(account: &str) -> ProfileState {
        serde_json::from_value(
            json!({"account": account, "database": "12", "profile": "4711",
            "fields": {"email": "jane@example.com", "name": "Jane"}, "interests": ["vip"]}),
        )
        .unwrap()
    }

    fn account(id: &str) -> AccountId {
        AccountId::new(id).unwrap()
    }

    #[test]
    fn the_same_account_or_no_row_joins() {
        let r = row("1001");
        assert_eq!(check(&account("1001"), Some(&r)), Ok(Some(&r)));
        assert_eq!(check(&account("1001"), None), Ok(None));
    }

    #[test]
    fn another_accounts_row_is_refused_naming_both_accounts_and_nothing_of_the_row() {
        let r = row("1001");
        let err = check(&account("2002"), Some(&r)).unwrap_err();
        assert_eq!(err.input, account("2002"));
        assert_eq!(err.stored, account("1001"));
        assert_eq!(err.key().to_string(), "12:4711");
        let reason = err.to_string();
        assert!(reason.starts_with(REASON), "{reason}");
        assert!(
            reason.contains("2002") && reason.contains("1001"),
            "{reason}"
        );
        for secret in ["jane@example.com", "Jane", "vip"] {
            assert!(!reason.contains(secret), "{reason}");
        }
    }

    #[test]
    fn account_ids_compare_exactly() {
        // "01001" is another account than "1001": ids are strings, not numbers.
        assert!(check(&account("01001"), Some(&row("1001"))).is_err());
    }

    #[test]
    fn a_row_without_an_account_is_not_a_profile_state() {
        // The store reads such a row as absent (`ProfileStore::get`), so it joins nobody.
        let old =
            json!({"database": "12", "profile": "4711", "fields": {"email": "x@example.com"}});
        assert!(serde_json::from_value::<ProfileState>(old).is_err());
    }
}
