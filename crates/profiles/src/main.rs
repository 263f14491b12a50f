use clap::Parser;
use hookline_profiles::{run, ProfilesArgs};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ProfilesArgs::parse();
    let (metrics, readiness, shutdown) =
        hookline_telemetry::start(&args.common, "127.0.0.1:9462").await?;
    run(args, metrics, readiness, shutdown).await?;
    Ok(())
}
