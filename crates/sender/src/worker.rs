//! The sender's loops over `deliveries` and `retries`.
//!
//! One loop per input topic reads records continuously and hands each to its subscription:
//! unordered subscriptions run up to `limits.max_in_flight` attempts at once, an ordered one
//! runs its deliveries one after another and retries a failure in place, so nothing overtakes
//! it. Completion is tracked per partition ([`Finalizer`]) so a slow endpoint holds back the
//! commit point, not the other endpoints. Memory is bounded twice: by a cap on records in hand
//! (the loop waits for room), and by a cap per subscription above which the loop pauses the
//! partition that record came from until the subscription drains.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookline_config::Topics;
use hookline_kafka::producer::Acks;
use hookline_kafka::quarantine::quarantine;
use hookline_kafka::{KafkaSettings, Producer};
use hookline_model::{
    DeadLetter, Delivery, Outcome, OutcomeResult, RetryRecord, Subscription, SubscriptionId,
    SubscriptionStatus,
};
use hookline_schemas::{validators, SchemaKind};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use time::OffsetDateTime;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::attempt::{attempt, AttemptReport, Verdict};
use crate::breaker::{Admit, Breaker, Transition};
use crate::finalizer::Finalizer;
use crate::{SenderError, Shared};

/// Records in hand at once (waiting, queued or in flight) per loop.
const MAX_IN_HAND: usize = 20_000;
/// Records of one subscription in hand before its partition is paused.
const MAX_PER_SUBSCRIPTION: usize = 1_000;
/// A retry due later than this is re-queued on `retries` after waiting this long, so the
/// partition's commit point never lags by more.
const REQUEUE_HORIZON: Duration = Duration::from_secs(300);
/// How long shutdown waits for attempts in flight before giving up on them (they are re-read).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Which topic a loop consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// New deliveries from the routing stages: attempt 1.
    Deliveries,
    /// Scheduled re-tries: wait until `not_before`, then attempt n.
    Retries,
}

/// One attempt to make.
#[derive(Debug, Clone)]
struct Job {
    delivery: Delivery,
    attempt: u32,
    first_attempt_at: Option<String>,
    not_before: Option<OffsetDateTime>,
    /// The record as read from `retries`, for re-queueing unchanged.
    retry: Option<RetryRecord>,
    partition: i32,
    offset: i64,
}

/// Records one attempt causes.
#[derive(Debug)]
enum Output {
    Outcome(Box<Outcome>),
    Retry(Box<RetryRecord>),
    Dead(Box<DeadLetter>),
    Disable(Box<Subscription>),
}

/// A finished record, reported to the loop.
struct Done {
    partition: i32,
    offset: i64,
    subscription: SubscriptionId,
}

/// Everything a job task needs.
#[derive(Clone)]
struct Ctx {
    shared: Arc<Shared>,
    producer: Producer,
    topics: Topics,
    done: mpsc::UnboundedSender<Done>,
    /// Set when producing fails: the loop stops without committing past it.
    fatal: CancellationToken,
    /// Cancels waits (retry delays) at shutdown.
    stop: CancellationToken,
}

#[derive(Default)]
struct SubState {
    in_hand: usize,
    limit: Option<(u32, Arc<Semaphore>)>,
    rate: Option<Arc<crate::rate::RateLimiter>>,
    ordered: Option<mpsc::UnboundedSender<(Job, OwnedSemaphorePermit)>>,
}

/// Consumes `input` until `shutdown`.
pub async fn run_loop(
    shared: Arc<Shared>,
    settings: KafkaSettings,
    topics: Topics,
    group: String,
    input: Input,
    shutdown: CancellationToken,
) -> Result<(), SenderError> {
    let topic = match input {
        Input::Deliveries => topics.deliveries.clone(),
        Input::Retries => topics.retries.clone(),
    };
    let consumer: StreamConsumer = settings.group_consumer(&group).create()?;
    consumer.subscribe(&[topic.as_str()])?;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let ctx = Ctx {
        shared: shared.clone(),
        producer: Producer::new(&settings)?,
        topics: topics.clone(),
        done: done_tx,
        fatal: CancellationToken::new(),
        stop: CancellationToken::new(),
    };
    let tracker = TaskTracker::new();
    let in_hand = Arc::new(Semaphore::new(MAX_IN_HAND));
    let mut finalizer = Finalizer::default();
    let mut subs: HashMap<SubscriptionId, SubState> = HashMap::new();
    let mut parked: HashMap<i32, Vec<(Job, OwnedSemaphorePermit)>> = HashMap::new();
    let mut paused: HashSet<i32> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tracing::info!(%topic, %group, "sender loop started");

    let result: Result<(), SenderError> = loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break Ok(()),
            _ = ctx.fatal.cancelled() => break Err(SenderError::Config("producing outcomes failed; stopping without committing".into())),
            Some(done) = done_rx.recv() => {
                finalizer.end(done.partition, done.offset);
                if let Some(s) = subs.get_mut(&done.subscription) {
                    s.in_hand = s.in_hand.saturating_sub(1);
                    if s.in_hand <= MAX_PER_SUBSCRIPTION / 2 && !paused.is_empty() {
                        resume_parked(&consumer, &topic, &mut paused, &mut parked, &mut subs, &ctx, &tracker);
                    }
                }
            }
            _ = tick.tick() => store(&consumer, &topic, &mut finalizer),
            m = consumer.recv() => {
                let msg = match m {
                    Ok(m) => m,
                    Err(e) => { tracing::warn!(%topic, error = %e, "consumer error"); continue; }
                };
                let (p, o) = (msg.partition(), msg.offset());
                if paused.contains(&p) {
                    // Fetched before the pause took effect; it is read again after the resume.
                    continue;
                }
                finalizer.begin(p, o);
                let job = match decode(input, &msg) {
                    Ok(job) => job,
                    Err(reason) => {
                        shared.metrics.quarantined.with_label_values(&["sender", "schema"]).inc();
                        let mut acks = Acks::new();
                        quarantine(&ctx.producer, &mut acks, &topics.quarantine, "sender", &msg, &reason).await?;
                        acks.wait().await?;
                        finalizer.end(p, o);
                        continue;
                    }
                };
                let permit = tokio::select! {
                    permit = in_hand.clone().acquire_owned() => permit.expect("semaphore never closed"),
                    _ = shutdown.cancelled() => break Ok(()),
                };
                let sub = subs.entry(job.delivery.subscription_id.clone()).or_default();
                if input == Input::Deliveries && sub.in_hand >= MAX_PER_SUBSCRIPTION {
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition(&topic, p);
                    if paused.insert(p) {
                        tracing::info!(%topic, partition = p, subscription = %job.delivery.subscription_id, "endpoint backlog full: pausing the partition");
                        if let Err(e) = consumer.pause(&tpl) {
                            tracing::warn!(error = %e, "pausing failed");
                        }
                    }
                    parked.entry(p).or_default().push((job, permit));
                    continue;
                }
                dispatch(&mut subs, &ctx, &tracker, job, permit);
            }
        }
    };

    // Finish what is in flight (retry waits are cancelled; their records are read again).
    ctx.stop.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(%topic, "attempts still in flight after {DRAIN_TIMEOUT:?}; they will be retried");
    }
    while let Ok(done) = done_rx.try_recv() {
        finalizer.end(done.partition, done.offset);
    }
    store(&consumer, &topic, &mut finalizer);
    if result.is_ok() {
        let _ = consumer.commit_consumer_state(CommitMode::Sync);
    }
    ctx.producer.flush(Duration::from_secs(10))?;
    tracing::info!(%topic, "sender loop stopped");
    result
}

fn resume_parked(
    consumer: &StreamConsumer,
    topic: &str,
    paused: &mut HashSet<i32>,
    parked: &mut HashMap<i32, Vec<(Job, OwnedSemaphorePermit)>>,
    subs: &mut HashMap<SubscriptionId, SubState>,
    ctx: &Ctx,
    tracker: &TaskTracker,
) {
    let ready: Vec<i32> = paused
        .iter()
        .copied()
        .filter(|p| {
            parked.get(p).is_none_or(|jobs| {
                jobs.iter().all(|(j, _)| {
                    subs.get(&j.delivery.subscription_id)
                        .is_none_or(|s| s.in_hand < MAX_PER_SUBSCRIPTION)
                })
            })
        })
        .collect();
    for p in ready {
        paused.remove(&p);
        // Records fetched after the pause were skipped: read again from the one after the last
        // record taken.
        let mut next = None;
        for (job, permit) in parked.remove(&p).unwrap_or_default() {
            next = Some(next.unwrap_or(0).max(job.offset + 1));
            dispatch(subs, ctx, tracker, job, permit);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, p);
        if let Err(e) = consumer.resume(&tpl) {
            tracing::warn!(error = %e, "resuming failed");
        }
        if let Some(o) = next {
            if let Err(e) = consumer.seek(topic, p, Offset::Offset(o), Duration::from_secs(5)) {
                tracing::warn!(error = %e, partition = p, "seeking after resume failed");
            }
        }
        tracing::info!(topic, partition = p, "partition resumed");
    }
}

fn dispatch(
    subs: &mut HashMap<SubscriptionId, SubState>,
    ctx: &Ctx,
    tracker: &TaskTracker,
    job: Job,
    permit: OwnedSemaphorePermit,
) {
    let id = job.delivery.subscription_id.clone();
    let (ordered, max_in_flight, per_second) = {
        let table = ctx.shared.subscriptions.read();
        table.get(&id).map_or((false, 1, 50.0), |s| {
            (
                s.sub.ordered,
                s.sub.limits.max_in_flight.max(1),
                s.sub.limits.per_second,
            )
        })
    };
    let state = subs.entry(id.clone()).or_default();
    state.in_hand += 1;
    let rate = match &state.rate {
        Some(r) if r.per_second() == per_second => r.clone(),
        _ => {
            let r = Arc::new(crate::rate::RateLimiter::new(per_second));
            state.rate = Some(r.clone());
            r
        }
    };
    if ordered {
        let tx = state.ordered.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let ctx = ctx.clone();
            tracker.spawn(ordered_worker(ctx, rx, rate.clone()));
            tx
        });
        if let Err(mpsc::error::SendError((job, permit))) = tx.send((job, permit)) {
            // The worker stopped (shutdown); the record stays unfinished and is read again.
            drop((job, permit));
        }
        return;
    }
    let limit = match &state.limit {
        Some((n, sem)) if *n == max_in_flight => sem.clone(),
        _ => {
            let sem = Arc::new(Semaphore::new(max_in_flight as usize));
            state.limit = Some((max_in_flight, sem.clone()));
            sem
        }
    };
    tracker.spawn(unordered_job(ctx.clone(), job, permit, limit, rate));
}

async fn unordered_job(
    ctx: Ctx,
    job: Job,
    _permit: OwnedSemaphorePermit,
    limit: Arc<Semaphore>,
    rate: Arc<crate::rate::RateLimiter>,
) {
    if let Some(nb) = job.not_before {
        let wait = until(nb);
        if wait > REQUEUE_HORIZON {
            tokio::select! {
                _ = tokio::time::sleep(REQUEUE_HORIZON) => {},
                _ = ctx.stop.cancelled() => return,
            }
            if let Some(r) = &job.retry {
                let out = vec![Output::Retry(Box::new(r.clone()))];
                if publish(&ctx, out).await {
                    finish(&ctx, &job);
                }
            }
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {},
            _ = ctx.stop.cancelled() => return,
        }
    }
    let Ok(_slot) = limit.acquire().await else {
        return;
    };
    tokio::select! {
        _ = rate.acquire() => {},
        _ = ctx.stop.cancelled() => return,
    }
    let step = attempt_step(&ctx.shared, &job, false).await;
    if publish(&ctx, step.outputs).await {
        finish(&ctx, &job);
    }
}

/// Runs an ordered subscription's deliveries one at a time; a failure is retried in place.
async fn ordered_worker(
    ctx: Ctx,
    mut rx: mpsc::UnboundedReceiver<(Job, OwnedSemaphorePermit)>,
    rate: Arc<crate::rate::RateLimiter>,
) {
    while let Some((mut job, _permit)) = rx.recv().await {
        loop {
            if let Some(nb) = job.not_before.take() {
                tokio::select! {
                    _ = tokio::time::sleep(until(nb)) => {},
                    _ = ctx.stop.cancelled() => return,
                }
            }
            tokio::select! {
                _ = rate.acquire() => {},
                _ = ctx.stop.cancelled() => return,
            }
            let step = attempt_step(&ctx.shared, &job, true).await;
            if !publish(&ctx, step.outputs).await {
                return;
            }
            match step.retry_in {
                Some((delay, next_attempt)) => {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {},
                        _ = ctx.stop.cancelled() => return,
                    }
                    job.attempt = next_attempt;
                    job.first_attempt_at = step.first_attempt_at.or(job.first_attempt_at);
                }
                None => break,
            }
        }
        finish(&ctx, &job);
    }
}

fn until(t: OffsetDateTime) -> Duration {
    let d = t - OffsetDateTime::now_utc();
    Duration::from_secs_f64(d.as_seconds_f64().max(0.0))
}

fn finish(ctx: &Ctx, job: &Job) {
    let _ = ctx.done.send(Done {
        partition: job.partition,
        offset: job.offset,
        subscription: job.delivery.subscription_id.clone(),
    });
}

/// Produces the outputs and waits for them; on failure flags the loop to stop.
async fn publish(ctx: &Ctx, outputs: Vec<Output>) -> bool {
    let mut acks = Acks::new();
    let mut ok = true;
    for out in outputs {
        if let Err(e) = send_output(&ctx.producer, &mut acks, &ctx.topics, out).await {
            tracing::error!(error = %e, "producing a sender record failed");
            ok = false;
        }
    }
    if let Err(e) = acks.wait().await {
        tracing::error!(error = %e, "a sender record was not acknowledged");
        ok = false;
    }
    if !ok {
        ctx.fatal.cancel();
    }
    ok
}

fn store(consumer: &StreamConsumer, topic: &str, finalizer: &mut Finalizer) {
    let points = finalizer.committable();
    if points.is_empty() {
        return;
    }
    let owned = consumer.assignment().unwrap_or_default();
    let mut tpl = TopicPartitionList::new();
    for (p, o) in points {
        if owned.find_partition(topic, p).is_some() {
            let _ = tpl.add_partition_offset(topic, p, Offset::Offset(o));
        }
    }
    if tpl.count() > 0 {
        if let Err(e) = consumer.store_offsets(&tpl) {
            tracing::warn!(topic, error = %e, "storing offsets failed");
        }
    }
}

fn decode(input: Input, msg: &BorrowedMessage<'_>) -> Result<Job, String> {
    let bytes = msg.payload().ok_or("null value")?;
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("value is not JSON: {e}"))?;
    let (partition, offset) = (msg.partition(), msg.offset());
    match input {
        Input::Deliveries => {
            validators()
                .validate(SchemaKind::Delivery, &value)
                .map_err(|v| format!("schema delivery: {v}"))?;
            let delivery: Delivery = serde_json::from_value(value).map_err(|e| e.to_string())?;
            Ok(Job {
                delivery,
                attempt: 1,
                first_attempt_at: None,
                not_before: None,
                retry: None,
                partition,
                offset,
            })
        }
        Input::Retries => {
            validators()
                .validate(SchemaKind::Retry, &value)
                .map_err(|v| format!("schema retry: {v}"))?;
            let r: RetryRecord = serde_json::from_value(value).map_err(|e| e.to_string())?;
            Ok(Job {
                not_before: hookline_model::timefmt::parse(&r.not_before),
                delivery: r.delivery.clone(),
                attempt: r.attempt,
                first_attempt_at: Some(r.first_attempt_at.clone()),
                retry: Some(r),
                partition,
                offset,
            })
        }
    }
}

/// The records one step causes, and for ordered subscriptions when to try again.
struct Step {
    outputs: Vec<Output>,
    /// `inline` mode: retry after this delay with this attempt number.
    retry_in: Option<(Duration, u32)>,
    first_attempt_at: Option<String>,
}

fn outcome(d: &Delivery, attempt: u32, result: OutcomeResult, error: Option<String>) -> Outcome {
    let now = hookline_model::timefmt::now_rfc3339();
    Outcome {
        delivery_id: d.delivery_id.clone(),
        event_id: d.event_id.clone(),
        subscription_id: d.subscription_id.clone(),
        account: d.account.clone(),
        attempt,
        result,
        url: Some(d.url.clone()),
        http_status: None,
        error_class: None,
        error,
        response_excerpt: None,
        latency_ms: 0.0,
        started_at: now.clone(),
        finished_at: now,
    }
}

/// Checks the subscription and its circuit, attempts, and decides what follows. `inline`:
/// failures are retried by the caller (ordered mode) instead of through `retries`.
async fn attempt_step(shared: &Shared, job: &Job, inline: bool) -> Step {
    let d = &job.delivery;
    let done = |outputs| Step {
        outputs,
        retry_in: None,
        first_attempt_at: None,
    };
    let skip = |result: OutcomeResult, why: &str| {
        shared
            .metrics
            .attempts
            .with_label_values(&[result.as_str()])
            .inc();
        done(vec![Output::Outcome(Box::new(outcome(
            d,
            job.attempt,
            result,
            Some(why.to_owned()),
        )))])
    };
    let sub = shared
        .subscriptions
        .read()
        .get(&d.subscription_id)
        .map(|s| s.sub.clone());
    let sub = match sub {
        None => {
            return skip(
                OutcomeResult::SkippedDisabled,
                "the subscription no longer exists",
            )
        }
        Some(s) => match s.status {
            SubscriptionStatus::Active => s,
            SubscriptionStatus::Paused => {
                return skip(OutcomeResult::SkippedPaused, "the subscription is paused")
            }
            SubscriptionStatus::Disabled => {
                return skip(
                    OutcomeResult::SkippedDisabled,
                    "the subscription is disabled",
                )
            }
            SubscriptionStatus::Unverified => {
                return skip(
                    OutcomeResult::SkippedDisabled,
                    "the subscription's URL is not verified",
                )
            }
        },
    };
    let first_attempt_at = job.first_attempt_at.clone();

    // Circuit: an open endpoint is not called; the delivery waits for the probe.
    let (admit, transition) = shared.breaker(&sub.id, |b| b.admit(Instant::now()));
    note_transition(shared, &sub.id, transition);
    if let Admit::No(until) = admit {
        let wait = until.saturating_duration_since(Instant::now());
        shared
            .metrics
            .attempts
            .with_label_values(&[OutcomeResult::CircuitOpen.as_str()])
            .inc();
        let mut outputs = vec![Output::Outcome(Box::new(outcome(
            d,
            job.attempt,
            OutcomeResult::CircuitOpen,
            Some(format!(
                "circuit open: the endpoint failed most recent requests; next try in {} s",
                wait.as_secs()
            )),
        )))];
        if inline {
            return Step {
                outputs,
                retry_in: Some((wait, job.attempt)),
                first_attempt_at,
            };
        }
        outputs.push(Output::Retry(Box::new(RetryRecord {
            delivery: d.clone(),
            attempt: job.attempt,
            not_before: hookline_model::timefmt::rfc3339(OffsetDateTime::now_utc() + wait),
            first_attempt_at: first_attempt_at.unwrap_or_else(hookline_model::timefmt::now_rfc3339),
            last_error: Some("circuit open".into()),
            last_status: None,
        })));
        return done(outputs);
    }

    // The URL may have changed since the delivery was built: send to the current one.
    let mut delivery = d.clone();
    delivery.url = sub.url.clone();
    let copernica_id = shared.copernica_id.replace("{account}", d.account.as_str());
    let report = attempt(
        &shared.client,
        &shared.key,
        &delivery,
        job.attempt,
        copernica_id,
    )
    .await;
    let ok = report.verdict == Verdict::Delivered;
    let (transition, failing_for) = shared.breaker(&sub.id, |b| {
        let t = b.record(ok, Instant::now(), &shared.breaker_cfg);
        (t, b.failing_since.map(|s| s.elapsed()))
    });
    note_transition(shared, &sub.id, transition);

    let first_attempt_at = first_attempt_at.unwrap_or_else(|| report.started_at.clone());
    let age = hookline_model::timefmt::parse(&first_attempt_at).map_or(Duration::ZERO, |t| {
        Duration::from_secs_f64((OffsetDateTime::now_utc() - t).as_seconds_f64().max(0.0))
    });
    let mut outputs = Vec::with_capacity(3);
    let mut retry_in = None;
    let gone_for_good = failing_for.is_some_and(|f| f >= shared.disable_after);
    let result = match &report.verdict {
        Verdict::Delivered => OutcomeResult::Delivered,
        Verdict::Gone => disable(&sub, &mut outputs, "the endpoint answered 410 Gone"),
        _ if gone_for_good => disable(
            &sub,
            &mut outputs,
            "the endpoint has failed continuously for too long",
        ),
        Verdict::Retry { retry_after } => {
            match shared.policy.delay(job.attempt + 1, age, *retry_after) {
                Some(delay) if inline => {
                    retry_in = Some((delay, job.attempt + 1));
                    OutcomeResult::Retrying
                }
                Some(delay) => {
                    outputs.push(Output::Retry(Box::new(RetryRecord {
                        delivery: delivery.clone(),
                        attempt: job.attempt + 1,
                        not_before: hookline_model::timefmt::rfc3339(
                            OffsetDateTime::now_utc() + delay,
                        ),
                        first_attempt_at: first_attempt_at.clone(),
                        last_error: report.error.clone(),
                        last_status: report.http_status,
                    })));
                    OutcomeResult::Retrying
                }
                None => {
                    outputs.push(dead(&delivery, job.attempt, &first_attempt_at, &report));
                    OutcomeResult::DeadLettered
                }
            }
        }
        Verdict::Permanent => {
            outputs.push(dead(&delivery, job.attempt, &first_attempt_at, &report));
            OutcomeResult::DeadLettered
        }
    };
    shared
        .metrics
        .attempts
        .with_label_values(&[result.as_str()])
        .inc();
    shared
        .metrics
        .attempt_latency
        .with_label_values(&[result.as_str()])
        .observe(report.latency.as_secs_f64());
    let mut o = outcome(&delivery, job.attempt, result, report.error.clone());
    o.http_status = report.http_status;
    o.error_class = report.error_class;
    o.response_excerpt = report.response_excerpt.clone();
    o.latency_ms = report.latency.as_secs_f64() * 1000.0;
    o.started_at = report.started_at.clone();
    o.finished_at = report.finished_at.clone();
    outputs.insert(0, Output::Outcome(Box::new(o)));
    Step {
        outputs,
        retry_in,
        first_attempt_at: Some(first_attempt_at),
    }
}

fn disable(sub: &Subscription, outputs: &mut Vec<Output>, why: &str) -> OutcomeResult {
    let mut disabled = sub.clone();
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

fn dead(d: &Delivery, attempts: u32, first: &str, report: &AttemptReport) -> Output {
    Output::Dead(Box::new(DeadLetter {
        delivery: d.clone(),
        attempts,
        first_attempt_at: first.to_owned(),
        dead_lettered_at: hookline_model::timefmt::now_rfc3339(),
        last_error: report.error.clone(),
        last_status: report.http_status,
    }))
}

async fn send_output(
    producer: &Producer,
    acks: &mut Acks,
    topics: &Topics,
    out: Output,
) -> Result<(), hookline_kafka::KafkaError> {
    match out {
        Output::Outcome(o) => {
            producer
                .send_json(acks, &topics.outcomes, o.subscription_id.0.as_bytes(), &o)
                .await
        }
        Output::Retry(r) => {
            producer
                .send_json(
                    acks,
                    &topics.retries,
                    r.delivery.subscription_id.0.as_bytes(),
                    &r,
                )
                .await
        }
        Output::Dead(d) => {
            producer
                .send_json(
                    acks,
                    &topics.dead_letter,
                    d.delivery.subscription_id.0.as_bytes(),
                    &d,
                )
                .await
        }
        Output::Disable(s) => {
            producer
                .send_json(acks, &topics.subscriptions, s.id.0.as_bytes(), &s)
                .await
        }
    }
}

/// Breakers live in [`Shared`]; this keeps the lock scope to one closure.
impl Shared {
    fn breaker<R>(&self, id: &SubscriptionId, f: impl FnOnce(&mut Breaker) -> R) -> R {
        let mut map = self.breakers.lock().expect("breakers lock");
        let b = map
            .entry(id.clone())
            .or_insert_with(|| Breaker::new(&self.breaker_cfg));
        f(b)
    }
}
