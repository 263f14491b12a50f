//! What follows an attempt, as a pure function of what was seen: delivered, another attempt
//! after a delay, dead-letter (with the reason), or disable the subscription.
//!
//! A circuit that refused the attempt counts as an attempt like any failure: it uses up one
//! of `--max-attempts`, the delivery's age is checked, and the next try waits at least until
//! the circuit's probe — so a backlog behind an open circuit ends in `dead-letter` instead of
//! cycling forever.

use std::time::Duration;

use hookline_model::DeadReason;

use crate::policy::RetryPolicy;

/// What one attempt saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seen {
    Delivered,
    /// A failure worth retrying, with the server's `Retry-After` if it sent one.
    Failed {
        retry_after: Option<Duration>,
    },
    /// 410 Gone: the receiver asks to stop.
    Gone,
    /// Trying again cannot help (invalid URL, refused by the network guard).
    Permanent,
    /// Not sent: the endpoint's circuit is open for this long still.
    CircuitOpen {
        open_for: Duration,
    },
}

/// The facts the decision needs besides what was seen.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub seen: Seen,
    /// The number of the attempt just made (1 for the first).
    pub attempt: u32,
    /// Time since the first attempt (or since the delivery was deferred the first time).
    pub age: Duration,
    /// How long every attempt to the endpoint has failed, if it is failing.
    pub failing_for: Option<Duration>,
    /// Records the delivery has had on the retry path so far.
    pub hops: u32,
}

/// The bounds the decision keeps.
#[derive(Debug, Clone)]
pub struct Bounds {
    pub policy: RetryPolicy,
    /// Disable a subscription whose endpoint has failed every attempt for this long.
    pub disable_after: Duration,
    /// Records on the retry path per delivery before it is dead-lettered.
    pub max_hops: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Delivered,
    /// Attempt `next_attempt` after `delay`.
    Retry {
        delay: Duration,
        next_attempt: u32,
    },
    Dead(DeadReason),
    /// Disable the subscription, for this reason.
    Disable(&'static str),
}

pub fn decide(b: &Bounds, f: Facts) -> Decision {
    let gone_for_good = f.failing_for.is_some_and(|d| d >= b.disable_after);
    let earliest = match f.seen {
        Seen::Delivered => return Decision::Delivered,
        Seen::Gone => return Decision::Disable("the endpoint answered 410 Gone"),
        _ if gone_for_good => {
            return Decision::Disable("the endpoint has failed continuously for too long")
        }
        Seen::Permanent => return Decision::Dead(DeadReason::Permanent),
        Seen::Failed { retry_after } => retry_after,
        Seen::CircuitOpen { open_for } => Some(open_for),
    };
    let next_attempt = f.attempt + 1;
    if next_attempt > b.policy.max_attempts {
        return Decision::Dead(DeadReason::Exhausted);
    }
    if f.hops >= b.max_hops {
        return Decision::Dead(DeadReason::TooManyHops);
    }
    match b.policy.delay(next_attempt, f.age, earliest) {
        Some(delay) => Decision::Retry {
            delay,
            next_attempt,
        },
        None => Decision::Dead(DeadReason::Expired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Bounds {
            policy: RetryPolicy {
                steps: vec![Duration::from_secs(10), Duration::from_secs(60)],
                max_attempts: 3,
                max_age: Duration::from_secs(3600),
            },
            disable_after: Duration::from_secs(86_400),
            max_hops: 20,
        }
    }

    fn facts(seen: Seen) -> Facts {
        Facts {
            seen,
            attempt: 1,
            age: Duration::ZERO,
            failing_for: None,
            hops: 0,
        }
    }

    #[test]
    fn a_failure_is_retried_with_the_next_attempt_number_within_the_step() {
        let d = decide(&bounds(), facts(Seen::Failed { retry_after: None }));
        let Decision::Retry {
            delay,
            next_attempt,
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(next_attempt, 2);
        assert!(delay >= Duration::from_secs(5) && delay <= Duration::from_secs(10));
    }

    #[test]
    fn an_open_circuit_counts_as_an_attempt_and_waits_for_the_probe() {
        let open_for = Duration::from_secs(30);
        let d = decide(&bounds(), facts(Seen::CircuitOpen { open_for }));
        assert!(
            matches!(d, Decision::Retry { delay, next_attempt: 2 } if delay >= open_for),
            "{d:?}"
        );
        let mut f = facts(Seen::CircuitOpen { open_for });
        f.attempt = 3;
        assert_eq!(
            decide(&bounds(), f),
            Decision::Dead(DeadReason::Exhausted),
            "a backlog behind an open circuit ends in dead-letter"
        );
        let mut f = facts(Seen::CircuitOpen { open_for });
        f.age = Duration::from_secs(3590);
        assert_eq!(decide(&bounds(), f), Decision::Dead(DeadReason::Expired));
    }

    #[test]
    fn retry_after_is_honoured_unless_it_passes_the_maximum_age() {
        let ra = Duration::from_secs(120);
        let d = decide(
            &bounds(),
            facts(Seen::Failed {
                retry_after: Some(ra),
            }),
        );
        assert!(
            matches!(d, Decision::Retry { delay, .. } if delay == ra),
            "{d:?}"
        );
        let d = decide(
            &bounds(),
            facts(Seen::Failed {
                retry_after: Some(Duration::from_secs(7200)),
            }),
        );
        assert_eq!(d, Decision::Dead(DeadReason::Expired));
    }

    #[test]
    fn hops_bound_the_records_per_delivery() {
        let mut f = facts(Seen::Failed { retry_after: None });
        f.hops = 20;
        assert_eq!(
            decide(&bounds(), f),
            Decision::Dead(DeadReason::TooManyHops)
        );
    }

    #[test]
    fn gone_and_long_failing_endpoints_disable_permanent_failures_dead_letter() {
        assert!(matches!(
            decide(&bounds(), facts(Seen::Gone)),
            Decision::Disable(_)
        ));
        let mut f = facts(Seen::Failed { retry_after: None });
        f.failing_for = Some(Duration::from_secs(86_400));
        assert!(matches!(decide(&bounds(), f), Decision::Disable(_)));
        assert_eq!(
            decide(&bounds(), facts(Seen::Permanent)),
            Decision::Dead(DeadReason::Permanent)
        );
        assert_eq!(
            decide(&bounds(), facts(Seen::Delivered)),
            Decision::Delivered
        );
    }
}
