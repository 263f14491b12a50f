use clap::Parser;
use hookline_tracking::{run, TrackingArgs};

/// mimalloc instead of glibc's allocator: less CPU per delivery in the stages' allocation-heavy
/// paths (docs/benchmarks.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = TrackingArgs::parse();
    let (metrics, readiness, shutdown) =
        hookline_telemetry::start(&args.common, "127.0.0.1:9461").await?;
    let brokers = args.common.brokers.clone();
    let result = run(args, metrics, readiness, shutdown)
        .await
        .map_err(|e| hookline_telemetry::with_broker_hint(e, &brokers));
    hookline_telemetry::trace::finish();
    result
}
