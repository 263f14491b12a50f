//! The admin API's own tables: bearer tokens (`tokens`) and DNS-validated domains (`domains`).
//! Both are compacted topics keyed as documented on each type, so Kafka stays the only store.

use serde::{Deserialize, Serialize};

use crate::ids::AccountId;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    /// Sees and changes one account's subscriptions and domains, nothing else.
    Account,
    /// Reads every account's subscriptions (operator endpoints under `/v1/operator`).
    Operator,
}

/// One bearer token, keyed by `id` on the `tokens` topic; a tombstone revokes it.
///
/// Only the SHA-256 of the secret part is stored: tokens are 256-bit random values, so a fast
/// hash is as strong as a password hash here and keeps every request's check cheap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public part of the token (`hlt_<id>_<secret>`), used to find the record.
    pub id: String,
    pub role: TokenRole,
    /// The account an `account` token is bound to; absent for operator tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// Lower-case hex SHA-256 of the secret part.
    pub secret_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub created: String,
}

/// Whether a domain's DNS TXT challenge has been found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainStatus {
    Pending,
    Validated,
}

/// A domain an account proves it controls, keyed by `<account>/<domain>` on the `domains` topic.
/// Once validated, callback URLs on the domain and its subdomains need no verification file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainRecord {
    pub account: AccountId,
    /// Lower-case, without trailing dot.
    pub domain: String,
    /// The challenge token; the TXT record carries it.
    pub token: String,
    pub status: DomainStatus,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated: Option<String>,
}

impl DomainRecord {
    /// The record's key on the `domains` topic.
    pub fn key(&self) -> String {
        domain_key(&self.account, &self.domain)
    }
}

/// `<account>/<domain>`. Domain names never contain `/`, so the last `/` separates the two even
/// if an account id contains one.
pub fn domain_key(account: &AccountId, domain: &str) -> String {
    format!("{account}/{domain}")
}
