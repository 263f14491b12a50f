//! The checks of a `standard-webhooks` request: its three headers, the clock, the account's key
//! and the Ed25519 signature over `{webhook-id}.{webhook-timestamp}.{body}`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookline_signing::standard_webhooks::{
    self, StandardVerifyError, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, TOLERANCE,
};

use super::{Check, Head, Keys, Mark, VerifyArgs};

/// Runs the checks; the request is valid when none fails.
pub(super) fn checks(head: &Head, body: &[u8], keys: &Keys, args: &VerifyArgs) -> Vec<Check> {
    let (clock, now) = timestamp_skew(head, args);
    let whose = args.account.as_ref().map_or_else(
        || "the given key".to_owned(),
        |a| format!("account {a}'s key"),
    );
    vec![
        webhook_headers(head),
        clock,
        account_key(keys, args, &whose),
        signature(head, body, keys, now, &whose),
    ]
}

/// The three headers are there.
fn webhook_headers(head: &Head) -> Check {
    let missing: Vec<&str> = [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER]
        .into_iter()
        .filter(|h| head.header(h).is_none())
        .collect();
    if missing.is_empty() {
        Check::new(
            "webhook headers",
            Mark::Ok,
            format!("webhook-id {}", head.header(ID_HEADER).unwrap_or_default()),
        )
    } else {
        Check::new(
            "webhook headers",
            Mark::Fail,
            format!("missing from the request: {}", missing.join(", ")),
        )
    }
}

/// The clock: the verifier checks the timestamp against `now` (returned); with --ignore-date,
/// `now` is the request's own time.
fn timestamp_skew(head: &Head, args: &VerifyArgs) -> (Check, SystemTime) {
    const NAME: &str = "timestamp skew";
    let sent = head
        .header(TIMESTAMP_HEADER)
        .and_then(|t| t.trim().parse::<u64>().ok())
        .map(|s| UNIX_EPOCH + Duration::from_secs(s));
    match (args.ignore_date, sent) {
        (true, Some(at)) => (Check::new(NAME, Mark::Skip, "--ignore-date"), at),
        (_, None) => (
            Check::new(
                NAME,
                Mark::Fail,
                "webhook-timestamp is not integer unix seconds",
            ),
            SystemTime::now(),
        ),
        (false, Some(at)) => {
            let now = SystemTime::now();
            let skew = now
                .duration_since(at)
                .unwrap_or_else(|e| e.duration())
                .as_secs();
            let mark = if skew <= TOLERANCE.as_secs() {
                Mark::Ok
            } else {
                Mark::Fail
            };
            let detail = format!(
                "{skew} s from this clock (at most {} s)",
                TOLERANCE.as_secs()
            );
            (Check::new(NAME, mark, detail), now)
        }
    }
}

/// The account's Ed25519 key is known.
fn account_key(keys: &Keys, args: &VerifyArgs, whose: &str) -> Check {
    if !keys.ed25519.is_empty() {
        return Check::new(
            "account key",
            Mark::Ok,
            format!("{whose} (from {})", keys.source),
        );
    }
    Check::new(
        "account key",
        Mark::Fail,
        match &args.account {
            Some(a) => format!("{} lists no Ed25519 key of account {a}", keys.source),
            None => "give --account (every account has its own Standard Webhooks key) or \
                     --public-key with the whpk_ value"
                .into(),
        },
    )
}

/// The Ed25519 signature over `{webhook-id}.{webhook-timestamp}.{body}`.
fn signature(head: &Head, body: &[u8], keys: &Keys, now: SystemTime, whose: &str) -> Check {
    let raw: Vec<&[u8]> = keys.ed25519.iter().map(Vec::as_slice).collect();
    match standard_webhooks::verify(|n| head.header(n), body, &raw, now) {
        Ok(()) => Check::new(
            "signature valid",
            Mark::Ok,
            format!("verifies with {whose}"),
        ),
        Err(StandardVerifyError::BadSignature) if !raw.is_empty() => Check::new(
            "signature valid",
            Mark::Fail,
            format!(
                "does not verify with {whose}: signed for another account, or the body, \
                 webhook-id or webhook-timestamp changed after signing"
            ),
        ),
        Err(e) => Check::new("signature valid", Mark::Fail, e.to_string()),
    }
}
