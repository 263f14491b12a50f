//! RSA signing keys, and [`Signers`]: the RSA key with the Ed25519 key beside it.

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Serialize;

use crate::account_keys::AccountKeys;
use crate::standard_webhooks::Ed25519Key;

/// Why a key cannot be used. Messages name the file but never include key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading signing key {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("writing signing key {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("signing key {path}: no PEM block found; expected \"-----BEGIN PRIVATE KEY-----\" (PKCS#8) or \"-----BEGIN RSA PRIVATE KEY-----\" (PKCS#1)")]
    NoPem { path: String },
    #[error("signing key {path}: not a usable RSA private key ({reason}); RSA 2048–8192 bits in PKCS#8 or PKCS#1 PEM is required")]
    Rejected { path: String, reason: String },
    #[error("signing key {path}: not a usable Ed25519 private key ({reason}); an Ed25519 key in PKCS#8 PEM (\"-----BEGIN PRIVATE KEY-----\", as `openssl genpkey -algorithm ED25519` writes) is required")]
    RejectedEd25519 { path: String, reason: String },
    #[error("generating a signing key failed")]
    Generate,
}

/// A private signing key with its id. `Debug` never prints key material.
pub struct SigningKey {
    key_id: String,
    pair: RsaKeyPair,
    spki_der: Vec<u8>,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The public half of a key, as `GET /v1/keys` publishes it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicKeyInfo {
    pub key_id: String,
    pub algorithm: &'static str,
    pub public_key_pem: String,
    /// RSA keys: the DKIM-style DNS TXT value (`v=DKIM1; k=rsa; p=...`) for the name given as
    /// `key_id`. Absent for the Ed25519 key, which that form cannot carry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_txt: Option<String>,
    /// The Ed25519 key: its Standard Webhooks form, `whpk_<base64 of the raw 32-byte key>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_webhooks: Option<String>,
    /// Set on a retired key still published during the rotation overlap: when it stops being
    /// published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// A per-account Ed25519 key: the account whose webhooks it verifies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl SigningKey {
    /// Reads the key at `path`, or generates a 2048-bit key there (mode 0600) when the file does
    /// not exist. `key_id` (`HOOKLINE_SIGNING_KEY_ID`) defaults to `hookline-` + a fingerprint
    /// of the public key; a rotated key's file records its own id (`<key_id>-<suffix>`), which
    /// then wins (see [`crate::keyfile::effective_key_id`]). A file its group or everyone may
    /// read is warned about, once.
    pub fn load_or_generate(path: &Path, key_id: Option<&str>) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        if !path.exists() {
            let pem = generate_pem()?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| KeyError::Write {
                    path: shown.clone(),
                    source,
                })?;
            }
            // Whole or not at all: an admin API and a sender started together never read half
            // a file, and whoever comes second uses the first one's key.
            match crate::keyfile::write_new(path, &pem) {
                Ok(()) => tracing::info!(path = %shown, "generated a new RSA-2048 signing key"),
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
        let key_id =
            crate::keyfile::effective_key_id(key_id, crate::keyfile::recorded_key_id(&pem));
        Self::from_pem(&pem, key_id.as_deref(), &shown)
    }

    /// Parses a PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) PEM. `origin` names the
    /// source in error messages.
    pub fn from_pem(pem: &str, key_id: Option<&str>, origin: &str) -> Result<Self, KeyError> {
        let (label, der) = decode_pem(pem).ok_or_else(|| KeyError::NoPem {
            path: origin.to_owned(),
        })?;
        let pair = match label.as_str() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            _ => {
                return Err(KeyError::NoPem {
                    path: origin.to_owned(),
                })
            }
        }
        .map_err(|e| KeyError::Rejected {
            path: origin.to_owned(),
            reason: e.to_string(),
        })?;
        let spki_der = pair
            .public_key()
            .as_der()
            .map_err(|_| KeyError::Rejected {
                path: origin.to_owned(),
                reason: "public key encoding".into(),
            })?
            .as_ref()
            .to_vec();
        let key_id = key_id
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| default_key_id(&spki_der));
        Ok(Self {
            key_id,
            pair,
            spki_der,
            rng: SystemRandom::new(),
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`. Takes about a millisecond for 2048 bits:
    /// call it off the async executor's worker threads.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
            .expect("RSA signing with a valid key and a correctly sized buffer");
        sig
    }

    /// DER SubjectPublicKeyInfo of the public key.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub fn public_key_pem(&self) -> String {
        encode_pem("PUBLIC KEY", &self.spki_der)
    }

    /// `v=DKIM1; k=rsa; p=<base64 SPKI>`: the TXT value to publish at the DNS name `key_id`.
    pub fn dns_txt(&self) -> String {
        format!("v=DKIM1; k=rsa; p={}", B64.encode(&self.spki_der))
    }

    pub fn public_info(&self) -> PublicKeyInfo {
        PublicKeyInfo {
            key_id: self.key_id.clone(),
            algorithm: "rsa-sha256",
            public_key_pem: self.public_key_pem(),
            dns_txt: Some(self.dns_txt()),
            standard_webhooks: None,
            expires_at: None,
            account: None,
        }
    }
}

/// The keys a stage signs with: the RSA key of the `copernica` profile, and the Ed25519 keys of
/// the `standard-webhooks` profile: one per account, derived from the instance's Ed25519 key
/// ([`crate::account_keys`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Signers {
    pub rsa: Arc<SigningKey>,
    /// The instance's Ed25519 key, the *master*: it signs no webhook itself; every account's key
    /// is derived from it ([`Signers::ed25519_for`]).
    pub ed25519: Arc<Ed25519Key>,
    account_keys: Arc<AccountKeys>,
    /// Retired masters still in their overlap ([`crate::ed25519_rotation`]), newest first.
    retired_ed25519: Arc<Vec<crate::ed25519_rotation::RetiredAccountKeys>>,
    /// Where RSA signatures run ([`crate::pool`]).
    pub pool: crate::pool::SigningPool,
}

impl Signers {
    /// Loads (or generates, on first run) the RSA key at `rsa_path` and the Ed25519 key at
    /// `rsa_path` + `.ed25519.pem`, with the retired Ed25519 masters still in their overlap.
    pub fn load_or_generate(rsa_path: &Path, key_id: Option<&str>) -> Result<Self, KeyError> {
        let master_path = crate::standard_webhooks::key_path(rsa_path);
        let ed25519 = Arc::new(Ed25519Key::load_or_generate(&master_path)?);
        let retired = crate::ed25519_rotation::load_in_overlap(
            &master_path,
            time::OffsetDateTime::now_utc(),
        )?;
        Ok(Self {
            rsa: Arc::new(SigningKey::load_or_generate(rsa_path, key_id)?),
            account_keys: Arc::new(AccountKeys::new(ed25519.clone())),
            retired_ed25519: Arc::new(retired),
            ed25519,
            pool: crate::pool::SigningPool::new(None),
        })
    }

    /// The Ed25519 key that signs `account`'s Standard Webhooks deliveries (and test webhooks):
    /// derived from the master key, cached.
    pub fn ed25519_for(&self, account: &str) -> Result<Arc<Ed25519Key>, KeyError> {
        self.account_keys.get(account)
    }

    /// Every Ed25519 key that signs `account`'s requests at `now`: the current one, then those
    /// of retired masters whose overlap has not ended, each with its expiry.
    pub fn ed25519_all_for(
        &self,
        account: &str,
        now: time::OffsetDateTime,
    ) -> Result<Vec<AccountKey>, KeyError> {
        let mut out = vec![(self.ed25519_for(account)?, None)];
        for r in self.retired_ed25519.iter().filter(|r| r.expires_at > now) {
            out.push((r.keys.get(account)?, Some(r.expires_at)));
        }
        Ok(out)
    }

    /// The current RSA key, then the retired RSA keys not yet expired at `now`.
    pub fn published_rsa(
        &self,
        retired: &[crate::rotation::RetiredKey],
        now: time::OffsetDateTime,
    ) -> Vec<PublicKeyInfo> {
        crate::rotation::published_keys(&self.rsa, retired, now)
    }

    /// What `GET /v1/keys` publishes for `account`: the RSA keys ([`Signers::published_rsa`]),
    /// then `account`'s Ed25519 key (with `account` set). Receivers pick the key they need by
    /// `key_id` (or `algorithm`), never by position.
    pub fn published_for_account(
        &self,
        account: &str,
        retired: &[crate::rotation::RetiredKey],
        now: time::OffsetDateTime,
    ) -> Result<Vec<PublicKeyInfo>, KeyError> {
        let mut out = self.published_rsa(retired, now);
        for (key, expires) in self.ed25519_all_for(account, now)? {
            let mut info = key.public_info();
            info.expires_at = expires.and_then(|e| {
                e.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            });
            out.push(info);
        }
        Ok(out)
    }

    /// The operator's view: the RSA keys, then the master Ed25519 key (which verifies no
    /// webhook; it identifies the key material every account key is derived from).
    pub fn published(
        &self,
        retired: &[crate::rotation::RetiredKey],
        now: time::OffsetDateTime,
    ) -> Vec<PublicKeyInfo> {
        let mut out = self.published_rsa(retired, now);
        out.push(self.ed25519.public_info());
        out
    }
}

/// An account's Ed25519 key and, for one derived from a retired master, when it stops signing
/// and being published ([`Signers::ed25519_all_for`]).
pub type AccountKey = (Arc<Ed25519Key>, Option<time::OffsetDateTime>);

/// A new RSA-2048 key as PKCS#8 PEM.
pub fn generate_pem() -> Result<String, KeyError> {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'static>>::as_der(&pair)
        .map_err(|_| KeyError::Generate)?;
    Ok(encode_pem("PRIVATE KEY", der.as_ref()))
}

fn default_key_id(spki: &[u8]) -> String {
    format!("hookline-{}", fingerprint(spki))
}

/// 12 hex digits of SHA-256 over the public key (SubjectPublicKeyInfo).
pub(crate) fn fingerprint(spki: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki);
    d.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// PEM encoding with 64-column lines.
pub fn encode_pem(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The first PEM block: its label and DER bytes.
pub fn decode_pem(pem: &str) -> Option<(String, Vec<u8>)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_owned();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let body_end = rest.find(&end_marker)?;
    let b64: String = rest[body_start..body_end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = B64.decode(b64).ok()?;
    Some((label, der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips_through_pem_and_file() {
        let dir = std::env::temp_dir().join(format!("hookline-keytest-{}", std::process::id()));
        let path = dir.join("signing.pem");
        let _ = std::fs::remove_dir_all(&dir);
        let k1 = SigningKey::load_or_generate(&path, None).unwrap();
        let k2 = SigningKey::load_or_generate(&path, None).unwrap();
        assert_eq!(
            k1.public_key_der(),
            k2.public_key_der(),
            "second load reads the same key"
        );
        assert!(k1.key_id().starts_with("hookline-"));
        assert!(k1.dns_txt().starts_with("v=DKIM1; k=rsa; p=MII"));
        assert!(!format!("{k1:?}").contains("PRIVATE"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn signers_load_both_keys_and_publish_rsa_first_then_ed25519() {
        let dir = std::env::temp_dir().join(format!("hookline-signers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("signing.pem");
        let s = Signers::load_or_generate(&path, Some("k-rsa")).unwrap();
        assert!(path.exists() && dir.join("signing.pem.ed25519.pem").exists());
        let again = Signers::load_or_generate(&path, Some("k-rsa")).unwrap();
        assert_eq!(s.ed25519.public_key_raw(), again.ed25519.public_key_raw());
        let published = s.published(&[], time::OffsetDateTime::now_utc());
        let shape: Vec<(&str, &str, bool, bool)> = published
            .iter()
            .map(|k| {
                (
                    k.key_id.as_str(),
                    k.algorithm,
                    k.dns_txt.is_some(),
                    k.standard_webhooks.is_some(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("k-rsa", "rsa-sha256", true, false),
                (s.ed25519.key_id(), "ed25519", false, true)
            ]
        );
        let for_1001 = s
            .published_for_account("1001", &[], time::OffsetDateTime::now_utc())
            .unwrap();
        assert_eq!(for_1001.len(), 2);
        assert_eq!(
            for_1001[0], published[0],
            "the same RSA key for every account"
        );
        let ed = &for_1001[1];
        assert_eq!(ed.account.as_deref(), Some("1001"));
        assert_eq!(ed.key_id, format!("{}:account:1001", s.ed25519.key_id()));
        assert_eq!(
            ed.standard_webhooks,
            Some(s.ed25519_for("1001").unwrap().whpk())
        );
        assert_ne!(ed.standard_webhooks, published[1].standard_webhooks);
        assert_eq!(
            again.ed25519_for("1001").unwrap().public_key_raw(),
            s.ed25519_for("1001").unwrap().public_key_raw(),
            "a second instance derives the same account key"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pkcs1_keys_load_and_garbage_is_rejected_clearly() {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let pem = generate_pem().unwrap();
        let k = rsa::PrivateKey::from_pkcs8_pem(&pem).unwrap();
        let pkcs1 = k.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap();
        let a = SigningKey::from_pem(&pem, Some("k"), "a").unwrap();
        let b = SigningKey::from_pem(&pkcs1, Some("k"), "b").unwrap();
        assert_eq!(a.public_key_der(), b.public_key_der());
        let err = SigningKey::from_pem("hello", None, "x.pem")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.pem") && err.contains("BEGIN PRIVATE KEY"),
            "{err}"
        );
        let err = SigningKey::from_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            None,
            "y.pem",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("y.pem") && err.contains("not a usable RSA"),
            "{err}"
        );
    }

    /// A stage starting while another writes the first key reads nothing or a whole key, never
    /// part of one (the file is written elsewhere, then linked into place).
    #[test]
    fn a_starting_stage_never_reads_half_a_key() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = std::env::temp_dir().join(format!("hookline-rsa-half-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut partial = 0;
        for round in 0..15 {
            let path = dir.join(format!("k{round}.pem"));
            let stop = AtomicBool::new(false);
            std::thread::scope(|s| {
                let reader = s.spawn(|| {
                    let mut seen = 0;
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(text) = std::fs::read_to_string(&path) {
                            if !text.trim_end().ends_with("-----END PRIVATE KEY-----") {
                                seen += 1;
                            }
                        }
                    }
                    seen
                });
                SigningKey::load_or_generate(&path, None).unwrap();
                stop.store(true, Ordering::Relaxed);
                partial += reader.join().unwrap();
            });
        }
        assert_eq!(partial, 0, "reads of an incomplete key file");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
