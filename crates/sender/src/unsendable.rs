//! A delivery whose subscription cannot be sent to now (unknown here, paused, disabled, not
//! verified) is never dropped: while this instance's view of the subscription may lag the
//! routing stage that built the delivery, it is looked at again shortly; otherwise it goes to
//! `dead-letter` with the reason, to be replayed once the subscription is fixed.

use std::time::Duration;

use hookline_model::{DeadReason, Delivery, OutcomeResult, Subscription, SubscriptionStatus};
use time::OffsetDateTime;

use crate::jobs::{first_attempt_at, Ctx, Job, Last, Step};
use crate::outputs::{dead, outcome, Output};
use crate::Shared;

/// Why a delivery cannot be sent to its subscription now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsendable {
    Unknown,
    Paused,
    Disabled,
    Unverified,
}

impl Unsendable {
    fn outcome(self) -> (OutcomeResult, DeadReason, &'static str) {
        match self {
            Self::Unknown => (
                OutcomeResult::SkippedDisabled,
                DeadReason::SubscriptionUnknown,
                "the subscription does not exist (here)",
            ),
            Self::Paused => (
                OutcomeResult::SkippedPaused,
                DeadReason::SubscriptionPaused,
                "the subscription is paused",
            ),
            Self::Disabled => (
                OutcomeResult::SkippedDisabled,
                DeadReason::SubscriptionDisabled,
                "the subscription is disabled",
            ),
            Self::Unverified => (
                OutcomeResult::SkippedDisabled,
                DeadReason::SubscriptionUnverified,
                "the subscription's URL is not verified",
            ),
        }
    }
}

/// How long after its creation a delivery whose subscription this instance does not know (or
/// knows only in a version older than the delivery) is looked at again instead of dead-lettered:
/// the routing stage that built it saw a newer version, which is on its way here.
const VIEW_LAG_GRACE: Duration = Duration::from_secs(60);
/// How long such a delivery waits before it is looked at again.
const VIEW_LAG_WAIT: Duration = Duration::from_secs(2);

/// The subscription to send for, or why not, and whether this instance's view may lag the
/// routing stage that built the delivery.
pub(crate) fn current_subscription(
    shared: &Shared,
    d: &Delivery,
) -> Result<Subscription, (Unsendable, bool)> {
    let sub = shared
        .subscriptions
        .read()
        .get(&d.subscription_id)
        .map(|s| s.sub.clone());
    let Some(s) = sub else {
        return Err((Unsendable::Unknown, true));
    };
    // The delivery is newer than the version known here: the routing stage saw a later one.
    let stale = match (&s.updated, hookline_model::timefmt::parse(&d.created_at)) {
        (Some(u), Some(created)) => hookline_model::timefmt::parse(u).is_some_and(|u| u < created),
        _ => false,
    };
    match s.status {
        SubscriptionStatus::Active => Ok(s),
        SubscriptionStatus::Paused => Err((Unsendable::Paused, stale)),
        SubscriptionStatus::Disabled => Err((Unsendable::Disabled, stale)),
        SubscriptionStatus::Unverified => Err((Unsendable::Unverified, stale)),
    }
}

pub(crate) fn age_of(t: &str) -> Duration {
    hookline_model::timefmt::parse(t).map_or(Duration::ZERO, |t| {
        Duration::from_secs_f64((OffsetDateTime::now_utc() - t).as_seconds_f64().max(0.0))
    })
}

/// A delivery that cannot be sent now: looked at again shortly while this instance's view of
/// the subscription may lag, dead-lettered (with the reason) otherwise — never dropped.
pub(crate) fn step(ctx: &Ctx, job: &Job, why: Unsendable, may_lag: bool, inline: bool) -> Step {
    let d = &job.delivery;
    if may_lag && age_of(&d.created_at) < VIEW_LAG_GRACE {
        let outputs = if inline {
            Vec::new()
        } else {
            let last = Last {
                first_attempt_at: first_attempt_at(job),
                error: Some(format!("waiting for the subscription: {}", why.outcome().2)),
                status: None,
            };
            vec![ctx.retry(job, d, job.attempt, VIEW_LAG_WAIT, last)]
        };
        return Step {
            outputs,
            retry_in: inline.then_some((VIEW_LAG_WAIT, job.attempt)),
            first_attempt_at: None,
        };
    }
    let (result, reason, text) = why.outcome();
    ctx.shared
        .metrics
        .attempts
        .with_label_values(&[result.as_str()])
        .inc();
    let first = first_attempt_at(job);
    Step {
        outputs: vec![
            Output::Outcome(Box::new(outcome(
                d,
                job.attempt,
                result,
                Some(text.to_owned()),
            ))),
            dead(
                d,
                job.attempt.saturating_sub(1),
                &first,
                reason,
                Some(text.to_owned()),
                None,
            ),
        ],
        retry_in: None,
        first_attempt_at: None,
    }
}
