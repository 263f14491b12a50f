//! Section 1, the signing ceiling. Every delivery attempt is signed anew with RSA-2048, which
//! costs far more CPU than anything else the pipeline does per event, so signatures per second
//! on one core bound the throughput of a sender core. Measured with aws-lc-rs (what Hookline
//! signs with), with RustCrypto's pure-Rust `rsa` as the reference that motivated the choice,
//! and as the full draft-cavage `sign_request` (digest, date, nonce, signing string, base64).

use std::hint::black_box;
use std::time::Duration;

use anyhow::Context;
use hookline_signing::cavage::{sign_request, signing_string, RequestToSign};
use hookline_signing::SigningKey;

use crate::table::{pct, Row};
use crate::timing::{best_of, ROUNDS};

const SECTION: &str = "signing";

/// What later sections compare against.
#[derive(Debug, Clone, Copy)]
pub struct SigningCeiling {
    /// Complete draft-cavage signatures per second on one core: the per-core pipeline bound.
    pub cavage_per_core: f64,
}

/// Measures for `budget` per row, best of [`ROUNDS`]. `body` is the request body the cavage row signs.
pub fn run(budget: Duration, body: &[u8]) -> anyhow::Result<(Vec<Row>, SigningCeiling)> {
    let pem = hookline_signing::keys::generate_pem().context("generating an RSA-2048 key")?;
    let key = SigningKey::from_pem(&pem, Some("bench"), "generated")?;
    let req = RequestToSign {
        method: "POST",
        path_and_query: "/copernica/webhook.php?source=hookline",
        host: "hooks.example.com",
        copernica_id: "account_1001",
        body,
    };
    // The string a real attempt signs, so the digest input has the real length.
    let message = signing_string(
        &req,
        "Wed, 25 Nov 2026 10:15:00 GMT",
        &hookline_signing::cavage::digest_header(body),
        &hookline_signing::cavage::new_nonce(),
    );
    let message = message.as_bytes();

    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    let reference = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(
        rsa::PrivateKey::from_pkcs8_pem(&pem).context("RustCrypto rsa parses the key")?,
    );
    // PKCS#1 v1.5 is deterministic: both libraries must produce the same bytes, which shows
    // the two rows measure the same operation.
    anyhow::ensure!(
        key.sign(message) == reference.sign(message).to_vec(),
        "aws-lc-rs and RustCrypto rsa disagree on a PKCS#1 v1.5 signature"
    );

    let mut aws = || {
        black_box(key.sign(black_box(message)));
    };
    let mut rust = || {
        black_box(reference.sign(black_box(message)));
    };
    let mut cavage = || {
        black_box(sign_request(&key, black_box(&req)));
    };
    let [aws, rust, cavage] = best_of(ROUNDS, budget, &mut [&mut aws, &mut rust, &mut cavage])[..]
    else {
        unreachable!("one rate per op")
    };

    let rows = vec![
        Row::num(
            SECTION,
            "RSA-2048 PKCS#1 v1.5 SHA-256, aws-lc-rs",
            aws,
            "sig/s/core",
        )
        .vs("ceiling"),
        Row::num(
            SECTION,
            "same, RustCrypto rsa 0.10 (reference)",
            rust,
            "sig/s/core",
        )
        .vs(format!(
            "{} of aws-lc-rs (aws-lc-rs {:.1}x faster)",
            pct(rust, aws),
            aws / rust
        )),
        Row::num(
            SECTION,
            "draft-cavage sign_request (aws-lc-rs)",
            cavage,
            "req/s/core",
        )
        .vs(format!("{} of raw RSA; pipeline bound", pct(cavage, aws))),
    ];
    Ok((
        rows,
        SigningCeiling {
            cavage_per_core: cavage,
        },
    ))
}
