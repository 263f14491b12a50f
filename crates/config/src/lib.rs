//! The configuration contract shared by every Hookline binary (README.md,
//! "Configuration"): the same flag and environment names everywhere, so operators, compose files and
//! outside test tools start any stage the same way.
//!
//! - [`CommonArgs`]: brokers, topic prefix, metrics address, librdkafka overrides; flattened into
//!   each binary's own `clap` parser.
//! - [`Topics`]: the topic names, derived from the prefix in one place.
//! - [`kafka_overrides_from_env`]: `HOOKLINE_KAFKA_<KEY>` → librdkafka `key`.
//! - [`check_environment`]: warns about `HOOKLINE_*` variables nobody reads (typos), and
//!   [`broker_hint`] names the brokers setting when none answered (module `env`).

mod env;

use std::net::SocketAddr;

use clap::Args;

pub use env::{broker_hint, check_environment, unknown_env, KNOWN_ENV};
use ipnet::IpNet;

/// Settings every stage takes.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(long, env = "HOOKLINE_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,

    /// Prefix of every topic name.
    #[arg(long, env = "HOOKLINE_TOPIC_PREFIX", default_value = "hookline.")]
    pub topic_prefix: String,

    /// Listen address for /metrics, /healthz and /readyz (e.g. 127.0.0.1:9461). Each binary has
    /// its own default port; `off` disables the endpoint.
    #[arg(long, env = "HOOKLINE_METRICS_ADDR")]
    pub metrics_addr: Option<String>,

    /// A librdkafka setting, KEY=VALUE (repeatable); overrides HOOKLINE_KAFKA_<KEY> variables.
    #[arg(long = "kafka", value_name = "KEY=VALUE", value_parser = parse_kafka_setting)]
    pub kafka: Vec<(String, String)>,

    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "HOOKLINE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// This instance's stable identity in its consumer groups (`group.instance.id`, static
    /// membership), e.g. a StatefulSet pod name: a restarted instance takes its predecessor's
    /// place at once. Unset: dynamic membership.
    #[arg(long, env = "HOOKLINE_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// The kind of broker, which sets how long a consumer's fetch may wait for records:
    /// `kafka` (Apache Kafka and brokers that answer a fetch as soon as records arrive) or
    /// `local` (the local broker, Tansu, which holds every fetch for the whole wait). See
    /// docs/benchmarks.md, "Fetch waits".
    #[arg(
        long,
        env = "HOOKLINE_BROKER_PROFILE",
        default_value = "kafka",
        value_enum
    )]
    pub broker_profile: BrokerProfile,

    /// `fetch.wait.max.ms` of the consumers on a record's path (the stages' group consumers),
    /// overriding the broker profile's; tables keep theirs. On the local broker: lower is
    /// faster and costs the broker more while idle (docs/benchmarks.md, "Fetch waits").
    #[arg(long, env = "HOOKLINE_FETCH_WAIT_MS", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub fetch_wait_ms: Option<u32>,
}

/// How the broker answers a fetch, which decides how long consumers let a fetch wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BrokerProfile {
    /// A fetch returns as soon as records arrive (Apache Kafka, Redpanda, …): waits can be long
    /// without adding latency, and idle consumers cost the broker little.
    #[default]
    Kafka,
    /// The local broker (Tansu 0.6) reads, then holds the fetch for the whole wait: each hop
    /// costs up to twice the wait, and every idle fetch costs the broker queries.
    Local,
}

impl CommonArgs {
    /// librdkafka settings from the environment, then from `--kafka` flags (flags win).
    pub fn kafka_settings(&self) -> Vec<(String, String)> {
        let mut all = kafka_overrides_from_env(std::env::vars());
        all.extend(self.kafka.iter().cloned());
        all
    }

    pub fn topics(&self) -> Topics {
        Topics::new(&self.topic_prefix)
    }

    /// The metrics listen address: the flag, else `default`; `None` when set to `off`.
    pub fn metrics_addr_or(&self, default: &str) -> Result<Option<SocketAddr>, ConfigError> {
        let raw = self.metrics_addr.as_deref().unwrap_or(default);
        if raw.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        parse_listen_addr("HOOKLINE_METRICS_ADDR / --metrics-addr", raw).map(Some)
    }
}

/// The signing key, shared by the sender (which signs) and the admin API (which publishes the
/// public half); both must point at the same key.
#[derive(Debug, Clone, Args)]
pub struct SigningArgs {
    /// RSA private key (PEM, PKCS#8 or PKCS#1); a 2048-bit key is generated here (mode 0600) when
    /// missing. Never logged.
    #[arg(
        long,
        env = "HOOKLINE_SIGNING_KEY",
        default_value = "hookline-signing-key.pem"
    )]
    pub signing_key: std::path::PathBuf,

    /// The keyId signatures carry (for DNS-published keys: the TXT record's name).
    #[arg(long, env = "HOOKLINE_SIGNING_KEY_ID")]
    pub signing_key_id: Option<String>,
}

/// Settings of the join stages (`hookline-tracking`, `hookline-profiles`).
#[derive(Debug, Clone, Args)]
pub struct JoinStageArgs {
    /// Consumer group id; defaults to `<topic prefix><stage>` (e.g. `hookline.tracking`).
    #[arg(long, env = "HOOKLINE_GROUP_ID")]
    pub group_id: Option<String>,

    /// Input records larger than this many bytes are quarantined.
    #[arg(long, env = "HOOKLINE_MAX_RECORD_BYTES", default_value_t = 1_048_576)]
    pub max_record_bytes: usize,

    /// The profile field that holds the e-mail address (fills `recipient` when an event has none).
    #[arg(long, env = "HOOKLINE_EMAIL_FIELD", default_value = "email")]
    pub email_field: String,

    /// Refuse subscriptions with plain http:// URLs. Set to false only for local runs and tests.
    #[arg(long, env = "HOOKLINE_REQUIRE_HTTPS", default_value_t = true, action = clap::ArgAction::Set)]
    pub require_https: bool,

    /// Input records processed between two offset commits.
    #[arg(long, default_value_t = 500)]
    pub max_batch: usize,

    /// Folder of the local, disk-backed profile table (one per stage instance; it survives
    /// restarts, so only the table's tail is read again).
    #[arg(long, env = "HOOKLINE_STATE_DIR", default_value = "hookline-state")]
    pub state_dir: std::path::PathBuf,

    /// How long the `profiles` topic keeps tombstones (e.g. `24h`, `7d`). A partition whose local
    /// table last caught up longer ago may have missed deletions, and is read again from the
    /// beginning. Default: the topic's `delete.retention.ms`, or 24 h when the broker does not
    /// report it.
    #[arg(long, env = "HOOKLINE_TABLE_RETENTION", value_parser = parse_duration)]
    pub table_retention: Option<std::time::Duration>,

    /// How long the local table keeps the rows of a partition this instance no longer holds
    /// (e.g. `10m`). A partition that comes back within it reads only its tail; after it the
    /// rows and the checkpoint are deleted, and a later assignment reads it from the beginning.
    #[arg(long, env = "HOOKLINE_REVOKED_PARTITION_GRACE", value_parser = parse_duration, default_value = "10m")]
    pub revoked_partition_grace: std::time::Duration,
}

/// `500ms`, `5s`, `1m`, `10m`, `1h`, `1d`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, like 5s, 10m, 1h, 1d"))?;
    let secs = |factor: u64| {
        n.checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{s:?}: too long"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => secs(1),
        "m" => secs(60),
        "h" => secs(3_600),
        "d" => secs(86_400),
        _ => Err(format!(
            "{s:?}: unknown unit {unit:?}; use ms, s, m, h or d"
        )),
    }
}

/// A configuration value that cannot be used, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{setting}: {value:?} is not a listen address; expected IP:PORT such as 127.0.0.1:9461 or [::1]:9461")]
    ListenAddr {
        setting: &'static str,
        value: String,
    },
    #[error("HOOKLINE_ALLOW_NETWORKS / --allow-networks: {value:?} is not a network; expected CIDRs such as 127.0.0.0/8,::1/128")]
    Network { value: String },
}

/// Parses `IP:PORT`, with `localhost:PORT` accepted as 127.0.0.1.
pub fn parse_listen_addr(setting: &'static str, raw: &str) -> Result<SocketAddr, ConfigError> {
    let fixed = raw.trim().replacen("localhost:", "127.0.0.1:", 1);
    fixed.parse().map_err(|_| ConfigError::ListenAddr {
        setting,
        value: raw.to_owned(),
    })
}

/// Parses a comma-separated CIDR list; a bare address means that one host.
pub fn parse_networks(raw: &str) -> Result<Vec<IpNet>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| ConfigError::Network {
                    value: s.to_owned(),
                })
        })
        .collect()
}

fn parse_kafka_setting(raw: &str) -> Result<(String, String), String> {
    let (k, v) = raw.split_once('=').ok_or_else(|| {
        format!("{raw:?}: expected KEY=VALUE, e.g. --kafka session.timeout.ms=6000")
    })?;
    if k.trim().is_empty() {
        return Err(format!("{raw:?}: the librdkafka key is empty"));
    }
    Ok((k.trim().to_owned(), v.to_owned()))
}

/// `HOOKLINE_KAFKA_SESSION_TIMEOUT_MS=6000` → (`session.timeout.ms`, `6000`).
pub fn kafka_overrides_from_env(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vars
        .into_iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix("HOOKLINE_KAFKA_")?;
            (!rest.is_empty()).then(|| (rest.to_ascii_lowercase().replace('_', "."), v))
        })
        .collect();
    out.sort();
    out
}

/// The delay tiers of the retry path after `retries` itself: topic suffix and delay in seconds.
pub const RETRY_TIERS: [(&str, u64); 5] = [
    ("5s", 5),
    ("1m", 60),
    ("10m", 600),
    ("1h", 3_600),
    ("6h", 21_600),
];

/// Topic names, all derived from one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub tracking: String,
    pub profile_changes: String,
    pub profiles: String,
    pub subscriptions: String,
    pub deliveries: String,
    pub retries: String,
    pub outcomes: String,
    pub dead_letter: String,
    pub quarantine: String,
    /// Admin API bearer tokens (hashed), keyed by token id; compacted.
    pub tokens: String,
    /// Domains an account has asked to validate (and validated) by DNS TXT; compacted.
    pub domains: String,
    /// Circuit state and failing-since time per endpoint, keyed by subscription id; compacted
    /// (written by the sender on changes).
    pub endpoint_health: String,
    /// Per-database settings (display name, e-mail field), keyed `<account>:<database>`;
    /// compacted (written by the admin API, followed by the tracking stage).
    pub databases: String,
}

impl Topics {
    pub fn new(prefix: &str) -> Self {
        let t = |name: &str| format!("{prefix}{name}");
        Self {
            tracking: t("tracking"),
            profile_changes: t("profile-changes"),
            profiles: t("profiles"),
            subscriptions: t("subscriptions"),
            deliveries: t("deliveries"),
            retries: t("retries"),
            outcomes: t("outcomes"),
            dead_letter: t("dead-letter"),
            quarantine: t("quarantine"),
            tokens: t("tokens"),
            domains: t("domains"),
            endpoint_health: t("endpoint-health"),
            databases: t("databases"),
        }
    }

    /// The retry topics with the delay each holds its records for, shortest first. The first is
    /// `retries` itself (no delay: every record waits for its own `not_before`); the others are
    /// delay tiers whose records are in due order (`<retries>.5s`, `.1m`, `.10m`, `.1h`, `.6h`).
    pub fn retry_tiers(&self) -> Vec<(String, std::time::Duration)> {
        std::iter::once((self.retries.clone(), std::time::Duration::ZERO))
            .chain(RETRY_TIERS.iter().map(|(suffix, secs)| {
                (
                    format!("{}.{suffix}", self.retries),
                    std::time::Duration::from_secs(*secs),
                )
            }))
            .collect()
    }

    /// Every topic with whether it is compacted.
    pub fn all(&self) -> Vec<(String, bool)> {
        let mut all: Vec<(String, bool)> = [
            (&self.tracking, false),
            (&self.profile_changes, false),
            (&self.profiles, true),
            (&self.subscriptions, true),
            (&self.deliveries, false),
            (&self.retries, false),
            (&self.outcomes, false),
            (&self.dead_letter, false),
            (&self.quarantine, false),
            (&self.tokens, true),
            (&self.domains, true),
            (&self.endpoint_health, true),
            (&self.databases, true),
        ]
        .into_iter()
        .map(|(t, c)| (t.clone(), c))
        .collect();
        all.extend(
            self.retry_tiers()
                .into_iter()
                .skip(1)
                .map(|(t, _)| (t, false)),
        );
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_env_keys_map_to_librdkafka_names() {
        let vars = vec![
            (
                "HOOKLINE_KAFKA_SESSION_TIMEOUT_MS".to_owned(),
                "6000".to_owned(),
            ),
            ("HOOKLINE_BROKERS".to_owned(), "x".to_owned()),
            ("HOOKLINE_KAFKA_".to_owned(), "ignored".to_owned()),
        ];
        assert_eq!(
            kafka_overrides_from_env(vars),
            vec![("session.timeout.ms".to_owned(), "6000".to_owned())]
        );
    }

    #[test]
    fn typos_in_env_names_get_a_suggestion() {
        let found = unknown_env(vec![
            "HOOKLINE_BROKER".to_owned(),
            "HOOKLINE_BROKERS".to_owned(),
            "PATH".to_owned(),
        ]);
        assert_eq!(
            found,
            vec![("HOOKLINE_BROKER".to_owned(), Some("HOOKLINE_BROKERS"))]
        );
    }

    #[test]
    fn networks_and_addresses_parse_with_clear_errors() {
        let nets = parse_networks("127.0.0.0/8, ::1").unwrap();
        assert_eq!(nets.len(), 2);
        assert!(nets[1].contains(&"::1".parse::<std::net::IpAddr>().unwrap()));
        let err = parse_networks("127.0.0.0/33").unwrap_err().to_string();
        assert!(
            err.contains("127.0.0.0/33") && err.contains("CIDR"),
            "{err}"
        );
        assert_eq!(parse_listen_addr("x", "localhost:80").unwrap().port(), 80);
        assert!(parse_listen_addr("x", "80")
            .unwrap_err()
            .to_string()
            .contains("IP:PORT"));
        assert!(parse_kafka_setting("session.timeout.ms").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        use std::time::Duration;
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("1w").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("h")
            .unwrap_err()
            .contains("expected a number"));
        assert_eq!(parse_duration(" 5s "), Ok(Duration::from_secs(5)));
        // The sender's and the CLI's former copies multiplied unchecked: a panic in debug
        // builds, a silently wrong duration in release.
        assert!(parse_duration("300000000000000000d")
            .unwrap_err()
            .contains("too long"));
    }

    #[test]
    fn the_join_stages_take_a_table_retention_and_a_revoked_partition_grace() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            join: JoinStageArgs,
        }
        let cli = Cli::parse_from(["x", "--table-retention", "2h"]);
        assert_eq!(
            cli.join.table_retention,
            Some(std::time::Duration::from_secs(7_200))
        );
        assert!(KNOWN_ENV.contains(&"HOOKLINE_TABLE_RETENTION"));
        assert!(Cli::try_parse_from(["x", "--table-retention", "soon"]).is_err());
        assert_eq!(
            cli.join.revoked_partition_grace,
            std::time::Duration::from_secs(600),
            "default"
        );
        let cli = Cli::parse_from(["x", "--revoked-partition-grace", "30s"]);
        assert_eq!(
            cli.join.revoked_partition_grace,
            std::time::Duration::from_secs(30)
        );
        assert!(KNOWN_ENV.contains(&"HOOKLINE_REVOKED_PARTITION_GRACE"));
    }

    #[test]
    fn an_unreachable_broker_is_named_with_its_setting() {
        let hint = broker_hint(
            "reading partitions of hookline.profiles: Meta data fetch error: BrokerTransportFailure (Local: Broker transport failure)",
            "127.0.0.1:1",
        )
        .unwrap();
        assert!(
            hint.contains("127.0.0.1:1") && hint.contains("--brokers (HOOKLINE_BROKERS)"),
            "{hint}"
        );
        assert_eq!(broker_hint("schema violation", "127.0.0.1:1"), None);
    }

    /// `HOOKLINE_RUN_DIR=/tmp/x make run` made every stage warn that HOOKLINE_RUN_DIR is not a
    /// Hookline setting: the script passes its own variables through to the stages.
    #[test]
    fn the_variables_make_run_reads_are_known() {
        let script = include_str!("../../../scripts/run-local.sh");
        let mut names: Vec<String> = Vec::new();
        for (i, _) in script.match_indices("HOOKLINE_") {
            let name: String = script[i..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            // `HOOKLINE_*` and `HOOKLINE_LOCAL_*PORT` in its comments are patterns, not names.
            if !name.ends_with('_') {
                names.push(name);
            }
        }
        assert!(names.iter().any(|n| n == "HOOKLINE_RUN_DIR"), "{names:?}");
        assert_eq!(unknown_env(names), vec![]);
    }

    #[test]
    fn topic_names_follow_the_prefix() {
        let t = Topics::new("hookline.");
        assert_eq!(t.profile_changes, "hookline.profile-changes");
        assert_eq!(t.endpoint_health, "hookline.endpoint-health");
        assert_eq!(t.all().iter().filter(|(_, compact)| *compact).count(), 6);
    }
}
