//! The signature headers receivers parse (`crates/signing`): the draft-cavage `Signature`
//! header (`parse_signature_header`, `verify_request`) and the Standard Webhooks
//! `webhook-signature` header (`standard_webhooks::verify`), plus the `whpk_` public key form.
//!
//! Beyond "no panic": a header that parses prints back (`keyId="…",algorithm="…",headers="…",
//! signature="…"`) to one that parses the same, and no header the fuzzer writes verifies: the
//! keys are made afresh in each process, so a header that verifies would be a forgery.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hookline_signing::cavage::{digest_header, parse_signature_header, SignatureParams};
use hookline_signing::standard_webhooks::{self, parse_whpk};
use hookline_signing::{verify_request, Ed25519Key, SigningKey};

use crate::{ensure, Broken, Verdict};

const BODY: &[u8] = br#"{"id":"evt-1","type":"click"}"#;
/// The receiver's clock and the `webhook-timestamp` of the Standard Webhooks request.
const NOW_SECS: u64 = 1_764_065_700;

/// The public halves of this process's keys: RSA (SubjectPublicKeyInfo DER) and Ed25519 (raw).
struct Keys {
    rsa_der: Vec<u8>,
    ed25519_raw: Vec<u8>,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rsa = hookline_signing::keys::generate_pem()
            .and_then(|pem| SigningKey::from_pem(&pem, Some("k1"), "fuzz"))
            .expect("a fresh RSA key");
        let ed = standard_webhooks::generate_pem()
            .and_then(|pem| Ed25519Key::from_pem(&pem, "fuzz"))
            .expect("a fresh Ed25519 key");
        Keys {
            rsa_der: rsa.public_key_der().to_vec(),
            ed25519_raw: ed.public_key_raw().to_vec(),
        }
    })
}

pub(crate) fn check(data: &[u8]) -> Result<Verdict, Broken> {
    // Header values reach the verifiers as text (`HeaderValue::to_str`, the CLI's arguments).
    let value = String::from_utf8_lossy(data);
    let _ = parse_whpk(&value);
    standard(&value)?;
    cavage(&value)
}

fn standard(value: &str) -> Result<(), Broken> {
    let headers = HashMap::from([
        (standard_webhooks::ID_HEADER, "msg_1".to_owned()),
        (standard_webhooks::TIMESTAMP_HEADER, NOW_SECS.to_string()),
        (standard_webhooks::SIGNATURE_HEADER, value.to_owned()),
    ]);
    let now = UNIX_EPOCH + Duration::from_secs(NOW_SECS);
    let verified = standard_webhooks::verify(
        |name| headers.get(name).map(String::as_str),
        BODY,
        &[&keys().ed25519_raw],
        now,
    );
    ensure(verified.is_err(), || {
        "a webhook-signature nobody made verified".into()
    })
}

fn cavage(value: &str) -> Result<Verdict, Broken> {
    let digest = digest_header(BODY);
    let headers = HashMap::from([
        ("signature", value),
        ("host", "127.0.0.1:8080"),
        ("date", "Tue, 25 Nov 2025 10:15:00 GMT"),
        ("x-copernica-id", "account_1001"),
        ("digest", digest.as_str()),
        ("x-nonce", "abcd"),
    ]);
    let verified = verify_request(
        "POST",
        "/in",
        |name| headers.get(name).copied(),
        BODY,
        |_| Some(keys().rsa_der.clone()),
    );
    ensure(verified.is_err(), || {
        "a Signature header nobody made verified".into()
    })?;
    let params = match parse_signature_header(value) {
        Ok(params) => params,
        Err(e) => return Ok(Verdict::Refused(e.to_string())),
    };
    let printed = print(&params);
    let again = parse_signature_header(&printed).map_err(|e| {
        Broken(format!(
            "{printed:?}, printed from a parsed header, is refused: {e}"
        ))
    })?;
    ensure(again == params, || {
        format!("{printed:?}, printed from a parsed header, parses differently")
    })?;
    Ok(Verdict::Accepted)
}

/// The header as a signer writes it.
fn print(p: &SignatureParams) -> String {
    format!(
        "keyId=\"{}\",algorithm=\"{}\",headers=\"{}\",signature=\"{}\"",
        p.key_id,
        p.algorithm,
        p.headers.join(" "),
        B64.encode(&p.signature)
    )
}
