//! Every metric Hookline exports. Names follow `hookline_<stage>_<name>_<unit>`; counters end in
//! `_total`. Label sets are bounded: `stage`, `result` and `error_class` take a handful of
//! values, and nothing is labelled by subscription, account or URL (unbounded cardinality).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub use prometheus::IntCounterVec as CounterVec;
pub use prometheus::IntGauge;

/// The stage's metrics registry and handles. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Input records read, per stage (`tracking`, `profiles`, `sender`).
    pub consumed: IntCounterVec,
    /// Events joined with a known profile / without one.
    pub joined: IntCounterVec,
    pub unjoined: IntCounterVec,
    /// Input records sent to the quarantine topic.
    pub quarantined: IntCounterVec,
    /// Deliveries written (one per matching event × subscription).
    pub routed: IntCounterVec,
    /// Profile changes read again after a partition changed hands whose row the previous owner
    /// had already written (and so delivered): skipped.
    pub replayed_changes_skipped: IntCounterVec,
    /// Input events that matched no subscription.
    pub filtered: IntCounterVec,
    /// Sender attempts by result (delivered, retrying, dead-lettered, ...).
    pub attempts: IntCounterVec,
    /// Sender attempt latency by result.
    pub attempt_latency: HistogramVec,
    /// Circuit breaker transitions by the state entered (open, half-open, closed).
    pub circuit_transitions: IntCounterVec,
    /// Deliveries moved to the retry path without an attempt, by reason (`queue-full`,
    /// `rate-limited`, `slow-endpoint`) — one endpoint's backlog never holds up the partition.
    pub deferred: IntCounterVec,
    /// Deliveries written to `dead-letter`, by reason.
    pub dead_letters: IntCounterVec,
    /// Records read into a table (profiles, subscriptions).
    pub table_records: IntCounterVec,
    /// Subscriptions currently held by the routing table.
    pub subscriptions: IntGauge,
    /// Consumer lag per partition of the stage's input topic.
    pub lag: IntGaugeVec,
    /// Admin API requests by route template, method and status.
    pub api_requests: IntCounterVec,
    /// Admin API request latency by route template.
    pub api_latency: HistogramVec,
}

pub const CONSUMED: &str = "hookline_stage_consumed_records_total";
pub const JOINED: &str = "hookline_stage_joined_records_total";
pub const UNJOINED: &str = "hookline_stage_unjoined_records_total";
pub const QUARANTINED: &str = "hookline_stage_quarantined_records_total";
pub const ROUTED: &str = "hookline_stage_routed_deliveries_total";
pub const REPLAYED_SKIPPED: &str = "hookline_stage_replayed_changes_skipped_total";
pub const FILTERED: &str = "hookline_stage_filtered_records_total";
pub const ATTEMPTS: &str = "hookline_sender_attempts_total";
pub const ATTEMPT_LATENCY: &str = "hookline_sender_attempt_duration_seconds";
pub const CIRCUIT_TRANSITIONS: &str = "hookline_sender_circuit_transitions_total";
pub const DEFERRED: &str = "hookline_sender_deferred_total";
pub const DEAD_LETTERS: &str = "hookline_sender_dead_letters_total";
pub const TABLE_RECORDS: &str = "hookline_table_records_read_total";
pub const SUBSCRIPTIONS: &str = "hookline_routing_subscriptions";
pub const LAG: &str = "hookline_stage_consumer_lag_records";
pub const API_REQUESTS: &str = "hookline_admin_requests_total";
pub const API_LATENCY: &str = "hookline_admin_request_duration_seconds";

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let consumed = counter(CONSUMED, "Input records read.", &["stage"]);
        let joined = counter(JOINED, "Events joined with their profile.", &["stage"]);
        let unjoined = counter(UNJOINED, "Events whose profile was unknown.", &["stage"]);
        let quarantined = counter(
            QUARANTINED,
            "Input records quarantined, by reason class.",
            &["stage", "reason"],
        );
        let routed = counter(ROUTED, "Deliveries written.", &["stage"]);
        let replayed_changes_skipped = counter(
            REPLAYED_SKIPPED,
            "Changes read again whose row the partition's previous owner had written: skipped.",
            &["stage"],
        );
        let filtered = counter(
            FILTERED,
            "Input records that matched no subscription.",
            &["stage"],
        );
        let circuit_transitions = counter(
            CIRCUIT_TRANSITIONS,
            "Circuit breaker transitions by state entered.",
            &["to"],
        );
        let deferred = counter(
            DEFERRED,
            "Deliveries moved to the retry path without an attempt, by reason.",
            &["reason"],
        );
        let dead_letters = counter(
            DEAD_LETTERS,
            "Deliveries written to dead-letter, by reason.",
            &["reason"],
        );
        let attempts = counter(ATTEMPTS, "Delivery attempts by result.", &["result"]);
        let table_records = counter(
            TABLE_RECORDS,
            "Records read into a local table.",
            &["table"],
        );
        let attempt_latency = HistogramVec::new(
            HistogramOpts::new(ATTEMPT_LATENCY, "Duration of one delivery attempt.").buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["result"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(attempt_latency.clone()))
            .expect("unique metric");
        let subscriptions = IntGauge::new(SUBSCRIPTIONS, "Subscriptions in the routing table.")
            .expect("valid metric");
        registry
            .register(Box::new(subscriptions.clone()))
            .expect("unique metric");
        let lag = IntGaugeVec::new(
            Opts::new(LAG, "Records behind the end of each input partition."),
            &["topic", "partition"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(lag.clone()))
            .expect("unique metric");
        let api_requests = counter(
            API_REQUESTS,
            "Admin API requests by route template, method and status.",
            &["route", "method", "status"],
        );
        let api_latency = HistogramVec::new(
            HistogramOpts::new(API_LATENCY, "Duration of one admin API request.").buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0,
            ]),
            &["route"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(api_latency.clone()))
            .expect("unique metric");
        Self {
            registry,
            consumed,
            joined,
            unjoined,
            quarantined,
            routed,
            replayed_changes_skipped,
            filtered,
            attempts,
            attempt_latency,
            circuit_transitions,
            deferred,
            dead_letters,
            table_records,
            subscriptions,
            lag,
            api_requests,
            api_latency,
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
