//! A bounded pool of signing threads.
//!
//! An RSA-2048 signature is a quarter of a millisecond of one core's undivided work. Run on
//! tokio's blocking pool (up to 512 threads), a burst of signatures time-shares the cores with
//! the runtime and librdkafka's threads, and each one takes many times its own cost. This pool
//! has one thread per core: signatures queue instead, each runs at its own cost, and what
//! waits is visible as queueing rather than as slower signing.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Threads that run signing work, one per core unless told otherwise. Cheap to clone; the
/// threads end when the last clone is dropped.
#[derive(Clone)]
pub struct SigningPool {
    jobs: mpsc::Sender<Job>,
    threads: usize,
}

impl std::fmt::Debug for SigningPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningPool")
            .field("threads", &self.threads)
            .finish()
    }
}

/// The pool's threads are gone (they end only when every handle is dropped, or a thread
/// could not be started).
#[derive(Debug, thiserror::Error)]
#[error("the signing pool has stopped")]
pub struct PoolStopped;

impl SigningPool {
    /// A pool of `threads` threads (at least one); `None` is one per available core.
    pub fn new(threads: Option<usize>) -> Self {
        let threads = threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads {
            let rx = rx.clone();
            let started = std::thread::Builder::new()
                .name(format!("signing-{n}"))
                .spawn(move || loop {
                    // Hold the lock only to take a job, never while running one.
                    let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = started {
                tracing::error!(error = %e, "starting a signing thread failed");
            }
        }
        Self { jobs: tx, threads }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `work` on one of the pool's threads and returns its result. A panic in `work` is
    /// caught on the thread and answered as [`PoolStopped`] for this call only.
    pub async fn run<R, F>(&self, work: F) -> Result<R, PoolStopped>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            if let Ok(out) = out {
                let _ = tx.send(out);
            }
        });
        self.jobs.send(job).map_err(|_| PoolStopped)?;
        rx.await.map_err(|_| PoolStopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn runs_work_on_at_most_its_threads_at_once() {
        let pool = SigningPool::new(Some(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let calls = (0..16).map(|n| {
            let (running, most) = (running.clone(), most.clone());
            pool.run(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(5));
                running.fetch_sub(1, Ordering::SeqCst);
                n * 2
            })
        });
        let out: Vec<usize> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(out, (0..16).map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_panic_fails_that_call_and_the_pool_goes_on() {
        let pool = SigningPool::new(Some(1));
        assert!(pool.run(|| -> u8 { panic!("boom") }).await.is_err());
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }
}
