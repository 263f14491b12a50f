//! Signing for Hookline webhooks.
//!
//! - [`keys`]: RSA signing keys: load PEM (PKCS#8 or PKCS#1), generate on first run, publish
//!   the public half (PEM, and the DKIM-style DNS TXT value Copernica's PHP verifier reads);
//!   [`Signers`], the RSA and Ed25519 keys a stage loads together.
//! - [`keyfile`]: private key files written whole (temporary file, then link or rename), the
//!   key id a rotated key's file records, and a warning for files others can read.
//! - [`pool`]: the bounded pool of signing threads (one per core) RSA signatures run on.
//! - [`rotation`]: key rotation with overlap: a retired key stays published until it expires.
//! - [`cavage`]: the draft-cavage HTTP Signature Copernica sends: rsa-sha256 over
//!   `(request-target) host date x-copernica-id digest x-nonce`, plus `Digest` and `X-Nonce`;
//!   and a verifier for receivers, tests and the CLI.
//! - [`standard_webhooks`]: the Standard Webhooks profile a subscription may choose instead:
//!   `webhook-id`, `webhook-timestamp`, `webhook-signature: v1a,<Ed25519>`; the Ed25519 key
//!   (`<signing key>.ed25519.pem`), published as `whpk_…`; and a verifier.
//! - [`account_keys`]: the per-account Ed25519 keys of that profile, derived from that key
//!   (HKDF-SHA256 keyed by the account id), so a signature made for one account never verifies
//!   with another account's key.
//! - [`ed25519_rotation`]: rotation of that master with overlap: the retired master keeps
//!   signing (a second `v1a` signature) and stays published until it expires.
//!
//! Why aws-lc-rs: RSA-2048 signing is the cost that bounds the pipeline. aws-lc-rs is
//! constant-time, is rustls' default provider (one crypto library for TLS and signing), and
//! signs several times faster than the pure-Rust `rsa` crate (see `docs/benchmarks.md`); `rsa`
//! remains as an independent reference verifier in tests.

pub mod account_keys;
pub mod cavage;
pub mod ed25519_rotation;
pub mod keyfile;
pub mod keys;
pub mod pool;
pub mod rotation;
pub mod standard_webhooks;

pub use cavage::{sign_request, verify_request, RequestToSign, SignedHeaders, VerifyError};
pub use keys::{KeyError, PublicKeyInfo, Signers, SigningKey};
pub use standard_webhooks::Ed25519Key;
