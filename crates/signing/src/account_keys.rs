//! Per-account Ed25519 keys of the Standard Webhooks profile.
//!
//! Why: with one Ed25519 key for every account, account A could have Hookline sign a body of
//! its choosing (the test webhook sends a caller-supplied body) and replay the signed request
//! to account B's receiver, which trusts the same key. So every account signs with its own key,
//! derived from the instance's Ed25519 key (the *master*, `<signing key>.ed25519.pem`):
//!
//! ```text
//! seed(account) = HKDF-SHA256(salt = "hookline/standard-webhooks/account-keys/v1",
//!                             ikm  = the master's 32-byte Ed25519 seed,
//!                             info = "hookline/standard-webhooks/account/" || account id,
//!                             L    = 32)
//! ```
//!
//! and the 32 bytes are the account key's Ed25519 seed (RFC 8032). The derivation is
//! deterministic: every sender and admin instance holding the master derives the same key, so
//! there is nothing new to store, distribute or keep in sync. The info is a fixed prefix plus
//! the account id, so distinct accounts give distinct inputs. A receiver of account B verifies
//! with B's public key (`GET /v1/keys?account=B`), with which a signature made for A does not
//! verify. The master key itself signs no webhook.
//!
//! Derived keys are cached ([`AccountKeys`]): a derivation costs an HKDF and an Ed25519 key
//! generation (tens of microseconds).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::hkdf;

use crate::keys::KeyError;
use crate::standard_webhooks::Ed25519Key;

/// The HKDF salt (fixed, public: it separates this use of the master seed from any other).
pub const DERIVATION_SALT: &[u8] = b"hookline/standard-webhooks/account-keys/v1";
/// The HKDF info is this prefix followed by the account id's bytes.
pub const INFO_PREFIX: &[u8] = b"hookline/standard-webhooks/account/";
/// How many derived keys an [`AccountKeys`] keeps before it starts over.
pub const CACHED_KEYS: usize = 10_000;

struct SeedLen;

impl hkdf::KeyType for SeedLen {
    fn len(&self) -> usize {
        32
    }
}

/// The key id of `account`'s key derived from the master key `master_key_id`:
/// `<master key id>:account:<account>` (account ids never contain `:`).
pub fn account_key_id(master_key_id: &str, account: &str) -> String {
    format!("{master_key_id}:account:{account}")
}

/// Derives `account`'s Ed25519 key from `master` (see the module documentation).
pub fn derive(master: &Ed25519Key, account: &str) -> Result<Ed25519Key, KeyError> {
    let mut ikm = master.seed()?;
    let mut info = INFO_PREFIX.to_vec();
    info.extend_from_slice(account.as_bytes());
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, DERIVATION_SALT).extract(&ikm);
    ikm.fill(0);
    let mut seed = [0u8; 32];
    prk.expand(&[&info], SeedLen)
        .and_then(|okm| okm.fill(&mut seed))
        .map_err(|_| KeyError::Generate)?;
    let key = Ed25519Key::from_seed(&seed, "the derived account key")?;
    seed.fill(0);
    Ok(key.for_account(account_key_id(master.key_id(), account), account))
}

/// The master key and a bounded cache of the account keys derived from it. `Debug` prints the
/// master's key id only.
pub struct AccountKeys {
    master: Arc<Ed25519Key>,
    cache: Mutex<HashMap<String, Arc<Ed25519Key>>>,
}

impl std::fmt::Debug for AccountKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountKeys")
            .field("master", &self.master.key_id())
            .finish_non_exhaustive()
    }
}

impl AccountKeys {
    pub fn new(master: Arc<Ed25519Key>) -> Self {
        Self {
            master,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The master key the account keys are derived from.
    pub fn master(&self) -> &Arc<Ed25519Key> {
        &self.master
    }

    /// `account`'s key: from the cache, or derived (and cached; a full cache is emptied first,
    /// which only costs re-derivations).
    pub fn get(&self, account: &str) -> Result<Arc<Ed25519Key>, KeyError> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(account)
            .cloned();
        if let Some(key) = cached {
            return Ok(key);
        }
        let key = Arc::new(derive(&self.master, account)?);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHED_KEYS {
            cache.clear();
        }
        cache.insert(account.to_owned(), key.clone());
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standard_webhooks::{sign_at, verify, SIGNATURE_HEADER, TIMESTAMP_HEADER};
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    use std::time::SystemTime;

    fn master() -> Ed25519Key {
        // The seed of the Standard Webhooks reference library's asymmetric test.
        let seed = B64
            .decode("VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=")
            .unwrap();
        Ed25519Key::from_seed(&seed, "master").unwrap()
    }

    /// Known answers computed independently with Python's `cryptography` package
    /// (`HKDF(SHA256(), 32, salt, info).derive(seed)`, then
    /// `Ed25519PrivateKey.from_private_bytes(...).public_key()`).
    #[test]
    fn derivation_matches_an_independent_implementation() {
        let m = master();
        for (account, whpk) in [("1001", KNOWN_1001), ("1002", KNOWN_1002)] {
            let k = derive(&m, account).unwrap();
            assert_eq!(k.whpk(), whpk, "account {account}");
            assert_eq!(k.account(), Some(account));
            assert_eq!(k.key_id(), format!("{}:account:{account}", m.key_id()));
            let info = k.public_info();
            assert_eq!(info.account.as_deref(), Some(account));
            assert_eq!(info.standard_webhooks.as_deref(), Some(whpk));
        }
    }

    const KNOWN_1001: &str = "whpk_DhrJ2r/sDc53ww6bpDrBu+B8XcSuV+AyZDdpLTTJ5cE=";
    const KNOWN_1002: &str = "whpk_yqzGFYYC/hl2j1yJful8ZPxoBvdivDJ/Yo7lOk9/YPk=";

    #[test]
    fn a_signature_for_one_account_does_not_verify_with_another_accounts_key() {
        let keys = AccountKeys::new(Arc::new(master()));
        let (a, b) = (keys.get("1001").unwrap(), keys.get("1002").unwrap());
        assert_ne!(a.public_key_raw(), b.public_key_raw());
        assert_ne!(a.public_key_raw(), keys.master().public_key_raw());
        assert!(
            Arc::ptr_eq(&a, &keys.get("1001").unwrap()),
            "cached, not derived again"
        );
        let now = SystemTime::now();
        let h = sign_at(&a, "test_1", now, b"{}");
        let headers = [
            ("webhook-id", h.id.clone()),
            (TIMESTAMP_HEADER, h.timestamp.to_string()),
            (SIGNATURE_HEADER, h.signature.clone()),
        ];
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(verify(get, b"{}", &[a.public_key_raw()], now), Ok(()));
        assert!(verify(get, b"{}", &[b.public_key_raw()], now).is_err());
        assert!(verify(get, b"{}", &[keys.master().public_key_raw()], now).is_err());
        // Another instance with the same master derives the same key.
        let again = AccountKeys::new(Arc::new(master()));
        assert_eq!(
            again.get("1001").unwrap().public_key_raw(),
            a.public_key_raw()
        );
        assert!(!format!("{keys:?}").contains("seed"));
    }
}
