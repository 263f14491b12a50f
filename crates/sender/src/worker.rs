//! The sender's loops over `deliveries` and `retries`.
//!
//! One loop per input topic reads records continuously and hands each to its subscription:
//! unordered subscriptions run up to `limits.max_in_flight` attempts at once, an ordered one
//! runs its deliveries one after another and retries a failure in place, so nothing overtakes
//! it. Completion is tracked per partition ([`Finalizer`]) so a slow endpoint holds back the
//! commit point, not the other endpoints. Memory is bounded twice: by a cap on records in hand
//! (the loop waits for room), and by a cap per subscription above which the loop pauses the
//! partition that record came from until the subscription drains.
//!
//! Rebalances hand work over without loss and with as few duplicates as possible
//! ([`Handover`]): when partitions are revoked, the work of theirs that has not started is
//! dropped (the next owner reads it again from the commit point), the attempts in flight are
//! waited for (up to [`REVOKE_DRAIN`]), and the commit point reached is committed before the
//! partitions go. An instance therefore never keeps sending for a partition it no longer owns,
//! which would duplicate work and break an ordered subscription's order.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};
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
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
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
/// How long a revocation waits for the revoked partitions' attempts in flight, so their outcomes
/// are committed by this instance instead of being repeated by the next owner. Shorter than the
/// default `session.timeout.ms`; heartbeats go on meanwhile (librdkafka sends them from its own
/// thread).
pub const REVOKE_DRAIN: Duration = Duration::from_secs(5);

/// Which topic a loop consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// New deliveries from the routing stages: attempt 1.
    Deliveries,
    /// Scheduled re-tries: wait until `not_before`, then attempt n.
    Retries,
}

/// One attempt to make.
#[derive(Debug)]
struct Job {
    delivery: Delivery,
    attempt: u32,
    first_attempt_at: Option<String>,
    not_before: Option<OffsetDateTime>,
    /// The record as read from `retries`, for re-queueing unchanged.
    retry: Option<RetryRecord>,
    partition: i32,
    offset: i64,
    /// Cancelled when the job's partition is revoked or the loop stops: work not yet started
    /// is then dropped, and read again by whoever owns the partition next.
    cancel: CancellationToken,
    /// Tells the loop the record left its hands, however the job ends.
    _in_hand: Option<InHand>,
}

/// Records one attempt causes.
#[derive(Debug)]
enum Output {
    Outcome(Box<Outcome>),
    Retry(Box<RetryRecord>),
    Dead(Box<DeadLetter>),
    Disable(Box<Subscription>),
    Health(Box<crate::health::EndpointHealth>),
}

/// A record that left the loop's hands (finished, or dropped at a revocation or shutdown).
struct Done {
    subscription: SubscriptionId,
}

/// Sends [`Done`] when dropped, so every way a job ends is counted.
struct InHand {
    subscription: SubscriptionId,
    done: mpsc::UnboundedSender<Done>,
}

impl Drop for InHand {
    fn drop(&mut self) {
        let _ = self.done.send(Done {
            subscription: self.subscription.clone(),
        });
    }
}

impl std::fmt::Debug for InHand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InHand")
    }
}

/// What the loop, its jobs and the rebalance callbacks share: per owned partition its
/// cancellation token, the commit points ([`Finalizer`]) and the attempts in flight.
pub struct Handover {
    topic: String,
    stop: CancellationToken,
    state: Mutex<HandoverState>,
    /// Signalled whenever an attempt ends, for a revocation waiting on them.
    attempt_ended: Condvar,
    /// Partitions revoked since the loop last looked (to clear its pause bookkeeping).
    revoked: Mutex<Vec<i32>>,
}

#[derive(Default)]
struct HandoverState {
    /// Owned partitions and the token of their work.
    owned: HashMap<i32, CancellationToken>,
    finalizer: Finalizer,
    /// Attempts under way per partition (past their waits, not yet published).
    attempting: HashMap<i32, usize>,
}

impl Handover {
    fn new(topic: String, stop: CancellationToken) -> Self {
        Self {
            topic,
            stop,
            state: Mutex::new(HandoverState::default()),
            attempt_ended: Condvar::new(),
            revoked: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HandoverState> {
        self.state.lock().expect("handover lock")
    }

    /// A record read from `partition`: its token, or `None` for a record to skip: one of a
    /// partition this instance no longer owns (fetched before the revocation), or one it
    /// already finished before the partition was revoked and handed back.
    fn begin(&self, partition: i32, offset: i64) -> Option<CancellationToken> {
        let mut g = self.lock();
        let token = g
            .owned
            .get(&partition)
            .filter(|t| !t.is_cancelled())?
            .clone();
        g.finalizer.begin(partition, offset);
        if g.finalizer.finished_before(partition, offset) {
            g.finalizer.end(partition, offset);
            return None;
        }
        Some(token)
    }

    /// The record is done (its outputs acknowledged).
    fn end(&self, job: &Job) {
        self.lock().finalizer.end(job.partition, job.offset);
    }

    /// An attempt is about to go out; `false` if its partition was revoked (or the loop is
    /// stopping) meanwhile (checked
    /// under the lock the revocation takes, so a revocation waits for every attempt it let go).
    fn attempt_started(&self, job: &Job) -> bool {
        let mut g = self.lock();
        if job.cancel.is_cancelled() {
            return false;
        }
        *g.attempting.entry(job.partition).or_default() += 1;
        true
    }

    fn attempt_ended(&self, partition: i32) {
        let mut g = self.lock();
        if let Some(n) = g.attempting.get_mut(&partition) {
            *n = n.saturating_sub(1);
        }
        drop(g);
        self.attempt_ended.notify_all();
    }

    /// Offsets to store: moved commit points of owned partitions.
    fn committable(&self) -> TopicPartitionList {
        let mut g = self.lock();
        let points = g.finalizer.committable();
        let mut tpl = TopicPartitionList::new();
        for (p, o) in points {
            if g.owned.contains_key(&p) {
                let _ = tpl.add_partition_offset(&self.topic, p, Offset::Offset(o));
            }
        }
        tpl
    }

    fn in_flight(&self) -> usize {
        self.lock().finalizer.in_flight()
    }

    fn assigned(&self, partitions: &[i32]) {
        let mut g = self.lock();
        for p in partitions {
            g.owned.insert(*p, self.stop.child_token());
        }
    }

    /// Drops the partitions' waiting work, waits (bounded) for their attempts in flight, and
    /// returns the commit points reached, to be committed before the partitions go.
    fn revoke(&self, partitions: &[i32]) -> TopicPartitionList {
        let mut g = self.lock();
        for p in partitions {
            if let Some(t) = g.owned.get(p) {
                t.cancel();
            }
        }
        let busy = |g: &HandoverState| {
            partitions
                .iter()
                .any(|p| g.attempting.get(p).is_some_and(|n| *n > 0))
        };
        if busy(&g) {
            let wait = |g| {
                self.attempt_ended
                    .wait_timeout_while(g, REVOKE_DRAIN, |g| busy(g))
                    .expect("handover lock")
                    .0
            };
            // Waiting blocks this thread (the one polling the consumer): let the runtime move
            // its other tasks elsewhere where it can.
            g = match tokio::runtime::Handle::try_current() {
                Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(|| wait(g))
                }
                _ => wait(g),
            };
            if busy(&g) {
                tracing::warn!(topic = %self.topic, ?partitions, "attempts still in flight after {REVOKE_DRAIN:?}; the next owner repeats them");
            }
        }
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            if let Some(o) = g.finalizer.point(*p) {
                let _ = tpl.add_partition_offset(&self.topic, *p, Offset::Offset(o));
            }
        }
        for p in partitions {
            g.owned.remove(p);
            g.finalizer.forget(*p);
            g.attempting.remove(p);
        }
        drop(g);
        self.revoked
            .lock()
            .expect("revoked lock")
            .extend_from_slice(partitions);
        tpl
    }

    fn take_revoked(&self) -> Vec<i32> {
        std::mem::take(&mut *self.revoked.lock().expect("revoked lock"))
    }
}

/// The consumer's context: hands partitions over at rebalances through [`Handover`].
struct SenderContext {
    handover: Arc<Handover>,
    shared: Arc<Shared>,
}

impl ClientContext for SenderContext {}

impl ConsumerContext for SenderContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts = partitions_of(tpl, &self.handover.topic);
            tracing::info!(topic = %self.handover.topic, partitions = ?parts, "partitions revoked: finishing their attempts in flight");
            let points = self.handover.revoke(&parts);
            if points.count() > 0 {
                // Committed here, while the partitions are still ours, so the next owner starts
                // after everything this instance finished.
                if let Err(e) = consumer.commit(&points, CommitMode::Sync) {
                    tracing::warn!(topic = %self.handover.topic, error = %e, "committing revoked partitions failed; the next owner repeats their tail");
                }
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let parts = partitions_of(tpl, &self.handover.topic);
            tracing::info!(topic = %self.handover.topic, partitions = ?parts, "partitions assigned");
            self.handover.assigned(&parts);
            // Another instance may have held some of these subscriptions meanwhile and moved
            // their breakers on: forget the breakers in memory, so each starts again from the
            // last record on `endpoint-health` (which every instance follows). Only the rolling
            // window of recent results is lost, never an open circuit or a failing-since time.
            self.shared.breakers.lock().expect("breakers lock").clear();
        }
    }
}

fn partitions_of(tpl: &TopicPartitionList, topic: &str) -> Vec<i32> {
    tpl.elements_for_topic(topic)
        .iter()
        .map(|e| e.partition())
        .collect()
}

/// Everything a job task needs.
#[derive(Clone)]
struct Ctx {
    shared: Arc<Shared>,
    producer: Producer,
    topics: Topics,
    done: mpsc::UnboundedSender<Done>,
    handover: Arc<Handover>,
    /// Set when producing fails: the loop stops without committing past it.
    fatal: CancellationToken,
    /// Cancels waits (retry delays) at shutdown; every partition's token is a child of it.
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
    let stop = CancellationToken::new();
    let handover = Arc::new(Handover::new(topic.clone(), stop.clone()));
    let consumer: StreamConsumer<SenderContext> = settings
        .group_consumer(&group)
        .create_with_context(SenderContext {
            handover: handover.clone(),
            shared: shared.clone(),
        })?;
    consumer.subscribe(&[topic.as_str()])?;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let ctx = Ctx {
        shared: shared.clone(),
        producer: Producer::new(&settings)?,
        topics: topics.clone(),
        done: done_tx,
        handover: handover.clone(),
        fatal: CancellationToken::new(),
        stop,
    };
    let tracker = TaskTracker::new();
    let in_hand = Arc::new(Semaphore::new(MAX_IN_HAND));
    let mut subs: HashMap<SubscriptionId, SubState> = HashMap::new();
    let mut parked: HashMap<i32, Vec<(Job, OwnedSemaphorePermit)>> = HashMap::new();
    let mut paused: HashSet<i32> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tracing::info!(%topic, %group, "sender loop started");

    let result: Result<(), SenderError> = loop {
        // A revocation (inside the last `recv`) dropped those partitions' waiting work; their
        // pause bookkeeping goes too (the next assignment starts unpaused).
        for p in handover.take_revoked() {
            paused.remove(&p);
            parked.remove(&p);
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break Ok(()),
            _ = ctx.fatal.cancelled() => break Err(SenderError::Config("producing outcomes failed; stopping without committing".into())),
            Some(done) = done_rx.recv() => {
                if let Some(s) = subs.get_mut(&done.subscription) {
                    s.in_hand = s.in_hand.saturating_sub(1);
                    if s.in_hand <= MAX_PER_SUBSCRIPTION / 2 && !paused.is_empty() {
                        resume_parked(&consumer, &topic, &mut paused, &mut parked, &mut subs, &ctx, &tracker);
                    }
                }
            }
            _ = tick.tick() => store(&consumer, &handover),
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
                let Some(cancel) = handover.begin(p, o) else {
                    continue;
                };
                let job = match decode(input, &msg, cancel) {
                    Ok(job) => job,
                    Err(reason) => {
                        shared.metrics.quarantined.with_label_values(&["sender", "schema"]).inc();
                        let mut acks = Acks::new();
                        quarantine(&ctx.producer, &mut acks, &topics.quarantine, "sender", &msg, &reason).await?;
                        acks.wait().await?;
                        handover.lock().finalizer.end(p, o);
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

    // Finish the attempts in flight; waiting work (retry delays, queues) is dropped and read
    // again after the restart.
    ctx.stop.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(%topic, in_flight = handover.in_flight(), "attempts still in flight after {DRAIN_TIMEOUT:?}; they will be retried");
    }
    store(&consumer, &handover);
    if result.is_ok() {
        let _ = consumer.commit_consumer_state(CommitMode::Sync);
    }
    ctx.producer.flush(Duration::from_secs(10))?;
    tracing::info!(%topic, "sender loop stopped");
    result
}

fn resume_parked(
    consumer: &StreamConsumer<SenderContext>,
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
    mut job: Job,
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
    job._in_hand = Some(InHand {
        subscription: id,
        done: ctx.done.clone(),
    });
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

async fn unordered_job(
    ctx: Ctx,
    job: Job,
    _permit: OwnedSemaphorePermit,
    limit: Arc<Semaphore>,
    rate: Arc<crate::rate::RateLimiter>,
) {
    let cancel = job.cancel.clone();
    if let Some(nb) = job.not_before {
        let wait = until(nb);
        if wait > REQUEUE_HORIZON {
            if unless(&cancel, tokio::time::sleep(REQUEUE_HORIZON))
                .await
                .is_none()
            {
                return;
            }
            if let Some(r) = &job.retry {
                let out = vec![Output::Retry(Box::new(r.clone()))];
                if publish(&ctx, out).await {
                    finish(&ctx, &job);
                }
            }
            return;
        }
        if unless(&cancel, tokio::time::sleep(wait)).await.is_none() {
            return;
        }
    }
    // `max_in_flight` bounds the requests to the endpoint: the slot is held while waiting
    // for the rate and during the request, not while the outcome is acknowledged.
    let step = {
        let Some(Ok(_slot)) = unless(&cancel, limit.acquire()).await else {
            return;
        };
        if unless(&cancel, rate.acquire()).await.is_none() {
            return;
        }
        if !ctx.handover.attempt_started(&job) {
            return;
        }
        attempt_step(&ctx.shared, &job, false).await
    };
    if publish(&ctx, step.outputs).await {
        finish(&ctx, &job);
    }
    ctx.handover.attempt_ended(job.partition);
}

/// Runs an ordered subscription's deliveries one at a time; a failure is retried in place.
/// A delivery whose partition was revoked is dropped, with everything after it: the next
/// owner sends them, in order.
async fn ordered_worker(
    ctx: Ctx,
    mut rx: mpsc::UnboundedReceiver<(Job, OwnedSemaphorePermit)>,
    rate: Arc<crate::rate::RateLimiter>,
) {
    'jobs: while let Some((mut job, _permit)) = rx.recv().await {
        let cancel = job.cancel.clone();
        loop {
            if ctx.stop.is_cancelled() {
                return;
            }
            if let Some(nb) = job.not_before.take() {
                if unless(&cancel, tokio::time::sleep(until(nb)))
                    .await
                    .is_none()
                {
                    continue 'jobs;
                }
            }
            if unless(&cancel, rate.acquire()).await.is_none() {
                continue 'jobs;
            }
            if !ctx.handover.attempt_started(&job) {
                continue 'jobs;
            }
            let step = attempt_step(&ctx.shared, &job, true).await;
            let published = publish(&ctx, step.outputs).await;
            ctx.handover.attempt_ended(job.partition);
            if !published {
                return;
            }
            match step.retry_in {
                Some((delay, next_attempt)) => {
                    if unless(&cancel, tokio::time::sleep(delay)).await.is_none() {
                        continue 'jobs;
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
    ctx.handover.end(job);
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

fn store(consumer: &StreamConsumer<SenderContext>, handover: &Handover) {
    let tpl = handover.committable();
    if tpl.count() > 0 {
        if let Err(e) = consumer.store_offsets(&tpl) {
            tracing::warn!(topic = %handover.topic, error = %e, "storing offsets failed");
        }
    }
}

fn decode(
    input: Input,
    msg: &BorrowedMessage<'_>,
    cancel: CancellationToken,
) -> Result<Job, String> {
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
                cancel,
                _in_hand: None,
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
                cancel,
                _in_hand: None,
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
        &shared.signers,
        &delivery,
        job.attempt,
        copernica_id,
    )
    .await;
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

    let first_attempt_at = first_attempt_at.unwrap_or_else(|| report.started_at.clone());
    let age = hookline_model::timefmt::parse(&first_attempt_at).map_or(Duration::ZERO, |t| {
        Duration::from_secs_f64((OffsetDateTime::now_utc() - t).as_seconds_f64().max(0.0))
    });
    let mut outputs = Vec::with_capacity(4);
    if let Some(h) = health {
        outputs.push(Output::Health(Box::new(h)));
    }
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
        Output::Health(h) => {
            producer
                .send_json(
                    acks,
                    &topics.endpoint_health,
                    h.subscription_id.0.as_bytes(),
                    &h,
                )
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
            .or_insert_with(|| match self.health.get(id) {
                Some(h) => Breaker::restore(&self.breaker_cfg, &h, Instant::now()),
                None => Breaker::new(&self.breaker_cfg),
            });
        f(b)
    }
}
