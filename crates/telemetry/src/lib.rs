//! Telemetry shared by every binary.
//!
//! - [`init_logging`]: `tracing` to stderr, text (coloured on a terminal only) or JSON,
//!   filtered by `RUST_LOG`.
//! - [`metrics`]: every metric Hookline exports, named in one place
//!   (`hookline_<stage>_<name>_<unit>`, `_total` on counters), so dashboards have one reference.
//! - [`trace`]: a span per record and per delivery attempt, exported over OTLP/HTTP when the
//!   standard `OTEL_*` variables ask for it, continuing the record's W3C `traceparent`.
//! - [`serve`]: the `/metrics`, `/healthz` and `/readyz` endpoint.
//! - [`shutdown_signal`]: a cancellation token cancelled on SIGTERM or SIGINT.

pub mod metrics;
pub mod trace;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

pub use metrics::Metrics;

/// Logs to stderr. `json` gives one JSON object per line for log pipelines. Text is coloured
/// only when stderr is a terminal: a log file or pipe gets plain text. When the `OTEL_*`
/// variables ask for it, the record and attempt spans are exported too ([`trace`]).
pub fn init_logging(format: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,librdkafka=warn,hyper=warn,h2=warn"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let fmt = if format == "json" {
        fmt.json().with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let (otel, otel_error) = match trace::layer() {
        Ok(layer) => (layer, None),
        Err(e) => (None, Some(e)),
    };
    // Only the spans made for export (target `hookline::trace`), whatever RUST_LOG says.
    let spans =
        tracing_subscriber::filter::Targets::new().with_target(trace::TARGET, tracing::Level::INFO);
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel.with_filter(spans))
        .try_init();
    if let Some(e) = otel_error {
        tracing::error!(error = %e, "traces are not exported");
    }
}

/// Readiness of a stage, served as `/readyz`. The join stages set it once their consumer group
/// has assigned them partitions and those partitions' tables are restored (and keep it through
/// later rebalances); every stage clears it when it stops.
///
/// A stage may also name conditions outside its own state that must hold, such as "the broker
/// takes our records" ([`Readiness::also_require`]); `/readyz` answers 200 only while all do.
/// A condition readiness requires besides the stage's own flag.
pub type Check = fn() -> bool;

#[derive(Clone, Default)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
    checks: Arc<std::sync::Mutex<Vec<Check>>>,
}

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Adds a condition `/readyz` requires besides the stage's own flag.
    pub fn also_require(&self, check: Check) {
        self.checks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(check);
    }

    /// The stage's own flag, whatever the other conditions say.
    pub fn is_set(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
            && self
                .checks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .all(|c| c())
    }
}

/// Serves `/metrics` (Prometheus text), `/healthz` (the process runs) and `/readyz` (the stage is
/// ready) until `shutdown` is cancelled. Returns the bound address (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(move || async move { metrics.render() }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || async move {
                if readiness.is_ready() {
                    (StatusCode::OK, "ready\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
            }),
        );
    tracing::info!(%bound, "serving /metrics, /healthz, /readyz");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    });
    Ok(bound)
}

/// What every binary sets up first: logging, an environment check, the shutdown token and the
/// metrics endpoint (on `default_metrics_addr` unless configured otherwise).
pub async fn start(
    common: &hookline_config::CommonArgs,
    default_metrics_addr: &str,
) -> Result<(Metrics, Readiness, CancellationToken), hookline_config::ConfigError> {
    init_logging(&common.log_format);
    hookline_config::check_environment();
    let metrics = Metrics::new();
    let readiness = Readiness::default();
    let shutdown = shutdown_signal();
    if let Some(addr) = common.metrics_addr_or(default_metrics_addr)? {
        if let Err(e) = serve(addr, metrics.clone(), readiness.clone(), shutdown.clone()).await {
            tracing::error!(%addr, error = %e, "cannot serve /metrics; set HOOKLINE_METRICS_ADDR to a free address or `off`");
        }
    }
    Ok((metrics, readiness, shutdown))
}

/// A binary's fatal error, with which brokers were tried and the setting that names them when
/// none answered (`hookline_config::broker_hint`): what `main` returns.
pub fn with_broker_hint(e: impl Into<anyhow::Error>, brokers: &str) -> anyhow::Error {
    let e = e.into();
    match hookline_config::broker_hint(&format!("{e:#}"), brokers) {
        Some(hint) => e.context(hint),
        None => e,
    }
}

/// How long a stage may take to stop after SIGTERM before the process exits regardless; below
/// the 30 s a container orchestrator usually grants.
pub const SHUTDOWN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(25);

/// A token cancelled on the first SIGTERM or SIGINT (Ctrl-C).
pub fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing a SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested: finishing the work in hand");
        t.cancel();
        // A watchdog outside the runtime: librdkafka's consumer close can block indefinitely
        // when the brokers are gone. Offsets are committed before that point, so leaving then
        // loses nothing; staying would keep an orchestrator waiting forever.
        std::thread::spawn(|| {
            std::thread::sleep(SHUTDOWN_DEADLINE);
            eprintln!(
                "hookline: still stopping {} s after the shutdown request; exiting",
                SHUTDOWN_DEADLINE.as_secs()
            );
            std::process::exit(1);
        });
    });
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    static BROKER_OK: AtomicBool = AtomicBool::new(true);

    fn broker_ok() -> bool {
        BROKER_OK.load(Ordering::Relaxed)
    }

    #[test]
    fn readiness_needs_the_stage_and_every_extra_condition() {
        let r = Readiness::default();
        r.also_require(broker_ok);
        assert!(!r.is_ready(), "not set yet");
        r.set(true);
        assert!(r.is_ready());
        BROKER_OK.store(false, Ordering::Relaxed);
        assert!(!r.is_ready(), "the broker does not take records");
        assert!(r.is_set(), "the stage's own flag stays");
        BROKER_OK.store(true, Ordering::Relaxed);
        assert!(r.clone().is_ready(), "clones share the conditions");
    }
}
