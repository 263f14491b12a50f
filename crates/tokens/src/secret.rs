//! Bearer tokens: `hlt_<id>_<secret>`.
//!
//! The id (16 hex digits) finds the record on the `tokens` topic; only the SHA-256 of the secret
//! (256 random bits) is stored, and it is compared in constant time. A token is shown once, when
//! an operator creates it (`hookline tokens create`).

use base64::Engine;
use hookline_model::{AccountId, TokenRecord, TokenRole};
use sha2::{Digest, Sha256};

const PREFIX: &str = "hlt_";

/// A freshly generated token: the string to hand out once, and the record to store.
pub struct NewToken {
    pub token: String,
    pub record: TokenRecord,
}

/// Generates a token for `account` (or an operator token when `account` is `None`).
pub fn generate(role: TokenRole, account: Option<AccountId>, label: Option<String>) -> NewToken {
    use rand::RngCore;
    let mut rng = rand::rng();
    let mut id = [0u8; 8];
    rng.fill_bytes(&mut id);
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let id = hex(&id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    NewToken {
        token: format!("{PREFIX}{id}_{secret}"),
        record: TokenRecord {
            id,
            role,
            account,
            secret_sha256: hex(&Sha256::digest(secret.as_bytes())),
            label,
            created: hookline_model::timefmt::now_rfc3339(),
        },
    }
}

/// Splits a presented token into id and secret; `None` when it is not shaped like one.
pub fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
        .then_some((id, secret))
}

/// Does `secret` hash to the stored digest? Constant time in the digest comparison.
pub fn secret_matches(record: &TokenRecord, secret: &str) -> bool {
    let presented = hex(&Sha256::digest(secret.as_bytes()));
    let (a, b) = (presented.as_bytes(), record.secret_sha256.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_check_against_their_record_only() {
        let a = generate(
            TokenRole::Account,
            Some(AccountId::new("1001").unwrap()),
            None,
        );
        let b = generate(
            TokenRole::Account,
            Some(AccountId::new("1001").unwrap()),
            None,
        );
        let (id, secret) = split(&a.token).expect("well formed");
        assert_eq!(id, a.record.id);
        assert!(secret_matches(&a.record, secret));
        assert!(!secret_matches(&b.record, secret));
        assert!(
            !a.token.contains(&a.record.secret_sha256),
            "the hash is not the secret"
        );
    }

    #[test]
    fn malformed_tokens_are_not_split() {
        for t in [
            "",
            "hlt_",
            "hlt_abc_def",
            "xyz_0123456789abcdef_s",
            "hlt_0123456789abcdeg_s",
            "hlt_0123456789abcdef_",
        ] {
            assert!(split(t).is_none(), "{t:?}");
        }
    }
}
