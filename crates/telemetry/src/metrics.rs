//! Every metric Hookline exports. Names follow `hookline_<stage>_<name>_<unit>`; counters end in
//! `_total`. Label sets are bounded: `stage`, `result` and `error_class` take a handful of
//! values, and nothing is labelled by subscription, account or URL (unbounded cardinality).

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub use prometheus::IntCounterVec as CounterVec;
pub use prometheus::{IntCounter, IntGauge};

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
    /// The SLO metric: from the input record's Kafka timestamp to the endpoint's 2xx answer,
    /// once per delivered attempt (repeats included), by `attempt`: `first` (the pipeline's own
    /// latency plus the endpoint's answer) or `retry` (includes the retry delays).
    pub event_to_delivery: HistogramVec,
    /// Failed attempts by error class (`dns`, `connect`, `tls`, `timeout`, `http_4xx`,
    /// `http_5xx`, `refused-by-guard`, `other`).
    pub attempt_errors: IntCounterVec,
    /// Attempts sent and not yet answered.
    pub in_flight: IntGauge,
    /// Endpoints whose circuit this instance holds open or half-open.
    pub open_circuits: IntGauge,
    /// Deliveries this instance holds in its endpoint queues: taken from Kafka and waiting for
    /// their rate token or a request slot, or in flight.
    pub queued: IntGauge,
    /// Records written to the retry path, by tier (`0s`, `5s`, `1m`, …).
    pub retries_scheduled: IntCounterVec,
    /// Partitions assigned and revoked, per stage (`tracking`, `profiles`, `sender`).
    pub rebalances: IntCounterVec,
    /// How long a join stage took to read its table for newly assigned partitions.
    pub restore_duration: HistogramVec,
    /// Table partitions being restored now (the stage is not ready meanwhile).
    pub restoring: IntGaugeVec,
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
    /// Consumer lag per group and assigned partition ([`Metrics::set_lag`]).
    pub lag: IntGaugeVec,
    /// librdkafka's view of each broker, per client: round trip by quantile
    /// ([`Metrics::set_kafka_broker`]).
    pub kafka_broker_rtt: GaugeVec,
    /// Requests waiting to be sent (`outbuf`) and waiting for their answer (`waitresp`), per
    /// client and broker.
    pub kafka_broker_requests: IntGaugeVec,
    /// The client's own queues: records waiting to be produced (`producer`) and operations
    /// waiting for the application to poll them (`reply`).
    pub kafka_client_queue: IntGaugeVec,
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
pub const EVENT_TO_DELIVERY: &str = "hookline_sender_event_to_delivery_seconds";
pub const ATTEMPT_ERRORS: &str = "hookline_sender_attempt_errors_total";
pub const IN_FLIGHT: &str = "hookline_sender_attempts_in_flight";
pub const BUILD_INFO: &str = "hookline_build_info";
pub const OPEN_CIRCUITS: &str = "hookline_sender_open_circuits";
pub const QUEUED: &str = "hookline_sender_queued_deliveries";
pub const RETRIES_SCHEDULED: &str = "hookline_sender_retries_scheduled_total";
pub const REBALANCES: &str = "hookline_stage_rebalances_total";
pub const RESTORE_DURATION: &str = "hookline_table_restore_duration_seconds";
pub const RESTORING: &str = "hookline_table_restoring_partitions";
pub const CIRCUIT_TRANSITIONS: &str = "hookline_sender_circuit_transitions_total";
pub const DEFERRED: &str = "hookline_sender_deferred_total";
pub const DEAD_LETTERS: &str = "hookline_sender_dead_letters_total";
pub const TABLE_RECORDS: &str = "hookline_table_records_read_total";
pub const SUBSCRIPTIONS: &str = "hookline_routing_subscriptions";
pub const LAG: &str = "hookline_stage_consumer_lag_records";
pub const KAFKA_BROKER_RTT: &str = "hookline_kafka_broker_rtt_seconds";
pub const KAFKA_BROKER_REQUESTS: &str = "hookline_kafka_broker_requests";
pub const KAFKA_CLIENT_QUEUE: &str = "hookline_kafka_client_queue_messages";
pub const API_REQUESTS: &str = "hookline_admin_requests_total";
pub const API_LATENCY: &str = "hookline_admin_request_duration_seconds";

impl Metrics {
    // size: one registration per metric, in one list (scripts/check-metric-names.py reads it)
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
        let attempt_latency = registered(&registry, attempt_latency);
        let subscriptions = IntGauge::new(SUBSCRIPTIONS, "Subscriptions in the routing table.")
            .expect("valid metric");
        let subscriptions = registered(&registry, subscriptions);
        let event_to_delivery = HistogramVec::new(
            HistogramOpts::new(
                EVENT_TO_DELIVERY,
                "From the input record's timestamp to the endpoint's 2xx answer, by attempt \
                 (first, retry).",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
                3600.0, 21600.0,
            ]),
            &["attempt"],
        )
        .expect("valid metric");
        let event_to_delivery = registered(&registry, event_to_delivery);
        let attempt_errors = counter(
            ATTEMPT_ERRORS,
            "Failed delivery attempts by error class.",
            &["class"],
        );
        let in_flight = IntGauge::new(IN_FLIGHT, "Delivery attempts sent and not yet answered.")
            .expect("valid metric");
        let in_flight = registered(&registry, in_flight);
        let open_circuits = IntGauge::new(
            OPEN_CIRCUITS,
            "Endpoints whose circuit this instance holds open or half-open.",
        )
        .expect("valid metric");
        let open_circuits = registered(&registry, open_circuits);
        let queued = IntGauge::new(
            QUEUED,
            "Deliveries held in this instance's endpoint queues (waiting or in flight).",
        )
        .expect("valid metric");
        let queued = registered(&registry, queued);
        let retries_scheduled = counter(
            RETRIES_SCHEDULED,
            "Records written to the retry path, by tier.",
            &["tier"],
        );
        let rebalances = counter(
            REBALANCES,
            "Partitions assigned and revoked, by stage and event.",
            &["stage", "event"],
        );
        let restore_duration = HistogramVec::new(
            HistogramOpts::new(
                RESTORE_DURATION,
                "Time to read the table of newly assigned partitions.",
            )
            .buckets(vec![
                0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0,
            ]),
            &["stage"],
        )
        .expect("valid metric");
        let restore_duration = registered(&registry, restore_duration);
        let restoring = IntGaugeVec::new(
            Opts::new(RESTORING, "Table partitions being restored now."),
            &["stage"],
        )
        .expect("valid metric");
        let restoring = registered(&registry, restoring);
        let build_info = IntGaugeVec::new(
            Opts::new(BUILD_INFO, "Always 1; the version of the running build."),
            &["version"],
        )
        .expect("valid metric");
        let build_info = registered(&registry, build_info);
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique metric");
        let lag = IntGaugeVec::new(
            Opts::new(
                LAG,
                "Records behind the end of each partition this instance is assigned, per group.",
            ),
            &["group", "topic", "partition"],
        )
        .expect("valid metric");
        let lag = registered(&registry, lag);
        let kafka_broker_rtt = GaugeVec::new(
            Opts::new(
                KAFKA_BROKER_RTT,
                "Round trip to each broker over librdkafka's last statistics window, by quantile.",
            ),
            &["client", "broker", "quantile"],
        )
        .expect("valid metric");
        let kafka_broker_rtt = registered(&registry, kafka_broker_rtt);
        let kafka_broker_requests = IntGaugeVec::new(
            Opts::new(
                KAFKA_BROKER_REQUESTS,
                "Requests waiting to be sent (outbuf) or for their answer (waitresp), per broker.",
            ),
            &["client", "broker", "queue"],
        )
        .expect("valid metric");
        let kafka_broker_requests = registered(&registry, kafka_broker_requests);
        let kafka_client_queue = IntGaugeVec::new(
            Opts::new(
                KAFKA_CLIENT_QUEUE,
                "Records waiting to be produced (producer) and operations waiting to be polled \
                 (reply), per client.",
            ),
            &["client", "queue"],
        )
        .expect("valid metric");
        let kafka_client_queue = registered(&registry, kafka_client_queue);
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
        let api_latency = registered(&registry, api_latency);
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
            event_to_delivery,
            attempt_errors,
            in_flight,
            open_circuits,
            queued,
            retries_scheduled,
            rebalances,
            restore_duration,
            restoring,
            circuit_transitions,
            deferred,
            dead_letters,
            table_records,
            subscriptions,
            lag,
            kafka_broker_rtt,
            kafka_broker_requests,
            kafka_client_queue,
            api_requests,
            api_latency,
        }
    }

    /// Sets `group`'s lag on `partition` of `topic`.
    pub fn set_lag(&self, group: &str, topic: &str, partition: i32, lag: i64) {
        self.lag
            .with_label_values(&[group, topic, &partition.to_string()])
            .set(lag);
    }

    /// Removes the lag series of partitions revoked from this instance, so that a partition's
    /// lag is reported by its current owner only (summing over instances does not count twice).
    pub fn forget_lag(&self, group: &str, topic: &str, partitions: &[i32]) {
        for p in partitions {
            let _ = self
                .lag
                .remove_label_values(&[group, topic, &p.to_string()]);
        }
    }

    /// What librdkafka's statistics say of one broker, as seen by `client` (a bounded name such
    /// as `sender-deliveries-consumer`): round trip p50 and p99 in seconds, requests waiting to
    /// be sent and waiting for their answer. `broker` is the broker's node id.
    pub fn set_kafka_broker(&self, client: &str, broker: &str, figures: &BrokerFigures) {
        let rtt = &self.kafka_broker_rtt;
        rtt.with_label_values(&[client, broker, "0.5"])
            .set(figures.rtt_p50_seconds);
        rtt.with_label_values(&[client, broker, "0.99"])
            .set(figures.rtt_p99_seconds);
        let requests = &self.kafka_broker_requests;
        requests
            .with_label_values(&[client, broker, "outbuf"])
            .set(figures.outbuf_requests);
        requests
            .with_label_values(&[client, broker, "waitresp"])
            .set(figures.waitresp_requests);
    }

    /// `client`'s own queues: records waiting to be produced and operations waiting to be
    /// polled by the application.
    pub fn set_kafka_client_queues(&self, client: &str, producer: i64, reply: i64) {
        let q = &self.kafka_client_queue;
        q.with_label_values(&[client, "producer"]).set(producer);
        q.with_label_values(&[client, "reply"]).set(reply);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// One broker as a client sees it ([`Metrics::set_kafka_broker`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BrokerFigures {
    pub rtt_p50_seconds: f64,
    pub rtt_p99_seconds: f64,
    pub outbuf_requests: i64,
    pub waitresp_requests: i64,
}

/// Registers `m` with `registry` and hands it back.
fn registered<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, m: M) -> M {
    registry
        .register(Box::new(m.clone()))
        .expect("unique metric");
    m
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
