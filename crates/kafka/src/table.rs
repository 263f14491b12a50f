//! Reading a (compacted) topic's partitions into a local table.
//!
//! Why a dedicated thread: restoring a table is a tight poll loop over many records, and the
//! stage's async workers must not stall on it. The stage tells the thread which partitions it
//! owns ([`TableTail::assign`]/[`TableTail::revoke`], driven by its group's rebalances) and asks
//! [`TableTail::caught_up`] before it processes a partition's stream, which resolves once the
//! table partition has been read up to the high watermark observed at the time of asking.
//!
//! "Read up to" compares positions, not the records seen: the consumer's position moves past
//! offsets that are never delivered (transaction markers, aborted records), so a table whose
//! last offsets are such records still completes. The wait is bounded
//! ([`DEFAULT_CATCH_UP_TIMEOUT`], [`TableTail::with_catch_up_timeout`]): past the bound the
//! caller gets [`KafkaError::CatchUpTimeout`], naming the partition, how far it was read and
//! where its end is. [`TableTail::wait_caught_up`] and [`TableTail::catch_up_all`] are for
//! readers that must not go on with a half-read table: they log each timeout and keep waiting.
//!
//! Whatever a record holds, the thread goes on: a sink that panics on a record has that record
//! skipped and logged (see [`TableSink`]).

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::oneshot;

use crate::{KafkaError, KafkaSettings};

/// How long [`TableTail::caught_up`] waits for a partition to be read to its end by default.
pub const DEFAULT_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the thread drains fetched records before it looks at commands and waiters again.
const DRAIN_SLICE: Duration = Duration::from_millis(100);

/// Receives the table's records. Runs on the table thread.
///
/// A sink must skip (and log) a record it cannot use rather than panic, and do its parsing
/// before it takes any lock readers share. Should `apply` panic anyway, the record is skipped
/// and the thread goes on.
pub trait TableSink: Send + 'static {
    /// One record; `value` is `None` for a tombstone.
    fn apply(&mut self, partition: i32, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>);
    /// The partition is no longer owned: drop what was read from it.
    fn forget_partition(&mut self, partition: i32);
}

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy)]
pub enum StartAt {
    Beginning,
    /// The next offset to read (a checkpoint of a persistent store).
    Offset(i64),
}

/// Why a catch-up did not complete, as the table thread reports it.
#[derive(Debug)]
enum CatchUpFailure {
    TimedOut { position: i64, high: i64 },
    Failed(String),
}

type Reply = oneshot::Sender<Result<i64, CatchUpFailure>>;

enum Command {
    Assign(Vec<(i32, StartAt)>),
    Revoke(Vec<i32>),
    CatchUp(i32, Instant, Reply),
    Stop,
}

/// Handle to the table thread. Dropping it stops the thread.
pub struct TableTail {
    topic: String,
    tx: mpsc::Sender<Command>,
    handle: Option<JoinHandle<()>>,
    catch_up_timeout: Duration,
}

impl TableTail {
    /// Starts a thread reading `topic` into `sink`. No partition is read until assigned.
    pub fn spawn<S: TableSink>(
        settings: &KafkaSettings,
        name: &str,
        topic: &str,
        sink: S,
    ) -> Result<Self, KafkaError> {
        let consumer: BaseConsumer = settings.table_consumer(name).create()?;
        let (tx, rx) = mpsc::channel();
        let t = topic.to_owned();
        let handle = std::thread::Builder::new()
            .name(format!("table-{topic}"))
            .spawn(move || Reader::new(consumer, t, sink).run(&rx))
            .map_err(|e| KafkaError::CatchUp {
                topic: topic.to_owned(),
                reason: format!("starting the table thread: {e}"),
            })?;
        Ok(Self {
            topic: topic.to_owned(),
            tx,
            handle: Some(handle),
            catch_up_timeout: DEFAULT_CATCH_UP_TIMEOUT,
        })
    }

    /// Bounds each [`TableTail::caught_up`] to `timeout` instead of
    /// [`DEFAULT_CATCH_UP_TIMEOUT`].
    pub fn with_catch_up_timeout(mut self, timeout: Duration) -> Self {
        self.catch_up_timeout = timeout;
        self
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn assign(&self, partitions: Vec<(i32, StartAt)>) {
        let _ = self.tx.send(Command::Assign(partitions));
    }

    pub fn revoke(&self, partitions: Vec<i32>) {
        let _ = self.tx.send(Command::Revoke(partitions));
    }

    /// Resolves when `partition` has been read up to the high watermark seen now; returns that
    /// watermark. [`KafkaError::CatchUpTimeout`] when that takes longer than the bound.
    pub async fn caught_up(&self, partition: i32) -> Result<i64, KafkaError> {
        let (tx, rx) = oneshot::channel();
        let deadline = Instant::now() + self.catch_up_timeout;
        self.tx
            .send(Command::CatchUp(partition, deadline, tx))
            .map_err(|_| self.stopped())?;
        match rx.await.map_err(|_| self.stopped())? {
            Ok(high) => Ok(high),
            Err(CatchUpFailure::TimedOut { position, high }) => Err(KafkaError::CatchUpTimeout {
                topic: self.topic.clone(),
                partition,
                position,
                high,
                waited: self.catch_up_timeout,
            }),
            Err(CatchUpFailure::Failed(reason)) => Err(KafkaError::CatchUp {
                topic: self.topic.clone(),
                reason,
            }),
        }
    }

    /// [`TableTail::caught_up`] for a reader that must not go on before `partition` is read to
    /// its end: each time the bound passes, what is missing is logged and the wait goes on. Any
    /// other failure is returned.
    pub async fn wait_caught_up(&self, partition: i32) -> Result<i64, KafkaError> {
        loop {
            match self.caught_up(partition).await {
                Err(e @ KafkaError::CatchUpTimeout { .. }) => {
                    tracing::warn!(topic = %self.topic, partition, error = %e, "table partition not read to its end yet; still waiting (nothing that needs it goes on before)");
                }
                r => return r,
            }
        }
    }

    /// [`TableTail::wait_caught_up`] for each of `partitions`: for a follower that must not
    /// serve a half-read table.
    pub async fn catch_up_all(&self, partitions: std::ops::Range<i32>) -> Result<(), KafkaError> {
        for p in partitions {
            self.wait_caught_up(p).await?;
        }
        Ok(())
    }

    fn stopped(&self) -> KafkaError {
        KafkaError::TableStopped {
            topic: self.topic.clone(),
        }
    }
}

impl Drop for TableTail {
    fn drop(&mut self) {
        let _ = self.tx.send(Command::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The number of partitions of `topic`, from the cluster's metadata.
pub fn partition_count(settings: &KafkaSettings, topic: &str) -> Result<i32, KafkaError> {
    let consumer: BaseConsumer = settings.table_consumer("hookline-metadata").create()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let n = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len());
    if n == 0 {
        return Err(KafkaError::CreateTopic {
            topic: topic.to_owned(),
            reason: "topic does not exist (run `hookline topics create`)".into(),
        });
    }
    Ok(n as i32)
}

/// Whether a partition is read up to `high`: `read` is the offset after the last record
/// handed to the sink, `consumer` the consumer's own position, which also moves past offsets
/// that are never delivered (transaction markers, aborted records). An empty partition
/// (`high <= low`) is always read.
fn is_read_to(read: Option<i64>, consumer: Option<i64>, low: i64, high: i64) -> bool {
    if high <= low {
        return true;
    }
    let position = read.into_iter().chain(consumer).max().unwrap_or(low);
    position >= high
}

/// What becomes of a waiting catch-up: done, still waiting, or out of time.
#[derive(Debug, PartialEq, Eq)]
enum Wait {
    Done,
    Pending,
    TimedOut,
}

fn wait_state(read_to_end: bool, now: Instant, deadline: Instant) -> Wait {
    if read_to_end {
        Wait::Done
    } else if now >= deadline {
        Wait::TimedOut
    } else {
        Wait::Pending
    }
}

/// Hands one record to the sink. Sinks skip what they cannot use, but should one still panic
/// on a record (a bug), the record is logged and skipped: a table follower must survive
/// anything a producer can write, and a dead table thread would stop every stage relying on it.
fn apply_guarded<S: TableSink>(sink: &mut S, topic: &str, partition: i32, m: &impl Message) {
    let offset = m.offset();
    let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sink.apply(partition, offset, m.key(), m.payload())
    }));
    if applied.is_err() {
        tracing::error!(
            topic,
            partition,
            offset,
            "the table sink panicked on this record; skipped (a bug: please report it)"
        );
    }
}

struct Waiter {
    partition: i32,
    low: i64,
    high: i64,
    deadline: Instant,
    reply: Reply,
}

/// The table thread's state.
struct Reader<S> {
    consumer: BaseConsumer,
    topic: String,
    sink: S,
    assigned: HashSet<i32>,
    /// Next offset to read per partition, as far as records were handed to the sink.
    read: HashMap<i32, i64>,
    waiting: Vec<Waiter>,
}

impl<S: TableSink> Reader<S> {
    fn new(consumer: BaseConsumer, topic: String, sink: S) -> Self {
        Self {
            consumer,
            topic,
            sink,
            assigned: HashSet::new(),
            read: HashMap::new(),
            waiting: Vec::new(),
        }
    }

    fn run(mut self, rx: &mpsc::Receiver<Command>) {
        loop {
            loop {
                match rx.try_recv() {
                    Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                    Ok(cmd) => self.handle(cmd),
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            self.drain();
            self.settle_waiters();
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Assign(parts) => self.assign(parts),
            Command::Revoke(parts) => self.revoke(parts),
            Command::CatchUp(p, deadline, reply) => self.catch_up(p, deadline, reply),
            Command::Stop => {}
        }
    }

    fn assign(&mut self, parts: Vec<(i32, StartAt)>) {
        let mut tpl = TopicPartitionList::new();
        for (p, start) in parts {
            if !self.assigned.insert(p) {
                continue;
            }
            let off = match start {
                StartAt::Beginning => Offset::Beginning,
                StartAt::Offset(o) => {
                    self.read.insert(p, o);
                    Offset::Offset(o)
                }
            };
            let _ = tpl.add_partition_offset(&self.topic, p, off);
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.incremental_assign(&tpl) {
                tracing::error!(topic = %self.topic, error = %e, "assigning table partitions failed");
            }
        }
    }

    fn revoke(&mut self, parts: Vec<i32>) {
        let mut tpl = TopicPartitionList::new();
        for p in parts {
            if self.assigned.remove(&p) {
                tpl.add_partition(&self.topic, p);
                self.read.remove(&p);
                self.sink.forget_partition(p);
            }
            for w in self.waiting.extract_if(.., |w| w.partition == p) {
                let _ = w.reply.send(Err(CatchUpFailure::Failed(format!(
                    "partition {p} was revoked"
                ))));
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.incremental_unassign(&tpl) {
                tracing::error!(topic = %self.topic, error = %e, "unassigning table partitions failed");
            }
        }
    }

    fn catch_up(&mut self, p: i32, deadline: Instant, reply: Reply) {
        let topic = &self.topic;
        if !self.assigned.contains(&p) {
            let reason = format!("partition {p} of {topic} is not assigned to this table");
            let _ = reply.send(Err(CatchUpFailure::Failed(reason)));
            return;
        }
        match self
            .consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
        {
            Ok((low, high)) => {
                if is_read_to(
                    self.read.get(&p).copied(),
                    self.consumer_position(p),
                    low,
                    high,
                ) {
                    let _ = reply.send(Ok(high));
                } else {
                    self.waiting.push(Waiter {
                        partition: p,
                        low,
                        high,
                        deadline,
                        reply,
                    });
                }
            }
            Err(e) => {
                let reason = format!("reading the watermarks of {topic}/{p}: {e}");
                let _ = reply.send(Err(CatchUpFailure::Failed(reason)));
            }
        }
    }

    /// The consumer's position in `p` (the offset after the last message librdkafka handed
    /// out, control records included), if it has one. librdkafka resets it when a partition is
    /// unassigned, so a position from an earlier assignment does not carry over (the stages
    /// re-assign a revoked table partition only after a rebalance, long after that reset).
    fn consumer_position(&self, p: i32) -> Option<i64> {
        let tpl = self.consumer.position().ok()?;
        match tpl.find_partition(&self.topic, p)?.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }
    }

    /// Hands fetched records to the sink for up to [`DRAIN_SLICE`], so commands and deadlines
    /// are looked at in time even when the sink is slow.
    fn drain(&mut self) {
        let timeout = if self.waiting.is_empty() {
            Duration::from_millis(100)
        } else {
            Duration::from_millis(5)
        };
        let started = Instant::now();
        let mut next = self.consumer.poll(timeout);
        while let Some(event) = next {
            match event {
                Ok(m) => {
                    let p = m.partition();
                    if self.assigned.contains(&p) {
                        apply_guarded(&mut self.sink, &self.topic, p, &m);
                        self.read.insert(p, m.offset() + 1);
                    }
                }
                Err(RdError::PartitionEOF(_)) => {}
                Err(e) => tracing::warn!(topic = %self.topic, error = %e, "table consumer error"),
            }
            if started.elapsed() >= DRAIN_SLICE {
                break;
            }
            next = self.consumer.poll(Duration::ZERO);
        }
    }

    /// Answers the catch-ups that are done or out of time.
    fn settle_waiters(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut still = Vec::with_capacity(self.waiting.len());
        for w in std::mem::take(&mut self.waiting) {
            let read = self.read.get(&w.partition).copied();
            let consumer = self.consumer_position(w.partition);
            let done = is_read_to(read, consumer, w.low, w.high);
            match wait_state(done, now, w.deadline) {
                Wait::Done => {
                    let _ = w.reply.send(Ok(w.high));
                }
                Wait::Pending => still.push(w),
                Wait::TimedOut => {
                    let position = read.into_iter().chain(consumer).max().unwrap_or(w.low);
                    tracing::warn!(topic = %self.topic, partition = w.partition, position, high_watermark = w.high, read_by_sink = ?read, consumer_position = ?consumer, "table partition not read to its end within the bound");
                    let _ = w.reply.send(Err(CatchUpFailure::TimedOut {
                        position,
                        high: w.high,
                    }));
                }
            }
        }
        self.waiting = still;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_compares_positions_not_records() {
        // Records 0..=7 delivered, 8 and 9 are transaction markers: the consumer's position is
        // past them although no record at 8 or 9 ever reached the sink.
        assert!(!is_read_to(Some(8), None, 0, 10));
        assert!(is_read_to(Some(8), Some(10), 0, 10));
        // The consumer's position alone, before any record (a table of only markers).
        assert!(is_read_to(None, Some(10), 0, 10));
        // A restore from a checkpoint at the end reads nothing and is done at once.
        assert!(is_read_to(Some(10), None, 0, 10));
        // A stale consumer position does not hide records still to be read.
        assert!(!is_read_to(Some(4), Some(3), 0, 10));
        // Empty partitions, also after retention moved the start.
        assert!(is_read_to(None, None, 0, 0));
        assert!(is_read_to(None, None, 7, 7));
        // Nothing read yet: the position is the start.
        assert!(!is_read_to(None, None, 3, 7));
    }

    #[test]
    fn a_wait_ends_done_or_out_of_time() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        assert_eq!(wait_state(true, later, now), Wait::Done);
        assert_eq!(wait_state(false, now, later), Wait::Pending);
        assert_eq!(wait_state(false, later, now), Wait::TimedOut);
        assert_eq!(wait_state(false, now, now), Wait::TimedOut);
    }
}
