//! Rotation of the Ed25519 master key (the `standard-webhooks` profile) with overlap.
//!
//! Every account's key is derived from the master ([`crate::account_keys`]), so a new master
//! changes every account's public key at once. To let receivers move over without a gap,
//! `hookline keys rotate --ed25519` keeps the retired master for `--overlap`: its private PEM
//! and expiry go into the keyring beside the master (`<key>.ed25519.keyring.json`, mode 0600:
//! it holds secrets), and a new master takes the master's path. Until the retired master
//! expires:
//!
//! - every Standard Webhooks request carries two signatures in `webhook-signature`
//!   (`v1a,<new> v1a,<retired>`, space-separated as the specification allows), so a receiver
//!   that still trusts only the retired account key verifies, and one that already fetched the
//!   new key does too;
//! - `GET /v1/keys?account=…` publishes both account keys, the retired one with `expires_at`.
//!
//! After the overlap the retired master signs nothing and is no longer published; the next
//! rotation drops it from the keyring. Stages read the keyring at start: restart the admin API
//! and the senders after a rotation (the admin first, so the new key is published before the
//! first request signed with it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::account_keys::AccountKeys;
use crate::keys::KeyError;
use crate::standard_webhooks::{generate_pem, Ed25519Key};

/// A retired master as the keyring stores it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredMaster {
    pub key_id: String,
    /// PKCS#8 PEM of the retired master: it keeps signing during the overlap.
    pub private_key_pem: String,
    pub expires_at: String,
}

impl std::fmt::Debug for RetiredMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetiredMaster")
            .field("key_id", &self.key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A retired master still in its overlap, ready to derive account keys.
#[derive(Debug, Clone)]
pub struct RetiredAccountKeys {
    pub keys: Arc<AccountKeys>,
    pub expires_at: OffsetDateTime,
}

/// Where the keyring of the master at `master_path` (`<key>.ed25519.pem`) lives:
/// `<key>.ed25519.keyring.json`.
pub fn keyring_path(master_path: &Path) -> PathBuf {
    let text = master_path.as_os_str().to_string_lossy();
    let stem = text.strip_suffix(".pem").unwrap_or(&text);
    PathBuf::from(format!("{stem}.keyring.json"))
}

/// Every retired master recorded beside `master_path` (none without a keyring).
pub fn load_keyring(master_path: &Path) -> Result<Vec<RetiredMaster>, KeyError> {
    crate::keyfile::read_keyring(&keyring_path(master_path), |path, reason| {
        KeyError::RejectedEd25519 { path, reason }
    })
}

fn expiry(r: &RetiredMaster) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(&r.expires_at, &Rfc3339).ok()
}

/// The retired masters beside `master_path` whose overlap has not ended at `now`, newest
/// first.
pub fn load_in_overlap(
    master_path: &Path,
    now: OffsetDateTime,
) -> Result<Vec<RetiredAccountKeys>, KeyError> {
    let origin = keyring_path(master_path).display().to_string();
    let mut out = Vec::new();
    for r in load_keyring(master_path)?.iter().rev() {
        let Some(expires_at) = expiry(r).filter(|e| *e > now) else {
            continue;
        };
        let master = Ed25519Key::from_pem(&r.private_key_pem, &origin)?;
        out.push(RetiredAccountKeys {
            keys: Arc::new(AccountKeys::new(Arc::new(master))),
            expires_at,
        });
    }
    Ok(out)
}

/// Retires the master at `master_path` (it keeps signing and is published until
/// `now + overlap`) and puts a new master in its place. Returns the new master.
///
/// The keyring is written before the new master (each file whole, through a temporary file
/// and a rename): a stage starting in between signs with the old master alone, which every
/// receiver still trusts.
pub fn rotate(master_path: &Path, overlap: std::time::Duration) -> Result<Ed25519Key, KeyError> {
    let shown = master_path.display().to_string();
    let current_pem = std::fs::read_to_string(master_path).map_err(|source| KeyError::Read {
        path: shown.clone(),
        source,
    })?;
    let current = Ed25519Key::from_pem(&current_pem, &shown)?;
    let new_pem = generate_pem()?;
    let new = Ed25519Key::from_pem(&new_pem, &shown)?;
    let now = OffsetDateTime::now_utc();
    let mut ring = load_keyring(master_path)?;
    ring.retain(|r| expiry(r).is_some_and(|e| e > now) && r.key_id != current.key_id());
    ring.push(RetiredMaster {
        key_id: current.key_id().to_owned(),
        private_key_pem: current_pem,
        expires_at: (now + overlap).format(&Rfc3339).unwrap_or_default(),
    });
    let ring_path = keyring_path(master_path);
    let text = serde_json::to_string_pretty(&ring).map_err(|e| KeyError::RejectedEd25519 {
        path: ring_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let write = |path: &Path, text: &str| {
        crate::keyfile::replace(path, text).map_err(|source| KeyError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    write(&ring_path, &text)?;
    write(master_path, &new_pem)?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master_in(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hookline-ed-rot-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("signing-key.pem.ed25519.pem");
        Ed25519Key::load_or_generate(&path).unwrap();
        path
    }

    #[test]
    fn the_keyring_sits_beside_the_master_under_a_fixed_name() {
        assert_eq!(
            keyring_path(Path::new("/keys/signing-key.pem.ed25519.pem")),
            PathBuf::from("/keys/signing-key.pem.ed25519.keyring.json")
        );
    }

    #[test]
    fn a_rotation_keeps_the_old_master_for_the_overlap_only() {
        let path = master_in("overlap");
        let old = Ed25519Key::load_or_generate(&path).unwrap();
        let new = rotate(&path, std::time::Duration::from_secs(3600)).unwrap();
        assert_ne!(new.key_id(), old.key_id());
        assert_eq!(
            Ed25519Key::load_or_generate(&path).unwrap().key_id(),
            new.key_id(),
            "the new master is in place"
        );
        let now = OffsetDateTime::now_utc();
        let retired = load_in_overlap(&path, now).unwrap();
        assert_eq!(retired.len(), 1);
        let derived = retired[0].keys.get("1001").unwrap();
        let expected = crate::account_keys::derive(&old, "1001").unwrap();
        assert_eq!(derived.public_key_raw(), expected.public_key_raw());
        assert!(
            load_in_overlap(&path, now + time::Duration::hours(2))
                .unwrap()
                .is_empty(),
            "nothing signs after the overlap"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(keyring_path(&path))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the keyring holds secrets: {mode:o}");
        }
    }

    #[test]
    fn a_second_rotation_keeps_both_retired_masters_and_drops_expired_ones() {
        let path = master_in("twice");
        let first = Ed25519Key::load_or_generate(&path).unwrap();
        rotate(&path, std::time::Duration::from_secs(3600)).unwrap();
        let second = Ed25519Key::load_or_generate(&path).unwrap();
        rotate(&path, std::time::Duration::from_secs(7200)).unwrap();
        let ids: Vec<String> = load_keyring(&path)
            .unwrap()
            .into_iter()
            .map(|r| r.key_id)
            .collect();
        assert_eq!(ids, [first.key_id(), second.key_id()]);
        let later = OffsetDateTime::now_utc() + time::Duration::minutes(90);
        let left = load_in_overlap(&path, later).unwrap();
        assert_eq!(left.len(), 1, "the first retired master's overlap is over");
    }

    #[test]
    fn the_debug_form_shows_no_key_material() {
        let r = RetiredMaster {
            key_id: "k".into(),
            private_key_pem: "-----BEGIN PRIVATE KEY-----secret".into(),
            expires_at: "2026-12-09T00:00:00Z".into(),
        };
        assert!(!format!("{r:?}").contains("secret"));
    }
}
