//! A demo webhook receiver: verifies every POST's signature with the keys published at
//! `GET /v1/keys`, checks the `Digest` and the `Date`, and prints what arrived.
//!
//! For the README's walk-through it can also serve files to `GET` (`--files DIR`: publish a
//! verification file there) and keep each path's latest POST as `<path>.head` and `<path>.body`
//! (`--save-dir DIR`), which `hookline verify-signature` reads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use clap::Args;
use hookline_outbound::{HttpClient, HttpOptions, NetworkGuard};

#[derive(Debug, Args)]
pub struct ReceiverArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Where the admin API publishes the public keys.
    #[arg(
        long,
        env = "HOOKLINE_ADMIN_URL",
        default_value = "http://127.0.0.1:9400"
    )]
    admin_url: String,
    /// Answer `GET .../NAME` with the file NAME of this folder (e.g. a verification file).
    #[arg(long, value_name = "DIR")]
    files: Option<PathBuf>,
    /// Keep each path's latest POST here, as `<path>.head` (request line and headers) and
    /// `<path>.body` (the body byte for byte): `/hooks/first` → `hooks_first.head`.
    #[arg(long, value_name = "DIR")]
    save_dir: Option<PathBuf>,
}

#[derive(Clone)]
struct Receiver {
    files: Option<PathBuf>,
    save_dir: Option<PathBuf>,
    keys_url: String,
    client: HttpClient,
    keys: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

pub async fn run(args: ReceiverArgs) -> anyhow::Result<()> {
    let addr: SocketAddr = hookline_config::parse_listen_addr("--listen", &args.listen)?;
    // The demo receiver fetches keys from a local admin API: allow loopback for that call only.
    let guard = NetworkGuard::new(vec!["127.0.0.0/8".parse()?, "::1/128".parse()?]);
    if let Some(dir) = &args.save_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("--save-dir {}: {e}", dir.display()))?;
    }
    let state = Receiver {
        files: args.files.clone(),
        save_dir: args.save_dir.clone(),
        keys_url: format!("{}/v1/keys", args.admin_url.trim_end_matches('/')),
        client: HttpClient::new(
            guard,
            HttpOptions {
                max_response_bytes: 1 << 20,
                ..HttpOptions::default()
            },
        ),
        keys: Arc::default(),
    };
    let app = Router::new().fallback(handle).with_state(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "demo receiver listening on http://{}/ (verifying with {}/v1/keys)",
        listener.local_addr()?,
        args.admin_url
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

impl Receiver {
    async fn key(&self, key_id: &str) -> Option<Vec<u8>> {
        if let Some(k) = self.keys.lock().expect("keys lock").get(key_id) {
            return Some(k.clone());
        }
        let resp = self
            .client
            .request(Method::GET, &self.keys_url, vec![], Bytes::new())
            .await
            .ok()?;
        let list: Vec<serde_json::Value> = serde_json::from_slice(&resp.body).ok()?;
        let mut keys = self.keys.lock().expect("keys lock");
        for k in list {
            if let (Some(id), Some(pem)) = (k["key_id"].as_str(), k["public_key_pem"].as_str()) {
                if let Some((_, der)) = hookline_signing::keys::decode_pem(pem) {
                    keys.insert(id.to_owned(), der);
                }
            }
        }
        keys.get(key_id).cloned()
    }
}

async fn handle(
    State(r): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    if method == Method::GET {
        return serve_file(r.files.as_deref(), uri.path());
    }
    if let Some(dir) = &r.save_dir {
        save(dir, &method, &path, uri.path(), &headers, &body);
    }
    let params = headers
        .get("signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| hookline_signing::cavage::parse_signature_header(s).ok());
    let der = match &params {
        Some(p) => r.key(&p.key_id).await,
        None => None,
    };
    let verdict = hookline_signing::verify_request(
        method.as_str(),
        &path,
        |n| headers.get(n).and_then(|v| v.to_str().ok()),
        &body,
        |_| der.clone(),
    );
    let fresh = headers
        .get("date")
        .and_then(|v| v.to_str().ok())
        .and_then(httpdate_age)
        .is_some_and(|age| age < Duration::from_secs(60));
    let event = headers
        .get("x-hookline-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?");
    let delivery = headers
        .get("x-hookline-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?");
    match verdict {
        Ok(key_id) if fresh => {
            println!("VERIFIED {method} {path} event={event} delivery={delivery} keyId={key_id}");
            println!("{}", String::from_utf8_lossy(&body));
            (StatusCode::OK, "ok\n".into())
        }
        Ok(_) => {
            println!("REJECTED {method} {path}: Date is missing or older than 60 s");
            (StatusCode::UNAUTHORIZED, "stale date\n".into())
        }
        Err(e) => {
            println!("REJECTED {method} {path}: {e}");
            (StatusCode::UNAUTHORIZED, format!("{e}\n"))
        }
    }
}

/// A file name made of `path`: letters, digits, `.`, `-` and `_` kept, anything else `_`.
fn file_stem(path: &str) -> String {
    let stem: String = path
        .trim_matches('/')
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match stem.trim_start_matches('.') {
        "" => "root".to_owned(),
        s => s.to_owned(),
    }
}

/// `GET .../NAME`: the file NAME of `dir` (one plain name, no folders), else 404.
fn serve_file(dir: Option<&Path>, path: &str) -> (StatusCode, String) {
    let name = path.rsplit('/').next().unwrap_or_default();
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    match dir
        .filter(|_| plain)
        .map(|d| std::fs::read_to_string(d.join(name)))
    {
        Some(Ok(text)) => (StatusCode::OK, text),
        _ => (StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// Writes the request as `<stem>.head` (request line and headers, as `verify-signature` reads
/// them) and `<stem>.body`. A demo: a failed write is printed, the request still answered.
fn save(dir: &Path, method: &Method, target: &str, path: &str, headers: &HeaderMap, body: &[u8]) {
    let mut head = format!("{method} {target} HTTP/1.1\n");
    for (name, value) in headers {
        head.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    let stem = file_stem(path);
    // Head first, each written aside and renamed into place: whoever sees a new body finds its
    // head already there, and never a half-written file.
    let put = |ext: &str, bytes: &[u8]| {
        let tmp = dir.join(format!(".{stem}.{ext}.tmp"));
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, dir.join(format!("{stem}.{ext}"))))
    };
    let written = put("head", head.as_bytes()).and_then(|()| put("body", body));
    if let Err(e) = written {
        println!("could not save the request to {}: {e}", dir.display());
    }
}

fn httpdate_age(date: &str) -> Option<Duration> {
    let when = httpdate::parse_http_date(date).ok()?;
    Some(
        SystemTime::now()
            .duration_since(when)
            .unwrap_or_else(|e| e.duration()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_names_stay_inside_the_folder() {
        assert_eq!(file_stem("/my-first-webhook"), "my-first-webhook");
        assert_eq!(file_stem("/hooks/in.php"), "hooks_in.php");
        assert_eq!(file_stem("/../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(file_stem("/"), "root");
        assert_eq!(file_stem("/.."), "root");
    }

    #[test]
    fn only_plain_names_are_served() {
        let dir = std::env::temp_dir().join(format!("hookline-receiver-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hookline-abc.txt"), "abc\n").unwrap();
        let (status, body) = serve_file(Some(&dir), "/hooks/hookline-abc.txt");
        assert_eq!((status, body.as_str()), (StatusCode::OK, "abc\n"));
        for path in ["/hooks/", "/..", "/.hidden", "/a/b%2Fc"] {
            assert_eq!(
                serve_file(Some(&dir), path).0,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
        assert_eq!(
            serve_file(None, "/hookline-abc.txt").0,
            StatusCode::NOT_FOUND
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
