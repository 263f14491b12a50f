//! The environment around the settings: which `HOOKLINE_*` variables exist (a typo gets a
//! warning with the closest name), and what to tell someone whose broker did not answer.

/// Every `HOOKLINE_*` variable some Hookline binary reads. A variable outside this list (and not
/// `HOOKLINE_KAFKA_*`) is most likely a typo, and is reported at start-up.
pub const KNOWN_ENV: &[&str] = &[
    "HOOKLINE_BROKERS",
    "HOOKLINE_TOPIC_PREFIX",
    "HOOKLINE_METRICS_ADDR",
    "HOOKLINE_ADMIN_ADDR",
    "HOOKLINE_ADMIN_URL",
    "HOOKLINE_SIGNING_KEY",
    "HOOKLINE_SIGNING_KEY_ID",
    "HOOKLINE_ALLOW_NETWORKS",
    "HOOKLINE_ALLOW_PORTS",
    "HOOKLINE_LOG_FORMAT",
    "HOOKLINE_GROUP_ID",
    "HOOKLINE_INSTANCE_ID",
    "HOOKLINE_BROKER_PROFILE",
    "HOOKLINE_FETCH_WAIT_MS",
    "HOOKLINE_FETCH_WAIT_MS",
    "HOOKLINE_PARTITIONS",
    "HOOKLINE_MAX_RECORD_BYTES",
    "HOOKLINE_STATE_DIR",
    "HOOKLINE_TABLE_RETENTION",
    "HOOKLINE_REVOKED_PARTITION_GRACE",
    // Fault injection for tests (hookline-profiles); inert unless set.
    "HOOKLINE_TEST_CRASH_AFTER_STORE_WRITE",
    "HOOKLINE_TEST_CRASH_AFTER_TABLE_WRITE",
    "HOOKLINE_MAX_SUBPROFILES",
    "HOOKLINE_MAX_TABLE_RECORD_BYTES",
    "HOOKLINE_TANSU_BIN",
    "HOOKLINE_TEST_BROKERS",
    // CI sets it for the whole test run: a test that finds a runtime missing fails instead of
    // skipping (docs/testing.md). Read by tests only; known here so the binaries the tests
    // start do not warn about it.
    "HOOKLINE_REQUIRE_RUNTIMES",
    "HOOKLINE_EMAIL_FIELD",
    "HOOKLINE_REQUIRE_HTTPS",
    "HOOKLINE_RETRY_SCHEDULE",
    "HOOKLINE_MAX_ATTEMPTS",
    "HOOKLINE_MAX_AGE",
    "HOOKLINE_MAX_HOPS",
    "HOOKLINE_ENDPOINT_QUEUE_BYTES",
    "HOOKLINE_ENDPOINT_QUEUE_RECORDS",
    "HOOKLINE_ENDPOINT_MAX_WAIT",
    "HOOKLINE_ENDPOINT_RATE_CAP",
    "HOOKLINE_COPERNICA_ID",
    "HOOKLINE_DISABLE_AFTER",
    "HOOKLINE_BREAKER_COOL_DOWN",
    "HOOKLINE_CONNECT_TIMEOUT",
    "HOOKLINE_REQUEST_TIMEOUT",
    "HOOKLINE_DNS_RESOLVER",
    "HOOKLINE_VERIFICATION_PREFIX",
    "HOOKLINE_MAX_SUBSCRIPTIONS",
    "HOOKLINE_MAX_DATABASES",
    "HOOKLINE_MAX_CHECK_FANOUT",
    "HOOKLINE_VERIFY_RATE",
    "HOOKLINE_TEST_RATE",
    "HOOKLINE_CHECK_RATE",
    "HOOKLINE_REPLAY_RATE",
    "HOOKLINE_AUTH_FAILURE_RATE",
    "HOOKLINE_MAX_CONCURRENT_REPLAYS",
    "HOOKLINE_REPLAY_DEADLINE",
    // The web console of hookline-admin (docs/console.md).
    "HOOKLINE_CONSOLE_SECRET",
    "HOOKLINE_CONSOLE_SESSION_TTL",
    "HOOKLINE_PORTAL_LINK_TTL",
    "HOOKLINE_CONSOLE_FRAME_ANCESTORS",
    "HOOKLINE_CONSOLE_PRODUCT_NAME",
    "HOOKLINE_CONSOLE_LOGO_URL",
    "HOOKLINE_CONSOLE_ACCENT",
    "HOOKLINE_CONSOLE_SECURE_COOKIE",
    "HOOKLINE_CONSOLE_PUBLIC_URL",
    // tests/console.rs saves its screenshots there when set.
    "HOOKLINE_CONSOLE_SCREENSHOTS",
    "HOOKLINE_API_URL",
    "HOOKLINE_TOKEN",
    // `make run` (scripts/run-local.sh): its folder and ports, passed through to the stages.
    "HOOKLINE_RUN_DIR",
    "HOOKLINE_LOCAL_PORT",
    "HOOKLINE_LOCAL_ADMIN_PORT",
    "HOOKLINE_LOCAL_RECEIVER_PORT",
    "HOOKLINE_LOCAL_METRICS_PORT",
];

/// Names of `HOOKLINE_*` variables that no binary reads, each with the closest known name.
pub fn unknown_env(vars: impl IntoIterator<Item = String>) -> Vec<(String, Option<&'static str>)> {
    vars.into_iter()
        .filter(|k| k.starts_with("HOOKLINE_") && !k.starts_with("HOOKLINE_KAFKA_"))
        .filter(|k| !KNOWN_ENV.contains(&k.as_str()))
        .map(|k| {
            let best = KNOWN_ENV
                .iter()
                .copied()
                .min_by_key(|known| edit_distance(known, &k));
            let best = best.filter(|b| edit_distance(b, &k) <= 3);
            (k, best)
        })
        .collect()
}

/// What librdkafka's errors say when no broker answered.
const UNREACHABLE: [&str; 4] = [
    "BrokerTransportFailure",
    "Broker transport failure",
    "AllBrokersDown",
    "All broker connections are down",
];

/// For an error (its whole chain, as text) that says no broker answered, which address was
/// tried and where to change it; `None` for any other error. librdkafka's own words
/// (`Meta data fetch error: BrokerTransportFailure`) name neither.
pub fn broker_hint(error: &str, brokers: &str) -> Option<String> {
    UNREACHABLE.iter().any(|s| error.contains(s)).then(|| {
        format!(
            "no Kafka broker answered at {brokers}: check --brokers (HOOKLINE_BROKERS) and that \
             the broker is running"
        )
    })
}

/// Logs a warning for each unknown `HOOKLINE_*` variable.
pub fn check_environment() {
    for (name, suggestion) in unknown_env(std::env::vars().map(|(k, _)| k)) {
        match suggestion {
            Some(s) => tracing::warn!(
                "environment variable {name} is not a Hookline setting; did you mean {s}?"
            ),
            None => tracing::warn!(
                "environment variable {name} is not a Hookline setting; it is ignored"
            ),
        }
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
