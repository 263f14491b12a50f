//! Quotas and rate limits of the admin API, so that one account (or one source address) cannot
//! exhaust what every tenant shares: the outbound calls of verification, tests and checks, the
//! replays that read the dead-letter topic, and the token checks.
//!
//! | limit | default | answer when exceeded |
//! |---|---|---|
//! | subscriptions per account | 1000 | `429 quota_exceeded` (delete one to make room; no `Retry-After`) |
//! | databases with settings per account | 1000 | the same |
//! | endpoints one check calls | 100 active ones | the rest are listed as skipped |
//! | URL verifications + domain validations per account | 30/m | `429 rate_limited` + `Retry-After` |
//! | test webhooks per account | 60/m | the same |
//! | checks per account | 6/m | the same |
//! | replays per account | 10/h | the same |
//! | failed authentications per source address (IPv6: per /64) | 20/m | the same, for any token from there |
//!
//! Every rate is a token bucket holding at most one period's worth (`30/m`: a burst of 30,
//! then one every 2 s). Buckets live in memory per instance: with several admin instances behind
//! a load balancer, an account gets up to the rate per instance. The source address is the TCP
//! peer's: behind a reverse proxy every client shares the proxy's address, so set the
//! authentication limit with that in mind (or `off`).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::Args;
use hookline_model::AccountId;

use crate::error::ApiError;

/// The limits' settings (flags and `HOOKLINE_*` variables).
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Subscriptions one account may have.
    #[arg(long, env = "HOOKLINE_MAX_SUBSCRIPTIONS", default_value_t = 1000)]
    pub max_subscriptions: usize,

    /// Databases one account may keep settings for (`PUT /v1/databases/{database}`).
    #[arg(long, env = "HOOKLINE_MAX_DATABASES", default_value_t = 1000)]
    pub max_databases: usize,

    /// Endpoints one "check now" calls at most; only active subscriptions are called.
    #[arg(long, env = "HOOKLINE_MAX_CHECK_FANOUT", default_value_t = 100)]
    pub max_check_fanout: usize,

    /// URL verifications and domain validations per account: N/s, N/m or N/h, or off.
    #[arg(long, env = "HOOKLINE_VERIFY_RATE", default_value = "30/m")]
    pub verify_rate: String,

    /// Test webhooks per account.
    #[arg(long, env = "HOOKLINE_TEST_RATE", default_value = "60/m")]
    pub test_rate: String,

    /// "Check now" calls per account.
    #[arg(long, env = "HOOKLINE_CHECK_RATE", default_value = "6/m")]
    pub check_rate: String,

    /// Replays per account.
    #[arg(long, env = "HOOKLINE_REPLAY_RATE", default_value = "10/h")]
    pub replay_rate: String,

    /// Failed authentications per source address (IPv6: per /64); past it, every request from
    /// there that carries a token is refused until the bucket refills.
    #[arg(long, env = "HOOKLINE_AUTH_FAILURE_RATE", default_value = "20/m")]
    pub auth_failure_rate: String,

    /// Replays running at once on this instance (each account runs one at a time).
    #[arg(long, env = "HOOKLINE_MAX_CONCURRENT_REPLAYS", default_value_t = 2)]
    pub max_concurrent_replays: usize,

    /// How long a replay may read the dead-letter topic; past it nothing is replayed.
    #[arg(long, env = "HOOKLINE_REPLAY_DEADLINE", default_value = "120s", value_parser = hookline_config::parse_duration)]
    pub replay_deadline: std::time::Duration,
}

/// A rate: `count` per `period`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

impl Rate {
    /// `30/m` (also `/s`, `/h`), or `off` (`None`: unlimited).
    pub fn parse(flag: &str, value: &str) -> Result<Option<Self>, String> {
        let v = value.trim();
        if v.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bad = || format!("{flag} {value:?}: expected N/s, N/m or N/h (e.g. 30/m), or off");
        let (n, unit) = v.split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Some(Self { count, period }))
    }

    fn per_second(&self) -> f64 {
        f64::from(self.count) / self.period.as_secs_f64()
    }
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets per key. Memory is bounded: past [`MAX_KEYS`] keys, full buckets (which hold
/// no information) are dropped, and if none is full a new key starts with the oldest dropped.
pub struct RateLimiter<K> {
    rate: Option<Rate>,
    buckets: Mutex<HashMap<K, Bucket>>,
}

/// How many keys a [`RateLimiter`] tracks before it forgets idle ones.
pub const MAX_KEYS: usize = 10_000;

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(rate: Option<Rate>) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long until one is there.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        self.take_at(key, Instant::now(), true)
    }

    /// Whether `key` has a token, without taking it.
    pub fn peek(&self, key: &K) -> Result<(), Duration> {
        self.take_at(key, Instant::now(), false)
    }

    fn take_at(&self, key: &K, now: Instant, take: bool) -> Result<(), Duration> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let capacity = f64::from(rate.count);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let per_second = rate.per_second();
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * per_second
                    < capacity
            });
            if buckets.len() >= MAX_KEYS {
                let oldest = buckets
                    .iter()
                    .min_by_key(|(_, b)| b.updated)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    buckets.remove(&k);
                }
            }
        }
        let b = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate.per_second()).min(capacity);
        b.updated = now;
        if b.tokens >= 1.0 {
            if take {
                b.tokens -= 1.0;
            }
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - b.tokens) / rate.per_second(),
            ))
        }
    }
}

/// The key of a source address: the address itself, or its /64 for IPv6 (one host usually
/// holds a whole /64).
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Every limit of one admin instance.
pub struct Limits {
    pub max_subscriptions: usize,
    pub max_databases: usize,
    pub max_check_fanout: usize,
    pub verify: RateLimiter<AccountId>,
    pub test: RateLimiter<AccountId>,
    pub check: RateLimiter<AccountId>,
    pub replay: RateLimiter<AccountId>,
    pub auth_failures: RateLimiter<IpAddr>,
}

impl Limits {
    pub fn from_args(a: &LimitArgs) -> Result<Self, String> {
        Ok(Self {
            max_subscriptions: a.max_subscriptions,
            max_databases: a.max_databases,
            max_check_fanout: a.max_check_fanout,
            verify: RateLimiter::new(Rate::parse(
                "HOOKLINE_VERIFY_RATE / --verify-rate",
                &a.verify_rate,
            )?),
            test: RateLimiter::new(Rate::parse(
                "HOOKLINE_TEST_RATE / --test-rate",
                &a.test_rate,
            )?),
            check: RateLimiter::new(Rate::parse(
                "HOOKLINE_CHECK_RATE / --check-rate",
                &a.check_rate,
            )?),
            replay: RateLimiter::new(Rate::parse(
                "HOOKLINE_REPLAY_RATE / --replay-rate",
                &a.replay_rate,
            )?),
            auth_failures: RateLimiter::new(Rate::parse(
                "HOOKLINE_AUTH_FAILURE_RATE / --auth-failure-rate",
                &a.auth_failure_rate,
            )?),
        })
    }
}

/// `429 quota_exceeded` when an account already holds `held` of the `max` `what` it may have
/// (`variable` is the operator's setting for the limit).
pub fn check_quota(held: usize, max: usize, what: &str, variable: &str) -> Result<(), ApiError> {
    if held < max {
        return Ok(());
    }
    Err(ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        format!(
            "this account has {max} {what}, as many as it may; delete one to make room (the \
             operator sets the limit with {variable})"
        ),
    ))
}

/// Takes one token of `limiter` for `account`, or answers 429 with `Retry-After`.
pub fn charge(
    limiter: &RateLimiter<AccountId>,
    account: &AccountId,
    what: &str,
) -> Result<(), ApiError> {
    limiter.take(account).map_err(|wait| {
        ApiError::too_many(
            "rate_limited",
            format!(
                "too many {what} for this account; try again in {} s",
                retry_secs(wait)
            ),
            wait,
        )
    })
}

/// Whole seconds to wait, at least one.
pub fn retry_secs(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_bad_ones_say_what_to_write() {
        assert_eq!(
            Rate::parse("f", "30/m"),
            Ok(Some(Rate {
                count: 30,
                period: Duration::from_secs(60)
            }))
        );
        assert_eq!(Rate::parse("f", "off"), Ok(None));
        for bad in ["30", "0/m", "x/m", "5/d", ""] {
            let e = Rate::parse("HOOKLINE_X", bad).unwrap_err();
            assert!(e.contains("HOOKLINE_X") && e.contains("30/m"), "{e}");
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_one_per_interval() {
        let l = RateLimiter::new(Some(Rate {
            count: 3,
            period: Duration::from_secs(3),
        }));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.take_at(&"a", t0, true), Ok(()));
        }
        let wait = l.take_at(&"a", t0, true).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(
            l.take_at(&"b", t0, true),
            Ok(()),
            "another key has its own bucket"
        );
        assert!(l
            .take_at(&"a", t0 + Duration::from_millis(500), false)
            .is_err());
        let later = t0 + Duration::from_millis(1001);
        assert_eq!(l.take_at(&"a", later, false), Ok(()), "peek does not take");
        assert_eq!(l.take_at(&"a", later, true), Ok(()));
        assert!(l.take_at(&"a", later, true).is_err());
        assert_eq!(retry_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_secs(Duration::ZERO), 1);
    }

    #[test]
    fn memory_stays_bounded_under_many_keys() {
        let l = RateLimiter::new(Some(Rate {
            count: 1,
            period: Duration::from_secs(3600),
        }));
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS + 50) {
            let _ = l.take_at(&i, t0, true);
        }
        let n = l
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        assert!(n <= MAX_KEYS, "{n}");
    }

    #[test]
    fn ipv6_sources_are_limited_per_64() {
        let a = source_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = source_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(
            source_key("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
    }
}
