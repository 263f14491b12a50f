//! Reading a (compacted) topic's partitions into a local table.
//!
//! Why a dedicated thread: restoring a table is a tight poll loop over many records, and the
//! stage's async workers must not stall on it. The stage tells the thread which partitions it
//! owns ([`TableTail::assign`]/[`TableTail::revoke`], driven by its group's rebalances) and asks
//! [`TableTail::caught_up`] before it processes a partition's stream, which resolves once the
//! table partition has been read up to the high watermark observed at the time of asking.
//!
//! Whatever a record holds, the thread goes on: a sink that panics on a record has that record
//! skipped and logged (see [`TableSink`]).

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::oneshot;

use crate::{KafkaError, KafkaSettings};

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

enum Command {
    Assign(Vec<(i32, StartAt)>),
    Revoke(Vec<i32>),
    CatchUp(i32, oneshot::Sender<Result<i64, String>>),
    Stop,
}

/// Handle to the table thread. Dropping it stops the thread.
pub struct TableTail {
    topic: String,
    tx: mpsc::Sender<Command>,
    handle: Option<JoinHandle<()>>,
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
            .spawn(move || run(consumer, t, rx, sink))
            .expect("spawning a thread");
        Ok(Self {
            topic: topic.to_owned(),
            tx,
            handle: Some(handle),
        })
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
    /// watermark.
    pub async fn caught_up(&self, partition: i32) -> Result<i64, KafkaError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::CatchUp(partition, tx))
            .map_err(|_| KafkaError::TableStopped {
                topic: self.topic.clone(),
            })?;
        match rx.await {
            Ok(Ok(hw)) => Ok(hw),
            Ok(Err(reason)) => Err(KafkaError::CreateTopic {
                topic: self.topic.clone(),
                reason,
            }),
            Err(_) => Err(KafkaError::TableStopped {
                topic: self.topic.clone(),
            }),
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
    high: i64,
    reply: oneshot::Sender<Result<i64, String>>,
}

fn run<S: TableSink>(
    consumer: BaseConsumer,
    topic: String,
    rx: mpsc::Receiver<Command>,
    mut sink: S,
) {
    let mut assigned: HashSet<i32> = HashSet::new();
    // Next offset to read per partition, as far as this thread has read.
    let mut position: HashMap<i32, i64> = HashMap::new();
    let mut waiting: Vec<Waiter> = Vec::new();
    loop {
        loop {
            let cmd = match rx.try_recv() {
                Ok(c) => c,
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            };
            match cmd {
                Command::Stop => return,
                Command::Assign(parts) => {
                    let mut tpl = TopicPartitionList::new();
                    for (p, start) in parts {
                        if !assigned.insert(p) {
                            continue;
                        }
                        let off = match start {
                            StartAt::Beginning => Offset::Beginning,
                            StartAt::Offset(o) => Offset::Offset(o),
                        };
                        if let StartAt::Offset(o) = start {
                            position.insert(p, o);
                        }
                        let _ = tpl.add_partition_offset(&topic, p, off);
                    }
                    if tpl.count() > 0 {
                        if let Err(e) = consumer.incremental_assign(&tpl) {
                            tracing::error!(topic, error = %e, "assigning table partitions failed");
                        }
                    }
                }
                Command::Revoke(parts) => {
                    let mut tpl = TopicPartitionList::new();
                    for p in parts {
                        if assigned.remove(&p) {
                            tpl.add_partition(&topic, p);
                            position.remove(&p);
                            sink.forget_partition(p);
                        }
                        for w in waiting.extract_if(.., |w| w.partition == p) {
                            let _ = w.reply.send(Err(format!("partition {p} was revoked")));
                        }
                    }
                    if tpl.count() > 0 {
                        if let Err(e) = consumer.incremental_unassign(&tpl) {
                            tracing::error!(topic, error = %e, "unassigning table partitions failed");
                        }
                    }
                }
                Command::CatchUp(p, reply) => {
                    if !assigned.contains(&p) {
                        let _ = reply.send(Err(format!(
                            "partition {p} of {topic} is not assigned to this table"
                        )));
                        continue;
                    }
                    match consumer.fetch_watermarks(&topic, p, Duration::from_secs(10)) {
                        Ok((low, high)) => {
                            let pos = position.get(&p).copied().unwrap_or(low);
                            if high <= low || pos >= high {
                                let _ = reply.send(Ok(high));
                            } else {
                                waiting.push(Waiter {
                                    partition: p,
                                    high,
                                    reply,
                                });
                            }
                        }
                        Err(e) => {
                            let _ = reply
                                .send(Err(format!("reading the watermarks of {topic}/{p}: {e}")));
                        }
                    }
                }
            }
        }

        let timeout = if waiting.is_empty() {
            Duration::from_millis(100)
        } else {
            Duration::from_millis(5)
        };
        // Drain what is fetched before looking at commands again, bounded so commands stay timely.
        let mut budget = 10_000;
        let mut next = consumer.poll(timeout);
        while let Some(event) = next {
            match event {
                Ok(m) => {
                    let p = m.partition();
                    if assigned.contains(&p) {
                        apply_guarded(&mut sink, &topic, p, &m);
                        position.insert(p, m.offset() + 1);
                    }
                }
                Err(RdError::PartitionEOF(_)) => {}
                Err(e) => tracing::warn!(topic, error = %e, "table consumer error"),
            }
            budget -= 1;
            if budget == 0 {
                break;
            }
            next = consumer.poll(Duration::ZERO);
        }
        for w in waiting.extract_if(.., |w| {
            position.get(&w.partition).copied().unwrap_or(0) >= w.high
        }) {
            let _ = w.reply.send(Ok(w.high));
        }
    }
}
