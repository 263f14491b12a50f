//! The Standard Webhooks signature (standardwebhooks.com, spec 1.0.0), asymmetric variant:
//! `webhook-id`, `webhook-timestamp` and `webhook-signature: v1a,<base64 Ed25519 signature>`
//! over `{webhook-id}.{webhook-timestamp}.{body}`.
//!
//! Why the asymmetric `v1a` and not the symmetric `v1` (HMAC-SHA256 with a `whsec_` secret):
//! a shared secret per subscription would have to live in the `subscriptions` topic, readable by
//! every stage and every operator with topic access, and would be a second secret to rotate per
//! customer. With Ed25519 only the sender and the admin API hold the private key (a file next
//! to the RSA key), and receivers verify with the public key published by `GET /v1/keys` in the
//! Standard Webhooks form `whpk_<base64 of the raw 32-byte public key>`.
//!
//! `webhook-id` is the delivery id, the same for every attempt (the receiver's idempotency
//! key); `webhook-timestamp` is the attempt's time in unix seconds, so every retry is signed
//! anew and receivers can reject replays outside [`TOLERANCE`].

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::keys::{decode_pem, encode_pem, KeyError, PublicKeyInfo};

/// Header carrying the message id: the delivery id, stable across attempts.
pub const ID_HEADER: &str = "webhook-id";
/// Header carrying the attempt's time, integer unix seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Header carrying the space-separated signatures, here one `v1a,<base64>`.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// The signature identifier of the asymmetric (Ed25519) scheme.
pub const VERSION: &str = "v1a";
/// The prefix of a serialized public key.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";
/// How far `webhook-timestamp` may be from the receiver's clock, either way: five minutes, as
/// the reference libraries of the specification use.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// The `algorithm` of this key in `GET /v1/keys`.
pub const ALGORITHM: &str = "ed25519";

/// Where the Ed25519 key of the RSA key at `rsa_key_path` lives: the same path plus
/// `.ed25519.pem`.
pub fn key_path(rsa_key_path: &Path) -> PathBuf {
    let mut p = rsa_key_path.as_os_str().to_owned();
    p.push(".ed25519.pem");
    PathBuf::from(p)
}

/// An Ed25519 signing key with its id. `Debug` never prints key material.
pub struct Ed25519Key {
    key_id: String,
    pair: Ed25519KeyPair,
    spki_der: Vec<u8>,
    /// Set on a key derived for one account ([`crate::account_keys`]).
    account: Option<String>,
}

impl std::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Key")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Ed25519Key {
    /// Reads the key at `path`, or generates one there (mode 0600) when the file does not
    /// exist. The sender and the admin API start together and may both generate: the file
    /// appears complete or not at all, and whoever comes second uses the first one's key.
    pub fn load_or_generate(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        if !path.exists() {
            let pem = generate_pem()?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| KeyError::Write {
                    path: shown.clone(),
                    source,
                })?;
            }
            match crate::keyfile::write_new(path, &pem) {
                Ok(()) => tracing::info!(path = %shown, "generated a new Ed25519 signing key"),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(KeyError::Write {
                        path: shown.clone(),
                        source,
                    })
                }
            }
        }
        crate::keyfile::warn_if_readable_by_others(path);
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_pem(&pem, &shown)
    }

    /// Parses a PKCS#8 (`PRIVATE KEY`) Ed25519 PEM, as `openssl genpkey -algorithm ED25519`
    /// writes. `origin` names the source in error messages.
    pub fn from_pem(pem: &str, origin: &str) -> Result<Self, KeyError> {
        let rejected = |reason: String| KeyError::RejectedEd25519 {
            path: origin.to_owned(),
            reason,
        };
        let (label, der) = decode_pem(pem).ok_or_else(|| rejected("no PEM block found".into()))?;
        if label != "PRIVATE KEY" {
            return Err(rejected(format!("the PEM block is {label:?}")));
        }
        let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|e| rejected(e.to_string()))?;
        Self::from_pair(pair, origin)
    }

    /// The key whose 32-byte seed is `seed` (the bytes of a Standard Webhooks `whsk_` secret
    /// key).
    pub fn from_seed(seed: &[u8], origin: &str) -> Result<Self, KeyError> {
        let pair =
            Ed25519KeyPair::from_seed_unchecked(seed).map_err(|e| KeyError::RejectedEd25519 {
                path: origin.to_owned(),
                reason: e.to_string(),
            })?;
        Self::from_pair(pair, origin)
    }

    fn from_pair(pair: Ed25519KeyPair, origin: &str) -> Result<Self, KeyError> {
        let spki_der = pair
            .public_key()
            .as_der()
            .map_err(|_| KeyError::RejectedEd25519 {
                path: origin.to_owned(),
                reason: "public key encoding".into(),
            })?
            .as_ref()
            .to_vec();
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pair.public_key().as_ref());
        let hex: String = d.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            key_id: format!("hookline-ed25519-{hex}"),
            pair,
            spki_der,
            account: None,
        })
    }

    /// The 32-byte private seed: the input of the per-account derivation. Never leaves the crate.
    pub(crate) fn seed(&self) -> Result<Vec<u8>, KeyError> {
        use aws_lc_rs::encoding::AsBigEndian;
        let seed = self.pair.seed().map_err(|_| KeyError::Generate)?;
        let bin: aws_lc_rs::encoding::Curve25519SeedBin<'static> =
            seed.as_be_bytes().map_err(|_| KeyError::Generate)?;
        Ok(bin.as_ref().to_vec())
    }

    /// Marks this key as `account`'s, under the id `key_id`.
    pub(crate) fn for_account(mut self, key_id: String, account: &str) -> Self {
        self.key_id = key_id;
        self.account = Some(account.to_owned());
        self
    }

    /// The account this key signs for, when it is a derived per-account key.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// `hookline-ed25519-` + a fingerprint of the public key. Standard Webhooks signatures do
    /// not name their key; the id only tells the entries of `GET /v1/keys` apart.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Ed25519 over `message`: 64 bytes, deterministic, tens of microseconds.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }

    /// The raw 32-byte public key.
    pub fn public_key_raw(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// DER SubjectPublicKeyInfo of the public key.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub fn public_key_pem(&self) -> String {
        encode_pem("PUBLIC KEY", &self.spki_der)
    }

    /// `whpk_<base64 of the raw public key>`, the form Standard Webhooks libraries take.
    pub fn whpk(&self) -> String {
        format!("{PUBLIC_KEY_PREFIX}{}", B64.encode(self.public_key_raw()))
    }

    /// The entry of `GET /v1/keys`: no DNS TXT value (that form is DKIM-RSA only).
    pub fn public_info(&self) -> PublicKeyInfo {
        PublicKeyInfo {
            key_id: self.key_id.clone(),
            algorithm: ALGORITHM,
            public_key_pem: self.public_key_pem(),
            dns_txt: None,
            standard_webhooks: Some(self.whpk()),
            expires_at: None,
            account: self.account.clone(),
        }
    }
}

/// A new Ed25519 key as PKCS#8 v1 PEM (the form OpenSSL and most libraries read).
pub fn generate_pem() -> Result<String, KeyError> {
    let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generate)?;
    let der = pair.to_pkcs8v1().map_err(|_| KeyError::Generate)?;
    Ok(encode_pem("PRIVATE KEY", der.as_ref()))
}

/// The signed content: `{id}.{timestamp}.{body}`.
pub fn signed_content(id: &str, timestamp: u64, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{id}.{timestamp}.").into_bytes();
    out.extend_from_slice(body);
    out
}

/// The three headers of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardHeaders {
    pub id: String,
    /// Unix seconds.
    pub timestamp: u64,
    /// `v1a,<base64>`; during a key rotation's overlap one per key, space-separated.
    pub signature: String,
}

/// Signs `body` as message `id` now.
pub fn sign(key: &Ed25519Key, id: &str, body: &[u8]) -> StandardHeaders {
    sign_at(key, id, SystemTime::now(), body)
}

/// Signs `body` as message `id` at `at` (tests, reproducible examples).
pub fn sign_at(key: &Ed25519Key, id: &str, at: SystemTime, body: &[u8]) -> StandardHeaders {
    sign_all_at(&[key], id, at, body)
}

/// Signs `body` as message `id` now with every key of `keys` (the current key first): one
/// `v1a` signature each, space-separated, so a receiver that trusts any of them verifies.
pub fn sign_all(keys: &[&Ed25519Key], id: &str, body: &[u8]) -> StandardHeaders {
    sign_all_at(keys, id, SystemTime::now(), body)
}

fn sign_all_at(keys: &[&Ed25519Key], id: &str, at: SystemTime, body: &[u8]) -> StandardHeaders {
    let timestamp = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let content = signed_content(id, timestamp, body);
    let signature = keys
        .iter()
        .map(|k| format!("{VERSION},{}", B64.encode(k.sign(&content))))
        .collect::<Vec<_>>()
        .join(" ");
    StandardHeaders {
        id: id.to_owned(),
        timestamp,
        signature,
    }
}

/// Why a Standard Webhooks request does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StandardVerifyError {
    #[error("no {0} header")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not integer unix seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than {} s from now", TOLERANCE.as_secs())]
    OutsideTolerance,
    #[error("webhook-signature has no v1a signature")]
    NoV1a,
    #[error("no v1a signature verifies with the trusted keys")]
    BadSignature,
    #[error("public key is not whpk_<base64 of 32 bytes>")]
    BadPublicKey,
}

/// Decodes `whpk_<base64>` (the prefix is optional) to the raw 32-byte public key.
pub fn parse_whpk(value: &str) -> Result<Vec<u8>, StandardVerifyError> {
    let b64 = value.trim();
    let b64 = b64.strip_prefix(PUBLIC_KEY_PREFIX).unwrap_or(b64);
    B64.decode(b64)
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or(StandardVerifyError::BadPublicKey)
}

/// Verifies a received request against raw Ed25519 public keys, checking the timestamp
/// against `now` within [`TOLERANCE`]. `header` looks up a request header by lower-case name.
/// Any `v1a` signature in the list that verifies with any of `public_keys` is enough; other
/// versions (`v1`) are ignored, as the specification asks.
pub fn verify<'a>(
    header: impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
    public_keys: &[&[u8]],
    now: SystemTime,
) -> Result<(), StandardVerifyError> {
    let id = header(ID_HEADER).ok_or(StandardVerifyError::MissingHeader(ID_HEADER))?;
    let ts =
        header(TIMESTAMP_HEADER).ok_or(StandardVerifyError::MissingHeader(TIMESTAMP_HEADER))?;
    let sigs =
        header(SIGNATURE_HEADER).ok_or(StandardVerifyError::MissingHeader(SIGNATURE_HEADER))?;
    let timestamp: u64 = ts
        .trim()
        .parse()
        .map_err(|_| StandardVerifyError::BadTimestamp)?;
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if now.abs_diff(timestamp) > TOLERANCE.as_secs() {
        return Err(StandardVerifyError::OutsideTolerance);
    }
    let content = signed_content(id.trim(), timestamp, body);
    let mut seen_v1a = false;
    for entry in sigs.split_whitespace() {
        let Some((VERSION, b64)) = entry.split_once(',') else {
            continue;
        };
        seen_v1a = true;
        let Ok(sig) = B64.decode(b64) else { continue };
        if public_keys.iter().any(|k| {
            UnparsedPublicKey::new(&ED25519, k)
                .verify(&content, &sig)
                .is_ok()
        }) {
            return Ok(());
        }
    }
    Err(if seen_v1a {
        StandardVerifyError::BadSignature
    } else {
        StandardVerifyError::NoV1a
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The asymmetric signing test of the specification's Go reference library
    /// (`libraries/go/webhook_asymmetric_test.go`, `TestAsymmetricWebhookSign`): the secret key
    /// is the base64 seed `VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=`. Ed25519 is
    /// deterministic, so the signature must match byte for byte.
    #[test]
    fn known_answer_from_the_reference_library() {
        let seed = B64
            .decode("VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=")
            .unwrap();
        let key = Ed25519Key::from_seed(&seed, "test").unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(1_614_265_330);
        let h = sign_at(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            at,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(h.timestamp, 1_614_265_330);
        assert_eq!(
            h.signature,
            "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="
        );
        assert_eq!(
            signed_content("msg_1", 7, b"{}"),
            b"msg_1.7.{}".to_vec(),
            "id, timestamp and body joined by full stops"
        );
    }

    fn headers(h: &StandardHeaders) -> HashMap<&'static str, String> {
        HashMap::from([
            (ID_HEADER, h.id.clone()),
            (TIMESTAMP_HEADER, h.timestamp.to_string()),
            (SIGNATURE_HEADER, h.signature.clone()),
        ])
    }

    #[test]
    fn signatures_verify_with_the_published_key_and_forgeries_do_not() {
        let key = Ed25519Key::from_pem(&generate_pem().unwrap(), "test").unwrap();
        let raw = parse_whpk(&key.whpk()).unwrap();
        assert_eq!(raw, key.public_key_raw());
        let now = SystemTime::now();
        let body = br#"{"id":"evt-1"}"#;
        let h = sign_at(&key, "dlv_abc", now, body);
        assert!(h.signature.starts_with("v1a,"));
        let m = headers(&h);
        let get = |n: &str| m.get(n).map(String::as_str);
        assert_eq!(verify(get, body, &[&raw], now), Ok(()));
        // Next to other schemes' signatures, as a list.
        let mut multi = m.clone();
        multi.insert(
            SIGNATURE_HEADER,
            format!(
                "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= {}",
                h.signature
            ),
        );
        assert_eq!(
            verify(|n| multi.get(n).map(String::as_str), body, &[&raw], now),
            Ok(())
        );

        assert_eq!(
            verify(get, b"{\"id\":\"evt-2\"}", &[&raw], now),
            Err(StandardVerifyError::BadSignature),
            "changed body"
        );
        let other = Ed25519Key::from_pem(&generate_pem().unwrap(), "other").unwrap();
        assert_eq!(
            verify(get, body, &[other.public_key_raw()], now),
            Err(StandardVerifyError::BadSignature),
            "another key"
        );
        let mut changed_id = m.clone();
        changed_id.insert(ID_HEADER, "dlv_abd".into());
        assert_eq!(
            verify(
                |n| changed_id.get(n).map(String::as_str),
                body,
                &[&raw],
                now
            ),
            Err(StandardVerifyError::BadSignature),
            "the id is signed"
        );
        assert_eq!(
            verify(get, body, &[&raw], now + TOLERANCE + Duration::from_secs(1)),
            Err(StandardVerifyError::OutsideTolerance),
            "replayed later"
        );
        assert_eq!(
            verify(get, body, &[&raw], now - TOLERANCE - Duration::from_secs(1)),
            Err(StandardVerifyError::OutsideTolerance),
            "from the future"
        );
        let mut v1_only = m.clone();
        v1_only.insert(SIGNATURE_HEADER, "v1,abc=".into());
        assert_eq!(
            verify(|n| v1_only.get(n).map(String::as_str), body, &[&raw], now),
            Err(StandardVerifyError::NoV1a)
        );
        let no_id: HashMap<&str, String> = m.into_iter().filter(|(k, _)| *k != ID_HEADER).collect();
        assert_eq!(
            verify(|n| no_id.get(n).map(String::as_str), body, &[&raw], now),
            Err(StandardVerifyError::MissingHeader(ID_HEADER))
        );
    }

    #[test]
    fn key_is_generated_once_with_mode_0600_and_published_as_whpk() {
        let dir = std::env::temp_dir().join(format!("hookline-ed25519-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = key_path(&dir.join("signing.pem"));
        assert!(path.ends_with("signing.pem.ed25519.pem"));
        let k1 = Ed25519Key::load_or_generate(&path).unwrap();
        let k2 = Ed25519Key::load_or_generate(&path).unwrap();
        assert_eq!(
            k1.public_key_raw(),
            k2.public_key_raw(),
            "read back, not regenerated"
        );
        assert_eq!(k1.key_id(), k2.key_id());
        assert!(k1.key_id().starts_with("hookline-ed25519-"));
        assert!(!format!("{k1:?}").contains("PRIVATE"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");

        let info = k1.public_info();
        assert_eq!(info.algorithm, "ed25519");
        assert_eq!(info.dns_txt, None);
        let whpk = info.standard_webhooks.clone().unwrap();
        assert!(whpk.starts_with("whpk_"));
        assert_eq!(B64.decode(&whpk[5..]).unwrap(), k1.public_key_raw());
        // The PEM is the SubjectPublicKeyInfo: 12 bytes of Ed25519 header, then the raw key.
        let (label, der) = decode_pem(&info.public_key_pem).unwrap();
        assert_eq!(label, "PUBLIC KEY");
        assert_eq!(&der[12..], k1.public_key_raw());
        let json = serde_json::to_value(&info).unwrap();
        assert!(json.get("dns_txt").is_none(), "{json}");
        assert_eq!(json["standard_webhooks"], whpk);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn concurrent_first_starts_agree_on_one_key() {
        let dir =
            std::env::temp_dir().join(format!("hookline-ed25519-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("k.pem.ed25519.pem");
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        Ed25519Key::load_or_generate(&path)
                            .unwrap()
                            .public_key_raw()
                            .to_vec()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "one key for all");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// RFC 8410 section 10: the example private key (as OpenSSL writes one) and the public key
    /// it belongs to.
    #[test]
    fn openssl_style_pkcs8_loads_and_publishes_the_rfc_8410_public_key() {
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
                   -----END PRIVATE KEY-----\n";
        let key = Ed25519Key::from_pem(pem, "rfc8410").unwrap();
        assert_eq!(
            key.public_key_pem(),
            "-----BEGIN PUBLIC KEY-----\n\
             MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
             -----END PUBLIC KEY-----\n"
        );
        assert_eq!(
            key.whpk(),
            "whpk_Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="
        );
    }

    #[test]
    fn unusable_keys_are_rejected_clearly() {
        let rsa = crate::keys::generate_pem().unwrap();
        let err = Ed25519Key::from_pem(&rsa, "k.ed25519.pem")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("k.ed25519.pem") && err.contains("Ed25519"),
            "{err}"
        );
        let err = Ed25519Key::from_pem("hello", "x.pem")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.pem") && err.contains("no PEM"), "{err}");
        assert_eq!(
            parse_whpk("whpk_AAAA"),
            Err(StandardVerifyError::BadPublicKey)
        );
    }
}
