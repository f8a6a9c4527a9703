//! The bounded ingest queue between HTTP handlers and the store: handlers `try_submit` (a full
//! queue is a 429, never a wait), one writer task stores batches in order and answers each one.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::store::{EventStore, IngestBatch, InsertOutcome, StoreError};

/// Most batches written together in one group commit.
const MAX_GROUP_BATCHES: usize = 64;
/// Group commit stops adding batches past this many events.
const MAX_GROUP_EVENTS: usize = 20_000;

/// The answer to one submitted batch.
pub type Reply = oneshot::Receiver<Result<InsertOutcome, StoreError>>;

struct Job {
    batch: IngestBatch,
    reply: oneshot::Sender<Result<InsertOutcome, StoreError>>,
}

/// The queue is full: the caller answers 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ingest queue is full")]
pub struct QueueFull;

/// Handle for submitting batches; cloning it keeps the writer alive.
#[derive(Clone)]
pub struct IngestQueue {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for IngestQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestQueue")
            .field("depth", &self.depth())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl IngestQueue {
    /// Starts the writer task; it ends when every `IngestQueue` clone is dropped and the queue
    /// is drained.
    pub fn spawn(
        store: Arc<dyn EventStore>,
        capacity: usize,
        metrics: Arc<Metrics>,
    ) -> (IngestQueue, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Job>(capacity.max(1));
        let writer = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // Group commit: whatever else is already queued shares this write (bounded).
                let mut events = first.batch.events.len();
                let mut jobs = vec![first];
                while jobs.len() < MAX_GROUP_BATCHES && events < MAX_GROUP_EVENTS {
                    match rx.try_recv() {
                        Ok(job) => {
                            events += job.batch.events.len();
                            jobs.push(job);
                        }
                        Err(_) => break,
                    }
                }
                let (batches, replies): (Vec<_>, Vec<_>) =
                    jobs.into_iter().map(|j| (j.batch, j.reply)).unzip();
                let started = Instant::now();
                let results = store.insert_batches(batches).await;
                metrics.observe_store_latency(started.elapsed());
                let mut results = results.into_iter();
                for reply in replies {
                    let result = results.next().unwrap_or_else(|| {
                        Err(StoreError::Worker("store returned too few results".into()))
                    });
                    match &result {
                        Ok(o) => metrics.record_stored(o.inserted, o.duplicates, o.untyped),
                        Err(e) => {
                            metrics.record_store_error();
                            tracing::warn!(error = %e, "collector store write failed");
                        }
                    }
                    if reply.send(result).is_err() {
                        metrics.record_abandoned_reply();
                    }
                }
            }
        });
        (IngestQueue { tx }, writer)
    }

    /// Queues a batch without waiting.
    pub fn try_submit(&self, batch: IngestBatch) -> Result<Reply, QueueFull> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Job { batch, reply })
            .map_err(|_| QueueFull)?;
        Ok(rx)
    }

    /// Batches waiting for the writer.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity().saturating_sub(self.tx.capacity())
    }

    /// Batches the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.tx.max_capacity()
    }
}
