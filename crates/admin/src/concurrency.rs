//! Optimistic concurrency for subscriptions: `ETag` out, `If-Match` in, 412 on a stale version.
//!
//! Every subscription carries `version` (1 when created, one more on each write of this API).
//! Its entity tag is `"<version>-<fingerprint>"`, the fingerprint being the first 8 bytes of the
//! SHA-256 of the record as stored. The fingerprint makes the tag change on writes that do not
//! count a version too (the sender disabling a subscription after a 410, other tooling), so a
//! client never edits on top of a state it has not seen.
//!
//! `If-Match` is optional: without it a write applies to the current version (last writer
//! wins, as before). With it, the write applies only when the subscription's current tag is
//! one of those listed, or the header is `*`; otherwise it answers 412 `version_mismatch` and
//! changes nothing. Weak tags (`W/"…"`) never match: `If-Match` compares strongly (RFC 9110).
//!
//! Within one instance the check and the write are atomic: writers of the same subscription
//! queue on one of [`WriteLocks`]' mutexes. Kafka has no compare-and-set, so two *instances*
//! can still both pass the check within the follower's lag (normally well under a second).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use hookline_model::Subscription;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The entity tag of `sub`, quotes included (`"3-1a2b3c4d5e6f7081"`).
pub fn etag(sub: &Subscription) -> String {
    let bytes = serde_json::to_vec(sub).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    let mut fingerprint = String::with_capacity(16);
    for b in &digest[..8] {
        fingerprint.push_str(&format!("{b:02x}"));
    }
    format!("\"{}-{fingerprint}\"", sub.version)
}

/// The `ETag` header for `sub`.
pub fn etag_header(sub: &Subscription) -> (header::HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(&etag(sub)).unwrap_or(HeaderValue::from_static("\"0\""));
    (header::ETAG, value)
}

/// Refuses the request with 412 when it carries `If-Match` and `sub`'s tag is not among it.
pub fn check_if_match(headers: &HeaderMap, sub: &Subscription) -> Result<(), ApiError> {
    let mut values = headers.get_all(header::IF_MATCH).iter().peekable();
    if values.peek().is_none() {
        return Ok(());
    }
    let current = etag(sub);
    let mut sent = Vec::new();
    for v in values {
        let text = v.to_str().map_err(|_| {
            ApiError::invalid("If-Match", "If-Match must be ASCII: entity tags or *")
        })?;
        for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if tag == "*" || tag == current {
                return Ok(());
            }
            sent.push(tag.to_owned());
        }
    }
    Err(ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "version_mismatch",
        format!(
            "subscription {} has changed since you read it: If-Match {} does not match its \
             current ETag {current} (version {}); GET it again, reapply your change, and send \
             the new ETag",
            sub.id,
            sent.join(", "),
            sub.version
        ),
    )
    .with_details(json!({"etag": current, "version": sub.version})))
}

/// How many mutexes writes are spread over.
const STRIPES: usize = 64;

/// Serialises check-then-write per subscription on this instance: ids hash onto a fixed set of
/// mutexes, so memory stays constant however many subscriptions there are.
pub struct WriteLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl Default for WriteLocks {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }
}

impl WriteLocks {
    /// Waits for the lock of subscription `id`; hold the guard from the read to the write.
    pub async fn lock(&self, id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let digest = Sha256::digest(id.as_bytes());
        let stripe = usize::from(digest[0]) % self.stripes.len();
        self.stripes[stripe].lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(version: u64) -> Subscription {
        let mut s: Subscription = serde_json::from_value(json!({"id": "s1", "account": "1001",
            "database": "12", "events": ["click"], "url": "https://h.example/in",
            "status": "active"}))
        .unwrap();
        s.version = version;
        s
    }

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn if_match_compares_strongly_and_accepts_lists_and_star() {
        let s = sub(3);
        let tag = etag(&s);
        assert!(
            tag.starts_with("\"3-") && tag.len() == "\"3-\"".len() + 16,
            "{tag}"
        );
        assert!(check_if_match(&HeaderMap::new(), &s).is_ok());
        assert!(check_if_match(&with(&tag), &s).is_ok());
        assert!(check_if_match(&with("*"), &s).is_ok());
        assert!(check_if_match(&with(&format!("\"1-00\", {tag}")), &s).is_ok());
        let stale = check_if_match(&with(&etag(&sub(2))), &s).unwrap_err();
        assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
        assert_eq!(stale.code, "version_mismatch");
        assert!(check_if_match(&with(&format!("W/{tag}")), &s).is_err());
    }

    #[test]
    fn the_tag_changes_with_the_content_even_when_the_version_does_not() {
        let a = sub(3);
        let mut b = sub(3);
        b.status = hookline_model::SubscriptionStatus::Disabled;
        assert_ne!(etag(&a), etag(&b));
        assert_eq!(etag(&a), etag(&sub(3)));
    }
}
