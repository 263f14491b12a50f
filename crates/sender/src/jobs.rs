//! What happens to one delivery once its loop has read it: taken by its endpoint (an unordered
//! job, or the ordered worker of its subscription), or moved to the retry path.
//!
//! An attempt checks the subscription and its circuit, signs and POSTs, and [`decide`]s what
//! follows; the records that causes are written before the input record counts as finished.

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use hookline_config::Topics;
use hookline_kafka::Producer;
use hookline_model::{
    DeadReason, Delivery, OutcomeResult, RetryRecord, Subscription, SubscriptionId,
    SubscriptionStatus,
};
use hookline_telemetry::metrics::{IntGauge, Metrics};
use hookline_telemetry::trace;
use hookline_webhook::{traced_attempt, AttemptReport, Verdict};
use time::OffsetDateTime;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::breaker::{Admit, Breaker, Transition};
use crate::decide::{decide, Decision, Facts, Seen};
use crate::endpoint::{DeferReason, Ticket};
use crate::handover::Handover;
use crate::outputs::{dead, outcome, write, Output};
use crate::tiers::{Link, Recent, Tiers};
use crate::unsendable;
use crate::Shared;

/// One delivery in hand, and the attempt to make.
#[derive(Debug)]
pub struct Job {
    pub delivery: Delivery,
    pub attempt: u32,
    /// When the first attempt started (or, before any, when the delivery was created).
    pub first_attempt_at: Option<String>,
    pub hops: u32,
    /// How long to wait before the attempt (the rest of a retry's delay, at most a few seconds).
    pub wait: Duration,
    pub partition: i32,
    pub offset: i64,
    /// Cancelled when the job's partition is revoked or the loop stops: work not yet started
    /// is then dropped, and read again by whoever owns the partition next.
    pub cancel: CancellationToken,
    /// The delivery's place in its endpoint's queue.
    pub ticket: Option<Ticket>,
    pub taken_at: Instant,
    /// Its share of the loop's memory budget.
    pub _budget: Option<OwnedSemaphorePermit>,
}

impl Job {
    /// Which link of its chain on the retry path this job is.
    pub fn link(&self) -> Link {
        (self.delivery.delivery_id.0.clone(), self.attempt, self.hops)
    }
}

/// Everything a job needs.
#[derive(Clone)]
pub struct Ctx {
    pub shared: Arc<Shared>,
    pub producer: Producer,
    pub topics: Topics,
    pub tiers: Arc<Tiers>,
    pub handover: Arc<Handover>,
    /// The producer's `message.max.bytes`.
    pub max_bytes: usize,
    /// Links of the retry path this loop finished (tier loops only), to drop a second chain.
    pub recent: Option<Arc<Recent>>,
    /// Set when producing fails: the loop stops without committing past it.
    pub fatal: CancellationToken,
    /// Cancels waits at shutdown; every partition's token is a child of it.
    pub stop: CancellationToken,
}

impl Ctx {
    /// The job's input record is done with (its records written).
    pub fn finished(&self, job: &Job) {
        self.handover.end(job.partition, job.offset);
        if let Some(r) = &self.recent {
            r.finished(job.link());
        }
    }

    /// Writes the outputs; on failure flags the loop to stop. Counts dead letters by reason.
    pub async fn publish(&self, outputs: Vec<Output>) -> bool {
        let tiers: Vec<&str> = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Retry(_, topic) => Some(self.tiers.label_of(topic)),
                _ => None,
            })
            .collect();
        match write(&self.producer, &self.topics, self.max_bytes, outputs).await {
            Ok(reasons) => {
                for t in tiers {
                    self.shared
                        .metrics
                        .retries_scheduled
                        .with_label_values(&[t])
                        .inc();
                }
                for r in reasons {
                    self.shared
                        .metrics
                        .dead_letters
                        .with_label_values(&[r.as_str()])
                        .inc();
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "a sender record was not written");
                self.fatal.cancel();
                false
            }
        }
    }

    /// A retry record of `job` (with `delivery`, its current form) for attempt `attempt` after
    /// `wait`, on the tier for that wait.
    pub(crate) fn retry(
        &self,
        job: &Job,
        delivery: &Delivery,
        attempt: u32,
        wait: Duration,
        last: Last,
    ) -> Output {
        let tier = self.tiers.for_wait(wait);
        Output::Retry(
            Box::new(RetryRecord {
                delivery: delivery.clone(),
                attempt,
                not_before: hookline_model::timefmt::rfc3339(OffsetDateTime::now_utc() + wait),
                first_attempt_at: last.first_attempt_at,
                last_error: last.error,
                last_status: last.status,
                hops: job.hops + 1,
            }),
            tier.topic.clone(),
        )
    }

    /// Moves `job` to the retry path unchanged (no attempt counted) to be looked at again after
    /// `wait`; dead-letters it instead once it has moved too often. Finishes the input record.
    pub async fn defer(&self, job: Job, wait: Duration, why: &str) {
        let out = if job.hops >= self.shared.bounds.max_hops {
            dead(
                &job.delivery,
                job.attempt.saturating_sub(1),
                &first_attempt_at(&job),
                DeadReason::TooManyHops,
                Some(format!("moved along the retry path {} times", job.hops)),
                None,
            )
        } else {
            let last = Last {
                first_attempt_at: first_attempt_at(&job),
                error: Some(why.to_owned()),
                status: None,
            };
            self.retry(&job, &job.delivery, job.attempt, wait, last)
        };
        if self.publish(vec![out]).await {
            self.finished(&job);
        }
    }

    /// Defers because the endpoint did not take the job.
    pub async fn defer_for(&self, job: Job, wait: Duration, reason: DeferReason) {
        self.shared
            .metrics
            .deferred
            .with_label_values(&[reason.as_str()])
            .inc();
        let why = format!("deferred: endpoint {}", reason.as_str());
        self.defer(job, wait, &why).await;
    }
}

/// What a retry record says of the attempts so far.
pub(crate) struct Last {
    pub(crate) first_attempt_at: String,
    pub(crate) error: Option<String>,
    pub(crate) status: Option<u16>,
}

pub(crate) fn first_attempt_at(job: &Job) -> String {
    job.first_attempt_at
        .clone()
        .unwrap_or_else(|| job.delivery.created_at.clone())
}

/// Waits for `f` unless `cancel` fires first; `None` when cancelled.
async fn unless<T>(
    cancel: &CancellationToken,
    f: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        v = f => Some(v),
    }
}

/// Waits until the job may go: its own wait and its rate token.
async fn ready(job: &Job) -> Option<()> {
    let rate = job.ticket.as_ref().map_or(Duration::ZERO, |t| t.rate_wait);
    let at = job.taken_at + rate.max(job.wait);
    unless(&job.cancel, tokio::time::sleep_until(at.into())).await
}

/// An unordered delivery: waits for its time and a slot of its endpoint, attempts once, and
/// writes what follows (a retry goes to the retry path) before giving the slot back.
pub async fn unordered(ctx: Ctx, job: Job) {
    if ready(&job).await.is_none() {
        return;
    }
    let Some(ticket) = job.ticket.as_ref() else {
        return;
    };
    let Some(Some(_slot)) = unless(&job.cancel, ticket.slot()).await else {
        return;
    };
    if !ctx.handover.attempt_started(job.partition, &job.cancel) {
        return;
    }
    let step = attempt_step(&ctx, &job, false).await;
    // The slot is held until the attempt's outcome is acknowledged, so what a crash can make
    // the next owner repeat is bounded by the endpoint's in-flight limit.
    if ctx.publish(step.outputs).await {
        ctx.finished(&job);
    }
    ctx.handover.attempt_ended(job.partition);
}

/// An ordered subscription's deliveries, one at a time; a failure is retried in place, so
/// nothing overtakes it. A delivery whose partition was revoked is dropped with everything
/// after it: the next owner sends them, in order.
pub async fn ordered(ctx: Ctx, mut rx: mpsc::UnboundedReceiver<Job>) {
    'jobs: while let Some(mut job) = rx.recv().await {
        loop {
            if ctx.stop.is_cancelled() || ready(&job).await.is_none() {
                continue 'jobs;
            }
            if !ctx.handover.attempt_started(job.partition, &job.cancel) {
                continue 'jobs;
            }
            let step = attempt_step(&ctx, &job, true).await;
            let published = ctx.publish(step.outputs).await;
            ctx.handover.attempt_ended(job.partition);
            if !published {
                return;
            }
            match step.retry_in {
                Some((delay, next_attempt)) => {
                    job.attempt = next_attempt;
                    job.first_attempt_at = step.first_attempt_at.or(job.first_attempt_at);
                    job.wait = delay;
                    job.taken_at = Instant::now();
                    if let Some(t) = job.ticket.as_mut() {
                        t.rate_wait = Duration::ZERO;
                    }
                }
                None => break,
            }
        }
        ctx.finished(&job);
    }
}

/// The records one attempt causes, and for ordered subscriptions when to try again.
pub struct Step {
    pub outputs: Vec<Output>,
    /// `inline` mode: retry after this delay with this attempt number.
    pub retry_in: Option<(Duration, u32)>,
    pub first_attempt_at: Option<String>,
}

/// Checks the subscription and its circuit, attempts, and decides what follows. `inline`:
/// failures are retried by the caller (ordered mode) instead of through the retry path.
pub async fn attempt_step(ctx: &Ctx, job: &Job, inline: bool) -> Step {
    let shared = &ctx.shared;
    let sub = match unsendable::current_subscription(shared, &job.delivery) {
        Ok(s) => s,
        Err((why, may_lag)) => return unsendable::step(ctx, job, why, may_lag, inline),
    };
    let (admit, transition) = shared.breaker(&sub.id, |b| b.admit(Instant::now()));
    note_transition(shared, &sub.id, transition);
    let mut delivery = job.delivery.clone();
    // The URL may have changed since the delivery was built: send to the current one.
    delivery.url = sub.url.clone();
    let mut outputs = Vec::with_capacity(4);
    let tried = match admit {
        Admit::No(until) => {
            let open_for = until.saturating_duration_since(Instant::now());
            let error = format!(
                "circuit open: the endpoint failed most recent requests; next try in {} s",
                open_for.as_secs()
            );
            let o = outcome(
                &delivery,
                job.attempt,
                OutcomeResult::CircuitOpen,
                Some(error),
            );
            Tried {
                seen: Seen::CircuitOpen { open_for },
                outcome: o,
                failing_for: None,
            }
        }
        Admit::Yes => send_once(ctx, &sub, &delivery, job, &mut outputs).await,
    };
    follow(ctx, job, &sub, &delivery, tried, outputs, inline)
}

/// What an attempt (or the circuit's refusal) saw, its outcome so far, and how long the
/// endpoint has been failing.
struct Tried {
    seen: Seen,
    outcome: hookline_model::Outcome,
    failing_for: Option<Duration>,
}

/// Decides what follows an attempt and adds the records that says to `outputs`.
fn follow(
    ctx: &Ctx,
    job: &Job,
    sub: &Subscription,
    delivery: &Delivery,
    tried: Tried,
    mut outputs: Vec<Output>,
    inline: bool,
) -> Step {
    let Tried {
        seen,
        outcome: mut o,
        failing_for,
    } = tried;
    let first = job
        .first_attempt_at
        .clone()
        .unwrap_or_else(|| o.started_at.clone());
    let facts = Facts {
        seen,
        attempt: job.attempt,
        age: unsendable::age_of(&first),
        failing_for,
        hops: job.hops,
    };
    let mut retry_in = None;
    let result = match decide(&ctx.shared.bounds, facts) {
        Decision::Delivered => OutcomeResult::Delivered,
        Decision::Disable(why) => {
            // The endpoint refused this delivery: it is dead-lettered, replayable once the
            // subscription is enabled again.
            let (e, s) = (o.error.clone(), o.http_status);
            let reason = DeadReason::SubscriptionDisabled;
            outputs.push(dead(delivery, job.attempt, &first, reason, e, s));
            disable(&ctx.shared, sub, &mut outputs, why)
        }
        Decision::Dead(reason) => {
            let (e, s) = (o.error.clone(), o.http_status);
            outputs.push(dead(delivery, job.attempt, &first, reason, e, s));
            OutcomeResult::DeadLettered
        }
        Decision::Retry {
            delay,
            next_attempt,
        } => {
            o.next_attempt_at = Some(hookline_model::timefmt::rfc3339(
                OffsetDateTime::now_utc() + delay,
            ));
            if inline {
                retry_in = Some((delay, next_attempt));
            } else {
                let last = Last {
                    first_attempt_at: first.clone(),
                    error: o.error.clone(),
                    status: o.http_status,
                };
                outputs.push(ctx.retry(job, delivery, next_attempt, delay, last));
            }
            if matches!(seen, Seen::CircuitOpen { .. }) {
                OutcomeResult::CircuitOpen
            } else {
                OutcomeResult::Retrying
            }
        }
    };
    let m = &ctx.shared.metrics;
    m.attempts.with_label_values(&[result.as_str()]).inc();
    if !matches!(seen, Seen::CircuitOpen { .. }) {
        m.attempt_latency
            .with_label_values(&[result.as_str()])
            .observe(o.latency_ms / 1000.0);
    }
    o.result = result;
    outputs.insert(0, Output::Outcome(Box::new(o)));
    Step {
        outputs,
        retry_in,
        first_attempt_at: Some(first),
    }
}

/// Counts an attempt in flight for as long as it lives.
struct InFlight<'a>(&'a IntGauge);

impl<'a> InFlight<'a> {
    fn enter(g: &'a IntGauge) -> Self {
        g.inc();
        Self(g)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// An attempt's error class, and for a delivered one the time from its input record's
/// timestamp (the SLO metric), labelled by whether it was the delivery's first attempt.
fn observe_attempt(m: &Metrics, delivery: &Delivery, attempt: u32, report: &AttemptReport) {
    if let Some(class) = report.error_class {
        m.attempt_errors.with_label_values(&[class.as_str()]).inc();
    }
    if report.verdict != Verdict::Delivered {
        return;
    }
    let event_ms = delivery.source.as_ref().and_then(|s| s.timestamp_ms);
    if let Some(ms) = event_ms {
        let now_ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let age_ms = (now_ms - i128::from(ms)).max(0);
        let which = if attempt <= 1 { "first" } else { "retry" };
        m.event_to_delivery
            .with_label_values(&[which])
            .observe(age_ms as f64 / 1000.0);
    }
}

/// Signs and POSTs once, feeds the breaker, and returns what was seen, the outcome so far and
/// how long the endpoint has been failing.
async fn send_once(
    ctx: &Ctx,
    sub: &Subscription,
    delivery: &Delivery,
    job: &Job,
    outputs: &mut Vec<Output>,
) -> Tried {
    let shared = &ctx.shared;
    let copernica_id = shared
        .copernica_id
        .replace("{account}", delivery.account.as_str());
    let parent = delivery
        .source
        .as_ref()
        .and_then(|s| s.traceparent.as_deref());
    let span = trace::attempt_span(&sub.id.0, job.attempt, parent);
    let report = {
        let _in_flight = InFlight::enter(&shared.metrics.in_flight);
        traced_attempt(
            &shared.client,
            &shared.signers,
            delivery,
            job.attempt,
            copernica_id,
            trace::span_id_of(&span),
        )
        .instrument(span.clone())
        .await
    };
    span.record("hookline.result", report.verdict.as_str());
    if let Some(status) = report.http_status {
        span.record("http.response.status_code", status);
    }
    observe_attempt(&shared.metrics, delivery, job.attempt, &report);
    if let Some(t) = job.ticket.as_ref() {
        t.endpoint().observe_latency(report.latency);
    }
    let ok = report.verdict == Verdict::Delivered;
    let (transition, failing_for, health) = shared.breaker(&sub.id, |b| {
        let was_failing = b.failing_since.is_some();
        let now = Instant::now();
        let t = b.record(ok, now, &shared.breaker_cfg);
        let failing_for = b.failing_since.map(|s| {
            Duration::from_secs_f64((OffsetDateTime::now_utc() - s).as_seconds_f64().max(0.0))
        });
        // Persisted on a change only, not per attempt.
        let changed = t.is_some() || was_failing != b.failing_since.is_some();
        (t, failing_for, changed.then(|| b.snapshot(&sub.id, now)))
    });
    note_transition(shared, &sub.id, transition);
    if let Some(h) = health {
        outputs.push(Output::Health(Box::new(h)));
    }
    let seen = match &report.verdict {
        Verdict::Delivered => Seen::Delivered,
        Verdict::Gone => Seen::Gone,
        Verdict::Permanent => Seen::Permanent,
        Verdict::Retry { retry_after } => Seen::Failed {
            retry_after: *retry_after,
        },
    };
    let mut o = outcome(
        delivery,
        job.attempt,
        OutcomeResult::Failed,
        report.error.clone(),
    );
    o.http_status = report.http_status;
    o.error_class = report.error_class;
    o.response_excerpt = report.response_excerpt.clone();
    o.latency_ms = report.latency.as_secs_f64() * 1000.0;
    o.started_at = report.started_at.clone();
    o.finished_at = report.finished_at.clone();
    Tried {
        seen,
        outcome: o,
        failing_for,
    }
}

/// Disables the subscription: the status change is written onto its current version (as this
/// instance follows the topic now), not the copy the attempt started with, so an edit made
/// meanwhile is kept; a subscription deleted meanwhile stays deleted. Kafka has no
/// compare-and-set, so an edit within the follower's lag (about a second) can still be lost.
fn disable(
    shared: &Shared,
    sub: &Subscription,
    outputs: &mut Vec<Output>,
    why: &str,
) -> OutcomeResult {
    let current = shared
        .subscriptions
        .read()
        .get(&sub.id)
        .map(|s| s.sub.clone());
    let Some(mut disabled) = current else {
        tracing::info!(subscription = %sub.id, why, "not disabled: the subscription was deleted meanwhile");
        return OutcomeResult::Disabled;
    };
    disabled.status = SubscriptionStatus::Disabled;
    disabled.updated = Some(hookline_model::timefmt::now_rfc3339());
    tracing::warn!(subscription = %sub.id, why, "subscription disabled");
    outputs.push(Output::Disable(Box::new(disabled)));
    OutcomeResult::Disabled
}

fn note_transition(shared: &Shared, id: &SubscriptionId, t: Option<Transition>) {
    if let Some(t) = t {
        shared
            .metrics
            .circuit_transitions
            .with_label_values(&[t.as_str()])
            .inc();
        tracing::info!(subscription = %id, state = t.as_str(), "circuit breaker");
    }
}

/// Breakers live in [`Shared`]; this keeps the lock scope to one closure.
impl Shared {
    pub(crate) fn breaker<R>(&self, id: &SubscriptionId, f: impl FnOnce(&mut Breaker) -> R) -> R {
        let mut map = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
        let known = map.contains_key(id);
        let b = map
            .entry(id.clone())
            .or_insert_with(|| match self.health.get(id) {
                Some(h) => Breaker::restore(&self.breaker_cfg, &h, Instant::now()),
                None => Breaker::new(&self.breaker_cfg),
            });
        // `hookline_sender_open_circuits` follows every change, a restored open circuit too.
        let was_closed = !known || b.is_closed();
        let r = f(b);
        match (was_closed, b.is_closed()) {
            (true, false) => self.metrics.open_circuits.inc(),
            (false, true) => self.metrics.open_circuits.dec(),
            _ => {}
        }
        r
    }

    /// Forgets every breaker in memory (each starts again from `endpoint-health`).
    pub(crate) fn forget_breakers(&self) {
        let mut map = self.breakers.lock().unwrap_or_else(PoisonError::into_inner);
        let open = map.values().filter(|b| !b.is_closed()).count();
        self.metrics.open_circuits.sub(open as i64);
        map.clear();
    }
}
