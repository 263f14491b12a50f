//! `hookline verify-signature`: checks a request a receiver got, with the project's own
//! verifier (`hookline_signing::verify_request`), and says which part fails.
//!
//! The checks are listed one by one so that a receiver's author sees *what* differs: the body
//! (a framework that re-encodes it before the check), the clock, a header that a proxy dropped,
//! the key, the signed request line, or the account. With `--account`, a `copernica` request
//! must carry that account's signed `X-Copernica-ID`, and a `standard-webhooks` request
//! ([`standard`]) is verified with that account's Ed25519 key: a request Hookline signed for
//! another account is invalid.

mod copernica;
mod head;
mod standard;

use head::{parse_head, Head};

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use http::Method;
use serde_json::json;

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
    #[arg(long, default_value = "60s", value_parser = hookline_config::parse_duration)]
    max_skew: Duration,
    /// Skip the Date check (for a request captured a while ago).
    #[arg(long)]
    ignore_date: bool,
    /// The receiver's account id: the signed X-Copernica-ID must be `account_<ID>` (copernica
    /// profile), and Standard Webhooks requests verify with this account's key, fetched from
    /// `<keys URL>?account=<ID>`.
    #[arg(long, value_name = "ID")]
    account: Option<String>,
}

/// Public keys by keyId, and where they came from.
struct Keys {
    by_id: HashMap<String, Vec<u8>>,
    /// A key given as a file verifies whatever keyId the request names.
    any: Option<Vec<u8>>,
    /// Raw Ed25519 keys of the Standard Webhooks profile: the account's (from the API with
    /// `--account`), or a `whpk_` value given as a file.
    ed25519: Vec<Vec<u8>>,
    source: String,
}

fn keys_from_file(path: &PathBuf) -> anyhow::Result<Keys> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let source = path.display().to_string();
    if text
        .trim()
        .starts_with(hookline_signing::standard_webhooks::PUBLIC_KEY_PREFIX)
    {
        let raw = hookline_signing::standard_webhooks::parse_whpk(&text)
            .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
        return Ok(Keys {
            by_id: HashMap::new(),
            any: None,
            ed25519: vec![raw],
            source,
        });
    }
    Ok(Keys {
        by_id: HashMap::new(),
        any: Some(key_from_text(&text, path)?),
        ed25519: Vec::new(),
        source,
    })
}

fn key_from_text(text: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if text.contains("-----BEGIN") {
        let (label, der) = hookline_signing::keys::decode_pem(text)
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

async fn keys_from_url(url: &str, account: Option<&str>) -> anyhow::Result<Keys> {
    let mut parsed = url::Url::parse(url).with_context(|| format!("--key-url {url:?}"))?;
    if let Some(a) = account {
        parsed.query_pairs_mut().append_pair("account", a);
    }
    let url = parsed.to_string();
    let url = url.as_str();
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
    let mut ed25519 = Vec::new();
    for k in list {
        if k["algorithm"] == "ed25519" {
            // Only the asked account's key: never the master, never another account's.
            let whpk = k["standard_webhooks"].as_str();
            if let (Some(whpk), Some(a)) = (whpk, account) {
                if k["account"] == a {
                    ed25519.extend(hookline_signing::standard_webhooks::parse_whpk(whpk).ok());
                }
            }
            continue;
        }
        if let (Some(id), Some(pem)) = (k["key_id"].as_str(), k["public_key_pem"].as_str()) {
            if let Some((_, der)) = hookline_signing::keys::decode_pem(pem) {
                by_id.insert(id.to_owned(), der);
            }
        }
    }
    Ok(Keys {
        by_id,
        any: None,
        ed25519,
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

impl Check {
    fn new(name: &'static str, mark: Mark, detail: impl Into<String>) -> Self {
        Check {
            name,
            mark,
            detail: detail.into(),
        }
    }
}

/// The request under check.
struct Request {
    method: String,
    path: String,
    head: Head,
    body: Vec<u8>,
}

/// Runs the checks; exit code 0 when the request is valid, 1 when it is not.
pub async fn run(args: VerifyArgs, api_url: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    let req = read_request(&args)?;
    let keys = match &args.public_key {
        Some(file) => keys_from_file(file)?,
        None => {
            let url = args
                .key_url
                .clone()
                .unwrap_or_else(|| format!("{}/v1/keys", api_url.trim_end_matches('/')));
            keys_from_url(&url, args.account.as_deref()).await?
        }
    };
    let standard =
        req.head.header("signature").is_none() && req.head.header("webhook-signature").is_some();
    let (checks, verdict, key) = if standard {
        let checks = standard::checks(&req.head, &req.body, &keys, &args);
        let key = args
            .account
            .as_ref()
            .map(|a| format!("the key of account {a}"));
        (checks, Ok(()), key)
    } else {
        copernica::checks(&req, &keys, &args)
    };
    Ok(finish(&checks, verdict, &req, key, &keys.source, json_out))
}

/// The headers file, the body file, and the method and path (flags over the request line).
fn read_request(args: &VerifyArgs) -> anyhow::Result<Request> {
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
    Ok(Request {
        method,
        path,
        head,
        body,
    })
}

/// Prints the checks (a table, or JSON) and the verdict; exit code 0 when every check passed and
/// `verdict` (the verifier's own answer) is `Ok`.
fn finish(
    checks: &[Check],
    verdict: Result<(), String>,
    req: &Request,
    key_id: Option<String>,
    source: &str,
    json_out: bool,
) -> ExitCode {
    let (method, path, body) = (&req.method, &req.path, &req.body);
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
            "keys": source,
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
        for c in checks {
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
            (false, None) => println!("INVALID: {}", verdict.err().unwrap_or_default()),
        }
    }
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
