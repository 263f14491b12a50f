//! `hookline-admin`: the admin API.
//!
//! Serves `GET /v1/keys` (the current public signing key and retired ones still within their
//! rotation overlap) and `/healthz`.
//! Subscriptions are written with the `hookline` CLI for now (`hookline subscription put`).
//!
//! - [`AdminArgs`] / [`serve`]: configuration and the entry point `main` and tests share.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use hookline_config::{parse_listen_addr, CommonArgs};
use hookline_signing::{PublicKeyInfo, SigningKey};
use tokio_util::sync::CancellationToken;

/// The admin API.
#[derive(Debug, Clone, Parser)]
#[command(name = "hookline-admin", version, about)]
pub struct AdminArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Listen address of the admin API.
    #[arg(long, env = "HOOKLINE_ADMIN_ADDR", default_value = "127.0.0.1:9400")]
    pub admin_addr: String,

    #[command(flatten)]
    pub signing: hookline_config::SigningArgs,
}

#[derive(Clone)]
struct AppState {
    current: Arc<SigningKey>,
    /// Keys retired by `hookline keys rotate`, published until they expire.
    retired: Arc<Vec<hookline_signing::rotation::RetiredKey>>,
}

/// Why the admin API could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Config(#[from] hookline_config::ConfigError),
    #[error(transparent)]
    Key(#[from] hookline_signing::KeyError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Binds the API and serves it until `shutdown`; returns the bound address.
pub async fn serve(
    args: &AdminArgs,
    shutdown: CancellationToken,
) -> Result<SocketAddr, AdminError> {
    let addr = parse_listen_addr("HOOKLINE_ADMIN_ADDR / --admin-addr", &args.admin_addr)?;
    let key = SigningKey::load_or_generate(
        &args.signing.signing_key,
        args.signing.signing_key_id.as_deref(),
    )?;
    let retired = hookline_signing::rotation::load_keyring(&args.signing.signing_key)?;
    let key = Arc::new(key);
    let state = AppState {
        current: key.clone(),
        retired: Arc::new(retired),
    };
    let app = Router::new()
        .route("/v1/keys", get(keys))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AdminError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| AdminError::Listen { addr, source })?;
    tracing::info!(%bound, key_id = key.key_id(), "admin API listening");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    });
    Ok(bound)
}

/// The current key and the retired keys still within their overlap (checked per request, so an
/// expired key disappears without a restart).
async fn keys(State(state): State<AppState>) -> Json<Vec<PublicKeyInfo>> {
    Json(hookline_signing::rotation::published_keys(
        &state.current,
        &state.retired,
        time::OffsetDateTime::now_utc(),
    ))
}
