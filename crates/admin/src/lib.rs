//! `hookline-admin`: the admin API. Kafka is its only store.
//!
//! - [`tables`]: the followed `subscriptions`, `tokens` and `domains` tables and read-after-write
//!   writes to them; the recent `outcomes` per subscription.
//! - [`concurrency`]: `ETag` / `If-Match` on subscriptions (412 on a stale version).
//! - [`auth`]: bearer tokens bound to one account (or operator tokens), stored hashed.
//! - [`subscriptions`]: CRUD, list by database/collection, pause/resume.
//! - [`verify`]: URL verification: the file challenge, its download, `POST .../verify`.
//! - [`domains`]: DNS TXT validation of domains.
//! - [`databases`]: per-database settings (display name, e-mail field) the tracking stage follows.
//! - [`delivery`]: test webhook, check now, attempt history.
//! - [`replay`]: replay of dead letters: off the runtime, bounded, idempotent by replay id.
//! - [`limits`]: per-account quotas and rate limits, and the limit on failed authentications.
//! - [`idempotency`]: `Idempotency-Key` on the `POST`s that create or send (kept per account,
//!   in this instance's memory, for 24 h).
//! - [`keys`]: `GET /v1/keys`, the public keys (a Standard Webhooks key per account).
//! - [`page`]: cursor pagination (`limit`, `cursor`, `next_cursor`) of every list.
//! - [`operator`]: endpoints across accounts, for operator tokens.
//! - [`backlog`]: per subscription, the deliveries waiting for another attempt or parked while
//!   paused, counted from the followed outcomes.
//! - [`error`]: the JSON error answer every endpoint uses.
//! - [`console`]: the web console and embeddable customer portal at `/console/`.
//!
//! The whole API is described in `schemas/openapi.json`, served at `GET /v1/openapi.json`; a
//! test checks the running server against it. [`AdminArgs`] / [`serve`] are what `main` and the tests share.

pub mod auth;
pub mod backlog;
pub mod concurrency;
pub mod console;
pub mod databases;
pub mod delivery;
pub mod domains;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod keys;
pub mod limits;
pub mod operator;
pub mod page;
pub mod replay;
pub mod subscriptions;
pub mod tables;
pub mod verify;

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use clap::Parser;
use hookline_config::{parse_listen_addr, CommonArgs, Topics};
use hookline_kafka::KafkaSettings;
use hookline_outbound::{HttpClient, HttpOptions};
use hookline_signing::Signers;
use hookline_telemetry::Metrics;
use hookline_verification::DnsResolver;
use tokio_util::sync::CancellationToken;

pub use tables::Tables;

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

    /// Networks, ports and the X-Copernica-ID template, as the sender has them.
    #[command(flatten)]
    pub outbound: hookline_webhook::OutboundArgs,

    /// Refuse plain http:// callback URLs (must match the routing stages' setting).
    #[arg(long, env = "HOOKLINE_REQUIRE_HTTPS", default_value_t = true, action = clap::ArgAction::Set)]
    pub require_https: bool,

    /// DNS server (ip:port) for domain validation; default: the system's resolver.
    #[arg(long, env = "HOOKLINE_DNS_RESOLVER")]
    pub dns_resolver: Option<String>,

    /// The verification file is `<prefix>-<token>.txt`: the name customers publish to prove a
    /// callback URL is theirs (`docs/verification.md`).
    #[arg(long, env = "HOOKLINE_VERIFICATION_PREFIX", default_value = hookline_verification::DEFAULT_PREFIX)]
    pub verification_prefix: String,

    /// Timeout of a verification fetch or test webhook, response included.
    #[arg(long, default_value = "10s", value_parser = hookline_config::parse_duration)]
    pub request_timeout: std::time::Duration,

    #[command(flatten)]
    pub limits: limits::LimitArgs,

    #[command(flatten)]
    pub console: console::ConsoleArgs,
}

/// What every handler shares.
pub struct Shared {
    pub tables: Tables,
    /// The signing keys the sender uses too: the test webhook signs with them, and
    /// `GET /v1/keys` publishes their public halves.
    pub signers: Signers,
    /// Keys retired by `hookline keys rotate`, published until they expire.
    pub retired: Vec<hookline_signing::rotation::RetiredKey>,
    pub client: HttpClient,
    pub resolver: DnsResolver,
    pub require_https: bool,
    /// The verification file is `<prefix>-<token>.txt`.
    pub verification_prefix: hookline_verification::FilePrefix,
    pub copernica_id: hookline_webhook::CopernicaId,
    pub settings: KafkaSettings,
    pub topics: Topics,
    pub metrics: Metrics,
    pub limits: limits::Limits,
    pub replays: replay::Replays,
    /// Serialises the read-check-write of each subscription on this instance.
    pub write_locks: concurrency::WriteLocks,
    /// The `Idempotency-Key`s this instance remembers.
    pub idempotency: idempotency::IdempotencyKeys,
    /// The web console's key, settings and opened portal links.
    pub console: console::Console,
}

/// The handlers' state: cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Why the admin API could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Config(#[from] hookline_config::ConfigError),
    #[error("{0}")]
    Setting(String),
    #[error(transparent)]
    Key(#[from] hookline_signing::KeyError),
    #[error(transparent)]
    Kafka(#[from] hookline_kafka::KafkaError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The API's routes over `state`.
pub fn router(state: AppState) -> Router {
    use axum::routing::MethodRouter;
    let m = |r: MethodRouter<AppState>| r.fallback(error::wrong_method);
    Router::new()
        .route("/v1/keys", m(get(keys::list)))
        .route(
            "/v1/subscriptions",
            m(get(subscriptions::list).post(subscriptions::create)),
        )
        .route(
            "/v1/subscriptions/{id}",
            m(get(subscriptions::get_one)
                .patch(subscriptions::update)
                .delete(subscriptions::delete)),
        )
        .route(
            "/v1/subscriptions/{id}/pause",
            m(post(subscriptions::pause)),
        )
        .route(
            "/v1/subscriptions/{id}/resume",
            m(post(subscriptions::resume)),
        )
        .route("/v1/subscriptions/{id}/verify", m(post(verify::verify)))
        .route(
            "/v1/subscriptions/{id}/verification-file",
            m(get(verify::download)),
        )
        .route("/v1/subscriptions/{id}/test", m(post(delivery::test)))
        .route(
            "/v1/subscriptions/{id}/attempts",
            m(get(delivery::attempts)),
        )
        .route("/v1/subscriptions/{id}/replay", m(post(replay::replay)))
        .route("/v1/check", m(post(delivery::check)))
        .route("/v1/domains", m(get(domains::list).post(domains::create)))
        .route(
            "/v1/domains/{domain}",
            m(get(domains::get_one).delete(domains::delete)),
        )
        .route("/v1/domains/{domain}/validate", m(post(domains::validate)))
        .route("/v1/databases", m(get(databases::list)))
        .route(
            "/v1/databases/{database}",
            m(get(databases::get_one)
                .put(databases::put)
                .delete(databases::delete)),
        )
        .route(
            "/v1/operator/subscriptions",
            m(get(operator::subscriptions)),
        )
        .route("/v1/operator/endpoints", m(get(operator::endpoints)))
        .route("/v1/operator/metrics", m(get(operator::metrics)))
        .route(
            "/v1/operator/portal-links",
            m(post(console::portal::create_link)),
        )
        .merge(console::router(state.clone()))
        .route("/healthz", m(get(|| async { "ok\n" })))
        .route("/v1/openapi.json", m(get(openapi)))
        .fallback(error::no_route)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_request,
        ))
        .with_state(state)
}

/// The API's description, `schemas/openapi.json`, built into the binary so it always matches
/// the server that answers.
pub const OPENAPI: &str = include_str!("../../../schemas/openapi.json");

/// `GET /v1/openapi.json` (no token needed).
async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// Counts every request by its route *template* (bounded: never the ids in the path) and
/// status, and times it.
async fn count_request(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .api_latency
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    state
        .metrics
        .api_requests
        .with_label_values(&[&route, &method, resp.status().as_str()])
        .inc();
    resp
}

/// Loads the tables, binds the API and serves it until `shutdown`; returns the bound address.
/// `metrics`: the process's registry (request counts land there); `None` gives the API one of
/// its own, still served at `/v1/operator/metrics`.
pub async fn serve(
    args: &AdminArgs,
    metrics: Option<Metrics>,
    shutdown: CancellationToken,
) -> Result<SocketAddr, AdminError> {
    serve_until_stopped(args, metrics, shutdown)
        .await
        .map(|(addr, _)| addr)
}

/// Like [`serve`], also returning the server task: it ends once `shutdown` is cancelled and the
/// requests in flight have been answered (`main` waits for it, so SIGTERM drains).
pub async fn serve_until_stopped(
    args: &AdminArgs,
    metrics: Option<Metrics>,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), AdminError> {
    let addr = parse_listen_addr("HOOKLINE_ADMIN_ADDR / --admin-addr", &args.admin_addr)?;
    let outbound = args
        .outbound
        .check()
        .map_err(|e| AdminError::Setting(e.to_string()))?;
    let timeout = args.request_timeout;
    let nameserver = nameserver(args)?;
    let verification_prefix = verification_prefix(args)?;
    let limits = limits::Limits::from_args(&args.limits).map_err(AdminError::Setting)?;
    let console = console::Console::from_args(&args.console).map_err(AdminError::Setting)?;
    let replay_deadline = args.limits.replay_deadline;
    let signers = Signers::load_or_generate(
        &args.signing.signing_key,
        args.signing.signing_key_id.as_deref(),
    )?;
    let retired = hookline_signing::rotation::load_keyring(&args.signing.signing_key)?;
    let topics = args.common.topics();
    let settings = KafkaSettings::from_common(&args.common).with_client_id("hookline-admin");
    let metrics = metrics.unwrap_or_default();
    let tables =
        Tables::start_counted(&settings, &topics, Some(metrics.subscriptions.clone())).await?;
    let client = HttpClient::new(
        outbound.guard,
        HttpOptions {
            connect_timeout: timeout.min(std::time::Duration::from_secs(5)),
            total_timeout: timeout,
            ..HttpOptions::default()
        },
    );
    let resolver = DnsResolver::new(nameserver, timeout.min(std::time::Duration::from_secs(5)))
        .map_err(|e| AdminError::Setting(format!("HOOKLINE_DNS_RESOLVER / --dns-resolver: {e}")))?;
    let key_id = signers.rsa.key_id().to_owned();
    let state = AppState(Arc::new(Shared {
        tables,
        signers,
        retired,
        client,
        resolver,
        require_https: args.require_https,
        verification_prefix,
        copernica_id: outbound.copernica_id,
        settings,
        topics,
        metrics,
        limits,
        replays: replay::Replays::new(args.limits.max_concurrent_replays, replay_deadline),
        write_locks: concurrency::WriteLocks::default(),
        idempotency: idempotency::IdempotencyKeys::default(),
        console,
    }));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AdminError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| AdminError::Listen { addr, source })?;
    tracing::info!(%bound, %key_id, "admin API listening");
    Ok((bound, spawn_server(listener, router(state), shutdown)))
}

/// Serves `app` on `listener` until `shutdown`, then answers the requests in flight.
fn spawn_server(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // The peer address feeds the limit on failed authentications.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "admin API server failed");
        }
    })
}

/// `--dns-resolver`: the name server of the DNS TXT lookups (the system's when absent).
fn nameserver(args: &AdminArgs) -> Result<Option<SocketAddr>, AdminError> {
    args.dns_resolver
        .as_deref()
        .map(|raw| {
            raw.parse::<SocketAddr>().map_err(|_| {
                AdminError::Setting(format!(
                    "HOOKLINE_DNS_RESOLVER / --dns-resolver {raw:?}: expected ip:port, e.g. 9.9.9.9:53"
                ))
            })
        })
        .transpose()
}

/// `--verification-prefix`: the start of the verification file's name.
fn verification_prefix(args: &AdminArgs) -> Result<hookline_verification::FilePrefix, AdminError> {
    hookline_verification::FilePrefix::parse(&args.verification_prefix).map_err(|e| {
        AdminError::Setting(format!(
            "HOOKLINE_VERIFICATION_PREFIX / --verification-prefix: {e}"
        ))
    })
}
