//! A demo webhook receiver: verifies every POST's signature with the keys published at
//! `GET /v1/keys`, checks the `Digest` and the `Date`, and prints what arrived.

use std::collections::HashMap;
use std::net::SocketAddr;
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
}

#[derive(Clone)]
struct Receiver {
    keys_url: String,
    client: HttpClient,
    keys: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

pub async fn run(args: ReceiverArgs) -> anyhow::Result<()> {
    let addr: SocketAddr = hookline_config::parse_listen_addr("--listen", &args.listen)?;
    // The demo receiver fetches keys from a local admin API: allow loopback for that call only.
    let guard = NetworkGuard::new(vec!["127.0.0.0/8".parse()?, "::1/128".parse()?]);
    let state = Receiver {
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

fn httpdate_age(date: &str) -> Option<Duration> {
    let when = httpdate::parse_http_date(date).ok()?;
    Some(
        SystemTime::now()
            .duration_since(when)
            .unwrap_or_else(|e| e.duration()),
    )
}
