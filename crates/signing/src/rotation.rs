//! Key rotation with overlap.
//!
//! `hookline keys rotate` retires the current key: its public half goes into the keyring file
//! beside the key (`<key>.keyring.json`) with an expiry, the private file is kept as
//! `<key>.retired-<key id>`, and a new key takes the key's path. The admin API publishes the new
//! key and every retired key until it expires, so receivers that fetch keys can verify
//! signatures made just before the switch. Restart the admin API first, then the senders.
//!
//! With a fixed `HOOKLINE_SIGNING_KEY_ID`, the new key is `<that id>-<its fingerprint>`: the
//! ids of the retired and the new key must differ, or receivers could not tell them apart and
//! the retired key would not be published.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::keyfile;
use crate::keys::{generate_pem, KeyError, PublicKeyInfo, SigningKey};

/// A retired key's public half and when it stops being published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredKey {
    pub key_id: String,
    pub public_key_pem: String,
    pub dns_txt: String,
    pub expires_at: String,
}

/// Where the keyring of `key_path` lives.
pub fn keyring_path(key_path: &Path) -> PathBuf {
    let mut p = key_path.as_os_str().to_owned();
    p.push(".keyring.json");
    PathBuf::from(p)
}

/// The retired keys recorded beside `key_path` (none when there is no keyring).
pub fn load_keyring(key_path: &Path) -> Result<Vec<RetiredKey>, KeyError> {
    keyfile::read_keyring(&keyring_path(key_path), |path, reason| KeyError::Rejected {
        path,
        reason,
    })
}

/// What `GET /v1/keys` publishes: the current key and the retired keys not yet expired at `now`.
pub fn published_keys(
    current: &SigningKey,
    retired: &[RetiredKey],
    now: OffsetDateTime,
) -> Vec<PublicKeyInfo> {
    let mut out = vec![current.public_info()];
    for r in retired {
        let expires = OffsetDateTime::parse(
            &r.expires_at,
            &time::format_description::well_known::Rfc3339,
        )
        .ok();
        if expires.is_some_and(|e| e > now) && r.key_id != current.key_id() {
            out.push(PublicKeyInfo {
                key_id: r.key_id.clone(),
                algorithm: "rsa-sha256",
                public_key_pem: r.public_key_pem.clone(),
                dns_txt: Some(r.dns_txt.clone()),
                standard_webhooks: None,
                expires_at: Some(r.expires_at.clone()),
                account: None,
            });
        }
    }
    out
}

/// Retires the key at `key_path` (published until `now + overlap`) and puts a new one in its
/// place. Returns the new key.
///
/// The new key's id is `new_key_id`; else, with a fixed `current_key_id`
/// (`HOOKLINE_SIGNING_KEY_ID`), that id plus `-` and the new key's fingerprint, recorded in the
/// key file so that stages restarted with the same setting sign with it; else the fingerprint
/// default. The ids of the retired and the new key always differ, so both are published.
///
/// Every file is replaced whole (temporary file, then rename): a stage starting during a
/// rotation reads the old key or the new one, never half of one, and never finds no key.
pub fn rotate(
    key_path: &Path,
    current_key_id: Option<&str>,
    new_key_id: Option<&str>,
    overlap: std::time::Duration,
) -> Result<SigningKey, KeyError> {
    let shown = key_path.display().to_string();
    let current = SigningKey::load_or_generate(key_path, current_key_id)?;
    let pem = generate_pem()?;
    let fingerprint =
        crate::keys::fingerprint(SigningKey::from_pem(&pem, None, &shown)?.public_key_der());
    let base = current_key_id.map(str::trim).filter(|k| !k.is_empty());
    let new_id = match (new_key_id.map(str::trim).filter(|k| !k.is_empty()), base) {
        (Some(id), _) => Some(id.to_owned()),
        (None, Some(base)) => Some(format!("{base}-{fingerprint}")),
        (None, None) => None,
    };
    let new = SigningKey::from_pem(&pem, new_id.as_deref(), &shown)?;
    if new.key_id() == current.key_id() {
        return Err(KeyError::Rejected {
            path: shown,
            reason: format!(
                "the new key id {:?} is the current key's; give another --new-key-id",
                new.key_id()
            ),
        });
    }

    let now = OffsetDateTime::now_utc();
    let mut ring = load_keyring(key_path)?;
    ring.retain(|r| {
        OffsetDateTime::parse(
            &r.expires_at,
            &time::format_description::well_known::Rfc3339,
        )
        .is_ok_and(|e| e > now)
    });
    let info = current.public_info();
    ring.push(RetiredKey {
        key_id: info.key_id.clone(),
        public_key_pem: info.public_key_pem,
        dns_txt: current.dns_txt(),
        expires_at: (now + overlap)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    });
    let ring_path = keyring_path(key_path);
    let write_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| KeyError::Write { path, source }
    };
    let json = serde_json::to_string_pretty(&ring).expect("keyring serializes");
    keyfile::replace(&ring_path, &json).map_err(write_err(&ring_path))?;
    let mut retired = key_path.as_os_str().to_owned();
    retired.push(format!(".retired-{}", info.key_id));
    let retired = PathBuf::from(retired);
    // A second name for the old key first, so the path never lacks a key.
    std::fs::hard_link(key_path, &retired).map_err(write_err(&retired))?;
    let text = match &new_id {
        Some(id) => format!("{} {id}\n{pem}", keyfile::KEY_ID_LABEL),
        None => pem,
    };
    keyfile::replace(key_path, &text).map_err(write_err(key_path))?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rotation_publishes_old_and_new_until_the_old_expires() {
        let dir = std::env::temp_dir().join(format!("hookline-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key.pem");
        let old = SigningKey::load_or_generate(&path, None).unwrap();
        let new = rotate(&path, None, None, Duration::from_secs(7 * 86_400)).unwrap();
        assert_ne!(old.key_id(), new.key_id());
        let reloaded = SigningKey::load_or_generate(&path, None).unwrap();
        assert_eq!(reloaded.key_id(), new.key_id(), "the new key took the path");
        let ring = load_keyring(&path).unwrap();
        let now = OffsetDateTime::now_utc();
        let published = published_keys(&reloaded, &ring, now);
        let ids: Vec<&str> = published.iter().map(|k| k.key_id.as_str()).collect();
        assert_eq!(ids, [new.key_id(), old.key_id()]);
        assert!(published[1].expires_at.is_some() && published[0].expires_at.is_none());
        // A signature by the old key still verifies with what is published.
        let sig = old.sign(b"hello");
        let old_pub = crate::keys::decode_pem(&published[1].public_key_pem)
            .unwrap()
            .1;
        let key = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            old_pub,
        );
        key.verify(b"hello", &sig).unwrap();
        // After the overlap the old key is no longer published.
        let later = published_keys(&reloaded, &ring, now + Duration::from_secs(8 * 86_400));
        assert_eq!(later.len(), 1);
        assert!(dir
            .join(format!("key.pem.retired-{}", old.key_id()))
            .exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn with_a_fixed_key_id_a_rotation_publishes_both_keys_under_different_ids() {
        let dir =
            std::env::temp_dir().join(format!("hookline-rotate-fixed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key.pem");
        let old = SigningKey::load_or_generate(&path, Some("sel1")).unwrap();
        assert_eq!(old.key_id(), "sel1");
        let week = Duration::from_secs(7 * 86_400);
        let new = rotate(&path, Some("sel1"), None, week).unwrap();
        assert!(new.key_id().starts_with("sel1-"), "{}", new.key_id());
        // A stage restarted with the same HOOKLINE_SIGNING_KEY_ID signs with the new key's id.
        let restarted = SigningKey::load_or_generate(&path, Some("sel1")).unwrap();
        assert_eq!(restarted.key_id(), new.key_id());
        assert_eq!(restarted.public_key_der(), new.public_key_der());
        let now = OffsetDateTime::now_utc();
        let ids = |ring: &[RetiredKey]| -> Vec<String> {
            published_keys(&restarted, ring, now)
                .into_iter()
                .map(|k| k.key_id)
                .collect()
        };
        assert_eq!(ids(&load_keyring(&path).unwrap()), [new.key_id(), "sel1"]);
        let published = published_keys(&restarted, &load_keyring(&path).unwrap(), now);
        assert_eq!(
            published[1].public_key_pem,
            old.public_key_pem(),
            "the retired key itself"
        );

        // Again: a new suffix, and both retired keys stay published.
        let third = rotate(&path, Some("sel1"), None, week).unwrap();
        assert!(third.key_id().starts_with("sel1-") && third.key_id() != new.key_id());
        let restarted = SigningKey::load_or_generate(&path, Some("sel1")).unwrap();
        assert_eq!(restarted.key_id(), third.key_id());
        let ring = load_keyring(&path).unwrap();
        let published: Vec<String> = published_keys(&restarted, &ring, now)
            .into_iter()
            .map(|k| k.key_id)
            .collect();
        assert_eq!(published, [third.key_id(), "sel1", new.key_id()]);
        // Another id configured later is used as it is.
        assert_eq!(
            SigningKey::load_or_generate(&path, Some("sel2"))
                .unwrap()
                .key_id(),
            "sel2"
        );
        // An explicit new id equal to the current one is refused.
        let e = rotate(&path, Some("sel1"), Some(third.key_id()), week).unwrap_err();
        assert!(e.to_string().contains("--new-key-id"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn concurrent_first_starts_agree_on_one_rsa_key() {
        let dir = std::env::temp_dir().join(format!("hookline-rsa-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("k.pem");
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        SigningKey::load_or_generate(&path, None)
                            .unwrap()
                            .public_key_der()
                            .to_vec()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "one key for all");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary files left: {names:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
