use clap::Parser;
use hookline_admin::{serve, AdminArgs};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = AdminArgs::parse();
    let (metrics, readiness, shutdown) =
        hookline_telemetry::start(&args.common, "127.0.0.1:9464").await?;
    serve(&args, Some(metrics), shutdown.clone()).await?;
    readiness.set(true);
    shutdown.cancelled().await;
    Ok(())
}
