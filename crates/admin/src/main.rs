use std::time::Duration;

use clap::Parser;
use hookline_admin::{serve_until_stopped, AdminArgs};

/// How long requests in flight may take to finish after SIGTERM (a replay can take a while).
const DRAIN: Duration = Duration::from_secs(20);

/// mimalloc instead of glibc's allocator: less CPU per delivery in the stages' allocation-heavy
/// paths (docs/benchmarks.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = AdminArgs::parse();
    let (metrics, readiness, shutdown) =
        hookline_telemetry::start(&args.common, "127.0.0.1:9464").await?;
    let (_, server) = serve_until_stopped(&args, Some(metrics), shutdown.clone())
        .await
        .map_err(|e| hookline_telemetry::with_broker_hint(e, &args.common.brokers))?;
    readiness.set(true);
    shutdown.cancelled().await;
    readiness.set(false);
    if tokio::time::timeout(DRAIN, server).await.is_err() {
        tracing::warn!(
            "requests still in flight {} s after the stop signal were cut off",
            DRAIN.as_secs()
        );
    }
    hookline_telemetry::trace::finish();
    Ok(())
}
