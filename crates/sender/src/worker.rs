//! The sender's loops over `deliveries` and `retries`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use hookline_config::Topics;
use hookline_kafka::offsets::ProcessedOffsets;
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
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::attempt::{attempt, Verdict};
use crate::{SenderError, Shared};

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
}

/// Records one attempt causes.
#[derive(Debug)]
enum Output {
    Outcome(Outcome),
    Retry(RetryRecord),
    Dead(DeadLetter),
    Disable(Subscription),
}

/// Consumes `input` until `shutdown`, committing a batch once every record it caused is
/// acknowledged.
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
    let producer = Producer::new(&settings)?;
    let semaphore = Arc::new(Semaphore::new(shared.concurrency));
    let mut offsets = ProcessedOffsets::default();
    tracing::info!(%topic, %group, "sender loop started");
    let result: Result<(), SenderError> = async {
        loop {
            let first = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                m = consumer.recv() => m,
            };
            let Ok(first) =
                first.inspect_err(|e| tracing::warn!(%topic, error = %e, "consumer error"))
            else {
                continue;
            };
            let mut batch = vec![first];
            while batch.len() < 512 {
                match tokio::time::timeout(Duration::from_millis(2), consumer.recv()).await {
                    Ok(Ok(m)) => batch.push(m),
                    Ok(Err(e)) => tracing::warn!(%topic, error = %e, "consumer error"),
                    Err(_) => break,
                }
            }
            let mut acks = Acks::new();
            let mut jobs = Vec::with_capacity(batch.len());
            for msg in &batch {
                match decode(input, msg) {
                    Ok(job) => jobs.push(job),
                    Err(reason) => {
                        shared
                            .metrics
                            .quarantined
                            .with_label_values(&["sender", "schema"])
                            .inc();
                        quarantine(
                            &producer,
                            &mut acks,
                            &topics.quarantine,
                            "sender",
                            msg,
                            &reason,
                        )
                        .await?;
                    }
                }
                offsets.done(msg.partition(), msg.offset());
            }
            let Some(outputs) = run_jobs(&shared, &semaphore, jobs, &shutdown).await else {
                // Stopped while waiting: nothing of this batch is committed, it is re-read.
                break;
            };
            for out in outputs {
                send_output(&producer, &mut acks, &topics, out).await?;
            }
            acks.wait().await?;
            offsets.store(&consumer, &topic)?;
        }
        Ok(())
    }
    .await;
    if result.is_ok() {
        let _ = consumer.commit_consumer_state(CommitMode::Sync);
    }
    producer.flush(Duration::from_secs(10))?;
    tracing::info!(%topic, "sender loop stopped");
    result
}

fn decode(input: Input, msg: &BorrowedMessage<'_>) -> Result<Job, String> {
    let bytes = msg.payload().ok_or("null value")?;
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("value is not JSON: {e}"))?;
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
            })
        }
        Input::Retries => {
            validators()
                .validate(SchemaKind::Retry, &value)
                .map_err(|v| format!("schema retry: {v}"))?;
            let r: RetryRecord = serde_json::from_value(value).map_err(|e| e.to_string())?;
            Ok(Job {
                not_before: hookline_model::timefmt::parse(&r.not_before),
                delivery: r.delivery,
                attempt: r.attempt,
                first_attempt_at: Some(r.first_attempt_at),
            })
        }
    }
}

/// Runs a batch's jobs: subscriptions in parallel, each within its own in-flight limit, and an
/// ordered subscription's jobs one after another. `None` when shutdown interrupted a wait.
async fn run_jobs(
    shared: &Arc<Shared>,
    semaphore: &Arc<Semaphore>,
    jobs: Vec<Job>,
    shutdown: &CancellationToken,
) -> Option<Vec<Output>> {
    let mut groups: HashMap<SubscriptionId, Vec<Job>> = HashMap::new();
    for j in jobs {
        groups
            .entry(j.delivery.subscription_id.clone())
            .or_default()
            .push(j);
    }
    let per_group = groups.into_values().map(|group| async move {
        let sub_limit = {
            let table = shared.subscriptions.read();
            table
                .get(&group[0].delivery.subscription_id)
                .map_or(1, |s| {
                    if s.sub.ordered {
                        1
                    } else {
                        s.sub.limits.max_in_flight as usize
                    }
                })
        };
        let results: Vec<Option<Vec<Output>>> = stream::iter(group)
            .map(|job| async move {
                let _permit = semaphore
                    .acquire()
                    .await
                    .expect("semaphore is never closed");
                handle(shared, job, shutdown).await
            })
            .buffered(sub_limit.max(1))
            .collect()
            .await;
        results
    });
    let mut all = Vec::new();
    for group in futures::future::join_all(per_group).await {
        for r in group {
            all.extend(r?);
        }
    }
    Some(all)
}

/// One job: wait until due, check the subscription, attempt, decide what follows.
async fn handle(shared: &Shared, job: Job, shutdown: &CancellationToken) -> Option<Vec<Output>> {
    if let Some(nb) = job.not_before {
        let wait = (nb - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
        let wait = Duration::from_secs_f64(wait.as_seconds_f64());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {},
            _ = shutdown.cancelled() => return None,
        }
    }
    let d = &job.delivery;
    let sub = shared
        .subscriptions
        .read()
        .get(&d.subscription_id)
        .map(|s| s.sub.clone());
    let skip = |result: OutcomeResult, why: &str| {
        shared
            .metrics
            .attempts
            .with_label_values(&[result.as_str()])
            .inc();
        let now = hookline_model::timefmt::now_rfc3339();
        Some(vec![Output::Outcome(Outcome {
            delivery_id: d.delivery_id.clone(),
            event_id: d.event_id.clone(),
            subscription_id: d.subscription_id.clone(),
            account: d.account.clone(),
            attempt: job.attempt,
            result,
            url: Some(d.url.clone()),
            http_status: None,
            error_class: None,
            error: Some(why.to_owned()),
            response_excerpt: None,
            latency_ms: 0.0,
            started_at: now.clone(),
            finished_at: now,
        })])
    };
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
    // The URL may have changed since the delivery was built: send to the current one.
    let mut delivery = job.delivery.clone();
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
    let first_attempt_at = job
        .first_attempt_at
        .clone()
        .unwrap_or_else(|| report.started_at.clone());
    let age = hookline_model::timefmt::parse(&first_attempt_at)
        .map(|t| OffsetDateTime::now_utc() - t)
        .map_or(Duration::ZERO, |d| {
            Duration::from_secs_f64(d.as_seconds_f64().max(0.0))
        });
    let mut outputs = Vec::with_capacity(2);
    let result = match &report.verdict {
        Verdict::Delivered => OutcomeResult::Delivered,
        Verdict::Retry { retry_after } => {
            match shared.policy.delay(job.attempt + 1, age, *retry_after) {
                Some(delay) => {
                    let not_before = OffsetDateTime::now_utc() + delay;
                    outputs.push(Output::Retry(RetryRecord {
                        delivery: delivery.clone(),
                        attempt: job.attempt + 1,
                        not_before: hookline_model::timefmt::rfc3339(not_before),
                        first_attempt_at: first_attempt_at.clone(),
                        last_error: report.error.clone(),
                        last_status: report.http_status,
                    }));
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
        Verdict::Gone => {
            let mut disabled = sub.clone();
            disabled.status = SubscriptionStatus::Disabled;
            disabled.updated = Some(hookline_model::timefmt::now_rfc3339());
            tracing::warn!(subscription = %sub.id, "endpoint answered 410 Gone; subscription disabled");
            outputs.push(Output::Disable(disabled));
            OutcomeResult::Disabled
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
    outputs.insert(
        0,
        Output::Outcome(Outcome {
            delivery_id: d.delivery_id.clone(),
            event_id: d.event_id.clone(),
            subscription_id: d.subscription_id.clone(),
            account: d.account.clone(),
            attempt: job.attempt,
            result,
            url: Some(delivery.url.clone()),
            http_status: report.http_status,
            error_class: report.error_class,
            error: report.error.clone(),
            response_excerpt: report.response_excerpt.clone(),
            latency_ms: report.latency.as_secs_f64() * 1000.0,
            started_at: report.started_at.clone(),
            finished_at: report.finished_at.clone(),
        }),
    );
    Some(outputs)
}

fn dead(
    d: &Delivery,
    attempts: u32,
    first: &str,
    report: &crate::attempt::AttemptReport,
) -> Output {
    Output::Dead(DeadLetter {
        delivery: d.clone(),
        attempts,
        first_attempt_at: first.to_owned(),
        dead_lettered_at: hookline_model::timefmt::now_rfc3339(),
        last_error: report.error.clone(),
        last_status: report.http_status,
    })
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
