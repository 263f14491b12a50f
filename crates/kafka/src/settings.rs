//! librdkafka settings derived from the configuration contract.

use hookline_config::{BrokerProfile, CommonArgs};
use rdkafka::ClientConfig;

/// How fresh a consumer's records must be, which sets its `fetch.wait.max.ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// On a record's path (the stages' group consumers): every hop's wait is latency on the
    /// local broker.
    Hot,
    /// Tables (profiles, subscriptions, endpoint health, tokens, domains): a reader that must
    /// be current asks for the end offset and waits for the reader to get there
    /// (`TableTail::caught_up`), which costs latency only when the table just changed; a
    /// fraction of a second late is fine otherwise, and idle fetches are what the local broker
    /// pays for.
    Cold,
}

/// `fetch.wait.max.ms` for `freshness` on `profile` (docs/benchmarks.md, "Fetch waits").
///
/// On Apache Kafka a fetch returns as soon as records arrive, so the wait only bounds how
/// often an idle consumer asks and how long a resumed or sought partition waits for the fetch
/// in flight: 100 ms on the record's path, 500 ms (librdkafka's default) for tables. The local
/// broker holds every fetch for the whole wait, so a click waits about two of them; measured
/// (docs/benchmarks.md, "Fetch waits"), 5, 10, 25 and 50 ms give an idle p50 of 33, 36, 62 and
/// 109 ms while the idle broker spends 0.72, 0.52, 0.38 and 0.21 cores; so 25 ms on the
/// record's path, the knee, and 250 ms for tables.
pub fn fetch_wait_ms(profile: BrokerProfile, freshness: Freshness) -> u32 {
    match (profile, freshness) {
        (BrokerProfile::Kafka, Freshness::Hot) => 100,
        (BrokerProfile::Kafka, Freshness::Cold) => 500,
        (BrokerProfile::Local, Freshness::Hot) => 25,
        (BrokerProfile::Local, Freshness::Cold) => 250,
    }
}

/// How a producer keeps a partition's records in order through retries, per broker profile.
///
/// On Apache Kafka: the idempotent producer, which also keeps a retry from writing a record
/// twice. On the local broker it does not fit. librdkafka's idempotent producer sends one
/// request per partition at a time (it allows five *messages* in flight, so a batch of five or
/// more is alone), and while that request is out and the next batch's `linger.ms` has passed,
/// its broker thread polls without sleeping. Tansu answers a produce in tens of milliseconds,
/// so under load that spin was 45 % of the sender's CPU and 75 % of the tracking stage's
/// (perf, 2026-12-02, docs/benchmarks.md "Producer settings"); and an idempotent producer that
/// sends again after a broken connection makes Tansu 0.6's storage panic (docs/architecture.md,
/// "Broker outages"). So the local profile writes without idempotence and with one request in
/// flight per connection, which keeps the order (a retry goes before anything after it) and
/// never spins: the next request waits in librdkafka's queue, not in a polling loop. A retry
/// after a lost answer may write a record twice (at least once, as everywhere in Hookline;
/// receivers drop repeats by delivery id).
pub fn producer_ordering(profile: BrokerProfile) -> [(&'static str, &'static str); 2] {
    match profile {
        BrokerProfile::Kafka => [
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "5"),
        ],
        BrokerProfile::Local => [
            ("enable.idempotence", "false"),
            ("max.in.flight.requests.per.connection", "1"),
        ],
    }
}

/// Bootstrap servers plus operator overrides (`HOOKLINE_KAFKA_*`, `--kafka`), applied last so an
/// operator can change any default below.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub overrides: Vec<(String, String)>,
    /// This instance's `group.instance.id` in its groups (static membership), if any.
    pub instance: Option<String>,
    /// How the broker answers fetches ([`fetch_wait_ms`]).
    pub profile: BrokerProfile,
    /// The fetch wait of the consumers on a record's path, when set (`HOOKLINE_FETCH_WAIT_MS`).
    pub hot_wait_ms: Option<u32>,
    /// `client.id` of every client: the stage's name (`hookline-sender`, …), so broker quotas,
    /// broker logs and broker-side metrics tell the stages apart. An operator's `client.id`
    /// override wins.
    pub client_id: String,
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>, overrides: Vec<(String, String)>) -> Self {
        Self {
            brokers: brokers.into(),
            overrides,
            instance: None,
            profile: BrokerProfile::default(),
            hot_wait_ms: None,
            client_id: "hookline".to_owned(),
        }
    }

    /// The same settings for the clients of `name` (a stage or tool: `hookline-tracking`, …).
    pub fn with_client_id(mut self, name: &str) -> Self {
        self.client_id = name.to_owned();
        self
    }

    /// The settings a stage's common flags give: brokers, `HOOKLINE_KAFKA_*` and `--kafka`
    /// overrides, static membership and the broker profile.
    pub fn from_common(common: &CommonArgs) -> Self {
        Self::new(common.brokers.clone(), common.kafka_settings())
            .with_instance(crate::membership::static_instance_id(
                common.instance_id.as_deref(),
            ))
            .with_profile(common.broker_profile)
            .with_hot_wait(common.fetch_wait_ms)
    }

    /// The same settings with the record path's fetch wait set to `ms` (when `Some`).
    pub fn with_hot_wait(mut self, ms: Option<u32>) -> Self {
        self.hot_wait_ms = ms;
        self
    }

    /// The same settings for a broker of `profile`.
    pub fn with_profile(mut self, profile: BrokerProfile) -> Self {
        self.profile = profile;
        self
    }

    fn fetch_wait(&self, freshness: Freshness) -> String {
        match (freshness, self.hot_wait_ms) {
            (Freshness::Hot, Some(ms)) => ms.to_string(),
            _ => fetch_wait_ms(self.profile, freshness).to_string(),
        }
    }

    /// The same settings with group consumers joining as `instance` (static membership).
    pub fn with_instance(mut self, instance: Option<String>) -> Self {
        self.instance = instance;
        self
    }

    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c.set("client.id", &self.client_id);
        c
    }

    /// Applies the operator's overrides that fit this kind of client, so that one set of
    /// `HOOKLINE_KAFKA_*` variables configures consumers and producers without librdkafka
    /// warning about properties of the other kind.
    fn finish(&self, mut c: ClientConfig, kind: Kind) -> ClientConfig {
        for (k, v) in &self.overrides {
            let fits = match kind {
                Kind::Consumer => !is_producer_only(k),
                Kind::Producer => !is_consumer_only(k),
                Kind::Admin => !is_producer_only(k) && !is_consumer_only(k),
            };
            if fits {
                c.set(k, v);
            }
        }
        c
    }

    /// A group consumer that stores offsets only when the stage says so; librdkafka commits the
    /// stored offsets periodically and on revocation. With an instance identity it is a static
    /// member of the group (`membership`).
    pub fn group_consumer(&self, group_id: &str) -> ClientConfig {
        let mut c = self.base();
        if let Some(instance) = &self.instance {
            c.set("group.instance.id", instance);
        }
        c.set("group.id", group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", self.fetch_wait(Freshness::Hot))
            .set("partition.assignment.strategy", "range")
            // The consumer lag per partition (`lag`) comes with librdkafka's statistics.
            .set("statistics.interval.ms", "5000");
        self.finish(c, Kind::Consumer)
    }

    /// A consumer that reads assigned partitions without a group: tables are read from their
    /// beginning by every instance that owns the partition, never committed
    /// ([`Freshness::Cold`]).
    pub fn table_consumer(&self, name: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", name)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", self.fetch_wait(Freshness::Cold));
        self.finish(c, Kind::Consumer)
    }

    /// A producer with the Java client's default partitioner, so keys land on the same
    /// partitions whichever language produced them; `acks=all`, and records of a partition
    /// written in the order they were produced, retries included ([`producer_ordering`]).
    pub fn producer(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000");
        for (k, v) in producer_ordering(self.profile) {
            c.set(k, v);
        }
        self.finish(c, Kind::Producer)
    }

    pub fn admin(&self) -> ClientConfig {
        self.finish(self.base(), Kind::Admin)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Consumer,
    Producer,
    Admin,
}

fn is_consumer_only(key: &str) -> bool {
    key.starts_with("group.")
        || key.starts_with("fetch.")
        || key.starts_with("enable.auto.")
        || key.starts_with("auto.")
        || key.starts_with("session.")
        || key.starts_with("heartbeat.")
        || key.starts_with("partition.assignment")
        || key.starts_with("max.poll")
        || key.starts_with("queued.")
        || key == "isolation.level"
        || key == "enable.partition.eof"
        || key == "check.crcs"
}

fn is_producer_only(key: &str) -> bool {
    key.starts_with("queue.buffering")
        || key.starts_with("batch.")
        || key.starts_with("compression.")
        || key.starts_with("message.timeout")
        || key.starts_with("delivery.timeout")
        || key.starts_with("transaction")
        || key.starts_with("request.required")
        || key == "acks"
        || key == "linger.ms"
        || key == "enable.idempotence"
        || key == "partitioner"
        || key == "retries"
        || key == "message.send.max.retries"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_keep_order_idempotent_on_kafka_one_request_at_a_time_on_the_local_broker() {
        let kafka = KafkaSettings::new("127.0.0.1:9092", vec![]).producer();
        assert_eq!(kafka.get("enable.idempotence"), Some("true"));
        assert_eq!(kafka.get("acks"), Some("all"));
        let local = KafkaSettings::new("127.0.0.1:9092", vec![])
            .with_profile(BrokerProfile::Local)
            .producer();
        assert_eq!(local.get("enable.idempotence"), Some("false"));
        assert_eq!(
            local.get("max.in.flight.requests.per.connection"),
            Some("1")
        );
        assert_eq!(local.get("acks"), Some("all"));
        // An operator's choice wins over the profile's.
        let chosen = KafkaSettings::new(
            "127.0.0.1:9092",
            vec![("enable.idempotence".into(), "true".into())],
        )
        .with_profile(BrokerProfile::Local)
        .producer();
        assert_eq!(chosen.get("enable.idempotence"), Some("true"));
    }

    #[test]
    fn every_client_carries_the_stage_name_unless_the_operator_sets_one() {
        let plain = KafkaSettings::new("127.0.0.1:9092", vec![]);
        assert_eq!(plain.producer().get("client.id"), Some("hookline"));
        let sender = plain.clone().with_client_id("hookline-sender");
        assert_eq!(sender.producer().get("client.id"), Some("hookline-sender"));
        assert_eq!(
            sender.group_consumer("g").get("client.id"),
            Some("hookline-sender")
        );
        assert_eq!(
            sender.table_consumer("t").get("client.id"),
            Some("hookline-sender")
        );
        let overridden = KafkaSettings::new(
            "127.0.0.1:9092",
            vec![("client.id".into(), "billing-hooks".into())],
        )
        .with_client_id("hookline-sender");
        assert_eq!(
            overridden.group_consumer("g").get("client.id"),
            Some("billing-hooks")
        );
    }
}
