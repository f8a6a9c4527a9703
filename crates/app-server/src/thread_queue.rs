//! Per-connection, per-thread request ordering: requests from one connection that name the same
//! thread run one after another in arrival order; everything else runs concurrently. Each
//! thread's worker holds one of its connection's in-flight permits, so a client naming ever new
//! thread ids cannot start workers without bound.

use crate::connection::ConnectionId;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

type Job = BoxFuture<'static, ()>;
type QueueKey = (ConnectionId, String);

/// Queued requests per (connection, thread); each queue is bounded.
pub(crate) struct ThreadQueues {
    queues: Mutex<HashMap<QueueKey, mpsc::Sender<Job>>>,
    capacity: usize,
}

/// The queue is full: the client should retry.
#[derive(Debug)]
pub(crate) struct QueueFull;

impl ThreadQueues {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            queues: Mutex::new(HashMap::new()),
            capacity,
        })
    }

    /// Queues `job` behind earlier jobs for the same key, starting a worker when none runs (with
    /// a permit of `inflight`, the connection's limit; none left is `QueueFull` too).
    pub fn enqueue(
        self: &Arc<Self>,
        key: QueueKey,
        job: Job,
        inflight: &Arc<Semaphore>,
    ) -> Result<(), QueueFull> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = queues.get(&key) {
            return match tx.try_send(job) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => Err(QueueFull),
                // The worker is gone (cannot happen while the entry exists); start a fresh one.
                Err(mpsc::error::TrySendError::Closed(job)) => {
                    queues.remove(&key);
                    drop(queues);
                    self.enqueue(key, job, inflight)
                }
            };
        }
        let permit = inflight
            .clone()
            .try_acquire_owned()
            .map_err(|_| QueueFull)?;
        let (tx, rx) = mpsc::channel(self.capacity);
        let _ = tx.try_send(job);
        queues.insert(key.clone(), tx);
        tokio::spawn(self.clone().work(key, rx, permit));
        Ok(())
    }

    async fn work(
        self: Arc<Self>,
        key: QueueKey,
        mut rx: mpsc::Receiver<Job>,
        _permit: OwnedSemaphorePermit,
    ) {
        loop {
            while let Ok(job) = rx.try_recv() {
                job.await;
            }
            // Leave only when the queue is empty under the lock, so no job is stranded.
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            if rx.is_empty() {
                queues.remove(&key);
                return;
            }
        }
    }

    /// Drops a connection's queues (it closed); running jobs finish.
    pub fn forget_connection(&self, connection: ConnectionId) {
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(c, _), _| *c != connection);
    }
}

#[cfg(test)]
#[path = "thread_queue_tests.rs"]
mod tests;
