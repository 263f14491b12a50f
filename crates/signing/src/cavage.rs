//! The draft-cavage HTTP Signature profile Copernica uses (`draft-cavage-http-signatures-10`
//! to `-12`): `Signature: keyId="…",algorithm="rsa-sha256",headers="(request-target) host date
//! x-copernica-id digest x-nonce",signature="…"`.
//!
//! The signing string is one line per listed header, `name: value` with the name lower-case,
//! joined by `\n` without a trailing newline; `(request-target)` is the lower-case method, a
//! space, and the path with query. `Digest` is `sha-256=<base64>` with the algorithm token in
//! lower case, as Copernica's PHP verifier requires.

use std::time::SystemTime;

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::keys::SigningKey;

/// The headers covered by the signature, in order.
pub const SIGNED_HEADERS: &str = "(request-target) host date x-copernica-id digest x-nonce";

/// What is signed of one request.
#[derive(Debug, Clone, Copy)]
pub struct RequestToSign<'a> {
    pub method: &'a str,
    /// Path and query as sent on the request line, e.g. `/hook.php?x=1`.
    pub path_and_query: &'a str,
    /// The `Host` header value (with the port when it is not the scheme's default).
    pub host: &'a str,
    /// The `X-Copernica-ID` header value, e.g. `account_1001`.
    pub copernica_id: &'a str,
    pub body: &'a [u8],
}

/// The headers to add to the request. A fresh `Date` and nonce each time: receivers reject old
/// dates, so every attempt is signed anew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub date: String,
    pub digest: String,
    pub nonce: String,
    pub signature: String,
}

/// `sha-256=<base64 SHA-256(body)>`.
pub fn digest_header(body: &[u8]) -> String {
    format!("sha-256={}", B64.encode(digest(&SHA256, body).as_ref()))
}

/// The signing string for the fixed header list.
pub fn signing_string(req: &RequestToSign<'_>, date: &str, digest: &str, nonce: &str) -> String {
    format!(
        "(request-target): {} {}\nhost: {}\ndate: {}\nx-copernica-id: {}\ndigest: {}\nx-nonce: {}",
        req.method.to_ascii_lowercase(),
        req.path_and_query,
        req.host,
        date,
        req.copernica_id,
        digest,
        nonce
    )
}

/// Signs `req` now. CPU-bound (about a millisecond): call from a blocking thread.
pub fn sign_request(key: &SigningKey, req: &RequestToSign<'_>) -> SignedHeaders {
    sign_request_at(key, req, SystemTime::now(), &new_nonce())
}

/// Signs with a given time and nonce (tests, reproducible examples).
pub fn sign_request_at(
    key: &SigningKey,
    req: &RequestToSign<'_>,
    at: SystemTime,
    nonce: &str,
) -> SignedHeaders {
    let date = httpdate::fmt_http_date(at);
    let digest = digest_header(req.body);
    let string = signing_string(req, &date, &digest, nonce);
    let sig = B64.encode(key.sign(string.as_bytes()));
    let signature = format!(
        "keyId=\"{}\",algorithm=\"rsa-sha256\",headers=\"{SIGNED_HEADERS}\",signature=\"{sig}\"",
        key.key_id()
    );
    SignedHeaders {
        date,
        digest,
        nonce: nonce.to_owned(),
        signature,
    }
}

/// 32 hex digits from the system CSPRNG.
pub fn new_nonce() -> String {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).expect("system randomness");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Why a signed request does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no Signature header")]
    MissingSignature,
    #[error("Signature header is malformed: {0}")]
    Malformed(String),
    #[error("unsupported algorithm {0:?}; expected rsa-sha256")]
    Algorithm(String),
    #[error("signed header {0:?} is missing from the request")]
    MissingHeader(String),
    #[error("Digest header does not match the body")]
    DigestMismatch,
    #[error("the signature does not verify with the key {0:?}")]
    BadSignature(String),
    #[error("unknown keyId {0:?}")]
    UnknownKey(String),
}

/// The parameters of a `Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    pub key_id: String,
    pub algorithm: String,
    pub headers: Vec<String>,
    pub signature: Vec<u8>,
}

/// Parses `keyId="…",algorithm="…",headers="…",signature="…"`.
pub fn parse_signature_header(value: &str) -> Result<SignatureParams, VerifyError> {
    let mut key_id = None;
    let mut algorithm = None;
    let mut headers = None;
    let mut signature = None;
    let mut rest = value.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| {
            VerifyError::Malformed(format!("expected name=\"value\" at {rest:?}"))
        })?;
        let name = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let after = after
            .strip_prefix('"')
            .ok_or_else(|| VerifyError::Malformed(format!("value of {name} must be quoted")))?;
        let close = after
            .find('"')
            .ok_or_else(|| VerifyError::Malformed(format!("unterminated value of {name}")))?;
        let val = after[..close].to_owned();
        match name {
            "keyId" => key_id = Some(val),
            "algorithm" => algorithm = Some(val),
            "headers" => headers = Some(val),
            "signature" => signature = Some(val),
            _ => {}
        }
        rest = after[close + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    let signature = B64
        .decode(signature.ok_or_else(|| VerifyError::Malformed("no signature parameter".into()))?)
        .map_err(|_| VerifyError::Malformed("signature is not base64".into()))?;
    Ok(SignatureParams {
        key_id: key_id.ok_or_else(|| VerifyError::Malformed("no keyId parameter".into()))?,
        algorithm: algorithm.unwrap_or_else(|| "rsa-sha256".into()),
        headers: headers
            .unwrap_or_else(|| "date".into())
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect(),
        signature,
    })
}

/// Verifies a received request. `header` looks up a request header by lower-case name;
/// `public_key_der` maps a keyId to its SubjectPublicKeyInfo DER.
pub fn verify_request<'a>(
    method: &str,
    path_and_query: &str,
    header: impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
    public_key_der: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<String, VerifyError> {
    let params = parse_signature_header(header("signature").ok_or(VerifyError::MissingSignature)?)?;
    if !params.algorithm.eq_ignore_ascii_case("rsa-sha256")
        && !params.algorithm.eq_ignore_ascii_case("hs2019")
    {
        return Err(VerifyError::Algorithm(params.algorithm));
    }
    let mut lines = Vec::with_capacity(params.headers.len());
    for h in &params.headers {
        if h == "(request-target)" {
            lines.push(format!(
                "(request-target): {} {}",
                method.to_ascii_lowercase(),
                path_and_query
            ));
        } else {
            let v = header(h).ok_or_else(|| VerifyError::MissingHeader(h.clone()))?;
            lines.push(format!("{h}: {}", v.trim()));
        }
    }
    if let Some(d) = header("digest") {
        if d.trim() != digest_header(body) {
            return Err(VerifyError::DigestMismatch);
        }
    }
    let der = public_key_der(&params.key_id)
        .ok_or_else(|| VerifyError::UnknownKey(params.key_id.clone()))?;
    let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der);
    key.verify(lines.join("\n").as_bytes(), &params.signature)
        .map_err(|_| VerifyError::BadSignature(params.key_id.clone()))?;
    Ok(params.key_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::{Duration, UNIX_EPOCH};

    fn key() -> SigningKey {
        SigningKey::from_pem(&crate::keys::generate_pem().unwrap(), Some("k1"), "test").unwrap()
    }

    #[test]
    fn signing_string_has_the_documented_shape() {
        let req = RequestToSign {
            method: "POST",
            path_and_query: "/hook.php?a=1",
            host: "d.example",
            copernica_id: "account_1001",
            body: b"x=1",
        };
        let s = signing_string(&req, "Wed, 25 Nov 2026 10:15:00 GMT", "sha-256=abc", "n1");
        assert_eq!(
            s,
            "(request-target): post /hook.php?a=1\nhost: d.example\ndate: Wed, 25 Nov 2026 10:15:00 GMT\nx-copernica-id: account_1001\ndigest: sha-256=abc\nx-nonce: n1"
        );
        // SHA-256("") is well known.
        assert_eq!(
            digest_header(b""),
            "sha-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn signatures_verify_here_and_with_the_independent_rsa_crate() {
        let k = key();
        let body = br#"{"id":"evt-1"}"#;
        let req = RequestToSign {
            method: "POST",
            path_and_query: "/in",
            host: "127.0.0.1:8080",
            copernica_id: "account_7",
            body,
        };
        let at = UNIX_EPOCH + Duration::from_secs(1_764_065_700);
        let h = sign_request_at(&k, &req, at, "abcd");
        assert_eq!(h.date, "Tue, 25 Nov 2025 10:15:00 GMT");
        assert!(h.signature.starts_with("keyId=\"k1\",algorithm=\"rsa-sha256\",headers=\"(request-target) host date x-copernica-id digest x-nonce\",signature=\""));

        let mut headers = HashMap::new();
        headers.insert("signature", h.signature.as_str());
        headers.insert("host", "127.0.0.1:8080");
        headers.insert("date", h.date.as_str());
        headers.insert("x-copernica-id", "account_7");
        headers.insert("digest", h.digest.as_str());
        headers.insert("x-nonce", "abcd");
        let der = k.public_key_der().to_vec();
        let ok = verify_request(
            "POST",
            "/in",
            |n| headers.get(n).copied(),
            body,
            |id| (id == "k1").then(|| der.clone()),
        );
        assert_eq!(ok, Ok("k1".to_owned()));

        // Tampering with the body, a signed header, or the path fails.
        let bad = verify_request(
            "POST",
            "/in",
            |n| headers.get(n).copied(),
            b"{}",
            |_| Some(der.clone()),
        );
        assert_eq!(bad, Err(VerifyError::DigestMismatch));
        let bad = verify_request(
            "POST",
            "/other",
            |n| headers.get(n).copied(),
            body,
            |_| Some(der.clone()),
        );
        assert_eq!(bad, Err(VerifyError::BadSignature("k1".into())));

        // Independent check with RustCrypto's `rsa` (a different RSA implementation).
        use rsa::pkcs1v15::{Signature, VerifyingKey};
        use rsa::pkcs8::DecodePublicKey;
        use rsa::signature::Verifier;
        let public = rsa::PublicKey::from_public_key_der(&der).unwrap();
        let vk = VerifyingKey::<sha2::Sha256>::new(public);
        let params = parse_signature_header(&h.signature).unwrap();
        let sig = Signature::try_from(params.signature.as_slice()).unwrap();
        let string = signing_string(&req, &h.date, &h.digest, "abcd");
        vk.verify(string.as_bytes(), &sig)
            .expect("rsa crate verifies the aws-lc-rs signature");
    }

    #[test]
    fn malformed_signature_headers_are_explained() {
        assert!(
            matches!(parse_signature_header("keyId=k"), Err(VerifyError::Malformed(m)) if m.contains("quoted"))
        );
        assert!(
            matches!(parse_signature_header("keyId=\"k\""), Err(VerifyError::Malformed(m)) if m.contains("signature"))
        );
    }
}
