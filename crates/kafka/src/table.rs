//! Reading a (compacted) topic's partitions into a local table.
//!
//! Why a dedicated thread: restoring a table is a tight poll loop over many records, and the
//! stage's async workers must not stall on it. The stage tells the thread which partitions it
//! owns ([`TableTail::assign`]/[`TableTail::revoke`], driven by its group's rebalances) and asks
//! [`TableTail::caught_up`] before it processes a partition's stream, which resolves once the
//! table partition has been read up to the high watermark observed at the time of asking.
//! The asking side looks the watermark up itself and waits on the positions the thread
//! publishes after every poll ([`Progress`]): the thread is never interrupted, so an answer
//! costs one broker round trip and no more, whatever the thread is doing.
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
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Notify;

use crate::{KafkaError, KafkaSettings};

/// How long [`TableTail::caught_up`] waits for a partition to be read to its end by default.
pub const DEFAULT_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`TableTail::wait_caught_up`] waits before it looks a partition's end up again
/// after the broker did not answer.
const WATERMARK_RETRY: Duration = Duration::from_secs(1);

/// How long the thread drains fetched records before it looks at commands again, and how long
/// one poll waits when nothing arrives.
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
    /// Every record handed over so far must be in the table now. Called after each poll's
    /// records and before a revocation, always before the thread publishes how far it has
    /// read, so a sink may batch its writes ([`TableSink::apply`] may only buffer) and
    /// [`TableTail::caught_up`] still means "in the table".
    fn flush(&mut self) {}
}

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy)]
pub enum StartAt {
    Beginning,
    /// The next offset to read (a checkpoint of a persistent store).
    Offset(i64),
}

enum Command {
    Assign(Vec<(i32, StartAt)>),
    Revoke(Vec<i32>),
    Stop,
}

/// How far the thread has read each assigned partition, published after every poll.
#[derive(Default)]
struct Progress {
    read: Mutex<HashMap<i32, Position>>,
    moved: Notify,
}

/// One assigned partition's reading: the offset after the last record handed to the sink, and
/// the consumer's own position (which also passes records never delivered).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Position {
    read: Option<i64>,
    consumer: Option<i64>,
}

impl Progress {
    fn get(&self, p: i32) -> Option<Position> {
        self.read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&p)
            .copied()
    }
}

/// Handle to the table thread. Dropping it stops the thread.
pub struct TableTail {
    topic: String,
    tx: mpsc::Sender<Command>,
    handle: Option<JoinHandle<()>>,
    catch_up_timeout: Duration,
    /// A client of its own for watermark lookups from the asking side: on the reader's
    /// connection a lookup would queue behind the fetch in flight, which the local broker holds
    /// for the whole fetch wait.
    watermarks: Arc<BaseConsumer>,
    progress: Arc<Progress>,
}

impl TableTail {
    /// Starts a thread reading `topic` into `sink`. No partition is read until assigned.
    pub fn spawn<S: TableSink>(
        settings: &KafkaSettings,
        name: &str,
        topic: &str,
        sink: S,
    ) -> Result<Self, KafkaError> {
        let consumer: Arc<BaseConsumer> = Arc::new(settings.table_consumer(name).create()?);
        let watermarks: Arc<BaseConsumer> = Arc::new(settings.table_consumer(name).create()?);
        let progress = Arc::new(Progress::default());
        let (tx, rx) = mpsc::channel();
        let t = topic.to_owned();
        let reader = Reader::new(consumer, t, sink, progress.clone());
        let handle = std::thread::Builder::new()
            .name(format!("table-{topic}"))
            .spawn(move || reader.run(&rx))
            .map_err(|e| KafkaError::CatchUp {
                topic: topic.to_owned(),
                reason: format!("starting the table thread: {e}"),
            })?;
        Ok(Self {
            topic: topic.to_owned(),
            tx,
            handle: Some(handle),
            catch_up_timeout: DEFAULT_CATCH_UP_TIMEOUT,
            watermarks,
            progress,
        })
    }

    /// Starts a thread reading every partition of the compacted `topic` from its beginning into
    /// `sink`, and returns once all of them are read to their end; the thread keeps following
    /// the topic until the handle is dropped. For the tables every instance holds whole
    /// (subscriptions, endpoint health, tokens, domains).
    pub async fn follow_all<S: TableSink>(
        settings: &KafkaSettings,
        name: &str,
        topic: &str,
        sink: S,
    ) -> Result<Self, KafkaError> {
        let partitions = partition_count(settings, topic)?;
        let tail = Self::spawn(settings, name, topic, sink)?;
        tail.assign((0..partitions).map(|p| (p, StartAt::Beginning)).collect());
        tail.catch_up_all(0..partitions).await?;
        Ok(tail)
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
        {
            let mut read = self
                .progress
                .read
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (p, start) in &partitions {
                let from = match start {
                    StartAt::Beginning => None,
                    StartAt::Offset(o) => Some(*o),
                };
                read.entry(*p).or_insert(Position {
                    read: from,
                    consumer: None,
                });
            }
        }
        let _ = self.tx.send(Command::Assign(partitions));
    }

    pub fn revoke(&self, partitions: Vec<i32>) {
        {
            let mut read = self
                .progress
                .read
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for p in &partitions {
                read.remove(p);
            }
        }
        let _ = self.tx.send(Command::Revoke(partitions));
    }

    /// Resolves when `partition` has been read up to the high watermark seen now; returns that
    /// watermark. [`KafkaError::CatchUpTimeout`] when that takes longer than the bound,
    /// [`KafkaError::Watermarks`] when the broker does not say where the end is.
    pub async fn caught_up(&self, partition: i32) -> Result<i64, KafkaError> {
        let deadline = tokio::time::Instant::now() + self.catch_up_timeout;
        let (low, high) = self.watermarks(partition).await?;
        loop {
            // Registered before looking, so a move published in between still wakes us.
            let moved = self.progress.moved.notified();
            let Some(at) = self.progress.get(partition) else {
                return Err(KafkaError::CatchUp {
                    topic: self.topic.clone(),
                    reason: format!("partition {partition} is not assigned to this table"),
                });
            };
            if is_read_to(at.read, at.consumer, low, high) {
                return Ok(high);
            }
            if tokio::time::timeout_at(deadline, moved).await.is_err() {
                let position = at.read.into_iter().chain(at.consumer).max().unwrap_or(low);
                tracing::warn!(topic = %self.topic, partition, position, high_watermark = high,
                    read_by_sink = ?at.read, consumer_position = ?at.consumer,
                    "table partition not read to its end within the bound");
                return Err(KafkaError::CatchUpTimeout {
                    topic: self.topic.clone(),
                    partition,
                    position,
                    high,
                    waited: self.catch_up_timeout,
                });
            }
        }
    }

    /// The partition's low and high watermarks, from the broker.
    async fn watermarks(&self, partition: i32) -> Result<(i64, i64), KafkaError> {
        let consumer = self.watermarks.clone();
        let topic = self.topic.clone();
        let found = tokio::task::spawn_blocking(move || {
            consumer.fetch_watermarks(&topic, partition, Duration::from_secs(10))
        })
        .await;
        match found {
            Ok(Ok(w)) => Ok(w),
            Ok(Err(source)) => Err(KafkaError::Watermarks {
                topic: self.topic.clone(),
                partition,
                source,
            }),
            Err(e) => Err(KafkaError::CatchUp {
                topic: self.topic.clone(),
                reason: format!("reading the watermarks: {e}"),
            }),
        }
    }

    /// [`TableTail::caught_up`] for a reader that must not go on before `partition` is read to
    /// its end: each time the bound passes, or the end cannot be looked up (the broker is away),
    /// what is missing is logged and the wait goes on. Any other failure is returned.
    pub async fn wait_caught_up(&self, partition: i32) -> Result<i64, KafkaError> {
        loop {
            match self.caught_up(partition).await {
                Err(e @ KafkaError::CatchUpTimeout { .. }) => {
                    tracing::warn!(topic = %self.topic, partition, error = %e, "table partition not read to its end yet; still waiting (nothing that needs it goes on before)");
                }
                Err(e @ KafkaError::Watermarks { .. }) => {
                    tracing::warn!(topic = %self.topic, partition, error = %e, "the table partition's end could not be looked up; trying again (nothing that needs it goes on before)");
                    tokio::time::sleep(WATERMARK_RETRY).await;
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
        return Err(KafkaError::MissingTopic {
            topic: topic.to_owned(),
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

/// [`TableSink::flush`], with the same guard as [`apply_guarded`]: a panic loses that batch's
/// writes (logged), never the thread.
fn flush_guarded<S: TableSink>(sink: &mut S, topic: &str) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.flush())).is_err() {
        tracing::error!(
            topic,
            "the table sink panicked writing a batch; its records are lost until the next restore (a bug: please report it)"
        );
    }
}

/// The table thread's state.
struct Reader<S> {
    consumer: Arc<BaseConsumer>,
    topic: String,
    sink: S,
    assigned: HashSet<i32>,
    /// Next offset to read per partition, as far as records were handed to the sink.
    read: HashMap<i32, i64>,
    progress: Arc<Progress>,
}

impl<S: TableSink> Reader<S> {
    fn new(consumer: Arc<BaseConsumer>, topic: String, sink: S, progress: Arc<Progress>) -> Self {
        Self {
            consumer,
            topic,
            sink,
            assigned: HashSet::new(),
            read: HashMap::new(),
            progress,
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
            self.publish();
        }
    }

    /// Publishes how far each assigned partition is read, waking the askers if any moved. The
    /// handle adds and removes the entries (on assign and revoke), so an asker never finds a
    /// partition it just assigned missing; the thread only updates them.
    fn publish(&self) {
        let positions = self.consumer.position().ok();
        let mut moved = false;
        let mut published = self
            .progress
            .read
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for &p in &self.assigned {
            let Some(entry) = published.get_mut(&p) else {
                continue;
            };
            let consumer = positions
                .as_ref()
                .and_then(|tpl| tpl.find_partition(&self.topic, p))
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            let now = Position {
                read: self.read.get(&p).copied().or(entry.read),
                consumer,
            };
            if *entry != now {
                *entry = now;
                moved = true;
            }
        }
        drop(published);
        if moved {
            self.progress.moved.notify_waiters();
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Assign(parts) => self.assign(parts),
            Command::Revoke(parts) => self.revoke(parts),
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
        flush_guarded(&mut self.sink, &self.topic);
        for p in parts {
            if self.assigned.remove(&p) {
                tpl.add_partition(&self.topic, p);
                self.read.remove(&p);
                self.sink.forget_partition(p);
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.incremental_unassign(&tpl) {
                tracing::error!(topic = %self.topic, error = %e, "unassigning table partitions failed");
            }
        }
    }

    /// Hands fetched records to the sink for up to [`DRAIN_SLICE`], so commands and deadlines
    /// are looked at in time even when the sink is slow.
    fn drain(&mut self) {
        let started = Instant::now();
        let mut next = self.consumer.poll(DRAIN_SLICE);
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
        flush_guarded(&mut self.sink, &self.topic);
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
}
