//! The checks of a `copernica` request (draft-cavage HTTP signatures): the Signature header
//! and what it covers, the Digest, the clock, the key, the account, and the verifier's verdict.

use std::time::SystemTime;

use hookline_signing::cavage::{digest_header, parse_signature_header, SignatureParams};
use hookline_signing::VerifyError;

use super::{Check, Head, Keys, Mark, Request, VerifyArgs};

/// Runs the checks: (the checks, the verifier's own verdict, the keyId the request names).
pub(super) fn checks(
    req: &Request,
    keys: &Keys,
    args: &VerifyArgs,
) -> (Vec<Check>, Result<(), String>, Option<String>) {
    let head = &req.head;
    let parsed = head.header("signature").map(parse_signature_header);
    let params = parsed.as_ref().and_then(|p| p.as_ref().ok());
    let mut checks = vec![
        match &parsed {
            None => Check::new("Signature header", Mark::Fail, "no Signature header"),
            Some(Err(e)) => Check::new("Signature header", Mark::Fail, e.to_string()),
            Some(Ok(p)) => signature_header(p),
        },
        signed_headers(head, params),
        digest(head, &req.body),
        date_skew(head, args),
    ];
    let key_id = params.map(|p| p.key_id.clone());
    let lookup = |id: &str| keys.any.clone().or_else(|| keys.by_id.get(id).cloned());
    checks.push(key_known(
        key_id.as_deref(),
        keys,
        lookup(key_id.as_deref().unwrap_or("")).is_some(),
    ));
    if let Some(account) = &args.account {
        checks.push(account_check(head, params, account));
    }
    let verdict = hookline_signing::verify_request(
        &req.method,
        &req.path,
        |n| head.header(n),
        &req.body,
        lookup,
    );
    checks.push(verdict_check(&verdict, &req.method, &req.path));
    let verdict = verdict.map(|_| ()).map_err(|e| e.to_string());
    (checks, verdict, key_id)
}

/// 1. The Signature header: its keyId and a supported algorithm.
fn signature_header(p: &SignatureParams) -> Check {
    let supported = p.algorithm.eq_ignore_ascii_case("rsa-sha256")
        || p.algorithm.eq_ignore_ascii_case("hs2019");
    Check::new(
        "Signature header",
        if supported { Mark::Ok } else { Mark::Fail },
        format!("keyId {:?}, algorithm {}", p.key_id, p.algorithm),
    )
}

/// The headers the signature covers are all in the request.
fn signed_headers(head: &Head, params: Option<&SignatureParams>) -> Check {
    const NAME: &str = "signed headers present";
    let Some(p) = params else {
        return Check::new(NAME, Mark::Skip, "no usable Signature header");
    };
    let missing: Vec<&str> = p
        .headers
        .iter()
        .filter(|h| *h != "(request-target)" && head.header(h).is_none())
        .map(String::as_str)
        .collect();
    let mut detail = p.headers.join(" ");
    if !p.headers.iter().any(|h| h == "digest") {
        detail.push_str(" (note: digest is not signed, so the body is not covered)");
    }
    if missing.is_empty() {
        Check::new(NAME, Mark::Ok, detail)
    } else {
        Check::new(
            NAME,
            Mark::Fail,
            format!(
                "missing from the request: {} (signed: {detail})",
                missing.join(", ")
            ),
        )
    }
}

/// 2. The body against the Digest header.
fn digest(head: &Head, body: &[u8]) -> Check {
    const NAME: &str = "digest matches body";
    let computed = digest_header(body);
    match head.header("digest") {
        None => Check::new(
            NAME,
            Mark::Fail,
            "no Digest header: nothing ties the body to the signature",
        ),
        Some(d) if d.trim() == computed => {
            Check::new(NAME, Mark::Ok, format!("{computed} ({} bytes)", body.len()))
        }
        Some(d) => Check::new(
            NAME,
            Mark::Fail,
            format!(
                "the Digest header says {}, the body ({} bytes) hashes to {computed}: the body is \
                 not the one that was signed (check against the raw bytes, before any parsing)",
                d.trim(),
                body.len()
            ),
        ),
    }
}

/// 3. The clock.
fn date_skew(head: &Head, args: &VerifyArgs) -> Check {
    const NAME: &str = "date skew";
    if args.ignore_date {
        return Check::new(NAME, Mark::Skip, "--ignore-date");
    }
    let Some(d) = head.header("date") else {
        return Check::new(NAME, Mark::Fail, "no Date header");
    };
    let Ok(when) = httpdate::parse_http_date(d) else {
        return Check::new(NAME, Mark::Fail, format!("Date {d:?} is not an HTTP date"));
    };
    let (skew, ahead) = match SystemTime::now().duration_since(when) {
        Ok(age) => (age, false),
        Err(e) => (e.duration(), true),
    };
    let shown = format!(
        "{} s {}",
        skew.as_secs(),
        if ahead { "ahead of this clock" } else { "old" }
    );
    if skew <= args.max_skew {
        Check::new(NAME, Mark::Ok, shown)
    } else {
        Check::new(
            NAME,
            Mark::Fail,
            format!(
                "Date is {shown}, more than {} s: receivers reject it (an old capture? \
                 use --ignore-date; a wrong clock? check NTP)",
                args.max_skew.as_secs()
            ),
        )
    }
}

/// 4. The key the Signature header names is among the published (or given) ones.
fn key_known(key_id: Option<&str>, keys: &Keys, found: bool) -> Check {
    const NAME: &str = "keyId known";
    match key_id {
        None => Check::new(NAME, Mark::Skip, "no usable Signature header"),
        Some(id) if found => Check::new(NAME, Mark::Ok, format!("{id} (from {})", keys.source)),
        Some(id) => {
            let mut known: Vec<&str> = keys.by_id.keys().map(String::as_str).collect();
            known.sort_unstable();
            Check::new(
                NAME,
                Mark::Fail,
                format!(
                    "{id:?} is not among the keys at {}: {}",
                    keys.source,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        }
    }
}

/// 6. The verdict of the project's verifier.
fn verdict_check(verdict: &Result<String, VerifyError>, method: &str, path: &str) -> Check {
    const NAME: &str = "signature valid";
    match verdict {
        Ok(id) => Check::new(
            NAME,
            Mark::Ok,
            format!(
                "verifies with {id} over `{} {path}`",
                method.to_ascii_lowercase()
            ),
        ),
        Err(VerifyError::BadSignature(id)) => Check::new(
            NAME,
            Mark::Fail,
            format!(
                "does not verify with {id}: a signed value differs from what was signed — the \
                 method and path (checked as `{} {path}`, see --method/--path), Host, or another \
                 signed header",
                method.to_ascii_lowercase()
            ),
        ),
        Err(e) => Check::new(
            NAME,
            Mark::Skip,
            format!("not checked: the verifier stopped earlier ({e})"),
        ),
    }
}

/// 5. The copernica profile's account check: `X-Copernica-ID` is signed and is `account_<id>`.
fn account_check(head: &Head, params: Option<&SignatureParams>, account: &str) -> Check {
    const NAME: &str = "signed for the account";
    let expected = format!("account_{account}");
    let signed = params.is_some_and(|p| p.headers.iter().any(|h| h == "x-copernica-id"));
    match head.header("x-copernica-id").map(str::trim) {
        _ if !signed => Check::new(
            NAME,
            Mark::Fail,
            "x-copernica-id is not among the signed headers, so nothing says which account the \
             request is for",
        ),
        Some(v) if v == expected => Check::new(NAME, Mark::Ok, format!("X-Copernica-ID {v}")),
        got => Check::new(
            NAME,
            Mark::Fail,
            format!(
                "X-Copernica-ID is {got:?}, not {expected:?}: Hookline signed this request for \
                 another account"
            ),
        ),
    }
}
