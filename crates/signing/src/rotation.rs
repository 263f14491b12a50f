//! Key rotation with overlap.
//!
//! `hookline keys rotate` retires the current key: its public half goes into the keyring file
//! beside the key (`<key>.keyring.json`) with an expiry, the private file is kept as
//! `<key>.retired-<key id>`, and a new key takes the key's path. The admin API publishes the new
//! key and every retired key until it expires, so receivers that fetch keys can verify
//! signatures made just before the switch. Restart the admin API first, then the senders.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

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
    let path = keyring_path(key_path);
    let shown = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| KeyError::Rejected {
            path: shown,
            reason: format!("keyring is not valid JSON: {e}"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(KeyError::Read {
            path: shown,
            source,
        }),
    }
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
/// place. Returns the new key. `new_key_id`: the new key's id (default: its fingerprint).
pub fn rotate(
    key_path: &Path,
    current_key_id: Option<&str>,
    new_key_id: Option<&str>,
    overlap: std::time::Duration,
) -> Result<SigningKey, KeyError> {
    let shown = key_path.display().to_string();
    let current = SigningKey::load_or_generate(key_path, current_key_id)?;
    let now = OffsetDateTime::now_utc();
    let expires = now + overlap;
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
        expires_at: expires
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    });
    let ring_path = keyring_path(key_path);
    let json = serde_json::to_string_pretty(&ring).expect("keyring serializes");
    std::fs::write(&ring_path, json).map_err(|source| KeyError::Write {
        path: ring_path.display().to_string(),
        source,
    })?;
    let mut retired = key_path.as_os_str().to_owned();
    retired.push(format!(".retired-{}", info.key_id));
    std::fs::rename(key_path, PathBuf::from(retired)).map_err(|source| KeyError::Write {
        path: shown.clone(),
        source,
    })?;
    let pem = generate_pem()?;
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        opts.open(key_path)
            .and_then(|mut f| f.write_all(pem.as_bytes()))
            .map_err(|source| KeyError::Write {
                path: shown.clone(),
                source,
            })?;
    }
    SigningKey::from_pem(&pem, new_key_id, &shown)
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
}
