//! `hookline-sender`: turns deliveries into signed POSTs.
//!
//! Instances form one consumer group over `deliveries` (keyed by subscription id), so each
//! subscription is owned by one instance at a time. For every attempt one record goes to
//! `outcomes`; a failed attempt schedules the next one on `retries` (so it survives restarts
//! and does not hold the partition) or, when the schedule is exhausted, goes to `dead-letter`.
//! Input offsets are stored only after those records are acknowledged.
//!
//! - [`SenderArgs`] / [`run`]: configuration and entry point.
//! - [`worker`]: the loops over `deliveries` and the retry topics: read, offer, commit.
//! - [`endpoint`]: per-endpoint queues (bounded in bytes), slots and rates, shared by the loops;
//!   what an endpoint will not take moves to the retry path instead of blocking a partition.
//! - [`tiers`]: the retry path's delay tiers (`retries`, `retries.5s` … `retries.6h`).
//! - [`hold`]: ordered subscriptions that block only themselves.
//! - [`jobs`]: one delivery's way: wait, attempt, write what follows; `unsendable`: what
//!   happens to a delivery whose subscription is paused, disabled or unknown.
//! - `hookline-webhook`: sign, POST, judge one attempt (a library the admin API shares).
//! - [`decide`]: what follows an attempt, as a pure function.
//! - [`outputs`]: the records an attempt causes, checked against the producer's size limit.
//! - [`policy`]: the retry schedule.
//! - [`breaker`]: circuit breaking per endpoint.
//! - [`health`]: the breakers' state persisted on `endpoint-health`, so restarts keep it.
//! - [`handover`]: rebalances without loss: commit points, attempts in flight.
//! - [`finalizer`]: which offsets may be committed when records finish out of order.
//! - [`rate`]: the token bucket of `limits.per_second`.

pub mod breaker;
pub mod decide;
pub mod endpoint;
pub mod finalizer;
pub mod handover;
pub mod health;
pub mod hold;
pub mod jobs;
pub mod outputs;
pub mod policy;
pub mod rate;
pub mod tiers;
mod unsendable;
pub mod worker;

use std::sync::Arc;

use clap::Parser;
use hookline_config::{CommonArgs, Topics};
use hookline_kafka::{KafkaSettings, Producer};
use hookline_outbound::{HttpClient, HttpOptions};
use hookline_routing::SubscriptionsView;
use hookline_signing::Signers;
use hookline_telemetry::{Metrics, Readiness};
use tokio_util::sync::CancellationToken;

pub use policy::RetryPolicy;

/// Signs and sends webhook deliveries.
#[derive(Debug, Clone, Parser)]
#[command(name = "hookline-sender", version, about)]
pub struct SenderArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub signing: hookline_config::SigningArgs,

    /// Networks, ports and the X-Copernica-ID template, as the admin API has them.
    #[command(flatten)]
    pub outbound: hookline_webhook::OutboundArgs,

    /// Consumer group id; defaults to `<topic prefix>sender`.
    #[arg(long, env = "HOOKLINE_GROUP_ID")]
    pub group_id: Option<String>,

    /// Delay ceilings between attempts (full jitter below each); the last one repeats.
    #[arg(
        long,
        env = "HOOKLINE_RETRY_SCHEDULE",
        default_value = "5s,1m,10m,1h,6h,1d"
    )]
    pub retry_schedule: String,

    /// Attempts in all, the first included.
    #[arg(long, env = "HOOKLINE_MAX_ATTEMPTS", default_value_t = 10)]
    pub max_attempts: u32,

    /// Give up (dead-letter) when the next attempt would come later than this after the first.
    #[arg(long, env = "HOOKLINE_MAX_AGE", default_value = "5d", value_parser = hookline_config::parse_duration)]
    pub max_age: std::time::Duration,

    /// Disable a subscription whose endpoint has failed every attempt for this long.
    #[arg(long, env = "HOOKLINE_DISABLE_AFTER", default_value = "5d", value_parser = hookline_config::parse_duration)]
    pub disable_after: std::time::Duration,

    /// How long an open circuit stays open before a probe (doubles after a failed probe).
    #[arg(long, env = "HOOKLINE_BREAKER_COOL_DOWN", default_value = "30s", value_parser = hookline_config::parse_duration)]
    pub breaker_cool_down: std::time::Duration,

    /// Connect timeout.
    #[arg(long, env = "HOOKLINE_CONNECT_TIMEOUT", default_value = "5s", value_parser = hookline_config::parse_duration)]
    pub connect_timeout: std::time::Duration,

    /// Timeout of a whole request, response included.
    #[arg(long, env = "HOOKLINE_REQUEST_TIMEOUT", default_value = "15s", value_parser = hookline_config::parse_duration)]
    pub request_timeout: std::time::Duration,

    /// Bytes of delivery bodies one endpoint may hold in memory; more moves to the retry path.
    /// (What the endpoint cannot send within `--endpoint-max-wait` moves there first.)
    #[arg(long, env = "HOOKLINE_ENDPOINT_QUEUE_BYTES", default_value_t = 8 << 20)]
    pub endpoint_queue_bytes: usize,

    /// Deliveries one endpoint may hold in memory; more moves to the retry path.
    #[arg(
        long,
        env = "HOOKLINE_ENDPOINT_QUEUE_RECORDS",
        default_value_t = 10_000
    )]
    pub endpoint_queue_records: usize,

    /// The longest a delivery may be expected to wait in memory for its endpoint (its rate
    /// or its slow answers); a longer wait moves it to the retry path.
    #[arg(long, env = "HOOKLINE_ENDPOINT_MAX_WAIT", default_value = "10s", value_parser = hookline_config::parse_duration)]
    pub endpoint_max_wait: std::time::Duration,

    /// Most requests per second to any one endpoint, whatever its subscription asks for
    /// (`limits.per_second` above it is held to it); 0: no cap. A validated domain proves who
    /// owns a name, not a right to aim bulk traffic at it.
    #[arg(long, env = "HOOKLINE_ENDPOINT_RATE_CAP", default_value_t = 1000.0)]
    pub endpoint_rate_cap: f64,

    /// Records one delivery may have on the retry path (retries, deferrals, moves between
    /// delay tiers) before it is dead-lettered with reason `too-many-hops`.
    #[arg(long, env = "HOOKLINE_MAX_HOPS", default_value_t = 1000)]
    pub max_hops: u32,

    /// Refuse plain http:// subscriptions (must match the routing stages' setting).
    #[arg(long, env = "HOOKLINE_REQUIRE_HTTPS", default_value_t = true, action = clap::ArgAction::Set)]
    pub require_https: bool,
}

/// Why the sender stopped.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Key(#[from] hookline_signing::KeyError),
    #[error(transparent)]
    Kafka(#[from] hookline_kafka::KafkaError),
    #[error("kafka: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("producing: {0}")]
    Produce(String),
}

/// Everything the workers share.
pub struct Shared {
    pub client: HttpClient,
    /// The RSA key (`copernica` profile) and the Ed25519 key (`standard-webhooks` profile).
    pub signers: Signers,
    /// The retry schedule and the other bounds of what follows an attempt.
    pub bounds: decide::Bounds,
    /// Every endpoint's queue, slots and rate, shared by the loops.
    pub endpoints: endpoint::Endpoints,
    pub subscriptions: SubscriptionsView,
    pub metrics: Metrics,
    pub copernica_id: hookline_webhook::CopernicaId,
    pub breakers: std::sync::Mutex<
        std::collections::HashMap<hookline_model::SubscriptionId, breaker::Breaker>,
    >,
    pub breaker_cfg: breaker::BreakerConfig,
    /// The persisted endpoint health new breakers start from.
    pub health: health::HealthView,
    /// The one producer of the process, shared by the loops: one librdkafka client and one
    /// polling thread instead of one per loop (docs/benchmarks.md, "Idle cost").
    pub producer: Producer,
}

/// One loop per input: `deliveries` in `group`, and each retry topic in
/// `<group>-retries`, `<group>-retries.5s`, … (one group per retry topic).
fn loops_of(group: &str, tiers: &tiers::Tiers, topics: &Topics) -> Vec<(String, worker::Input)> {
    let mut loops = vec![(group.to_owned(), worker::Input::Deliveries)];
    for tier in tiers.all() {
        let suffix = tier.topic.get(topics.retries.len()..).unwrap_or_default();
        loops.push((
            format!("{group}-retries{suffix}"),
            worker::Input::Tier(tier.clone()),
        ));
    }
    loops
}

/// Runs the sender until `shutdown`.
pub async fn run(
    args: SenderArgs,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), SenderError> {
    let outbound = args
        .outbound
        .check()
        .map_err(|e| SenderError::Config(e.to_string()))?;
    let steps = RetryPolicy::parse_steps(&args.retry_schedule)
        .map_err(|e| SenderError::Config(format!("--retry-schedule: {e}")))?;
    let signers = load_signers(&args)?;
    if outbound.opens_networks {
        tracing::warn!(networks = %args.outbound.allow_networks, "outbound calls may reach these non-public networks");
    }
    let topics = args.common.topics();
    let group = args
        .group_id
        .clone()
        .unwrap_or_else(|| format!("{}sender", args.common.topic_prefix));
    // One identity for all the loops' groups (each group has one member per instance).
    let settings = KafkaSettings::from_common(&args.common).with_client_id("hookline-sender");
    let subscriptions = SubscriptionsView::start(
        &settings,
        &topics.subscriptions,
        args.require_https,
        metrics.clone(),
    )
    .await?;
    let health = health::HealthView::start(&settings, &topics.endpoint_health).await?;
    let producer = Producer::with_stats(&settings, metrics.clone(), "sender-producer")?;
    let shared = Arc::new(Shared {
        client: HttpClient::new(
            outbound.guard,
            HttpOptions {
                connect_timeout: args.connect_timeout,
                total_timeout: args.request_timeout,
                ..HttpOptions::default()
            },
        ),
        signers,
        bounds: decide::Bounds {
            policy: RetryPolicy {
                steps,
                max_attempts: args.max_attempts.max(1),
                max_age: args.max_age,
            },
            disable_after: args.disable_after,
            max_hops: args.max_hops.max(1),
        },
        endpoints: endpoints_of(&args, &metrics),
        subscriptions,
        metrics,
        copernica_id: outbound.copernica_id,
        breakers: Default::default(),
        breaker_cfg: breaker::BreakerConfig {
            cool_down: args.breaker_cool_down,
            ..Default::default()
        },
        health,
        producer,
    });
    let tiers = Arc::new(tiers::Tiers::new(topics.retry_tiers()));
    let loops = loops_of(&group, &tiers, &topics);
    // Not ready while the broker does not take the sender's records (an outage).
    readiness.also_require(hookline_kafka::producer::broker_takes_records);
    readiness.set(true);
    let result = run_loops(shared, settings, topics, tiers, loops, shutdown).await;
    readiness.set(false);
    result
}

/// The signing keys (generated on a first start), with their ids logged.
fn load_signers(args: &SenderArgs) -> Result<Signers, SenderError> {
    let signers = Signers::load_or_generate(
        &args.signing.signing_key,
        args.signing.signing_key_id.as_deref(),
    )?;
    tracing::info!(
        key_id = signers.rsa.key_id(),
        ed25519_key_id = signers.ed25519.key_id(),
        "signing keys loaded"
    );
    Ok(signers)
}

/// The endpoints' admission, bounded as the flags say, counted on the `queued` gauge.
fn endpoints_of(args: &SenderArgs, metrics: &Metrics) -> endpoint::Endpoints {
    endpoint::Endpoints::new(endpoint::QueueBounds {
        bytes: args.endpoint_queue_bytes.max(1),
        records: args.endpoint_queue_records.max(1),
        max_wait: args.endpoint_max_wait,
        rate_cap: (args.endpoint_rate_cap > 0.0).then_some(args.endpoint_rate_cap),
    })
    .counted_on(metrics.queued.clone())
}

/// Runs every loop until `shutdown`; the first loop to fail stops the others (one
/// cancellation tree).
async fn run_loops(
    shared: Arc<Shared>,
    settings: KafkaSettings,
    topics: Topics,
    tiers: Arc<tiers::Tiers>,
    loops: Vec<(String, worker::Input)>,
    shutdown: CancellationToken,
) -> Result<(), SenderError> {
    let runs = loops.into_iter().map(|(group, input)| {
        let run = worker::run_loop(
            shared.clone(),
            settings.clone(),
            topics.clone(),
            tiers.clone(),
            group,
            input,
            shutdown.clone(),
        );
        let shutdown = shutdown.clone();
        // The first loop to fail stops the others: one cancellation tree.
        async move {
            let r = run.await;
            if r.is_err() {
                shutdown.cancel();
            }
            r
        }
    });
    let results = futures::future::join_all(runs).await;
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_flags_are_durations_and_a_bad_one_names_its_flag() {
        let args = SenderArgs::try_parse_from(["hookline-sender", "--max-age", "2h"]).unwrap();
        assert_eq!(args.max_age, std::time::Duration::from_secs(7200));
        assert_eq!(args.breaker_cool_down, std::time::Duration::from_secs(30));
        let e = SenderArgs::try_parse_from(["hookline-sender", "--disable-after", "5 days"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--disable-after") && e.contains("use ms, s, m, h or d"),
            "{e}"
        );
    }
}
