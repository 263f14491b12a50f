//! A librdkafka producer whose delivery reports a thread of this crate serves, with a future
//! per record: what rust-rdkafka's `FutureProducer` gives, without its idle cost.
//!
//! `FutureProducer` serves its reports on a thread that calls `poll(100 ms)` in a loop, and
//! rust-rdkafka's `poll` waits until a deadline in whole milliseconds: in the last millisecond
//! before it the wait rounds down to zero and the thread spins, calling the clock. Ten times a
//! second that is 7–8 ms of CPU per second per producer on an idle stage (measured with
//! `/proc/<pid>/task/<tid>/schedstat` and `perf`, 2026-12-02; docs/benchmarks.md, "Idle cost").
//! Here the thread waits [`POLL_PERIOD`] at a time: reports are still served the moment they
//! arrive (the wait ends on an event), and the spin happens once per period instead of ten
//! times a second.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError as RdError, KafkaResult};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, ProducerContext};
use rdkafka::statistics::Statistics;
use tokio::sync::oneshot;

use crate::stats::StatsContext;

/// How long the report thread waits per call; also how long the thread may outlive its
/// producer handle (it notices the stop flag after at most this).
pub const POLL_PERIOD: Duration = Duration::from_secs(1);

/// The broker's answer for one record: where it was written, or why not.
pub type Report = Result<(i32, i64), RdError>;

/// A record's report, once librdkafka has it (an `Err` when the client went away first).
pub type ReportFuture = oneshot::Receiver<Report>;

/// Hands each report to its record's future; statistics go to the wrapped context.
#[derive(Clone)]
pub struct ReportContext(pub StatsContext);

impl ClientContext for ReportContext {
    fn stats(&self, statistics: Statistics) {
        self.0.stats(statistics);
    }
}

impl ProducerContext for ReportContext {
    type DeliveryOpaque = Box<oneshot::Sender<Report>>;

    fn delivery(&self, result: &DeliveryResult<'_>, tx: Self::DeliveryOpaque) {
        let report = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.clone()),
        };
        // The record's future may be gone (its stage stopped waiting): nothing to tell then.
        let _ = tx.send(report);
    }
}

/// One librdkafka producer and the thread that serves its reports; stops the thread on drop.
pub struct PolledProducer {
    inner: Arc<BaseProducer<ReportContext>>,
    stop: Arc<AtomicBool>,
}

impl PolledProducer {
    pub fn create(config: &ClientConfig, context: ReportContext) -> KafkaResult<Self> {
        let inner: Arc<BaseProducer<ReportContext>> =
            Arc::new(config.create_with_context(context)?);
        let stop = Arc::new(AtomicBool::new(false));
        let (producer, stopped) = (inner.clone(), stop.clone());
        std::thread::Builder::new()
            .name("kafka-reports".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    producer.poll(POLL_PERIOD);
                }
            })
            .map_err(|e| RdError::ClientCreation(format!("starting the report thread: {e}")))?;
        Ok(Self { inner, stop })
    }

    /// Queues one record; its future resolves with the broker's answer.
    pub fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<ReportFuture, RdError> {
        let (tx, rx) = oneshot::channel();
        let mut record: BaseRecord<'_, [u8], [u8], Box<oneshot::Sender<Report>>> =
            BaseRecord::with_opaque_to(topic, Box::new(tx));
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        self.inner.send(record).map_err(|(e, _)| e)?;
        Ok(rx)
    }

    /// Waits until everything queued is answered or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> KafkaResult<()> {
        self.inner.flush(timeout)
    }
}

impl Drop for PolledProducer {
    fn drop(&mut self) {
        // The thread ends within a poll period and drops the client last; records still
        // queued then are purged and their futures report the client gone.
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_to_a_broker_that_is_not_there_reports_an_error() {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("message.timeout.ms", "200");
        let p = PolledProducer::create(&config, ReportContext(StatsContext::default())).unwrap();
        let fut = p.send("t", Some(b"k"), Some(b"v")).unwrap();
        let report = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(fut)
            .expect("the report thread answers");
        assert!(report.is_err(), "{report:?}");
    }
}
