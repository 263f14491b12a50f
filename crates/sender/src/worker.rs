//! The sender's loops: one over `deliveries` (attempt 1) and one per retry topic (`retries`
//! and its delay tiers, see [`crate::tiers`]).
//!
//! A loop reads records continuously and offers each to its endpoint ([`crate::endpoint`]). A
//! taken delivery waits in memory for its rate token and a request slot; one the endpoint will
//! not take (queue full, next send not due soon, endpoint too slow) moves to the retry path, so
//! a partition never waits for one endpoint. An ordered subscription whose endpoint will not
//! take a delivery is held instead ([`crate::hold`]): it blocks only itself.
//!
//! A tier loop pauses a partition only until the record at its head is due in its tier, then
//! reads it again. Completion is tracked per partition ([`Handover`]), so an unfinished record
//! holds back the commit point, never the work for other endpoints. Memory is bounded per
//! endpoint (bytes and records) and per loop ([`MEMORY_BUDGET_KIB`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookline_config::Topics;
use hookline_kafka::membership::StuckGroupWatch;
use hookline_kafka::producer::Acks;
use hookline_kafka::quarantine::quarantine;
use hookline_kafka::KafkaSettings;
use hookline_model::{Delivery, RetryRecord, SubscriptionId};
use hookline_schemas::{validators, SchemaKind};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use time::OffsetDateTime;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::endpoint::{Admission, Limits};
use crate::handover::{Handover, SenderContext};
use crate::hold::{Holds, Offer, Read};
use crate::jobs::{self, Ctx, Job};
use crate::tiers::{head_action, HeadAction, Recent, Tier, Tiers};
use crate::unsendable;
use crate::{SenderError, Shared};

/// Kibibytes of delivery bodies in hand per loop; beyond it the loop waits for room.
pub const MEMORY_BUDGET_KIB: u32 = 256 * 1024;
/// How long a stopping loop waits for its partitions to be revoked as it leaves its group.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for attempts in flight before giving up on them (they are re-read).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
/// Links of the retry path a tier loop remembers, to drop a chain duplicated by a crash.
const RECENT_LINKS: usize = 100_000;
/// How often a loop stores offsets, resumes paused partitions and releases held subscriptions.
const TICK: Duration = Duration::from_millis(100);

/// Which topic a loop consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// New deliveries from the routing stages: attempt 1.
    Deliveries,
    /// A retry topic: attempt n once due.
    Tier(Tier),
}

/// One loop's state.
struct Loop {
    consumer: Arc<StreamConsumer<SenderContext>>,
    topic: String,
    input: Input,
    ctx: Ctx,
    tracker: TaskTracker,
    budget: Arc<Semaphore>,
    holds: Holds,
    /// Tier partitions paused until their head (offset) is due.
    paused: HashMap<i32, (i64, Instant)>,
    /// Partitions sought back to an offset: records before it arrives are stale fetches.
    awaiting: HashMap<i32, i64>,
    /// Per partition, the offset after the last record counted as consumed: a record read again
    /// (after a pause, a seek or a rebalance within this process) is not counted twice.
    counted_to: HashMap<i32, i64>,
    ordered: HashMap<SubscriptionId, mpsc::UnboundedSender<Job>>,
    /// Rejoins a group that settled with nobody holding a partition (`membership`).
    stuck: StuckGroupWatch,
    /// A static member leaves its group on purpose when it stops.
    is_static: bool,
    shutdown: CancellationToken,
}

/// Consumes `input` until `shutdown`.
pub async fn run_loop(
    shared: Arc<Shared>,
    settings: KafkaSettings,
    topics: Topics,
    tiers: Arc<Tiers>,
    group: String,
    input: Input,
    shutdown: CancellationToken,
) -> Result<(), SenderError> {
    let topic = match &input {
        Input::Deliveries => topics.deliveries.clone(),
        Input::Tier(t) => t.topic.clone(),
    };
    // A child of the shutdown token: a signal stops the waiting work at once, and `finish`
    // stops it for a loop that ends on its own (a fatal write error).
    let stop = shutdown.child_token();
    let handover = Arc::new(Handover::new(topic.clone(), stop.clone()));
    let client = client_label(&input);
    let context = SenderContext {
        handover: handover.clone(),
        shared: shared.clone(),
        group: group.clone(),
        client: format!("{client}-consumer"),
    };
    let consumer = group_consumer(&settings, &group, &input, &topic, context)?;
    let max_bytes = settings
        .producer()
        .get("message.max.bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let producer = shared.producer.clone();
    let ctx = Ctx {
        shared,
        producer,
        topics,
        tiers,
        handover,
        max_bytes,
        recent: matches!(input, Input::Tier(_)).then(|| Arc::new(Recent::new(RECENT_LINKS))),
        // Not in the shutdown tree on purpose: it signals upwards (a job tells the loop that a
        // write failed), and the loop tells a shutdown from a failure by which one fired.
        fatal: CancellationToken::new(),
        stop,
    };
    let delay = match &input {
        Input::Deliveries => Duration::ZERO,
        Input::Tier(t) => t.delay,
    };
    let stuck = StuckGroupWatch::spawn(&settings, &group, &topic, delay)?;
    let mut l = Loop {
        consumer: Arc::new(consumer),
        topic,
        input,
        ctx,
        tracker: TaskTracker::new(),
        budget: Arc::new(Semaphore::new(MEMORY_BUDGET_KIB as usize)),
        holds: Holds::default(),
        paused: HashMap::new(),
        awaiting: HashMap::new(),
        counted_to: HashMap::new(),
        ordered: HashMap::new(),
        stuck,
        is_static: settings.instance.is_some(),
        shutdown,
    };
    tracing::info!(topic = %l.topic, %group, "sender loop started");
    let result = l.run().await;
    l.finish(result.is_ok()).await?;
    result
}

/// The `client` label of a loop's librdkafka gauges: one per loop, bounded by the tiers.
fn client_label(input: &Input) -> String {
    match input {
        Input::Deliveries => "sender-deliveries".to_owned(),
        Input::Tier(t) => format!("sender-retries-{}", t.label),
    }
}

/// A loop's group consumer, subscribed to `topic`.
fn group_consumer(
    settings: &KafkaSettings,
    group: &str,
    input: &Input,
    topic: &str,
    context: SenderContext,
) -> Result<StreamConsumer<SenderContext>, SenderError> {
    let mut config = settings.group_consumer(group);
    if let Input::Tier(t) = input {
        // A record of a delay tier waits seconds to hours: fetching with a long wait costs the
        // broker far fewer requests while idle, and its records' latency nothing that matters.
        if !settings
            .overrides
            .iter()
            .any(|(k, _)| k == "fetch.wait.max.ms")
        {
            config.set("fetch.wait.max.ms", tier_fetch_wait(t.delay));
        }
    }
    let consumer: StreamConsumer<SenderContext> = config.create_with_context(context)?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

impl Loop {
    async fn run(&mut self) -> Result<(), SenderError> {
        let mut tick = tokio::time::interval(TICK);
        let consumer = self.consumer.clone();
        loop {
            self.forget_revoked();
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return Ok(()),
                _ = self.ctx.fatal.cancelled() => return Err(SenderError::Produce(
                    "writing the sender's records failed; stopping without committing".into())),
                _ = tick.tick() => {
                    store(&self.consumer, &self.ctx.handover);
                    self.resume_due();
                    self.release_holds();
                    self.stuck.check(&self.consumer);
                }
                m = consumer.recv() => match m {
                    Ok(msg) => self.on_record(&msg).await?,
                    Err(e) => tracing::warn!(topic = %self.topic, error = %e, "consumer error"),
                },
            }
        }
    }

    /// A revocation (inside a `recv`) dropped those partitions' waiting work; their pause, seek
    /// and hold bookkeeping goes too (the next assignment starts afresh, unpaused). Done before
    /// each record as well: the `recv` that revoked and assigned a partition again may return
    /// one of its records, and a pause made for it must not be forgotten afterwards.
    fn forget_revoked(&mut self) {
        for p in self.ctx.handover.take_revoked() {
            self.paused.remove(&p);
            self.awaiting.remove(&p);
            self.holds.forget(p);
        }
    }

    async fn on_record(&mut self, msg: &BorrowedMessage<'_>) -> Result<(), SenderError> {
        self.forget_revoked();
        let (p, o) = (msg.partition(), msg.offset());
        self.count_consumed(p, o);
        if self.paused.contains_key(&p) {
            // Fetched before the pause took effect; read again after it.
            return Ok(());
        }
        if let Some(want) = self.awaiting.get(&p) {
            if o != *want {
                return Ok(()); // fetched before the seek
            }
            self.awaiting.remove(&p);
        }
        let sub =
            SubscriptionId(String::from_utf8_lossy(msg.key().unwrap_or_default()).into_owned());
        if self.input == Input::Deliveries && self.holds.read(p, o, &sub) == Read::Handled {
            return Ok(());
        }
        let Some(cancel) = self.ctx.handover.begin(p, o) else {
            return Ok(());
        };
        let (mut job, not_before) = match decode(&self.input, msg, cancel) {
            Ok(j) => j,
            Err(reason) => return self.quarantine(msg, &reason).await,
        };
        if let Input::Tier(tier) = &self.input {
            if self
                .ctx
                .recent
                .as_ref()
                .is_some_and(|r| r.contains(&job.link()))
            {
                // Expected after a crash, thousands at a time under churn: not worth an info line each.
                tracing::debug!(delivery = %job.delivery.delivery_id, attempt = job.attempt, hops = job.hops, "dropped a second chain of a delivery on the retry path");
                self.ctx.handover.end(p, o);
                return Ok(());
            }
            // A delivery its subscription no longer takes (disabled, paused, …) does not wait for
            // its time on the path: it ends now (dead-lettered with the reason, or looked at
            // again shortly while this instance's view of the subscription may lag).
            let takes = unsendable::current_subscription(&self.ctx.shared, &job.delivery).is_ok();
            let until_due = match not_before {
                Some(at) if takes => until(at),
                _ => Duration::ZERO,
            };
            match head_action(tier.delay, written_ago(msg), until_due) {
                HeadAction::Pause(d) => {
                    self.pause(p, o, d);
                    return Ok(());
                }
                HeadAction::Move(wait) => {
                    let ctx = self.ctx.clone();
                    self.tracker.spawn(async move {
                        ctx.defer(job, wait, "waiting on the retry path").await
                    });
                    return Ok(());
                }
                HeadAction::Attempt(wait) => job.wait = wait,
            }
        }
        let kib = (job.delivery.body.len() / 1024 + 1).min(MEMORY_BUDGET_KIB as usize) as u32;
        tokio::select! {
            permit = self.budget.clone().acquire_many_owned(kib) => job._budget = permit.ok(),
            _ = self.shutdown.cancelled() => return Ok(()),
        }
        self.admit(job);
        Ok(())
    }

    /// Offers the job to its endpoint: taken (an unordered job, or the ordered worker), moved to
    /// the retry path, or — ordered — held.
    fn admit(&mut self, mut job: Job) {
        let id = job.delivery.subscription_id.clone();
        let (ordered, limits) = {
            let table = self.ctx.shared.subscriptions.read();
            table.get(&id).map_or(
                (
                    job.delivery.ordered,
                    Limits {
                        max_in_flight: 1,
                        per_second: 50.0,
                    },
                ),
                |s| {
                    (
                        s.sub.ordered,
                        Limits {
                            max_in_flight: s.sub.limits.max_in_flight.max(1),
                            per_second: s.sub.limits.per_second,
                        },
                    )
                },
            )
        };
        let bytes = job.delivery.body.len();
        job.taken_at = Instant::now();
        let endpoints = &self.ctx.shared.endpoints;
        if ordered && self.input == Input::Deliveries {
            let (p, o) = (job.partition, job.offset);
            let mut ticket = None;
            let offer = self
                .holds
                .offer(p, o, &id, || match endpoints.offer(&id, limits, bytes) {
                    Admission::Take(t) => {
                        ticket = Some(t);
                        true
                    }
                    Admission::Defer { .. } => false,
                });
            match offer {
                Offer::Taken => {
                    job.ticket = ticket;
                    self.send_ordered(id, job);
                }
                Offer::Held => {
                    tracing::debug!(subscription = %id, partition = p, offset = o, "ordered subscription held");
                    self.ctx
                        .shared
                        .metrics
                        .deferred
                        .with_label_values(&["held"])
                        .inc();
                }
                Offer::Blocked => self.ctx.handover.end(p, o),
            }
            return;
        }
        let ctx = self.ctx.clone();
        match endpoints.offer(&id, limits, bytes) {
            Admission::Take(t) => {
                job.ticket = Some(t);
                self.tracker.spawn(jobs::unordered(ctx, job));
            }
            Admission::Defer { wait, reason } => {
                self.tracker
                    .spawn(async move { ctx.defer_for(job, wait, reason).await });
            }
        }
    }

    fn send_ordered(&mut self, id: SubscriptionId, job: Job) {
        let tx = self.ordered.entry(id).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            self.tracker.spawn(jobs::ordered(self.ctx.clone(), rx));
            tx
        });
        // A send fails only when the worker stopped (shutdown): the record stays unfinished
        // and is read again.
        let _ = tx.send(job);
    }

    async fn quarantine(&self, msg: &BorrowedMessage<'_>, reason: &str) -> Result<(), SenderError> {
        let m = &self.ctx.shared.metrics;
        m.quarantined.with_label_values(&["sender", "schema"]).inc();
        let mut acks = Acks::new();
        let q = &self.ctx.topics.quarantine;
        quarantine(&self.ctx.producer, &mut acks, q, "sender", msg, reason).await?;
        acks.wait().await?;
        self.ctx.handover.end(msg.partition(), msg.offset());
        Ok(())
    }

    fn partition(&self, p: i32) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, p);
        tpl
    }

    /// Counts a record read for the first time in this process: `consumed{stage="sender"}` for
    /// new deliveries, `consumed{stage="sender-retries"}` for the retry path's records.
    fn count_consumed(&mut self, p: i32, o: i64) {
        let to = self.counted_to.entry(p).or_insert(0);
        if o >= *to {
            *to = o + 1;
            let stage = match self.input {
                Input::Deliveries => "sender",
                Input::Tier(_) => "sender-retries",
            };
            self.ctx
                .shared
                .metrics
                .consumed
                .with_label_values(&[stage])
                .inc();
        }
    }

    /// Pauses a tier partition until its head (`offset`) is due.
    fn pause(&mut self, p: i32, offset: i64, for_: Duration) {
        if let Err(e) = self.consumer.pause(&self.partition(p)) {
            tracing::warn!(topic = %self.topic, partition = p, error = %e, "pausing failed");
        }
        self.paused.insert(p, (offset, Instant::now() + for_));
    }

    /// Resumes tier partitions whose head is due, reading again from the head.
    fn resume_due(&mut self) {
        let now = Instant::now();
        let due: Vec<(i32, i64)> = self
            .paused
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(p, (o, _))| (*p, *o))
            .collect();
        for (p, o) in due {
            self.paused.remove(&p);
            self.seek(p, o);
            if let Err(e) = self.consumer.resume(&self.partition(p)) {
                tracing::warn!(topic = %self.topic, partition = p, error = %e, "resuming failed");
            }
        }
    }

    /// Releases held ordered subscriptions whose endpoint has room again.
    fn release_holds(&mut self) {
        for (p, sub) in self.holds.held() {
            if !self.ctx.shared.endpoints.has_room(&sub) {
                continue;
            }
            if let Some(o) = self.holds.release(p, &sub) {
                let to = self.awaiting.get(&p).map_or(o, |a| o.min(*a));
                tracing::debug!(subscription = %sub, partition = p, offset = to, "held subscription released: reading back");
                self.seek(p, to);
            }
        }
    }

    fn seek(&mut self, p: i32, o: i64) {
        match self
            .consumer
            .seek(&self.topic, p, Offset::Offset(o), Duration::from_secs(5))
        {
            Ok(()) => {
                self.awaiting.insert(p, o);
            }
            Err(e) => {
                tracing::warn!(topic = %self.topic, partition = p, offset = o, error = %e, "seeking failed")
            }
        }
    }

    /// Finishes the attempts in flight; waiting work (delays, queues) is dropped and read again
    /// after the restart.
    async fn finish(&mut self, commit: bool) -> Result<(), SenderError> {
        self.ctx.stop.cancel();
        self.ordered.clear();
        self.tracker.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(topic = %self.topic, in_flight = self.ctx.handover.in_flight(), "attempts still in flight after {DRAIN_TIMEOUT:?}; they will be retried");
        }
        store(&self.consumer, &self.ctx.handover);
        if commit {
            let _ = self.consumer.commit_consumer_state(CommitMode::Sync);
        }
        if commit && self.is_static {
            // A static member does not leave on close: leave now so the partitions move at once.
            hookline_kafka::membership::leave_group(&self.consumer, LEAVE_TIMEOUT).await;
        }
        self.ctx.producer.flush(Duration::from_secs(10))?;
        tracing::info!(topic = %self.topic, "sender loop stopped");
        Ok(())
    }
}

/// `fetch.wait.max.ms` of a retry topic's loop: `retries` itself holds waits under 5 s, the
/// delay tiers at least 5 s.
fn tier_fetch_wait(delay: Duration) -> &'static str {
    if delay.is_zero() {
        "250"
    } else {
        "1000"
    }
}

fn until(t: OffsetDateTime) -> Duration {
    let d = t - OffsetDateTime::now_utc();
    Duration::from_secs_f64(d.as_seconds_f64().max(0.0))
}

/// How long ago the record was written, from its timestamp.
fn written_ago(msg: &BorrowedMessage<'_>) -> Option<Duration> {
    let ms = msg.timestamp().to_millis()?;
    let now = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    Some(Duration::from_millis(
        u64::try_from(now - i128::from(ms)).unwrap_or(0),
    ))
}

fn store(consumer: &StreamConsumer<SenderContext>, handover: &Handover) {
    let tpl = handover.committable();
    if tpl.count() > 0 {
        if let Err(e) = consumer.store_offsets(&tpl) {
            tracing::warn!(topic = %handover.topic, error = %e, "storing offsets failed");
        }
    }
}

/// The job a record asks for, and (retry topics) its `not_before`.
fn decode(
    input: &Input,
    msg: &BorrowedMessage<'_>,
    cancel: CancellationToken,
) -> Result<(Job, Option<OffsetDateTime>), String> {
    let bytes = msg.payload().ok_or("null value")?;
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("value is not JSON: {e}"))?;
    let job = |delivery: Delivery| Job {
        delivery,
        attempt: 1,
        first_attempt_at: None,
        hops: 0,
        wait: Duration::ZERO,
        partition: msg.partition(),
        offset: msg.offset(),
        cancel,
        ticket: None,
        taken_at: Instant::now(),
        _budget: None,
    };
    match input {
        Input::Deliveries => {
            validators()
                .validate(SchemaKind::Delivery, &value)
                .map_err(|v| format!("schema delivery: {v}"))?;
            let delivery: Delivery = serde_json::from_value(value).map_err(|e| e.to_string())?;
            Ok((job(delivery), None))
        }
        Input::Tier(_) => {
            validators()
                .validate(SchemaKind::Retry, &value)
                .map_err(|v| format!("schema retry: {v}"))?;
            let r: RetryRecord = serde_json::from_value(value).map_err(|e| e.to_string())?;
            let not_before = hookline_model::timefmt::parse(&r.not_before);
            let mut j = job(r.delivery);
            j.attempt = r.attempt;
            j.first_attempt_at = Some(r.first_attempt_at);
            j.hops = r.hops;
            Ok((j, not_before))
        }
    }
}
