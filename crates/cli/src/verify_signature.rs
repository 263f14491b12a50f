//! `hookline verify-signature`: checks a request a receiver got, with the project's own
//! verifier (`hookline_signing::verify_request`), and says which part fails.
//!
//! The checks are listed one by one so that a receiver's author sees *what* differs: the body
//! (a framework that re-encodes it before the check), the clock, a header that a proxy dropped,
//! the key, or the signed request line.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;
use hookline_signing::cavage::{digest_header, parse_signature_header};
use hookline_signing::VerifyError;
use http::Method;
use serde_json::{json, Value};

use crate::api::Api;
use crate::table::{print_json, Table};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The request's headers: `Name: value` lines, optionally after the request line
    /// (`POST /hook HTTP/1.1`), as curl or a server log prints them; or a JSON object
    /// `{"name": "value"}` or list of `[name, value]` pairs.
    #[arg(long, value_name = "FILE")]
    headers_file: PathBuf,
    /// The request body, byte for byte as received.
    #[arg(long, value_name = "FILE")]
    body_file: PathBuf,
    /// Where the public keys are published (default: <api-url>/v1/keys).
    #[arg(long, value_name = "URL", conflicts_with = "public_key")]
    key_url: Option<String>,
    /// A public key file instead: PEM (`hookline keys list --pem`), or the DNS TXT value
    /// `v=DKIM1; k=rsa; p=...`.
    #[arg(long, value_name = "FILE")]
    public_key: Option<PathBuf>,
    /// The request's method (default: from the request line, else POST).
    #[arg(long)]
    method: Option<String>,
    /// The request's path and query (default: from the request line).
    #[arg(long)]
    path: Option<String>,
    /// How far the Date header may be from now, e.g. 60s, 5m.
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration)]
    max_skew: Duration,
    /// Skip the Date check (for a request captured a while ago).
    #[arg(long)]
    ignore_date: bool,
}

/// A captured request's head.
#[derive(Debug, Default, PartialEq)]
struct Head {
    method: Option<String>,
    path: Option<String>,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a headers file in any of the accepted shapes.
fn parse_head(text: &str) -> anyhow::Result<Head> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let v: Value =
            serde_json::from_str(trimmed).context("the headers file is not valid JSON")?;
        let mut head = Head::default();
        let as_str = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_owned),
            _ => None,
        };
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let v = as_str(&v)
                        .ok_or_else(|| anyhow::anyhow!("header {k:?}: expected a string"))?;
                    head.headers.push((k, v));
                }
            }
            Value::Array(items) => {
                for item in items {
                    let pair = match &item {
                        Value::Array(p) if p.len() == 2 => p[0].as_str().zip(p[1].as_str()),
                        Value::Object(o) => o["name"].as_str().zip(o["value"].as_str()),
                        _ => None,
                    };
                    let (k, v) = pair.ok_or_else(|| {
                        anyhow::anyhow!(
                            "expected [name, value] pairs in the headers file, got {item}"
                        )
                    })?;
                    head.headers.push((k.to_owned(), v.to_owned()));
                }
            }
            _ => unreachable!("starts with {{ or ["),
        }
        return Ok(head);
    }
    let mut head = Head::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if head.headers.is_empty() && head.method.is_none() {
                continue;
            }
            break; // the body, if the file has one, starts here
        }
        if head.headers.is_empty() && head.method.is_none() {
            if let Some((method, path)) = request_line(line) {
                head.method = Some(method);
                head.path = Some(path);
                continue;
            }
        }
        let (k, v) = line.split_once(':').ok_or_else(|| {
            anyhow::anyhow!("line {}: expected `Name: value`, got {line:?}", n + 1)
        })?;
        head.headers
            .push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(head)
}

/// `POST /hook?x=1 HTTP/1.1` → (POST, /hook?x=1).
fn request_line(line: &str) -> Option<(String, String)> {
    let mut parts = line.split_whitespace();
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next();
    let ok = method.bytes().all(|b| b.is_ascii_uppercase())
        && (target.starts_with('/') || target.contains("://"))
        && version.is_none_or(|v| v.starts_with("HTTP/"))
        && parts.next().is_none();
    if !ok {
        return None;
    }
    // An absolute-form target (proxies) signs only its path and query.
    let target = match url::Url::parse(target) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        },
        Err(_) => target.to_owned(),
    };
    Some((method.to_owned(), target))
}

/// Public keys by keyId, and where they came from.
struct Keys {
    by_id: HashMap<String, Vec<u8>>,
    /// A key given as a file verifies whatever keyId the request names.
    any: Option<Vec<u8>>,
    source: String,
}

fn key_from_file(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if text.contains("-----BEGIN") {
        let (label, der) = hookline_signing::keys::decode_pem(&text)
            .ok_or_else(|| anyhow::anyhow!("{}: the PEM block is malformed", path.display()))?;
        if label.contains("PRIVATE") {
            anyhow::bail!(
                "{} holds a private key; give the public key (`hookline keys list --pem` prints it)",
                path.display()
            );
        }
        return Ok(der);
    }
    // The DKIM-style TXT value: `v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>`.
    let p = text
        .split(';')
        .filter_map(|part| part.trim().strip_prefix("p="))
        .next()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: expected a PEM public key or a `v=DKIM1; k=rsa; p=...` value",
                path.display()
            )
        })?;
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(p.split_whitespace().collect::<String>())
        .with_context(|| format!("{}: the p= value is not base64", path.display()))
}

async fn keys_from_url(url: &str) -> anyhow::Result<Keys> {
    let parsed = url::Url::parse(url).with_context(|| format!("--key-url {url:?}"))?;
    let answer = Api::new(url, None)?
        .call(
            Method::GET,
            parsed,
            None,
            false,
            crate::api::DEFAULT_TIMEOUT,
        )
        .await?;
    let list = answer.body.as_array().ok_or_else(|| {
        anyhow::anyhow!("{url} did not answer a JSON list of keys (is it .../v1/keys?)")
    })?;
    let mut by_id = HashMap::new();
    for k in list {
        if let (Some(id), Some(pem)) = (k["key_id"].as_str(), k["public_key_pem"].as_str()) {
            if let Some((_, der)) = hookline_signing::keys::decode_pem(pem) {
                by_id.insert(id.to_owned(), der);
            }
        }
    }
    Ok(Keys {
        by_id,
        any: None,
        source: url.to_owned(),
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    Ok,
    Fail,
    Skip,
}

struct Check {
    name: &'static str,
    mark: Mark,
    detail: String,
}

/// Runs the checks; exit code 0 when the request is valid, 1 when it is not.
pub async fn run(args: VerifyArgs, api_url: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.headers_file)
        .with_context(|| format!("reading {}", args.headers_file.display()))?;
    let head = parse_head(&text).with_context(|| format!("{}", args.headers_file.display()))?;
    let body = std::fs::read(&args.body_file)
        .with_context(|| format!("reading {}", args.body_file.display()))?;
    let method = args
        .method
        .clone()
        .or_else(|| head.method.clone())
        .unwrap_or_else(|| "POST".to_owned());
    let path = args
        .path
        .clone()
        .or_else(|| head.path.clone())
        .ok_or_else(|| {
            anyhow::anyhow!(
            "{} has no request line (like `POST /hook HTTP/1.1`): give --path, the path and query \
             the request was sent to (it is signed)",
            args.headers_file.display()
        )
        })?;
    let keys = match &args.public_key {
        Some(file) => Keys {
            by_id: HashMap::new(),
            any: Some(key_from_file(file)?),
            source: file.display().to_string(),
        },
        None => {
            let url = args
                .key_url
                .clone()
                .unwrap_or_else(|| format!("{}/v1/keys", api_url.trim_end_matches('/')));
            keys_from_url(&url).await?
        }
    };

    let mut checks = Vec::new();
    let mut check = |name, mark, detail: String| checks.push(Check { name, mark, detail });

    // 1. The Signature header and what it covers.
    let params = head.header("signature").map(parse_signature_header);
    match &params {
        None => check("Signature header", Mark::Fail, "no Signature header".into()),
        Some(Err(e)) => check("Signature header", Mark::Fail, e.to_string()),
        Some(Ok(p)) => {
            let supported = p.algorithm.eq_ignore_ascii_case("rsa-sha256")
                || p.algorithm.eq_ignore_ascii_case("hs2019");
            check(
                "Signature header",
                if supported { Mark::Ok } else { Mark::Fail },
                format!("keyId {:?}, algorithm {}", p.key_id, p.algorithm),
            );
        }
    }
    match &params {
        Some(Ok(p)) => {
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
                check("signed headers present", Mark::Ok, detail);
            } else {
                check(
                    "signed headers present",
                    Mark::Fail,
                    format!(
                        "missing from the request: {} (signed: {detail})",
                        missing.join(", ")
                    ),
                );
            }
        }
        _ => check(
            "signed headers present",
            Mark::Skip,
            "no usable Signature header".into(),
        ),
    }

    // 2. The body against the Digest header.
    let computed = digest_header(&body);
    match head.header("digest") {
        None => check(
            "digest matches body",
            Mark::Fail,
            "no Digest header: nothing ties the body to the signature".into(),
        ),
        Some(d) if d.trim() == computed => check(
            "digest matches body",
            Mark::Ok,
            format!("{computed} ({} bytes)", body.len()),
        ),
        Some(d) => check(
            "digest matches body",
            Mark::Fail,
            format!(
                "the Digest header says {}, the body ({} bytes) hashes to {computed}: the body is \
                 not the one that was signed (check against the raw bytes, before any parsing)",
                d.trim(),
                body.len()
            ),
        ),
    }

    // 3. The clock.
    if args.ignore_date {
        check("date skew", Mark::Skip, "--ignore-date".into());
    } else {
        match head
            .header("date")
            .map(|d| (d, httpdate::parse_http_date(d)))
        {
            None => check("date skew", Mark::Fail, "no Date header".into()),
            Some((d, Err(_))) => check(
                "date skew",
                Mark::Fail,
                format!("Date {d:?} is not an HTTP date"),
            ),
            Some((_, Ok(when))) => {
                let now = SystemTime::now();
                let (skew, ahead) = match now.duration_since(when) {
                    Ok(age) => (age, false),
                    Err(e) => (e.duration(), true),
                };
                let shown = format!(
                    "{} s {}",
                    skew.as_secs(),
                    if ahead { "ahead of this clock" } else { "old" }
                );
                if skew <= args.max_skew {
                    check("date skew", Mark::Ok, shown);
                } else {
                    check(
                        "date skew",
                        Mark::Fail,
                        format!(
                            "Date is {shown}, more than {} s: receivers reject it (an old capture? \
                             use --ignore-date; a wrong clock? check NTP)",
                            args.max_skew.as_secs()
                        ),
                    );
                }
            }
        }
    }

    // 4. The key.
    let key_id = params
        .as_ref()
        .and_then(|p| p.as_ref().ok())
        .map(|p| p.key_id.clone());
    let lookup = |id: &str| keys.any.clone().or_else(|| keys.by_id.get(id).cloned());
    match &key_id {
        None => check(
            "keyId known",
            Mark::Skip,
            "no usable Signature header".into(),
        ),
        Some(id) if lookup(id).is_some() => check(
            "keyId known",
            Mark::Ok,
            format!("{id} (from {})", keys.source),
        ),
        Some(id) => {
            let mut known: Vec<&str> = keys.by_id.keys().map(String::as_str).collect();
            known.sort_unstable();
            check(
                "keyId known",
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
            );
        }
    }

    // 5. The verdict of the project's verifier.
    let verdict =
        hookline_signing::verify_request(&method, &path, |n| head.header(n), &body, lookup);
    match &verdict {
        Ok(id) => check(
            "signature valid",
            Mark::Ok,
            format!(
                "verifies with {id} over `{} {path}`",
                method.to_ascii_lowercase()
            ),
        ),
        Err(VerifyError::BadSignature(id)) => check(
            "signature valid",
            Mark::Fail,
            format!(
                "does not verify with {id}: a signed value differs from what was signed — the \
                 method and path (checked as `{} {path}`, see --method/--path), Host, or another \
                 signed header",
                method.to_ascii_lowercase()
            ),
        ),
        Err(e) => check(
            "signature valid",
            Mark::Skip,
            format!("not checked: the verifier stopped earlier ({e})"),
        ),
    }

    let valid = verdict.is_ok() && checks.iter().all(|c| c.mark != Mark::Fail);
    let reason = checks
        .iter()
        .find(|c| c.mark == Mark::Fail)
        .map(|c| format!("{}: {}", c.name, c.detail));
    if json_out {
        print_json(&json!({
            "valid": valid,
            "method": method,
            "path": path,
            "key_id": key_id,
            "keys": keys.source,
            "checks": checks.iter().map(|c| json!({
                "check": c.name,
                "result": match c.mark { Mark::Ok => "ok", Mark::Fail => "fail", Mark::Skip => "skipped" },
                "detail": c.detail,
            })).collect::<Vec<_>>(),
            "reason": reason,
        }));
    } else {
        println!("checking {method} {path} ({} bytes of body)", body.len());
        let mut t = Table::new(&["RESULT", "CHECK", "DETAIL"]);
        for c in &checks {
            let mark = match c.mark {
                Mark::Ok => "ok",
                Mark::Fail => "FAIL",
                Mark::Skip => "skip",
            };
            t.row(vec![mark.into(), c.name.into(), c.detail.clone()]);
        }
        t.print();
        match (valid, &reason) {
            (true, _) => println!(
                "VALID: signed by {} and unchanged",
                key_id.as_deref().unwrap_or("?")
            ),
            (false, Some(r)) => println!("INVALID: {r}"),
            (false, None) => println!(
                "INVALID: {}",
                verdict.err().map_or_else(String::new, |e| e.to_string())
            ),
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_headers_with_a_request_line_parse() {
        let head = parse_head(
            "POST /hook.php?x=1 HTTP/1.1\r\nHost: d.example\r\nDigest: sha-256=abc\r\n\r\nbody",
        )
        .unwrap();
        assert_eq!(head.method.as_deref(), Some("POST"));
        assert_eq!(head.path.as_deref(), Some("/hook.php?x=1"));
        assert_eq!(head.header("host"), Some("d.example"));
        assert_eq!(head.header("DIGEST"), Some("sha-256=abc"));
        assert_eq!(
            head.headers.len(),
            2,
            "the body after the blank line is not a header"
        );
    }

    #[test]
    fn json_headers_parse_as_objects_or_pairs() {
        let a = parse_head(r#"{"Host": "d.example", "Date": ["Wed, 25 Nov 2026 10:15:00 GMT"]}"#)
            .unwrap();
        assert_eq!(a.header("date"), Some("Wed, 25 Nov 2026 10:15:00 GMT"));
        let b =
            parse_head(r#"[["host", "d.example"], {"name": "x-nonce", "value": "n"}]"#).unwrap();
        assert_eq!(b.header("x-nonce"), Some("n"));
        assert!(b.method.is_none());
    }

    #[test]
    fn a_line_without_a_colon_is_reported_with_its_number() {
        let e = parse_head("Host: a\nnonsense\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn absolute_form_targets_sign_their_path() {
        assert_eq!(
            request_line("POST http://d.example/a?b=1 HTTP/1.1"),
            Some(("POST".into(), "/a?b=1".into()))
        );
        assert_eq!(request_line("Host: x"), None);
    }
}
