//! librdkafka settings derived from the configuration contract.

use rdkafka::ClientConfig;

/// Bootstrap servers plus operator overrides (`HOOKLINE_KAFKA_*`, `--kafka`), applied last so an
/// operator can change any default below.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub overrides: Vec<(String, String)>,
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>, overrides: Vec<(String, String)>) -> Self {
        Self { brokers: brokers.into(), overrides }
    }

    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c.set("client.id", "hookline");
        c
    }

    fn finish(&self, mut c: ClientConfig) -> ClientConfig {
        for (k, v) in &self.overrides {
            c.set(k, v);
        }
        c
    }

    /// A group consumer that stores offsets only when the stage says so; librdkafka commits the
    /// stored offsets periodically and on revocation.
    pub fn group_consumer(&self, group_id: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", "50")
            .set("partition.assignment.strategy", "range");
        self.finish(c)
    }

    /// A consumer that reads assigned partitions without a group: tables are read from their
    /// beginning by every instance that owns the partition, never committed.
    pub fn table_consumer(&self, name: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", name)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "20");
        self.finish(c)
    }

    /// An idempotent producer with the Java client's default partitioner, so keys land on the
    /// same partitions whichever language produced them.
    pub fn producer(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000");
        self.finish(c)
    }

    pub fn admin(&self) -> ClientConfig {
        self.finish(self.base())
    }
}
