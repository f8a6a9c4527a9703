//! Per-connection, per-thread request ordering: requests from one connection that name the same
//! thread run one after another in arrival order; everything else runs concurrently.

use crate::connection::ConnectionId;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

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

    /// Queues `job` behind earlier jobs for the same key, starting a worker when none runs.
    pub fn enqueue(self: &Arc<Self>, key: QueueKey, job: Job) -> Result<(), QueueFull> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = queues.get(&key) {
            return match tx.try_send(job) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => Err(QueueFull),
                // The worker is gone (cannot happen while the entry exists); start a fresh one.
                Err(mpsc::error::TrySendError::Closed(job)) => {
                    queues.remove(&key);
                    drop(queues);
                    self.enqueue(key, job)
                }
            };
        }
        let (tx, rx) = mpsc::channel(self.capacity);
        let _ = tx.try_send(job);
        queues.insert(key.clone(), tx);
        tokio::spawn(self.clone().work(key, rx));
        Ok(())
    }

    async fn work(self: Arc<Self>, key: QueueKey, mut rx: mpsc::Receiver<Job>) {
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
